"""`ledger ingest` (with its projection) of this code against another
checkout's, paired, with DuckDB's account of the same history in the same
run (issue 18: ingest <= 4x DuckDB's CPU).

    git worktree add --detach /tmp/ingest-base main~1 && (cd /tmp/ingest-base && make .venv/.installed)
    python -m bench.paired_ingest --base /tmp/ingest-base \\
        --jsonl bench/data/history-100k-seed1.jsonl [--rounds 3]

Each round runs DuckDB (a process of its own: load + query, every thread's
CPU, as bench/duckdb_baseline.py counts it), then `ledger ingest FILE
--trust-recorded-at --json` into a fresh home with each code in turn (the
order alternates between rounds), each code with its own virtualenv.  Per
ingest: CPU (user + system) and peak RSS from wait4 on the process itself.
Then, outside the measurement, this code's `ledger replay --json` on each
home: every home must replay "identical", and every home of every round
must hold the same fingerprints, or the pairing measured two different
things.

Prints a JSON object (medians and ratios) and writes it to
bench/data/results-paired-ingest-<jsonl stem>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.paired_replay import commit_of, duckdb_once

ROOT = Path(__file__).resolve().parent.parent
ROUNDS_DEFAULT = 3


def _ledger(tree: Path, home: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    python = tree / ".venv" / "bin" / "python"
    env = {**os.environ, "LEDGER_HOME": str(home), "NO_COLOR": "1"}
    for name in ("LEDGER_LOG", "LEDGER_STORE", "LEDGER_POLICY", "PYTHONPATH"):
        env.pop(name, None)
    process = subprocess.Popen([str(python), "-m", "consumers.cli", *args], cwd=tree, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = process.stdout.read() if process.stdout is not None else ""
    return process, out


def ingest_once(tree: Path, home: Path, jsonl: Path) -> dict[str, Any]:
    """``ledger ingest --json`` into the fresh ``home`` with the code of ``tree``: CPU, peak RSS, counts."""
    started = time.perf_counter()
    process, out = _ledger(tree, home, "ingest", str(jsonl.resolve()), "--trust-recorded-at", "--json")
    # wait4 on this child alone: RUSAGE_CHILDREN's peak RSS is the largest of all children.
    _pid, status, usage = os.wait4(process.pid, 0)
    summary = json.loads(out) if out.strip() else {}
    return {"cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "wall_s": round(time.perf_counter() - started, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit": os.waitstatus_to_exitcode(status),
            "recorded": summary.get("recorded"), "projected_records": summary.get("projected_records")}


def replayed(home: Path) -> dict[str, Any]:
    """This code's ``ledger replay --json`` of ``home``: is its store what its log says, and its fingerprints."""
    process, out = _ledger(ROOT, home, "replay", "--json")
    process.wait()
    answer = json.loads(out) if out.strip() else {}
    return {"identical": answer.get("identical"), "fingerprint": answer.get("fingerprint")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paired_ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="the other checkout, with its .venv")
    parser.add_argument("--jsonl", type=Path, required=True, help="a history from bench/generate.py")
    parser.add_argument("--rounds", type=int, default=ROUNDS_DEFAULT)
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: one per core)")
    args = parser.parse_args(argv)
    trees = {"base": args.base.resolve(), "this": ROOT}
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "this": [], "duckdb": []}
    fingerprints = set()
    scratch = Path(tempfile.mkdtemp(prefix="paired-ingest-"))
    try:
        for round_ in range(args.rounds):
            runs["duckdb"].append(duckdb_once(args.jsonl, args.threads))
            order = ["base", "this"] if round_ % 2 == 0 else ["this", "base"]
            for name in order:
                home = scratch / f"{name}-{round_}"
                run = ingest_once(trees[name], home, args.jsonl)
                run.update(replayed(home))
                fingerprints.add(json.dumps(run["fingerprint"], sort_keys=True))
                runs[name].append(run)
                shutil.rmtree(home)
                print(f"round {round_ + 1} {name}: {run['cpu_s']} s CPU, {run['peak_rss_mb']} MB, "
                      f"replay identical: {run['identical']}", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    median = {name: statistics.median(r["cpu_s"] for r in runs[name]) for name in ("base", "this")}
    duckdb = min(r["cpu_s"] for r in runs["duckdb"])
    result = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "jsonl": str(args.jsonl), "rounds": args.rounds,
        "commits": {name: commit_of(tree) for name, tree in trees.items()},
        "same_answer": len(fingerprints) == 1 and all(r["identical"] and r["exit"] == 0
                                                      for name in ("base", "this") for r in runs[name]),
        "median_cpu_s": median, "duckdb_cpu_s": duckdb,
        "this_over_base": round(median["this"] / median["base"], 3),
        "base_over_duckdb": round(median["base"] / duckdb, 2),
        "this_over_duckdb": round(median["this"] / duckdb, 2),
        "load_average": os.getloadavg(),
        "runs": runs,
    }
    text = json.dumps(result, indent=2)
    print(text)
    out = ROOT / "bench" / "data" / f"results-paired-ingest-{args.jsonl.stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    return 0 if result["same_answer"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
