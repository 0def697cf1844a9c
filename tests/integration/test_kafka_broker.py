"""The test broker itself: it starts, and a consumer group gets back exactly what was sent.

Runs against whatever ``start_broker()`` picks ($KAFKA_BOOTSTRAP, Apache Kafka
from Maven, Apache Kafka in Docker, or the bundled Tansu).
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from services.kafka_broker import FAST_GROUP_CONSUMER_SETTINGS, KafkaBroker, start_broker

pytestmark = pytest.mark.kafka

MESSAGES = 10
CONSUME_TIMEOUT_S = 30.0  # bound on joining the group and reading back 10 records
CLI_START_TIMEOUT_S = 30.0
CLI_STOP_TIMEOUT_S = 10.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kafka_broker() -> Iterator[KafkaBroker]:
    with start_broker() as broker:
        yield broker


def test_group_consumer_gets_back_exact_payloads_and_headers(kafka_broker: KafkaBroker) -> None:
    topic = f"broker-smoke-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        # One partition, so the order sent is the order read.
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                      topic_configs={"retention.ms": "-1"})])
    finally:
        admin.close()

    sent = [
        (f"key-{i}".encode(), f'{{"n": {i}}}'.encode(),
         [("event-id", f"evt-{i}".encode()), ("schema", b"v1")])
        for i in range(MESSAGES)
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all", enable_idempotence=True)
    try:
        for key, value, headers in sent:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush(timeout=10)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap,
        group_id=f"smoke-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **FAST_GROUP_CONSUMER_SETTINGS,
    )
    received = []
    try:
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while len(received) < MESSAGES and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                received.extend((r.key, r.value, [(k, bytes(v)) for k, v in r.headers]) for r in records)
        consumer.commit()
        committed = consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()

    assert received == sent
    assert committed == MESSAGES


def test_cli_prints_bootstrap_and_stops_on_sigterm() -> None:
    environment = {key: value for key, value in os.environ.items() if key != "KAFKA_BOOTSTRAP"}
    process = subprocess.Popen(
        [sys.executable, "tests/services/kafka_broker.py"], cwd=ROOT, env=environment,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = _first_line(process, CLI_START_TIMEOUT_S)
        assert line.startswith("KAFKA_BOOTSTRAP=127.0.0.1:"), line
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=CLI_STOP_TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    port = int(line.rpartition(":")[2])
    with pytest.raises(OSError):  # the broker went with the CLI
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def _first_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    """First stdout line, bounded: a thread-free wait via select on the pipe."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=timeout_s):
            raise AssertionError(f"no KAFKA_BOOTSTRAP line within {timeout_s} s")
    return process.stdout.readline().strip()
