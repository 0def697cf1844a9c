"""Quick before/after runs for BENCHMARKS.md "Chasing the targets": replay the
first N records of an ingested log into a scratch SQLite store, with the
read-and-decode floor of the same records measured in the same run, and
optionally a cProfile summary.

    python -m bench.chase --size 100k --records 30000 [--batch 500] [--clock wall|history] [--profile]

``--clock wall`` (the default) judges every batch at the end of the history,
a backfill in which every transient state is overdue; ``--clock history``
judges each batch at the latest ``occurred_at`` read so far, the stream as it
happened (as ``bench.run latency --clock history``).  ``cpu_s`` is the
process's CPU time over the replay, every thread counted: steadier than the
wall time on a shared machine, so paired before/after runs compare it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    from bench.history_clock import latest_occurred
    from consumers.log.embedded import EmbeddedLog
    from consumers.projector import POLL_RECORDS_MAX, catch_up
    from ledger.policy import Policy
    from projections.sqlite_store import SQLiteProjectionStore

    p = argparse.ArgumentParser()
    p.add_argument("--size", default="100k")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--records", type=int, default=30_000)
    p.add_argument("--batch", type=int, default=POLL_RECORDS_MAX)
    p.add_argument("--clock", choices=("wall", "history"), default="wall")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    home = ROOT / "bench" / "data" / f"home-{args.size}-seed{args.seed}"
    expected = json.loads((ROOT / "bench" / "data" / f"history-{args.size}-seed{args.seed}.expected.json").read_text())
    end_of_history = datetime.fromisoformat(expected["check_clock"])
    log = EmbeddedLog(home / "log.db")
    history_now: list[datetime] = []  # --clock history: the latest occurred_at read

    def clock() -> datetime:
        if args.clock == "wall" or not history_now:
            return end_of_history
        return history_now[0]

    def advance(records) -> None:
        if not records:
            return
        at = latest_occurred([r.value for r in records])
        if not history_now or at > history_now[0]:
            history_now[:] = [at]

    class Limited:  # the first N records of partition 0 (the embedded log has one)
        name = log.name

        def partitions(self):
            return log.partitions()

        def read(self, partition, start, limit):
            records = log.read(partition, start, max(0, min(limit, args.records - start)))
            if args.clock == "history":
                advance(records)
            return records

    def floor() -> float:
        t = time.perf_counter()
        start = 0
        while start < args.records:
            for r in log.read(0, start, min(500, args.records - start)):
                json.loads(r.value)
            start += 500
        return time.perf_counter() - t

    scratch = home / "chase.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(scratch) + suffix).unlink(missing_ok=True)
    floor_1 = floor()
    store = SQLiteProjectionStore(scratch)
    profiler = cProfile.Profile() if args.profile else None
    t = time.perf_counter()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    if profiler:
        profiler.enable()
    totals = catch_up(Limited(), store, policy=Policy(), clock=clock, batch_max=args.batch)
    if profiler:
        profiler.disable()
    replay_s = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    store.close()
    floor_s = min(floor_1, floor())
    result = {"records": totals.records, "batch": args.batch, "clock": args.clock, "replay_s": round(replay_s, 2),
              "cpu_s": round(cpu_s, 2),
              "replay_per_s": round(totals.records / replay_s), "floor_per_s": round(args.records / floor_s),
              "ratio_vs_floor": round(replay_s / floor_s, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "load": open("/proc/loadavg").read().split()[:3]}
    print(json.dumps(result))
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        (home / "chase-profile.txt").write_text(out.getvalue())


if __name__ == "__main__":
    main()
