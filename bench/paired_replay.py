"""`ledger replay` of this code against another checkout's, paired, with
DuckDB's account of the same history in the same run (issue 18).

    git worktree add --detach /tmp/speed-base main && (cd /tmp/speed-base && make .venv/.installed)
    LEDGER_HOME=/tmp/h100k ledger ingest bench/data/history-100k-seed1.jsonl --trust-recorded-at
    python -m bench.paired_replay --base /tmp/speed-base --home /tmp/h100k \\
        --jsonl bench/data/history-100k-seed1.jsonl [--rounds 3]

Each round runs DuckDB (in a process of its own: load + query, every
thread's CPU, as bench/duckdb_baseline.py counts it), then `ledger replay --json` on the same home with each code, in turn (the
order alternates between rounds, so neither always runs on a warmer or a
busier machine), each code with its own virtualenv.  A replay leaves the
live store as it was, so every run replays the same log against the same
store.  Per replay: its CPU (user + system) and peak RSS, from wait4 on the
process itself (this process stays small: Linux counts the memory of the
process a child was forked from in the child's peak), and its answer: every run must say "identical" with the
same fingerprints, or the pairing measured two different things.

Prints a JSON object (medians and ratios) and writes it to
bench/data/results-paired-replay-<jsonl stem>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROUNDS_DEFAULT = 3
REPLAY_TIMEOUT_S = 3_600  # 1M takes minutes; 5M about an hour


def replay_once(tree: Path, home: Path) -> dict[str, Any]:
    """``ledger replay --json`` with the code and virtualenv of ``tree``: CPU, peak RSS, answer."""
    python = tree / ".venv" / "bin" / "python"
    env = {**os.environ, "LEDGER_HOME": str(home), "NO_COLOR": "1"}
    for name in ("LEDGER_LOG", "LEDGER_STORE", "LEDGER_POLICY", "PYTHONPATH"):
        env.pop(name, None)
    # One process, as every checkout before `--workers` replayed: CPU against CPU
    # (bench/parallel_replay.py measures what more processes buy in wall time).
    workers = ["--workers", "1"] if (tree / "consumers" / "parallel_rebuild.py").exists() else []
    started = time.perf_counter()
    process = subprocess.Popen([str(python), "-m", "consumers.cli", "replay", "--json", *workers], cwd=tree, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = process.stdout.read() if process.stdout is not None else ""
    # wait4 on this child alone: RUSAGE_CHILDREN's peak RSS is the largest of all children.
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    answer = json.loads(out) if out.strip() else {}
    return {"cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "user_s": round(usage.ru_utime, 2),
            "sys_s": round(usage.ru_stime, 2), "wall_s": round(time.perf_counter() - started, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit": process.returncode,
            "identical": answer.get("identical"), "records": answer.get("records"),
            "fingerprint": answer.get("fingerprint")}


def duckdb_once(jsonl: Path, threads: int | None) -> dict[str, Any]:
    """DuckDB's account of ``jsonl``, in a child process: its CPU for load + query."""
    command = [sys.executable, "-m", "bench.paired_replay", "--duckdb-once", "--jsonl", str(jsonl)]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=REPLAY_TIMEOUT_S)
    return json.loads(done.stdout)


def commit_of(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return done.stdout.strip() + ("+changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=Path, help="the other checkout (with its own .venv)")
    p.add_argument("--home", type=Path, help="a LEDGER_HOME with the history ingested")
    p.add_argument("--jsonl", type=Path, required=True, help="the history, for DuckDB")
    p.add_argument("--rounds", type=int, default=ROUNDS_DEFAULT)
    p.add_argument("--threads", type=int, help="DuckDB's threads (default: one per core)")
    p.add_argument("--duckdb-once", action="store_true", help=argparse.SUPPRESS)  # the child duckdb_once runs
    args = p.parse_args(argv)
    if args.duckdb_once:
        from bench.duckdb_baseline import duckdb_accounts

        duck = duckdb_accounts(args.jsonl, datetime.now(timezone.utc), threads=args.threads)
        print(json.dumps({"cpu_s": round(duck.load_cpu_s + duck.query_cpu_s, 2), "lots": len(duck.lots)}))
        return 0
    if args.base is None or args.home is None:
        p.error("--base and --home are required")
    trees = {"base": args.base.resolve(), "this": ROOT}
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "this": [], "duckdb": []}
    for round_ in range(args.rounds):
        runs["duckdb"].append(duckdb_once(args.jsonl, args.threads))
        order = ("base", "this") if round_ % 2 == 0 else ("this", "base")
        for name in order:
            runs[name].append(replay_once(trees[name], args.home))
            print(f"round {round_ + 1}: {name} {runs[name][-1]['cpu_s']} s CPU, "
                  f"{runs[name][-1]['peak_rss_mb']} MB; DuckDB {runs['duckdb'][-1]['cpu_s']} s", file=sys.stderr)
    answers = {json.dumps([r["exit"], r["identical"], r["records"], r["fingerprint"]], sort_keys=True)
               for name in ("base", "this") for r in runs[name]}
    median = {name: {key: statistics.median(r[key] for r in rs) for key in ("cpu_s", "peak_rss_mb")
                     if key in rs[0]} for name, rs in runs.items()}
    duck_cpu = min(r["cpu_s"] for r in runs["duckdb"])  # the faster baseline, as bench.run takes
    result = {
        "figure": "paired-replay", "history": str(args.jsonl), "home": str(args.home),
        "code": {name: commit_of(tree) for name, tree in trees.items()},
        "loadavg_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],
        "same_answer": len(answers) == 1, "runs": runs, "median": median,
        "ratios": {
            "this_vs_base_cpu": round(median["this"]["cpu_s"] / median["base"]["cpu_s"], 3),
            "this_vs_base_peak_rss": round(median["this"]["peak_rss_mb"] / median["base"]["peak_rss_mb"], 3),
            "base_vs_duckdb_cpu": round(median["base"]["cpu_s"] / duck_cpu, 2),
            "this_vs_duckdb_cpu": round(median["this"]["cpu_s"] / duck_cpu, 2),
        },
    }
    out = ROOT / "bench" / "data" / f"results-paired-replay-{args.jsonl.stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
    return 0 if result["same_answer"] else 1


if __name__ == "__main__":
    sys.exit(main())
