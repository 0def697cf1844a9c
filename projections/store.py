"""The projection store port: read models plus how far into the log they have read.

Two halves: ``ProjectionWriter``, what a projector reads back and writes
(premises of a batch, the batch itself with its tracking, the deadline
sweep, the log identity), and ``ProjectionReader``, what queries, the audit
export, the HTTP API and `ledger verify` ask.  ``ProjectionStore`` is both,
plus the party registry.  Both adapters (sqlite_store, postgres_store, one
SQL in projections/sql_store.py) pass tests/contract/test_projection_store.py.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventsourcing.persistence import Tracking

from ledger.ports import PartyRegistry

__all__ = ["ProjectionStore", "ProjectionWriter", "ProjectionReader", "ProjectionPositions", "TraceRows", "ProjectedBatch", "DeadLetter", "StoreUnavailable", "fresh_mark"]


def fresh_mark() -> str:
    """A writer mark no one holds: what a commit without a mark of its own leaves."""
    return uuid.uuid4().hex


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or read; the message says which and where."""


@dataclass(frozen=True, slots=True)
class TraceRows:
    """Everything one trace contributes to the read models, recomputed whole."""

    trace_id: str
    new_versions: list[tuple[str, str, str, str]]  # (event_id, digest, recorded_at, payload)
    lots: list[tuple[Any, ...]]
    steps: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    log_name: str
    partition: int
    offset: int
    key: str
    value: bytes
    error: str


@dataclass(slots=True)
class ProjectedBatch:
    traces: list[TraceRows] = field(default_factory=list)
    licenses: list[tuple[str, str, str, str]] = field(default_factory=list)  # (license_id, event_id, digest, payload)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Who wrote the batch (projections/warm_traces.py).  Every commit
    # replaces the store's writer mark, with this or, if None, a fresh one.
    writer_mark: str | None = None


class ProjectionPositions(ABC):
    """What both halves ask: where the store is, and how far into which log
    its read models have read."""

    where: str
    """Where the store is, as messages name it (a file path, a PostgreSQL URL)."""

    @abstractmethod
    def tracked_offsets(self, log_name: str) -> dict[int, int]:
        """Last applied offset per partition of ``log_name`` (absent: none applied)."""

    @abstractmethod
    def log_identity(self, log_name: str) -> str | None:
        """The identity of the log ``log_name`` this store was first projected
        from (``EventLog.identity``), or None if none was recorded."""

    def close(self) -> None:  # noqa: B027
        """Release connections.  Idempotent."""


class ProjectionWriter(ProjectionPositions):
    """What a projector asks of the store: the stored premises of a batch,
    the batch written with its tracking in one transaction, the deadline
    sweep, positions recorded alone, and the first log identity."""

    @abstractmethod
    def insert_tracking(self, tracking: Tracking) -> None:
        """Record one position alone (a publisher's, a dead-letter
        forwarder's): eventsourcing's ``TrackingRecorder.insert_tracking``.
        Raises the library's IntegrityError if it is not beyond the stored one."""

    @abstractmethod
    def max_tracking_id(self, application_name: str) -> int | None:
        """The position recorded under ``application_name``, or None
        (eventsourcing's ``TrackingRecorder.max_tracking_id``)."""

    @abstractmethod
    def load_versions(self, trace_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        """Stored (payload, digest) of every report version of these traces."""

    @abstractmethod
    def event_claims(self, event_ids: list[str]) -> dict[str, list[tuple[str, str, datetime, str]]]:
        """Every stored version of these event ids, in any trace: event id ->
        sorted (trace_id, digest, recorded_at, reporter).  Ids with no version are absent.
        Indexed (reports by event_id): an event id names one report ledger-wide
        (ledger/identity.py), and the projection checks each batch's ids."""

    @abstractmethod
    def load_licenses(self, license_ids: list[str]) -> list[tuple[str, str]]:
        """Stored (payload, digest) of every license_granted / license_revoked
        report about these license ids, ordered by (license_id, event_id, digest)."""

    @abstractmethod
    def trace_lots(self, trace_ids: list[str]) -> list[dict[str, Any]]:
        """Current lot rows of these traces, ordered by trace and lot: one
        query for a whole batch's traces instead of ``lots(trace_id=...)`` each."""

    @abstractmethod
    def license_lots(self, license_ids: list[str]) -> list[dict[str, Any]]:
        """Current lot rows whose own license_id is one of these, ordered by
        trace and lot: the traces to recompute when a license report arrives,
        and the shipments a license ceiling counts."""

    @abstractmethod
    def unread_records(self, keys: list[str]) -> dict[str, list[tuple[str, str]]]:
        """The dead letters keyed by these keys that are records the
        projection could not read (not those of a quarantined trace, whose
        error starts with ``quarantined:``): key -> sorted, distinct
        (SHA-256 of the record's value, error).  Keys with none are absent.
        Called for the traces of each batch, so each carries an alert for
        every record about it that was dead-lettered
        (projections/trace_projection.py).  By content, not position: the
        same records in another arrival order give the same alerts."""

    @abstractmethod
    def commit_batch(self, batch: ProjectedBatch, trackings: list[Tracking], clock: datetime) -> None:
        """Write the batch, journal alert transitions at ``clock``, and record
        the trackings, all in one transaction.

        Called by the projector once per polled batch.  If it raises, nothing
        of the batch is written and the tracked offsets are unchanged, so the
        projector re-reads the same records; if a tracking is not beyond the
        stored one (another process got there first), it raises and writes
        nothing, so no record is ever counted twice.

        A report version already stored under (trace id, event id, digest) is
        replaced only by one with an earlier recorded_at (a re-send stamped
        earlier, ``Outcome.EARLIER_COPY``), so arrival order never matters.
        """

    def writer_mark(self) -> str | None:
        """The mark of the last batch committed (``ProjectedBatch.writer_mark``),
        read inside the caller's batch lock.  A projector that finds its own
        last mark knows no one else has written report versions since, so the
        traces it keeps in memory are still the store's (projections/warm_traces.py).
        None: the store keeps no mark, and nothing kept is ever trusted."""
        return None

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the store's batch lock across every process sharing it, from
        a batch's first read to its commit (projections/batch_lock.py says
        why).  Re-entrant within one thread.  This default locks nothing: a
        store only this process can reach."""
        yield

    @abstractmethod
    def sweep(self, clock: datetime) -> int:
        """Journal alerts whose deadline passed by ``clock``; returns transitions written."""

    @abstractmethod
    def refresh_statistics(self) -> None:
        """After many rows changed at once (a rebuild, a long catch-up), let
        the query planner see the tables as they now are.  PostgreSQL planned
        one trace's alerts in 9.4 ms on the statistics a rebuild left, 0.09 ms
        after ANALYZE (BENCHMARKS.md)."""

    @abstractmethod
    def record_log_identity(self, log_name: str, identity: str) -> str:
        """Record ``identity`` for ``log_name`` unless one is recorded already;
        returns the one recorded (the first wins: two projectors starting
        together agree)."""

class ProjectionReader(ProjectionPositions):
    """What readers ask of the read models: queries, the audit export, the
    HTTP API, `ledger replay` and `ledger verify`.  Nothing here writes."""

    @abstractmethod
    def lots(self, *, trace_id: str | None = None, lot_id: str | None = None,
             holder: str | None = None) -> list[dict[str, Any]]:
        """Current lot rows (every report known), ordered by trace and lot."""

    @abstractmethod
    def standing_alerts(self, as_of: datetime, *, party: str | None = None,
                        trace_id: str | None = None, severity: str | None = None) -> list[dict[str, Any]]:
        """For each alert, its latest step due by ``as_of``, if it still stands."""

    @abstractmethod
    def all_versions(self) -> dict[str, list[tuple[str, str]]]:
        """Every trace's (payload, digest) report versions, for as-of queries."""

    @abstractmethod
    def trace_ids_for(self, *, lot_or_trace: str) -> list[str]:
        """Traces that have this id as trace id or lot id."""

    @abstractmethod
    def licenses(self) -> list[tuple[str, str]]:
        """(payload, digest) of every stored license report version."""

    @abstractmethod
    def alert_step_times(self, alert_ids: list[str]) -> dict[str, list[tuple[str, str | None]]]:
        """Every stored step of these alerts: alert id -> [(due_at as stored
        (UTC text), quantity)], in due order.  Lets a reader say since when an
        alert has stood (projections/alert_views.py), not only its latest step."""

    @abstractmethod
    def journal(self, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Alert transitions in the order they were journaled."""

    @abstractmethod
    def dead_letters(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def fingerprint(self) -> dict[str, str]:
        """A digest per read model, for replay comparison (journal excluded:
        it records when alerts were published, which is history, not state)."""

    @abstractmethod
    def integrity_problems(self) -> tuple[str, list[str]]:
        """(how it was checked, what it found: [] if the store's files and
        indexes are whole).  Reads every page; a command an operator runs,
        and `ledger replay` before it trusts a fingerprint (a damaged index
        reads as a different table than a full scan does)."""

class ProjectionStore(ProjectionWriter, ProjectionReader, PartyRegistry, ABC):
    """Read models of the ledger, written one batch per transaction with tracking.

    It also keeps the party registry (``PartyRegistry``): every projector,
    the one place every report passes whatever path it came by, already
    opens the store, and a consumer group shares one.  docs/COMPLIANCE.md
    ("Who may say what") says why it is kept here rather than beside the log."""
