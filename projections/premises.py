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
whenever a lot citing the license changes or the license itself does.

Several projectors (a Kafka consumer group) commit concurrently, each in its
own transaction, and a license and the export citing it may sit in different
partitions: each side could compute without seeing the other's uncommitted
report.  So after its commit a batch *settles*: it re-reads what its rows
depended on and, if another projector changed it meanwhile, recomputes and
commits again.  Whoever commits last has re-read after every earlier commit,
so the stored rows end up as if the reports had arrived in one order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.account import TraceAccount
from ledger.alerts import alert_steps
from ledger.events import parse_event
from ledger.licenses import LicenseBook, LicenseUse, ceiling_steps, ceiling_trace_id
from ledger.policy import Policy
from projections.rows import lot_row, parse_ts, step_row
from projections.store import ProjectedBatch, ProjectionStore, TraceRows

__all__ = ["recompute_rows", "settle", "Recomputed", "license_book", "licenses_as_of", "SETTLE_ROUNDS_MAX"]

SETTLE_ROUNDS_MAX = 8  # each round re-reads after the previous commit; contention ends long before


@dataclass(slots=True)
class Recomputed:
    """The rows a batch writes, and what they were computed from (for ``settle``)."""

    rows: list[TraceRows] = field(default_factory=list)
    licenses_used: frozenset[tuple[str, str]] = frozenset()  # (payload, digest) of the concerned licenses
    concerned: list[str] = field(default_factory=list)  # license ids whose reports the rows depend on
    touched: list[str] = field(default_factory=list)  # license ids the batch brought reports about
    traces: dict[str, frozenset[str]] = field(default_factory=dict)  # trace -> digests computed from
    foreign: list[str] = field(default_factory=list)  # traces recomputed without a report of their own
    ceilings: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # license -> steps written


def license_book(payloads: Iterable[tuple[str, str]], extra: Iterable[Any] = ()) -> LicenseBook:
    """A LicenseBook from stored (payload, digest) pairs and events not yet stored."""
    events = [parse_event(payload) for payload, _digest in payloads]
    return LicenseBook.from_events([*events, *extra])


def licenses_as_of(store: ProjectionStore, account: TraceAccount, *, as_of: datetime | None,
                   known_at: datetime | None) -> LicenseBook:
    """The licenses one trace's lots cite, as granted by ``as_of`` and known at ``known_at``."""
    ids = sorted({lot.license_id for lot in account.lots.values() if lot.license_id})
    events = [parse_event(payload) for payload, _digest in store.load_licenses(ids)] if ids else []
    return LicenseBook.from_events(events, as_of=as_of, known_at=known_at)


def recompute_rows(
    store: ProjectionStore,
    fresh: dict[str, tuple[list[tuple[str, str, str, str]], TraceAccount]],
    license_events: Sequence[Any],
    *,
    policy: Policy,
    rebuild: Any,
    digests: dict[str, frozenset[str]] | None = None,
) -> Recomputed:
    """TraceRows for the traces in ``fresh`` (trace id -> (new versions, account)),
    for the traces the batch's license reports affect, and for the ceiling of
    every license concerned.  ``rebuild(trace_id, stored_versions)`` gives a
    Trace; ``digests`` (trace id -> digests of the versions) lets ``settle``
    check later that nobody changed a trace under us."""
    accounts = {t: acct for t, (_v, acct) in fresh.items()}
    new_versions = {t: v for t, (v, _acct) in fresh.items()}
    used_digests = dict(digests or {})
    touched = sorted({e.license_id for e in license_events})

    # Traces whose lots cite a license this batch reports about.
    affected = sorted({r["trace_id"] for r in store.license_lots(touched)} - set(accounts)) if touched else []
    if affected:
        stored = store.load_versions(affected)
        for trace_id in affected:
            accounts[trace_id] = rebuild(trace_id, stored[trace_id]).account()
            new_versions[trace_id] = []
            used_digests[trace_id] = frozenset(d for _p, d in stored[trace_id])

    cited = {lot.license_id for a in accounts.values() for lot in a.lots.values() if lot.license_id}
    # A lot that cited a license before this batch may cite none now (its
    # export was retracted): that license's ceiling must be recounted too.
    before = {r["license_id"] for r in (store.trace_lots(sorted(fresh)) if fresh else []) if r["license_id"]}
    concerned = sorted(cited | before | set(touched))
    stored_licenses = store.load_licenses(concerned) if concerned else []
    book = license_book(stored_licenses, license_events)
    used_licenses = {*stored_licenses, *((e.model_dump_json(), _digest(e)) for e in license_events)}

    out = Recomputed(concerned=concerned, touched=touched, foreign=affected,
                     licenses_used=frozenset(used_licenses))
    for trace_id in sorted(accounts):
        account = accounts[trace_id]
        out.rows.append(
            TraceRows(
                trace_id=trace_id,
                new_versions=new_versions[trace_id],
                lots=[lot_row(account.lots[k]) for k in sorted(account.lots)],
                steps=[step_row(a) for a in alert_steps(account, policy, book)],
            )
        )
        out.traces[trace_id] = used_digests.get(trace_id, frozenset())
    for rows in _ceiling_rows(store, accounts, book, concerned):
        out.rows.append(rows)
        out.ceilings[rows.trace_id] = rows.steps
    return out


def settle(store: ProjectionStore, done: Recomputed, *, policy: Policy, clock: datetime, rebuild: Any) -> int:
    """After ``done`` was committed: recompute and commit again whatever another
    projector changed under it meanwhile.  Returns the settling commits made."""
    commits = 0
    for _ in range(SETTLE_ROUNDS_MAX):
        stale: set[str] = set()
        if done.concerned:
            now = set(store.load_licenses(done.concerned))
            changed = {json.loads(p)["license_id"] for p, _d in now ^ done.licenses_used}
            if changed:
                stale |= {t for t in done.traces if not t.startswith("license:")}
                stale |= {r["trace_id"] for r in store.license_lots(sorted(changed))}
        if done.foreign:
            stored = store.load_versions(done.foreign)
            stale |= {t for t in done.foreign if frozenset(d for _p, d in stored[t]) != done.traces.get(t)}
        if done.touched:
            stale |= {r["trace_id"] for r in store.license_lots(done.touched)} - set(done.traces)
        ceilings_now = {r.trace_id: r.steps for r in _ceiling_rows(store, {}, _book(store, done.concerned),
                                                                    done.concerned)}
        if not stale and ceilings_now == done.ceilings:
            return commits
        done = _recompute_traces(store, sorted(stale), policy=policy, rebuild=rebuild,
                                 extra_licenses=done.concerned)
        store.commit_batch(ProjectedBatch(traces=done.rows), [], clock)
        commits += 1
    return commits


def _recompute_traces(store: ProjectionStore, trace_ids: list[str], *, policy: Policy, rebuild: Any,
                      extra_licenses: list[str]) -> Recomputed:
    stored = store.load_versions(trace_ids) if trace_ids else {}
    fresh = {t: ([], rebuild(t, stored[t]).account()) for t in trace_ids}
    digests = {t: frozenset(d for _p, d in stored[t]) for t in trace_ids}
    # Re-reading the concerned licenses through a no-op "touch" keeps their
    # ceilings and the traces citing them in this round's check.
    done = recompute_rows(store, fresh, [], policy=policy, rebuild=rebuild, digests=digests)
    if extra_licenses and set(extra_licenses) - set(done.concerned):
        concerned = sorted(set(done.concerned) | set(extra_licenses))
        book = _book(store, concerned)
        done.concerned = concerned
        done.licenses_used = frozenset(store.load_licenses(concerned))
        done.rows = [r for r in done.rows if not r.trace_id.startswith("license:")]
        done.ceilings = {}
        for rows in _ceiling_rows(store, {}, book, concerned):
            done.rows.append(rows)
            done.ceilings[rows.trace_id] = rows.steps
    done.foreign = [t for t in trace_ids]
    return done


def _book(store: ProjectionStore, license_ids: list[str]) -> LicenseBook:
    return license_book(store.load_licenses(license_ids) if license_ids else [])


def _digest(event: Any) -> str:
    from ledger.events import content_digest

    return content_digest(event)


def _ceiling_rows(store: ProjectionStore, accounts: dict[str, TraceAccount], book: LicenseBook,
                  license_ids: list[str]) -> list[TraceRows]:
    if not license_ids:
        return []
    # Only licenses with a ceiling need their uses read (a bulk license may be
    # cited by many thousands of lots); the others get empty rows, which
    # clear a ceiling alert an amendment removed.
    with_ceiling = [i for i in license_ids if (book.get(i) is not None and book.get(i).ceiling is not None)]
    uses: dict[str, list[LicenseUse]] = {i: [] for i in with_ceiling}
    for row in store.license_lots(with_ceiling) if with_ceiling else []:
        if row["trace_id"] in accounts:
            continue  # stale: recomputed in this batch
        uses[row["license_id"]].append(
            LicenseUse(row["trace_id"], row["lot_id"], row["opened_by"], parse_ts(row["shipped_at"]),
                       Decimal(row["shipped"]), row["unit"])
        )
    for trace_id, account in accounts.items():
        for lot in account.lots.values():
            if lot.license_id in uses:
                uses[lot.license_id].append(
                    LicenseUse(trace_id, lot.lot_id, lot.opened_by, lot.shipped_at, lot.shipped, lot.unit)
                )
    out = []
    for license_id in license_ids:
        license = book.get(license_id)
        steps = ceiling_steps(license, uses[license_id]) if license_id in uses and license else []
        # Written even when empty: it clears a ceiling alert that no longer stands.
        out.append(TraceRows(ceiling_trace_id(license_id), [], [], [step_row(a) for a in steps]))
    return out
