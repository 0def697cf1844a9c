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

__all__ = ["publish_alerts", "AlertPublisher", "follow_alerts", "alert_message", "publisher_name",
           "ALERT_SCHEMA", "ALERT_SCHEMA_VERSION", "PUBLISH_BATCH_MAX"]

ALERT_SCHEMA = "ledger.alert-transition"
ALERT_SCHEMA_VERSION = 1
PUBLISH_BATCH_MAX = 500  # transitions per send + record
PUBLISH_ROUNDS_MAX = 10_000  # bound on one publish_alerts call (5 million transitions)
IN_FLIGHT_PAGES_MAX = 4  # AlertPublisher: pages handed over, not yet acknowledged
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


def _messages(entries: list[dict[str, Any]]) -> list[tuple[str, bytes, list[tuple[str, bytes]]]]:
    return [
        (e["alert_id"], json.dumps(alert_message(e), sort_keys=True).encode(),
         [("transition_id", e["transition_id"].encode()), ("transition", e["transition"].encode()),
          ("schema_version", str(ALERT_SCHEMA_VERSION).encode())])
        for e in entries
    ]


def _record_published(store: ProjectionStore, log: KafkaLog, seq: int) -> None:
    """Sent and acknowledged; now durable in our store.  A crash between the
    two re-sends these same transition ids on restart."""
    try:
        store.insert_tracking(Tracking(publisher_name(log), seq))  # type: ignore[attr-defined]
    except IntegrityError:
        pass  # another publisher recorded it first; the subscriber drops the copies


def publish_alerts(store: ProjectionStore, log: KafkaLog, *, batch_max: int = PUBLISH_BATCH_MAX) -> int:
    """Publish every journaled transition not yet published, waiting for each
    send to be acknowledged; returns how many were sent."""
    sent = 0
    for _round in range(PUBLISH_ROUNDS_MAX):
        entries = store.journal(after_seq=published_seq(store, log), limit=batch_max)
        if not entries:
            return sent
        log.send(log.alerts_topic, _messages(entries))
        _record_published(store, log, entries[-1]["seq"])
        sent += len(entries)
    return sent


class AlertPublisher:
    """The projector's publisher: sends without waiting for the broker.

    ``publish_alerts`` waits for every send to be acknowledged before the
    projector may poll again; on a live stream that wait, after every batch,
    was a fifth of the projector's time (BENCHMARKS.md).  This publisher
    hands the new transitions to the producer and returns; the producer
    sends them within ``linger_ms``.  ``settle`` -- called after every
    batch and every idle poll -- records the seq of what the broker has
    acknowledged, in journal order, and raises LogUnavailable if a send
    failed, as ``publish_alerts`` does.

    - Nothing is recorded as published before it, and everything before it,
      is acknowledged: a crash at any point re-sends (the same transition
      ids) and loses nothing.
    - Once any send has failed, nothing more is handed over: ``settle``
      (which ``publish`` calls first) records the acknowledged prefix, drops
      everything in flight and raises, so a later page never lands on the
      topic ahead of an earlier one that failed.
    - At most IN_FLIGHT_PAGES_MAX pages (of ``batch_max`` transitions) are in
      flight; a backlog waits for the oldest before handing more.
    - One alert's transitions keep their order: they share a key, so a
      partition, and the producer is idempotent.
    """

    def __init__(self, store: ProjectionStore, log: KafkaLog, *, batch_max: int = PUBLISH_BATCH_MAX):
        self.store = store
        self.log = log
        self.batch_max = batch_max
        self._handed_up_to = published_seq(store, log)  # handed to the producer, acknowledged or not
        self._in_flight: list[tuple[int, list[Any]]] = []  # (last seq, its sends), oldest first

    @property
    def in_flight(self) -> int:
        return sum(len(futures) for _seq, futures in self._in_flight)

    def publish(self) -> int:
        """Hand every journaled transition not yet handed over to the producer;
        returns how many.  Records what earlier calls sent and the broker has
        acknowledged since."""
        self.settle()
        handed = 0
        for _round in range(PUBLISH_ROUNDS_MAX):
            if len(self._in_flight) >= IN_FLIGHT_PAGES_MAX:
                self.settle(oldest=True)
            after = max(self._handed_up_to, published_seq(self.store, self.log))
            entries = self.store.journal(after_seq=after, limit=self.batch_max)
            if not entries:
                break
            futures = self.log.begin_send(self.log.alerts_topic, _messages(entries))
            self._in_flight.append((entries[-1]["seq"], futures))
            self._handed_up_to = entries[-1]["seq"]
            handed += len(entries)
        return handed

    def settle(self, *, wait: bool = False, oldest: bool = False) -> None:
        """Record the journal seq up to which every send is acknowledged.

        ``wait``: first wait (bounded by the send timeout) for every send in
        flight; ``oldest``: for the oldest page at least.  If a send failed,
        records what was acknowledged before it, forgets everything in
        flight (the next ``publish`` hands it over again) and raises
        LogUnavailable."""
        failed = any(f.is_done and f.failed() for _seq, futures in self._in_flight for f in futures)
        acknowledged = None
        try:
            if (wait or failed) and self._in_flight:
                self.log.flush()
            while self._in_flight:
                seq, futures = self._in_flight[0]
                must = wait or failed or (oldest and acknowledged is None)
                if not must and not all(f.is_done for f in futures):
                    break
                self.log.placed(self.log.alerts_topic, futures)  # waits (bounded); raises if one failed
                self._in_flight.pop(0)
                acknowledged = seq
        except LogUnavailable:
            self._in_flight.clear()
            self._handed_up_to = 0  # publish() resumes after what the store records as published
            raise
        finally:
            if acknowledged is not None:
                _record_published(self.store, self.log, acknowledged)


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
