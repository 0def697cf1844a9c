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
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.policy import Policy
from projections.queries import standing_alerts
from projections.rows import ts
from projections.store import ProjectionStore

__all__ = ["first_stood", "with_since", "party_alerts", "origin_traces"]

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
    return [{**r, "since": first_stood(times.get(r["alert_id"], []), when) or r["due_at"]} for r in rows]


def origin_traces(store: ProjectionStore, party: str) -> list[str]:
    """The traces whose root lot ``party`` shipped: it is their exporter of origin."""
    return sorted({r["trace_id"] for r in store.lots() if r["parent_lot_id"] is None and r["shipper"] == party})


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
        if alert["alert_id"] not in out and alert["party"] != party and alert["trace_id"] in origins:
            out[alert["alert_id"]] = {**alert, "about_your_material": True}
    return sorted(out.values(), key=lambda a: (a["trace_id"], a["lot_id"], a["kind"], a["alert_id"]))
