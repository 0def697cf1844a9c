"""Clients that are not ours: librdkafka (confluent-kafka from PyPI) and the
Java client (kafka-clients, tests/interop/java, built by Maven once and
cached) each send a scenario's reports using only what docs/KAFKA.md ("For
a team in another language") tells, and read the alerts topic as it tells;
the ledger's answers equal an embedded run of the same reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from fixtures_kafka import (FIXED_CLOCK, LEDGER, PROCESS_TIMEOUT_S, ROOT, answers, committed_alerts, fixed_clock,
                            ledger_env, many_traces, story_lines)

from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.kafka.alert_publisher import AlertMessage, alert_json_schema
from consumers.kafka.group_projector import GroupProjector
from consumers.log.kafka import KafkaLog, partition_for
from consumers.projector import catch_up
from consumers.bootstrap import load_policy
from projections.sqlite_store import SQLiteProjectionStore

FLUSH_TIMEOUT_S = 30.0
POLL_ROUNDS_MAX = 600  # of POLL_TIMEOUT_S each
POLL_TIMEOUT_S = 0.1
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")  # every one Kafka defines

JAVA_PROJECT = ROOT / "tests" / "interop" / "java"
MAVEN_BUILD_TIMEOUT_S = 600.0  # the first build fetches Maven's plugins and kafka-clients

# What docs/KAFKA.md tells a librdkafka team to set, and nothing else.
DOCUMENTED_PRODUCER = {"partitioner": "murmur2_random", "enable.idempotence": True, "acks": "all"}
DOCUMENTED_CONSUMER = {"isolation.level": "read_committed", "enable.auto.commit": False,
                       "auto.offset.reset": "earliest"}


def documented_report(line_or_report: str | dict[str, Any]) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of one report, built as the docs say."""
    report = json.loads(line_or_report) if isinstance(line_or_report, str) else dict(line_or_report)
    report.setdefault("recorded_at", FIXED_CLOCK.isoformat())  # the sender stamps it
    key = f"license:{report['license_id']}" if report["type"] in ("license_granted", "license_revoked") \
        else report["trace_id"]
    headers = [("schema_version", str(report.get("schema_version", 1)).encode()),
               ("event_type", report["type"].encode()), ("event_id", report["event_id"].encode())]
    return key, json.dumps(report).encode(), headers


def produce(bootstrap: str, topic: str, messages: list[tuple[str, bytes, list[tuple[str, bytes]]]],
            **settings: Any) -> list[tuple[str, int]]:
    """Send with librdkafka; (key, partition) of each, once every one is acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, **DOCUMENTED_PRODUCER, **settings})
    placed: list[tuple[str, int]] = []
    failed: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failed.append(str(error))
        else:
            placed.append((message.key().decode(), message.partition()))

    for key, value, headers in messages:
        producer.produce(topic, key=key.encode(), value=value, headers=headers, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(FLUSH_TIMEOUT_S) == 0, "librdkafka did not deliver everything in time"
    assert not failed, failed
    return placed


def embedded_answers(lines: list[bytes], tmp_path) -> dict[str, object]:
    log = EmbeddedLog(tmp_path / "embedded-log.db")
    store = SQLiteProjectionStore(tmp_path / "embedded.db")
    ingest_lines([v.decode() for v in lines], log, source="embedded", clock=fixed_clock, trust_recorded_at=True)
    catch_up(log, store, policy=load_policy(None), clock=fixed_clock)
    log.close()
    return answers(store)


def test_librdkafka_interop_murmur2_random_puts_each_trace_where_the_ledger_does(kafka_url, kafka_bootstrap):
    log = KafkaLog.from_url(kafka_url)
    partitions = len(log.partitions())
    keys = [f"TR-INTEROP-{i:04d}" for i in range(200)] + ["license:JP-IND-2019-0001"]
    messages = [(key, b"{}", []) for key in keys]
    # Not the ledger's events topic (these are not reports): another prefix's,
    # with as many partitions.
    KafkaLog(kafka_bootstrap, f"{log.prefix}-scratch", partitions=partitions).close()
    scratch = f"{log.prefix}-scratch.events"
    placed = dict(produce(kafka_bootstrap, scratch, messages))
    assert placed == {key: partition_for(key, partitions) for key in keys}
    # librdkafka's default would split traces from where the ledger's own
    # producer (and the Java client) put them: why the docs name the setting.
    default = dict(produce(kafka_bootstrap, scratch, messages, partitioner="consistent_random"))
    assert sum(default[k] != placed[k] for k in keys) > len(keys) // 4
    log.close()


def test_librdkafka_interop_story_every_codec_alerts_read_committed(kafka_url, kafka_bootstrap, tmp_path):
    log = KafkaLog.from_url(kafka_url)  # the ledger creates its topics (docs: before anyone produces)
    partitions = len(log.partitions())
    messages = [documented_report(r) for r in story_lines() + many_traces(100)]
    # Each codec sends a share of the reports (a team picks one; the ledger takes all).
    placed: list[tuple[str, int]] = []
    for i, codec in enumerate(CODECS):
        placed += produce(kafka_bootstrap, log.events_topic, messages[i::len(CODECS)], **{"compression.type": codec})
    assert all(partition == partition_for(key, partitions) for key, partition in placed)

    store = SQLiteProjectionStore(tmp_path / "kafka.db")
    projector = GroupProjector(log, store, group="interop", policy=load_policy(None), clock=fixed_clock)
    totals = projector.run(until=log.end_offsets())
    assert totals.records == len(messages) and totals.dead_letters == 0
    assert answers(store) == embedded_answers([value for _k, value, _h in messages], tmp_path)

    # A dashboard in another language reads the alerts as the docs say.
    journal = store.journal(limit=1_000_000)
    committed_alerts(log, len(journal))  # the last commit's markers written: its end offsets include them
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"dash-{uuid.uuid4().hex[:8]}",
                         **DOCUMENTED_CONSUMER})
    try:
        tps = [TopicPartition(log.alerts_topic, p) for p in log.topic_partitions(log.alerts_topic)]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
        consumer.assign([TopicPartition(tp.topic, tp.partition, 0) for tp in tps])
        seen: list[dict[str, Any]] = []
        for _round in range(POLL_ROUNDS_MAX):
            message = consumer.poll(POLL_TIMEOUT_S)
            if message is not None and message.error() is None:
                seen.append(json.loads(message.value()))
            # Read to the end known at the start (transaction markers take
            # offsets too, so the position, not a count, says when).
            if all(ends[tp.partition] == 0 or tp.offset >= ends[tp.partition] for tp in consumer.position(tps)):
                break
    finally:
        consumer.close()
    assert Counter(m["transition_id"] for m in seen) == Counter(e["transition_id"] for e in journal)
    for message in seen:  # each one as `ledger schema --alerts` describes it
        AlertMessage.model_validate(message)
    log.close()


@pytest.mark.parametrize("key", ["TR-HF-2019-0001", "license:JP-IND-2019-0001", "TR-ÜBER-1"])
def test_interop_partition_for_is_the_java_clients_murmur2(key):
    # The formula the docs give (Java's Utils.toPositive(Utils.murmur2(key)) %
    # partitions) is what the ledger's own producer computes: kafka-python's
    # DefaultPartitioner, which producer_settings names explicitly.
    from kafka.partitioner.default import DefaultPartitioner

    class Cluster:
        def topics(self):
            return {"t"}

        def partitions_for_topic(self, _topic):
            return set(range(12))

        def available_partitions_for_topic(self, _topic):
            return set(range(12))

    assert DefaultPartitioner().partition("t", key, key.encode(), None, None, Cluster()) == partition_for(key, 12)


def test_interop_ledger_schema_alerts_writes_the_alert_message_schema():
    done = subprocess.run([str(LEDGER), "schema", "--alerts"], capture_output=True, text=True, env=ledger_env(),
                          timeout=PROCESS_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert schema == alert_json_schema()
    assert schema["title"] == "ledger.alert-transition" and schema["additionalProperties"] is False
    assert set(schema["required"]) == {"schema", "schema_version", "transition_id", "seq", "alert_id",
                                       "transition", "at"}


# -- the Java client ------------------------------------------------------------


@pytest.fixture(scope="session")
def java_interop() -> list[str]:
    """The command line of tests/interop/java's program, built with `mvn -q package`
    on first use into a cache keyed by the digest of its sources."""
    java, maven = shutil.which("java"), shutil.which("mvn")
    if java is None or maven is None:
        pytest.fail("the Java interop test needs java and mvn on PATH (as the Apache Kafka fixture does)",
                    pytrace=False)
    sources = sorted(p for p in JAVA_PROJECT.rglob("*") if p.is_file() and "target" not in p.parts)
    digest = hashlib.sha256(b"".join(p.relative_to(JAVA_PROJECT).as_posix().encode() + p.read_bytes()
                                     for p in sources)).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "traceability-ledger"
    built = base / f"interop-java-{digest}"
    if not (built / "ledger-interop-1.jar").is_file():
        base.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="interop-java-", dir=base))
        try:
            shutil.copytree(JAVA_PROJECT, work / "src-tree", ignore=shutil.ignore_patterns("target"))
            done = subprocess.run([maven, "-q", "-B", "package"], cwd=work / "src-tree", capture_output=True,
                                  text=True, timeout=MAVEN_BUILD_TIMEOUT_S)
            assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
            target = work / "src-tree" / "target"
            shutil.copy2(target / "ledger-interop-1.jar", target / "lib")
            try:
                (target / "lib").rename(built)
            except OSError:
                pass  # another run built the same sources first: use theirs
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return [java, "-cp", f"{built}/*", "ledger.interop.Interop"]


def test_java_interop_story_every_codec_alerts_read_committed(kafka_url, kafka_bootstrap, tmp_path, java_interop):
    log = KafkaLog.from_url(kafka_url)
    partitions = len(log.partitions())
    messages = [documented_report(r) for r in story_lines() + many_traces(100)]
    placed: list[tuple[str, int]] = []
    for i, codec in enumerate(CODECS):
        share = tmp_path / f"reports-{codec}.tsv"
        share.write_text("".join(
            f"{key}\t{json.loads(value)['type']}\t{json.loads(value)['event_id']}\t{value.decode()}\n"
            for key, value, _headers in messages[i::len(CODECS)]))
        done = subprocess.run([*java_interop, "produce", kafka_bootstrap, log.events_topic, str(share), codec],
                              capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
        assert done.returncode == 0, done.stderr[-3000:]
        placed += [(key, int(partition)) for key, partition, _offset in
                   (line.split("\t") for line in done.stdout.splitlines())]
    assert len(placed) == len(messages)
    # The Java client's default partitioner puts each trace where the ledger's producer does.
    assert all(partition == partition_for(key, partitions) for key, partition in placed)

    store = SQLiteProjectionStore(tmp_path / "kafka.db")
    projector = GroupProjector(log, store, group="java", policy=load_policy(None), clock=fixed_clock)
    totals = projector.run(until=log.end_offsets())
    assert totals.records == len(messages) and totals.dead_letters == 0
    assert answers(store) == embedded_answers([value for _k, value, _h in messages], tmp_path)

    journal = store.journal(limit=1_000_000)
    committed_alerts(log, len(journal))  # the last commit's markers written: its end offsets include them
    read = subprocess.run([*java_interop, "consume", kafka_bootstrap, log.alerts_topic],
                          capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
    assert read.returncode == 0, read.stderr[-3000:]
    seen = [json.loads(line) for line in read.stdout.splitlines()]
    assert Counter(m["transition_id"] for m in seen) == Counter(e["transition_id"] for e in journal)
    for message in seen:
        AlertMessage.model_validate(message)
    log.close()
