"""Audit export: every event of the traces concerned, the balances they
result in, the open alerts and the lineage, as CSV, XLSX and an HTML report.

Every figure is checkable: the balances are the ``ledger whereabouts`` rows,
each alert lists the event ids it cites, and each event row says whether the
account uses it ("in effect"), or why not (retracted, corrected, refused,
a conflicting version).  Selections: one trace (or lot), one party (traces in
which it ships or holds a lot), or one period (traces with a lot shipped in
it).  Built for 100k events in seconds: payloads are read as JSON, a chunk
of traces at a time (TRACES_PER_CHUNK), the XLSX is written in openpyxl's
write-only mode and report.html part by part.  The rows of every report,
lot and alert transition of the selection are still held until written
(BENCHMARKS.md, session 8: about 20 kB a trace).
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ledger.account import Version
from ledger.evaluation import evaluate
from ledger.flows import Flow, Period
from ledger.identity import contested
from ledger.lineage import build_lineage, render_lineage
from ledger.licenses import ceiling_trace_id
from ledger.policy import Policy
from ledger.quantity import DimensionMismatch, Quantity, canonical_decimal
from projections.queries import NotFound, flows_of, standing_alerts, whereabouts
from projections.rows import LOT_COLUMNS, parse_ts, rebuild_trace
from projections import xlsx
from projections.charts import ChartPoint, flows_svg, lineage_svg, quantity_chart_svg
from projections.store import ProjectionStore

__all__ = ["AuditData", "DateRange", "collect", "write_csv", "write_xlsx", "write_html", "html_report", "html_parts",
           "EVENT_COLUMNS", "BALANCE_COLUMNS", "ALERT_COLUMNS", "TOTAL_COLUMNS", "HISTORY_COLUMNS", "csv_cell",
           "AUDIT_FILES", "MANIFEST"]

EVENT_COLUMNS = (
    "trace_id", "event_id", "type", "status", "occurred_at", "recorded_at", "reporter", "lot_id",
    "child_lot_id", "amount", "unit", "consignee", "consignee_country", "end_user", "license_id",
    "refers_to", "detail", "digest",
)  # fmt: skip
BALANCE_COLUMNS = (*LOT_COLUMNS, "unaccounted")
ALERT_COLUMNS = ("alert_id", "severity", "kind", "trace_id", "lot_id", "party", "quantity", "unit", "due_at",
                 "message", "event_ids")  # fmt: skip
# Where the root lots' quantity is now, per trace: shipped = in transit + consumed + lost + on hand,
# summed over every lot of the trace (re-exports and ship-backs move it between lots).
TOTAL_COLUMNS = ("trace_id", "unit", "shipped", "in_transit", "consumed", "lost", "on_hand", "unaccounted",
                 "balance_check")  # fmt: skip
# The alert journal (projections/journal.py), one row per transition of an
# alert of the selection: when it was raised, updated and resolved.
HISTORY_COLUMNS = ("at", "transition", "alert_id", "kind", "severity", "trace_id", "lot_id", "party", "quantity",
                   "unit", "due_at", "message")  # fmt: skip
JOURNAL_PAGE_ROWS = 10_000  # the journal is read in pages of this many transitions
HTML_EVENTS_MAX = 20_000  # the CSV and XLSX hold them all
# The report's charts of a lot's quantities over time: each point is the lot
# as of one date (a report's or a deadline's), one evaluation of its trace,
# so they are bounded; the dashboard charts any lot.
CHART_LOTS_MAX = 24
CHART_POINTS_MAX = 60  # as the dashboard (AS_OF_POINTS_MAX in consumers/http/dashboard/app.js)
LINEAGE_GRAPHS_MAX = 24  # traces drawn as a graph; every trace is in the text lineage
# The flows chart: a figure of at most this many rows each, so each fits on one
# A4 landscape page; at most FLOWS_DRAWN_MAX rows in all (those with a gap
# first), `ledger flows` lists every one.
FLOW_ROWS_PER_CHART = 16
FLOWS_DRAWN_MAX = 96
# A CSV cell a spreadsheet would read as a formula (OWASP, "CSV injection"):
# it starts with one of these.  Such a cell is written with a single quote
# before it, which spreadsheets show as text and do not evaluate.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A number in a number column ("-30" unaccounted, over-accounted) is not a
# formula: it is written as it is, so a spreadsheet still reads a number.
_CSV_NUMBER = re.compile(r"-?\d+(\.\d+)?")
# Control characters have no place in a page a person reads (a report's free
# text may carry them): each is shown as its code, e.g. \x07, never raw.
_HTML_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
TRACES_QUERIED_ONE_BY_ONE_MAX = 50  # beyond, one scan of all lots is cheaper than a query per trace
# The reports of a selection are read, evaluated and made rows this many
# traces at a time: what is held meanwhile (payloads, parsed events,
# accounts; about 20 kB a trace) is bounded by the chunk, not the selection.
# Each trace is evaluated on its own (its claims come from the store), so the
# statuses do not depend on the chunk.
TRACES_PER_CHUNK = 1_000
# The status of a report in a trace the projection quarantined (a version the
# contract now refuses): no account was made of it.
QUARANTINED_STATUS = "not evaluated: the trace is quarantined"


@dataclass(slots=True)
class AuditData:
    selection: str
    generated_at: datetime
    trace_ids: list[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    balances: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    totals: list[dict[str, Any]] = field(default_factory=list)
    licenses: list[dict[str, Any]] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)  # the deadlines the alerts were judged by
    software_version: str = ""  # the ledger that made the export
    history: list[dict[str, Any]] = field(default_factory=list)  # alert journal rows (HISTORY_COLUMNS)
    as_of: datetime | None = None  # the account as it stood then (None: now)
    known_at: datetime | None = None  # from the reports recorded by then (None: every report)
    # A chart per lot (the first CHART_LOTS_MAX): (trace id, lot id, unit, its account over time).
    charts: list[tuple[str, str, str, list[ChartPoint]]] = field(default_factory=list)
    charts_left_out: int = 0  # lots beyond CHART_LOTS_MAX, charted on the dashboard only
    # The selection's lots as `ledger flows` counts them (per country pair, item, year and unit).
    flows: list[Flow] = field(default_factory=list)

    def about(self) -> list[tuple[str, str]]:
        """What the export is, field by field: the about sheet, about.csv and
        the head of report.html say the same."""
        return [
            ("selection", self.selection),
            ("generated_at", self.generated_at.isoformat()),
            ("as_of", self.as_of.isoformat() if self.as_of else "now (the time the export was made)"),
            ("known_at", self.known_at.isoformat() if self.known_at else "every report recorded"),
            ("traces", str(len(self.trace_ids))),
            ("events", str(len(self.events))),
            ("software", f"traceability-ledger {self.software_version}".strip()),
            *((f"policy.{k}", json.dumps(v) if isinstance(v, (dict, list)) else str(v))
              for k, v in sorted(self.policy.items())),
        ]


@dataclass(frozen=True, slots=True)
class DateRange:
    """Shipment dates from ``start`` to ``end``, both included (UTC instants)."""

    start: datetime | None
    end: datetime | None

    def __str__(self) -> str:
        start = self.start.date().isoformat() if self.start else "the start"
        end = self.end.date().isoformat() if self.end else "now"
        return f"{start} to {end}"

    def contains(self, moment: datetime) -> bool:
        return (self.start is None or moment >= self.start) and (self.end is None or moment <= self.end)


# -- selection and collection ----------------------------------------------------------


def select_traces(store: ProjectionStore, *, trace: str | None = None, party: str | None = None,
                  period: Period | None = None, item: str | None = None,
                  shipped: DateRange | None = None, lot: str | None = None) -> tuple[str, list[str]]:
    """(a description of the selection, the trace ids it covers).  ``item``
    narrows a party, period or date-range selection to the traces with a lot
    of that item, or alone selects every such trace.  ``lot``: the traces
    holding that lot id (``collect(lot=...)`` then keeps the lot and what was
    re-exported or shipped back from it)."""
    if trace is not None or lot is not None:
        ident = trace if trace is not None else lot
        ids = store.trace_ids_for(lot_or_trace=ident)
        if lot is not None and ids and not store.lots(lot_id=lot):
            raise NotFound(f"{lot!r} is a trace, not a lot: select it with --trace {lot}")
        if not ids:
            raise NotFound(f"no lot or trace {ident!r} is known")
        return (f"trace {trace}" if trace is not None else f"lot {lot}"), ids
    if party is None and period is None and item is None and shipped is None:
        raise ValueError("select a trace, a lot, a party, a period, a date range or an item")
    rows = store.lots()
    described = []
    if party is not None:
        rows = [r for r in rows if party in (r["shipper"], r["holder"], r["end_user"])]
        described.append(f"party {party}")
    if period is not None:
        rows = [r for r in rows if period.contains(parse_ts(r["shipped_at"]))]
        described.append(f"period {period}")
    if shipped is not None:
        rows = [r for r in rows if shipped.contains(parse_ts(r["shipped_at"]))]
        described.append(f"shipped {shipped}")
    if item is not None:
        rows = [r for r in rows if r["item_id"] == item]
        described.append(f"item {item}")
    ids = sorted({r["trace_id"] for r in rows})
    if not ids:
        raise NotFound("no lot matches " + ", ".join(described)
                       + (" (the party ships or holds no known lot)" if described == [f"party {party}"] else "")
                       + (f" (no lot was shipped in {period})" if described == [f"period {period}"] else "")
                       + (" (no lot was shipped then)" if described == [f"shipped {shipped}"] else ""))
    return ", ".join(described), ids


def collect(store: ProjectionStore, selection: str, trace_ids: list[str], *, now: datetime,
            policy: Policy, progress: Callable[[int], None] = lambda _traces: None,
            software_version: str = "", as_of: datetime | None = None, known_at: datetime | None = None,
            lot: str | None = None, charts: bool = True) -> AuditData:
    """Everything the export writes; ``progress(traces done)`` is called as the reports are gathered.

    ``as_of`` / ``known_at``: the account as it stood at ``as_of`` (by when
    things happened), from the reports the ledger had recorded by
    ``known_at`` (projections/queries.py answers both, as for `ledger
    whereabouts`); the reports listed are those occurred by ``as_of`` and
    recorded by ``known_at``, and the alert history the transitions
    journaled by ``known_at`` of steps due by ``as_of``.  ``lot``: only that lot and the lots
    re-exported or shipped back from it, in each trace that has it.
    ``charts``: chart the first CHART_LOTS_MAX lots' quantities over time,
    and reconcile the selection's flows (only the HTML report draws them)."""
    data = AuditData(selection=selection, generated_at=now, trace_ids=sorted(trace_ids),
                     policy=policy.model_dump(mode="json"), software_version=software_version,
                     as_of=as_of, known_at=known_at)
    wanted = set(data.trace_ids)
    then = {"as_of": as_of, "known_at": known_at}
    if len(wanted) <= TRACES_QUERIED_ONE_BY_ONE_MAX:
        rows = [r for t in data.trace_ids for r in whereabouts(store, t, now=now, policy=policy, **then)]
    else:
        rows = [r for r in whereabouts(store, None, now=now, policy=policy, **then) if r["trace_id"] in wanted]
    lots = _subtree(rows, lot) if lot is not None else None
    # The licenses the material moved under: a selected lot's own, and those
    # of the lots it came from (what a premise deviation is judged against).
    cited_licenses = sorted({r["license_id"] for r in _with_ancestors(rows, lots) if r["license_id"]})
    if lots is not None:
        rows = [r for r in rows if (r["trace_id"], r["lot_id"]) in lots]
    data.balances = rows
    wanted_alerts = wanted | {ceiling_trace_id(i) for i in cited_licenses}
    if as_of is None and known_at is None:
        # One query for every standing alert, filtered here: a query per trace
        # costs seconds for thousands of traces (BENCHMARKS.md, "Figures behind comments").
        standing = store.standing_alerts(now)
    elif len(wanted) <= TRACES_QUERIED_ONE_BY_ONE_MAX:
        standing = [a for t in data.trace_ids
                    for a in standing_alerts(store, now=now, policy=policy, trace_id=t, **then)]
    else:
        standing = standing_alerts(store, now=now, policy=policy, **then)
    seen: set[str] = set()
    for alert in standing:
        if alert["trace_id"] in wanted_alerts and alert["alert_id"] not in seen and _in_lots(alert, lots):
            seen.add(alert["alert_id"])  # a ceiling two traces cite is listed once
            row = {k: alert[k] for k in ALERT_COLUMNS}
            row["event_ids"] = " ".join(alert["event_ids"])
            data.alerts.append(row)
    # Every report an alert listed here cites is listed too, of a lot selected or not.
    alerts_cite = {event_id for a in data.alerts for event_id in a["event_ids"].split()}
    data.history = _history(store, wanted_alerts, lots, as_of, known_at)
    for start in range(0, len(data.trace_ids), TRACES_PER_CHUNK):
        chunk = data.trace_ids[start:start + TRACES_PER_CHUNK]
        stored = store.load_versions(chunk)
        if as_of is not None or known_at is not None:
            stored = {t: _known_then(versions, as_of, known_at) for t, versions in stored.items()}
        statuses = _statuses(store, stored, policy)
        for trace_id in chunk:
            rows_of_trace = _event_rows(trace_id, stored.get(trace_id, []), statuses)
            if lots is not None:
                rows_of_trace = [r for r in rows_of_trace if (trace_id, r["lot_id"]) in lots
                                 or (trace_id, r["child_lot_id"]) in lots or r["event_id"] in alerts_cite]
            data.events.extend(rows_of_trace)
            progress(len(data.events))
    data.totals = _totals(rows)
    if charts:
        data.charts = _quantity_series(store, data, now=now, policy=policy)
        data.charts_left_out = max(0, len(data.balances) - CHART_LOTS_MAX)
        data.flows = flows_of(rows)
    for payload, digest in store.load_licenses(cited_licenses):
        body = json.loads(payload)
        data.licenses.append({
            "license_id": body["license_id"], "event_id": body["event_id"], "type": body["type"],
            "occurred_at": body["occurred_at"], "reporter": body["reporter"], "kind": body.get("kind"),
            "exporter": body.get("exporter"), "items": " ".join(body.get("items", [])),
            "destinations": " ".join(body.get("destinations", [])),
            "end_users": " ".join(body.get("end_users", [])),
            "ceiling": _amount_text(body.get("ceiling")), "valid_from": body.get("valid_from"),
            "valid_until": body.get("valid_until"), "reason": body.get("reason"), "digest": digest,
        })
    return data


def _quantity_series(store: ProjectionStore, data: AuditData, *, now: datetime,
                     policy: Policy) -> list[tuple[str, str, str, list[ChartPoint]]]:
    """Each charted lot's account as of every date at which it may have
    changed: when each of its reports occurred and when each of its alerts'
    steps fell due -- the dates the dashboard asks the API for (app.js,
    ``lotPage``), the first CHART_POINTS_MAX of them, none after ``as_of``.
    Each point is the ``ledger whereabouts`` row of the lot as of that date
    (and as known at ``known_at``), the figures of the Balances table."""
    dates: dict[tuple[str, str], set[str]] = {}
    for event in data.events:
        for lot_id in (event.get("lot_id"), event.get("child_lot_id")):
            if lot_id and event.get("occurred_at"):
                dates.setdefault((event["trace_id"], lot_id), set()).add(event["occurred_at"])
    for alert in (*data.alerts, *data.history):
        if alert.get("lot_id") and alert.get("due_at"):
            dates.setdefault((alert["trace_id"], alert["lot_id"]), set()).add(alert["due_at"])
    as_of: dict[tuple[str, datetime], dict[str, dict[str, Any]]] = {}  # (trace, date) -> lot id -> row
    out = []
    for balance in data.balances[:CHART_LOTS_MAX]:
        trace_id, lot_id = balance["trace_id"], balance["lot_id"]
        instants = sorted({_time(t) for t in dates.get((trace_id, lot_id), ())})
        instants = [t for t in instants if data.as_of is None or t <= data.as_of][:CHART_POINTS_MAX]
        points = []
        for instant in instants:
            if (trace_id, instant) not in as_of:
                rows = whereabouts(store, trace_id, now=now, policy=policy, as_of=instant, known_at=data.known_at)
                as_of[(trace_id, instant)] = {r["lot_id"]: r for r in rows}
            row = as_of[(trace_id, instant)].get(lot_id)
            if row is not None:  # not opened yet then
                points.append(ChartPoint(instant, row))
        out.append((trace_id, lot_id, balance["unit"], points))
    return out


def _subtree(rows: list[dict[str, Any]], lot: str) -> set[tuple[str, str]]:
    """(trace id, lot id) of ``lot`` and every lot re-exported or shipped back from it, per trace."""
    children: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if r["parent_lot_id"] is not None:
            children.setdefault((r["trace_id"], r["parent_lot_id"]), []).append(r["lot_id"])
    out: set[tuple[str, str]] = set()
    todo = [(r["trace_id"], r["lot_id"]) for r in rows if r["lot_id"] == lot]
    while todo:
        key = todo.pop()
        if key not in out:
            out.add(key)
            todo.extend((key[0], child) for child in children.get(key, []))
    return out


def _with_ancestors(rows: list[dict[str, Any]], lots: set[tuple[str, str]] | None) -> list[dict[str, Any]]:
    """``rows`` when no lot is selected; else the selected lots' rows and those
    of every lot they were re-exported or shipped back from."""
    if lots is None:
        return rows
    by_key = {(r["trace_id"], r["lot_id"]): r for r in rows}
    keep: dict[tuple[str, str], dict[str, Any]] = {}
    for key in lots:
        while key in by_key and key not in keep:
            keep[key] = by_key[key]
            parent = by_key[key]["parent_lot_id"]
            key = (key[0], parent) if parent is not None else ("", "")
    return list(keep.values())


def _in_lots(alert: dict[str, Any], lots: set[tuple[str, str]] | None) -> bool:
    """Every alert when no lot is selected; else the selected lots' own
    (a license ceiling's alert, about no one lot, is kept when a lot cites it)."""
    return lots is None or (alert["trace_id"], alert["lot_id"]) in lots or not alert["lot_id"]


def _known_then(versions: list[tuple[str, str]], as_of: datetime | None,
                known_at: datetime | None) -> list[tuple[str, str]]:
    """The report versions that occurred by ``as_of`` and were recorded by ``known_at``."""
    kept = []
    for payload, digest in versions:
        body = json.loads(payload)
        if as_of is not None and _time(body["occurred_at"]) > as_of:
            continue
        recorded = body.get("recorded_at")
        if known_at is not None and recorded and _time(recorded) > known_at:
            continue
        kept.append((payload, digest))
    return kept


def _history(store: ProjectionStore, trace_ids: set[str], lots: set[tuple[str, str]] | None,
             as_of: datetime | None, known_at: datetime | None) -> list[dict[str, Any]]:
    """The alert journal's transitions (raised, updated, resolved) of these
    traces' alerts, in the order the ledger journaled them; with ``known_at``,
    those journaled by then; with ``as_of``, those whose step was due by then.
    Read page by page (JOURNAL_PAGE_ROWS)."""
    out: list[dict[str, Any]] = []
    after = 0
    while page := store.journal(after_seq=after, limit=JOURNAL_PAGE_ROWS):
        after = page[-1]["seq"]
        for entry in page:
            if entry["trace_id"] not in trace_ids or not _in_lots(entry, lots):
                continue
            if known_at is not None and _time(entry["at"]) > known_at:
                continue
            if as_of is not None and entry["due_at"] and _time(entry["due_at"]) > as_of:
                continue  # the step had not begun to stand by then
            out.append({k: entry[k] for k in HISTORY_COLUMNS})
    return out


def _amount_text(amount: dict[str, str] | None) -> str | None:
    return None if not amount else f"{amount['amount']} {amount['unit']}"


def _statuses(store: ProjectionStore, stored: dict[str, list[tuple[str, str]]],
              policy: Policy) -> dict[tuple[str, str, str, str], str]:
    """(trace id, reporter, event id, digest) -> what the account made of
    that version, in words (ledger/evaluation.py decides; this only reads).
    The claims other traces hold on the event ids decide which trace's
    version of a report counts (ledger/identity.py)."""
    versions: dict[str, list[Version]] = {}
    for trace_id, held in stored.items():
        try:
            versions[trace_id] = rebuild_trace(trace_id, held).versions()
        except ValidationError:
            continue  # quarantined by the projection: no account, its rows say so (``_event_rows``)
    ids = sorted({v.event_id for held in versions.values() for v in held})
    claims = contested(store.event_claims(ids) if ids else {})
    evaluation = evaluate(versions, policy=policy, claims=claims)
    return {(trace_id, s.version.event.reporter, s.version.event_id, s.version.digest): s.verdict.text
            for trace_id in versions for s in evaluation.statuses(trace_id)}


def _event_rows(trace_id: str, stored: list[tuple[str, str]],
                statuses: dict[tuple[str, str, str, str], str]) -> list[dict[str, Any]]:
    """One row per stored report version, with what the account made of it
    (``statuses``; a trace the projection quarantined has none)."""
    out = []
    for payload, digest in stored:
        body = json.loads(payload)
        quantity = body.get("quantity") or {}
        consignee = body.get("consignee") or {}
        end_user = body.get("end_user") or {}
        status = statuses.get((trace_id, body["reporter"], body["event_id"], digest), QUARANTINED_STATUS)
        out.append({
            "trace_id": trace_id, "event_id": body["event_id"], "type": body["type"], "status": status,
            "occurred_at": body["occurred_at"], "recorded_at": body.get("recorded_at"),
            "reporter": body["reporter"], "lot_id": body.get("lot_id"),
            "child_lot_id": body.get("child_lot_id"), "amount": quantity.get("amount"),
            "unit": quantity.get("unit"), "consignee": consignee.get("id"),
            "consignee_country": consignee.get("country"), "end_user": end_user.get("id"),
            "license_id": body.get("license_id"),
            "refers_to": body.get("retracted_event_id") or body.get("corrected_event_id"),
            "detail": body.get("end_use") or body.get("reason") or body.get("evidence") or "",
            "digest": digest, "_at": _time(body["occurred_at"]),
        })
    out.sort(key=lambda r: (r["_at"], r["event_id"], r["digest"]))
    for row in out:
        del row["_at"]
    return out


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_trace.setdefault(row["trace_id"], []).append(row)
    out = []
    for trace_id in sorted(by_trace):
        lots = by_trace[trace_id]
        roots = [r for r in lots if r["parent_lot_id"] is None]
        if not roots:
            continue
        unit = roots[0]["unit"]
        sums = {k: Decimal(0) for k in ("shipped", "in_transit", "consumed", "lost", "on_hand", "unaccounted")}
        try:
            for r in roots:
                sums["shipped"] += _in(r["shipped"], r["unit"], unit)
            for r in lots:
                for k in ("in_transit", "consumed", "lost", "on_hand", "unaccounted"):
                    sums[k] += _in(r[k], r["unit"], unit)
        except DimensionMismatch:
            continue  # a trace mixing dimensions has no single total
        accounted = sums["in_transit"] + sums["consumed"] + sums["lost"] + sums["on_hand"]
        check = "balances" if accounted == sums["shipped"] else (
            f"differs by {canonical_decimal(sums['shipped'] - accounted)} {unit}")
        out.append({"trace_id": trace_id, "unit": unit, **{k: canonical_decimal(v) for k, v in sums.items()},
                    "balance_check": check})
    return out


def _in(amount: str | None, unit: str, target: str) -> Decimal:
    if amount is None:
        return Decimal(0)
    if unit == target:
        return Decimal(amount)
    return Quantity(Decimal(amount), unit).to(target).amount


# -- writers ----------------------------------------------------------------------------


SHEETS = ("events", "balances", "totals", "alerts", "alert_history", "licenses")
# Every file an audit writes into its directory, whichever formats are asked for,
# and the list of what it wrote, which the next audit into that directory reads.
AUDIT_FILES = ("about.csv", *(f"{name}.csv" for name in SHEETS), "audit.xlsx", "report.html")
MANIFEST = ".ledger-audit-files"


def _sheets(data: AuditData) -> list[tuple[str, tuple[str, ...], list[dict[str, Any]]]]:
    license_columns = tuple(data.licenses[0]) if data.licenses else ("license_id",)
    sheets = [(EVENT_COLUMNS, data.events), (BALANCE_COLUMNS, data.balances), (TOTAL_COLUMNS, data.totals),
              (ALERT_COLUMNS, data.alerts), (HISTORY_COLUMNS, data.history), (license_columns, data.licenses)]
    return [(name, columns, rows) for name, (columns, rows) in zip(SHEETS, sheets, strict=True)]


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def csv_cell(column: str, value: Any) -> Any:
    """What goes into a CSV cell: text a spreadsheet would evaluate as a
    formula gets a leading single quote (``=HYPERLINK(...)`` -> ``'=HYPERLINK(...)``);
    a number in a number column (``_NUMERIC``) is left a number, a negative
    one included.  None stays None (csv writes an empty field).  The one rule
    for every CSV the ledger writes: these files and every ``ledger ... -o csv``
    (consumers.cli.common.print_csv)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else _cell_text(value)
    if not text.startswith(CSV_FORMULA_STARTS):
        return value
    if column in _NUMERIC and _CSV_NUMBER.fullmatch(text):
        return value
    return "'" + text


def write_csv(data: AuditData, directory: Path) -> list[Path]:
    """One CSV per sheet (events.csv, balances.csv, ...) and about.csv (the
    selection, as-of and known-at times, software and deadlines); decimals as
    exact text; text that would start a formula neutralised (``csv_cell``)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "about.csv"]
    with paths[0].open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("field", "value"))
        writer.writerows((k, csv_cell("value", v)) for k, v in data.about())
    for name, columns, rows in _sheets(data):
        path = directory / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(columns)
            # csv writes None as an empty field; every other value here is text.
            writer.writerows([csv_cell(c, r.get(c)) for c in columns] for r in rows)
        paths.append(path)
    return paths


_NUMERIC = {"amount", "shipped", "received", "in_transit", "consumed", "re_exported", "returned", "lost",
            "on_hand", "declared_on_hand", "unaccounted", "quantity",
            "gap", "gap_percent"}  # fmt: skip  (gap: `ledger flows -o csv`, negative when more arrived)
_TIMES = {"occurred_at", "recorded_at", "shipped_at", "declared_at", "since", "due_at", "valid_from",
          "valid_until", "generated_at", "at"}  # fmt: skip

# What every column means: the "columns" sheet of the workbook, for an auditor
# who opens it without the docs.  One entry per column name, which means the
# same in every sheet, unless "sheet.column" says otherwise for one sheet;
# tests check that every column of every sheet has one.
COLUMN_MEANINGS: dict[str, str] = {
    "trace_id": "the trace: a root lot and everything re-exported or shipped back from it",
    "event_id": "the report's id, unique per report; corrections and retractions cite it",
    "type": "what the report says happened (exported, received, consumed, re_exported, returned, ...)",
    "status": "whether the account uses the report, or why not (retracted, corrected, refused, conflicting version)",
    "occurred_at": "when it happened, as the reporter says (UTC)",
    "recorded_at": "when the ledger recorded the report (UTC)",
    "reporter": "the party that made the report",
    "lot_id": "the lot the report is about",
    "child_lot_id": "the lot a re-export or ship-back opens",
    "amount": "the quantity reported, an exact decimal in the unit beside it",
    "unit": "the unit of the quantities on the row",
    "consignee": "the party the goods were shipped to",
    "consignee_country": "the consignee's country (ISO 3166 alpha-2)",
    "end_user": "the declared end user",
    "license_id": "the export license the shipment cites",
    "refers_to": "the event id a retraction or correction refers to",
    "detail": "declared end use, reason or evidence, as reported",
    "digest": "SHA-256 of the report's canonical content: the same report has the same digest everywhere",
    "parent_lot_id": "the lot this one was re-exported or shipped back from",
    "origin": "how the lot was opened: export, re-export or ship-back",
    "opened_by": "the event id of the report that opened the lot",
    "item_id": "the controlled item",
    "item_name": "the item's name",
    "classification": "the item's control classification (e.g. Wassenaar / Australia Group entry)",
    "shipper": "the party the lot left",
    "shipper_country": "the shipper's country",
    "holder": "the party the lot was shipped to, who must account for it",
    "holder_country": "the holder's country",
    "shipped_at": "when the lot left the shipper (UTC)",
    "shipped": "quantity shipped: received + in transit",
    "received": "quantity the holder reported received",
    "in_transit": "shipped and not yet received",
    "consumed": "reported used, with a declared end use",
    "re_exported": "moved on to a child lot by re-export",
    "returned": "shipped back to the sender (a child lot)",
    "lost": "written off as lost or destroyed, with evidence",
    "on_hand": "received less consumed, re-exported, returned and lost",
    "declared_on_hand": "the quantity the holder last declared still in stock",
    "declared_at": "when that stock declaration was made (UTC)",
    "since": "when the lot's figures last changed (UTC)",
    "unaccounted": "received less everything reported out and the declared stock: what nobody accounts for",
    "balance_check": "whether shipped = in transit + consumed + lost + on hand over the trace (the account balances)",
    "alert_id": "the alert's id, stable while it stands",
    "severity": "high, medium or low",
    "kind": "the rule that raised it (unaccounted, transit_overdue, premise_deviation, ...)",
    "party": "the party that must answer the alert",
    "quantity": "the quantity the alert is about",
    "due_at": "when the alert stood (its deadline passed), UTC",
    "message": "the alert in words",
    "event_ids": "the reports the alert cites",
    "at": "when the ledger journaled the transition (UTC): the alert was raised, updated or resolved then",
    "transition": "raised (it began to stand), updated (its quantity or kind changed) or resolved (later "
                  "reports account for it)",
    "alert_history.due_at": "when the step journaled began to stand (its deadline passed), UTC",
    "as_of": "the account as it stood at this time, by when things happened (UTC offset as given)",
    "known_at": "only the reports the ledger had recorded by this time",
    "software": "the ledger that made the export, and its version",
    "licenses.kind": "the license's kind: individual, general bulk, special general bulk or special bulk",
    "exporter": "the exporter the license was issued to",
    "items": "the items the license covers",
    "destinations": "the countries the license permits",
    "end_users": "the end users the license permits",
    "ceiling": "the license's quantity ceiling, if any",
    "valid_from": "start of the license's validity (UTC)",
    "valid_until": "end of the license's validity (UTC)",
    "reason": "the reason given for a revocation or amendment",
    "selection": "what the export covers",
    "generated_at": "when the export was made (UTC)",
    "traces": "how many traces the export covers",
    "events": "how many report versions the export lists",
}


def write_xlsx(data: AuditData, path: Path) -> Path:
    """One workbook, one sheet per table; quantities are number cells holding
    the exact decimal text.  Read it with openpyxl.load_workbook.

    Written as SpreadsheetML directly rather than with openpyxl's writer:
    without lxml (not installed here) openpyxl's writer is several times
    slower (BENCHMARKS.md, "Figures behind comments").
    """
    sheets: list[tuple[str, list[list[Any]], list[str]]] = [
        ("about", [["field", "value"], *([k, v] for k, v in data.about()),
                   ["times", "every date-time cell is in UTC (the CSV files and report.html keep each "
                             "report's own offset)"]],
         [xlsx.TEXT, xlsx.TEXT]),
    ]
    explained: list[list[Any]] = [["sheet", "column", "meaning"]]
    for name, columns, rows in _sheets(data):
        table = [list(columns), *([r.get(c) for c in columns] for r in rows)]
        sheets.append((name, table, [_column_kind(c) for c in columns]))
        explained.extend([name, c, column_meaning(name, c)] for c in columns)
    sheets.append(("columns", explained, [xlsx.TEXT, xlsx.TEXT, xlsx.TEXT]))
    path.parent.mkdir(parents=True, exist_ok=True)
    xlsx.write(path, sheets)
    return path


def column_meaning(sheet: str, column: str) -> str:
    return COLUMN_MEANINGS.get(f"{sheet}.{column}") or COLUMN_MEANINGS.get(column, "")


def _column_kind(column: str) -> str:
    if column in _NUMERIC:
        return xlsx.NUMBER
    if column in _TIMES:
        return xlsx.DATETIME
    return xlsx.TEXT


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f3f3f3;text-align:left} td.n{text-align:right;font-variant-numeric:tabular-nums}
.high{color:#a00;font-weight:bold} .medium{color:#b60} .low{color:#555}
pre{background:#f8f8f8;padding:1em;overflow-x:auto} .muted{color:#777} .ctl{color:#a00}
figure.chart{margin:1em 0;max-width:760px} figure.chart svg{width:100%;height:auto;display:block}
figcaption{font-weight:bold;font-size:13px}
svg .grid{stroke:#e4e4e4} svg .report-mark{stroke:#bbb;stroke-dasharray:2 3} svg .tick{font-size:11px;fill:#555}
svg .legend{font-size:12px} svg .as-of-mark{stroke:#222;stroke-dasharray:4 3} svg .as-of-label{font-size:11px}
figure.flows{margin:1em 0;max-width:1000px} figure.flows svg{width:100%;height:auto;display:block}
svg.flows text{font-size:13px;fill:#1d232b} svg.flows .flow-head{fill:#5e6874;font-size:12px}
svg.flows .gap-text{fill:#c0392b;font-weight:700} svg.flows .no-gap{fill:#5e6874} svg.flows .grid{stroke:#d8dde3}
figure.lineage{margin:1em 0;overflow-x:auto} figure.lineage svg{max-width:100%;height:auto;display:block}
svg.lineage text{font-size:12px;fill:#1d232b} svg.lineage .lot rect{fill:#eef4fb;stroke:#3b6fb6;stroke-width:1.4}
svg.lineage .lot.unaccounted rect{fill:#fdecea;stroke:#c0392b;stroke-width:2.2} svg.lineage .lot-id{font-weight:700}
svg.lineage .warn{fill:#c0392b;font-weight:700} svg.lineage .hop{fill:none;stroke:#555;stroke-width:1.6}
svg.lineage .hop.ship-back{stroke-dasharray:6 4;stroke:#8a5cc2} svg.lineage .hop-label{font-size:11px;fill:#5e6874}
.wide{overflow-x:auto;max-width:100%} td.digest{font-family:monospace;font-size:11px;word-break:break-all;min-width:12em}
thead{display:table-header-group}
@media print{
  @page{size:A4 landscape;margin:8mm}
  body{margin:0;font-size:8pt}
  .wide{overflow:visible}
  table{width:100%;table-layout:fixed;font-size:5.5pt;margin:0.5em 0}
  th,td{padding:1px 2px;overflow-wrap:anywhere;word-break:break-word}
  td.digest{font-size:5pt;word-break:break-all;min-width:0}
  tr{page-break-inside:avoid} h2{page-break-after:avoid}
  pre{white-space:pre-wrap;font-size:6pt}
  figure.chart,figure.lineage,figure.flows{break-inside:avoid;page-break-inside:avoid}
  figure.flows{max-width:none;width:100%}
  figure.chart{width:150mm} figure.lineage{overflow:visible}
}
"""


def html_text(value: str) -> str:
    """``html.escape``, and every control character shown as its code (\\x1b),
    never written raw: a terminal escape or a NUL in a report's free text
    must not reach the page an auditor reads."""
    return _HTML_CONTROL.sub(lambda m: f"<span class='ctl'>\\x{ord(m.group()):02x}</span>", html.escape(value))


def html_attribute(value: str) -> str:
    """``html_text`` for an attribute value: the codes without markup."""
    return _HTML_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", html.escape(value))


def write_html(data: AuditData, path: Path, *, fmt: Any = str) -> Path:
    """``html_report`` written to ``path``, part by part: the page is never
    held whole (a 1M-report selection makes a 300 MB page)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for n, part in enumerate(html_parts(data, fmt=fmt)):
            f.write(f"\n{part}" if n else part)
    return path


def html_report(data: AuditData, *, fmt: Any = str) -> str:
    """A report a person can read: open alerts first, then lineage, the
    charts, balances, events.  No script: it prints as it is shown."""
    return "\n".join(html_parts(data, fmt=fmt))


def html_parts(data: AuditData, *, fmt: Any = str) -> Iterator[str]:
    """``html_report``'s page, one part after another (joined by newlines)."""
    e = html_text
    yield from [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Audit report: {e(data.selection)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Audit report: {e(data.selection)}</h1>",
        f"<p class='muted'>Generated at {e(data.generated_at.isoformat())} from {len(data.events)} report "
        f"versions in {len(data.trace_ids)} trace(s). Every figure below is computed from the reports "
        f"listed under Reports and Licenses cited; alerts cite them by event id (each a link). "
        f"Times are as reported, with their UTC offset.</p>",
        f"<p class='muted'>Made by traceability-ledger {e(data.software_version or 'unknown')}; deadlines: "
        + ", ".join(f"{e(k.replace('_', ' '))} {e(str(v))}" for k, v in sorted(data.policy.items())
                    if isinstance(v, int)) + ".</p>",
        f"<p class='as-of'>{e(_when_text(data))}</p>",
        f"<h2>Open alerts ({len(data.alerts)})</h2>",
    ]
    if data.alerts:
        yield ("<table><tr><th>severity</th><th>kind</th><th>trace</th><th>lot</th><th>party</th>"
               "<th>quantity</th><th>since</th><th>what</th><th>cites</th></tr>")
        for a in data.alerts:
            cites = " ".join(f"<a href='#ev-{html_attribute(i)}'>{e(i)}</a>" for i in a["event_ids"].split())
            qty = f"{fmt(a['quantity'])} {a['unit']}" if a["quantity"] is not None else ""
            yield (
                f"<tr><td class='{html_attribute(a['severity'])}'>{e(a['severity'])}</td><td>{e(a['kind'])}</td>"
                f"<td>{e(a['trace_id'])}</td><td>{e(a['lot_id'])}</td><td>{e(a['party'])}</td>"
                f"<td class='n'>{e(qty)}</td><td>{e(a['due_at'][:10])}</td><td>{e(a['message'])}</td>"
                f"<td>{cites}</td></tr>"
            )
        yield "</table>"
    else:
        yield "<p>No alert stands.</p>"
    yield f"<h2>Alert history ({len(data.history)} transitions)</h2>"
    if data.history:
        yield from _html_table(HISTORY_COLUMNS, data.history, fmt)
    else:
        yield "<p>No alert was ever raised on the selection.</p>"
    roots = build_lineage(data.balances)
    yield "<h2>Lineage</h2>"
    if data.charts:  # the report with charts: each trace's lineage as the dashboard draws it
        charted = {(trace_id, lot_id) for trace_id, lot_id, _unit, _points in data.charts}

        def link(node: Any) -> str | None:
            key = (str(node.row.get("trace_id")), node.lot_id)
            return f"#chart-{html_attribute(key[0])}-{html_attribute(key[1])}" if key in charted else None

        for n, root in enumerate(roots[:LINEAGE_GRAPHS_MAX]):
            yield (f"<figure class='lineage'><figcaption>{e(str(root.row.get('trace_id')))}</figcaption>"
                   + lineage_svg([root], fmt=fmt, link=link, arrow_id=f"arrow-{n}") + "</figure>")
        if len(roots) > LINEAGE_GRAPHS_MAX:
            yield (f"<p class='muted'>The first {LINEAGE_GRAPHS_MAX} of {len(roots)} lineages are drawn; "
                   f"every one is below, as text.</p>")
    yield "<pre>"
    yield e("\n".join(render_lineage(roots, fmt=fmt)))
    yield "</pre>"
    if data.charts:
        yield "<h2>Quantities over time, per lot</h2>"
        yield ("<p class='muted'>Each lot as of every date one of its reports occurred or one of its "
               "deadlines fell due (a grey line), as the dashboard draws it; a quantity holds until the "
               "next change. The legend gives the last values (the Balances table).</p>")
        for trace_id, lot_id, unit, points in data.charts:
            yield (f"<figure class='chart' id='chart-{html_attribute(trace_id)}-{html_attribute(lot_id)}'>"
                   f"<figcaption>{e(lot_id)} ({e(trace_id)}), in {e(unit)}</figcaption>"
                   + quantity_chart_svg(points, unit, fmt=fmt, marker=data.as_of,
                                        label=f"quantities of lot {lot_id} over time")
                   + "</figure>")
        if data.charts_left_out:
            yield (f"<p class='muted'>{data.charts_left_out} more lots are not charted here (the first "
                   f"{CHART_LOTS_MAX} are); the dashboard charts any lot.</p>")
    if data.flows:
        yield from _flows_figures(data.flows, fmt)
    yield "<h2>Where the quantity is, per trace</h2>"
    if not data.totals and data.balances:
        yield ("<p>None: these totals are of whole traces, from their first export, and this selection "
               "holds no trace's first export. The balances per lot follow.</p>")
    yield from _html_table(TOTAL_COLUMNS, data.totals, fmt)
    yield "<h2>Balances per lot</h2>"
    columns = ("trace_id", "lot_id", "parent_lot_id", "origin", "holder", "holder_country", "unit", "shipped",
               "in_transit", "received", "consumed", "re_exported", "returned", "lost", "on_hand",
               "declared_on_hand", "unaccounted", "license_id")
    yield from _html_table(columns, data.balances, fmt)
    if data.licenses:
        yield "<h2>Licenses cited</h2>"
        yield from _html_table(tuple(data.licenses[0]), data.licenses, fmt, anchor="event_id")
    shown = data.events[:HTML_EVENTS_MAX]
    yield f"<h2>Reports ({len(data.events)})</h2>"
    if len(shown) < len(data.events):
        yield f"<p>The first {len(shown)} are shown; events.csv and the workbook hold all.</p>"
    yield from _html_table(EVENT_COLUMNS, shown, fmt, anchor="event_id")
    yield "</body></html>"


def _flows_figures(flows: list[Flow], fmt: Any) -> Iterator[str]:
    """The dashboard's flows view on paper: the flows of the selection's lots
    (what `ledger flows` counts), in figures of FLOW_ROWS_PER_CHART rows."""
    with_gap = [f for f in flows if f.gap != 0]
    drawn = flows  # as reconciled; beyond the bound, every flow with a gap first
    if len(flows) > FLOWS_DRAWN_MAX:
        drawn = (with_gap + [f for f in flows if f.gap == 0])[:FLOWS_DRAWN_MAX]
    yield f"<h2>Flows between countries ({len(flows)})</h2>"
    yield (f"<p class='muted'>The selection's lots as <code>ledger flows</code> and the dashboard count them: per "
           f"country pair, item, year and unit, what the senders reported shipped against what the receivers "
           f"reported received; {len(with_gap)} with a gap (shaded, the gap in red). Each row's bars are "
           f"scaled to that row alone: no quantity is added to or measured against another unit's.</p>")
    for start in range(0, len(drawn), FLOW_ROWS_PER_CHART):
        part = drawn[start:start + FLOW_ROWS_PER_CHART]
        yield "<figure class='flows'>" + flows_svg(part, fmt=fmt) + "</figure>"
    if len(drawn) < len(flows):
        yield (f"<p class='muted'>{len(flows) - len(drawn)} more flows are not drawn here (every flow with "
               f"a gap comes first); <code>ledger flows</code> lists every one.</p>")


def _when_text(data: AuditData) -> str:
    if data.as_of is None and data.known_at is None:
        return "The account as it stands now, from every report recorded."
    text = "The account as of " + (data.as_of.isoformat() if data.as_of else "now")
    if data.known_at is not None:
        text += f", from the reports recorded by {data.known_at.isoformat()} (later ones are left out)"
    return text + "."


def _html_table(columns: Iterable[str], rows: list[dict[str, Any]], fmt: Any, *,
                anchor: str | None = None) -> Iterator[str]:
    """A table, its head and then row by row (a selection's history or balances may be 100 MB of rows)."""
    columns = tuple(columns)
    e = html_text
    # On screen a wide table scrolls in its own box; on paper (A4 landscape)
    # every column is laid out in the page width and long values wrap, so no
    # column is cut off (the print rules in _CSS).
    yield ("<div class='wide'><table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in columns)
           + "</tr></thead><tbody>")
    for row in rows:
        row_id = f" id='ev-{html_attribute(str(row[anchor]))}'" if anchor else ""
        cells = []
        for c in columns:
            value = row.get(c)
            if c in _NUMERIC and value not in (None, ""):
                cells.append(f"<td class='n'>{e(fmt(value))}</td>")
            elif c == "digest":
                cells.append(f"<td class='digest'>{e(_cell_text(value))}</td>")
            else:
                cells.append(f"<td>{e(_cell_text(value))}</td>")
        yield f"<tr{row_id}>" + "".join(cells) + "</tr>"
    yield "</tbody></table></div>"
