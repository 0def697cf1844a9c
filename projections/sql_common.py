"""SQL both projection stores run alike, written once with the dialect's
parameter mark ("?" for SQLite, "%s" for psycopg)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ledger.parties import RegisteredParty
from projections.rows import STEP_COLUMNS, ts

__all__ = ["sweep_due", "step_dict", "filters", "value_marks", "group_claims", "group_unread", "CLAIMS_INDEX",
           "party_row", "party_from_row"]

# Existing stores gain it on open (CREATE INDEX IF NOT EXISTS): no new schema version.
CLAIMS_INDEX = "CREATE INDEX IF NOT EXISTS reports_by_event ON reports (event_id)"

# Due alerts a sweep journals at a time: what it loads for them grows with the
# page, not with every alert standing (167,768 at the end of a 5M rebuild).
SWEEP_PAGE = 5_000


def sweep_due(c: Any, clock: datetime, journal: Callable[[Any, set[str], datetime], int], mark: str) -> int:
    """Journal the alerts whose deadline passed since the last sweep, up to ``clock``.

    Runs inside the caller's write transaction (which holds whatever lock
    keeps two sweepers from reading the same "previous" status).
    """
    c.execute("SELECT value FROM store_meta WHERE key = 'swept_until'")
    row = c.fetchone()
    since = row[0] if row else ""
    now = ts(clock)
    c.execute(f"SELECT DISTINCT alert_id FROM alert_steps WHERE due_at > {mark} AND due_at <= {mark}", (since, now))
    # Only the ids are held all at once (~200 bytes each at the peak, with
    # the rows they are read from); what the journal loads for each alert
    # (status, standing step, transition: ~2 kB) is held a page at a time.
    # Pages in sorted id order, the order the journal writes each call's
    # transitions in: the same rows, in the same order of seq, as one call
    # for every due alert.  (Keyset pages in SQL, "alert_id > ? ORDER BY
    # alert_id LIMIT ?", would hold less, but SQLite then walks the primary
    # key instead of steps_by_due: a scan of every step at each sweep.)
    due = sorted(r[0] for r in c.fetchall())
    written = 0
    for first in range(0, len(due), SWEEP_PAGE):
        written += journal(c, set(due[first:first + SWEEP_PAGE]), clock)
    c.execute(
        f"INSERT INTO store_meta VALUES ('swept_until', {mark}) "
        f"ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (max(now, since),),
    )
    return written


def step_dict(row: Any) -> dict[str, Any]:
    """An alert_steps row as a dict, its cited event ids decoded."""
    step = dict(zip(STEP_COLUMNS, row))
    step["event_ids"] = json.loads(step["event_ids"])
    return step


def filters(mark: str, prefix: str = "", **values: str | None) -> tuple[str, list[str]]:
    """A WHERE clause of equalities for the values given (None: not filtered)."""
    clauses, params = [], []
    for column, value in values.items():
        if value is not None:
            clauses.append(f"{prefix}{column} = {mark}")
            params.append(value)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def value_marks(columns: tuple[str, ...], mark: str) -> str:
    return ", ".join([mark] * len(columns))



def group_claims(rows: Any) -> dict[str, list[tuple[str, str, datetime, str]]]:
    """(event_id, trace_id, digest, recorded_at text, reporter) rows as ``event_claims`` returns them."""
    out: dict[str, list[tuple[str, str, datetime, str]]] = {}
    for event_id, trace_id, digest, recorded_at, reporter in rows:
        # The stored spelling is fixed-width UTC ("...Z"), which fromisoformat reads exactly.
        out.setdefault(event_id, []).append((trace_id, digest, datetime.fromisoformat(recorded_at), reporter))
    for claims in out.values():
        claims.sort()
    return out


def party_row(party: RegisteredParty) -> tuple[str, str, str, str | None]:
    """A registered party as both stores keep it (roles space-separated)."""
    return (party.party_id, party.country, " ".join(party.roles), party.name)


def party_from_row(row: Any) -> RegisteredParty:
    """A stored party, checked again as it is read (ledger/parties.py)."""
    party_id, country, roles, name = row
    return RegisteredParty(party_id, country, tuple(roles.split()), name)


def group_unread(rows: Any) -> dict[str, list[tuple[str, str]]]:
    """(key, value, error) rows as ``unread_records`` returns them."""
    out: dict[str, set[tuple[str, str]]] = {}
    for key, value, error in rows:
        out.setdefault(key, set()).add((hashlib.sha256(bytes(value or b"")).hexdigest(), error))
    return {key: sorted(unread) for key, unread in out.items()}
