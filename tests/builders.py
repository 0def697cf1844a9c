"""A small scenario builder: valid reports with sensible defaults.

Each builder returns a validated event (it goes through ``parse_event``, so a
builder can never hand a test something the contract would refuse).  Only
what a scenario is about needs saying::

    exported(lot="L1", qty="100", unit="kg", at="2019-07-10")
    received(lot="L1", qty="100", unit="kg", at="2019-07-15")
    consumed(lot="L1", qty="70", unit="kg", at="2019-08-20")

Defaults follow the 2019 story: JP-FLUORO exports to KR-SEMI, who
re-exports to CN-SEMI-XIAN and ships back to JP-FLUORO; every lot event is
reported by its holder.  A party's country is the two letters before its
first dash ("KR-SEMI" is in KR).  ``at`` is a date ("2019-07-10", midnight
UTC), an ISO time with zone, or a datetime.  Any other field can be given as
a keyword and overrides the default (``end_user=...`` takes a party id).

Event ids default to a readable id made of the type, lot, time and quantity.
Two reports with the same type, lot, time and quantity get the same id -- the
same report, re-sent; pass ``event_id=`` when a scenario needs two.

``recorded_at`` is left unset (as a party sends it) unless given; ``stamp``
and ``versions`` stamp reports with when the ledger learned them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ledger.account import Version
from ledger.events import content_digest, digest_and_json, event_key, parse_event
from ledger.policy import Policy
from ledger.ports import LogRecord
from ledger.trace import Trace
from projections.sqlite_store import SQLiteProjectionStore
from projections.store import ProjectionStore
from projections.trace_projection import project_batch

__all__ = [
    "TRACE",
    "when",
    "party",
    "exported",
    "received",
    "consumed",
    "re_exported",
    "returned",
    "stock_declared",
    "lost",
    "retracted",
    "corrected",
    "license_granted",
    "license_revoked",
    "exemption_confirmed",
    "stamp",
    "versions",
    "trace_of",
    "payload",
    "line",
    "log_records",
    "projected",
    "cut",
    "DAY",
    "MICROSECOND",
]

TRACE = "TR-1"
DAY = timedelta(days=1)
MICROSECOND = timedelta(microseconds=1)

EXPORTER = "JP-FLUORO"
CONSIGNEE = "KR-SEMI"
RE_EXPORT_CONSIGNEE = "CN-SEMI-XIAN"
ITEM = {"id": "HF-UHP", "name": "hydrogen fluoride", "classification": "AG 1C350.25"}


def when(value: str | datetime) -> datetime:
    """A timezone-aware datetime from a date, an ISO time, or a datetime.

    A bare date is midnight UTC; a time without zone is taken as UTC.
    """
    if isinstance(value, datetime):
        moment = value
    elif len(value) == 10:
        moment = datetime.strptime(value, "%Y-%m-%d")
    else:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def party(party_id: str, country: str | None = None) -> dict[str, str]:
    """A party with the country read from its id ("KR-SEMI" -> "KR")."""
    if country is None:
        prefix = party_id.split("-", 1)[0]
        country = prefix if len(prefix) == 2 and prefix.isalpha() and prefix.isupper() else "KR"
    return {"id": party_id, "country": country}


def _iso(value: str | datetime) -> str:
    return when(value).isoformat()


def _default_id(kind: str, lot: str, at: str | datetime, detail: str = "") -> str:
    moment = when(at).astimezone(timezone.utc)
    stamp_text = moment.strftime("%Y%m%dT%H%M%S" + (".%f" if moment.microsecond else ""))
    return f"{kind}.{lot}.{stamp_text}" + (f".{detail}" if detail else "")


def _build(body: dict[str, Any], recorded_at: str | datetime | None, overrides: dict[str, Any]) -> Any:
    if recorded_at is not None:
        body["recorded_at"] = _iso(recorded_at)
    for key, value in overrides.items():
        if key in ("consignee", "exporter", "end_user") and isinstance(value, str):
            value = party(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        body[key] = value
    return parse_event(body)


def _lot_event(kind: str, lot: str, at: str | datetime, by: str, trace: str,
               event_id: str | None, detail: str) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": event_id or _default_id(kind, lot, at, detail),
        "occurred_at": _iso(at),
        "reporter": by,
        "trace_id": trace,
        "lot_id": lot,
    }


def exported(lot: str = "L1", qty: str = "100", unit: str = "kg", at: str | datetime = "2019-07-10", *,
             exporter: str = EXPORTER, consignee: str = CONSIGNEE, trace: str = TRACE,
             event_id: str | None = None, recorded_at: str | datetime | None = None,
             **overrides: Any) -> Any:
    """The exporter ships ``qty`` of one item to the consignee: opens lot ``lot``."""
    body = _lot_event("exported", lot, at, exporter, trace, event_id, f"{qty}{unit}")
    body.update(
        exporter=party(exporter),
        consignee=party(consignee),
        item=dict(ITEM),
        quantity={"amount": qty, "unit": unit},
    )
    return _build(body, recorded_at, overrides)


def received(lot: str = "L1", qty: str = "100", unit: str = "kg", at: str | datetime = "2019-07-15", *,
             by: str = CONSIGNEE, trace: str = TRACE, event_id: str | None = None,
             recorded_at: str | datetime | None = None, **overrides: Any) -> Any:
    """The holder of ``lot`` receives ``qty`` of it: in transit -> on hand."""
    body = _lot_event("received", lot, at, by, trace, event_id, f"{qty}{unit}")
    body["quantity"] = {"amount": qty, "unit": unit}
    return _build(body, recorded_at, overrides)


def consumed(lot: str = "L1", qty: str = "70", unit: str = "kg", at: str | datetime = "2019-08-20", *,
             by: str = CONSIGNEE, end_use: str = "wafer etching", trace: str = TRACE,
             event_id: str | None = None, recorded_at: str | datetime | None = None,
             **overrides: Any) -> Any:
    """The holder uses ``qty`` of ``lot`` for the declared end use."""
    body = _lot_event("consumed", lot, at, by, trace, event_id, f"{qty}{unit}")
    body.update(quantity={"amount": qty, "unit": unit}, end_use=end_use)
    return _build(body, recorded_at, overrides)


def re_exported(lot: str = "L1", child: str = "L1-A", qty: str = "30", unit: str = "kg",
                at: str | datetime = "2019-09-01", *, by: str = CONSIGNEE,
                to: str = RE_EXPORT_CONSIGNEE, trace: str = TRACE, event_id: str | None = None,
                recorded_at: str | datetime | None = None, **overrides: Any) -> Any:
    """The holder ships ``qty`` of ``lot`` on to ``to``: child lot ``child`` in transit."""
    body = _lot_event("re_exported", lot, at, by, trace, event_id, f"{child}.{qty}{unit}")
    body.update(quantity={"amount": qty, "unit": unit}, child_lot_id=child, consignee=party(to))
    return _build(body, recorded_at, overrides)


def returned(lot: str = "L1", child: str = "L1-R", qty: str = "30", unit: str = "kg",
             at: str | datetime = "2019-09-01", *, by: str = CONSIGNEE, to: str = EXPORTER,
             reason: str = "defective: shipped back to the manufacturer", trace: str = TRACE,
             event_id: str | None = None, recorded_at: str | datetime | None = None,
             **overrides: Any) -> Any:
    """The holder ships ``qty`` of ``lot`` back to ``to``: child lot ``child`` in transit back."""
    body = _lot_event("returned", lot, at, by, trace, event_id, f"{child}.{qty}{unit}")
    body.update(quantity={"amount": qty, "unit": unit}, child_lot_id=child, consignee=party(to),
                reason=reason)
    return _build(body, recorded_at, overrides)


def stock_declared(lot: str = "L1", qty: str = "30", unit: str = "kg", at: str | datetime = "2019-09-30",
                   *, by: str = CONSIGNEE, trace: str = TRACE, event_id: str | None = None,
                   recorded_at: str | datetime | None = None, **overrides: Any) -> Any:
    """The holder attests ``qty`` of ``lot`` still on hand at ``at``."""
    body = _lot_event("stock_declared", lot, at, by, trace, event_id, f"{qty}{unit}")
    body["quantity"] = {"amount": qty, "unit": unit}
    return _build(body, recorded_at, overrides)


def lost(lot: str = "L1", qty: str = "30", unit: str = "kg", at: str | datetime = "2019-09-30", *,
         by: str = CONSIGNEE, disposition: str = "lost", evidence: str = "incident report 2019-17",
         trace: str = TRACE, event_id: str | None = None, recorded_at: str | datetime | None = None,
         **overrides: Any) -> Any:
    """The holder writes ``qty`` of ``lot`` off as lost or destroyed, with evidence."""
    body = _lot_event("lost", lot, at, by, trace, event_id, f"{qty}{unit}")
    body.update(quantity={"amount": qty, "unit": unit}, disposition=disposition, evidence=evidence)
    return _build(body, recorded_at, overrides)


def retracted(target: Any, at: str | datetime = "2019-10-01", *, by: str | None = None,
              reason: str = "reported in error", event_id: str | None = None,
              recorded_at: str | datetime | None = None, **overrides: Any) -> Any:
    """Withdraw ``target`` (an event, or an event id with ``lot=`` given).

    Reported by the target's reporter unless ``by`` says otherwise.
    """
    if isinstance(target, str):
        target_id, lot = target, overrides.pop("lot")
        reporter, trace = by or CONSIGNEE, overrides.pop("trace", TRACE)
    else:
        target_id, lot, reporter, trace = target.event_id, target.lot_id, target.reporter, target.trace_id
    body = _lot_event("retracted", lot, at, by or reporter, trace, event_id, target_id)
    body.update(retracted_event_id=target_id, reason=reason)
    return _build(body, recorded_at, overrides)


def corrected(target: Any, qty: str, unit: str | None = None, at: str | datetime = "2019-10-01", *,
              by: str | None = None, reason: str = "miscounted", event_id: str | None = None,
              recorded_at: str | datetime | None = None, **overrides: Any) -> Any:
    """Replace the quantity of ``target`` (an earlier report) with ``qty``.

    Reported by the target's reporter, in the target's unit, unless told otherwise.
    """
    body = _lot_event("corrected", target.lot_id, at, by or target.reporter, target.trace_id, event_id,
                      f"{target.event_id}.{qty}")
    body.update(corrected_event_id=target.event_id, reason=reason,
                quantity={"amount": qty, "unit": unit or target.quantity.unit})
    return _build(body, recorded_at, overrides)


def license_granted(license_id: str = "JP-IND-2019-0001", at: str | datetime = "2019-07-04", *,
                    exporter: str = EXPORTER, reporter: str = "JP-METI", kind: str = "individual",
                    items: Iterable[str] = ("HF-UHP",), destinations: Iterable[str] = ("KR",),
                    end_users: Iterable[str] = (CONSIGNEE,), valid_from: str | datetime | None = None,
                    valid_until: str | datetime | None = None, event_id: str | None = None,
                    recorded_at: str | datetime | None = None, **overrides: Any) -> Any:
    """An authority grants ``license_id`` to the exporter; six months from ``at`` by default."""
    start = when(valid_from or at)
    body = {
        "type": "license_granted",
        "event_id": event_id or f"license_granted.{license_id}",
        "occurred_at": _iso(at),
        "reporter": reporter,
        "license_id": license_id,
        "kind": kind,
        "exporter": exporter,
        "items": list(items),
        "destinations": list(destinations),
        "end_users": list(end_users),
        "valid_from": start.isoformat(),
        "valid_until": _iso(valid_until) if valid_until else (start + timedelta(days=184)).isoformat(),
    }
    return _build(body, recorded_at, overrides)


def license_revoked(license_id: str = "JP-IND-2019-0001", at: str | datetime = "2019-09-01", *,
                    reporter: str = "JP-METI", reason: str = "end user changed",
                    event_id: str | None = None, recorded_at: str | datetime | None = None,
                    **overrides: Any) -> Any:
    body = {
        "type": "license_revoked",
        "event_id": event_id or f"license_revoked.{license_id}",
        "occurred_at": _iso(at),
        "reporter": reporter,
        "license_id": license_id,
        "reason": reason,
    }
    return _build(body, recorded_at, overrides)


def exemption_confirmed(lot: str = "L1-R", at: str | datetime = "2019-09-05", *, by: str = "KR-MOTIE",
                        trace: str = TRACE, reference: str = "return to the manufacturer, exempt",
                        event_id: str | None = None, recorded_at: str | datetime | None = None,
                        **overrides: Any) -> Any:
    """The licensing authority (KR-MOTIE by default) confirms a ship-back's exemption."""
    body = _lot_event("exemption_confirmed", lot, at, by, trace, event_id, by)
    body["reference"] = reference
    return _build(body, recorded_at, overrides)


# -- stamping and feeding ------------------------------------------------------


def stamp(event: Any, recorded_at: str | datetime | None = None) -> Any:
    """``event`` as the ledger holds it: with ``recorded_at`` (default: when it occurred)."""
    moment = when(recorded_at) if recorded_at is not None else event.occurred_at
    if recorded_at is not None:
        return event.model_copy(update={"recorded_at": moment})
    return event.stamped(moment)


def versions(*events: Any) -> list[Version]:
    """Stamped report versions for ``ledger.account.build_account``."""
    out = []
    for event in events:
        stamped = stamp(event)
        out.append(Version(stamped, content_digest(stamped)))
    return out


def trace_of(*events: Any, trace: str | None = None) -> Trace:
    """A Trace that has recorded ``events`` in the order given (stamped if unstamped)."""
    trace_id = trace or (events[0].trace_id if events else TRACE)
    aggregate = Trace(trace_id)
    for event in events:
        aggregate.record(stamp(event))
    return aggregate


def payload(event: Any) -> dict[str, Any]:
    """The JSON object a party would send for ``event``."""
    return json.loads(event.model_dump_json(exclude_none=True))


def line(event: Any, **changes: Any) -> str:
    """One JSON Lines line for ``event``, with top-level fields changed or (value None) removed."""
    body = payload(event)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return json.dumps(body)


def write_jsonl(path: Path, *reports: dict[str, Any]) -> str:
    """Reports (as parties send them) written one per line to ``path``; its name, for the CLI."""
    path.write_text("".join(json.dumps(r) + "\n" for r in reports), encoding="utf-8")
    return str(path)


def log_records(reports: Iterable[Any], *, partition: int = 0, start: int = 0) -> list[LogRecord]:
    """``reports`` as the log holds them, in the order given: each under its
    log key (``ledger.events.event_key``) with the bytes ingest appends, at
    offsets ``start``, ``start + 1``, ... of ``partition``."""
    return [LogRecord(partition, start + n, event_key(r), digest_and_json(r)[1]) for n, r in enumerate(reports)]


# A receipt dated year 1, +14:00 (issue 14): the contract of the time let it
# through, and converting it to UTC overflowed.  Its digest is its own body's,
# so a log holding it is intact; today's contract refuses it.
OVERFLOWING_RECEIPT = (
    b'{"type":"received","event_id":"q-rcv-1","occurred_at":"0001-01-01T00:00:00+14:00",'
    b'"recorded_at":"2019-12-01T00:00:00+00:00","reporter":"KR-B","trace_id":"TR-Q1","lot_id":"Q1",'
    b'"quantity":{"amount":"100","unit":"kg"}}')


def append_stamped(log: Any, *events: Any, recorded_at: str = "2019-12-01T00:00:00+00:00") -> None:
    """``events`` appended to ``log`` as ingest appends them, each stamped ``recorded_at``."""
    records = []
    for event in events:
        digest, value = digest_and_json(stamp(event, recorded_at))
        records.append((event.event_id, digest, event_key(event), value))
    log.append(records)


def cut(reports: list[Any], at: Iterable[int]) -> list[list[Any]]:
    """``reports`` cut into batches before each index in ``at`` (sorted, repeats
    and the ends ignored): ``cut([a, b, c], [1])`` is ``[[a], [b, c]]``."""
    bounds = [0, *sorted({i for i in at if 0 < i < len(reports)}), len(reports)]
    return [reports[start:end] for start, end in zip(bounds, bounds[1:])]


def projected(*batches: Iterable[Any], policy: Policy, now: datetime,
              store: ProjectionStore | None = None, log: str = "log") -> ProjectionStore:
    """A store (by default a new in-memory SQLite one) fed ``batches`` of
    reports in the order given, one projected batch each -- what the projector
    does with what it polls, without a log in between.  Offsets run on across
    the batches, as a log's would."""
    store = store if store is not None else SQLiteProjectionStore(":memory:")
    offset = 0
    for batch in batches:
        records = log_records(batch, start=offset)
        offset += len(records)
        if records:
            project_batch(store, log, records, policy=policy, now=now)
    return store
