"""The trace: a root lot and all its descendants, as an event-sourced aggregate.

The trace is the consistency boundary of the ledger.  Its id travels with the
goods, every report names it, the Kafka log keys by it, and one consumer sees
all of one trace in order.  The aggregate records which reports it has
accepted (in arrival order, as eventsourcing aggregate events); what those
reports *mean* -- the account and the alerts -- is a pure function of the set,
computed in canonical order so arrival order never matters.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from enum import Enum

from eventsourcing.domain import Aggregate, event

from ledger.account import TraceAccount, Version, build_account, named_by_reporter
from ledger.alerts import Alert, alert_steps, alerts_as_of
from ledger.events import LotEvent, content_digest
from ledger.identity import Claims, standing_versions
from ledger.policy import Policy

__all__ = ["Trace", "Outcome", "ReportForAnotherTrace", "ReportNotStamped"]

_TRACE_NAMESPACE = uuid.UUID("6f1e0c1e-5a31-4a43-9d0a-2e8a4c1f7b10")


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


class Trace(Aggregate):
    @staticmethod
    def create_id(trace_id: str) -> uuid.UUID:
        return uuid.uuid5(_TRACE_NAMESPACE, trace_id)

    def __init__(self, trace_id: str):
        self.trace_id = trace_id
        # (reporter, event id) -> digest -> version: a report is named by its
        # reporter and event id (ledger/account.py ``Version.identity``).
        self._versions: dict[tuple[str, str], dict[str, Version]] = {}

    @classmethod
    def restored(cls, trace_id: str, held: Iterable[Version]) -> "Trace":
        """The trace as a store holds it: the versions it accepted earlier.

        Those were recorded (one ReportRecorded each) when they arrived; the
        store keeps what they left, one version per (event id, digest), as a
        snapshot.  Restoring applies the same rules as ``record`` -- each
        version must belong to this trace and be stamped, and of two copies
        of one version the earlier recorded stands -- but raises no event per
        version: nothing new happened.
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
            self._report_recorded(report=report, digest=digest)
            return Outcome.EARLIER_COPY
        self._report_recorded(report=report, digest=digest)
        return Outcome.CONFLICT if known else Outcome.ACCEPTED

    @event("ReportRecorded")
    def _report_recorded(self, report: LotEvent, digest: str) -> None:
        self._versions.setdefault((report.reporter, report.event_id), {})[digest] = Version(report, digest)

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
        """The account of this trace's reports.

        ``claims`` (event id -> (trace id, digest, recorded_at) of the
        versions other traces hold, ledger/identity.py) makes an event id
        name one report ledger-wide: a version of an event id another trace
        recorded first does not count here, and raises a finding instead.
        """
        versions = self.versions()
        lost: list = []
        if claims:
            versions, lost = standing_versions(self.trace_id, versions, claims, known_at=known_at)
        account = build_account(self.trace_id, versions, as_of=as_of, known_at=known_at)
        if as_of is not None:
            lost = [f for f in lost if f.at <= as_of]
        if not lost:
            return account
        # Two parties' reports under one event id, both lost to other traces:
        # two alerts, named by reporter (as within a trace).
        merged = named_by_reporter(self.versions(), [*account.findings, *lost])
        findings = sorted(merged, key=lambda f: (f.at, f.kind, f.lot_id, f.event_ids, f.by))
        return replace(account, findings=findings)

    def alert_steps(self, policy: Policy, claims: Claims | None = None) -> list[Alert]:
        """Every alert step, assuming nothing more is reported (for the projection)."""
        return alert_steps(self.account(claims=claims), policy)

    def alerts(
        self, *, as_of: datetime, policy: Policy, known_at: datetime | None = None,
        claims: Claims | None = None,
    ) -> list[Alert]:
        """The alerts standing at ``as_of`` with what was known at ``known_at``."""
        account = self.account(as_of=as_of, known_at=known_at, claims=claims)
        return alerts_as_of(alert_steps(account, policy), as_of)
