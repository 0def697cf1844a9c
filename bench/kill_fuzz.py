"""Random SIGKILLs of `ledger ingest` and `ledger project` against a clean run (issue 14).

    python -m bench.kill_fuzz --events 10000 --kills 20 [--seed 1]

Takes a generated history (bench/generate.py), ingests it once cleanly
(the reference), then:

- **ingest**: starts `ledger ingest` on a fresh home and kills it with
  SIGKILL after a random delay, again and again (the same command each
  time, as an operator would re-run it) until a run finishes on its own;
- **project**: records the log without projecting, then kills `ledger
  project` the same way until a run finishes.

Each ends by comparing with the reference: the log's rows and distinct
(reporter, event id) pairs (nothing lost, nothing twice), the projection
store's fingerprint, and the answers of `whereabouts --json` and
`alerts --json`.  It prints one JSON object: kills landed, runs, and for each
path whether it ended identical.  Exit 1 if either did not.

The delay is drawn uniformly from (0, the clean run's duration): kills land
at the start, mid-batch, mid-commit and during projection alike.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generate import Summary, generate

LEDGER = Path(sys.executable).parent / "ledger"
RUN_TIMEOUT_S = 600  # one clean run of the largest size this is meant for
RUNS_MAX = 200  # a bound on re-runs: each killed run must leave progress behind
QUESTIONS = (("whereabouts", "--json"), ("alerts", "--json"))
NOW = "2026-01-15T12:00:00+00:00"  # answers are asked as of one instant, so runs compare


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LEDGER_LOG", "LEDGER_STORE", "LEDGER_POLICY",
                                                            "COLUMNS", "NO_COLOR")}
    env["LEDGER_HOME"] = str(home)
    return env


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LEDGER), *args], capture_output=True, text=True, env=_env(home),
                          timeout=RUN_TIMEOUT_S)


def _answers(home: Path) -> dict[str, Any]:
    """What the ledger says at the end: log rows, the store's fingerprint, the answers."""
    log = sqlite3.connect(f"file:{home / 'log.db'}?mode=ro", uri=True)
    try:
        rows, distinct = log.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events").fetchone()
    finally:
        log.close()
    from projections.sqlite_store import SQLiteProjectionStore

    store = SQLiteProjectionStore(home / "projections.db")
    try:
        fingerprint = store.fingerprint()
    finally:
        store.close()
    out: dict[str, Any] = {"log_rows": rows, "log_distinct": distinct, "fingerprint": fingerprint}
    for question in QUESTIONS:
        result = _run(home, *question, "--as-of", NOW)
        out[" ".join(question)] = json.loads(result.stdout) if result.returncode == 0 else result.stderr
    return out


def _kill_until_done(home: Path, args: list[str], clean_s: float, rng: random.Random) -> tuple[int, int]:
    """Run ``ledger ARGS`` and SIGKILL it after a random delay until a run ends by itself.
    Returns (kills landed, runs)."""
    kills = runs = 0
    while runs < RUNS_MAX:
        runs += 1
        process = subprocess.Popen([str(LEDGER), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   env=_env(home))
        try:
            process.wait(timeout=rng.uniform(0.0, clean_s))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=RUN_TIMEOUT_S)
            kills += 1
            continue
        if process.returncode not in (0, 3):  # 3: some lines rejected, the rest recorded
            raise RuntimeError(f"ledger {' '.join(args)} exited {process.returncode}: "
                               f"{process.stderr.read().decode()[-2000:] if process.stderr else ''}")
        return kills, runs
    raise RuntimeError(f"ledger {' '.join(args)} did not finish in {RUNS_MAX} runs")


def measure(events: int, kills_wanted: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="ledger-kill-fuzz-"))
    try:
        history = work / "history.jsonl"
        with history.open("w", encoding="utf-8") as out:
            for line in generate(events, seed, Summary()):
                out.write(line + "\n")

        reference = work / "clean"
        started = time.monotonic()
        clean = _run(reference, "ingest", "--trust-recorded-at", str(history))
        clean_s = time.monotonic() - started
        if clean.returncode not in (0, 3):
            raise RuntimeError(f"the clean run failed: {clean.stderr[-2000:]}")
        expected = _answers(reference)

        result: dict[str, Any] = {"events": events, "seed": seed, "clean_run_s": round(clean_s, 2)}
        for path in ("ingest", "project"):
            kills = runs = 0
            identical = True
            rounds = 0
            while kills < kills_wanted // 2 or rounds == 0:
                rounds += 1
                home = work / f"{path}-{rounds}"
                if path == "project":
                    recorded = _run(home, "ingest", "--trust-recorded-at", "--no-project", str(history))
                    if recorded.returncode not in (0, 3):
                        raise RuntimeError(recorded.stderr[-2000:])
                    args = ["project"]
                else:
                    args = ["ingest", "--trust-recorded-at", str(history)]
                landed, ran = _kill_until_done(home, args, clean_s, rng)
                kills, runs = kills + landed, runs + ran
                identical = identical and _answers(home) == expected
                shutil.rmtree(home, ignore_errors=True)
            result[path] = {"kills": kills, "runs": runs, "rounds": rounds, "identical_to_clean_run": identical}
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kill_fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000, help="reports in the generated history")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs to land, half on each path")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    result = measure(args.events, args.kills, args.seed)
    print(json.dumps(result, indent=2))
    return 0 if result["ingest"]["identical_to_clean_run"] and result["project"]["identical_to_clean_run"] else 1


if __name__ == "__main__":
    sys.exit(main())
