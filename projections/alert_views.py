"""Alerts as a party reads them: since when each has stood, and those about
its material that are addressed to someone else.

- ``since``: when the alert FIRST stood in its current run (the earliest of
  its steps since it last stood at zero), not its latest step: an
  unaccounted quantity that shrank from 30 to 20 has stood since the first
  deadline passed.  ``due_at`` stays the latest step's.
- The exporter of origin (the shipper of a trace's root lot) answers to its
  licensing authority for where its material went: an alert about a
  re-export of it is addressed to the re-exporter, and shown to the exporter
  of origin too, marked ``about_your_material``.

The alert journal's transitions (``GET /v1/alerts/journal`` and the live
stream the dashboard draws) carry the same two fields, from the same rules
(``journal_views``): a transition's ``since`` is when the run it belongs to
began, so the latest transition of a standing alert says what the list of
standing alerts says.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from ledger.policy import Policy
from projections.queries import standing_alerts
from projections.rows import ts
from projections.store import ProjectionStore

__all__ = ["first_stood", "with_since", "party_alerts", "origin_traces", "about_material", "marked_for",
           "journal_views"]

ORIGIN_TRACES_QUERIED_ONE_BY_ONE_MAX = 50  # beyond, one query for every alert, filtered here


def first_stood(times: list[tuple[str, str | None]], as_of: str) -> str | None:
    """The due time (stored UTC text) of the first step of the run standing
    at ``as_of``: steps due by then, after the last one at zero.  None if no
    step is due by then."""
    start = None
    for due_at, quantity in times:  # in due order
        if due_at > as_of:
            break
        if quantity == "0":
            start = None
        elif start is None:
            start = due_at
    return start


def with_since(store: ProjectionStore, rows: list[dict[str, Any]], *, now: datetime,
               as_of: datetime | None, known_at: datetime | None) -> list[dict[str, Any]]:
    """Each alert row with ``since``: when it first stood (module doc).  The
    stored steps are those of every report known, so with ``known_at`` the
    latest step's due time is given (what was known then may have started
    the run later)."""
    if known_at is not None:
        return [{**r, "since": r["due_at"]} for r in rows]
    times = store.alert_step_times([r["alert_id"] for r in rows]) if rows else {}
    when = ts(as_of or now)
    assert when is not None
    return [{**r, "since": _since(times, r, when)} for r in rows]


def _since(times: dict[str, list[tuple[str, str | None]]], row: dict[str, Any], when: str | None) -> str | None:
    """When the run of ``row``'s alert standing at ``when`` began; its own due time if no step says."""
    if when is None:
        return row["due_at"]
    return first_stood(times.get(row["alert_id"], []), when) or row["due_at"]


def journal_views(store: ProjectionStore, entries: list[dict[str, Any]], *,
                  party: str | None) -> list[dict[str, Any]]:
    """Journal entries as ``party`` reads them (None: no party's view), each
    with ``since`` and, for a party, ``about_your_material`` (module doc).

    A transition's ``since`` is when the run it raised, updated or resolved
    began: ``first_stood`` at its own step's due time, from the steps the
    store holds now (what is known now, as ``with_since`` answers)."""
    if not entries:
        return []
    times = store.alert_step_times([e["alert_id"] for e in entries])
    out = [{**e, "since": _since(times, e, e["due_at"])} for e in entries]
    return out if party is None else marked_for(store, party, out)


def _is_root_shipped_by(row: dict[str, Any], party: str) -> bool:
    return row["parent_lot_id"] is None and row["shipper"] == party


def origin_traces(store: ProjectionStore, party: str) -> list[str]:
    """The traces whose root lot ``party`` shipped: it is their exporter of origin."""
    return sorted({r["trace_id"] for r in store.lots() if _is_root_shipped_by(r, party)})


def about_material(alert: dict[str, Any], party: str, origins: Collection[str]) -> bool:
    """Is ``alert`` about material ``party`` exported at the origin
    (``origins``: the traces it is the exporter of origin of), addressed to
    another party?"""
    return alert.get("party") != party and alert.get("trace_id") in origins


def marked_for(store: ProjectionStore, party: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each alert row (or journal entry) with ``about_your_material`` for ``party``."""
    traces = sorted({r["trace_id"] for r in rows if r.get("trace_id") and r.get("party") != party})
    origins = {r["trace_id"] for r in store.trace_lots(traces) if _is_root_shipped_by(r, party)} if traces else set()
    return [{**r, "about_your_material": about_material(r, party, origins)} for r in rows]


def party_alerts(store: ProjectionStore, party: str, *, now: datetime, policy: Policy,
                 as_of: datetime | None = None, known_at: datetime | None = None,
                 trace_id: str | None = None) -> list[dict[str, Any]]:
    """The alerts addressed to ``party``, and those about the material it
    exported at the origin addressed to others, each with
    ``about_your_material`` (False: addressed to it), ordered as the store
    orders alerts."""
    when = {"now": now, "policy": policy, "as_of": as_of, "known_at": known_at}
    own = standing_alerts(store, party=party, trace_id=trace_id, **when)
    origins = [t for t in origin_traces(store, party) if trace_id in (None, t)]
    if len(origins) <= ORIGIN_TRACES_QUERIED_ONE_BY_ONE_MAX:
        theirs = [a for t in origins for a in standing_alerts(store, trace_id=t, **when)]
    else:
        wanted = set(origins)
        theirs = [a for a in standing_alerts(store, **when) if a["trace_id"] in wanted]
    out = {a["alert_id"]: {**a, "about_your_material": False} for a in own}
    for alert in theirs:
        # A trace's view also lists the ceilings of the licenses it cites:
        # those are about the license, not this material; keep the trace's own.
        if alert["alert_id"] not in out and about_material(alert, party, origins):
            out[alert["alert_id"]] = {**alert, "about_your_material": True}
    return sorted(out.values(), key=lambda a: (a["trace_id"], a["lot_id"], a["kind"], a["alert_id"]))
