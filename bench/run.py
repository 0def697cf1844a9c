"""The benchmark harness: one subcommand per figure, each measured against a
baseline in the same run, and each checking the ledger's answer.

    python -m bench.run generate --size 100k
    python -m bench.run ingest   --size 100k     # (1) embedded log vs raw SQLite insert
    python -m bench.run replay   --size 100k     # (2) rebuild every projection vs read+decode floor
    python -m bench.run latency  --size 100k     # (3) alert latency over Kafka (if the adapter exists)
    python -m bench.run query    --size 100k     # (4) whereabouts / open alerts p50, p99
    python -m bench.run growth   --sizes 100k,1M # (5) time and peak RSS per size
    python -m bench.run all      --size 100k     # generate, 1-4, in one process each
    python -m bench.run duckdb   --size 100k     # every lot's account in DuckDB SQL vs the ledger's
                                                 # (bench/duckdb_baseline.py, issue 18)

Every subcommand prints one JSON object and writes it to
``<data>/results-<size>-seed<seed>-<figure>.json``.  ``replay`` compares the
alerts standing after the rebuild with the generator's expectation and exits
1 on any difference.  ``--profile`` runs the measured section once more
under cProfile (after the measured runs, so the figures carry no profiler
overhead) and writes the top functions next to the results.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import resource
import sqlite3
import statistics
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.generate import SIZES, data_paths, write

__all__ = ["main", "compare_alerts", "ledger_alerts"]

ROOT = Path(__file__).resolve().parent.parent
from consumers.projector import POLL_RECORDS_MAX as READ_BATCH_MAX  # the floor reads the same batches
QUERY_SAMPLES = 1000
QUERY_SAMPLES_TINY = 200  # the smoke run: seconds, not a measurement
PROFILE_LINES_MAX = 30


# -- plumbing ---------------------------------------------------------------------


class Paths:
    def __init__(self, data: Path, size: str, seed: int, tag: str = ""):
        self.data, self.size, self.seed = data, size, seed
        self.tag = f"-{tag}" if tag else ""
        self.jsonl, self.expected = data_paths(data, size, seed)
        self.home = data / f"home-{size}-seed{seed}"
        self.log = self.home / "log.db"
        self.raw = self.home / "raw.db"
        self.store = self.home / "projections.db"

    def result(self, figure: str) -> Path:
        return self.data / f"results-{self.size}-seed{self.seed}-{figure}{self.tag}.json"

    def profile(self, figure: str) -> Path:
        return self.data / f"profile-{self.size}-seed{self.seed}-{figure}.txt"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def machine() -> dict[str, Any]:
    # The load average says how much else ran beside the benchmark (2 cores, shared).
    return {"nproc": os.cpu_count(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "platform": platform.platform(),
            "loadavg_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()], "code": CODE_AT_START}


def code_version() -> str:
    """The commit measured (others commit while benchmarks run), '+dirty' if
    the ledger's own code differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ledger", "projections", "consumers"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


CODE_AT_START = code_version()  # the code this process imported, not what is on disk at the end


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = run()
    return time.perf_counter() - started, value


def profiled(run: Callable[[], Any], profile_to: Path) -> float:
    """Run again under cProfile (an extra pass: the figures are measured
    without the profiler, which slows Python code about 1.5-2x); write the
    top functions by cumulative and by own time.  Returns the profiled time."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    run()
    profiler.disable()
    elapsed = time.perf_counter() - started
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES_MAX)
    stats.sort_stats("tottime").print_stats(PROFILE_LINES_MAX)
    profile_to.write_text(text.getvalue())
    return elapsed


def ensure_data(paths: Paths) -> dict[str, Any]:
    if not (paths.jsonl.exists() and paths.expected.exists()):
        write(SIZES[paths.size], paths.seed, paths.jsonl, paths.expected)
    return json.loads(paths.expected.read_text())


def emit(paths: Paths, figure: str, result: dict[str, Any]) -> dict[str, Any]:
    result = {"figure": figure, "size": paths.size, "seed": paths.seed, "machine": machine(), **result}
    paths.data.mkdir(parents=True, exist_ok=True)
    paths.result(figure).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(json.dumps(result, indent=1, default=str))
    return result


# -- correctness: the generator's expectation vs the ledger ------------------------


def _quantity_key(amount: str | None) -> str:
    if amount is None:
        return ""
    return format(Decimal(amount).quantize(Decimal("0.001")), "f")


def ledger_alerts(store: Any, as_of: datetime) -> list[tuple[str, str, str, str, str]]:
    """(kind, lot_id, party, quantity, unit) of every alert standing at ``as_of``."""
    return sorted(
        (a["kind"], a["lot_id"], a["party"], _quantity_key(a["quantity"]), a["unit"] or "")
        for a in store.standing_alerts(as_of)
    )


def compare_alerts(expected: dict[str, Any], store: Any) -> dict[str, Any]:
    """The ledger's standing alerts against the generator's, as multisets."""
    as_of = datetime.fromisoformat(expected["check_clock"])
    want = Counter((k, lot, party, _quantity_key(q), unit or "") for k, lot, party, q, unit in expected["alerts"])
    got = Counter(ledger_alerts(store, as_of))
    missing = sorted((want - got).elements())
    unexpected = sorted((got - want).elements())
    return {
        "expected_alerts": sum(want.values()),
        "ledger_alerts": sum(got.values()),
        "by_kind": dict(sorted(Counter(k[0] for k in want.elements()).items())),
        "match": not missing and not unexpected,
        "missing": missing[:20],
        "unexpected": unexpected[:20],
    }


# -- (1) ingest ---------------------------------------------------------------------


def raw_insert(jsonl: Path, db_path: Path, batch_max: int) -> int:
    """The floor for ingest: the same lines into one SQLite table, same
    durability (WAL, synchronous=FULL) and the same batch per transaction,
    with no parsing, no validation and no idempotency check."""
    remove_db(db_path)
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE raw (offset INTEGER PRIMARY KEY AUTOINCREMENT, value BLOB NOT NULL)")
    rows = 0
    batch: list[tuple[bytes]] = []

    def flush() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO raw (value) VALUES (?)", batch)
        db.execute("COMMIT")
        batch.clear()

    with jsonl.open(encoding="utf-8") as lines:
        for line in lines:
            batch.append((line.strip().encode(),))
            rows += 1
            if len(batch) >= batch_max:
                flush()
    if batch:
        flush()
    db.close()
    return rows


def ledger_ingest(jsonl: Path, log_path: Path) -> dict[str, int]:
    from consumers.log.embedded import EmbeddedLog
    from consumers.ingest import ingest_lines
    from consumers.projector import utc_now

    remove_db(log_path)
    log = EmbeddedLog(log_path)
    try:
        with jsonl.open(encoding="utf-8") as lines:
            report = ingest_lines(lines, log, source=str(jsonl), clock=utc_now, trust_recorded_at=True)
    finally:
        log.close()
    return {"lines": report.lines, "accepted": report.accepted, "duplicates": report.duplicates,
            "conflicts": report.conflicts, "rejected": report.rejected}


def kafka_available() -> bool:
    return (ROOT / "consumers" / "log" / "kafka.py").exists()


KAFKA_PARTITIONS = 4


class kafka_broker:
    """``auto``: start one (tests/services/kafka_broker.py: $KAFKA_BOOTSTRAP,
    Apache Kafka from Maven, Docker, else Tansu); otherwise use the broker at HOST:PORT."""

    def __init__(self, where: str):
        self.where = where
        self.broker: Any = None

    def __enter__(self) -> dict[str, str]:
        if self.where != "auto":
            return {"bootstrap": self.where, "kind": "given"}
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from services.kafka_broker import start_broker

        self.broker = start_broker()
        # The broker's processes (Apache Kafka's JVMs, or Tansu's, which gives none here): their CPU is
        # counted beside the ledger's.
        pids = [node.process.pid for node in getattr(self.broker, "nodes", {}).values()
                if node.process is not None]
        return {"bootstrap": self.broker.bootstrap, "kind": self.broker.kind,
                "description": self.broker.description, "pids": pids}

    def __exit__(self, *_exc: object) -> None:
        if self.broker is not None:
            self.broker.close()


def _prefix(label: str) -> str:
    return f"bench-{label}-{os.getpid()}-{time.time_ns() % 10**9}"


def raw_kafka_send(jsonl: Path, bootstrap: str, topic: str, batch_max: int) -> int:
    """The floor for Kafka ingest: the same lines sent by kafka-python with the
    ledger's producer settings (idempotent, acks=all), flushed every batch,
    with no parsing, no key and no headers."""
    from kafka import KafkaProducer

    from consumers.log.kafka import producer_settings

    producer = KafkaProducer(**producer_settings(bootstrap))
    sent = 0
    try:
        with jsonl.open(encoding="utf-8") as lines:
            futures = []
            for line in lines:
                futures.append(producer.send(topic, value=line.strip().encode()))
                sent += 1
                if len(futures) >= batch_max:
                    producer.flush()
                    for future in futures:
                        future.get(timeout=30)
                    futures.clear()
            producer.flush()
            for future in futures:
                future.get(timeout=30)
    finally:
        producer.close()
    return sent


def ingest_kafka(jsonl: Path, bootstrap: str, batch_max: int) -> dict[str, Any]:
    from consumers.ingest import ingest_lines
    from consumers.log.kafka import KafkaLog
    from consumers.projector import utc_now

    raw_log = KafkaLog(bootstrap, _prefix("raw"), partitions=KAFKA_PARTITIONS)  # creates the topics
    raw_log.close()
    raw_1, rows = timed(lambda: raw_kafka_send(jsonl, bootstrap, raw_log.events_topic, batch_max))
    log = KafkaLog(bootstrap, _prefix("ledger"), partitions=KAFKA_PARTITIONS)
    try:
        with jsonl.open(encoding="utf-8") as lines:
            ledger_s, report = timed(lambda: ingest_lines(lines, log, source=str(jsonl), clock=utc_now, trust_recorded_at=True))
    finally:
        log.close()
    raw_log_2 = KafkaLog(bootstrap, _prefix("raw"), partitions=KAFKA_PARTITIONS)
    raw_log_2.close()
    raw_2, _ = timed(lambda: raw_kafka_send(jsonl, bootstrap, raw_log_2.events_topic, batch_max))
    raw_s = min(raw_1, raw_2)
    return {
        "partitions": KAFKA_PARTITIONS,
        "kafka_s": round(ledger_s, 3),
        "kafka_events_per_s": round(rows / ledger_s),
        "raw_send_s": round(raw_s, 3),
        "raw_send_runs_s": [round(raw_1, 3), round(raw_2, 3)],
        "raw_send_events_per_s": round(rows / raw_s),
        "ratio_vs_raw": round(raw_s / ledger_s, 3),
        "accepted": report.accepted,
        "rejected": report.rejected,
    }


def cmd_ingest(args: argparse.Namespace) -> dict[str, Any]:
    from consumers.ingest import INGEST_BATCH_MAX

    paths = Paths(args.data, args.size, args.seed, args.tag)
    expected = ensure_data(paths)
    paths.home.mkdir(parents=True, exist_ok=True)
    # Baseline before and after the ledger run; the faster is the floor.
    raw_1, rows = timed(lambda: raw_insert(paths.jsonl, paths.raw, INGEST_BATCH_MAX))
    ledger_s, report = timed(lambda: ledger_ingest(paths.jsonl, paths.log))
    raw_2, _ = timed(lambda: raw_insert(paths.jsonl, paths.raw, INGEST_BATCH_MAX))
    remove_db(paths.raw)
    if args.profile:  # into a scratch log: the measured one stays as it was written
        scratch = paths.home / "log-profiled.db"
        profiled(lambda: ledger_ingest(paths.jsonl, scratch), paths.profile("ingest"))
        remove_db(scratch)
    raw_s = min(raw_1, raw_2)
    result: dict[str, Any] = {
        "events": rows,
        "ledger": report,
        "embedded_s": round(ledger_s, 3),
        "embedded_events_per_s": round(rows / ledger_s),
        "raw_sqlite_s": round(raw_s, 3),
        "raw_sqlite_runs_s": [round(raw_1, 3), round(raw_2, 3)],
        "raw_sqlite_events_per_s": round(rows / raw_s),
        "ratio_vs_raw": round(raw_s / ledger_s, 3),
        "target_ratio_min": 0.7,
        "batch": INGEST_BATCH_MAX,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    if not kafka_available():
        result["kafka"] = "not measured: consumers/log/kafka.py does not exist"
    elif not args.kafka:
        result["kafka"] = "not measured: pass --kafka auto (start a broker) or --kafka HOST:PORT"
    else:
        with kafka_broker(args.kafka) as bootstrap:
            result["kafka"] = ingest_kafka(paths.jsonl, bootstrap["bootstrap"], INGEST_BATCH_MAX)
            result["kafka"]["broker"] = bootstrap["kind"]
    if report["rejected"] or report["lines"] != expected["events"]:
        result["error"] = "the generated history did not ingest cleanly"
    return emit(paths, "ingest", result)


# -- (2) replay ---------------------------------------------------------------------


def read_and_decode(log_path: Path, *, validate: bool = False) -> int:
    """The floor for replay: read every record of the log in the projector's
    batches and JSON-decode it, nothing else.  With ``validate``, parse each
    against the event contract instead (pydantic): what checking the data
    right after it is read costs, before any projection work."""
    from consumers.log.embedded import EmbeddedLog
    from ledger.events import parse_event

    decode = parse_event if validate else json.loads

    log = EmbeddedLog(log_path)
    count, start = 0, 0
    try:
        while True:
            records = log.read(0, start, READ_BATCH_MAX)
            if not records:
                break
            for record in records:
                decode(record.value)
            count += len(records)
            start = records[-1].offset + 1
    finally:
        log.close()
    return count


class _TimeUp(Exception):
    """Raised from the progress hook, after a batch has committed, to stop a replay."""


CURVE_STEP = 10_000  # records between two points of the throughput curve


REPLAY_MODES = ("rebuild", "catch-up")


def rebuild(log_path: Path, store_path: Path, clock: datetime, *, time_limit_s: float | None = None,
            curve: list[dict[str, float]] | None = None, mode: str = "rebuild") -> Any:
    """Replay the whole log into a fresh SQLite store, as ``ledger replay``
    does (mode "rebuild": trace by trace, consumers.projector.rebuild) or in
    offset order ("catch-up": consumers.projector.catch_up, what a projector
    behind its log does).  With ``time_limit_s``, stop after the first batch
    that ends past it (the totals say how far)."""
    from consumers.log.embedded import EmbeddedLog
    from consumers.projector import BatchCounts, catch_up
    from consumers.projector import rebuild as rebuild_by_trace
    from ledger.policy import Policy
    from projections.sqlite_store import SQLiteProjectionStore

    remove_db(store_path)
    log = EmbeddedLog(log_path)
    store = SQLiteProjectionStore(store_path)
    started = time.perf_counter()
    last: dict[str, Any] = {"totals": None, "mark": 0, "at": started}

    def progress(totals: BatchCounts) -> None:
        last["totals"] = totals
        now = time.perf_counter()
        if curve is not None and totals.records >= last["mark"] + CURVE_STEP:
            curve.append({"records": totals.records, "elapsed_s": round(now - started, 2),
                          "window_events_per_s": round((totals.records - last["mark"]) / (now - last["at"])),
                          "peak_rss_mb": round(peak_rss_mb(), 1)})
            last["mark"], last["at"] = totals.records, now
        if time_limit_s is not None and now - started > time_limit_s:
            raise _TimeUp()

    replay = rebuild_by_trace if mode == "rebuild" else catch_up
    try:
        return replay(log, store, policy=Policy(), clock=lambda: clock, progress=progress)
    except _TimeUp:
        return last["totals"]
    finally:
        log.close()
        store.close()


def cmd_replay(args: argparse.Namespace) -> dict[str, Any]:
    from projections.sqlite_store import SQLiteProjectionStore

    paths = Paths(args.data, args.size, args.seed, args.tag)
    expected = ensure_data(paths)
    if not paths.log.exists():
        raise SystemExit(f"no log at {paths.log}: run `python -m bench.run ingest --size {args.size}` first")
    clock = datetime.fromisoformat(expected["check_clock"])
    floor_1, records = timed(lambda: read_and_decode(paths.log))
    curve: list[dict[str, float]] = []
    figure, store_path = "replay", paths.store
    replay_s, totals = timed(lambda: rebuild(paths.log, store_path, clock, time_limit_s=args.time_limit,
                                             curve=curve, mode=args.mode))
    complete = totals.records == records
    rss_after_replay = peak_rss_mb()  # before the alert check loads every standing alert
    floor_2, _ = timed(lambda: read_and_decode(paths.log))
    if args.profile:
        scratch = paths.home / "projections-profiled.db"
        profiled(lambda: rebuild(paths.log, scratch, clock, mode=args.mode), paths.profile(figure))
        remove_db(scratch)
    floor_s = min(floor_1, floor_2)
    validate_s, _ = timed(lambda: read_and_decode(paths.log, validate=True))
    check: dict[str, Any] = {"match": None, "state": f"not checked: the replay stopped at the "
                                                     f"{args.time_limit} s limit after {totals.records} records"}
    if complete:
        store = SQLiteProjectionStore(store_path)
        try:
            check = compare_alerts(expected, store)
        finally:
            store.close()
    result = {
        "mode": args.mode,
        "records": records,
        "complete": complete,
        "replayed_records": totals.records,
        "replay_s": round(replay_s, 3),
        "replay_events_per_s": round(totals.records / replay_s),
        "floor_read_decode_s": round(floor_s, 3),
        "floor_runs_s": [round(floor_1, 3), round(floor_2, 3)],
        "floor_events_per_s": round(records / floor_s),
        "read_validate_s": round(validate_s, 3),
        "read_validate_events_per_s": round(records / validate_s),
        # The floor reads all records; a replay stopped early is scaled to the same count.
        "ratio_vs_floor": round((replay_s * records / max(totals.records, 1)) / floor_s, 2),
        "target_ratio_max": 2.0,
        "target_events_per_s_min": 100_000,
        "batches": totals.batches,
        "accepted": totals.accepted,
        "duplicates": totals.duplicates,
        "conflicts": totals.conflicts,
        "dead_letters": totals.dead_letters,
        "alerts": check,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_mb_after_replay": round(rss_after_replay, 1),
        "store_mb": round(store_path.stat().st_size / 2**20, 1),
        "curve": curve,
    }
    return emit(paths, figure, result)


# -- (3) alert latency ------------------------------------------------------------------


LATENCY_PROBES = 30
LATENCY_BACKGROUND_MAX = 20_000  # history replayed into the store before probing
LATENCY_WAIT_MAX_S = 60.0  # bound on waiting for one probe's alert, and for the group join
CATCH_UP_WAIT_MAX_S = 900.0  # bound on the projector catching up the background history
PROBE_GAP_S = 0.3


def probe_report(prefix: str, n: int, at: datetime | None = None) -> str:
    """An export citing no license, shipped a second before ``at`` (default:
    now): its license_missing alert is due at once, so the projector
    journals it in the same commit."""
    from datetime import timedelta, timezone

    now = at or datetime.now(timezone.utc)
    trace = f"PROBE-{prefix}-{n:03d}"
    return json.dumps({
        "type": "exported", "event_id": f"{trace}-01", "occurred_at": (now - timedelta(seconds=1)).isoformat(),
        "reporter": "JP-EXP-000", "trace_id": trace, "lot_id": f"{trace}-L",
        "exporter": {"id": "JP-EXP-000", "country": "JP"}, "consignee": {"id": "KR-CNS-000", "country": "KR"},
        "item": {"id": "HF-UHP", "classification": "AG 1C350.25"}, "quantity": {"amount": "100", "unit": "kg"},
    })


def measure_alert_latency(paths: Paths, bootstrap: str, *, background: int, probes: int) -> dict[str, Any]:
    """Seconds from a report's append (ingest of one line) to its alert on
    the alerts topic, read as a dashboard reads it, with a consumer-group
    projector running; after ``background`` reports of history were projected."""
    import itertools
    import threading

    from consumers.ingest import ingest_lines
    from consumers.kafka.alert_publisher import follow_alerts
    from consumers.kafka.group_projector import GroupProjector
    from consumers.log.kafka import KafkaLog
    from consumers.projector import utc_now
    from ledger.policy import Policy
    from projections.sqlite_store import SQLiteProjectionStore

    prefix = _prefix("latency")
    log = KafkaLog(bootstrap, prefix, partitions=KAFKA_PARTITIONS)
    with paths.jsonl.open(encoding="utf-8") as lines:
        loaded = ingest_lines(itertools.islice(lines, background), log, source=str(paths.jsonl), clock=utc_now)
    store_path = paths.home / "latency-store.db"
    remove_db(store_path)
    stop = threading.Event()
    arrivals: dict[str, float] = {}
    progress: dict[str, Any] = {"records": 0, "error": None}

    def project() -> None:
        store = SQLiteProjectionStore(store_path)  # made in the thread that uses it
        try:
            GroupProjector(KafkaLog(bootstrap, prefix, partitions=KAFKA_PARTITIONS), store, group=f"{prefix}-g",
                           policy=Policy()).run(stop=stop.is_set,
                                                progress=lambda t: progress.__setitem__("records", t.records))
        except Exception as error:  # reported in the result, not lost in a thread
            progress["error"] = repr(error)
        finally:
            store.close()

    def follow() -> None:
        def seen(message: dict[str, Any]) -> None:
            trace = message.get("trace_id") or ""
            if trace.startswith("PROBE-") and message.get("transition") == "raised":
                arrivals.setdefault(trace, time.perf_counter())

        try:
            follow_alerts(KafkaLog(bootstrap, prefix, partitions=KAFKA_PARTITIONS), seen, stop=stop.is_set)
        except Exception as error:
            progress["error"] = repr(error)

    threads = [threading.Thread(target=project, daemon=True), threading.Thread(target=follow, daemon=True)]
    for thread in threads:
        thread.start()
    catch_up_started = time.perf_counter()
    expected_records = loaded.accepted + loaded.duplicates + loaded.conflicts  # Kafka keeps every copy
    while progress["records"] < expected_records and time.perf_counter() - catch_up_started < CATCH_UP_WAIT_MAX_S:
        if progress["error"]:
            break
        time.sleep(0.2)
    catch_up_s = time.perf_counter() - catch_up_started
    latencies, acks = [], []
    timeouts = 0
    for n in range(probes):
        trace = f"PROBE-{prefix}-{n:03d}"
        started = time.perf_counter()
        ingest_lines([probe_report(prefix, n)], log, source="probe", clock=utc_now)
        acks.append(time.perf_counter() - started)
        while trace not in arrivals and time.perf_counter() - started < LATENCY_WAIT_MAX_S:
            time.sleep(0.002)
        if trace in arrivals:
            latencies.append(arrivals[trace] - started)
        else:
            timeouts += 1
        time.sleep(PROBE_GAP_S)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    log.close()
    remove_db(store_path)
    result: dict[str, Any] = {
        "background_reports": loaded.lines,
        "background_catch_up_s": round(catch_up_s, 2),
        "background_projected_records": progress["records"],
        "probes": probes,
        "timeouts": timeouts,
        "append_ack": percentiles(acks) if acks else None,
        "report_to_alert_on_topic": percentiles(latencies) if latencies else None,
    }
    if progress["error"]:
        result["error"] = progress["error"]
    return result


LOAD_TICK_S = 0.01  # the sender paces itself in ticks this long
LOAD_PROBE_INTERVAL_S = 0.1  # one probe among the load this often
LOAD_WARMUP_WAIT_MAX_S = 90.0  # broker up, projector joined, first alert on the topic
LOAD_DRAIN_WAIT_MAX_S = 60.0  # after the load stops, wait this long for the probes still owed
LOAD_STOP_WAIT_S = 20.0  # the projector's SIGTERM shutdown


def _events_backlog(log: Any, store_path: Path) -> dict[str, int]:
    """Records on the events topic that the projector's store has not applied."""
    from projections.sqlite_store import SQLiteProjectionStore

    ends = log.end_offsets()  # next offset per partition
    store = SQLiteProjectionStore(store_path)
    try:
        tracked = store.tracked_offsets(log.name)  # last applied offset per partition
    finally:
        store.close()
    appended = sum(ends.values())
    applied = sum(tracked.get(p, -1) + 1 for p in ends)
    return {"appended": appended, "applied": applied, "backlog": appended - applied}


def measure_alert_latency_under_load(paths: Paths, bootstrap: str, *, rate: int, seconds: float,
                                     probe_interval_s: float = LOAD_PROBE_INTERVAL_S,
                                     drain_s: float = LOAD_DRAIN_WAIT_MAX_S,
                                     clock: str = "wall", broker_pids: list[int] | None = None,
                                     projector_args: list[str] | None = None) -> dict[str, Any]:
    """Alert latency at a steady offered load: ``rate`` reports/s of the
    generated history for ``seconds`` (at most rate*seconds reports), with a
    probe -- an export citing no license, whose license_missing alert is due
    at once -- sent every ``probe_interval_s`` among them.  A probe's latency
    is from just before its append to the moment its ``raised`` transition
    is read from the alerts topic by a subscriber process (bench/follow_probes.py).  The projector is
    ``ledger kafka project`` in its own process (it also publishes alerts).

    ``clock``: "wall" judges every report at the wall clock's now -- a
    backfill of years-old history, every transient state overdue;
    "history" runs the projector on the history's own clock
    (bench/history_clock.py): the stream as it happened, live.

    ``broker_pids``: the broker's processes, whose CPU over the load is
    reported beside the others'.  ``projector_args``: more arguments for the
    projector's command (``--batch-max N``, and with the history clock
    ``--fetch-max-wait-ms N``), to try a setting the code exposes."""
    import itertools
    import threading

    from consumers.ingest import ingest_lines
    from consumers.log.kafka import KafkaLog
    from consumers.projector import utc_now

    prefix = _prefix("load")
    log = KafkaLog(bootstrap, prefix, partitions=KAFKA_PARTITIONS)  # creates the topics
    store_path = paths.home / f"latency-load-{prefix}.db"
    remove_db(store_path)
    arrivals: dict[str, float] = {}
    problems: list[str] = []

    # The subscriber is a process of its own (bench/follow_probes.py), as a
    # dashboard is: it stamps each probe's alert with the machine's monotonic
    # clock when it reads it; this thread only collects the stamps.
    subscriber = subprocess.Popen(
        [sys.executable, "-m", "bench.follow_probes", "--bootstrap", bootstrap, "--prefix", prefix,
         "--partitions", str(KAFKA_PARTITIONS)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def follow() -> None:
        assert subscriber.stdout is not None
        for line in subscriber.stdout:
            trace, _, at = line.strip().partition(" ")
            try:
                arrivals.setdefault(trace, float(at))
            except ValueError:
                problems.append(f"subscriber said {line.strip()!r}")

    from bench.history_clock import latest_occurred, write_clock

    clock_path = paths.home / f"latency-load-{prefix}.clock"
    stamps_path = paths.home / f"latency-load-{prefix}.stamps.json"  # clock == "history": the projector's stamps
    history_now: list[datetime] = []  # clock == "history": the latest occurred_at sent

    def advance(lines: list[str]) -> None:
        if clock != "history":
            return
        latest = latest_occurred(lines)
        if not history_now or latest > history_now[0]:
            history_now[:] = [latest]
            write_clock(clock_path, latest)

    def probe_at() -> datetime | None:
        return history_now[0] if history_now else None

    if clock == "history":
        with paths.jsonl.open(encoding="utf-8") as first:
            advance([next(first)])
        command = [sys.executable, "-m", "bench.history_clock", "--log", f"kafka://{bootstrap}/{prefix}",
                   "--store", f"sqlite:///{store_path}", "--group", f"{prefix}-g", "--clock-file", str(clock_path),
                   "--stamps", str(stamps_path), *(projector_args or [])]
    else:
        ledger_cli = Path(sys.executable).with_name("ledger")
        command = [str(ledger_cli), "kafka", "project", "--log", f"kafka://{bootstrap}/{prefix}",
                   "--store", f"sqlite:///{store_path}", "--group", f"{prefix}-g", "--json", *(projector_args or [])]
    stderr_path = paths.home / f"latency-load-{prefix}.projector.log"
    env = {**os.environ, "LEDGER_HOME": str(paths.home)}
    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    with stderr_path.open("w") as stderr:
        projector = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    result: dict[str, Any] = {"offered_rate_per_s": rate, "seconds": seconds, "probe_interval_s": probe_interval_s,
                              "clock": clock, "projector": " ".join(command[1:])}
    try:
        def wait_for(trace: str, bound_s: float) -> bool:
            deadline = time.perf_counter() + bound_s
            while trace not in arrivals and time.perf_counter() < deadline and projector.poll() is None:
                time.sleep(0.002)
            return trace in arrivals

        # Warm-up: one probe through the whole path before the clock starts.
        warm = f"PROBE-{prefix}-warm"
        ingest_lines([probe_report(prefix, 0, probe_at()).replace(f"PROBE-{prefix}-000", warm)], log,
                     source="probe", clock=utc_now)
        warm_started = time.perf_counter()
        if not wait_for(warm, LOAD_WARMUP_WAIT_MAX_S):
            raise RuntimeError(f"no alert for the warm-up probe within {LOAD_WARMUP_WAIT_MAX_S} s "
                               f"(projector exit {projector.poll()}, log {stderr_path})")
        result["warmup_s"] = round(time.perf_counter() - warm_started, 2)

        sent_at: dict[str, float] = {}
        acks: list[float] = []
        total = int(rate * seconds)
        sent = 0
        with paths.jsonl.open(encoding="utf-8") as lines:
            background = itertools.islice(lines, total)
            started = time.perf_counter()
            watched_brokers = {f"broker{i}": pid for i, pid in enumerate(broker_pids or [], 1)}
            cpu_at_start = cpu_seconds({"projector": projector.pid, "subscriber": subscriber.pid, **watched_brokers})
            next_probe = started + probe_interval_s / 2
            n = 0
            while sent < total:
                now = time.perf_counter()
                elapsed = now - started
                if elapsed >= seconds * 1.5:  # the sender cannot keep up: stop anyway, say so below
                    break
                if now >= next_probe:
                    n += 1
                    trace = f"PROBE-{prefix}-{n:03d}"
                    line = probe_report(prefix, n, probe_at())
                    t0 = time.perf_counter()
                    ingest_lines([line], log, source="probe", clock=utc_now)
                    acks.append(time.perf_counter() - t0)
                    sent_at[trace] = t0
                    next_probe += probe_interval_s
                # At most 1/20 s of load per append, so a slow append delays the next probe little.
                due = min(total, int(rate * elapsed), sent + max(10, rate // 20)) - sent
                if due > 0:
                    chunk = list(itertools.islice(background, due))
                    if not chunk:
                        break  # the history is shorter than rate*seconds
                    advance(chunk)  # "now" moves before the reports that move it are sent
                    ingest_lines(chunk, log, source=str(paths.jsonl), clock=utc_now)
                    sent += len(chunk)
                else:
                    time.sleep(min(LOAD_TICK_S, max(0.0, next_probe - time.perf_counter())))
            load_s = time.perf_counter() - started
            result["cpu_during_load"] = cpu_shares(
                cpu_at_start, cpu_seconds({"projector": projector.pid, "subscriber": subscriber.pid, **watched_brokers}), load_s)
        result["load"] = {"reports_sent": sent, "reports_planned": total, "sending_s": round(load_s, 2),
                          "achieved_rate_per_s": round(sent / load_s)}
        result["backlog_at_load_end"] = _events_backlog(log, store_path)

        # Drain: wait (bounded) for the probes whose alert has not come yet.
        drain_started = time.perf_counter()
        while (any(t not in arrivals for t in sent_at) and time.perf_counter() - drain_started < drain_s
               and projector.poll() is None):
            time.sleep(0.01)
        result["drain_waited_s"] = round(time.perf_counter() - drain_started, 2)
        result["backlog_after_drain_wait"] = _events_backlog(log, store_path)
        seen = {t: arrivals[t] - s for t, s in sent_at.items() if t in arrivals}
        unseen = [t for t in sent_at if t not in arrivals]
        ordered = [seen[t] for t in sent_at if t in seen]  # in send order
        result["probes"] = {"sent": len(sent_at), "seen": len(seen), "unseen": len(unseen)}
        result["probe_append_ack"] = percentiles(acks) if acks else None
        result["report_to_alert_on_topic"] = percentiles(list(seen.values())) if seen else None
        if ordered:
            tenth = max(1, len(ordered) // 10)
            result["first_tenth_of_probes"] = percentiles(ordered[:tenth])
            result["last_tenth_of_probes_seen"] = percentiles(ordered[-tenth:])
        if unseen:
            result["unseen_note"] = (f"{len(unseen)} probes had no alert within the {drain_s} s drain wait: "
                                     "their latency exceeds the wait and is not in the percentiles")
    finally:
        if projector.poll() is None:
            projector.terminate()  # SIGTERM: the batch in hand is finished, then it stops
        try:
            out, _ = projector.communicate(timeout=LOAD_STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            projector.kill()
            out, _ = projector.communicate(timeout=LOAD_STOP_WAIT_S)
        subscriber.terminate()
        try:
            _out, subscriber_err = subscriber.communicate(timeout=LOAD_STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            subscriber.kill()
            _out, subscriber_err = subscriber.communicate(timeout=LOAD_STOP_WAIT_S)
        if subscriber.returncode not in (0, -signal.SIGTERM):
            problems.append(f"subscriber exit {subscriber.returncode}: {subscriber_err[-500:]}")
        follower.join(timeout=10)
        log.close()
        try:
            result["projector_totals"] = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            result["projector_exit"] = projector.returncode
        if stamps_path.exists():
            result["where_the_time_goes"] = latency_breakdown(sent_at, json.loads(stamps_path.read_text()),
                                                              arrivals)
            stamps_path.unlink()
        if problems:
            result["error"] = "; ".join(problems)
        remove_db(store_path)
        clock_path.unlink(missing_ok=True)
    return result


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system, every thread) used so far by this process
    (the sender), by each named child process, and by the whole machine."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"sender": sum(os.times()[:2])}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    try:
        cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        out["machine_busy"] = (sum(int(v) for v in cpu) - int(cpu[3]) - int(cpu[4])) / tick  # less idle, iowait
    except (OSError, IndexError, ValueError):
        pass
    return out


def cpu_shares(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, Any]:
    """Each process's CPU over the load as a share of one core, and the whole
    machine's as a share of all its cores; what no process here names (the
    broker, the system) is the rest of the machine's."""
    shares = {f"{name}_core_share": round((after[name] - before[name]) / seconds, 2)
              for name in before if name in after and name != "machine_busy"}
    if "machine_busy" in before and "machine_busy" in after:
        busy_cores = (after["machine_busy"] - before["machine_busy"]) / seconds
        shares["rest_core_share"] = round(busy_cores - sum(shares.values()), 2)
        shares["machine_busy_share"] = round(busy_cores / (os.cpu_count() or 1), 2)
    return shares


def latency_breakdown(sent_at: dict[str, float], stamps: dict[str, dict[str, float]],
                      arrivals: dict[str, float]) -> dict[str, Any]:
    """Each probe's latency cut at the projector's stamps: waiting to be taken
    from the log (the broker's fetch, and the projector busy with the batches
    before), its own batch applied, and from there to the subscriber (the
    producer, the broker, the subscriber's fetch)."""
    legs: dict[str, list[float]] = {"send_to_taken": [], "taken_to_applied": [], "applied_to_seen": []}
    for trace, sent in sent_at.items():
        stamp = stamps.get(trace, {})
        if trace not in arrivals or "taken" not in stamp or "applied" not in stamp:
            continue
        legs["send_to_taken"].append(stamp["taken"] - sent)
        legs["taken_to_applied"].append(stamp["applied"] - stamp["taken"])
        legs["applied_to_seen"].append(arrivals[trace] - stamp["applied"])
    return {leg: percentiles(samples) for leg, samples in legs.items() if samples}


def cmd_latency(args: argparse.Namespace) -> dict[str, Any]:
    paths = Paths(args.data, args.size, args.seed, args.tag)
    ensure_data(paths)
    projector = ROOT / "consumers" / "kafka" / "group_projector.py"
    if not kafka_available() or not projector.exists():
        return emit(paths, "latency", {"state": "not measured: the Kafka adapter (consumers/log/kafka.py) "
                                                "or group projector (consumers/kafka/group_projector.py) is missing"})
    if args.rate:
        if args.fetch_max_wait_ms is not None and args.clock != "history":  # said before a broker is started
            raise SystemExit("--fetch-max-wait-ms needs --clock history (bench/history_clock.py passes it on)")
        paths.home.mkdir(parents=True, exist_ok=True)
        with kafka_broker(args.kafka or "auto") as broker:
            projector_args = [*(["--batch-max", str(args.batch_max)] if args.batch_max else []),
                              *(["--fetch-max-wait-ms", str(args.fetch_max_wait_ms)]
                                if args.fetch_max_wait_ms is not None else [])]
            result = measure_alert_latency_under_load(paths, broker["bootstrap"], rate=args.rate,
                                                      seconds=args.seconds, drain_s=args.drain, clock=args.clock,
                                                      broker_pids=broker.get("pids"),
                                                      projector_args=projector_args)
            result["broker"] = broker["kind"]
            result["broker_description"] = broker.get("description", broker["kind"])
        paths.tag = paths.tag or f"-load{args.rate}" + ("-history" if args.clock == "history" else "")
        return emit(paths, "latency", {"state": "measured" if "error" not in result else "failed", **result})
    if not args.kafka:
        return emit(paths, "latency", {"state": "not measured: pass --kafka auto (start a broker) or --kafka HOST:PORT"})
    paths.home.mkdir(parents=True, exist_ok=True)
    background = min(SIZES[args.size], LATENCY_BACKGROUND_MAX)
    probes = 5 if args.size == "tiny" else LATENCY_PROBES
    with kafka_broker(args.kafka) as broker:
        result = measure_alert_latency(paths, broker["bootstrap"], background=background, probes=probes)
        result["broker"] = broker["kind"]
    return emit(paths, "latency", {"state": "measured", **result})


# -- (4) query latency ------------------------------------------------------------------


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 3)

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3), "n": len(ordered)}


def measure_queries(store: Any, clock: datetime, seed: int, samples: int) -> dict[str, Any]:
    from ledger.policy import Policy
    from projections.queries import standing_alerts, whereabouts

    policy = Policy()
    lots = store.lots()
    rng = random.Random(seed)
    lot_ids = [rng.choice(lots)["lot_id"] for _ in range(samples)]
    holders = [rng.choice(lots)["holder"] for _ in range(samples)]

    def run(query: Callable[[str], Any], keys: list[str]) -> dict[str, float]:
        for key in keys[:20]:  # warm the page cache and the statement cache
            query(key)
        times = []
        for key in keys:
            started = time.perf_counter()
            query(key)
            times.append(time.perf_counter() - started)
        return percentiles(times)

    return {
        "lots_in_store": len(lots),
        "standing_alerts_in_store": len(store.standing_alerts(clock)),
        # What `ledger whereabouts LOT` and `ledger alerts --party P` call.
        "whereabouts_one_lot": run(lambda k: whereabouts(store, k, now=clock, policy=policy), lot_ids),
        "open_alerts_one_holder": run(
            lambda k: standing_alerts(store, now=clock, policy=policy, party=k), holders),
        # The indexed lookups underneath, to show where the time goes.
        "store_lots_by_lot_id": run(lambda k: store.lots(lot_id=k), lot_ids),
        "store_standing_alerts_by_party": run(lambda k: store.standing_alerts(clock, party=k), holders),
    }


def postgres_available() -> bool:
    return (ROOT / "projections" / "postgres_store.py").exists()


def cmd_query(args: argparse.Namespace) -> dict[str, Any]:
    from projections.sqlite_store import SQLiteProjectionStore

    paths = Paths(args.data, args.size, args.seed, args.tag)
    expected = ensure_data(paths)
    if not paths.store.exists():
        raise SystemExit(f"no store at {paths.store}: run `python -m bench.run replay --size {args.size}` first")
    clock = datetime.fromisoformat(expected["check_clock"])
    store = SQLiteProjectionStore(paths.store)
    try:
        samples = args.samples or (QUERY_SAMPLES_TINY if args.size == "tiny" else QUERY_SAMPLES)
        sqlite_result = measure_queries(store, clock, args.seed, samples)
    finally:
        store.close()
    result: dict[str, Any] = {"sqlite": sqlite_result, "target_p99_ms_max": 5.0}
    if not postgres_available():
        result["postgresql"] = "not measured: projections/postgres_store.py does not exist"
    elif args.postgres:
        result["postgresql"] = query_postgres(paths, expected, args)
    else:
        result["postgresql"] = "not measured: pass --postgres URL to replay into PostgreSQL and query it"
    return emit(paths, "query", result)


def query_postgres(paths: Paths, expected: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from consumers.bootstrap import open_store
    from consumers.log.embedded import EmbeddedLog
    from consumers.projector import catch_up
    from ledger.policy import Policy

    clock = datetime.fromisoformat(expected["check_clock"])
    if not args.postgres_keep:
        reset_postgres_schema(args.postgres)
    store = open_store(args.postgres)
    log = EmbeddedLog(paths.log)
    try:
        # With --postgres-keep, a store already caught up replays nothing here.
        replay_s, totals = timed(lambda: catch_up(log, store, policy=Policy(), clock=lambda: clock))
        out = measure_queries(store, clock, args.seed, args.samples or QUERY_SAMPLES)
        out["replay_s"] = round(replay_s, 3)
        out["replayed_records"] = totals.records
        out["alerts"] = compare_alerts(expected, store)
        return out
    finally:
        log.close()
        store.close()


def reset_postgres_schema(url: str) -> None:
    """Drop the URL's schema (``?schema=NAME``, required and not ``public``), so
    the replay starts from an empty store and touches nothing of anyone else's."""
    import psycopg
    from psycopg import sql
    from urllib.parse import parse_qs, urlparse

    parsed = urlparse(url)
    schema = (parse_qs(parsed.query).get("schema") or [""])[0]
    if not schema.startswith("bench_"):
        raise SystemExit(f"--postgres {url!r}: name a schema of the benchmark's own, ?schema=bench_...")
    conninfo = parsed._replace(scheme="postgresql", query="").geturl()
    with psycopg.connect(conninfo, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# -- (5) growth ---------------------------------------------------------------------------


def cmd_growth(args: argparse.Namespace) -> dict[str, Any]:
    """Generate, ingest and replay each size in its own process; compare the
    times each figure measured itself and each process's peak RSS."""
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    rows = {}
    for size in sizes:
        row: dict[str, Any] = {}
        results: dict[str, dict[str, Any]] = {}
        for figure in ("generate", "ingest", "replay"):
            kept = Paths(args.data, size, args.seed, "growth").result(figure)
            if args.reuse and kept.exists():
                results[figure] = json.loads(kept.read_text())
                continue
            command = [sys.executable, "-m", "bench.run", figure, "--size", size, "--seed", str(args.seed),
                       "--data", str(args.data), "--tag", "growth"]
            if figure == "replay" and args.replay_time_limit:
                command += ["--time-limit", str(args.replay_time_limit)]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
            results[figure] = json.loads(done.stdout)
        generate, ingest, replay = results["generate"], results["ingest"], results["replay"]
        row["events"], row["traces"], row["lots"] = generate["events"], generate["traces"], generate["lots"]
        row["generate"] = {"s": generate["seconds"], "peak_rss_mb": generate["peak_rss_mb"]}
        row["ingest"] = {"s": ingest["embedded_s"], "events_per_s": ingest["embedded_events_per_s"],
                         "ratio_vs_raw": ingest["ratio_vs_raw"], "peak_rss_mb": ingest["peak_rss_mb"]}
        # The process's peak by the end of the replay, before the alert check
        # (older results: the last point of the throughput curve).
        replay_rss = replay.get("peak_rss_mb_after_replay") or (
            replay["curve"][-1]["peak_rss_mb"] if replay["curve"] else replay["peak_rss_mb"])
        row["replay"] = {"s": replay["replay_s"], "records": replay["records"],
                         "replayed_records": replay["replayed_records"], "complete": replay["complete"],
                         "events_per_s": replay["replay_events_per_s"], "ratio_vs_floor": replay["ratio_vs_floor"],
                         "peak_rss_mb": replay_rss, "peak_rss_mb_with_check": replay["peak_rss_mb"],
                         "alerts_match": replay["alerts"]["match"],
                         "code": replay["machine"].get("code")}
        row["replay_curve"] = replay["curve"]
        rows[size] = row
    ratios = {}
    if len(sizes) >= 2:
        small, large = rows[sizes[0]], rows[sizes[-1]]
        ratios["events_ratio"] = round(large["events"] / small["events"], 2)
        ratios["lots_ratio"] = round(large["lots"] / small["lots"], 2)
        for figure in ("generate", "ingest", "replay"):
            ratios[f"{figure}_time_ratio"] = round(large[figure]["s"] / small[figure]["s"], 2)
            ratios[f"{figure}_rss_ratio"] = round(large[figure]["peak_rss_mb"] / small[figure]["peak_rss_mb"], 2)
        # Per replayed record, so a replay stopped at the time limit still compares.
        ratios["replay_s_per_record_ratio"] = round(
            (large["replay"]["s"] / large["replay"]["replayed_records"])
            / (small["replay"]["s"] / small["replay"]["replayed_records"]), 2)
    paths = Paths(args.data, "-".join(sizes), args.seed)
    return emit(paths, "growth", {"sizes": rows, "ratios": ratios})


# -- generate and all ---------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> dict[str, Any]:
    paths = Paths(args.data, args.size, args.seed, args.tag)
    elapsed, summary = timed(lambda: write(SIZES[args.size], args.seed, paths.jsonl, paths.expected))
    return emit(paths, "generate", {
        "file": str(paths.jsonl), "events": summary.events, "traces": summary.traces, "lots": summary.lots,
        "licenses": summary.licenses, "expected_alerts": len(summary.expected),
        "fates": dict(sorted(summary.fates.items())), "seconds": round(elapsed, 2),
        "mb": round(paths.jsonl.stat().st_size / 2**20, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
    })


def cmd_all(args: argparse.Namespace) -> dict[str, Any]:
    """Each figure in its own process, so each peak RSS is its own."""
    out = {}
    for figure in ("generate", "ingest", "replay", "query", "latency"):
        command = [sys.executable, "-m", "bench.run", figure, "--size", args.size, "--seed", str(args.seed),
                   "--data", str(args.data)]
        if args.profile and figure in ("ingest", "replay"):
            command.append("--profile")
        if args.postgres and figure == "query":
            command += ["--postgres", args.postgres]
        if args.kafka and figure in ("ingest", "latency"):
            command += ["--kafka", args.kafka]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        out[figure] = json.loads(done.stdout)
    paths = Paths(args.data, args.size, args.seed, args.tag)
    replay = out["replay"]
    summary = {
        "ingest_ratio_vs_raw": out["ingest"]["ratio_vs_raw"],
        "ingest_events_per_s": out["ingest"]["embedded_events_per_s"],
        "replay_ratio_vs_floor": replay["ratio_vs_floor"],
        "replay_events_per_s": replay["replay_events_per_s"],
        "alerts_match": replay["alerts"]["match"],
        "whereabouts_p99_ms": out["query"]["sqlite"]["whereabouts_one_lot"]["p99_ms"],
        "open_alerts_p99_ms": out["query"]["sqlite"]["open_alerts_one_holder"]["p99_ms"],
    }
    emit(paths, "all", {"summary": summary})
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["duckdb"]:  # its own options: bench/duckdb_baseline.py
        from bench.duckdb_baseline import main as duckdb_main

        return duckdb_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="figure", required=True)
    for name, run in (("generate", cmd_generate), ("ingest", cmd_ingest), ("replay", cmd_replay),
                      ("latency", cmd_latency), ("query", cmd_query), ("growth", cmd_growth), ("all", cmd_all)):
        p = sub.add_parser(name)
        p.set_defaults(run=run)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
        p.add_argument("--tag", default="", help="suffix of the results file name")
        if name == "growth":
            p.add_argument("--sizes", default="100k,1M", help="comma-separated, of " + ", ".join(SIZES))
            p.add_argument("--reuse", action="store_true",
                           help="use results of earlier growth runs (results-*-growth.json) where present")
            p.add_argument("--replay-time-limit", type=float,
                           help="stop each replay after this many seconds; times are then compared per record")
        else:
            p.add_argument("--size", choices=list(SIZES), default="100k")
        if name in ("ingest", "replay", "all"):
            p.add_argument("--profile", action="store_true", help="write a cProfile summary")
        if name in ("ingest", "latency", "all"):
            p.add_argument("--kafka", help="'auto' (start a broker) or HOST:PORT: also measure on Kafka")
        if name == "latency":
            p.add_argument("--rate", type=int, help="reports/s of steady background load (with probes among "
                                                    "them); starts a broker unless --kafka names one")
            p.add_argument("--seconds", type=float, default=30.0, help="how long the load runs (with --rate)")
            p.add_argument("--clock", choices=("wall", "history"), default="wall",
                           help="with --rate: the projector's now. wall: the wall clock, so the years-old "
                                "history is a backfill (every transient state overdue, ~1.3 alert transitions "
                                "per report); history: the latest occurred_at sent, the stream as it "
                                "happened (bench/history_clock.py)")
            p.add_argument("--drain", type=float, default=LOAD_DRAIN_WAIT_MAX_S,
                           help="after the load, wait at most this long for probes' alerts (with --rate)")
            p.add_argument("--batch-max", type=int, default=None,
                           help="with --rate: the projector's records per poll (default: its own, "
                                "consumers/kafka/group_projector.py POLL_RECORDS_MAX)")
            p.add_argument("--fetch-max-wait-ms", type=int, default=None,
                           help="with --rate --clock history: the projector's fetch_max_wait_ms "
                                "(default: GROUP_CONSUMER_SETTINGS', 100)")
        if name == "replay":
            p.add_argument("--mode", choices=REPLAY_MODES, default="rebuild",
                           help="rebuild: trace by trace, as `ledger replay` does (default); catch-up: in "
                                "offset order, as a projector behind its log does")
            p.add_argument("--time-limit", type=float, help="stop the replay after this many seconds "
                                                            "(the figure then covers the records replayed)")
        if name == "all":
            p.add_argument("--postgres", help="also replay into and query PostgreSQL at this URL "
                                              "(postgresql://...?schema=bench_NAME; the schema is dropped first)")
        if name == "query":
            p.add_argument("--samples", type=int, help=f"queries per figure (default {QUERY_SAMPLES})")
            p.add_argument("--postgres", help="postgresql://...?schema=bench_NAME to replay into and query "
                                              "(the schema is dropped first)")
            p.add_argument("--postgres-keep", action="store_true",
                           help="keep the schema and only catch it up (the queries of a store replayed earlier)")
    # Listed for --help; handled above, before parsing (bench/duckdb_baseline.py has its own options).
    sub.add_parser("duckdb", help="every lot's account in DuckDB SQL against the ledger's (issue 18)")
    args = parser.parse_args(argv)
    result = args.run(args)
    if args.figure == "replay" and result["alerts"]["match"] is False:
        print("the ledger's alerts differ from the generator's expectation", file=sys.stderr)
        return 1
    if args.figure == "all" and not result["replay"]["alerts"]["match"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
