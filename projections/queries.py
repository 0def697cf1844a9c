"""Answers to the questions people ask, from a projection store.

"Now" is served from the materialised rows.  "As of D" and "known at K" are
answered by rebuilding the traces concerned from their stored reports with
the same pure functions, so both paths agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from ledger.account import Version
from ledger.alerts import alerts_as_of
from ledger.evaluation import evaluate, license_uses, licenses_named
from ledger.events import parse_event
from ledger.flows import Flow, Period, Shipment, reconcile
from ledger.identity import Claim, claims_of, contested
from ledger.licenses import LicenseUse, ceiling_trace_id
from ledger.policy import Policy
from projections.rows import LOT_COLUMNS, dec, lot_row, parse_ts, rebuild_trace, step_row
from projections.store import ProjectionStore
from projections.trace_projection import QUARANTINED

__all__ = ["whereabouts", "standing_alerts", "trace_view", "TraceView", "lot_reports", "shipment_of", "flows_of",
           "NotFound"]


class NotFound(LookupError):
    pass


def whereabouts(
    store: ProjectionStore,
    ident: str | None,
    *,
    now: datetime,
    policy: Policy,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """Lot rows with an ``unaccounted`` column, for one lot, one trace, or all."""
    if as_of is None and known_at is None:
        rows = _current_lots(store, ident)
        # One indexed query per trace shown, not a scan of every alert.
        if ident is None:
            candidates = store.standing_alerts(now)
        else:
            candidates = [a for t in sorted({r["trace_id"] for r in rows})
                          for a in store.standing_alerts(now, trace_id=t)]
        unaccounted = {
            (a["trace_id"], a["lot_id"]): a["quantity"]
            for a in candidates
            if a["kind"] == "unaccounted" and (ident is None or ident in (a["trace_id"], a["lot_id"]))
        }
        for row in rows:
            row["unaccounted"] = unaccounted.get((row["trace_id"], row["lot_id"]), "0")
        return rows
    when = as_of or now
    out = []
    inputs = _inputs(store, ident)
    evaluation = evaluate(inputs.versions, policy=policy, claims=inputs.claims, as_of=when, known_at=known_at)
    for trace_id, account in evaluation.accounts.items():
        standing = alerts_as_of(evaluation.steps[trace_id], when)
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
    now: datetime,
    policy: Policy,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
    party: str | None = None,
    trace_id: str | None = None,
) -> list[dict[str, Any]]:
    """The alerts standing, for every trace or one; with a trace, also the
    ceiling alerts of the licenses its lots cite (a ceiling spans traces:
    ``license:<id>``), so asking about an export shows the ceiling it counts
    towards.  As of a date and known at a moment, ceilings are recounted
    from what the ledger knew then (ledger/evaluation.py).  The licenses'
    ``conflicting_report`` alerts (two versions of one license report) are
    kept beside the ceilings and shown the same way: as of a date, from the
    versions recorded by ``known_at``, for every license when no trace is
    asked about (the projection keeps them for every license reported)."""
    if as_of is None and known_at is None:
        rows = store.standing_alerts(now, party=party, trace_id=trace_id)
        if trace_id is not None:
            cited = sorted({r["license_id"] for r in store.trace_lots([trace_id]) if r["license_id"]})
            for license_id in cited:
                rows.extend(store.standing_alerts(now, party=party, trace_id=ceiling_trace_id(license_id)))
        return rows
    when = as_of or now
    inputs = _inputs(store, trace_id)
    every_trace = trace_id is None
    # The license reports as recorded by known_at (the evaluation keeps those
    # granted by then): every license when every trace is asked about (their
    # conflicting versions are shown too), else those the traces name.
    if every_trace:
        stored = store.licenses()
    else:
        named = sorted(licenses_named(v for held in inputs.versions.values() for v in held))
        stored = store.load_licenses(named) if named else []
    reports = [parse_event(payload) for payload, _digest in stored]

    def uses_elsewhere(license_ids: list[str]) -> list[LicenseUse]:
        """The shipments of the traces not asked about that cite these
        licenses now (``store.license_lots``), rebuilt as of then: a trace
        whose only lot citing one has since been retracted, with the
        retraction recorded, is counted only when it is among those asked."""
        if every_trace:
            return []  # every trace is evaluated: every use is already there
        others = sorted({r["trace_id"] for r in store.license_lots(license_ids)} - set(inputs.versions))
        if not others:
            return []
        rebuilt = _rebuilt(store, store.load_versions(others), every_trace=False)
        then = evaluate(rebuilt.versions, policy=policy, claims=rebuilt.claims, as_of=when, known_at=known_at)
        return [u for account in then.accounts.values() for u in license_uses(account, license_ids)]

    evaluation = evaluate(inputs.versions, policy=policy, claims=inputs.claims, as_of=when, known_at=known_at,
                          license_reports=reports,
                          licenses=sorted({r.license_id for r in reports}) if every_trace else (),
                          uses_elsewhere=uses_elsewhere)
    # The conflicts on license reports are not filtered by ``as_of`` on when
    # the grant occurred: the conflict is due when the ledger learned of it.
    alerts = evaluation.standing(when)
    out = []
    for alert in alerts:
        if party is not None and alert.party != party:
            continue
        row = dict(zip(("alert_id", "due_at", "kind", "severity", "trace_id", "lot_id", "party",
                        "quantity", "unit", "message", "event_ids"), step_row(alert)))
        row["event_ids"] = list(alert.event_ids)
        out.append(row)
    # Quarantines are about the ledger's data, not a date: an answer as of
    # any date shows those standing now (a quarantined trace is left out of
    # the recomputation above, as the projection leaves out its lots).
    quarantined = [a for a in store.standing_alerts(now, party=party, trace_id=trace_id) if a["kind"] == QUARANTINED]
    return sorted([*out, *quarantined], key=lambda a: (a["trace_id"], a["lot_id"], a["kind"], a["alert_id"]))


@dataclass(frozen=True, slots=True)
class TraceView:
    """A trace (or the traces a lot id names): every lot, and the alerts standing."""

    trace_ids: list[str]
    rows: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


def trace_view(
    store: ProjectionStore,
    ident: str,
    *,
    now: datetime,
    policy: Policy,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> TraceView:
    """The lots and standing alerts of the traces ``ident`` names (a trace
    id, or a lot id of one): what `ledger trace` and ``GET /v1/traces/{id}``
    show.  A license ceiling two of these traces cite is listed once."""
    trace_ids = store.trace_ids_for(lot_or_trace=ident)
    if not trace_ids:
        raise NotFound(f"no lot or trace {ident!r} is known")
    rows: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for trace_id in trace_ids:
        rows.extend(whereabouts(store, trace_id, now=now, policy=policy, as_of=as_of, known_at=known_at))
        for alert in standing_alerts(store, now=now, policy=policy, as_of=as_of, known_at=known_at,
                                     trace_id=trace_id):
            if alert not in alerts:
                alerts.append(alert)
    return TraceView(trace_ids, rows, alerts)


def lot_reports(store: ProjectionStore, lot_id: str, *, known_at: datetime | None = None) -> list[dict[str, Any]]:
    """The reports about one lot, in the order they occurred: those naming
    it (``lot_id``) and the re-export or ship-back that opened it
    (``child_lot_id``); only those recorded by ``known_at`` if given.  The
    evidence behind a lot's figures, as the ledger holds it (every version,
    retracted and corrected ones included: their own reports say so)."""
    out = []
    for trace_id, held in _inputs(store, lot_id).versions.items():
        for version in held:
            event = version.event
            if lot_id not in (getattr(event, "lot_id", None), getattr(event, "child_lot_id", None)):
                continue
            if known_at is not None and event.recorded_at is not None and event.recorded_at > known_at:
                continue
            quantity = getattr(event, "quantity", None)
            out.append({
                "trace_id": trace_id, "lot_id": event.lot_id, "event_id": event.event_id, "type": event.type,
                "reporter": event.reporter, "occurred_at": event.occurred_at.isoformat(),
                "recorded_at": event.recorded_at.isoformat() if event.recorded_at else None,
                "quantity": dec(quantity.amount) if quantity is not None else None,
                "unit": quantity.unit if quantity is not None else None,
                "child_lot_id": getattr(event, "child_lot_id", None),
                "subject_event_id": getattr(event, "retracted_event_id", None)
                or getattr(event, "corrected_event_id", None),
            })
    out.sort(key=lambda r: (r["occurred_at"], r["recorded_at"] or "", r["event_id"]))
    return out


def shipment_of(row: dict[str, Any]) -> Shipment:
    """A whereabouts row as the cross-border reconciliation counts it (ledger/flows.py)."""
    return Shipment(
        trace_id=row["trace_id"], lot_id=row["lot_id"], origin=row["origin"],
        origin_country=row["shipper_country"], destination_country=row["holder_country"],
        item_id=row["item_id"], unit=row["unit"], shipped_at=parse_ts(row["shipped_at"]),
        shipped=Decimal(row["shipped"]), received=Decimal(row["received"]),
    )


def flows_of(rows: Iterable[dict[str, Any]], *, period: Period | None = None, origin_country: str | None = None,
             destination_country: str | None = None, item_id: str | None = None) -> list[Flow]:
    """The cross-border flows of these whereabouts rows (``ledger.flows.reconcile``):
    what `ledger flows`, the API's /v1/flows (the dashboard's flows view) and
    the audit report's flows chart all show."""
    return reconcile((shipment_of(r) for r in rows), period=period, origin_country=origin_country,
                     destination_country=destination_country, item_id=item_id)


def _current_lots(store: ProjectionStore, ident: str | None) -> list[dict[str, Any]]:
    if ident is None:
        return store.lots()
    rows = store.lots(trace_id=ident) or store.lots(lot_id=ident)
    if not rows:
        raise NotFound(f"no lot or trace {ident!r} is known")
    return rows


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What an evaluation of stored traces needs: their versions (trace id ->
    versions) and the claims other traces hold on their event ids
    (ledger/identity.py; the evaluation's ``known_at`` keeps only the claims
    recorded by then)."""

    versions: dict[str, list[Version]]
    claims: dict[str, list[Claim]]


def _inputs(store: ProjectionStore, ident: str | None) -> _Inputs:
    """The traces ``ident`` names (every trace: None), loaded for an evaluation."""
    return _rebuilt(store, _versions(store, ident), every_trace=ident is None)


def _rebuilt(store: ProjectionStore, versions: dict[str, list[tuple[str, str]]], *, every_trace: bool) -> _Inputs:
    traces = {}
    for t, stored in sorted(versions.items()):
        try:
            traces[t] = rebuild_trace(t, stored).versions()
        except ValidationError:
            # A version the contract now refuses (a store an older ledger
            # wrote): the projection quarantined this trace; so does this.
            continue
    if every_trace:  # every trace is here: the claims are theirs
        claims: dict[str, list[Claim]] = {}
        for trace_id, held in traces.items():
            for event_id, on_it in claims_of(trace_id, held).items():
                claims.setdefault(event_id, []).extend(on_it)
    else:
        ids = sorted({v.event_id for held in traces.values() for v in held})
        claims = store.event_claims(ids) if ids else {}
    return _Inputs(traces, contested(claims))


def _versions(store: ProjectionStore, ident: str | None) -> dict[str, list[tuple[str, str]]]:
    if ident is None:
        return store.all_versions()
    trace_ids = store.trace_ids_for(lot_or_trace=ident)
    if not trace_ids:
        raise NotFound(f"no lot or trace {ident!r} is known")
    return store.load_versions(trace_ids)
