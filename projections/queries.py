"""Answers to the questions people ask, from a projection store.

"Now" is served from the materialised rows.  "As of D" and "known at K" are
answered by rebuilding the traces concerned from their stored reports with
the same pure functions, so both paths agree by construction.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.alerts import alert_steps, alerts_as_of
from ledger.identity import Claim, claims_of
from ledger.trace import Trace
from ledger.policy import Policy
from projections.rows import LOT_COLUMNS, dec, lot_row, step_row
from projections.store import ProjectionStore
from projections.premises import licenses_as_of
from projections.trace_projection import rebuild_trace

__all__ = ["whereabouts", "standing_alerts", "NotFound"]


class NotFound(LookupError):
    pass


def whereabouts(
    store: ProjectionStore,
    ident: str | None,
    *,
    clock: datetime,
    policy: Policy,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """Lot rows with an ``unaccounted`` column, for one lot, one trace, or all."""
    if as_of is None and known_at is None:
        rows = _current_lots(store, ident)
        # One indexed query per trace shown, not a scan of every alert.
        if ident is None:
            candidates = store.standing_alerts(clock)
        else:
            candidates = [a for t in sorted({r["trace_id"] for r in rows})
                          for a in store.standing_alerts(clock, trace_id=t)]
        unaccounted = {
            (a["trace_id"], a["lot_id"]): a["quantity"]
            for a in candidates
            if a["kind"] == "unaccounted" and (ident is None or ident in (a["trace_id"], a["lot_id"]))
        }
        for row in rows:
            row["unaccounted"] = unaccounted.get((row["trace_id"], row["lot_id"]), "0")
        return rows
    when = as_of or clock
    out = []
    for trace_id, trace, claims in _traces(store, ident):
        account = trace.account(as_of=when, known_at=known_at, claims=claims)
        standing = alerts_as_of(alert_steps(account, policy), when)
        unaccounted = {a.lot_id: a.quantity for a in standing if a.kind == "unaccounted"}
        for lot_id in sorted(account.lots):
            if ident not in (None, trace_id, lot_id):
                continue
            row = dict(zip(LOT_COLUMNS, lot_row(account.lots[lot_id])))
            row["unaccounted"] = dec(unaccounted.get(lot_id, Decimal(0)))
            out.append(row)
    return out


def standing_alerts(
    store: ProjectionStore,
    *,
    clock: datetime,
    policy: Policy,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
    party: str | None = None,
    trace_id: str | None = None,
) -> list[dict[str, Any]]:
    if as_of is None and known_at is None:
        return store.standing_alerts(clock, party=party, trace_id=trace_id)
    when = as_of or clock
    out = []
    for tid, trace, claims in _traces(store, trace_id):
        account = trace.account(as_of=when, known_at=known_at, claims=claims)
        # License premises as of then too (ceilings, which span traces, are
        # served from the stored steps only: docs/COMPLIANCE.md).
        book = licenses_as_of(store, account, as_of=when, known_at=known_at)
        for alert in alerts_as_of(alert_steps(account, policy, book), when):
            if party is not None and alert.party != party:
                continue
            row = dict(zip(("alert_id", "due_at", "kind", "severity", "trace_id", "lot_id", "party",
                            "quantity", "unit", "message", "event_ids"), step_row(alert)))
            row["event_ids"] = list(alert.event_ids)
            out.append(row)
    return out


def _current_lots(store: ProjectionStore, ident: str | None) -> list[dict[str, Any]]:
    if ident is None:
        return store.lots()
    rows = store.lots(trace_id=ident) or store.lots(lot_id=ident)
    if not rows:
        raise NotFound(f"no lot or trace {ident!r} is known")
    return rows


def _traces(store: ProjectionStore, ident: str | None) -> list[tuple[str, Trace, dict[str, list[Claim]]]]:
    """The traces concerned, rebuilt, each with the claims other traces hold
    on its event ids (an event id names one report ledger-wide:
    ledger/identity.py).  The account's ``known_at`` keeps only the claims
    recorded by then."""
    traces = {t: rebuild_trace(t, versions) for t, versions in sorted(_versions(store, ident).items())}
    if ident is None:  # every trace is here: the claims are theirs
        claims: dict[str, list[Claim]] = {}
        for trace_id, trace in traces.items():
            for event_id, on_it in claims_of(trace_id, trace.versions()).items():
                claims.setdefault(event_id, []).extend(on_it)
    else:
        ids = sorted({v.event_id for trace in traces.values() for v in trace.versions()})
        claims = store.event_claims(ids) if ids else {}
    contested = {e: c for e, c in claims.items() if len({t for t, _d, _r in c}) > 1}
    return [(t, trace, contested) for t, trace in traces.items()]


def _versions(store: ProjectionStore, ident: str | None) -> dict[str, list[tuple[str, str]]]:
    if ident is None:
        return store.all_versions()
    trace_ids = store.trace_ids_for(lot_or_trace=ident)
    if not trace_ids:
        raise NotFound(f"no lot or trace {ident!r} is known")
    return store.load_versions(trace_ids)
