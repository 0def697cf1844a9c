"""License premises in the projection: which traces a batch must recompute,
and with which licenses.

Premise alerts depend on two kinds of report: a trace's own reports and the
license reports its lots cite.  So that the result never depends on which
arrives first, a batch recomputes

- every trace it brings new reports for (as before), with the licenses their
  lots cite, and
- every trace with a lot citing a license the batch brings a report about
  (``store.license_lots``), even though the trace itself has no new report.

Ceiling alerts count shipments across traces; they are kept per license under
the pseudo trace id ``license:<id>`` and recomputed from the current lot rows
whenever a lot citing the license changes or the license itself does.  The
same rows carry the license's ``conflicting_report`` alerts (two versions of
one license report: ``license_conflict_steps``), recomputed from every stored
version whenever a report about the license arrives, so a conflicting version
arriving alone raises it.

Several projectors (a Kafka consumer group) may share one store, and a
license and the export citing it may sit in different partitions.  Each
batch holds the store's batch lock from its first read to its commit
(projections/batch_lock.py), so no batch computes from a view another
batch is about to change: the stored rows are those of one arrival order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ledger.account import Version
from ledger.evaluation import LicenseReport, evaluate, licenses_named
from ledger.events import parse_event
from ledger.identity import Claim, contested
from ledger.licenses import LicenseUse, uses_license
from ledger.policy import Policy
from projections.rows import lot_row, parse_ts, rebuild_trace, step_row
from projections.store import ProjectionStore, TraceRows

__all__ = ["recompute_rows", "recount_licenses", "BatchTrace"]

# (event_id, digest, recorded_at, payload): a version as the store's ``reports`` table takes it.
StoredVersion = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class BatchTrace:
    """A trace the batch brings reports for: the versions it writes, and
    every version it holds after the batch (none: quarantined, so its lots go)."""

    new_versions: list[StoredVersion]
    versions: list[Version]


def recompute_rows(
    store: ProjectionStore,
    fresh: dict[str, BatchTrace],
    license_events: Sequence[LicenseReport],
    *,
    policy: Policy,
    claims: dict[str, list[Claim]],
    batch_claims: dict[str, list[Claim]],
    also: Sequence[str] = (),
) -> list[TraceRows]:
    """TraceRows for the traces in ``fresh``, for the traces the batch's
    license reports affect, for the traces in ``also`` (whose claims on
    event ids the batch changed: ledger/identity.py), and for the ceiling of
    every license concerned.  ``claims``: the contested claims on the fresh
    traces' event ids; ``batch_claims``: those the batch adds.  Call it
    holding the store's batch lock, and commit its rows before releasing it.

    Loads what the evaluation needs, evaluates once (ledger/evaluation.py),
    and turns the result into rows.
    """
    versions = {t: b.versions for t, b in fresh.items()}
    touched = sorted({e.license_id for e in license_events})

    # Traces whose lots cite a license this batch reports about.
    affected = {r["trace_id"] for r in store.license_lots(touched)} if touched else set()
    affected = sorted((affected | set(also)) - set(versions))
    if affected:
        held = store.load_versions(affected)
        for trace_id in affected:
            versions[trace_id] = rebuild_trace(trace_id, held[trace_id]).versions()
        wanted = sorted({v.event_id for t in affected for v in versions[t]})
        claims = {**contested(store.event_claims(wanted) if wanted else {}, batch_claims), **claims}

    # A lot that cited a license before this batch may cite none now (its
    # export was retracted): that license's ceiling must be recounted too.
    # So may a lot of a trace whose export another trace now holds (``also``).
    changed = sorted(set(fresh) | set(also))
    before = {r["license_id"] for r in (store.trace_lots(changed) if changed else []) if r["license_id"]}
    named = licenses_named(v for vs in versions.values() for v in vs)
    loading = sorted(named | before | set(touched))
    stored = store.load_licenses(loading) if loading else []
    evaluation = evaluate(
        versions, policy=policy, claims=claims,
        license_reports=[*(parse_event(p) for p, _d in stored), *license_events],
        licenses=before | set(touched), uses_elsewhere=lambda ids: _stored_uses(store, ids),
    )
    rows = []
    for trace_id in sorted(evaluation.accounts):
        account = evaluation.accounts[trace_id]
        rows.append(TraceRows(
            trace_id=trace_id,
            new_versions=fresh[trace_id].new_versions if trace_id in fresh else [],
            lots=[lot_row(account.lots[k]) for k in sorted(account.lots)],
            steps=[step_row(a) for a in evaluation.steps[trace_id]],
        ))
    # Written even when empty: it clears a ceiling alert that no longer stands.
    rows.extend(TraceRows(pseudo, [], [], [step_row(a) for a in steps])
                for pseudo, steps in evaluation.license_steps.items())
    return rows


def recount_licenses(store: ProjectionStore, license_ids: Sequence[str], *, policy: Policy) -> list[TraceRows]:
    """TraceRows of ``license:<id>`` for each of ``license_ids``: its ceiling
    counted over every lot the store holds, and the steps on its reports.
    What a rebuild in shares does once the shares are in one store
    (consumers/parallel_rebuild.py): each share counted only its own lots."""
    stored = store.load_licenses(list(license_ids))
    evaluation = evaluate({}, policy=policy, license_reports=[parse_event(p) for p, _d in stored],
                          licenses=license_ids, uses_elsewhere=lambda ids: _stored_uses(store, ids))
    return [TraceRows(pseudo, [], [], [step_row(a) for a in steps])
            for pseudo, steps in evaluation.license_steps.items()]


def _stored_uses(store: ProjectionStore, license_ids: list[str]) -> list[LicenseUse]:
    """The shipments citing these licenses, as the lot rows hold them; the
    evaluation replaces those of the traces it evaluates."""
    return [
        LicenseUse(row["trace_id"], row["lot_id"], row["opened_by"], parse_ts(row["shipped_at"]),
                   Decimal(row["shipped"]), row["unit"], license_id=row["license_id"])
        for row in store.license_lots(license_ids)
        if uses_license(row["origin"])
    ]
