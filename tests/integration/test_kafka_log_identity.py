"""A store projected from a Kafka topic that was lost and made again (same
name, new topic id) refuses to project it, in one clear error, instead of
waiting silently for offsets the new topic reaches only much later."""

from __future__ import annotations

import time

import pytest
from fixtures_kafka import WAIT_MAX_S, fixed_clock, story_lines
from kafka import KafkaAdminClient

from consumers.client import LedgerClient
from consumers.kafka.group_projector import GroupProjector
from consumers.log.kafka import KafkaLog
from consumers.log_check import LogMismatch
from consumers.projector import catch_up
from consumers.bootstrap import load_policy
from projections.sqlite_store import SQLiteProjectionStore


def made_again(url: str, bootstrap: str, topic: str) -> KafkaLog:
    """Delete ``topic`` and open the log again, which makes it anew (bounded wait:
    the broker deletes a topic in the background)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()
    deadline = time.monotonic() + WAIT_MAX_S
    while True:
        log = KafkaLog.from_url(url)
        if log.identity() is not None and log.end_offsets() and not any(log.end_offsets().values()):
            return log
        log.close()
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic} was not made again within {WAIT_MAX_S} s")
        time.sleep(0.2)


def test_a_store_refuses_a_topic_made_again_under_the_same_name(kafka_url, kafka_bootstrap, tmp_path):
    policy = load_policy(None)
    log = KafkaLog.from_url(kafka_url)
    first = log.identity()
    if first is None:
        pytest.skip("this broker gives topics no id (Tansu, or Kafka before 2.8)")
    with LedgerClient(log, clock=fixed_clock) as client:
        client.send(story_lines())
    store = SQLiteProjectionStore(tmp_path / "kafka.db")
    assert catch_up(log, store, policy=policy, clock=fixed_clock).records > 0
    assert store.log_identity(log.name) == first
    log.close()

    log = made_again(kafka_url, kafka_bootstrap, log.events_topic)
    assert log.identity() != first
    with LedgerClient(log, clock=fixed_clock) as client:
        client.send(story_lines()[:1])
    for project in (lambda: catch_up(log, store, policy=policy, clock=fixed_clock),
                    lambda: GroupProjector(log, store, group="again", policy=policy).run(max_idle_s=1.0)):
        with pytest.raises(LogMismatch) as refused:
            project()
        assert f"was built from another log than {log.name} (store: log identity {first}" in str(refused.value)
    log.close()
