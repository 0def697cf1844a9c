"""Ports: what the domain needs from the outside, with no I/O of its own.

The party registry (``PartyRegistry``) is kept by the projection store
(projections/sqlite_store.py, postgres_store.py; docs/COMPLIANCE.md says
why); tests/contract/test_party_registry.py runs on both.

The event log has two adapters, side by side in consumers/log/ (embedded.py
on one SQLite file, kafka.py on Apache Kafka); both pass
tests/contract/test_event_log.py.  They cannot live beside this port: the
domain does no I/O.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from pydantic import ValidationError

from ledger.events import FieldProblem
from ledger.parties import RegisteredParty

__all__ = ["HEADER_DIGEST", "RejectRow", "LogRecord", "AppendReceipt", "AppendInFlight", "Appended", "EventLog", "LogUnavailable",
           "PartyRegistry", "KeyRange"]


class LogUnavailable(RuntimeError):
    """The log cannot be reached; the message says which log and where."""


class RejectRow(NamedTuple):
    """An input line ingest refused, as a log that keeps them (``keep_rejects``,
    ``rejects``) stores it.  A NamedTuple: the logs hand it to their SQL
    drivers as a row.

    ``problems`` is text the log keeps as it is: the problems as a JSON
    array of {field, value, message} (``keeping``), so that a reader gets
    them back as the refusal said them (``field_problems``: the HTTP API's
    /v1/rejects) or as one line of text (``shown``: `ledger rejects`).  Rows
    kept before, and a record the Kafka projector could not apply, hold
    plain text: read as one problem of the whole line saying it."""

    source: str
    line: int
    raw: str
    problems: str  # JSON: [{field, value, message}, ...]; older rows: each problem's text, joined with "; "
    rejected_at: str  # ISO 8601

    @staticmethod
    def keeping(problems: Sequence[FieldProblem]) -> str:
        """``problems`` as a log keeps them (the ``problems`` column)."""
        return json.dumps([p.model_dump() for p in problems], ensure_ascii=False)

    def field_problems(self) -> list[FieldProblem]:
        """The problems as the refusal said them (field, value, message)."""
        kept = self.structured_problems()
        return kept if kept is not None else [FieldProblem(field="(line)", value="(in the message)",
                                                           message=self.problems)]

    def shown(self) -> RejectRow:
        """The row with its problems as one line of text: each problem's, joined with "; "."""
        kept = self.structured_problems()
        return self if kept is None else self._replace(problems="; ".join(str(p) for p in kept))

    def structured_problems(self) -> list[FieldProblem] | None:
        """The problems ``keeping`` kept, or None for plain text (a row kept
        before, a projector's error)."""
        try:
            kept = json.loads(self.problems)
            if isinstance(kept, list) and kept:
                return [FieldProblem.model_validate(p) for p in kept]
        except (ValueError, ValidationError):
            pass
        return None


# The header a read record carries its content digest in, on every log
# (consumers/log_check.py compares it with the stored reports' digests).
HEADER_DIGEST = "digest"

# A range of log keys (trace ids): the first, and the first after it (None:
# to the last key).  A worker's share of a rebuild (consumers/parallel_rebuild.py).
KeyRange = tuple[str, "str | None"]


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record as read back from the log.

    ``offset`` increases within a partition; a consumer that has applied
    ``offset`` resumes from ``offset + 1``.
    """

    partition: int
    offset: int
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    # Whether the record's recorded_at is the ledger's own: true where only
    # the ledger writes (the embedded log: ingest and the SDK stamp with the
    # ledger's clock), false where any producer may write (Kafka).  The
    # reader then stamps it: with ``appended_at``, the log's own append time
    # (a LogAppendTime topic), or, without one, its own clock.
    stamped_by_ledger: bool = True
    appended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AppendReceipt:
    """Where an appended report went, and whether it was new.

    ``outcome`` is "accepted", "duplicate" (same event id and content already
    in the log: nothing written) or "conflict" (same event id, other content:
    written, and the projection raises a conflicting-report alert).  A log
    that cannot tell (Kafka) says "accepted" and leaves de-duplication to the
    projection, which is idempotent on (event id, digest).
    """

    event_id: str
    outcome: str
    partition: int
    offset: int | None


class AppendInFlight(ABC):
    """An append begun with ``EventLog.begin_append``, not yet known durable."""

    @abstractmethod
    def receipts(self) -> list[AppendReceipt]:
        """Once every record is durable, one receipt each, in order; raises
        LogUnavailable if that cannot be promised (as ``append`` does)."""


class Appended(AppendInFlight):
    """An append that was durable when it returned."""

    def __init__(self, receipts: list[AppendReceipt]):
        self._receipts = receipts

    def receipts(self) -> list[AppendReceipt]:
        return self._receipts


class EventLog(ABC):
    """An append-only log of stamped reports, partitioned by key (the trace id)."""

    #: Names the log in tracking records, e.g. "embedded" or "kafka:ledger.events".
    name: str

    #: How many appends ``begin_append`` may have in flight, not yet
    #: acknowledged, before the writer waits for the oldest (ingest, SDK).
    appends_in_flight_max: int = 1

    #: Whether ``read_by_key`` can hand the log over grouped by key (trace).
    reads_by_key: bool = False

    #: Whether append can tell a re-sent report ("duplicate") from a new one.
    #: Kafka cannot look an event id up; there the projection drops re-sends.
    detects_duplicates: bool = True

    #: Whether only the ledger appends to this log, after checking each report
    #: against the contract and stamping it with its content digest (the
    #: embedded log: ingest and the SDK).  There a record whose bytes still
    #: hash to the digest stored beside it is the report as validated, and
    #: ``ledger replay`` trusts that digest (consumers/projector.py
    #: ``rebuild``).  False: any producer may append, with any digest header
    #: (Kafka); every record is validated, its digest computed, when read.
    validated_on_append: bool = False

    @abstractmethod
    def append(self, records: Sequence[tuple[str, str, str, bytes]]) -> list[AppendReceipt]:
        """Append (event_id, digest, key, value) tuples durably, in order.

        Called by ingest and the SDK.  Returns once every record is durable;
        raises LogUnavailable if that cannot be promised (nothing is then
        known to be written, and re-sending is safe because the log and the
        projections are idempotent on event id).
        """

    def begin_append(self, records: Sequence[tuple[str, str, str, bytes]]) -> AppendInFlight:
        """Start appending; ``receipts()`` on the result waits until the
        records are durable.  A log that acknowledges asynchronously (Kafka)
        returns at once, so the writer can prepare the next batch; by
        default this is ``append``."""
        return Appended(self.append(records))

    @abstractmethod
    def partitions(self) -> list[int]:
        """The partition numbers, ascending."""

    @abstractmethod
    def read(self, partition: int, start_offset: int, limit: int) -> list[LogRecord]:
        """Up to ``limit`` records of one partition from ``start_offset`` on, in order."""

    def read_by_key(self, below: dict[int, int], keys: KeyRange | None = None) -> Iterator[LogRecord]:
        """Every record below ``below`` (partition -> offset), license reports
        (keys ``license:...``) first, then grouped by key, in offset order
        within a key; with ``keys``, the license reports and the records of
        the keys in that range only.  Only where ``reads_by_key``: a rebuild
        from position 0 then folds each trace once (consumers/projector.py
        ``rebuild``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot read grouped by key")

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """Inside the block, every read sees the log as it stood when the
        block's first read began, whatever is appended meanwhile: what one
        pass checked is what the next pass reads (``ledger replay``: the check
        against the stored digests, then the rebuild that trusts them).

        By default nothing is held: records never change once written, but
        reads see what is appended meanwhile.  Stored digests are trusted
        only on a log ``validated_on_append``, and such a log must hold one
        (the embedded log: a read transaction)."""
        return contextlib.nullcontext()

    @abstractmethod
    def end_offsets(self) -> dict[int, int]:
        """For each partition, the offset the next appended record will get."""

    def identity(self) -> str | None:
        """A value naming this log for as long as it lives, and no other log
        (the embedded log: a random id written when the file is created).  A
        projection store records it at its first projection and refuses to
        project another log (consumers/log_check.py).  None: this log cannot
        name itself, and only the offsets are checked."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections.  Idempotent."""


class PartyRegistry(ABC):
    """The parties the operator registered (ledger/parties.py): id, country, roles.

    Read by ingest, the SDK and the projector before a report is taken
    (``ledger.parties.party_problems``); written only by the operator
    (``ledger parties add/remove``).  The HTTP API's credentials will bind
    to these ids.
    """

    @abstractmethod
    def registered_parties(self) -> list[RegisteredParty]:
        """Every registered party, ordered by id.  Called once per ingest, SDK
        send or projected batch: a registry is small (thousands of parties)."""

    @abstractmethod
    def register_parties(self, parties: Sequence[RegisteredParty]) -> None:
        """Add these parties, or replace the entries of those already there,
        in one transaction: all or nothing."""

    @abstractmethod
    def remove_party(self, party_id: str) -> bool:
        """Remove one party; False if it was not registered.  Reports already
        taken stay; later ones naming it are refused."""
