"""The consumer-group projector: Kafka partitions in, one store transaction per poll.

Several processes with one ``group`` split the partitions of
``{prefix}.events`` between them and write into one projection store.  Each
polled batch (all its partitions together) is applied by
``projections.trace_projection.project_batch``, which commits the read
models and a Tracking row per partition in ONE store transaction.

Where to read from is the store's business, not Kafka's: on start and on
every rebalance (``on_partitions_assigned``) each assigned partition is
sought to ``store.tracked_offsets(log.name)[p] + 1``.  Kafka's committed
group offsets are never read (they are not committed with our state, so
after a crash they could be behind or ahead of it).  Exactly-once comes
from the store, which is why a broker that ignores read_committed (Tansu)
is fine.

Two members can briefly both hold a partition (one was slow and has been
replaced).  Before applying, records the store already has are dropped;
if another member commits the same offsets first, ``commit_batch`` raises
IntegrityError (stale tracking), nothing of the batch is written, and this
member re-seeks from the store.  Either way no record is counted twice.

Batches are applied one at a time across the processes sharing a store
(projections/batch_lock.py): project_batch holds the store's batch lock
from its first read to its commit, since a license (keyed ``license:ID``)
lives in another partition than the traces it governs.  The member holds
it a little wider, around its check of the store's offsets and its
publishing.

After each commit the member publishes, from the store's outboxes, the new
dead letters to ``{prefix}.dead-letters`` and the new alert transitions to
``{prefix}.alerts`` (consumers/kafka/alert_publisher.py); alert transitions
in Kafka transactions that also commit "published up to seq N"
(``AlertPublisher``), so they land exactly once.  One member
publishes at a time -- the one holding partition 0 (PUBLISHER_PARTITION),
after its batches and on its idle polls -- and every member publishes what
is left when it stops.  Every
SWEEP_INTERVAL_S it also sweeps: alerts whose deadline passed with no
report arriving are journaled (``store.sweep``) and published.

Consumer settings (GROUP_CONSUMER_SETTINGS) are tuned so a group join or a
rebalance takes about a second, not kafka-python's ~23 s with defaults;
docs/KAFKA.md says what each does.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError

from consumers.kafka.alert_publisher import AlertPublisher, committed_marker, published_seq
from consumers.log.kafka import CONNECT_TIMEOUT_S, KafkaLog, log_record
from consumers.log_check import check_store_belongs
from consumers.projector import BatchCounts, collecting_less, utc_now
from consumers.render import plural
from ledger.policy import Policy
from ledger.ports import LogRecord, LogUnavailable
from projections.batch_lock import exclusive, path_lock
from projections.store import ProjectionStore
from projections.trace_projection import project_batch
from projections.warm_traces import WarmTraces

__all__ = ["GroupProjector", "GroupTotals", "GROUP_CONSUMER_SETTINGS", "POLL_RECORDS_MAX", "BATCH_BYTES_MAX",
           "dead_letter_tracking_name", "publish_dead_letters", "dead_letter_message", "exclusive", "path_lock",
           "DEAD_LETTER_COPY_BYTES_MAX", "DEAD_LETTER_PREFIX_BYTES", "DEAD_LETTER_ERROR_CHARS_MAX"]

# Records per batch, and so per store transaction (in a backlog the member
# polls until it has them, GroupProjector._fill).  Under a steady live load
# a poll brings what arrived since the last (about 14 records at 1,000/s)
# and the cap changes nothing; it matters when a backlog waits (a restart, a
# backfill), where each trace is folded, and each alert judged, once per
# batch that brings one of its reports.  The 100k bench topic, paired runs
# (BENCHMARKS.md, "Session 12"): 5,000 -> 20,000 applied it 1.43-1.51x faster
# (fewer passing alerts to publish: 62k -> 30k transitions), peak RSS ~215
# -> ~300 MB; a batch took ~3.5 s there, well inside max_poll_interval_ms.
POLL_RECORDS_MAX = 20_000
# ... and bytes: a topic of large records fills a batch by size first.
BATCH_BYTES_MAX = 16 * 1024 * 1024
# Polls that may come back empty while filling a batch (a fetch slower than
# POLL_TIMEOUT_MS) before the batch is applied as it is.
FILL_EMPTY_POLLS_MAX = 2
POLL_TIMEOUT_MS = 200  # one poll; also how often a stop request is noticed
JOIN_WAIT_MAX_S = 30.0  # with max_idle_s: a member never given a partition stops after this
SWEEP_INTERVAL_S = 1.0  # deadlines pass without any report: check them this often
PUBLISHER_PARTITION = 0  # the member holding this partition publishes the alert journal
# Publishing alerts (or dead letters) may fail this long -- a broker election
# moving the transaction coordinator -- while the member goes on projecting;
# what is journaled goes out once Kafka answers again.  Beyond it, the member
# stops with LogUnavailable (restart it once Kafka is back: nothing is lost).
PUBLISH_OUTAGE_MAX_S = 120.0
# A dead letter is sent as a copy of the original record (key, value,
# headers) only while the copy stays this small: half of Apache Kafka's
# default message.max.bytes (1,048,588) and of the producer's
# max_request_size (1,048,576).  A record the broker accepted can be up to
# that size, and its copy, with our headers, would not be: the broker would
# refuse it on every restart and the projector would never go on.  Beyond
# this bound the letter names the record instead (dead_letter_message); the
# store keeps the whole record either way.
DEAD_LETTER_COPY_BYTES_MAX = 512 * 1024
DEAD_LETTER_PREFIX_BYTES = 1024  # of the original value, in a letter by reference
DEAD_LETTER_ERROR_CHARS_MAX = 2000  # of the error, in a header (a validation error can quote a huge value)

# kafka-python KafkaConsumer settings for the group (docs/KAFKA.md).
GROUP_CONSUMER_SETTINGS: dict[str, Any] = {
    # A dead member is noticed within 6 s (kafka-python's default is 45 s).
    # 6 s is the smallest session Apache Kafka accepts unless the operator
    # lowers group.min.session.timeout.ms; a smaller value is refused at join
    # (InvalidSessionTimeoutError).
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 1_000,  # well under the session timeout: two lost beats are survived
    # A batch, lock wait included, must finish within this, or the member is
    # dropped from the group (it is also the coordinator's rebalance timeout).
    "max_poll_interval_ms": 30_000,
    "retry_backoff_ms": 50,
    "fetch_max_wait_ms": 100,  # an idle partition answers a fetch within 0.1 s
    "metadata_max_age_ms": 5_000,
    "request_timeout_ms": 10_000,  # bounds every request, and close()
    "reconnect_backoff_max_ms": 1_000,  # a restarted broker is tried again within 1 s (default 30 s)
    "auto_offset_reset": "earliest",  # only for a partition the store has never seen
    "enable_auto_commit": False,  # the store, not Kafka, remembers where we are
}


def dead_letter_tracking_name(log: KafkaLog) -> str:
    """Tracking prefix for 'dead letters published up to offset N' (per partition)."""
    return f"dead-letters:{log.name}"


@dataclass(slots=True)
class GroupTotals(BatchCounts):
    already_applied: int = 0  # records another member applied first: dropped
    stale_commits: int = 0  # commit_batch refused stale tracking: re-sought from the store
    alerts_published: int = 0
    alerts_fenced: int = 0  # another member took the publisher role from this one
    publish_failures: int = 0  # publishing refused by Kafka while projecting went on
    swept_transitions: int = 0  # journaled because a deadline passed, not because a report arrived
    dead_letters_published: int = 0
    assignments: list[list[int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class GroupProjector:
    """One member of a projector group."""

    def __init__(self, log: KafkaLog, store: ProjectionStore, *, group: str, policy: Policy,
                 clock: Callable[[], datetime] = utc_now, batch_max: int = POLL_RECORDS_MAX,
                 publish: bool = True, say: Callable[[str], None] | None = None,
                 consumer_settings: dict[str, Any] | None = None, trust_recorded_at: bool = False):
        self.log = log
        # Keep the recorded_at producers wrote: an operator's migration switch
        # (never by default: the broker's append time is the ledger's).
        self.trust_recorded_at = trust_recorded_at
        self.store = store
        self.group = group
        self.policy = policy
        self.clock = clock
        self.batch_max = batch_max
        self.publish = publish
        self.say = say or (lambda _message: None)
        self.settings = {**GROUP_CONSUMER_SETTINGS, **(consumer_settings or {})}
        self.totals = GroupTotals()
        self._consumer: KafkaConsumer | None = None
        self._alerts: AlertPublisher | None = None  # while running with publish=True
        self._assigned: set[int] = set()  # the partitions the group gave this member
        self.warm = WarmTraces()  # the traces of the last batches, while no one else writes the store
        self._idle_since = time.monotonic()
        self._publish_failing_since: float | None = None

    # -- the loop ------------------------------------------------------------------

    def run(self, *, max_idle_s: float | None = None, until: Mapping[int, int] | None = None,
            stop: Callable[[], bool] = lambda: False,
            progress: Callable[[GroupTotals], None] | None = None) -> GroupTotals:
        """Poll and apply until ``stop()``; or until the store holds every record
        below ``until`` (end offsets per partition, as ``log.end_offsets()`` gave
        them: "catch up to where the log was, then stop", whichever member of
        the group applied them); or until ``max_idle_s`` seconds pass with no
        record after the group gave this member its partitions (the join itself
        is not idleness; a member left without partitions stops after
        JOIN_WAIT_MAX_S)."""
        with collecting_less():
            return self._run(max_idle_s=max_idle_s, until=until, stop=stop, progress=progress)

    def caught_up(self, until: Mapping[int, int]) -> bool:
        """Whether every record below ``until`` is applied: by the store's tracked
        offsets (any member's work), or, for a partition this member reads, by
        its position (past records it did not need to apply, such as a
        transaction's markers)."""
        tracked = self.store.tracked_offsets(self.log.name)
        consumer = self._consumer
        for partition, end in until.items():
            if end <= 0 or tracked.get(partition, -1) >= end - 1:
                continue
            if consumer is not None and partition in self._assigned and \
                    consumer.position(TopicPartition(self.log.events_topic, partition)) >= end:
                continue
            return False
        return True

    def _run(self, *, max_idle_s: float | None, until: Mapping[int, int] | None, stop: Callable[[], bool],
             progress: Callable[[GroupTotals], None] | None) -> GroupTotals:
        check_store_belongs(self.log, self.store)  # a store built from another log is refused
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.log.bootstrap.split(","), group_id=self.group,
                client_id=f"ledger-projector-{self.group}", max_poll_records=self.batch_max,
                bootstrap_timeout_ms=int(CONNECT_TIMEOUT_S * 1000), **self.settings,
            )
        except KafkaError as error:
            raise LogUnavailable(f"Kafka at {self.log.bootstrap} (group {self.group}): {error}") from error
        self._consumer = consumer
        try:
            consumer.subscribe([self.log.events_topic], listener=_SeekToStore(self))
            # Learn the topic's partitions before joining (the first poll
            # joins).  A member that leads the group assigns from the metadata
            # it holds: without it, it assigns nothing, or remembers an older
            # picture than it assigned from, and rebalances again a moment later.
            consumer.partitions_for_topic(self.log.events_topic)
            if self.publish:
                # What a previous run committed but did not get to publish.
                self.say(f"alert transitions published up to journal seq {committed_marker(self.log).seq} "
                         f"(Kafka's committed marker; the store recorded {published_seq(self.store, self.log)})")
                self._alerts = AlertPublisher(self.store, self.log)
                self._publish(dead_letters=True)
            started = self._idle_since = time.monotonic()
            swept = 0.0
            while not stop():
                if time.monotonic() - swept >= SWEEP_INTERVAL_S:
                    self._sweep()
                    swept = time.monotonic()
                polled = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
                records = self._fill(consumer, _polled_records(polled))
                now = time.monotonic()
                if not records:
                    if self._publishes_alerts():  # what other members journaled
                        self._publishing(lambda: self._alerts.publish())  # type: ignore[union-attr]
                    joined = bool(self.totals.assignments) or now - started >= JOIN_WAIT_MAX_S
                    if max_idle_s is not None and joined and now - self._idle_since >= max_idle_s:
                        break
                    if until is not None and self.caught_up(until):
                        break
                    continue
                self._idle_since = now
                self._apply(records)
                if progress is not None:
                    progress(self.totals)
                if until is not None and self.caught_up(until):
                    break
            if self._alerts is not None:
                # On the way out every member publishes what is journaled and
                # not yet published: a member stopping, not only the one
                # holding PUBLISHER_PARTITION, leaves nothing unpublished.
                # (It takes the publisher role for that, fencing the holder,
                # which starts over from Kafka's committed marker: no copies.)
                self.totals.alerts_published += self._alerts.publish()
                self.totals.alerts_published += self._alerts.settle()  # the last commit, awaited
        except KafkaError as error:
            raise LogUnavailable(f"Kafka at {self.log.bootstrap} (group {self.group}): {error}") from error
        finally:
            self._consumer = None
            alerts, self._alerts = self._alerts, None
            if alerts is not None:
                self.totals.alerts_fenced += alerts.fenced
                alerts.close()
            consumer.close(autocommit=False)
        return self.totals

    def _fill(self, consumer: KafkaConsumer, records: list[LogRecord]) -> list[LogRecord]:
        """One batch, in partition and offset order.  A poll brings at most
        what the fetches so far brought (kafka-python's ``max_partition_fetch_bytes``:
        4,000-8,000 records of the bench history on 4 partitions), whatever
        ``batch_max`` asks.  When more records wait behind the poll than it
        brought (a backlog), poll on for what waited then, up to ``batch_max``
        records or BATCH_BYTES_MAX.  Live, a poll brings what arrived since
        the last, fewer wait behind it, and no second poll is made: an alert
        waits for nothing more.  A rebalance in a later poll may take
        partitions away: their records are left to the member given them (it
        reads from the store's offsets)."""
        lag = _lag(consumer)
        if not records or (lag is not None and lag < len(records)):
            return sorted(records, key=_log_position)
        seen = {(r.partition, r.offset) for r in records}
        size = sum(len(r.value) for r in records)
        want = self.batch_max if lag is None else min(self.batch_max, len(records) + lag)
        empty = 0
        while len(records) < want and size < BATCH_BYTES_MAX:
            polled = consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=want - len(records))
            more = [r for r in _polled_records(polled) if (r.partition, r.offset) not in seen]
            if not more:
                empty += 1
                if empty > FILL_EMPTY_POLLS_MAX or _lag(consumer) == 0:
                    break
                continue
            seen.update((r.partition, r.offset) for r in more)
            size += sum(len(r.value) for r in more)
            records += more
            assigned = {tp.partition for tp in consumer.assignment() or ()}
            records = [r for r in records if r.partition in assigned]
            if lag is None and (lag := _lag(consumer)) is not None:  # the partitions' first answers
                want = min(self.batch_max, len(records) + lag)
        return sorted(records, key=_log_position)

    def _apply(self, records: list[LogRecord]) -> None:
        with exclusive(self.store):
            tracked = self.store.tracked_offsets(self.log.name)
            fresh = [r for r in records if r.offset > tracked.get(r.partition, -1)]
            self.totals.already_applied += len(records) - len(fresh)
            # Another member got there first: where the store is ahead of
            # everything polled from a partition, read on from the store.
            polled_up_to: dict[int, int] = {}
            for r in records:
                polled_up_to[r.partition] = r.offset
            consumer = self._consumer
            for partition, last in polled_up_to.items():
                if tracked.get(partition, -1) > last and consumer is not None:
                    consumer.seek(TopicPartition(self.log.events_topic, partition), tracked[partition] + 1)
            if not fresh:
                return
            try:
                outcome = project_batch(self.store, self.log.name, fresh, policy=self.policy,
                                        now=self.clock(), warm=self.warm,
                                        trust_recorded_at=self.trust_recorded_at)
            except IntegrityError:
                # Stale tracking: another member committed these offsets
                # first.  Nothing of ours was written; read on from the store.
                self.totals.stale_commits += 1
                self._seek_from_store()
                return
            self.totals.count(outcome)
            if self.publish:
                self._publish(dead_letters=outcome.dead_letters > 0)

    def _sweep(self) -> None:
        """Journal alerts whose deadline has passed since the last sweep (no
        report arrives to trigger them), then publish them."""
        with exclusive(self.store):
            self.totals.swept_transitions += self.store.sweep(self.clock())
            if self.publish:
                self._publish(dead_letters=False)

    def _publish(self, *, dead_letters: bool) -> None:
        with exclusive(self.store):
            if dead_letters:  # reads the dead_letters table: only when there may be new ones
                self._publishing(lambda: publish_dead_letters(self.store, self.log), dead_letters=True)
            if self._publishes_alerts():
                # After a batch, do not wait for the previous commit: what it
                # journaled goes out with a later batch, or on the next idle poll.
                self._publishing(lambda: self._alerts.publish(wait=False))  # type: ignore[union-attr]

    def _publishing(self, publish: Callable[[], int], *, dead_letters: bool = False) -> None:
        """Publish while projecting.  Kafka refusing (LogUnavailable) pauses
        publishing, not projecting, for up to PUBLISH_OUTAGE_MAX_S: the
        journal and the dead_letters table keep what is to go out, and the
        next call starts over from Kafka's committed marker (no copies)."""
        try:
            published = publish()
        except (LogUnavailable, KafkaError) as error:
            now = time.monotonic()
            if self._publish_failing_since is None:
                self._publish_failing_since = now
                self.say(f"publishing paused, projecting goes on (retried after each batch, for up to "
                         f"{PUBLISH_OUTAGE_MAX_S:.0f} s): {error}")
            elif now - self._publish_failing_since >= PUBLISH_OUTAGE_MAX_S:
                if isinstance(error, LogUnavailable):
                    raise
                raise LogUnavailable(f"Kafka at {self.log.bootstrap} (group {self.group}): {error}") from error
            self.totals.publish_failures += 1
            return
        if self._publish_failing_since is not None:
            self.say(f"publishing resumed after {time.monotonic() - self._publish_failing_since:.1f} s")
            self._publish_failing_since = None
        if dead_letters:
            self.totals.dead_letters_published += published
        else:
            self.totals.alerts_published += published

    def _publishes_alerts(self) -> bool:
        """The member holding PUBLISHER_PARTITION publishes the store's alert
        journal (every member's transitions): one publisher per store, so
        transitions handed over and not yet recorded as acknowledged are not
        sent again by the next member to commit."""
        return self._alerts is not None and PUBLISHER_PARTITION in self._assigned

    # -- where to read from: the store -------------------------------------------

    def _seek_from_store(self, partitions: Any = None) -> dict[int, int]:
        """Seek each partition to the store's offset + 1; returns where each will be read from."""
        consumer = self._consumer
        if consumer is None:
            return {}
        assigned = list(partitions if partitions is not None else consumer.assignment())
        tracked = self.store.tracked_offsets(self.log.name)
        starts = {}
        for tp in sorted(assigned, key=lambda tp: tp.partition):
            starts[tp.partition] = tracked.get(tp.partition, -1) + 1
            consumer.seek(tp, starts[tp.partition])
        return starts


class _SeekToStore(ConsumerRebalanceListener):
    def __init__(self, projector: GroupProjector):
        self.projector = projector

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Nothing is in flight between polls: every batch is committed (or
        # refused) before the next poll, and rebalances happen inside poll.
        self.projector._assigned -= {tp.partition for tp in revoked}

    def on_partitions_assigned(self, assigned: Any) -> None:
        partitions = sorted(tp.partition for tp in assigned)
        self.projector._assigned |= set(partitions)
        self.projector.totals.assignments.append(partitions)
        self.projector._idle_since = time.monotonic()
        starts = self.projector._seek_from_store(assigned)
        self.projector.say(f"assigned partitions {partitions}, reading from the store's offsets {starts}")


def _log_record(r: Any) -> LogRecord:
    return log_record(r)


def _polled_records(polled: Mapping[Any, list[Any]]) -> list[LogRecord]:
    return [_log_record(r) for batch in polled.values() for r in batch]


def _log_position(record: LogRecord) -> tuple[int, int]:
    return record.partition, record.offset


def _lag(consumer: KafkaConsumer) -> int | None:
    """Records the assigned partitions hold past this member's position, as
    the last fetch responses told; None while a partition has had no fetch
    answered yet (just assigned: it may hold a backlog)."""
    lag = 0
    for tp in consumer.assignment() or ():
        high, position = consumer.highwater(tp), consumer.position(tp)
        if high is None or position is None:
            return None
        lag += max(0, high - position)
    return lag


# -- dead letters: the store's dead_letters table is the outbox -----------------


def publish_dead_letters(store: ProjectionStore, log: KafkaLog) -> int:
    """Send dead letters of ``log`` not yet sent to ``{prefix}.dead-letters``.

    Each message carries the original bytes as its value, the original key,
    and headers naming the original topic, partition and offset and the
    error.  What was sent is recorded per partition as Tracking rows
    ``dead-letters:{log.name}#{partition}``; a crash between send and
    record sends those letters again (at least once; identify copies by
    original partition and offset).
    """
    name = dead_letter_tracking_name(log)
    published = store.tracked_offsets(name)
    pending = [d for d in store.dead_letters()
               if d["log_name"] == log.name and d["offset"] > published.get(d["partition"], -1)]
    if not pending:
        return 0
    pending.sort(key=lambda d: (d["partition"], d["offset"]))
    log.send(log.dead_letters_topic, [dead_letter_message(d, log.events_topic) for d in pending])
    last: dict[int, int] = {}
    for d in pending:
        last[d["partition"]] = d["offset"]
    for partition, offset in sorted(last.items()):
        try:
            store.insert_tracking(Tracking(f"{name}#{partition}", offset))
        except IntegrityError:
            pass  # recorded by another member first
    return len(pending)


def dead_letter_message(letter: dict[str, Any], topic: str) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the dead-letter message for one stored dead letter.

    Headers: reason, original_topic, original_partition, original_offset,
    error (at most DEAD_LETTER_ERROR_CHARS_MAX characters) and copy: "whole"
    when the value is the original bytes, "by-reference" when the original
    was too large to copy (DEAD_LETTER_COPY_BYTES_MAX).  A letter by
    reference carries JSON: the original's topic, partition, offset, key,
    size, SHA-256 of its bytes and its first DEAD_LETTER_PREFIX_BYTES bytes
    (as UTF-8 text, undecodable bytes replaced), for reading; the record
    itself stays in the events topic and in the store's dead_letters table.
    """
    key = letter["key"] or ""
    value = bytes(letter["value"] or b"")
    error = letter["error"]
    if len(error) > DEAD_LETTER_ERROR_CHARS_MAX:
        error = error[:DEAD_LETTER_ERROR_CHARS_MAX] + f"... ({len(letter['error'])} characters)"
    headers = [("reason", b"not-applicable"), ("original_topic", topic.encode()),
               ("original_partition", str(letter["partition"]).encode()),
               ("original_offset", str(letter["offset"]).encode()), ("error", error.encode())]
    size = len(key.encode()) + len(value) + sum(len(k) + len(v) for k, v in headers)
    if size <= DEAD_LETTER_COPY_BYTES_MAX:
        return key, value, [*headers, ("copy", b"whole")]
    reference = {
        "by_reference": True, "original_topic": topic, "original_partition": letter["partition"],
        "original_offset": letter["offset"], "key": letter["key"], "bytes": len(value),
        "sha256": hashlib.sha256(value).hexdigest(),
        "prefix": value[:DEAD_LETTER_PREFIX_BYTES].decode("utf-8", errors="replace"),
        "prefix_bytes": min(len(value), DEAD_LETTER_PREFIX_BYTES), "error": error,
    }
    # The key too is bounded: it came from the same producer as the value.
    return key[:DEAD_LETTER_PREFIX_BYTES], json.dumps(reference).encode(), [*headers, ("copy", b"by-reference")]


def print_summary(totals: GroupTotals, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(totals.as_dict(), sort_keys=True))
    else:
        print(f"projected {totals.records} {plural(totals.records, 'record')} in {totals.batches} "
              f"{plural(totals.batches, 'batch', 'batches')} ({totals.duplicates} "
              f"{plural(totals.duplicates, 'duplicate')}, {totals.dead_letters} dead "
              f"{plural(totals.dead_letters, 'letter')}, "
              f"{totals.already_applied} already applied by another member, "
              f"{totals.stale_commits} stale {plural(totals.stale_commits, 'commit')} re-sought, "
              f"{totals.swept_transitions} deadline {plural(totals.swept_transitions, 'transition')}); published "
              f"{totals.alerts_published} alert {plural(totals.alerts_published, 'transition')}, "
              f"{totals.dead_letters_published} dead {plural(totals.dead_letters_published, 'letter')}"
              f"{f' ({totals.publish_failures} publish attempts refused by Kafka, retried)' if totals.publish_failures else ''}; "
              f"partitions assigned: {totals.assignments}", file=sys.stdout)
