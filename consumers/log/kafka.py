"""The Kafka adapter of the event-log port (ledger.ports.EventLog).

Configured by URL, beside ``sqlite:///path``::

    kafka://host:port[,host:port...]/prefix[?partitions=N&replication=R&min_insync=M]

Topics, created if missing with ``partitions`` partitions (default
DEFAULT_PARTITIONS), ``replication`` replicas and ``min.insync.replicas``
``min_insync`` (default: the broker's defaults), and unlimited retention
(the log is the record; nothing ages out):

    {prefix}.events        stamped reports, keyed by trace id; LogAppendTime
    {prefix}.alerts        alert transitions (consumers/kafka/alert_publisher.py)
    {prefix}.dead-letters  records the projector could not apply, and rejected input
    {prefix}.alerts-published  the alert publisher's committed markers (compacted)

An events topic that already exists with settings that would lose reports
(a finite retention, compaction, unclean leader election, fewer replicas
than configured) is refused with one line naming each setting: a broker
that auto-created it for a third party's producer gives it a 7-day
retention.

Every report is keyed by ``ledger.events.event_key`` (the trace id, or
``license:ID``), so one trace lives in one partition and one consumer sees
all of it in order.  The producer is idempotent with acks=all: an append
returns only when every record is on all in-sync replicas, and a retried
send is not written twice.  Headers carry ``schema_version``,
``event_type``, ``event_id`` and ``digest``, so a consumer can route or
refuse a record without parsing it.

Kafka cannot tell a re-sent report from a new one, so every receipt says
"accepted"; the projection is idempotent on (event id, digest) and a re-sent
report changes nothing there (tests/contract/test_event_log.py checks it).

End offsets come from ListOffsets, as every Kafka client reads them.  The
Tansu stand-in (the test suite's broker of last resort, on machines without
Java) answers ListOffsets with the base offset of a partition's last record
batch plus one, not the high-water mark; ``?end_offsets=fetch`` in the URL
(``end_offsets_by_fetch=True``) reads the mark from a fetch of the last
batch instead, which Apache Kafka answers the same way, only slower.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlparse

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import DefaultPartitioner, murmur2

from ledger.events import FieldProblem
from ledger.ports import HEADER_DIGEST, AppendInFlight, RejectRow, AppendReceipt, EventLog, LogRecord, LogUnavailable

__all__ = [
    "KafkaLog",
    "PendingAppend",
    "DEFAULT_PARTITIONS",
    "DEFAULT_PREFIX",
    "SEND_TIMEOUT_S",
    "READ_TIMEOUT_S",
    "producer_settings",
    "events_topic_problems",
    "partition_for",
]

DEFAULT_PREFIX = "ledger"
DEFAULT_PARTITIONS = 4
PARTITIONS_MAX = 1_000
CONNECT_TIMEOUT_S = 5.0  # bootstrap: the broker must answer within this
SEND_TIMEOUT_S = 30.0  # one append: every record acknowledged, retries included
# Retries are bounded by time, not count, as the Java client's are: a
# leader election after a broker dies takes ~10 s (the controller fences a
# silent broker after its 9 s session), and what bounds a send is
# SEND_TIMEOUT_S (delivery_timeout_ms), not how often the producer happened
# to retry within it.  (kafka-python 3 survived the failover test with
# retries=5 too: waiting for the new leader's metadata spends no retry.)
# With idempotence a retry never writes twice.
PRODUCER_RETRIES_MAX = 1_000_000
RECONNECT_BACKOFF_MAX_MS = 1_000  # a restarted broker is tried again within 1 s (default 30 s)
READ_TIMEOUT_S = 15.0  # one read() or end_offsets() call
FETCH_POLL_MS = 200
METADATA_TIMEOUT_S = 10.0
# A transaction a dead publisher left open is aborted by the coordinator
# after this (or at once, when the next publisher with its transactional id
# starts); until then read_committed readers of its partitions wait.
TRANSACTION_TIMEOUT_S = 30.0
HEADER_SCHEMA_VERSION = "schema_version"
HEADER_EVENT_TYPE = "event_type"
HEADER_EVENT_ID = "event_id"

# Unlimited retention: the event log is the log of record.  (A broker that
# ignores topic configs -- Tansu does -- keeps everything anyway.)
RETAIN_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
COMPACTED = {"cleanup.policy": "compact"}
# The broker stamps each report as it appends it: a log of record whose
# timestamps follow its order, whatever the clocks of the parties' systems;
# and the ledger's recorded_at on Kafka, which no producer can choose
# (docs/COMPLIANCE.md, "Who may say what").
LOG_APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}
LOG_APPEND_TIME_TYPE = 1  # ConsumerRecord.timestamp_type of a LogAppendTime topic
REPLICATION_MAX = 32


def log_record(r: Any) -> LogRecord:
    """A consumed Kafka record as the projector reads it: a producer may write
    anything, so its recorded_at is never the ledger's; the broker's append
    time is, when the topic keeps one."""
    appended_at = None
    if getattr(r, "timestamp_type", None) == LOG_APPEND_TIME_TYPE and r.timestamp is not None and r.timestamp >= 0:
        appended_at = datetime.fromtimestamp(r.timestamp / 1000, timezone.utc)
    return LogRecord(r.partition, r.offset, (r.key or b"").decode(errors="replace"), r.value or b"",
                     tuple((k, v or b"") for k, v in (r.headers or [])),
                     stamped_by_ledger=False, appended_at=appended_at)


def producer_settings(bootstrap: str, *, send_timeout_s: float = SEND_TIMEOUT_S,
                      transactional_id: str | None = None) -> dict[str, Any]:
    """KafkaProducer kwargs: idempotent, acks=all, every wait bounded;
    transactional when ``transactional_id`` is given (the alert publisher)."""
    timeout_ms = int(send_timeout_s * 1000)
    transactional: dict[str, Any] = {}
    if transactional_id is not None:
        transactional = {"transactional_id": transactional_id,
                         "transaction_timeout_ms": int(TRANSACTION_TIMEOUT_S * 1000)}
    return {
        **transactional,
        "bootstrap_servers": bootstrap.split(","),
        "client_id": "ledger-producer",
        "acks": "all",
        # murmur2 of the key, positive, modulo the partition count: the Java
        # client's default, and librdkafka's with partitioner=murmur2_random
        # (docs/KAFKA.md).  Named here so the docs and the ledger agree
        # whatever a later kafka-python makes its default.
        "partitioner": DefaultPartitioner(),
        "enable_idempotence": True,
        "retries": PRODUCER_RETRIES_MAX,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        "max_in_flight_requests_per_connection": 5,  # idempotence keeps order up to 5
        "linger_ms": 5,  # batch what arrives together
        "request_timeout_ms": min(timeout_ms, 10_000),
        "delivery_timeout_ms": max(timeout_ms, 10_001),  # must exceed request_timeout + linger
        "max_block_ms": timeout_ms,  # metadata of an unreachable broker
        "bootstrap_timeout_ms": int(CONNECT_TIMEOUT_S * 1000),
    }


class KafkaLog(EventLog):
    """The event log on Kafka topics named ``{prefix}.events`` etc."""

    detects_duplicates = False  # re-sends are dropped by the projection, by (event id, digest)
    # Producers we do not control append here too, with whatever digest
    # header they like: a record is validated, and its digest computed, by
    # the projection that reads it, never trusted (ledger/ports.py).
    validated_on_append = False
    # Batches handed to the producer before the oldest is acknowledged: the
    # writer validates the next batch while the broker acknowledges the last.
    appends_in_flight_max = 4

    def __init__(self, bootstrap: str, prefix: str = DEFAULT_PREFIX, *,
                 partitions: int = DEFAULT_PARTITIONS, send_timeout_s: float = SEND_TIMEOUT_S,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S, end_offsets_by_fetch: bool = False,
                 replication: int | None = None, min_insync: int | None = None):
        if not bootstrap:
            raise LogUnavailable("Kafka log: no broker address; write kafka://host:port/prefix")
        if not 1 <= partitions <= PARTITIONS_MAX:
            raise LogUnavailable(f"Kafka log: partitions={partitions} must be 1..{PARTITIONS_MAX}")
        if replication is not None and not 1 <= replication <= REPLICATION_MAX:
            raise LogUnavailable(f"Kafka log: replication={replication} must be 1..{REPLICATION_MAX}")
        if min_insync is not None and not 1 <= min_insync <= (replication or REPLICATION_MAX):
            raise LogUnavailable(f"Kafka log: min_insync={min_insync} must be 1..{replication or REPLICATION_MAX} "
                                 f"(at most the replication)")
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.partition_count = partitions
        self.send_timeout_s = send_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.end_offsets_by_fetch = end_offsets_by_fetch
        self.replication = replication  # None: the broker's default.replication.factor
        self.min_insync = min_insync  # None: the broker's min.insync.replicas
        self.events_topic = f"{prefix}.events"
        self.alerts_topic = f"{prefix}.alerts"
        self.dead_letters_topic = f"{prefix}.dead-letters"
        self.alerts_published_topic = f"{prefix}.alerts-published"
        self.name = f"kafka:{self.events_topic}"
        self._producer: KafkaProducer | None = None
        self._reader: KafkaConsumer | None = None
        self._partitions: list[int] | None = None
        self._latest_pending: PendingAppend | None = None  # the last begin_append not yet flushed
        self._identity: str | None = None  # the events topic's id (ensure_topics)
        self.ensure_topics()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "KafkaLog":
        """``kafka://host:port[,host:port]/prefix[?partitions=N&replication=R&min_insync=M]``."""
        parsed = urlparse(url)
        if parsed.scheme != "kafka" or not parsed.netloc:
            raise LogUnavailable(f"{url!r} is not a Kafka log URL; write kafka://host:port/prefix")
        prefix = parsed.path.strip("/") or DEFAULT_PREFIX
        if "/" in prefix:
            raise LogUnavailable(f"{url!r}: the topic prefix {prefix!r} must not contain '/'")
        query = parse_qs(parsed.query)
        if "partitions" in query:
            text = query["partitions"][-1]
            if not text.isdigit():
                raise LogUnavailable(f"{url!r}: partitions={text!r} must be a whole number")
            options.setdefault("partitions", int(text))
        for param, option in (("replication", "replication"), ("min_insync", "min_insync")):
            if param in query:
                text = query[param][-1]
                if not text.isdigit():
                    raise LogUnavailable(f"{url!r}: {param}={text!r} must be a whole number")
                options.setdefault(option, int(text))
        if "end_offsets" in query:
            how = query["end_offsets"][-1]
            if how not in ("list", "fetch"):
                raise LogUnavailable(f"{url!r}: end_offsets={how!r} must be list or fetch")
            options.setdefault("end_offsets_by_fetch", how == "fetch")
        return cls(parsed.netloc, prefix, **options)

    def __repr__(self) -> str:
        return f"KafkaLog({self.bootstrap!r}, {self.prefix!r})"

    def _unavailable(self, what: str, error: BaseException) -> LogUnavailable:
        text = str(error)
        if not text.startswith(type(error).__name__):  # kafka-python errors name themselves
            text = f"{type(error).__name__}: {text}"
        return LogUnavailable(f"Kafka at {self.bootstrap} ({what}): {text}")

    # -- topics -----------------------------------------------------------------

    def topic_settings(self) -> dict[str, tuple[int, dict[str, str]]]:
        """topic -> (partitions, configs) as the ledger creates them."""
        durable = {} if self.min_insync is None else {"min.insync.replicas": str(self.min_insync)}
        return {
            # The log of record: nothing ages out, and each record is stamped
            # with the time the broker appended it (a producer's clock is not
            # the ledger's: recorded_at is in the report itself).
            self.events_topic: (self.partition_count, {**RETAIN_FOREVER, **LOG_APPEND_TIME, **durable}),
            self.alerts_topic: (self.partition_count, {**RETAIN_FOREVER, **durable}),
            self.dead_letters_topic: (self.partition_count, {**RETAIN_FOREVER, **durable}),
            # The alert publisher's "published up to journal seq N" markers,
            # written in the same transactions as the transitions: one
            # partition (one key per publisher), compacted (only the last counts).
            self.alerts_published_topic: (1, {**COMPACTED, **durable}),
        }

    def ensure_topics(self) -> None:
        """Create the topics if missing; refuse (LogUnavailable, one line) an
        existing events topic whose settings would lose reports."""
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap.split(","), client_id="ledger-admin",
                                     request_timeout_ms=int(METADATA_TIMEOUT_S * 1000),
                                     bootstrap_timeout_ms=int(self.connect_timeout_s * 1000))
        except KafkaError as error:
            raise self._unavailable("connect", error) from error
        try:
            existing = set(admin.list_topics())
            replication = -1 if self.replication is None else self.replication  # -1: the broker's default
            for topic, (partitions, configs) in self.topic_settings().items():
                if topic in existing:
                    continue
                try:
                    admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": replication,
                                                 "configs": configs}})
                except TopicAlreadyExistsError:
                    pass  # another process created it in between: checked below like any existing one
            # Checked even when just created: another process (or a broker
            # auto-creating topics for a third party's producer) may have won.
            self._check_events_topic(admin)
        except KafkaError as error:
            raise self._unavailable("create topics", error) from error
        try:
            self._identity = _topic_identity(admin, self.events_topic)
        finally:
            admin.close()

    def identity(self) -> str | None:
        """The events topic's id (Kafka 2.8+ gives every topic a UUID; a topic
        deleted and made again gets another), or None where the broker gives
        none: a store projected from a lost topic is then refused
        (consumers/log_check.py)."""
        return self._identity

    def _check_events_topic(self, admin: KafkaAdminClient) -> None:
        topic = self.events_topic
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
        configs = {k: (v or {}).get("value") for k, v in described.get("topic", {}).get(topic, {}).items()}
        if not configs:
            return  # a broker that describes no configs (Tansu): nothing to judge by
        [meta] = admin.describe_topics([topic])
        replicas = min((len(p["replica_nodes"]) for p in meta["partitions"]), default=0)
        problems = events_topic_problems(configs, replicas=replicas, replication=self.replication,
                                         min_insync=self.min_insync)
        if problems:
            raise LogUnavailable(
                f"Kafka at {self.bootstrap}: refusing to use the existing topic {topic}: "
                f"{'; '.join(problems)}. Fix it (kafka-configs.sh --alter --entity-type topics "
                f"--entity-name {topic} --add-config retention.ms=-1,retention.bytes=-1,cleanup.policy=delete"
                f",unclean.leader.election.enable=false) or use another topic prefix")

    # -- writing ----------------------------------------------------------------

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            try:
                settings = producer_settings(self.bootstrap, send_timeout_s=self.send_timeout_s)
                settings["bootstrap_timeout_ms"] = int(self.connect_timeout_s * 1000)
                self._producer = KafkaProducer(**settings)
            except KafkaError as error:
                raise self._unavailable("producer", error) from error
        return self._producer

    def append(self, records: Sequence[tuple[str, str, str, bytes]]) -> list[AppendReceipt]:
        return self.begin_append(records, flush=True).receipts()

    def begin_append(self, records: Sequence[tuple[str, str, str, bytes]], *,
                     flush: bool = False) -> "PendingAppend":
        """Hand ``records`` to the producer and return without waiting for them.

        Nothing is promised durable until ``receipts()`` of the returned
        handle returns: that is ``append`` in two halves, so a caller with
        many batches (ingest, the SDK) can build and send the next batch
        while the broker acknowledges this one, and still count a report as
        appended only once it is acknowledged.  Without ``flush`` the
        producer sends after ``linger_ms``, batching with what follows.
        """
        messages = [(key, value, _event_headers(event_id, digest, value))
                    for event_id, digest, key, value in records]
        pending = PendingAppend(self, [r[0] for r in records],
                                self._begin_send(self.events_topic, messages, flush=flush))
        self._latest_pending = None if flush else pending
        return pending

    def send(self, topic: str, messages: Sequence[tuple[str, bytes, list[tuple[str, bytes]]]]
             ) -> list[tuple[int, int]]:
        """Send (key, value, headers) messages to ``topic``; (partition, offset) of each.

        Returns once every message is acknowledged by all in-sync replicas;
        raises LogUnavailable (naming the broker) if that is not so within
        the send timeout.  Nothing is dropped silently: a message either has
        a (partition, offset) or the call raises.
        """
        return self._placed(topic, self._begin_send(topic, messages, flush=True))

    def begin_send(self, topic: str, messages: Sequence[tuple[str, bytes, list[tuple[str, bytes]]]]) -> list[Any]:
        """``send`` in two halves: hand the messages to the producer (sent
        within ``linger_ms``) and return their futures; ``placed`` waits for
        them.  Nothing is acknowledged before ``placed`` returns."""
        return self._begin_send(topic, messages, flush=False)

    def placed(self, topic: str, futures: list[Any]) -> list[tuple[int, int]]:
        """(partition, offset) of each message of a ``begin_send``, once acknowledged; else LogUnavailable."""
        return self._placed(topic, futures)

    def flush(self) -> None:
        """Send what the producer holds now, waiting (bounded) for the broker."""
        try:
            self.producer.flush(timeout=self.send_timeout_s)
        except KafkaError as error:
            raise self._unavailable("flush", error) from error

    def _begin_send(self, topic: str, messages: Sequence[tuple[str, bytes, list[tuple[str, bytes]]]],
                    *, flush: bool) -> list[Any]:
        if not messages:
            return []
        producer = self.producer
        try:
            futures = [producer.send(topic, key=key.encode(), value=value, headers=headers)
                       for key, value, headers in messages]
            if flush:
                producer.flush(timeout=self.send_timeout_s)
        except KafkaError as error:
            raise self._unavailable(f"send to {topic}", error) from error
        return futures

    def _placed(self, topic: str, futures: list[Any]) -> list[tuple[int, int]]:
        """(partition, offset) of each sent message, once acknowledged; else LogUnavailable."""
        placed = []
        try:
            for future in futures:
                metadata = future.get(timeout=self.send_timeout_s)
                placed.append((metadata.partition, metadata.offset))
        except KafkaError as error:
            raise self._unavailable(f"send to {topic}", error) from error
        return placed

    def keep_rejects(self, rejects: Sequence[RejectRow]) -> int:
        """Rejected input lines go to the dead-letter topic, so nothing is dropped.
        Each letter says why twice: ``error``, one line a person reads, and
        ``problems``, the list of {field, value, message} a program reads."""
        messages = [
            (f"{row.source}:{row.line}",
             json.dumps({"source": row.source, "line": row.line, "raw": row.raw, "error": row.shown().problems,
                         "problems": [p.model_dump() for p in row.structured_problems() or ()],
                         "rejected_at": row.rejected_at}).encode(),
             [("reason", b"rejected-input")])
            for row in rejects
        ]
        return len(self.send(self.dead_letters_topic, messages))

    def rejects(self, limit: int = 1000) -> list[RejectRow]:
        """What ``{prefix}.dead-letters`` holds, oldest first, as the embedded
        log's rejects table has it: (source, line, raw, problems, rejected_at).

        Two kinds of letter (header ``reason``): ``rejected-input``, an input
        line the contract refused (its JSON value names source, line, raw and
        error); ``not-applicable``, a record of the events topic the projector
        could not apply (the value is the record's bytes; the source is
        ``topic[partition]@offset`` and the line its offset)."""
        letters: list[RejectRow] = []
        topic = self.dead_letters_topic
        for partition in self.topic_partitions(topic):
            letters += [_dead_letter_row(record) for record in self._read_records(topic, partition, 0, limit)]
        letters.sort(key=lambda row: (row.rejected_at, row.source, row.line))
        return letters[:limit]

    # -- reading ----------------------------------------------------------------

    @property
    def reader(self) -> KafkaConsumer:
        """A consumer outside any group: replay reads by position, not by membership."""
        if self._reader is None:
            try:
                self._reader = KafkaConsumer(
                    bootstrap_servers=self.bootstrap.split(","), client_id="ledger-reader",
                    group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                    # Alert transitions are written in transactions: only
                    # committed ones are read (and the events topic, written
                    # without transactions, reads the same either way).
                    isolation_level="read_committed",
                    fetch_max_wait_ms=100, request_timeout_ms=int(READ_TIMEOUT_S * 1000) + 1000,
                    bootstrap_timeout_ms=int(self.connect_timeout_s * 1000),
                )
            except KafkaError as error:
                raise self._unavailable("reader", error) from error
        return self._reader

    def partitions(self) -> list[int]:
        return self.topic_partitions(self.events_topic)

    def topic_partitions(self, topic: str) -> list[int]:
        deadline = time.monotonic() + METADATA_TIMEOUT_S
        while True:
            try:
                found = self.reader.partitions_for_topic(topic)
            except KafkaError as error:
                raise self._unavailable(f"metadata of {topic}", error) from error
            if found:
                return sorted(found)
            if time.monotonic() > deadline:
                raise LogUnavailable(f"Kafka at {self.bootstrap}: topic {topic!r} has no partitions "
                                     f"after {METADATA_TIMEOUT_S} s")
            time.sleep(0.1)

    def read(self, partition: int, start_offset: int, limit: int) -> list[LogRecord]:
        return self.read_topic(self.events_topic, partition, start_offset, limit)

    def read_topic(self, topic: str, partition: int, start_offset: int, limit: int) -> list[LogRecord]:
        """Up to ``limit`` records of one partition from ``start_offset``, stopping at its end
        (with the broker's append time where the topic keeps one: ``log_record``)."""
        return [log_record(r) for r in self._read_records(topic, partition, start_offset, limit)]

    def _read_records(self, topic: str, partition: int, start_offset: int, limit: int) -> list[Any]:
        """``read_topic``, as kafka-python's ConsumerRecords (timestamps included)."""
        if limit <= 0:
            return []
        tp = TopicPartition(topic, partition)
        reader = self.reader
        out: list[Any] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        try:
            reader.assign([tp])
            # The end, known before reading: under read_committed the last
            # stable offset (a transaction still open ends the read before it;
            # the high-water mark would never be reached).
            end = None if self.end_offsets_by_fetch else int(reader.end_offsets([tp])[tp])
            if end is not None and start_offset >= end:
                return out
            reader.seek(tp, start_offset)
            while len(out) < limit:
                polled = reader.poll(timeout_ms=FETCH_POLL_MS, max_records=limit - len(out))
                for r in polled.get(tp, []):
                    if r.offset < start_offset:
                        continue  # an out-of-range seek was reset to the start: not what was asked
                    out.append(r)
                highwater = reader.highwater(tp) if end is None else end
                if highwater is not None and reader.position(tp) >= highwater:
                    break  # at the end of the partition
                if time.monotonic() > deadline:
                    if out:
                        break  # what was read is correct; the caller asks again for the rest
                    raise LogUnavailable(f"Kafka at {self.bootstrap}: no answer reading {topic}[{partition}] "
                                         f"from offset {start_offset} within {READ_TIMEOUT_S} s")
        except KafkaError as error:
            raise self._unavailable(f"read {topic}[{partition}]", error) from error
        return out

    def end_offsets(self) -> dict[int, int]:
        return self.topic_end_offsets(self.events_topic)

    def topic_end_offsets(self, topic: str) -> dict[int, int]:
        """The high-water mark of each partition (see the module doc)."""
        tps = [TopicPartition(topic, p) for p in self.topic_partitions(topic)]
        reader = self.reader
        try:
            listed = reader.end_offsets(tps)
            if not self.end_offsets_by_fetch:
                return {tp.partition: int(listed[tp]) for tp in sorted(tps, key=lambda tp: tp.partition)}
            nonempty = [tp for tp in tps if listed[tp] > 0]
            out = {tp.partition: 0 for tp in tps if listed[tp] == 0}
            if not nonempty:
                return out
            reader.assign(nonempty)
            for tp in nonempty:
                reader.seek(tp, listed[tp] - 1)  # the last batch: its fetch carries the high-water mark
            deadline = time.monotonic() + READ_TIMEOUT_S
            while True:
                reader.poll(timeout_ms=FETCH_POLL_MS, max_records=1)
                marks = {tp: reader.highwater(tp) for tp in nonempty}
                if all(m is not None for m in marks.values()):
                    out.update({tp.partition: int(m) for tp, m in marks.items()})  # type: ignore[arg-type]
                    return dict(sorted(out.items()))
                if time.monotonic() > deadline:
                    raise LogUnavailable(f"Kafka at {self.bootstrap}: no high-water mark for {topic} "
                                         f"within {READ_TIMEOUT_S} s")
        except KafkaError as error:
            raise self._unavailable(f"end offsets of {topic}", error) from error

    def close(self) -> None:
        producer, self._producer = self._producer, None
        self._latest_pending = None
        reader, self._reader = self._reader, None
        try:
            if producer is not None:
                # Anything still unsent was already reported to its sender as
                # LogUnavailable by send(); close does not wait past the bound.
                producer.close(timeout=self.send_timeout_s)
        except KafkaError:
            pass
        finally:
            if reader is not None:
                reader.close()


class PendingAppend(AppendInFlight):
    """Records handed to the producer by ``KafkaLog.begin_append``, not yet known durable."""

    def __init__(self, log: KafkaLog, event_ids: list[str], futures: list[Any]):
        self._log = log
        self._event_ids = event_ids
        self._futures = futures

    def receipts(self) -> list[AppendReceipt]:
        """Once every record is acknowledged by all in-sync replicas, one
        receipt each; raises LogUnavailable if that is not so within the send
        timeout (as ``append`` does)."""
        log = self._log
        if log._latest_pending is self:
            # Nothing was sent after these: send them now rather than after
            # linger_ms (which only helps while more records follow).
            log._latest_pending = None
            try:
                log.producer.flush(timeout=log.send_timeout_s)
            except KafkaError as error:
                raise log._unavailable(f"send to {log.events_topic}", error) from error
        placed = log._placed(log.events_topic, self._futures)
        return [AppendReceipt(event_id, "accepted", partition, offset)
                for event_id, (partition, offset) in zip(self._event_ids, placed)]


def _topic_identity(admin: KafkaAdminClient, topic: str) -> str | None:
    """``kafka-topic-id:<uuid>`` of ``topic``, or None if the broker names no id
    (an all-zero id: brokers before 2.8, Tansu) or cannot say."""
    try:
        [described] = admin.describe_topics([topic])
    except Exception:  # noqa: BLE001 - an identity is optional: a broker that cannot say must not stop the log
        return None
    topic_id = str(described.get("topic_id") or "")
    if not topic_id or set(topic_id) <= {"0", "-"} or topic_id == "AAAAAAAAAAAAAAAAAAAAAA":
        return None
    return f"kafka-topic-id:{topic_id}"


def _event_headers(event_id: str, digest: str, value: bytes) -> list[tuple[str, bytes]]:
    """schema_version and event_type from the report itself (it was validated before append)."""
    try:
        body = json.loads(value)
    except ValueError:
        body = {}
    headers = [(HEADER_EVENT_ID, event_id.encode()), (HEADER_DIGEST, digest.encode())]
    if isinstance(body, dict):
        if "schema_version" in body:
            headers.insert(0, (HEADER_SCHEMA_VERSION, str(body["schema_version"]).encode()))
        if "type" in body:
            headers.insert(1, (HEADER_EVENT_TYPE, str(body["type"]).encode()))
    return headers


def _dead_letter_row(record: Any) -> RejectRow:
    """One dead letter as a row of ``ledger rejects``."""
    headers = {k: (v or b"").decode(errors="replace") for k, v in (record.headers or [])}
    value = record.value or b""
    at = datetime.fromtimestamp(record.timestamp / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    if headers.get("reason") == "rejected-input":
        try:
            letter = json.loads(value)
            problems = letter.get("problems")  # letters sent before it was there hold only the error text
            kept = (RejectRow.keeping([FieldProblem.model_validate(p) for p in problems]) if problems
                    else str(letter["error"]))
            return RejectRow(str(letter["source"]), int(letter["line"]), str(letter["raw"]), kept,
                             str(letter.get("rejected_at") or at))
        except (ValueError, KeyError, TypeError):  # (a ValidationError is a ValueError)
            pass  # not as the ledger writes them: shown as it is, below
    source = f"{headers.get('original_topic', record.topic)}[{headers.get('original_partition', '?')}]"
    offset = headers.get("original_offset", "")
    return RejectRow(f"{source}@{offset}", int(offset) if offset.isdigit() else record.offset,
                     value.decode(errors="replace"), headers.get("error", f"reason {headers.get('reason', 'unknown')}"),
                     at)


def partition_for(key: str, partitions: int) -> int:
    """The partition every client must send a report keyed ``key`` to:
    ``(murmur2(utf-8 key) & 0x7fffffff) % partitions``, as the Java client's
    default partitioner and librdkafka's ``murmur2_random`` compute it."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def events_topic_problems(configs: dict[str, str | None], *, replicas: int, replication: int | None,
                          min_insync: int | None) -> list[str]:
    """Why an existing events topic would lose (or cannot keep) reports; empty if none.

    ``configs`` are the topic's effective settings (DescribeConfigs, all
    sources); ``replicas`` the smallest replica count of its partitions."""
    problems = []
    retention_ms = configs.get("retention.ms")
    if retention_ms not in (None, "-1"):
        days = int(retention_ms) / 86_400_000 if retention_ms.lstrip("-").isdigit() else None
        problems.append(f"retention.ms={retention_ms} deletes reports"
                        + (f" after {days:g} day{'' if days == 1 else 's'}" if days is not None else "") + " (need -1)")
    retention_bytes = configs.get("retention.bytes")
    if retention_bytes not in (None, "-1"):
        problems.append(f"retention.bytes={retention_bytes} deletes the oldest reports (need -1)")
    policy = configs.get("cleanup.policy") or "delete"
    if "compact" in policy:
        problems.append(f"cleanup.policy={policy} keeps only the last report of each trace (need delete)")
    if (configs.get("unclean.leader.election.enable") or "false").lower() == "true":
        problems.append("unclean.leader.election.enable=true lets a replica that missed acknowledged "
                        "reports become leader (need false)")
    if replication is not None and replicas < replication:
        problems.append(f"{replicas} replica(s) per partition, configured replication={replication}")
    topic_min_insync = configs.get("min.insync.replicas")
    if min_insync is not None and topic_min_insync is not None and int(topic_min_insync) < min_insync:
        problems.append(f"min.insync.replicas={topic_min_insync}, configured min_insync={min_insync}")
    return problems
