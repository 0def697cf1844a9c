"""`ledger replay --workers N` against `--workers 1`, paired, and what N
processes would give on a machine with more cores (issue 18).

    LEDGER_HOME=/tmp/h1m ledger ingest bench/data/history-1M-seed1.jsonl
    python -m bench.parallel_replay --home /tmp/h1m [--workers 2] [--rounds 2] [--model 2,4,8]

Measured: each round runs `ledger replay --json` with one worker and with N,
in turn (the order alternates between rounds), on the same home.  Per run:
wall time; CPU, user + system, of the replay and its workers (wait4 on the
replay, which waits for its workers); the peak of the resident memory of
the replay and its workers together (their RSS summed, sampled every 50 ms
from /proc); and the answer: every run must say "identical" with the same
fingerprints.

Modelled: the parts of a replay, each timed alone in this process on the
same home (no other work beside it, so each is what it takes on a core of
its own): the parent's work while the workers run (the log's digest check,
the live store's fingerprint and integrity check); each worker's share,
the log cut into M key ranges and each range rebuilt alone; the parent's
work after them (copying the shares into one store, counting what crosses
traces, the rebuilt store's fingerprint and integrity check); and the start
of a worker process.  With M cores:

    wall(M) = start + meanwhile + the parent's work after
    meanwhile = max(the parent's check, the largest share,
                    (the parent's check + every share) / M)

(the last term: the parent and M workers share M cores).

The model is checked against the measured wall at N before it is believed
at 8.  Prints a JSON object and writes bench/data/results-parallel-replay-<home>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROUNDS_DEFAULT = 2
MODEL_DEFAULT = "2,4,8"
RSS_SAMPLE_S = 0.05
REPLAY_TIMEOUT_S = 3_600


def _tree_rss_mb(pid: int) -> float:
    """The resident memory of ``pid`` and its descendants, summed (MB)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            with open(f"/proc/{p}/task/{p}/children") as f:
                stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def replay_once(home: Path, workers: int) -> dict[str, Any]:
    """``ledger replay --json --workers N`` on ``home``: wall, CPU, peak summed RSS, answer."""
    env = {**os.environ, "LEDGER_HOME": str(home), "NO_COLOR": "1"}
    for name in ("LEDGER_LOG", "LEDGER_STORE", "LEDGER_POLICY", "PYTHONPATH"):
        env.pop(name, None)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "consumers.cli", "replay", "--json", "--workers", str(workers)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(RSS_SAMPLE_S):
            peak[0] = max(peak[0], _tree_rss_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = process.stdout.read() if process.stdout is not None else ""
    _pid, status, usage = os.wait4(process.pid, 0)
    done.set()
    sampler.join()
    wall = time.perf_counter() - started
    answer = json.loads(out) if out.strip() else {}
    return {"workers": workers, "wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb_summed": round(peak[0], 1), "peak_rss_mb_largest": round(usage.ru_maxrss / 1024, 1),
            "exit": os.waitstatus_to_exitcode(status), "identical": answer.get("identical"),
            "records": answer.get("records"), "fingerprint": answer.get("fingerprint")}


def _timed(work) -> tuple[Any, float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def model(home: Path, cores: list[int]) -> dict[str, Any]:
    """Each part of a replay timed alone; the wall time at each number of cores."""
    from consumers.log.embedded import EmbeddedLog
    from consumers.log_check import verify_log
    from consumers.parallel_rebuild import WORKER_CHUNK_RECORDS, Share, rebuild_share, recount_across_traces
    from consumers.projector import collecting_less, record_rebuilt_offsets, utc_now
    from ledger.policy import Policy
    from projections.sqlite_store import SQLiteProjectionStore

    log = EmbeddedLog(home / "log.db")
    live = SQLiteProjectionStore(home / "projections.db")
    parts: dict[str, Any] = {}
    with log.snapshot():
        _check, parts["check_log_s"] = _timed(lambda: verify_log(log, contract=False))
        _fp, parts["live_fingerprint_s"] = _timed(live.fingerprint)
        _i, parts["live_integrity_s"] = _timed(live.integrity_problems)
    parties = live.registered_parties()
    live.close()
    below = log.end_offsets()
    start = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); "
                            "import consumers.parallel_rebuild; print(time.perf_counter() - t)"],
                           cwd=ROOT, capture_output=True, text=True, check=True)
    parts["worker_start_s"] = round(float(start.stdout) + 0.05, 3)  # the import, and about 50 ms to spawn
    by_cores: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="parallel-replay-") as scratch:
        for m in cores:
            shares = log.key_ranges(below, m)
            paths = [Path(scratch) / f"m{m}.share-{i}" for i in range(len(shares))]
            share_s = []
            for i, (keys, path) in enumerate(zip(shares, paths)):
                job = Share(i, str(log.path), str(path), keys, below, parties, Policy(), WORKER_CHUNK_RECORDS,
                            True)
                _done, seconds = _timed(lambda: rebuild_share(job))
                share_s.append(round(seconds, 2))
            store = SQLiteProjectionStore(Path(scratch) / f"m{m}.db")
            store.register_parties(parties)

            def after() -> None:
                store.absorb(list(zip(paths, shares)))
                with collecting_less():
                    recount_across_traces(store, policy=Policy(), clock=utc_now)
                record_rebuilt_offsets(log, store, below, utc_now)
                store.fingerprint()
                store.integrity_problems()

            _none, after_s = _timed(after)
            store.close()
            for path in [*paths, Path(scratch) / f"m{m}.db"]:
                for suffix in ("", "-wal", "-shm", ".lock"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            parent_check = parts["check_log_s"] + parts["live_fingerprint_s"] + parts["live_integrity_s"]
            # While the workers run, the parent checks: M + 1 processes on M cores.
            meanwhile = max(parent_check, max(share_s), (parent_check + sum(share_s)) / m)
            by_cores[str(m)] = {
                "shares": len(shares), "share_s": share_s, "after_s": round(after_s, 2),
                "meanwhile_s": round(meanwhile, 2),
                "wall_s": round(parts["worker_start_s"] + meanwhile + after_s, 2),
            }
    log.close()
    parts = {k: round(v, 2) if isinstance(v, float) else v for k, v in parts.items()}
    return {"parts": parts, "cores": by_cores}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, required=True, help="a LEDGER_HOME with a history ingested")
    p.add_argument("--workers", type=int, default=2, help="the N measured against 1 (default: 2)")
    p.add_argument("--rounds", type=int, default=ROUNDS_DEFAULT)
    p.add_argument("--model", default=MODEL_DEFAULT, metavar="M,M,...",
                   help=f"the numbers of cores to model (default: {MODEL_DEFAULT}; empty: none)")
    args = p.parse_args(argv)
    runs: dict[str, list[dict[str, Any]]] = {"1": [], str(args.workers): []}
    for round_ in range(args.rounds):
        order = (1, args.workers) if round_ % 2 == 0 else (args.workers, 1)
        for workers in order:
            run = replay_once(args.home, workers)
            runs[str(workers)].append(run)
            print(f"round {round_ + 1}: --workers {workers}: {run['wall_s']} s wall, {run['cpu_s']} s CPU, "
                  f"{run['peak_rss_mb_summed']} MB", file=sys.stderr)
    answers = {json.dumps([r["exit"], r["identical"], r["records"], r["fingerprint"]], sort_keys=True)
               for rs in runs.values() for r in rs}
    median = {n: {k: round(statistics.median(r[k] for r in rs), 2) for k in ("wall_s", "cpu_s", "peak_rss_mb_summed")}
              for n, rs in runs.items()}
    one, many = median["1"], median[str(args.workers)]
    result: dict[str, Any] = {
        "figure": "parallel-replay", "home": str(args.home), "records": runs["1"][0]["records"],
        "cpus": len(os.sched_getaffinity(0)), "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "same_answer": len(answers) == 1, "runs": runs, "median": median,
        "speed_up_wall": round(one["wall_s"] / many["wall_s"], 2),
        "cpu_ratio": round(many["cpu_s"] / one["cpu_s"], 2),
        "memory_ratio": round(many["peak_rss_mb_summed"] / one["peak_rss_mb_summed"], 2),
    }
    cores = [int(m) for m in args.model.split(",") if m.strip()]
    if cores:
        print("modelling " + ", ".join(map(str, cores)) + " cores: each part alone...", file=sys.stderr)
        modelled = model(args.home, cores)
        one_core = (modelled["parts"]["check_log_s"] + modelled["parts"]["live_fingerprint_s"]
                    + modelled["parts"]["live_integrity_s"])
        result["model"] = modelled
        result["model"]["speed_up_wall"] = {m: round(one["wall_s"] / c["wall_s"], 2)
                                            for m, c in modelled["cores"].items()}
        result["model"]["parent_check_s"] = round(one_core, 2)
    out = ROOT / "bench" / "data" / f"results-parallel-replay-{args.home.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
    return 0 if result["same_answer"] else 1


if __name__ == "__main__":
    sys.exit(main())
