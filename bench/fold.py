"""Micro-benchmark of the pure domain fold (no store, no log).

Loads a generated history, groups the parsed reports by trace into the
versions the projection holds (``Trace.record`` with each report's content
digest, as ``projections.rows.rebuild_trace`` does), then times the one
evaluation (ledger/evaluation.py ``evaluate``: accounts, alert steps with
the license premises, ceilings) of every trace with every license report,
and the rows (``lot_row``/``step_row``) made of it.

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

from ledger.alerts import alerts_as_of
from ledger.evaluation import evaluate, licenses_named
from ledger.events import LicenseGranted, LicenseRevoked, content_digest, parse_event
from ledger.licenses import LicenseBook
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
    evaluation = evaluate(versions, policy=policy, license_reports=licenses)
    evaluated = time.perf_counter()
    lots = steps = 0
    for trace_id, account in evaluation.accounts.items():
        lot_rows = [lot_row(account.lots[k]) for k in sorted(account.lots)]
        step_rows = [step_row(a) for a in evaluation.steps[trace_id]]
        lots += len(lot_rows)
        steps += len(step_rows)
    return {"evaluate_s": evaluated - started, "rows_s": time.perf_counter() - evaluated, "lots": lots,
            "steps": steps}


def digest(versions: dict[str, list[Any]], licenses: list[Any], policy: Policy) -> dict[str, Any]:
    """Canonical digests of everything the fold produces (see the module doc).

    "rows", "as_of_sample" and "books" are spelled as before the evaluation
    was one function (issue 17), so digests of the two compare; the
    "ceilings" digest now holds the license pseudo traces' steps as the
    projection stores them (ceiling and license-report steps)."""
    with_book = evaluate(versions, policy=policy, license_reports=licenses)
    plain = evaluate(versions, policy=policy)
    book = LicenseBook.from_events(licenses)
    by_license: dict[str, list[Any]] = {}
    for event in licenses:
        by_license.setdefault(event.license_id, []).append(event)
    total = hashlib.sha256()
    per_trace: dict[str, str] = {}
    sample = hashlib.sha256()
    for index, (trace_id, trace_versions) in enumerate(versions.items()):
        account = with_book.accounts[trace_id]
        rows = ([lot_row(account.lots[k]) for k in sorted(account.lots)],
                [step_row(a) for a in with_book.steps[trace_id]],
                [step_row(a) for a in plain.steps[trace_id]])
        text = repr(rows).encode()
        per_trace[trace_id] = hashlib.sha256(text).hexdigest()
        total.update(text)
        if index % 37 == 0:
            # As-of and known-at answers at a few instants around the trace's reports.
            times = sorted(v.event.occurred_at for v in trace_versions)
            recorded = sorted(v.recorded_at for v in trace_versions)
            cited = [e for i in sorted(licenses_named(trace_versions)) for e in by_license.get(i, [])]
            for as_of in (times[0], times[len(times) // 2], times[-1] + timedelta(days=100)):
                for known_at in (None, recorded[len(recorded) // 2]):
                    then = evaluate({trace_id: trace_versions}, policy=policy, as_of=as_of, known_at=known_at,
                                    license_reports=cited)
                    acct = then.accounts[trace_id]
                    standing = alerts_as_of(then.steps[trace_id], as_of)
                    sample.update(repr(([lot_row(acct.lots[k]) for k in sorted(acct.lots)],
                                        [step_row(a) for a in standing], acct.findings)).encode())
    books = hashlib.sha256()
    at_times = [datetime(y, m, 1, tzinfo=timezone.utc) for y in range(2018, 2027) for m in (1, 7)]
    for license_id in book.ids():
        books.update(_canon(book.get(license_id)).encode())
        for at in at_times:
            books.update(_canon(book.get(license_id, at=at)).encode())
    ceilings = hashlib.sha256()
    for pseudo, steps in with_book.license_steps.items():
        ceilings.update(repr((pseudo, [step_row(a) for a in steps])).encode())
    return {"rows": total.hexdigest(), "as_of_sample": sample.hexdigest(), "books": books.hexdigest(),
            "ceilings": ceilings.hexdigest(), "traces": len(per_trace), "per_trace": per_trace}


def _canon(license: Any) -> str:
    """A license's repr with its sets sorted (a frozenset's repr depends on the hash seed)."""
    if license is None:
        return "None"
    fields = {name: getattr(license, name) for name in license.__slots__}
    return repr({k: sorted(v) if isinstance(v, frozenset) else v for k, v in fields.items()})


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
    best = {k: min(r[k] for r in runs) for k in ("evaluate_s", "rows_s")}
    fold_s = min(r["evaluate_s"] + r["rows_s"] for r in runs)
    lots, steps = runs[0]["lots"], runs[0]["steps"]
    n = len(versions)
    result = {
        "traces": n, "versions": n_versions, "lots": lots, "steps": steps, "license_reports": len(licenses),
        "fold_s": round(fold_s, 3),
        "per_trace_us": round(fold_s / n * 1e6, 1),
        "evaluate_us_per_trace": round(best["evaluate_s"] / n * 1e6, 1),
        "evaluate_us_per_version": round(best["evaluate_s"] / n_versions * 1e6, 2),
        "rows_us_per_trace": round(best["rows_s"] / n * 1e6, 1),
        "rows_us_per_row": round(best["rows_s"] / max(lots + steps, 1) * 1e6, 2),
        "runs_fold_s": [round(r["evaluate_s"] + r["rows_s"], 3) for r in runs],
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
