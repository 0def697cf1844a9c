"""The test broker's own figures: group join, produce and consume rates.

    python -m bench.broker                          # the broker the suite would start
    LEDGER_TEST_KAFKA=tansu python -m bench.broker  # the Tansu stand-in, for comparison

Prints one JSON object.  The baseline in the same run is the same client
work against the same broker; the figures compare brokers run by run, and
docs/KAFKA_BROKER.md keeps them side by side.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402

from consumers.kafka.group_projector import GROUP_CONSUMER_SETTINGS  # noqa: E402
from services.kafka_broker import start_broker  # noqa: E402

JOINS = 5  # fresh groups joined, one after another
MESSAGES = 20_000  # produced, then consumed
VALUE_BYTES = 400  # about one stamped report
PARTITIONS = 4
WAIT_MAX_S = 60.0  # bound on any one join or read-back


def _join_s(bootstrap: str, topic: str, settings: dict[str, Any]) -> float:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=f"join-{uuid.uuid4().hex[:8]}",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             **{k: v for k, v in settings.items() if k not in ("auto_offset_reset", "enable_auto_commit")})
    try:
        consumer.partitions_for_topic(topic)
        started = time.monotonic()
        consumer.subscribe([topic])
        while not consumer.assignment():
            consumer.poll(timeout_ms=100)
            if time.monotonic() - started > WAIT_MAX_S:
                raise RuntimeError(f"no assignment within {WAIT_MAX_S} s")
        return time.monotonic() - started
    finally:
        consumer.close()


def measure() -> dict[str, Any]:
    with start_broker(log=lambda m: print(m, file=sys.stderr)) as broker:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
        admin.close()
        joins = [_join_s(broker.bootstrap, topic, GROUP_CONSUMER_SETTINGS) for _ in range(JOINS)]

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=True,
                                 linger_ms=5)
        value = b"x" * VALUE_BYTES
        started = time.monotonic()
        for i in range(MESSAGES):
            producer.send(topic, key=f"TR-{i % 997}".encode(), value=value)
        producer.flush(timeout=WAIT_MAX_S)
        produce_s = time.monotonic() - started
        producer.close()

        consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                                 enable_auto_commit=False, group_id=None)
        started = time.monotonic()
        seen = 0
        while seen < MESSAGES and time.monotonic() - started < WAIT_MAX_S:
            seen += sum(len(records) for records in consumer.poll(timeout_ms=200, max_records=2_000).values())
        consume_s = time.monotonic() - started
        consumer.close()
        return {
            "broker": broker.description,
            "group_join_s": {"median": round(statistics.median(joins), 3), "min": round(min(joins), 3),
                             "max": round(max(joins), 3), "n": len(joins)},
            "produce_per_s": round(MESSAGES / produce_s),
            "consume_per_s": round(seen / consume_s),
            "messages": MESSAGES, "consumed": seen, "value_bytes": VALUE_BYTES,
        }


if __name__ == "__main__":
    print(json.dumps(measure()))
