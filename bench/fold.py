"""Micro-benchmark of the pure domain fold (no store, no log).

Loads a generated history, groups the parsed reports by trace into the
versions the projection holds (``Trace.record`` with each report's content
digest, as ``projections.trace_projection.rebuild_trace`` does), then times,
for every trace: ``build_account``, ``alert_steps`` (with the license book,
as the projection runs it) and the rows (``lot_row``/``step_row``); and
``LicenseBook.from_events`` over every license report.

``--digest PATH`` also writes a canonical digest of every trace's lot rows
and alert step rows, of as-of / known-at accounts and alerts for a sample of
traces, of the license book (latest and in force at sample times) and of the
ceiling steps of every license: two runs with the same digest computed the
same results.

    python -m bench.fold [--size 100k] [--seed 1] [--repeat 3] [--digest PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ledger.account import build_account
from ledger.alerts import alert_steps, alerts_as_of
from ledger.events import LicenseGranted, LicenseRevoked, content_digest, parse_event
from ledger.licenses import LicenseBook, LicenseUse, ceiling_steps
from ledger.policy import Policy
from ledger.trace import Trace
from projections.rows import lot_row, step_row

DATA = Path(__file__).parent / "data"


def load(path: Path) -> tuple[dict[str, list[Any]], list[Any]]:
    traces: dict[str, Trace] = {}
    licenses: list[Any] = []
    with path.open("rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            event = parse_event(line)
            if isinstance(event, (LicenseGranted, LicenseRevoked)):
                licenses.append(event)
                continue
            trace = traces.get(event.trace_id)
            if trace is None:
                trace = traces[event.trace_id] = Trace(event.trace_id)
            trace.record(event, content_digest(event))
    return {t: traces[t].versions() for t in sorted(traces)}, licenses


def forget_spellings() -> None:
    """Empty the remembered spellings (if this version of the code has them): each pass starts cold,
    as a replay spells each trace's rows once."""
    import ledger.quantity
    import projections.rows

    for module in (ledger.quantity, projections.rows):
        getattr(module, "_SPELLED", {}).clear()


def fold_once(versions: dict[str, list[Any]], licenses: list[Any], policy: Policy) -> dict[str, float]:
    forget_spellings()
    started = time.perf_counter()
    book = LicenseBook.from_events(licenses)
    book_s = time.perf_counter() - started
    account_s = alerts_s = rows_s = 0.0
    lots = steps = 0
    clock = time.perf_counter
    for trace_id, trace_versions in versions.items():
        t0 = clock()
        account = build_account(trace_id, trace_versions)
        t1 = clock()
        alerts = alert_steps(account, policy, book)
        t2 = clock()
        lot_rows = [lot_row(account.lots[k]) for k in sorted(account.lots)]
        step_rows = [step_row(a) for a in alerts]
        t3 = clock()
        account_s += t1 - t0
        alerts_s += t2 - t1
        rows_s += t3 - t2
        lots += len(lot_rows)
        steps += len(step_rows)
    return {"book_s": book_s, "account_s": account_s, "alerts_s": alerts_s, "rows_s": rows_s,
            "lots": lots, "steps": steps}


def digest(versions: dict[str, list[Any]], licenses: list[Any], policy: Policy) -> dict[str, Any]:
    """Canonical digests of everything the fold produces (see the module doc)."""
    book = LicenseBook.from_events(licenses)
    by_license: dict[str, list[Any]] = {}
    for event in licenses:
        by_license.setdefault(event.license_id, []).append(event)
    total = hashlib.sha256()
    per_trace: dict[str, str] = {}
    uses: dict[str, list[LicenseUse]] = {}
    sample = hashlib.sha256()
    for index, (trace_id, trace_versions) in enumerate(versions.items()):
        account = build_account(trace_id, trace_versions)
        rows = ([lot_row(account.lots[k]) for k in sorted(account.lots)],
                [step_row(a) for a in alert_steps(account, policy, book)],
                [step_row(a) for a in alert_steps(account, policy)])
        text = repr(rows).encode()
        per_trace[trace_id] = hashlib.sha256(text).hexdigest()
        total.update(text)
        for lot in account.lots.values():
            if lot.license_id:
                uses.setdefault(lot.license_id, []).append(
                    LicenseUse(trace_id, lot.lot_id, lot.opened_by, lot.shipped_at, lot.shipped, lot.unit))
        if index % 37 == 0:
            # As-of and known-at answers at a few instants around the trace's reports.
            times = sorted(v.event.occurred_at for v in trace_versions)
            recorded = sorted(v.recorded_at for v in trace_versions)
            for as_of in (times[0], times[len(times) // 2], times[-1] + timedelta(days=100)):
                for known_at in (None, recorded[len(recorded) // 2]):
                    acct = build_account(trace_id, trace_versions, as_of=as_of, known_at=known_at)
                    sub = licenses_book_as_of(by_license, acct, as_of, known_at)
                    standing = alerts_as_of(alert_steps(acct, policy, sub), as_of)
                    sample.update(repr(([lot_row(acct.lots[k]) for k in sorted(acct.lots)],
                                        [step_row(a) for a in standing], acct.findings)).encode())
    books = hashlib.sha256()
    at_times = [datetime(y, m, 1, tzinfo=timezone.utc) for y in range(2018, 2027) for m in (1, 7)]
    for license_id in book.ids():
        books.update(_canon(book.get(license_id)).encode())
        for at in at_times:
            books.update(_canon(book.get(license_id, at=at)).encode())
    ceilings = hashlib.sha256()
    for license_id in sorted(uses):
        license = book.get(license_id)
        if license is not None:
            ceilings.update(repr([step_row(a) for a in ceiling_steps(license, uses[license_id])]).encode())
    return {"rows": total.hexdigest(), "as_of_sample": sample.hexdigest(), "books": books.hexdigest(),
            "ceilings": ceilings.hexdigest(), "traces": len(per_trace), "per_trace": per_trace}


def _canon(license: Any) -> str:
    """A license's repr with its sets sorted (a frozenset's repr depends on the hash seed)."""
    if license is None:
        return "None"
    fields = {name: getattr(license, name) for name in license.__slots__}
    return repr({k: sorted(v) if isinstance(v, frozenset) else v for k, v in fields.items()})


def licenses_book_as_of(by_license: dict[str, list[Any]], account: Any, as_of: datetime,
                        known_at: datetime | None) -> LicenseBook:
    """The licenses the account's lots cite, as the as-of answer reads them (projections/queries.py)."""
    ids = sorted({lot.license_id for lot in account.lots.values() if lot.license_id})
    events = [e for i in ids for e in by_license.get(i, [])]
    return LicenseBook.from_events(events, as_of=as_of, known_at=known_at)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--digest", type=Path, help="write the canonical digest of the results here")
    parser.add_argument("--compare", type=Path, help="compare the digest with this earlier one")
    parser.add_argument("--profile", type=Path, help="write a cProfile of one fold pass here")
    args = parser.parse_args(argv)
    path = DATA / f"history-{args.size}-seed{args.seed}.jsonl"
    started = time.perf_counter()
    versions, licenses = load(path)
    load_s = time.perf_counter() - started
    n_versions = sum(len(v) for v in versions.values())
    print(f"loaded {path.name}: {len(versions)} traces, {n_versions} versions, {len(licenses)} license reports "
          f"in {load_s:.1f} s", file=sys.stderr)
    policy = Policy()
    if args.profile:
        import cProfile

        cProfile.runctx("fold_once(versions, licenses, policy)", globals(), locals(), str(args.profile))
    runs = [fold_once(versions, licenses, policy) for _ in range(args.repeat)]
    best = {k: min(r[k] for r in runs) for k in ("book_s", "account_s", "alerts_s", "rows_s")}
    fold_s = min(r["account_s"] + r["alerts_s"] + r["rows_s"] for r in runs)
    lots, steps = runs[0]["lots"], runs[0]["steps"]
    n = len(versions)
    result = {
        "traces": n, "versions": n_versions, "lots": lots, "steps": steps, "license_reports": len(licenses),
        "fold_s": round(fold_s, 3),
        "per_trace_us": round(fold_s / n * 1e6, 1),
        "build_account_us_per_trace": round(best["account_s"] / n * 1e6, 1),
        "build_account_us_per_version": round(best["account_s"] / n_versions * 1e6, 2),
        "alert_steps_us_per_trace": round(best["alerts_s"] / n * 1e6, 1),
        "rows_us_per_trace": round(best["rows_s"] / n * 1e6, 1),
        "rows_us_per_row": round(best["rows_s"] / max(lots + steps, 1) * 1e6, 2),
        "license_book_s": round(best["book_s"], 4),
        "license_book_us_per_report": round(best["book_s"] / max(len(licenses), 1) * 1e6, 2),
        "runs_fold_s": [round(r["account_s"] + r["alerts_s"] + r["rows_s"], 3) for r in runs],
    }
    print(json.dumps(result, indent=1))
    if args.digest or args.compare:
        found = digest(versions, licenses, policy)
        if args.digest:
            args.digest.write_text(json.dumps(found, indent=0, sort_keys=True))
        summary = {k: v for k, v in found.items() if k != "per_trace"}
        print(json.dumps({"digest": summary}, indent=1))
        if args.compare:
            before = json.loads(args.compare.read_text())
            differing = [t for t, d in found["per_trace"].items() if before["per_trace"].get(t) != d]
            same = all(before[k] == found[k] for k in summary) and not differing
            print(json.dumps({"identical": same, "differing_traces": differing[:20]}, indent=1))
            return 0 if same else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
