"""The projector's alert publisher sends without waiting for the broker, and
records a transition as published only once the broker acknowledged it: a
crash or a lost broker re-sends (same transition ids), never loses."""

from __future__ import annotations

import json

import pytest
from fixtures_kafka import fixed_clock, story_lines

from consumers.embedded_log import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.kafka.alert_publisher import AlertPublisher, published_seq
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
    from consumers.kafka.broker import start_broker

    store = story_store(tmp_path)
    with start_broker() as broker:
        log = KafkaLog(broker.bootstrap, "gone", send_timeout_s=2)
        publisher = AlertPublisher(store, log)
        log.producer  # noqa: B018 - connected before the broker goes
    publisher.publish()  # handed over: no waiting here
    with pytest.raises(LogUnavailable):
        publisher.settle(wait=True)
    assert published_seq(store, log) == 0  # a restart sends them all again
    log.close()
    store.close()
