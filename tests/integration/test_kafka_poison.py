"""A record the projector cannot handle never stops it, on a real broker.

- A record as large as Apache Kafka accepts by default (1,048,450 bytes)
  that is not a report: its dead-letter copy, with headers, would be too
  large to send, so it is dead-lettered by reference (topic, partition,
  offset, SHA-256, size, a bounded prefix) and the projector goes on, now
  and on every restart.
- Records compressed with snappy, lz4 and zstd (and gzip) are read: the
  story sent compressed projects to the same state as sent plain.
"""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from fixtures_kafka import LEDGER, PROCESS_TIMEOUT_S, fixed_clock, ledger_env, projected_alike, story_lines
from kafka import KafkaProducer

from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.kafka.group_projector import (
    DEAD_LETTER_COPY_BYTES_MAX,
    DEAD_LETTER_PREFIX_BYTES,
    GroupProjector,
    publish_dead_letters,
)
from consumers.log.kafka import KafkaLog
from consumers.projector import catch_up
from consumers.bootstrap import load_policy
from projections.sqlite_store import SQLiteProjectionStore

TRACE = "TR-HF-2019-0001"
OVERSIZED_BYTES = 1_048_450  # within Apache Kafka's default message.max.bytes (1,048,588)
CODECS = ("gzip", "snappy", "lz4", "zstd")


def the_story_embedded(tmp_path):  # type: ignore[no-untyped-def]
    """The story on the embedded log: its records as stored (key, value,
    headers) and the store they project to."""
    log = EmbeddedLog(tmp_path / "log.db")
    ingest_lines(story_lines(), log, source="story", clock=fixed_clock)
    store = SQLiteProjectionStore(tmp_path / "embedded.db")
    catch_up(log, store, policy=load_policy(None), clock=fixed_clock)
    records = log.read(0, 0, 1000)
    log.close()
    return records, store


def dead_letters_on_the_topic(log: KafkaLog) -> list:
    return [r for p in log.topic_partitions(log.dead_letters_topic)
            for r in log.read_topic(log.dead_letters_topic, p, 0, 100)]


def test_an_oversized_record_is_dead_lettered_by_reference_and_the_projector_goes_on(kafka_url, tmp_path):
    policy = load_policy(None)
    log = KafkaLog.from_url(kafka_url)
    records, embedded = the_story_embedded(tmp_path)
    huge = b"{" + b"x" * (OVERSIZED_BYTES - 1)
    half = len(records) // 2
    log.send(log.events_topic, [(r.key, r.value, list(r.headers)) for r in records[:half]])
    [(partition, offset)] = log.send(log.events_topic, [(TRACE, huge, [])])
    log.send(log.events_topic, [(r.key, r.value, list(r.headers)) for r in records[half:]])

    store = SQLiteProjectionStore(tmp_path / "kafka.db")
    totals = GroupProjector(log, store, group="poison", policy=policy, clock=fixed_clock).run(until=log.end_offsets())
    assert totals.dead_letters == 1
    assert totals.dead_letters_published == 1
    assert projected_alike(store, embedded, quarantined=True)  # every report around it applied
    flagged = [a for a in store.standing_alerts(fixed_clock()) if a["kind"] == "quarantined"]
    assert [a["trace_id"] for a in flagged] == [TRACE]  # and the trace it was keyed by is flagged

    # The store keeps the whole record; the topic gets a reference to it.
    [kept] = store.dead_letters()
    assert (kept["partition"], kept["offset"], bytes(kept["value"])) == (partition, offset, huge)
    [letter] = dead_letters_on_the_topic(log)
    headers = dict(letter.headers)
    assert headers["copy"] == b"by-reference"
    assert (headers["original_topic"], headers["original_partition"], headers["original_offset"]) == (
        log.events_topic.encode(), str(partition).encode(), str(offset).encode())
    reference = json.loads(letter.value)
    assert reference == {
        "by_reference": True, "original_topic": log.events_topic, "original_partition": partition,
        "original_offset": offset, "key": TRACE, "bytes": OVERSIZED_BYTES,
        "sha256": hashlib.sha256(huge).hexdigest(), "prefix": huge[:DEAD_LETTER_PREFIX_BYTES].decode(),
        "prefix_bytes": DEAD_LETTER_PREFIX_BYTES, "error": kept["error"][:len(reference["error"])],
    }
    assert len(letter.value) < DEAD_LETTER_COPY_BYTES_MAX

    # A restart does not stop on it either, and sends nothing twice.
    again = GroupProjector(log, store, group="poison", policy=policy, clock=fixed_clock).run(until=log.end_offsets())
    assert (again.records, again.dead_letters_published) == (0, 0)
    assert publish_dead_letters(store, log) == 0
    assert len(dead_letters_on_the_topic(log)) == 1
    log.close()


def test_a_small_dead_letter_is_still_sent_as_a_copy(kafka_url, tmp_path):
    log = KafkaLog.from_url(kafka_url)
    [(partition, offset)] = log.send(log.events_topic, [(TRACE, b"not json", [])])
    store = SQLiteProjectionStore(tmp_path / "kafka.db")
    GroupProjector(log, store, group="small", policy=load_policy(None), clock=fixed_clock).run(until=log.end_offsets())
    [letter] = dead_letters_on_the_topic(log)
    assert letter.value == b"not json"
    assert dict(letter.headers)["copy"] == b"whole"
    log.close()


@pytest.mark.parametrize("codec", CODECS)
def test_reports_sent_compressed_are_projected(kafka_url, kafka_bootstrap, tmp_path, codec):
    log = KafkaLog.from_url(kafka_url)
    records, embedded = the_story_embedded(tmp_path)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","), compression_type=codec, acks="all")
    try:
        for r in records:
            producer.send(log.events_topic, key=r.key.encode(), value=r.value, headers=list(r.headers))
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)

    store = SQLiteProjectionStore(tmp_path / f"{codec}.db")
    totals = GroupProjector(log, store, group=codec, policy=load_policy(None),
                            clock=fixed_clock).run(until=log.end_offsets())
    assert (totals.records, totals.dead_letters) == (len(records), 0)
    assert projected_alike(store, embedded)
    assert any(lot["lot_id"] == "HF-0001" for lot in store.lots())
    log.close()


def test_verify_on_kafka_names_a_report_that_does_not_match_its_digest_and_counts_records_that_are_not_reports(
    kafka_url, tmp_path
):
    # A producer that sends what it did not digest: the 70 consumed now says 7,
    # its digest header still names 70.  And one record that is no report.
    log = KafkaLog.from_url(kafka_url)
    records, _embedded = the_story_embedded(tmp_path)
    changed = next(r for r in records if b'"semi-use-2019-0820-001"' in r.value)
    sent = []
    for r in records:
        value = r.value.replace(b'"70"', b'"7"') if r is changed else r.value
        sent.append(log.send(log.events_topic, [(r.key, value, list(r.headers))])[0])
    log.send(log.events_topic, [(TRACE, b"not json", [])])
    partition, offset = sent[records.index(changed)]
    log.close()

    store = f"sqlite:///{tmp_path / 'kafka.db'}"
    run = lambda *args: subprocess.run([str(LEDGER), *args, "--log", kafka_url, "--store", store],  # noqa: E731
                                       capture_output=True, text=True, env=ledger_env(), timeout=PROCESS_TIMEOUT_S)
    assert run("project").returncode == 0
    result = run("verify", "--json")
    assert result.returncode == 4, result.stderr
    found = json.loads(result.stdout)
    assert found["log"]["not_reports"] == 1
    assert found["log"]["problem_count"] == 1
    assert found["log"]["problems"][0].startswith(
        f"partition {partition} offset {offset}: report 'semi-use-2019-0820-001' does not match its stored digest")
    assert found["store"]["problems"] == [] and found["belongs"]["problem"] is None

    result = run("replay")
    assert result.returncode == 4
    assert "nothing was replayed or replaced" in result.stderr
