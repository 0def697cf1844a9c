"""The alert stream: the store's alert journal is an outbox, Kafka the mailbox.

``publish_alerts`` sends every journaled transition the store has not yet
recorded as published to ``{prefix}.alerts``, keyed by alert id (so one
alert's transitions stay in order in one partition), then records the last
published journal seq as a Tracking row in the store (eventsourcing's
``insert_tracking`` / ``max_tracking_id``).  A restart resumes after that
seq.  If the process dies after the broker acknowledged a send and before
the seq was recorded, those transitions are sent again, with the SAME
transition ids -- so a subscriber counts each transition once by
de-duplicating on ``transition_id`` (``follow_alerts`` does).

Message schema (JSON value, UTF-8), ``schema_version`` 1::

    {"schema": "ledger.alert-transition", "schema_version": 1,
     "transition_id": "...",   # deterministic; de-duplicate on it
     "seq": 17,                # position in the publishing store's journal
     "alert_id": "...", "transition": "raised" | "updated" | "resolved",
     "at": "...", "kind": "...", "severity": "...", "trace_id": "...",
     "lot_id": "...", "party": "...", "quantity": "30", "unit": "kg",
     "message": "...", "due_at": "..."}

Headers: ``transition_id``, ``transition``, ``schema_version``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking
from kafka import TopicPartition
from kafka.errors import KafkaError

from consumers.kafka.log import FETCH_POLL_MS, KafkaLog
from ledger.ports import LogUnavailable
from projections.store import ProjectionStore

__all__ = ["publish_alerts", "follow_alerts", "alert_message", "publisher_name",
           "ALERT_SCHEMA", "ALERT_SCHEMA_VERSION", "PUBLISH_BATCH_MAX"]

ALERT_SCHEMA = "ledger.alert-transition"
ALERT_SCHEMA_VERSION = 1
PUBLISH_BATCH_MAX = 500  # transitions per send + record
PUBLISH_ROUNDS_MAX = 10_000  # bound on one publish_alerts call (5 million transitions)
_FIELDS = ("transition_id", "seq", "alert_id", "transition", "at", "kind", "severity", "trace_id",
           "lot_id", "party", "quantity", "unit", "message", "due_at")


def publisher_name(log: KafkaLog) -> str:
    """The Tracking name under which a store records what it published to this topic."""
    return f"alerts-publisher:{log.alerts_topic}"


def alert_message(entry: dict[str, Any]) -> dict[str, Any]:
    return {"schema": ALERT_SCHEMA, "schema_version": ALERT_SCHEMA_VERSION,
            **{k: entry.get(k) for k in _FIELDS}}


def published_seq(store: ProjectionStore, log: KafkaLog) -> int:
    return store.max_tracking_id(publisher_name(log)) or 0  # type: ignore[attr-defined]


def publish_alerts(store: ProjectionStore, log: KafkaLog, *, batch_max: int = PUBLISH_BATCH_MAX) -> int:
    """Publish every journaled transition not yet published; returns how many were sent."""
    name = publisher_name(log)
    sent = 0
    for _round in range(PUBLISH_ROUNDS_MAX):
        after = published_seq(store, log)
        entries = store.journal(after_seq=after, limit=batch_max)
        if not entries:
            return sent
        log.send(log.alerts_topic, [
            (e["alert_id"], json.dumps(alert_message(e), sort_keys=True).encode(),
             [("transition_id", e["transition_id"].encode()), ("transition", e["transition"].encode()),
              ("schema_version", str(ALERT_SCHEMA_VERSION).encode())])
            for e in entries
        ])
        # Sent and acknowledged; now durable in our store.  A crash between
        # the two re-sends these same transition ids on restart.
        try:
            store.insert_tracking(Tracking(name, entries[-1]["seq"]))  # type: ignore[attr-defined]
        except IntegrityError:
            pass  # another publisher recorded it first; the subscriber drops the copies
        sent += len(entries)
    return sent


def follow_alerts(log: KafkaLog, on_transition: Callable[[dict[str, Any]], None], *,
                  max_idle_s: float | None = None, stop: Callable[[], bool] = lambda: False) -> dict[str, int]:
    """Read the alerts topic from the beginning, as a dashboard would, calling
    ``on_transition`` once per transition id (copies are counted, not shown).

    Returns {"transitions": shown, "copies": dropped duplicates, "unreadable": n}.
    Stops after ``max_idle_s`` seconds without a new message, or when ``stop()``.
    """
    seen: set[str] = set()
    counts = {"transitions": 0, "copies": 0, "unreadable": 0}
    consumer = log.reader
    tps = [TopicPartition(log.alerts_topic, p) for p in log.topic_partitions(log.alerts_topic)]
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        idle_since = time.monotonic()
        while not stop():
            polled = consumer.poll(timeout_ms=FETCH_POLL_MS)
            records = [r for rs in polled.values() for r in rs]
            if records:
                idle_since = time.monotonic()
            elif max_idle_s is not None and time.monotonic() - idle_since >= max_idle_s:
                break
            for record in records:
                try:
                    message = json.loads(record.value)
                    transition_id = message["transition_id"]
                except (ValueError, KeyError, TypeError):
                    counts["unreadable"] += 1
                    continue
                if transition_id in seen:
                    counts["copies"] += 1
                    continue
                seen.add(transition_id)
                counts["transitions"] += 1
                on_transition(message)
    except KafkaError as error:
        raise LogUnavailable(f"Kafka at {log.bootstrap} (follow {log.alerts_topic}): {error}") from error
    return counts
