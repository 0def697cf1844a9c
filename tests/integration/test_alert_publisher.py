"""The alert publisher commits each page of transitions in one Kafka
transaction with its "published up to seq" marker: a new publisher resumes
after the marker Kafka committed (not the store's record), a zombie is
fenced, and a lost broker leaves nothing counted as published."""

from __future__ import annotations

import json

from collections import Counter

import pytest
from fixtures_kafka import committed_alerts, fixed_clock, story_lines
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from consumers.client import LedgerClient
from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.kafka.alert_publisher import (AlertPublisher, PublishedMarker, committed_marker,
                                             publish_alerts, published_seq)
from consumers.kafka.alert_publisher import _messages as alert_publisher_messages
from consumers.kafka.group_projector import GroupProjector
from consumers.log.kafka import KafkaLog
from consumers.projector import catch_up
from consumers.bootstrap import load_policy
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


def raw_uncommitted(log: KafkaLog) -> list[dict]:
    """The alerts topic as a read_uncommitted reader sees it: aborted pages too."""
    consumer = KafkaConsumer(bootstrap_servers=log.bootstrap.split(","), group_id=None,
                             isolation_level="read_uncommitted", enable_auto_commit=False)
    try:
        tps = [TopicPartition(log.alerts_topic, p) for p in log.topic_partitions(log.alerts_topic)]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        consumer.seek_to_beginning(*tps)
        out: list[dict] = []
        for _poll in range(200):
            if all(consumer.position(tp) >= ends[tp] for tp in tps):
                break
            out += [json.loads(r.value) for rs in consumer.poll(timeout_ms=200).values() for r in rs]
        return out
    finally:
        consumer.close()


def test_each_page_commits_with_its_marker_and_a_new_publisher_resumes_after_it(kafka_url, tmp_path):
    store = story_store(tmp_path)
    journal = store.journal(after_seq=0, limit=10_000)
    log = KafkaLog.from_url(kafka_url)
    assert committed_marker(log) == PublishedMarker(0, None)
    publisher = AlertPublisher(store, log, batch_max=3)  # several pages, several transactions

    assert publisher.publish() + publisher.settle() == len(journal) > 3
    assert published_seq(store, log) == journal[-1]["seq"]  # the store's record follows the commit
    sent = committed_alerts(log, len(journal))  # the last commit's markers written
    assert committed_marker(log) == PublishedMarker(journal[-1]["seq"], journal[-1]["transition_id"])
    assert sorted(m["transition_id"] for m in sent) == sorted(e["transition_id"] for e in journal)
    for alert_id in {e["alert_id"] for e in journal}:  # each alert's transitions in journal order
        assert [m["seq"] for m in sent if m["alert_id"] == alert_id] == sorted(
            e["seq"] for e in journal if e["alert_id"] == alert_id)
    assert publisher.publish() + publisher.settle() == 0  # nothing new: nothing sent twice
    publisher.close()
    assert publish_alerts(store, log) == 0  # another publisher: resumes after Kafka's marker
    assert Counter(m["transition_id"] for m in on_topic(log)) == Counter(e["transition_id"] for e in journal)
    log.close()
    store.close()


def test_a_commit_the_store_never_recorded_is_not_sent_again(kafka_url, tmp_path, monkeypatch):
    # The publisher dies between Kafka's commit and the store's record (here:
    # the record is never written).  The next one reads Kafka's marker.
    import consumers.kafka.alert_publisher as alert_publisher

    store = story_store(tmp_path)
    journal = store.journal(after_seq=0, limit=10_000)
    log = KafkaLog.from_url(kafka_url)
    with monkeypatch.context() as patched:
        patched.setattr(alert_publisher, "_record_published", lambda *_args: None)
        assert publish_alerts(store, log) == len(journal)
    assert published_seq(store, log) == 0  # the store knows nothing of it
    assert publish_alerts(store, log) == 0
    assert Counter(m["transition_id"] for m in on_topic(log)) == Counter(e["transition_id"] for e in journal)
    log.close()
    store.close()


def test_a_zombie_publisher_is_fenced_and_its_open_page_never_reaches_committed_readers(kafka_url, tmp_path):
    store = story_store(tmp_path)
    journal = store.journal(after_seq=0, limit=10_000)
    log = KafkaLog.from_url(kafka_url)
    # The zombie: it sent a page and its marker, and stalls before committing
    # (a projector paused by GC, or cut off from the coordinator).
    zombie = AlertPublisher(store, log, batch_max=4)
    zombie.start()
    producer = zombie._producer
    producer.begin_transaction()
    for key, value, headers in alert_publisher_messages(journal[:4]):
        producer.send(log.alerts_topic, key=key.encode(), value=value, headers=headers)
    producer.flush(timeout=10)

    # Its successor takes the role: the open page is aborted, everything published once.
    successor = AlertPublisher(store, log)
    assert successor.publish() + successor.settle() == len(journal)
    with pytest.raises(KafkaError):  # the zombie cannot commit
        producer.commit_transaction()
    zombie.close()
    successor.close()

    committed = Counter(m["transition_id"] for m in committed_alerts(log, len(journal)))
    assert committed == Counter(e["transition_id"] for e in journal)
    # A reader that ignores transactions would see the aborted copies: the
    # documented subscriber setting, read_committed, is what keeps them out.
    uncommitted = Counter(m["transition_id"] for m in raw_uncommitted(log))
    assert sum(uncommitted.values()) - sum(committed.values()) == 4
    log.close()
    store.close()


def test_a_broker_gone_before_the_commit_raises_and_nothing_counts_as_published(tmp_path):
    from services.kafka_broker import start_broker

    store = story_store(tmp_path)
    with start_broker() as broker:
        log = KafkaLog(broker.bootstrap, "gone", send_timeout_s=2)
        publisher = AlertPublisher(store, log)
        publisher.start()  # the role taken, the marker read, before the broker goes
    with pytest.raises(LogUnavailable):
        publisher.publish()  # the commit begun, not awaited ...
        publisher.settle()  # ... and not answered within the bound
    assert published_seq(store, log) == 0 and publisher.committed_seq == 0
    publisher.close()
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
    raw = Counter(m["transition_id"] for m in committed_alerts(log, len(journal)))
    assert raw == Counter(e["transition_id"] for e in journal)  # every one, once
    log.close()
    store.close()


def test_a_fenced_publisher_starts_over_from_the_marker_and_sends_nothing_twice(kafka_url, tmp_path):
    # Two members sharing a store: A took the role, then B took it from A and
    # published everything.  A publishes again (it got partition 0 back, or
    # it stops): its next transaction finds it fenced, it takes the role
    # back, reads Kafka's marker and finds nothing left to send.
    store = story_store(tmp_path)
    journal = store.journal(after_seq=0, limit=10_000)
    log = KafkaLog.from_url(kafka_url)
    first, second = AlertPublisher(store, log), AlertPublisher(store, log)
    first.start()
    assert second.publish() + second.settle() == len(journal)
    assert first.publish() + first.settle() == 0
    assert first.fenced == 1 and first.committed_seq == journal[-1]["seq"]
    raw = Counter(m["transition_id"] for m in committed_alerts(log, len(journal)))
    assert raw == Counter(e["transition_id"] for e in journal)
    first.close()
    second.close()
    log.close()
    store.close()
