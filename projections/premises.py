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
from decimal import Decimal
from typing import Any

from ledger.account import TraceAccount
from ledger.alerts import Alert, alert_steps
from ledger.events import parse_event
from ledger.licenses import LicenseBook, LicenseUse, ceiling_steps, ceiling_trace_id, license_report_steps, uses_license
from ledger.policy import Policy
from projections.rows import lot_row, parse_ts, step_row
from projections.store import ProjectionStore, TraceRows

__all__ = ["recompute_rows"]


def recompute_rows(
    store: ProjectionStore,
    fresh: dict[str, tuple[list[tuple[str, str, str, str]], TraceAccount]],
    license_events: Sequence[Any],
    *,
    policy: Policy,
    accounts_for: Any,
    also: Sequence[str] = (),
) -> list[TraceRows]:
    """TraceRows for the traces in ``fresh`` (trace id -> (new versions, account)),
    for the traces the batch's license reports affect, for the traces in
    ``also`` (whose claims on event ids the batch changed: ledger/identity.py),
    and for the ceiling of every license concerned.  ``accounts_for(trace_ids)``
    gives the stored traces' accounts.  Call it holding the store's batch
    lock, and commit its rows before releasing it."""
    accounts = {t: acct for t, (_v, acct) in fresh.items()}
    new_versions = {t: v for t, (v, _acct) in fresh.items()}
    touched = sorted({e.license_id for e in license_events})

    # Traces whose lots cite a license this batch reports about.
    affected = {r["trace_id"] for r in store.license_lots(touched)} if touched else set()
    affected = sorted((affected | set(also)) - set(accounts))
    if affected:
        for trace_id, account in accounts_for(affected).items():
            accounts[trace_id] = account
            new_versions[trace_id] = []

    cited = {lot.license_id for a in accounts.values() for lot in a.lots.values() if lot.license_id}
    # A lot that cited a license before this batch may cite none now (its
    # export was retracted): that license's ceiling must be recounted too.
    # So may a lot of a trace whose export another trace now holds (``also``).
    changed = sorted(set(fresh) | set(also))
    before = {r["license_id"] for r in (store.trace_lots(changed) if changed else []) if r["license_id"]}
    concerned = sorted(cited | before | set(touched))
    events = [*(parse_event(p) for p, _d in (store.load_licenses(concerned) if concerned else [])), *license_events]
    book = LicenseBook.from_events(events, authorities=policy.licensing_authorities)
    conflicts: dict[str, list[Alert]] = {}
    for step in license_report_steps(events, authorities=policy.licensing_authorities):
        conflicts.setdefault(step.trace_id, []).append(step)

    rows = []
    for trace_id in sorted(accounts):
        account = accounts[trace_id]
        rows.append(
            TraceRows(
                trace_id=trace_id,
                new_versions=new_versions[trace_id],
                lots=[lot_row(account.lots[k]) for k in sorted(account.lots)],
                steps=[step_row(a) for a in alert_steps(account, policy, book)],
            )
        )
    rows.extend(_ceiling_rows(store, accounts, book, concerned, conflicts))
    return rows


def _ceiling_rows(store: ProjectionStore, accounts: dict[str, TraceAccount], book: LicenseBook,
                  license_ids: list[str], conflicts: dict[str, list[Alert]] | None = None) -> list[TraceRows]:
    """The rows of each license's pseudo trace: its ceiling steps and its
    conflict steps (``conflicts``: pseudo trace id -> steps), for every
    license in ``license_ids`` whether it has a ceiling or not."""
    if not license_ids:
        return []
    # Only licenses with a ceiling need their uses read (a bulk license may be
    # cited by many thousands of lots); the others get empty rows, which
    # clear a ceiling alert an amendment removed.
    with_ceiling = [i for i in license_ids if (book.get(i) is not None and book.get(i).ceiling is not None)]
    uses: dict[str, list[LicenseUse]] = {i: [] for i in with_ceiling}
    for row in store.license_lots(with_ceiling) if with_ceiling else []:
        if row["trace_id"] in accounts or not uses_license(row["origin"]):
            continue  # stale: recomputed in this batch; or a ship-back
        uses[row["license_id"]].append(
            LicenseUse(row["trace_id"], row["lot_id"], row["opened_by"], parse_ts(row["shipped_at"]),
                       Decimal(row["shipped"]), row["unit"])
        )
    for trace_id, account in accounts.items():
        for lot in account.lots.values():
            if lot.license_id in uses and uses_license(lot.origin):
                uses[lot.license_id].append(
                    LicenseUse(trace_id, lot.lot_id, lot.opened_by, lot.shipped_at, lot.shipped, lot.unit)
                )
    out = []
    for license_id in license_ids:
        license = book.get(license_id)
        steps = ceiling_steps(license, uses[license_id]) if license_id in uses and license else []
        steps = [*steps, *(conflicts or {}).get(ceiling_trace_id(license_id), [])]
        # Written even when empty: it clears a ceiling alert that no longer stands.
        out.append(TraceRows(ceiling_trace_id(license_id), [], [], [step_row(a) for a in steps]))
    return out
