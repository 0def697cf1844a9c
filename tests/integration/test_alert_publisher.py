"""The projector's alert publisher sends without waiting for the broker, and
records a transition as published only once the broker acknowledged it: a
crash or a lost broker re-sends (same transition ids), never loses."""

from __future__ import annotations

import json

import pytest
from fixtures_kafka import fixed_clock, story_lines

from collections import Counter

from consumers.client import LedgerClient
from consumers.embedded_log import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.kafka.alert_publisher import AlertPublisher, published_seq
from consumers.kafka.group_projector import GroupProjector
from consumers.kafka.log import KafkaLog
from consumers.projector import catch_up
from ledger.policy import load_policy
from ledger.ports import LogUnavailable
from projections.sqlite_store import SQLiteProjectionStore


def story_store(tmp_path) -> SQLiteProjectionStore:
    """The 2019 story projected (embedded): its alert journal is the outbox."""
    log = EmbeddedLog(tmp_path / "log.db")
    ingest_lines(story_lines(), log, source="story", clock=fixed_clock)
    store = SQLiteProjectionStore(tmp_path / "store.db")
    catch_up(log, store, policy=load_policy(None), clock=fixed_clock)
    log.close()
    return store


def on_topic(log: KafkaLog) -> list[dict]:
    return [json.loads(record.value) for partition in log.topic_partitions(log.alerts_topic)
            for record in log.read_topic(log.alerts_topic, partition, 0, 10_000)]


def test_transitions_count_as_published_only_once_acknowledged(kafka_url, tmp_path):
    store = story_store(tmp_path)
    journal = store.journal(after_seq=0, limit=10_000)
    log = KafkaLog.from_url(kafka_url)
    publisher = AlertPublisher(store, log)

    handed = publisher.publish()
    assert handed == len(journal) > 0
    assert published_seq(store, log) == 0  # handed to the producer, not yet known acknowledged
    publisher.settle(wait=True)
    assert published_seq(store, log) == journal[-1]["seq"]
    assert publisher.in_flight == 0

    sent = on_topic(log)
    assert sorted(m["transition_id"] for m in sent) == sorted(e["transition_id"] for e in journal)
    for alert_id in {e["alert_id"] for e in journal}:  # each alert's transitions in journal order
        assert [m["seq"] for m in sent if m["alert_id"] == alert_id] == sorted(
            e["seq"] for e in journal if e["alert_id"] == alert_id)
    assert publisher.publish() == 0  # nothing new: nothing sent twice
    log.close()
    store.close()


def test_a_broker_gone_before_acknowledging_raises_and_nothing_counts_as_published(tmp_path):
    from services.kafka_broker import start_broker

    store = story_store(tmp_path)
    with start_broker() as broker:
        log = KafkaLog(broker.bootstrap, "gone", send_timeout_s=2)
        publisher = AlertPublisher(store, log)
        # Connected, and the alerts topic known, before the broker goes.
        log.producer.partitions_for(log.alerts_topic)
    publisher.publish()  # handed over: no waiting here
    with pytest.raises(LogUnavailable):
        publisher.settle(wait=True)
    assert published_seq(store, log) == 0  # a restart sends them all again
    # What was in flight is forgotten, not skipped: settling again records nothing.
    assert publisher.in_flight == 0
    publisher.settle()
    assert published_seq(store, log) == 0
    log.close()
    store.close()


def test_a_projector_stopped_mid_stream_records_what_it_published_and_sent_each_once(kafka_url, tmp_path):
    log = KafkaLog.from_url(kafka_url)
    with LedgerClient(log, clock=fixed_clock) as client:
        client.send(story_lines())
    store = SQLiteProjectionStore(tmp_path / "store.db")
    projector = GroupProjector(log, store, group="stops", policy=load_policy(None), clock=fixed_clock)
    # Stopped (as SIGTERM stops it) right after the batch that journaled and
    # handed over the transitions, before any idle poll could settle them.
    totals = projector.run(stop=lambda: projector.totals.batches >= 1)

    journal = store.journal(after_seq=0, limit=10_000)
    assert totals.records == len(story_lines()) and journal
    assert published_seq(store, log) == journal[-1]["seq"]  # recorded on the way out
    raw = Counter(m["transition_id"] for m in on_topic(log))
    assert raw == Counter(e["transition_id"] for e in journal)  # every one, once
    log.close()
    store.close()
