"""The alert stream: the store's alert journal is an outbox, Kafka the mailbox.

``AlertPublisher`` sends every journaled transition not yet published to
``{prefix}.alerts``, keyed by alert id (so one alert's transitions stay in
order in one partition), exactly once: each page goes out in one Kafka
transaction with a marker "published up to journal seq N" on
``{prefix}.alerts-published``, and a publisher that starts reads that
marker -- not the store -- after fencing every earlier publisher
(transactional.id per publisher role).  Subscribers read with
``isolation_level=read_committed`` (``follow_alerts`` does), so a page a
dead or fenced publisher left uncommitted is never seen.  The transition
ids stay deterministic, so a subscriber that also de-duplicates on
``transition_id`` loses nothing by doing so.

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
from dataclasses import dataclass
from typing import Any, Literal

from eventsourcing.persistence import IntegrityError, Tracking
from pydantic import BaseModel, ConfigDict, Field
from kafka import KafkaProducer, TopicPartition
from kafka.errors import InvalidProducerEpochError, KafkaError, KafkaTimeoutError, ProducerFencedError

from consumers.log.kafka import FETCH_POLL_MS, KafkaLog, producer_settings
from ledger.ports import LogUnavailable
from projections.store import ProjectionStore

__all__ = ["publish_alerts", "AlertPublisher", "follow_alerts", "alert_message", "publisher_name",
           "committed_marker", "PublishedMarker", "AlertMessage", "alert_json_schema", "transactional_id",
           "published_seq",
           "ALERT_SCHEMA", "ALERT_SCHEMA_VERSION", "PUBLISH_BATCH_MAX"]

ALERT_SCHEMA = "ledger.alert-transition"
ALERT_SCHEMA_VERSION = 1
PUBLISH_BATCH_MAX = 500  # transitions per send + record
PUBLISH_ROUNDS_MAX = 10_000  # bound on one publish_alerts call (5 million transitions)
TRANSACTION_RETRY_BACKOFF_MS = 20
INIT_TRANSACTIONS_TIMEOUT_S = 30.0  # taking the publisher role, the transaction log created if need be
INIT_ATTEMPT_TIMEOUT_S = 10.0  # one producer's try at it; then a new producer finds the coordinator again
MARKER_SCAN_OFFSETS = 64  # committed_marker reads the marker topic backwards in windows this wide, doubling
# A producer whose epoch another publisher bumped may hear either error.
_FENCED = (ProducerFencedError, InvalidProducerEpochError)
_FIELDS = ("transition_id", "seq", "alert_id", "transition", "at", "kind", "severity", "trace_id",
           "lot_id", "party", "quantity", "unit", "message", "due_at")


class AlertMessage(BaseModel):
    """One alert transition as published on ``{prefix}.alerts`` (JSON, UTF-8);
    ``ledger schema --alerts`` writes its JSON Schema."""

    model_config = ConfigDict(extra="forbid", title="ledger.alert-transition")

    schema_: Literal["ledger.alert-transition"] = Field(alias="schema")
    schema_version: Literal[1]
    transition_id: str = Field(description="deterministic: the same transition always has the same id")
    seq: int = Field(ge=1, description="position in the publishing store's alert journal")
    alert_id: str = Field(description="the message key; one alert's transitions stay in order in one partition")
    transition: Literal["raised", "updated", "resolved"]
    at: str = Field(description="when the ledger journaled the transition (ISO 8601, UTC)")
    kind: str | None = None
    severity: str | None = None
    trace_id: str | None = None
    lot_id: str | None = None
    party: str | None = None
    quantity: str | None = Field(default=None, description="exact decimal, as a string")
    unit: str | None = None
    message: str | None = None
    due_at: str | None = None


def alert_json_schema() -> dict[str, Any]:
    """The JSON Schema of an alert message (``ledger schema --alerts``)."""
    return AlertMessage.model_json_schema(by_alias=True)


def publisher_name(log: KafkaLog) -> str:
    """The Tracking name under which a store records what it published to this topic."""
    return f"alerts-publisher:{log.alerts_topic}"


def alert_message(entry: dict[str, Any]) -> dict[str, Any]:
    return {"schema": ALERT_SCHEMA, "schema_version": ALERT_SCHEMA_VERSION,
            **{k: entry.get(k) for k in _FIELDS}}


def published_seq(store: ProjectionStore, log: KafkaLog) -> int:
    return store.max_tracking_id(publisher_name(log)) or 0


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
        store.insert_tracking(Tracking(publisher_name(log), seq))
    except IntegrityError:
        pass  # another publisher recorded it first; the subscriber drops the copies


def transactional_id(log: KafkaLog) -> str:
    """The publisher role's transactional.id: one per alerts topic, so a
    publisher that starts fences every earlier one (a zombie cannot commit)."""
    return f"ledger-alerts-publisher:{log.alerts_topic}"


@dataclass(frozen=True, slots=True)
class PublishedMarker:
    """What the last committed transaction says was published (from Kafka)."""

    seq: int  # journal seq of its last transition; 0: nothing ever published
    transition_id: str | None


def committed_marker(log: KafkaLog) -> PublishedMarker:
    """The last "published up to seq" marker committed to ``{prefix}.alerts-published``.

    Read with read_committed from the end backwards (a marker of an aborted
    transaction is not seen), in windows of MARKER_SCAN_OFFSETS, doubling.
    Call it after ``init_transactions``: that waits for a commit in progress
    to complete, or aborts the dead publisher's open transaction, so the last
    stable offset is the end."""
    topic, name = log.alerts_published_topic, publisher_name(log)
    end = log.topic_end_offsets(topic).get(0, 0)
    window = MARKER_SCAN_OFFSETS
    high = end
    while high > 0:
        low = max(0, high - window)
        found = [r for r in log.read_topic(topic, 0, low, high - low) if r.key == name and r.offset < high]
        if found:
            body = json.loads(found[-1].value)
            return PublishedMarker(int(body["seq"]), body.get("transition_id"))
        high, window = low, window * 2
    return PublishedMarker(0, None)


@dataclass(frozen=True, slots=True)
class _CommitInFlight:
    """A page's transaction whose commit was begun and not yet awaited."""

    result: Any  # kafka-python's TransactionalRequestResult: wait(timeout_ms), is_done
    seq: int  # the journal seq of its last transition (its marker's)
    transitions: int


class AlertPublisher:
    """Publishes the store's alert journal to ``{prefix}.alerts`` exactly once.

    Each page of up to ``batch_max`` transitions goes out in ONE Kafka
    transaction together with a marker record, "published up to journal
    seq N", keyed by the publisher name on the compacted topic
    ``{prefix}.alerts-published``.  The transitions and the marker commit or
    abort together, so Kafka itself knows what was published; the store's
    Tracking row is written after the commit and only informs.

    - On its first ``publish`` the publisher calls ``init_transactions`` with
      the role's transactional.id (``transactional_id``): the broker aborts
      what a dead predecessor left open, waits for a commit in progress, and
      fences every earlier producer with that id.  Only then does it read
      the last committed marker and resume after its seq.  A publisher
      killed at any point therefore leaves either a committed page (and its
      marker) or nothing visible to read_committed readers.
    - Two publishers (members of a group sharing a store) never both commit
      a page: the later ``init_transactions`` fences the earlier one, whose
      next transaction fails with ProducerFencedError.  The fenced publisher
      drops its producer and, on its next ``publish``, starts over (fencing
      the other in turn) from the committed marker.
    - A marker whose transition id is not the store's at that seq means the
      topic was published from another journal: refused (LogUnavailable),
      rather than skipping or repeating transitions.
    - A send or commit that fails otherwise aborts the transaction and
      raises LogUnavailable naming the broker; nothing of it is visible.
    """

    def __init__(self, store: ProjectionStore, log: KafkaLog, *, batch_max: int = PUBLISH_BATCH_MAX):
        self.store = store
        self.log = log
        self.batch_max = batch_max
        self.fenced = 0  # times another publisher took the role from this one
        self._producer: KafkaProducer | None = None
        self._committed = 0  # journal seq the last committed marker names
        self._pending: _CommitInFlight | None = None

    @property
    def committed_seq(self) -> int:
        """Journal seq up to which this publisher knows the transitions committed."""
        return self._committed

    def start(self) -> int:
        """Take the publisher role (fencing any other) and learn where the
        last committed transaction ended; returns that journal seq."""
        self.close()
        settings = producer_settings(self.log.bootstrap, send_timeout_s=self.log.send_timeout_s,
                                     transactional_id=transactional_id(self.log))
        settings["client_id"] = "ledger-alerts-publisher"
        # A transaction begun just after the last one committed meets
        # CONCURRENT_TRANSACTIONS while the broker writes the last one's
        # markers, and retries after this: kafka-python's default wait was
        # most of a transaction's time (BENCHMARKS.md, "Figures behind comments").
        settings["retry_backoff_ms"] = TRANSACTION_RETRY_BACKOFF_MS
        settings["max_block_ms"] = min(settings["max_block_ms"], int(INIT_ATTEMPT_TIMEOUT_S * 1000))
        # The first publisher on a cluster waits for the broker to create its
        # transaction log (50 partitions): longer than a send's bound.  A
        # producer whose init timed out is dropped and a new one asks again
        # which broker coordinates the transactional id: kafka-python keeps
        # asking the coordinator it found first, and after a broker dies that
        # may be the dead one until the controller fences it.
        deadline = time.monotonic() + max(INIT_TRANSACTIONS_TIMEOUT_S, self.log.send_timeout_s)
        while True:
            try:
                producer = KafkaProducer(**settings)
            except KafkaError as error:
                raise self.log._unavailable("init alert transactions", error) from error
            try:
                producer.init_transactions()
                break
            except KafkaTimeoutError as error:
                producer.close(timeout=0)
                if time.monotonic() < deadline:
                    continue
                raise self.log._unavailable("init alert transactions", error) from error
            except KafkaError as error:
                producer.close(timeout=0)
                raise self.log._unavailable("init alert transactions", error) from error
        self._producer = producer
        marker = committed_marker(self.log)
        self._check_marker(marker)
        self._committed = marker.seq
        return marker.seq

    def _check_marker(self, marker: PublishedMarker) -> None:
        if marker.seq == 0:
            return
        [entry] = self.store.journal(after_seq=marker.seq - 1, limit=1) or [None]
        if entry is None or entry["seq"] != marker.seq or entry["transition_id"] != marker.transition_id:
            self.close()
            raise LogUnavailable(
                f"{self.log.alerts_topic} was published up to journal seq {marker.seq} (transition "
                f"{marker.transition_id}) from another journal than this store's "
                f"({'no such seq' if entry is None or entry['seq'] != marker.seq else entry['transition_id']}); "
                f"publish this store's alerts under another topic prefix")

    def publish(self, *, wait: bool = True) -> int:
        """Publish every journaled transition after the committed marker, one
        transaction per page.  The last page's commit is left in flight (the
        projector applies its next batch meanwhile); ``settle`` -- or the next
        ``publish`` -- waits for it.  Returns how many transitions this call
        saw committed.

        ``wait=False``: if the commit in flight has not completed yet, return
        0 at once and publish at a later call.  Under load, transactions then
        grow to what the broker commits in the time of a batch, instead of
        one per batch with the projector waiting for each."""
        if not wait and self._pending is not None and not _is_done(self._pending.result):
            return 0
        committed = self.settle()
        for _round in range(PUBLISH_ROUNDS_MAX):
            if self._producer is None:
                self.start()
            entries = self.store.journal(after_seq=self._committed, limit=self.batch_max)
            if not entries:
                break
            try:
                self._begin_commit(entries)
            except ProducerFencedError:
                self._fenced()
                continue
            if len(entries) < self.batch_max:
                break  # the last page: its commit stays in flight
            # A full page: more may follow, and a new transaction waits for this one.
            committed += self.settle()
        return committed

    def settle(self) -> int:
        """Wait (bounded by the send timeout) for the commit in flight, if any;
        returns how many transitions it committed.  Fenced meanwhile: 0, and
        the next ``publish`` starts over from Kafka's marker.  Failed or not
        answered in time: LogUnavailable, and nothing of it is visible."""
        pending, self._pending = self._pending, None
        if pending is None:
            return 0
        try:
            if not pending.result.wait(timeout_ms=int(self.log.send_timeout_s * 1000)):
                raise KafkaTimeoutError(f"transaction commit not acknowledged within {self.log.send_timeout_s} s")
        except KafkaError as error:
            if _is_fenced(error):
                self._fenced()
                return 0
            self._abort()
            raise self.log._unavailable(f"publish to {self.log.alerts_topic}", error) from error
        self._committed = pending.seq
        _record_published(self.store, self.log, pending.seq)
        return pending.transitions

    def _fenced(self) -> None:
        """Another publisher took the role (and perhaps published these):
        start over, on the next publish, from what Kafka says is committed."""
        self.fenced += 1
        self._pending = None
        self.close()

    def _begin_commit(self, entries: list[dict[str, Any]]) -> None:
        """One transaction: the page and its marker, the commit begun, not awaited."""
        producer = self._producer
        assert producer is not None
        last = entries[-1]
        marker = json.dumps({"publisher": publisher_name(self.log), "seq": last["seq"],
                             "transition_id": last["transition_id"]}, sort_keys=True).encode()
        try:
            producer.begin_transaction()
            for key, value, headers in _messages(entries):
                producer.send(self.log.alerts_topic, key=key.encode(), value=value, headers=headers)
            producer.send(self.log.alerts_published_topic, key=publisher_name(self.log).encode(), value=marker)
            result = _begin_commit(producer)
        except KafkaError as error:
            if _is_fenced(error):
                raise ProducerFencedError(str(error)) from error
            self._abort()
            raise self.log._unavailable(f"publish to {self.log.alerts_topic}", error) from error
        self._pending = _CommitInFlight(result, last["seq"], len(entries))

    def _abort(self) -> None:
        """Drop the producer without waiting: its open transaction is aborted
        by the next publisher's ``init_transactions`` (or by the coordinator
        after TRANSACTION_TIMEOUT_S), and until then read_committed readers
        see none of it.  (kafka-python's abort_transaction waits unbounded.)"""
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except KafkaError:
                pass

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=self.log.send_timeout_s)
            except KafkaError:
                pass


def _is_fenced(error: BaseException) -> bool:
    """Another publisher took the role.  kafka-python says so directly, or --
    on the send or begin after the fencing response -- as a plain KafkaError
    ("at least one previous transactional or idempotent request has failed")
    carrying the ProducerFencedError among its args."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _FENCED):
            return True
        pending += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        pending += [c for c in (current.__cause__, current.__context__) if c is not None]
    return False


def _is_done(result: Any) -> bool:
    return bool(getattr(result, "is_done", True))


class _Committed:
    """A commit that already completed (the fallback of ``_begin_commit``)."""

    def wait(self, timeout_ms: int | None = None) -> bool:
        return True


def _begin_commit(producer: KafkaProducer) -> Any:
    """Begin committing the open transaction; returns what to ``wait(timeout_ms)`` on.

    kafka-python 3's ``commit_transaction`` is these two steps with a wait
    that has no bound; taking them apart bounds the wait (``settle``) and
    lets the projector apply its next batch while the broker commits.  The
    sender sends the transaction's records before its EndTxn."""
    manager = getattr(producer, "_transaction_manager", None)
    sender = getattr(producer, "_sender", None)
    if manager is None or sender is None or not hasattr(manager, "begin_commit"):
        producer.commit_transaction()  # a kafka-python whose internals moved: unbounded, but correct
        return _Committed()
    result = manager.begin_commit()
    sender.wakeup()
    return result


def publish_alerts(store: ProjectionStore, log: KafkaLog, *, batch_max: int = PUBLISH_BATCH_MAX) -> int:
    """Publish every journaled transition not yet published (exactly once,
    see AlertPublisher); returns how many were sent."""
    publisher = AlertPublisher(store, log, batch_max=batch_max)
    try:
        return publisher.publish() + publisher.settle()
    finally:
        publisher.close()


def follow_alerts(log: KafkaLog, on_transition: Callable[[dict[str, Any]], None], *,
                  max_idle_s: float | None = None, until_end: bool = False,
                  stop: Callable[[], bool] = lambda: False) -> dict[str, int]:
    """Read the alerts topic from the beginning, as a dashboard would, calling
    ``on_transition`` once per transition id (copies are counted, not shown).

    Returns {"transitions": shown, "copies": dropped duplicates, "unreadable": n}.
    Stops when ``stop()``; with ``until_end``, once it has read up to the
    topic's end offsets taken when it started (read_committed: the last
    committed transaction); or after ``max_idle_s`` seconds without a new message.
    """
    seen: set[str] = set()
    counts = {"transitions": 0, "copies": 0, "unreadable": 0}
    consumer = log.reader
    tps = [TopicPartition(log.alerts_topic, p) for p in log.topic_partitions(log.alerts_topic)]
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps) if until_end else {}
        idle_since = time.monotonic()
        while not stop():
            if until_end and all(consumer.position(tp) >= end for tp, end in ends.items()):
                break
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
