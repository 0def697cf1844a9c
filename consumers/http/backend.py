"""What `ledger serve` runs against: the adapters, opened once, and the
service functions the CLI calls, each behind one worker thread.

SQLite connections belong to the thread that opened them, and the embedded
log and store take one writer at a time anyway, so every call into the
adapters runs on one thread (``Backend.call``); the event loop stays free
for connections, the SSE feed and health checks.

On the embedded log the server projects like `ledger ingest`: after each
accepted batch, and every ``PROJECT_INTERVAL_S`` (deadlines that pass with
no new report, reports another process appended).  With a Kafka log it only
appends: the projector is its own process (`ledger kafka project`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from consumers import bootstrap
from consumers.http.auth import Principal, Refused, Visibility, impersonations
from consumers.http.credentials import CredentialStore, PostgresCredentialStore, SQLiteCredentialStore
from consumers.ingest import INGEST_BATCH_MAX, Prepared, Reject, prepare_line, reject_row
from ledger.parties import by_id
from consumers.projector import catch_up, utc_now
from ledger.lineage import build_lineage, lineage_dict
from ledger.policy import Policy
from ledger.ports import EventLog
from projections.alert_views import journal_views, marked_for, party_alerts, with_since
from projections.queries import NotFound, flows_of, lot_reports, standing_alerts, trace_view, whereabouts
from projections.store import ProjectionStore

__all__ = ["Backend", "Capture", "PROJECT_INTERVAL_S"]

PROJECT_INTERVAL_S = 5.0  # embedded log: catch up and sweep deadlines this often
JOURNAL_PAGE_MAX = 1000
T = TypeVar("T")
log = logging.getLogger("ledger.http")

OUTCOMES = {"accepted": "recorded", "duplicate": "already_recorded", "conflict": "conflicting"}


@dataclass(slots=True)
class Capture:
    """What one ``POST /v1/events`` did, report by report."""

    outcomes: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    projected_records: int | None = None
    projection_deferred: str | None = None  # why the projection after the append failed
    refused_atomic: bool = False  # ?atomic=true and a report was rejected: nothing recorded

    @property
    def refused(self) -> str | None:
        """Why nothing was recorded (the request is answered 422), or None."""
        if self.refused_atomic:
            return (f"{self.counts['rejected']} of {len(self.outcomes)} reports were rejected and ?atomic=true was "
                    f"asked: nothing was recorded. Fix them and send the request again")
        if self.counts["rejected"] and self.counts["rejected"] == len(self.outcomes):
            return "every report was rejected and nothing was recorded: see each one's problems"
        return None

    def body(self, *, atomic: bool, detects_duplicates: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reports": len(self.outcomes),
            **{k: self.counts.get(k, 0) for k in ("recorded", "already_recorded", "conflicting", "rejected")},
            "atomic": atomic,
            "results": self.outcomes,
        }
        if not detects_duplicates:
            out["note"] = ("this log (Kafka) cannot tell a re-sent report from a new one: 'recorded' means "
                           "appended; the projection drops re-sends by event id")
        if self.projected_records is not None:
            out["projected_records"] = self.projected_records
        if self.projection_deferred is not None:
            out["projection"] = (f"deferred: {self.projection_deferred}; the reports are recorded in the log and "
                                 f"the server projects them within {PROJECT_INTERVAL_S:g} s of the store answering")
        return out


class Backend:
    def __init__(self, *, log_url: str, store_url: str, credentials_url: str, policy: Policy,
                 project: bool | None = None):
        self.log_url, self.store_url, self.credentials_url = log_url, store_url, credentials_url
        self.policy = policy
        # Project where the log is the embedded one, unless told otherwise.
        self.project = log_url.startswith("sqlite:") if project is None else project
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-backend")
        self.log: EventLog | None = None
        self.store: ProjectionStore | None = None
        self.credentials: CredentialStore | None = None
        # Since the server started (Prometheus counters restart at zero with the process).
        self.reports = Counter[str]()

    # -- the worker thread ------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def open(self) -> None:
        self.credentials = open_credentials(self.credentials_url)
        self.log = bootstrap.open_log(self.log_url)
        self.store = bootstrap.open_store(self.store_url)
        if self.project:
            self.catch_up()

    def close(self) -> None:
        for part in (self.log, self.store, self.credentials):
            if part is not None:
                part.close()
        self.log = self.store = self.credentials = None

    def shutdown(self) -> None:
        try:
            self._executor.submit(self.close).result()
        finally:
            self._executor.shutdown(wait=True)

    # -- writing ----------------------------------------------------------------

    def capture(self, principal: Principal, texts: list[tuple[int, str]], *, atomic: bool, source: str) -> Capture:
        """Check, authorize, append and (embedded) project a request's reports.

        ``texts``: (index, report text).  Impersonation refuses the whole
        request (Refused(403), nothing appended).  With ``atomic``, one
        rejected report refuses the whole request too (nothing appended:
        ``Capture.refused`` says why); otherwise the good ones are appended.
        """
        assert self.log is not None and self.store is not None
        # The party registry, read per request as ingest reads it per file:
        # a report naming a party it does not hold is refused here, with its
        # field, not recorded and quarantined later (empty: the ledger runs open).
        parties = by_id(self.store.registered_parties())
        prepared = [prepare_line(text, index, source=source, clock=utc_now, parties=parties)
                    for index, text in texts]
        impersonations(principal, [(p.line, p.event) for p in prepared if isinstance(p, Prepared)])
        result = Capture()
        rejects = [p for p in prepared if isinstance(p, Reject)]
        if atomic and rejects:
            for p in prepared:
                if isinstance(p, Reject):
                    result.outcomes.append(_rejected(p))
                    result.counts["rejected"] += 1
                else:
                    result.outcomes.append({"index": p.line, "event_id": p.event.event_id,
                                            "outcome": "not_recorded",
                                            "message": "atomic request: another report in it was rejected"})
            self.reports["rejected"] += len(rejects)
            result.refused_atomic = True
            return result
        good = [p for p in prepared if isinstance(p, Prepared)]
        receipts = {}
        # Atomic: one append, one transaction on the embedded log.
        step = max(len(good), 1) if atomic else INGEST_BATCH_MAX
        for start in range(0, len(good), step):
            chunk = good[start:start + step]
            for p, receipt in zip(chunk, self.log.append([p.record for p in chunk]), strict=True):
                receipts[p.line] = receipt
        for p in prepared:
            if isinstance(p, Reject):
                result.outcomes.append(_rejected(p))
                result.counts["rejected"] += 1
            else:
                outcome = OUTCOMES.get(receipts[p.line].outcome, "recorded")
                result.outcomes.append({"index": p.line, "event_id": p.event.event_id, "outcome": outcome})
                result.counts[outcome] += 1
        keep = getattr(self.log, "keep_rejects", None)
        if rejects and keep is not None:
            at = utc_now()
            keep([reject_row(r, at) for r in rejects])
        for outcome, n in result.counts.items():
            self.reports[outcome] += n
        if self.project and good:
            # The reports are durable in the log: a store that fails now does
            # not make them unrecorded, and the periodic catch-up retries.
            try:
                result.projected_records = self.catch_up()
            except Exception as error:  # noqa: BLE001 - said in the answer and the server's log
                log.warning("projection after an append failed; retrying periodically", exc_info=error)
                result.projection_deferred = f"{type(error).__name__}: {error}"[:300]
        return result

    def catch_up(self) -> int:
        assert self.log is not None and self.store is not None
        return catch_up(self.log, self.store, policy=self.policy).records

    # -- reading ----------------------------------------------------------------

    def lots(self, principal: Principal, ident: str | None, *, as_of: datetime | None,
             known_at: datetime | None) -> list[dict[str, Any]]:
        assert self.store is not None
        rows = whereabouts(self.store, ident, now=utc_now(), policy=self.policy, as_of=as_of, known_at=known_at)
        return self._visible_lots(principal, rows)

    def lot(self, principal: Principal, lot_id: str, *, as_of: datetime | None,
            known_at: datetime | None) -> list[dict[str, Any]]:
        """One lot's row (none if nothing about it was known or had occurred
        by then).  Who may read it is decided on the lot as it is now."""
        assert self.store is not None
        current = self.store.lots(lot_id=lot_id)
        if not current:
            raise NotFound(f"no lot {lot_id!r} is known (a trace id? ask /v1/traces/{lot_id})")
        if not self._visible_lots(principal, current):
            raise _not_yours(principal, lot_id)
        rows = whereabouts(self.store, lot_id, now=utc_now(), policy=self.policy, as_of=as_of, known_at=known_at)
        return [r for r in rows if r["lot_id"] == lot_id]

    def lot_reports(self, principal: Principal, lot_id: str, *, known_at: datetime | None) -> list[dict[str, Any]]:
        """The reports about one lot (the evidence behind its figures), to
        whoever may read the lot."""
        assert self.store is not None
        current = self.store.lots(lot_id=lot_id)
        if not current:
            raise NotFound(f"no lot {lot_id!r} is known")
        if not self._visible_lots(principal, current):
            raise _not_yours(principal, lot_id)
        return lot_reports(self.store, lot_id, known_at=known_at)

    def trace(self, principal: Principal, ident: str, *, as_of: datetime | None,
              known_at: datetime | None) -> dict[str, Any]:
        assert self.store is not None
        view = trace_view(self.store, ident, now=utc_now(), policy=self.policy, as_of=as_of, known_at=known_at)
        seeing = Visibility(principal)
        origins = seeing.origins(view.rows)
        rows = [r for r in view.rows if seeing.lot(r, origins)]
        if not rows:
            raise _not_yours(principal, ident)
        lots = {(r["trace_id"], r["lot_id"]): r for r in view.rows}
        alerts = [a for a in view.alerts if seeing.alert(a, origins, lots)]
        return {"trace_ids": view.trace_ids, "whereabouts": rows,
                "lineage": [lineage_dict(n) for n in build_lineage(rows)], "alerts": alerts}

    def alerts(self, principal: Principal, *, as_of: datetime | None, known_at: datetime | None,
               party: str | None, trace_id: str | None) -> list[dict[str, Any]]:
        assert self.store is not None
        now = utc_now()
        if party is not None:
            # The exporter of origin also sees the alerts about its material,
            # marked about_your_material (projections/alert_views.py), as `ledger alerts --party`.
            rows = party_alerts(self.store, party, now=now, policy=self.policy, as_of=as_of, known_at=known_at,
                                trace_id=trace_id)
        else:
            rows = standing_alerts(self.store, now=now, policy=self.policy, as_of=as_of, known_at=known_at,
                                   trace_id=trace_id)
            if _own_view(principal) is not None:
                rows = marked_for(self.store, principal.party, rows)
        rows = with_since(self.store, rows, now=now, as_of=as_of, known_at=known_at)
        return self.visible_alerts(principal, rows)

    def journal(self, principal: Principal, *, since: int, limit: int,
                party: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """Journal entries after ``since`` the principal may see, and the
        cursor to ask from next (the last seq read, seen or not).  Each with
        ``since`` and, read as ``party`` (a reporter: its own, unless it
        names one), ``about_your_material``, as ``alerts`` answers them."""
        assert self.store is not None
        entries = self.store.journal(after_seq=since, limit=min(limit, JOURNAL_PAGE_MAX))
        cursor = entries[-1]["seq"] if entries else since
        seen = self.visible_alerts(principal, entries)
        return journal_views(self.store, seen, party=party if party is not None else _own_view(principal)), cursor

    def flows(self, principal: Principal, *, as_of: datetime | None, known_at: datetime | None,
              period: Any, origin: str | None, destination: str | None, item: str | None) -> list[Any]:
        rows = self.lots(principal, None, as_of=as_of, known_at=known_at)
        return flows_of(rows, period=period, origin_country=origin, destination_country=destination, item_id=item)

    def rejects(self, principal: Principal, *, limit: int) -> list[dict[str, Any]]:
        reader = getattr(self.log, "rejects", None)
        if reader is None:
            raise Refused(404, "no_rejects_table", "this log (Kafka) keeps no rejects table: refused reports "
                                                   "go to its dead-letter topic (docs/KAFKA.md)")
        # Each with its problems as a 422 names them (field, value, message).
        rows = [{**r._asdict(), "problems": [p.model_dump() for p in r.field_problems()]}
                for r in reader(limit=limit)]
        if principal.role == "auditor":
            return rows
        mine = source_of(principal)
        return [r for r in rows if r["source"] == mine]

    def _visible_lots(self, principal: Principal, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seeing = Visibility(principal)
        if seeing.everything:
            return rows
        assert self.store is not None
        # The origin of a trace is read from all its lots, not only those asked about.
        traces = sorted({r["trace_id"] for r in rows})
        origins = seeing.origins(self.store.trace_lots(traces)) if traces else {}
        return [r for r in rows if seeing.lot(r, origins)]

    def visible_alerts(self, principal: Principal, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seeing = Visibility(principal)
        if seeing.everything:
            return rows
        assert self.store is not None
        traces = sorted({r["trace_id"] for r in rows if r.get("trace_id") and r.get("party") != principal.party})
        lot_rows = self.store.trace_lots(traces) if traces else []
        origins = seeing.origins(lot_rows)
        lots = {(r["trace_id"], r["lot_id"]): r for r in lot_rows}
        return [r for r in rows if seeing.alert(r, origins, lots)]

    # -- health -----------------------------------------------------------------

    def ready(self) -> dict[str, str]:
        """Each part: "ok" or why not."""
        out = {}
        for name, probe in (("log", lambda: self.log.end_offsets()),  # type: ignore[union-attr]
                            ("store", lambda: self.store.journal(limit=1)),  # type: ignore[union-attr]
                            ("credentials", lambda: self.credentials.ping())):  # type: ignore[union-attr]
            try:
                probe()
                out[name] = "ok"
            except Exception as error:  # noqa: BLE001 - any failure is "not ready", said
                out[name] = f"{type(error).__name__}: {error}"[:500]
        return out

    def metrics(self) -> dict[str, Any]:
        assert self.log is not None and self.store is not None
        ends = self.log.end_offsets()
        tracked = self.store.tracked_offsets(self.log.name)
        lag = sum(max(0, end - (tracked.get(p, -1) + 1)) for p, end in ends.items())
        open_by_kind = Counter(a["kind"] for a in self.store.standing_alerts(utc_now()))
        return {"lag": lag, "open_by_kind": dict(open_by_kind), "reports": dict(self.reports)}


def source_of(principal: Principal) -> str:
    """The rejects table's source for reports a party sent over HTTP."""
    return f"POST /v1/events by {principal.party}"


def open_credentials(url: str) -> CredentialStore:
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresCredentialStore(url)
    if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
        raise bootstrap.ConfigError(f"credentials URL {url!r}: use sqlite:///path/credentials.db or "
                                    f"postgresql://user@host:port/db[?schema=NAME]")
    return SQLiteCredentialStore(url[len("sqlite:///"):])


def default_credentials_url() -> str:
    return os.environ.get("LEDGER_CREDENTIALS") or f"sqlite:///{bootstrap.ledger_home() / 'credentials.db'}"


def _own_view(principal: Principal) -> str | None:
    """The party whose view a principal reads alerts in when it names none:
    a reporter's own (its material marked); an auditor's or a dashboard's, no party's."""
    return principal.party if principal.role == "reporter" else None


def _rejected(reject: Reject) -> dict[str, Any]:
    return {"index": reject.line, "outcome": "rejected", "problems": [p.model_dump() for p in reject.problems]}


def _not_yours(principal: Principal, ident: str) -> Refused:
    return Refused(403, "forbidden", f"{principal.party} neither holds, shipped nor exported at the origin "
                                     f"any lot of {ident!r}; a reporter reads only its own lots")

