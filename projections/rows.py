"""Pure conversion of domain values to stored rows, and back.

Decimals are stored as canonical text (never REAL: SQLite's REAL is a binary
float) and times as UTC ISO-8601 text of fixed width, so text order is time
order in every store.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from collections.abc import Sequence

from ledger.account import LotAccount, Version
from ledger.alerts import Alert
from ledger.events import parse_event
from ledger.quantity import canonical_decimal
from ledger.trace import Trace

__all__ = ["ts", "parse_ts", "dec", "lot_row", "step_row", "rebuild_trace", "LOT_COLUMNS", "STEP_COLUMNS"]


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    # One instant has one UTC spelling, and equal aware datetimes are the same
    # instant (whatever their zones), so the spelling is remembered by value.
    text = _SPELLED.get(value)
    if text is not None:
        return text
    utc = value.astimezone(timezone.utc)
    if value.tzinfo is None or type(value) is not datetime or utc.year < 1000:
        # Naive (local time), a subclass, or a year strftime writes unpadded
        # ("999-01-31": text order would no longer be time order, issue 14):
        # the year is padded to four digits here, whatever the platform.
        return f"{utc.year:04d}" + utc.strftime("-%m-%dT%H:%M:%S.%fZ")
    text = utc.isoformat(timespec="microseconds")[:-6] + "Z"  # the strftime spelling, minus "+00:00"
    if len(_SPELLED) >= _SPELLED_MAX:
        _SPELLED.clear()
    _SPELLED[value] = text
    return text


_SPELLED: dict[datetime, str] = {}
_SPELLED_MAX = 1 << 14  # bounded: a few MB, and the recent spellings are the ones reused


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def dec(value: Decimal | None) -> str | None:
    return None if value is None else canonical_decimal(value)


LOT_COLUMNS = (
    "trace_id", "lot_id", "parent_lot_id", "origin", "opened_by", "item_id", "item_name",
    "classification", "unit", "shipper", "shipper_country", "holder", "holder_country",
    "end_user", "license_id", "shipped_at", "shipped", "received", "in_transit", "consumed",
    "re_exported", "returned", "lost", "on_hand", "declared_on_hand", "declared_at", "since",
)  # fmt: skip

STEP_COLUMNS = (
    "alert_id", "due_at", "kind", "severity", "trace_id", "lot_id", "party", "quantity",
    "unit", "message", "event_ids",
)  # fmt: skip


def lot_row(lot: LotAccount) -> tuple[Any, ...]:
    return (
        lot.trace_id, lot.lot_id, lot.parent_lot_id, lot.origin, lot.opened_by, lot.item_id,
        lot.item_name, lot.classification, lot.unit, lot.shipper, lot.shipper_country,
        lot.holder, lot.holder_country, lot.end_user, lot.license_id, ts(lot.shipped_at),
        dec(lot.shipped), dec(lot.received), dec(lot.in_transit), dec(lot.consumed),
        dec(lot.re_exported), dec(lot.returned), dec(lot.lost), dec(lot.on_hand),
        dec(lot.declared_on_hand), ts(lot.declared_at), ts(lot.since),
    )  # fmt: skip


def step_row(alert: Alert) -> tuple[Any, ...]:
    return (
        alert.alert_id, ts(alert.due_at), alert.kind, alert.severity, alert.trace_id,
        alert.lot_id, alert.party, dec(alert.quantity), alert.unit, alert.message,
        _id_list(alert.event_ids),
    )  # fmt: skip


# Characters json.dumps writes as they are (event ids are Identifiers: all of them).
_PLAIN = re.compile(r"[A-Za-z0-9._:/\-]*")


def _id_list(event_ids: tuple[str, ...]) -> str:
    """``json.dumps(list(event_ids))``, joined directly when no id needs escaping."""
    try:
        plain = _PLAIN.fullmatch("".join(event_ids)) is not None
    except TypeError:  # not all strings
        plain = False
    if plain:
        return '["' + '", "'.join(event_ids) + '"]' if event_ids else "[]"
    return json.dumps(list(event_ids))


def rebuild_trace(trace_id: str, stored: Sequence[tuple[str, str]]) -> Trace:
    """The trace restored from the ``reports`` rows: stored (payload, digest) versions."""
    return Trace.restored(trace_id, (Version(parse_event(payload), digest) for payload, digest in stored))
