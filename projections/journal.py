"""The alert journal: raising and resolving are events too.

Given the alerts that were open and the alerts standing now, the transitions
between them.  Transition ids are deterministic -- a hash of the alert id,
the transition, how many transitions the alert had before, and what it says
(kind, quantity, due date) -- so an outbox
publisher that re-sends after a crash sends the same id and a subscriber can
drop the copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = ["Status", "Transition", "transitions", "journal_row", "status_row"]


@dataclass(frozen=True, slots=True)
class Status:
    """What the journal last said about one alert."""

    alert_id: str
    state: str  # "open" | "resolved"
    kind: str
    quantity: str | None
    transitions: int


@dataclass(frozen=True, slots=True)
class Transition:
    transition_id: str
    alert_id: str
    transition: str  # "raised" | "updated" | "resolved"
    step: dict[str, Any]  # the standing step (raised/updated) or last known (resolved)
    number: int  # 1 for the alert's first transition


def transitions(
    previous: dict[str, Status],
    standing: dict[str, dict[str, Any]],
    last_known: dict[str, dict[str, Any]],
) -> list[Transition]:
    """Transitions for the alerts named in ``previous`` or ``standing``.

    ``standing`` maps alert id to its standing step row (as a dict);
    ``last_known`` gives, for alerts that stopped standing, what to say about
    them when resolved.
    """
    out = []
    for alert_id in sorted(set(previous) | set(standing)):
        before = previous.get(alert_id)
        now = standing.get(alert_id)
        was_open = before is not None and before.state == "open"
        count = before.transitions if before else 0
        if now is not None and not was_open:
            kind = "raised"
        elif now is not None and (now["kind"] != before.kind or now["quantity"] != before.quantity):
            kind = "updated"
        elif now is None and was_open:
            kind = "resolved"
        else:
            continue
        step = now if now is not None else last_known.get(alert_id, {"alert_id": alert_id})
        number = count + 1
        # What the transition says is part of its id: a store rebuilt from
        # the log restarts the numbering, and its next genuine change must
        # not reuse the id of an old transition that said something else.
        said = f"{step.get('kind')}|{step.get('quantity')}|{step.get('due_at')}"
        digest = hashlib.sha256(f"{alert_id}|{kind}|{number}|{said}".encode()).hexdigest()[:24]
        out.append(Transition(digest, alert_id, kind, step, number))
    return out


def journal_row(t: Transition, at: str) -> tuple[Any, ...]:
    """The alert_journal row of a transition (columns transition_id .. due_at)."""
    s = t.step
    return (t.transition_id, t.alert_id, t.transition, at, s.get("kind"), s.get("severity"),
            s.get("trace_id"), s.get("lot_id"), s.get("party"), s.get("quantity"),
            s.get("unit"), s.get("message"), s.get("due_at"))


def status_row(t: Transition) -> tuple[Any, ...]:
    """The alert_status row after a transition."""
    s = t.step
    state = "resolved" if t.transition == "resolved" else "open"
    return (t.alert_id, state, s.get("kind", ""), s.get("quantity"), t.number, s.get("trace_id"), s.get("party"))

