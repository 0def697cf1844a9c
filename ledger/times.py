"""What a person means by the time they type for "as of" and "known at".

`ledger whereabouts --as-of 2019-09-01`, `GET /v1/lots?as_of=2019-09-01` and
`ledger audit --from 2019-07-01` read a date or a time the same way, so the
rule is here, once: a date is a whole day in UTC (the end of it for "as of",
"known at" and "to", the start of it for "from"); a time must carry its zone.
Pure functions, no I/O.
"""

from __future__ import annotations

from datetime import datetime, time, timezone

__all__ = ["TimeTextError", "end_of", "start_of"]

_DATE_LENGTH = len("2019-09-01")


class TimeTextError(ValueError):
    """Text that is not a date or a time with zone; the message names it."""


def end_of(text: str) -> datetime:
    """A date (the end of that day, UTC) or a time with zone."""
    try:
        if len(text) == _DATE_LENGTH:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            return datetime.combine(day, time.max, tzinfo=timezone.utc)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TimeTextError(
            f"{text!r} is not a date (2019-10-01) or a time with zone (2019-10-01T12:00:00+09:00)"
        ) from None
    if value.tzinfo is None:
        raise TimeTextError(f"{text!r} has no time zone; add one, e.g. {text}+00:00 or {text}Z")
    return value


def start_of(text: str) -> datetime:
    """A date (the start of that day, UTC) or a time with zone."""
    value = end_of(text)
    if len(text) == _DATE_LENGTH:
        return datetime.combine(value.date(), time.min, tzinfo=timezone.utc)
    return value
