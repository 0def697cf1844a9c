"""The trace: a root lot and all its descendants.

The trace is the consistency boundary of the ledger.  Its id travels with the
goods, every report names it, the Kafka log keys by it, and one consumer sees
all of one trace in order.  A ``Trace`` holds the report versions it accepted
and applies the rules of accepting one (``record``); what those reports
*mean* -- the account and the alerts -- is ledger/evaluation.py, a pure
function of the set, computed in canonical order so arrival order never
matters.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum

from ledger.account import TraceAccount, Version
from ledger.alerts import Alert, alerts_as_of
from ledger.evaluation import account_of, trace_steps
from ledger.events import LotEvent, content_digest
from ledger.identity import Claims
from ledger.policy import Policy

__all__ = ["Trace", "Outcome", "ReportForAnotherTrace", "ReportNotStamped"]



class Outcome(str, Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # same reporter and event id, same content: a no-op
    CONFLICT = "conflict"  # same reporter and event id, other content: kept, alerted
    # Same event id and content, recorded earlier than the copy held: the
    # earlier copy replaces it, so which copy arrived first never matters.
    EARLIER_COPY = "earlier_copy"


class ReportForAnotherTrace(ValueError):
    def __init__(self, trace_id: str, report: LotEvent):
        super().__init__(
            f"event {report.event_id!r} names trace {report.trace_id!r}, not {trace_id!r}"
        )


class ReportNotStamped(ValueError):
    def __init__(self, report: LotEvent):
        super().__init__(f"event {report.event_id!r} has no recorded_at; stamp it before recording")


class Trace:
    """The versions of one trace's reports the ledger accepted.

    A plain class, not an eventsourcing ``Aggregate``: the store's
    ``reports`` table (one row per version, written in the same transaction
    as the rows computed from it) is the event store of record, and the log
    before it is the history.  The library's aggregate events were made and
    thrown away on every ``record``; persisting them through its recorder
    would keep a second copy of every report, and replaying them would only
    rebuild this set of versions.  So the trace is restored from the
    ``reports`` rows (``restored``) and records reports by the same rules.
    """

    def __init__(self, trace_id: str):
        self.trace_id = trace_id
        # (reporter, event id) -> digest -> version: a report is named by its
        # reporter and event id (ledger/account.py ``Version.identity``).
        self._versions: dict[tuple[str, str], dict[str, Version]] = {}

    @classmethod
    def restored(cls, trace_id: str, held: Iterable[Version]) -> "Trace":
        """The trace as a store holds it: the versions it accepted earlier.

        Restoring applies the same rules as ``record`` -- each version must
        belong to this trace and be stamped, and of two copies of one
        version the earlier recorded stands.
        """
        trace = cls(trace_id)
        for version in held:
            trace.check_belongs(version.event)
            trace.check_stamped(version.event)
            known = trace._versions.setdefault(version.identity, {})
            copy = known.get(version.digest)
            if copy is None or version.recorded_at < copy.recorded_at:
                known[version.digest] = version
        return trace

    # -- commands -----------------------------------------------------------

    def record(self, report: LotEvent, digest: str | None = None) -> Outcome:
        """Record a report about this trace; re-sending one is a no-op."""
        self.check_belongs(report)
        self.check_stamped(report)
        digest = digest or content_digest(report)
        known = self._versions.get((report.reporter, report.event_id), {})
        if digest in known:
            if report.recorded_at >= known[digest].recorded_at:  # type: ignore[operator]
                return Outcome.DUPLICATE
            known[digest] = Version(report, digest)
            return Outcome.EARLIER_COPY
        self._versions.setdefault((report.reporter, report.event_id), {})[digest] = Version(report, digest)
        return Outcome.CONFLICT if known else Outcome.ACCEPTED

    # -- rules --------------------------------------------------------------

    def check_belongs(self, report: LotEvent) -> None:
        if report.trace_id != self.trace_id:
            raise ReportForAnotherTrace(self.trace_id, report)

    @staticmethod
    def check_stamped(report: LotEvent) -> None:
        if report.recorded_at is None:
            raise ReportNotStamped(report)

    # -- queries ------------------------------------------------------------

    def versions(self) -> list[Version]:
        return [v for by_digest in self._versions.values() for v in by_digest.values()]

    def account(
        self,
        *,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        claims: Claims | None = None,
    ) -> TraceAccount:
        """The account of this trace's reports (ledger/evaluation.py ``account_of``)."""
        return account_of(self.trace_id, self.versions(), claims=claims, as_of=as_of, known_at=known_at)

    def alerts(
        self, *, as_of: datetime, policy: Policy, known_at: datetime | None = None,
        claims: Claims | None = None,
    ) -> list[Alert]:
        """The alerts standing at ``as_of`` with what was known at ``known_at``."""
        account = self.account(as_of=as_of, known_at=known_at, claims=claims)
        return alerts_as_of(trace_steps(account, policy), as_of)
