"""The group projector's throughput on its own (issue 18: ">= 10,000 records/s").

    python -m bench.kafka_project --size 100k --seed 1 [--kafka auto|HOST:PORT]
        [--batch-max N] [--no-publish] [--runs 1] [--profile]

In one run, on one broker (``--kafka auto`` starts one as the tests do,
tests/services/kafka_broker.py; the result names it):

1. fills a fresh topic (4 partitions) with the history, through the parties'
   SDK (``ingest_lines``, ``--trust-recorded-at``), and waits for nothing
   else: every record is on the topic before anything reads it;
2. the baseline: a bare kafka-python consumer in a process of its own, in a
   consumer group with the projector's settings (``GROUP_CONSUMER_SETTINGS``,
   the same records per poll), reading the whole topic and decoding each
   value with ``json.loads`` -- what any projector must do at least;
3. ``ledger kafka project --until-end --trust-recorded-at --json`` (a new
   group, an empty SQLite store) applying the whole topic, alert publishing
   included unless ``--no-publish``;
4. the baseline again (the faster of the two counts);
5. ``ledger kafka project --until-end`` on an empty topic: what starting,
   joining and stopping cost, so the rate over the records alone can be
   told apart from the process's start;
6. checks the store: the alerts standing at the generator's check clock
   must be exactly the generator's (a fast wrong answer fails: exit 1).

Each process is timed by its wall clock and its CPU (user + system, every
thread: what RUSAGE_CHILDREN grew by when it was reaped); the broker's CPU over the same span is read from /proc
(a JVM on this machine's two cores).  Records/s by wall and by CPU, and the
ratio to the baseline, are printed as JSON and written to
``bench/data/results-<size>-seed<seed>-kafka-project[-tag].json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.run import (KAFKA_PARTITIONS, PROFILE_LINES_MAX, ROOT, Paths, _prefix, compare_alerts, emit,
                       ensure_data, kafka_broker, remove_db)

PROCESS_TIMEOUT_S = 1_800.0  # one projector or baseline run


def _jiffies(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by ``pid``, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def timed_process(command: list[str], *, broker_pids: list[int], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``command``; its wall time, the broker's CPU meanwhile, its last
    stdout line as JSON.  Its own CPU is taken by the caller (ChildCpu)."""
    broker_before = [_jiffies(pid) for pid in broker_pids]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=PROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    # communicate() reaped the child: its rusage is in RUSAGE_CHILDREN, so take the difference.
    wall = time.perf_counter() - started
    broker_after = [_jiffies(pid) for pid in broker_pids]
    result: dict[str, Any] = {"exit": process.returncode, "wall_s": round(wall, 3)}
    broker_cpu = [b - a for a, b in zip(broker_before, broker_after) if a is not None and b is not None]
    if broker_cpu:
        result["broker_cpu_s"] = round(sum(broker_cpu), 2)
    try:
        result["answer"] = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result["answer"] = None
    if process.returncode != 0:
        result["stderr_tail"] = err[-2000:]
    return result


class ChildCpu:
    """CPU of the children reaped since the last call (RUSAGE_CHILDREN grows by each one)."""

    def __init__(self) -> None:
        import resource

        self._resource = resource
        self._last = self._now()

    def _now(self) -> float:
        usage = self._resource.getrusage(self._resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def take(self) -> float:
        now = self._now()
        spent, self._last = now - self._last, now
        return spent


def measure(paths: Paths, bootstrap: str, broker_pids: list[int], *, batch_max: int | None, publish: bool,
            runs: int, profile: bool = False) -> dict[str, Any]:
    from consumers.ingest import ingest_lines
    from consumers.log.kafka import KafkaLog
    from consumers.projector import utc_now
    from projections.sqlite_store import SQLiteProjectionStore

    expected = ensure_data(paths)
    paths.home.mkdir(parents=True, exist_ok=True)
    def fill() -> tuple[str, int, float, Any]:
        """A fresh topic holding the history.  Each projector run gets its own:
        a second store publishing under a topic prefix another store published
        under is refused (its journal is not the one Kafka's marker names), and
        would measure that refusal, retried every batch, instead of publishing."""
        prefix = _prefix("project")
        log = KafkaLog(bootstrap, prefix, partitions=KAFKA_PARTITIONS)  # creates the topics
        try:
            started = time.perf_counter()
            with paths.jsonl.open(encoding="utf-8") as lines:
                report = ingest_lines(lines, log, source=str(paths.jsonl), clock=utc_now, trust_recorded_at=True)
            fill_s = time.perf_counter() - started
            return prefix, sum(log.end_offsets().values()), fill_s, report
        finally:
            log.close()

    prefix, records, fill_s, report = fill()
    empty_prefix = _prefix("empty")
    KafkaLog(bootstrap, empty_prefix, partitions=KAFKA_PARTITIONS).close()

    cpu = ChildCpu()
    python = sys.executable
    ledger_cli = str(Path(python).with_name("ledger"))
    env = {**os.environ, "LEDGER_HOME": str(paths.home)}

    def baseline(n: int) -> dict[str, Any]:
        run = timed_process([python, "-m", "bench.kafka_project", "--read-only", "--bootstrap", bootstrap,
                             "--prefix", prefix, "--group", f"{prefix}-read-{n}",
                             *(["--batch-max", str(batch_max)] if batch_max else [])], broker_pids=broker_pids)
        run["cpu_s"] = round(cpu.take(), 3)
        return run

    def project(n: int, on: str, profile_to: Path | None = None) -> tuple[dict[str, Any], Path]:
        store_path = paths.home / f"kafka-project-{on}-{n}.db"
        remove_db(store_path)
        ledger = [python, "-m", "cProfile", "-o", str(profile_to), "-m", "consumers.cli"] if profile_to else [ledger_cli]
        command = [*ledger, "kafka", "project", "--log", f"kafka://{bootstrap}/{on}",
                   "--store", f"sqlite:///{store_path}", "--group", f"{on}-g{n}", "--until-end",
                   "--trust-recorded-at", "--json",
                   *(["--batch-max", str(batch_max)] if batch_max else []),
                   *([] if publish else ["--no-publish"])]
        run = timed_process(command, broker_pids=broker_pids, env=env)
        run["cpu_s"] = round(cpu.take(), 3)
        run["command"] = " ".join(["ledger", *command[len(ledger):]])
        return run, store_path

    before = baseline(1)
    projections: list[dict[str, Any]] = []
    check: dict[str, Any] = {}
    for n in range(1, runs + 1):
        on = prefix if n == 1 else fill()[0]
        run, store_path = project(n, on)
        if n == 1:
            store = SQLiteProjectionStore(store_path)
            try:
                check = compare_alerts(expected, store)
            finally:
                store.close()
        remove_db(store_path)
        projections.append(run)
    after = baseline(2)
    empty, empty_store = project(1, empty_prefix)
    remove_db(empty_store)
    profiled: dict[str, Any] = {}
    if profile:  # once more, after the measured runs, under cProfile (slower: no figure is taken from it)
        raw = paths.home / "kafka-project.prof"
        run, store_path = project(runs + 1, fill()[0], profile_to=raw)
        remove_db(store_path)
        text = io.StringIO()
        stats = pstats.Stats(str(raw), stream=text).strip_dirs()
        stats.sort_stats("cumulative").print_stats(PROFILE_LINES_MAX)
        stats.sort_stats("tottime").print_stats(PROFILE_LINES_MAX)
        paths.profile("kafka-project").write_text(text.getvalue())
        raw.unlink(missing_ok=True)
        profiled = {"profile": str(paths.profile("kafka-project")), "profiled_wall_s": run["wall_s"],
                    "profiled_answer": run["answer"]}

    def rates(run: dict[str, Any]) -> dict[str, Any]:
        return {"records_per_s_wall": round(records / run["wall_s"]),
                "records_per_s_cpu": round(records / run["cpu_s"]) if run["cpu_s"] else None}

    # The faster baseline counts, by wall and by CPU each (as bench/run.py's floors).
    best_base = {"wall_s": min(before["wall_s"], after["wall_s"]), "cpu_s": min(before["cpu_s"], after["cpu_s"])}
    best_proj = {"wall_s": min(r["wall_s"] for r in projections), "cpu_s": min(r["cpu_s"] for r in projections)}
    # The start, join and stop: what the same command costs on an empty topic.
    net_wall = best_proj["wall_s"] - empty["wall_s"]
    net_cpu = best_proj["cpu_s"] - empty["cpu_s"]
    base_net_wall = best_base["wall_s"]  # its own start is small and stays in (a conservative floor)
    return {
        "records": records,
        "partitions": KAFKA_PARTITIONS,
        "fill": {"s": round(fill_s, 2), "accepted": report.accepted, "rejected": report.rejected,
                 "records_per_s": round(records / fill_s)},
        "publish": publish,
        "batch_max": batch_max,
        "baseline": "bare kafka-python consumer in a group, the projector's settings, json.loads of each value "
                    "(a process of its own)",
        "baseline_runs": [before, after],
        "baseline_rates": rates(best_base),
        "projector_runs": projections,
        "projector_rates": rates(best_proj),
        "empty_topic_run": empty,
        "projector_rates_less_start": {
            "records_per_s_wall": round(records / net_wall) if net_wall > 0 else None,
            "records_per_s_cpu": round(records / net_cpu) if net_cpu > 0 else None,
        },
        "ratio_projector_wall_vs_baseline": round(best_proj["wall_s"] / base_net_wall, 2),
        "ratio_projector_cpu_vs_baseline": round(best_proj["cpu_s"] / best_base["cpu_s"], 2)
        if best_base["cpu_s"] else None,
        "target_records_per_s_min": 10_000,
        "alerts": check,
        **profiled,
    }


def read_only(bootstrap: str, prefix: str, group: str, batch_max: int | None) -> int:
    """The baseline, in its own process: join a group as the projector does,
    read every record the topic holds now, decode each value."""
    from kafka import KafkaConsumer, TopicPartition

    from consumers.kafka.group_projector import GROUP_CONSUMER_SETTINGS, POLL_RECORDS_MAX

    topic = f"{prefix}.events"
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=group,
                             max_poll_records=batch_max or POLL_RECORDS_MAX, **GROUP_CONSUMER_SETTINGS)
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or [])
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = consumer.end_offsets(tps)
        consumer.subscribe([topic])
        decoded = 0
        deadline = time.monotonic() + PROCESS_TIMEOUT_S
        while time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=200)
            for batch in polled.values():
                for record in batch:
                    json.loads(record.value)
                    decoded += 1
            assigned = consumer.assignment()
            if assigned and all(consumer.position(tp) >= ends[tp] for tp in tps if tp in assigned) \
                    and len(assigned) == len(tps):
                break
        print(json.dumps({"records": decoded}))
    finally:
        consumer.close(autocommit=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka_project", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="100k")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
    parser.add_argument("--tag", default="")
    parser.add_argument("--kafka", default="auto", help="'auto' (start a broker, as the tests do) or HOST:PORT")
    parser.add_argument("--batch-max", type=int, default=None, help="records per poll (default: the projector's)")
    parser.add_argument("--no-publish", action="store_true", help="pass --no-publish to the projector")
    parser.add_argument("--runs", type=int, default=1, help="projector runs between the two baseline runs")
    parser.add_argument("--profile", action="store_true",
                        help="run the projector once more under cProfile, after the measured runs, and write "
                             "profile-<size>-seed<seed>-kafka-project.txt")
    # The baseline's own process:
    parser.add_argument("--read-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.read_only:
        return read_only(args.bootstrap, args.prefix, args.group, args.batch_max)
    paths = Paths(args.data, args.size, args.seed, args.tag)
    load_before = [round(x, 2) for x in os.getloadavg()]
    with kafka_broker(args.kafka) as broker:
        pids = broker.get("pids", [])
        result = measure(paths, broker["bootstrap"], pids, batch_max=args.batch_max,
                         publish=not args.no_publish, runs=args.runs, profile=args.profile)
        result = {"broker": broker.get("description", broker["kind"]), "loadavg_1_5_15_at_start": load_before,
                  **result}
    # A publish refused and retried every batch would be measured as if it were publishing: fail instead.
    ok = bool(result["alerts"].get("match")) and all(
        r["exit"] == 0 and not (r["answer"] or {}).get("publish_failures") for r in result["projector_runs"])
    emit(paths, "kafka-project", {"state": "measured" if ok else "failed", **result})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
