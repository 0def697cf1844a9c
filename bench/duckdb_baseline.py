"""The DuckDB baseline (issue 18): every lot's account from the JSON Lines, in SQL.

What an analyst would do instead of running the ledger: load the history
with DuckDB and compute each lot's account with SQL.  This module does
that, checks the figures equal the ledger's own lot by lot (``ledger ingest
--trust-recorded-at`` into a scratch LEDGER_HOME, then ``ledger whereabouts
--json``), and measures the CPU time of both in the same run, and the
time from one new report to its lot's updated account on each side.

    python -m bench.duckdb_baseline --size 100k --seed 1
    python -m bench.duckdb_baseline --events 10000 --seed 1
    python -m bench.run duckdb --size 100k          # the same, from the harness

It prints one JSON object, writes it to
``bench/data/results-<size>-seed<seed>-duckdb.json`` and exits 1 when any
lot differs (or a lot is on one side only), or when the SQL's content
digest of a lot report differs from the one the ledger's log stored.

What the SQL computes, following ledger/account.py and ledger/identity.py
(step 1 is ``REPORTS_SQL``, steps 2-7 the temporary tables and CTEs of
``ACCOUNT_SQL``):

1. ``reports`` (counted as the load: ``load_cpu_s`` is reading the file
   and parsing each line's JSON): lot reports only (``trace_id`` and
   ``lot_id`` set, one of the nine lot event types); quantities as DECIMAL(38, 12), never DOUBLE;
   times as TIMESTAMPTZ (the session's zone is UTC).  A report whose
   ``occurred_at`` is more than 15 minutes after its ``recorded_at`` is
   dropped, as ingest refuses it.
2. ``chosen``: one version per event id, ledger-wide: the first recorded
   wins (``recorded_at``), ties by content digest, then by trace id
   (identity.py's total order; within one trace it is account.py's
   ``_choose_versions``).  The digest (SHA-256 of the report's canonical
   JSON, ``ledger.events.content_digest``) is rebuilt in SQL (``DIGEST_SQL``)
   in a second pass, only for the event ids whose first instant holds two
   different versions (``digest_ties``).  Every run compares it with the
   ledger's stored digest for every lot report (``digests``: 9,386 of 9,386
   equal at 10k, 95,355 of 95,355 at 100k).  It is
   left undecided (NULL, counted as ``digest_undecided`` and failing the
   check) for a report whose text is not printable ASCII or holds a
   backslash (json.dumps's escapes are not reproduced) or whose time is
   in a form it does not normalise.
3. ``live0``: retractions.  A retraction removes its target when the
   target is in the same trace, is not itself a retraction, and was
   reported by the retraction's reporter; every retraction is then dropped
   (refused ones change nothing).
4. ``live``: corrections.  Of the valid corrections of one report (target
   in the trace and not retracted, not itself a correction, same reporter,
   same unit dimension, quantity > 0 unless the target is a stock
   declaration), the last in canonical order gives the quantity and unit;
   corrections are then dropped.  The report keeps its place in time.
5. ``openers`` and ``lots`` (a recursive CTE): each lot id of a trace is
   opened by the first opening report in canonical order (an export opens
   its ``lot_id``, a re-export or ship-back its ``child_lot_id``); a child
   lot opens once its parent is open, if the opener is the parent's holder
   and reports in the parent's dimension.  The lot's unit is its opener's.
6. ``postings``: every other live report posts to its lot when the reporter
   is the lot's holder and the unit's dimension is the lot's; a re-export or
   ship-back posts only if it is the opener of its child lot.  Amounts are
   converted to the lot's unit exactly (g -> kg is x 0.001, t -> kg x 1000,
   mL -> L x 0.001: ledger/quantity.py's factors).
7. The account (second pass over ``postings``, window functions in
   canonical order ``(occurred_at, stock declaration last, event_id)``):
   sums per kind; the latest stock declaration explains at most what the
   book showed on hand at its place in that order, less what went out
   after it; ``unaccounted`` is what the receipts due by the clock (their
   ``occurred_at`` + 90 days, the default policy) exceed what is explained,
   never below 0 -- the standing ``unaccounted`` alert that ``ledger
   whereabouts`` shows.  Account.py does this with a running fold; SQL
   needs the running sums as a separate window pass over the postings.

Not computed: alerts other than ``unaccounted``, license premises, findings
(refused reports are simply not counted), the as-of and known-at views, and
the schema validation ingest does (the baseline trusts that every line is a
valid report: the ledger validates, DuckDB does not).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["REPORTS_SQL", "ACCOUNT_SQL", "DIGEST_SQL", "duckdb_accounts", "ledger_accounts", "compare_lots",
           "check_digests", "one_report_update", "main"]

ROOT = Path(__file__).resolve().parent.parent
QUANTITY_COLUMNS = ("shipped", "in_transit", "received", "consumed", "re_exported", "returned", "lost",
                    "on_hand", "declared_on_hand", "unaccounted")
IDENTITY_COLUMNS = ("unit", "holder", "parent_lot_id", "origin", "opened_by")
COMPARED_COLUMNS = (*IDENTITY_COLUMNS, *QUANTITY_COLUMNS, "since")
DIFFERENCES_SHOWN_MAX = 10
END_USE_REPORTING_DAYS = 90  # ledger.policy.Policy's default, which `ledger whereabouts` uses here
OCCURRED_AFTER_RECORDED_MAX_MIN = 15  # ledger.events.OCCURRED_AFTER_RECORDED_MAX: ingest refuses beyond it
LEDGER_RUN_TIMEOUT_S = 3600
LOT_TYPES = ("exported", "received", "consumed", "re_exported", "returned", "stock_declared", "lost",
             "retracted", "corrected")

# A unit's dimension and its power of ten in the dimension's base unit
# (ledger/quantity.py UNITS: g 0.001 kg, t 1000 kg, mL 0.001 L, m3 1000 L).
UNITS_SQL = """
CREATE OR REPLACE TEMP TABLE units AS SELECT * FROM (VALUES
    ('g', 'mass', -3), ('kg', 'mass', 0), ('t', 'mass', 3),
    ('mL', 'volume', -3), ('L', 'volume', 0), ('m3', 'volume', 3),
    ('unit', 'count', 0)) AS u(unit, dimension, exponent);
"""

LOAD_SQL = """
CREATE OR REPLACE TEMP TABLE lines AS
SELECT row_number() OVER () AS line_no, json FROM read_ndjson_objects($path);
"""

# Exact conversion by a power of ten: x 10^k for k >= 0 keeps DECIMAL(38, 12);
# for k < 0 the product has at most 6 + 6 decimals (amounts carry at most 6),
# so the cast back to 12 places loses nothing.
CONVERT_SQL = """
CREATE OR REPLACE MACRO to_unit(amount, exponent) AS CASE exponent
    WHEN 0 THEN amount
    WHEN 3 THEN amount * 1000
    WHEN 6 THEN amount * 1000000
    WHEN -3 THEN CAST(amount * CAST('0.001' AS DECIMAL(4, 3)) AS DECIMAL(38, 12))
    WHEN -6 THEN CAST(amount * CAST('0.000001' AS DECIMAL(7, 6)) AS DECIMAL(38, 12))
END;
"""


# ledger.events.content_digest in SQL: SHA-256 of json.dumps(body, sort_keys=True,
# separators=(",", ":")) of pydantic's JSON-mode dump without recorded_at and
# None fields.  Keys of every lot report type, in sorted order; the defaults
# pydantic adds (schema_version 1, a loss's disposition "lost"); amounts in
# their canonical spelling; times as pydantic writes them (+00:00 as Z, a
# fraction as six digits, seconds always).  NULL -- undecided, and reported
# -- where the report's text is not printable ASCII or holds a backslash
# (json.dumps escapes those; this does not reproduce its escapes) or a time
# is written in a form this does not normalise.
_PRINTABLE_NO_BACKSLASH = r"[\x20-\x5b\x5d-\x7e]*"
_ISO_TIME = r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2})(:[0-9]{2})?(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
DIGEST_SQL = f"""
CREATE OR REPLACE MACRO jstr(x) AS '"' || x || '"';
CREATE OR REPLACE MACRO jtime(x) AS '"' || regexp_extract(x, '{_ISO_TIME}', 1) || 'T' || regexp_extract(x, '{_ISO_TIME}', 2)
         || coalesce(nullif(regexp_extract(x, '{_ISO_TIME}', 3), ''), ':00')
         || CASE WHEN rtrim(regexp_extract(x, '{_ISO_TIME}', 4), '0') IN ('', '.') THEN ''
                 ELSE rpad(regexp_extract(x, '{_ISO_TIME}', 4), 7, '0') END
         || CASE WHEN regexp_extract(x, '{_ISO_TIME}', 5) IN ('Z', '+00:00', '-00:00') THEN 'Z'
                 ELSE regexp_extract(x, '{_ISO_TIME}', 5) END || '"';
CREATE OR REPLACE MACRO jparty(j, path) AS CASE WHEN json_extract_string(j, path || '.id') IS NULL THEN NULL ELSE
    '{{"country":' || jstr(json_extract_string(j, path || '.country')) || ',"id":' || jstr(json_extract_string(j, path || '.id'))
    || coalesce(',"name":' || jstr(json_extract_string(j, path || '.name')), '') || '}}' END;
CREATE OR REPLACE MACRO jamount(x) AS
    '"' || rtrim(rtrim(CAST(CAST(x AS DECIMAL(38, 12)) AS VARCHAR), '0'), '.') || '"';
CREATE OR REPLACE MACRO digest_body(j) AS '{{' || concat_ws(',',
    '"child_lot_id":' || jstr(json_extract_string(j, '$.child_lot_id')),
    '"consignee":' || jparty(j, '$.consignee'),
    '"corrected_event_id":' || jstr(json_extract_string(j, '$.corrected_event_id')),
    '"disposition":' || jstr(coalesce(json_extract_string(j, '$.disposition'),
                                      CASE WHEN json_extract_string(j, '$.type') = 'lost' THEN 'lost' END)),
    '"end_use":' || jstr(json_extract_string(j, '$.end_use')),
    '"end_user":' || jparty(j, '$.end_user'),
    '"event_id":' || jstr(json_extract_string(j, '$.event_id')),
    '"evidence":' || jstr(json_extract_string(j, '$.evidence')),
    '"exporter":' || jparty(j, '$.exporter'),
    '"item":' || CASE WHEN json_extract_string(j, '$.item.id') IS NULL THEN NULL ELSE
        '{{"classification":' || jstr(json_extract_string(j, '$.item.classification'))
        || ',"id":' || jstr(json_extract_string(j, '$.item.id'))
        || coalesce(',"name":' || jstr(json_extract_string(j, '$.item.name')), '') || '}}' END,
    '"license_id":' || jstr(json_extract_string(j, '$.license_id')),
    '"lot_id":' || jstr(json_extract_string(j, '$.lot_id')),
    '"occurred_at":' || jtime(json_extract_string(j, '$.occurred_at')),
    '"quantity":' || CASE WHEN json_extract_string(j, '$.quantity.unit') IS NULL THEN NULL ELSE
        '{{"amount":' || jamount(json_extract_string(j, '$.quantity.amount'))
        || ',"unit":' || jstr(json_extract_string(j, '$.quantity.unit')) || '}}' END,
    '"reason":' || jstr(json_extract_string(j, '$.reason')),
    '"reporter":' || jstr(json_extract_string(j, '$.reporter')),
    '"retracted_event_id":' || jstr(json_extract_string(j, '$.retracted_event_id')),
    '"schema_version":1',
    '"trace_id":' || jstr(json_extract_string(j, '$.trace_id')),
    '"type":' || jstr(json_extract_string(j, '$.type'))) || '}}';
-- Decidable: the JSON text is printable ASCII without a backslash (so no
-- string needs escaping) and its time is in a form jtime normalises.
CREATE OR REPLACE MACRO digest_of(j) AS CASE
    WHEN regexp_full_match(CAST(j AS VARCHAR), '{_PRINTABLE_NO_BACKSLASH}')
         AND regexp_full_match(json_extract_string(j, '$.occurred_at'), '{_ISO_TIME}')
    THEN sha256(digest_body(j)) END;
"""

# 1. lot reports, typed, from a table of JSON lines (``lines``, or one new line)
REPORTS_SELECT = f"""
SELECT f[1] AS type, f[2] AS event_id, CAST(f[3] AS TIMESTAMPTZ) AS occurred_at,
       CAST(f[4] AS TIMESTAMPTZ) AS recorded_at, f[5] AS reporter, f[6] AS trace_id, f[7] AS lot_id,
       CAST(f[8] AS DECIMAL(38, 12)) AS amount, f[9] AS unit, f[10] AS child_lot_id,
       f[11] AS consignee, f[12] AS retracted_event_id, f[13] AS corrected_event_id,
       CAST(f[1] = 'stock_declared' AS INTEGER) AS declared_last,
       json_merge_patch(json, '{{{{"recorded_at": null}}}}') AS content
FROM (SELECT json, json_extract_string(json, ['$.type', '$.event_id', '$.occurred_at', '$.recorded_at',
             '$.reporter', '$.trace_id', '$.lot_id', '$.quantity.amount', '$.quantity.unit',
             '$.child_lot_id', '$.consignee.id', '$.retracted_event_id', '$.corrected_event_id']) AS f
      FROM {{source}})
WHERE f[6] IS NOT NULL AND f[7] IS NOT NULL AND f[1] IN {LOT_TYPES!r}
  AND CAST(f[3] AS TIMESTAMPTZ) <= CAST(f[4] AS TIMESTAMPTZ) + INTERVAL {OCCURRED_AFTER_RECORDED_MAX_MIN} MINUTE
"""
REPORTS_SQL = "CREATE OR REPLACE TEMP TABLE reports AS " + REPORTS_SELECT.format(source="lines")

# 2-7, from ``reports``
ACCOUNT_SQL = f"""
-- 2. one version per event id: the first recorded wins, ties by content digest, then by trace.
--    The digest is needed only where two different versions share the first instant (digest_ties);
--    it is computed for those alone, in a second pass (digest_of, DIGEST_SQL).
CREATE OR REPLACE TEMP TABLE digest_ties AS
SELECT event_id, count(DISTINCT content) AS versions FROM (
    SELECT *, min(recorded_at) OVER (PARTITION BY event_id) AS first_at FROM reports)
WHERE recorded_at = first_at GROUP BY event_id HAVING count(DISTINCT content) > 1;

CREATE OR REPLACE TEMP TABLE tie_digests AS
SELECT DISTINCT r.event_id, r.content, digest_of(r.content) AS digest
FROM reports r SEMI JOIN digest_ties t ON t.event_id = r.event_id;

CREATE OR REPLACE TEMP TABLE chosen AS
SELECT * EXCLUDE (rn, content, digest) FROM (
    SELECT r.*, d.digest, row_number() OVER (PARTITION BY r.event_id
                                             ORDER BY r.recorded_at, d.digest, r.trace_id, r.content) AS rn
    FROM reports r LEFT JOIN tie_digests d ON d.event_id = r.event_id AND d.content = r.content)
WHERE rn = 1;

-- 3. retractions by the original reporter
CREATE OR REPLACE TEMP TABLE live0 AS
WITH retracted AS (
    SELECT DISTINCT r.trace_id, r.retracted_event_id AS event_id
    FROM chosen r JOIN chosen t ON t.trace_id = r.trace_id AND t.event_id = r.retracted_event_id
    WHERE r.type = 'retracted' AND t.type <> 'retracted' AND t.reporter = r.reporter)
SELECT c.* FROM chosen c ANTI JOIN retracted x ON x.trace_id = c.trace_id AND x.event_id = c.event_id
WHERE c.type <> 'retracted';

-- 4. corrections: the last valid one in canonical order stands
CREATE OR REPLACE TEMP TABLE live AS
WITH valid AS (
    SELECT c.trace_id, c.corrected_event_id AS event_id, c.amount, c.unit,
           row_number() OVER (PARTITION BY c.trace_id, c.corrected_event_id
                              ORDER BY c.occurred_at DESC, c.event_id DESC) AS rn
    FROM live0 c
    JOIN live0 t ON t.trace_id = c.trace_id AND t.event_id = c.corrected_event_id
    JOIN units ut ON ut.unit = t.unit JOIN units uc ON uc.unit = c.unit
    WHERE c.type = 'corrected' AND t.type <> 'corrected' AND t.reporter = c.reporter
      AND ut.dimension = uc.dimension AND (c.amount > 0 OR t.type = 'stock_declared'))
SELECT l.* REPLACE (coalesce(v.amount, l.amount) AS amount, coalesce(v.unit, l.unit) AS unit)
FROM live0 l LEFT JOIN valid v ON v.rn = 1 AND v.trace_id = l.trace_id AND v.event_id = l.event_id
WHERE l.type <> 'corrected';

-- 5. lots: the first opener of each lot id, children once their parent is open
CREATE OR REPLACE TEMP TABLE openers AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, CASE WHEN type = 'exported' THEN lot_id ELSE child_lot_id END AS opens,
           row_number() OVER (PARTITION BY trace_id, CASE WHEN type = 'exported' THEN lot_id ELSE child_lot_id END
                              ORDER BY occurred_at, event_id) AS rn
    FROM live WHERE type IN ('exported', 're_exported', 'returned'))
WHERE rn = 1;

CREATE OR REPLACE TEMP TABLE lots AS
WITH RECURSIVE opened(trace_id, lot_id, parent_lot_id, origin, opened_by, unit, holder, shipped, shipped_at) AS (
    SELECT trace_id, lot_id, CAST(NULL AS VARCHAR), 'export', event_id, unit, consignee, amount, occurred_at
    FROM openers WHERE type = 'exported'
    UNION ALL
    SELECT o.trace_id, o.child_lot_id, p.lot_id, CASE o.type WHEN 're_exported' THEN 're_export' ELSE 'ship_back' END,
           o.event_id, o.unit, o.consignee, o.amount, o.occurred_at
    FROM openers o
    JOIN opened p ON p.trace_id = o.trace_id AND p.lot_id = o.lot_id
    JOIN units uo ON uo.unit = o.unit JOIN units up ON up.unit = p.unit
    WHERE o.type IN ('re_exported', 'returned') AND o.reporter = p.holder AND uo.dimension = up.dimension)
SELECT o.*, u.exponent AS lot_exponent, u.dimension FROM opened o JOIN units u USING (unit);

-- 6. postings: the holder's movements, in the lot's unit
CREATE OR REPLACE TEMP TABLE postings AS
SELECT e.trace_id, e.lot_id, e.type, e.event_id, e.occurred_at, e.declared_last,
       to_unit(e.amount, ue.exponent - l.lot_exponent) AS amount
FROM live e
JOIN lots l ON l.trace_id = e.trace_id AND l.lot_id = e.lot_id
JOIN units ue ON ue.unit = e.unit
WHERE e.type NOT IN ('exported') AND e.reporter = l.holder AND ue.dimension = l.dimension
  AND (e.type NOT IN ('re_exported', 'returned') OR EXISTS (
        SELECT 1 FROM lots c WHERE c.trace_id = e.trace_id AND c.lot_id = e.child_lot_id
                               AND c.opened_by = e.event_id));

-- 7. the account: running sums in canonical order, the latest declaration, what is unaccounted
CREATE OR REPLACE TEMP TABLE running AS
SELECT *,
    sum(CASE WHEN type = 'received' THEN amount ELSE 0 END) OVER w AS received_by,
    sum(CASE WHEN type IN ('consumed', 're_exported', 'returned', 'lost') THEN amount ELSE 0 END) OVER w AS out_by,
    row_number() OVER (PARTITION BY trace_id, lot_id, type = 'stock_declared'
                       ORDER BY occurred_at DESC, declared_last DESC, event_id DESC) AS latest
FROM postings
WINDOW w AS (PARTITION BY trace_id, lot_id ORDER BY occurred_at, declared_last, event_id
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

CREATE OR REPLACE TEMP TABLE accounts AS
WITH totals AS (
    SELECT trace_id, lot_id,
        sum(CASE WHEN type = 'received' THEN amount ELSE 0 END) AS received,
        sum(CASE WHEN type = 'received' AND occurred_at + INTERVAL {END_USE_REPORTING_DAYS} DAY <= $clock
                 THEN amount ELSE 0 END) AS received_due,
        sum(CASE WHEN type = 'consumed' THEN amount ELSE 0 END) AS consumed,
        sum(CASE WHEN type = 're_exported' THEN amount ELSE 0 END) AS re_exported,
        sum(CASE WHEN type = 'returned' THEN amount ELSE 0 END) AS returned,
        sum(CASE WHEN type = 'lost' THEN amount ELSE 0 END) AS lost,
        max(occurred_at) AS last_movement_at
    FROM postings GROUP BY trace_id, lot_id),
declared AS (
    SELECT trace_id, lot_id, amount AS declared_on_hand, occurred_at AS declared_at,
           least(amount, greatest(0, received_by - out_by)) AS declared_explains, out_by AS out_at_declared
    FROM running WHERE type = 'stock_declared' AND latest = 1),
joined AS (
    SELECT l.trace_id, l.lot_id, l.parent_lot_id, l.origin, l.opened_by, l.unit, l.holder, l.shipped,
        coalesce(t.received, 0) AS received, coalesce(t.received_due, 0) AS received_due,
        coalesce(t.consumed, 0) AS consumed, coalesce(t.re_exported, 0) AS re_exported,
        coalesce(t.returned, 0) AS returned, coalesce(t.lost, 0) AS lost,
        coalesce(t.consumed, 0) + coalesce(t.re_exported, 0) + coalesce(t.returned, 0) + coalesce(t.lost, 0) AS out,
        d.declared_on_hand, d.declared_at, d.declared_explains, d.out_at_declared,
        coalesce(t.last_movement_at, l.shipped_at) AS since
    FROM lots l
    LEFT JOIN totals t ON t.trace_id = l.trace_id AND t.lot_id = l.lot_id
    LEFT JOIN declared d ON d.trace_id = l.trace_id AND d.lot_id = l.lot_id)
SELECT trace_id, lot_id, parent_lot_id, origin, opened_by, unit, holder, since,
    CAST(shipped AS DECIMAL(38, 12)) AS shipped,
    CAST(greatest(0, shipped - received) AS DECIMAL(38, 12)) AS in_transit,
    CAST(received AS DECIMAL(38, 12)) AS received,
    CAST(consumed AS DECIMAL(38, 12)) AS consumed,
    CAST(re_exported AS DECIMAL(38, 12)) AS re_exported,
    CAST(returned AS DECIMAL(38, 12)) AS returned,
    CAST(lost AS DECIMAL(38, 12)) AS lost,
    CAST(received - out AS DECIMAL(38, 12)) AS on_hand,
    CAST(declared_on_hand AS DECIMAL(38, 12)) AS declared_on_hand,
    CAST(greatest(0, received_due - out - CASE WHEN declared_on_hand IS NULL THEN 0
                  ELSE greatest(0, declared_explains - (out - out_at_declared)) END) AS DECIMAL(38, 12))
        AS unaccounted
FROM joined;
"""


@dataclass(frozen=True)
class DuckDBRun:
    lots: dict[tuple[str, str], dict[str, Any]]
    digest_ties: list[str]
    digest_undecided: list[str]
    reports: int
    lines: int
    load_cpu_s: float
    query_cpu_s: float
    load_wall_s: float
    query_wall_s: float


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process: DuckDB's too
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _connect(threads: int | None) -> Any:
    import duckdb

    db = duckdb.connect(":memory:")
    db.execute("SET TimeZone = 'UTC'")  # interval arithmetic on TIMESTAMPTZ, as Python's on aware datetimes
    if threads:
        db.execute(f"SET threads = {int(threads)}")
    db.execute(UNITS_SQL)
    db.execute(CONVERT_SQL)
    for statement in _statements(DIGEST_SQL):
        db.execute(statement)
    return db


def _compute(db: Any, clock: datetime) -> list[tuple[Any, ...]]:
    """Every lot's account from the table ``reports``: ACCOUNT_SQL, then its rows."""
    for statement in _statements(ACCOUNT_SQL):
        if "$clock" in statement:
            db.execute(statement, {"clock": clock})
        else:
            db.execute(statement)
    return db.execute(f"SELECT trace_id, lot_id, {', '.join(COMPARED_COLUMNS)} FROM accounts").fetchall()


def duckdb_accounts(jsonl: Path, clock: datetime, *, threads: int | None = None) -> DuckDBRun:
    """Load ``jsonl`` into an in-memory DuckDB and compute every lot's account."""
    db = _connect(threads)
    try:
        cpu0, wall0 = _cpu(), time.perf_counter()
        db.execute(LOAD_SQL, {"path": str(jsonl)})
        db.execute(REPORTS_SQL)
        cpu1, wall1 = _cpu(), time.perf_counter()
        rows = _compute(db, clock)
        cpu2, wall2 = _cpu(), time.perf_counter()
        ties = [r[0] for r in db.execute("SELECT event_id FROM digest_ties ORDER BY event_id").fetchall()]
        undecided = [r[0] for r in db.execute(
            "SELECT DISTINCT event_id FROM tie_digests WHERE digest IS NULL ORDER BY event_id").fetchall()]
        reports = db.execute("SELECT count(*) FROM reports").fetchone()[0]
        lines = db.execute("SELECT count(*) FROM lines").fetchone()[0]
    finally:
        db.close()
    lots = {(r[0], r[1]): dict(zip(COMPARED_COLUMNS, r[2:])) for r in rows}
    return DuckDBRun(lots, ties, undecided, reports, lines, cpu1 - cpu0, cpu2 - cpu1, wall1 - wall0, wall2 - wall1)


def _statements(sql: str) -> list[str]:
    """The script's statements (no ';' inside a literal in ours)."""
    out = []
    for part in sql.split(";"):
        body = "\n".join(line for line in part.splitlines() if not line.strip().startswith("--")).strip()
        if body:
            out.append(body)
    return out


# -- the ledger's side ------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRun:
    lots: dict[tuple[str, str], dict[str, Any]]
    ingest_cpu_s: float
    ingest_wall_s: float
    replay_cpu_s: float | None
    replay_wall_s: float | None
    whereabouts_cpu_s: float
    clock: datetime
    ingest_summary: dict[str, Any]


def _ledger(args: list[str], home: Path) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run ``ledger ARGS`` with LEDGER_HOME=home; its CPU (user + system) and wall time."""
    env = {**os.environ, "LEDGER_HOME": str(home), "NO_COLOR": "1"}
    env.pop("LEDGER_LOG", None)
    env.pop("LEDGER_STORE", None)
    env.pop("LEDGER_POLICY", None)  # the default policy: the baseline's 90 days
    ledger = shutil.which("ledger", path=str(Path(sys.executable).parent)) or "ledger"
    cpu0, wall0 = _children_cpu(), time.perf_counter()
    done = subprocess.run([ledger, *args], env=env, capture_output=True, text=True, timeout=LEDGER_RUN_TIMEOUT_S)
    cpu, wall = _children_cpu() - cpu0, time.perf_counter() - wall0
    if done.returncode != 0:
        raise SystemExit(f"ledger {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done, cpu, wall


def ledger_accounts(jsonl: Path, home: Path, *, replay: bool = True) -> LedgerRun:
    """``ledger ingest --trust-recorded-at`` (with projection), ``ledger replay``,
    then ``ledger whereabouts --json``, each timed by its CPU."""
    done, ingest_cpu, ingest_wall = _ledger(["ingest", str(jsonl), "--trust-recorded-at", "--json"], home)
    summary = json.loads(done.stdout)
    summary.pop("rejected", None)
    replay_cpu = replay_wall = None
    if replay:
        # In one process: the CPU of the rebuild itself, as the figures before
        # `--workers` (bench/parallel_replay.py measures what more buy in wall time).
        _done, replay_cpu, replay_wall = _ledger(["replay", "--json", "--workers", "1"], home)
    clock = datetime.now(timezone.utc)
    done, whereabouts_cpu, _wall = _ledger(["whereabouts", "--json"], home)
    rows = json.loads(done.stdout)["lots"]
    lots = {(r["trace_id"], r["lot_id"]): {c: r.get(c) for c in COMPARED_COLUMNS} for r in rows}
    return LedgerRun(lots, ingest_cpu, ingest_wall, replay_cpu, replay_wall, whereabouts_cpu, clock, summary)


# -- the digest rebuilt in SQL, against the ledger's ---------------------------------


def check_digests(jsonl: Path, log_path: Path) -> dict[str, Any]:
    """``digest_of`` for every lot report, against the digests the ledger's log
    stored for that event id (the tie-break is only as good as this)."""
    import sqlite3

    stored: dict[str, set[str]] = {}
    log = sqlite3.connect(f"file:{log_path}?mode=ro", uri=True)
    try:
        for event_id, digest in log.execute("SELECT event_id, digest FROM events"):
            stored.setdefault(event_id, set()).add(digest)
    finally:
        log.close()
    db = _connect(None)
    try:
        db.execute(LOAD_SQL, {"path": str(jsonl)})
        db.execute(REPORTS_SQL)
        rows = db.execute("SELECT event_id, digest_of(content) FROM reports").fetchall()
    finally:
        db.close()
    undecided = [e for e, d in rows if d is None]
    wrong = [e for e, d in rows if d is not None and d not in stored.get(e, ())]
    return {"lot_reports": len(rows), "equal_to_stored": len(rows) - len(undecided) - len(wrong),
            "undecided": len(undecided), "different": len(wrong), "first_different": wrong[:DIFFERENCES_SHOWN_MAX]}


# -- one new report -> its lot updated ------------------------------------------------

ONE_REPORT_PROBES = 5  # new reports, one at a time; the median counts
PROBE_AMOUNT = "0.001"


def _probe_reports(lots: dict[tuple[str, str], dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    """A small consumption by the holder of each of the first lots with stock on hand."""
    stamp = at.isoformat()
    chosen = [key for key in sorted(lots) if lots[key]["unit"] != "unit"
              and Decimal(lots[key]["on_hand"]) > Decimal(PROBE_AMOUNT)][:ONE_REPORT_PROBES]
    return [{"type": "consumed", "event_id": f"BENCH-ONE-{n}", "occurred_at": stamp, "recorded_at": stamp,
             "reporter": lots[key]["holder"], "trace_id": key[0], "lot_id": key[1],
             "quantity": {"amount": PROBE_AMOUNT, "unit": lots[key]["unit"]}, "end_use": "benchmark probe"}
            for n, key in enumerate(chosen)]


def one_report_update(jsonl: Path, home: Path, lots: dict[tuple[str, str], dict[str, Any]], clock: datetime,
                      *, threads: int | None = None) -> dict[str, Any]:
    """Issue 18's last row: a new report arrives; how long until its lot's account is current?

    The ledger, in process, on the store ``ledger ingest`` left: append the
    report to the log and project it (``ingest_lines`` + ``catch_up``, what
    ``ledger ingest`` does for one line, less the process start).  DuckDB,
    with the history already loaded: insert the line and recompute every
    lot (a batch engine has no incremental answer).  Both answers are
    checked: the lot's ``consumed`` grew by the probe's amount.
    """
    from consumers.log.embedded import EmbeddedLog
    from consumers.ingest import ingest_lines
    from consumers.projector import catch_up, utc_now
    from ledger.policy import Policy
    from projections.sqlite_store import SQLiteProjectionStore

    probes = _probe_reports(lots, clock)
    ledger_s: list[float] = []
    ledger_cpu_s: list[float] = []
    log = EmbeddedLog(home / "log.db")
    store = SQLiteProjectionStore(home / "projections.db")
    try:
        for probe in probes:
            cpu0, wall0 = _cpu(), time.perf_counter()
            report = ingest_lines([json.dumps(probe)], log, source="probe", clock=utc_now, trust_recorded_at=True)
            catch_up(log, store, policy=Policy())
            ledger_s.append(time.perf_counter() - wall0)
            ledger_cpu_s.append(_cpu() - cpu0)
            (row,) = store.lots(trace_id=probe["trace_id"], lot_id=probe["lot_id"])
            if report.accepted != 1 or Decimal(row["consumed"]) != (
                    Decimal(lots[probe["trace_id"], probe["lot_id"]]["consumed"]) + Decimal(PROBE_AMOUNT)):
                raise SystemExit(f"the ledger did not post probe {probe['event_id']}: {row}")
    finally:
        log.close()
        store.close()
    duck_s: list[float] = []
    duck_cpu_s: list[float] = []
    db = _connect(threads)
    try:
        db.execute(LOAD_SQL, {"path": str(jsonl)})
        db.execute(REPORTS_SQL)
        _compute(db, clock)
        for probe in probes:
            cpu0, wall0 = _cpu(), time.perf_counter()
            # The new line parsed on its own (the history stays parsed), then every lot again.
            db.execute("INSERT INTO reports " + REPORTS_SELECT.format(source="(SELECT CAST($json AS JSON) AS json)"),
                       {"json": json.dumps(probe)})
            rows = _compute(db, clock)
            duck_s.append(time.perf_counter() - wall0)
            duck_cpu_s.append(_cpu() - cpu0)
            account = next(r for r in rows if (r[0], r[1]) == (probe["trace_id"], probe["lot_id"]))
            consumed = account[2 + COMPARED_COLUMNS.index("consumed")]
            if consumed != Decimal(lots[probe["trace_id"], probe["lot_id"]]["consumed"]) + Decimal(PROBE_AMOUNT):
                raise SystemExit(f"DuckDB did not post probe {probe['event_id']}: consumed {consumed}")
    finally:
        db.close()
    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    ledger_median, duck_median = median(ledger_s), median(duck_s)
    ledger_cpu, duck_cpu = median(ledger_cpu_s), median(duck_cpu_s)
    return {
        "probes": len(probes),
        "ledger_append_and_project_ms": [round(x * 1000, 1) for x in ledger_s],
        "ledger_cpu_ms": [round(x * 1000, 1) for x in ledger_cpu_s],
        "duckdb_recompute_all_ms": [round(x * 1000, 1) for x in duck_s],
        "duckdb_cpu_ms": [round(x * 1000, 1) for x in duck_cpu_s],
        "ledger_median_ms": round(ledger_median * 1000, 1),
        "duckdb_median_ms": round(duck_median * 1000, 1),
        "ledger_faster_x": round(duck_median / ledger_median, 1) if ledger_median else None,
        # Wall time includes the log's fsync (synchronous=FULL) and waiting for a
        # core on a shared machine; CPU time is the work each did.
        "ledger_cpu_median_ms": round(ledger_cpu * 1000, 1),
        "duckdb_cpu_median_ms": round(duck_cpu * 1000, 1),
        "ledger_faster_x_by_cpu": round(duck_cpu / ledger_cpu, 1) if ledger_cpu else None,
        "target_faster_x_min": 100,
    }


# -- the comparison ----------------------------------------------------------------


def _same(column: str, ours: Any, theirs: Any) -> bool:
    if ours is None or theirs is None:
        return ours is None and theirs is None
    if column in QUANTITY_COLUMNS:
        return Decimal(ours) == Decimal(theirs)
    if column == "since":
        theirs_at = datetime.fromisoformat(theirs.replace("Z", "+00:00"))
        return ours == theirs_at
    return ours == theirs


def _show(value: Any) -> Any:
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f") if value else "0"
        return text
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def compare_lots(duck: dict[tuple[str, str], dict[str, Any]],
                 ledger: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """Lot by lot, column by column: how many agree, and the first differences."""
    differences: list[dict[str, Any]] = []
    differing = 0
    equal = 0
    for key in sorted(duck.keys() & ledger.keys()):
        ours, theirs = duck[key], ledger[key]
        columns = [c for c in COMPARED_COLUMNS if not _same(c, ours[c], theirs[c])]
        if not columns:
            equal += 1
            continue
        differing += 1
        if len(differences) < DIFFERENCES_SHOWN_MAX:
            differences.append({"trace_id": key[0], "lot_id": key[1],
                                **{c: {"duckdb": _show(ours[c]), "ledger": theirs[c]} for c in columns}})
    only_duckdb = sorted(duck.keys() - ledger.keys())
    only_ledger = sorted(ledger.keys() - duck.keys())
    return {
        "compared_columns": list(COMPARED_COLUMNS),
        "lots_duckdb": len(duck),
        "lots_ledger": len(ledger),
        "lots_compared": equal + differing,
        "lots_equal": equal,
        "lots_differing": differing,
        "only_in_duckdb": [list(k) for k in only_duckdb[:DIFFERENCES_SHOWN_MAX]],
        "only_in_duckdb_count": len(only_duckdb),
        "only_in_ledger": [list(k) for k in only_ledger[:DIFFERENCES_SHOWN_MAX]],
        "only_in_ledger_count": len(only_ledger),
        "first_differences": differences,
        "match": differing == 0 and not only_duckdb and not only_ledger,
    }


# -- the run -------------------------------------------------------------------------


def _ratio(numerator: float | None, denominator: float) -> float | None:
    if numerator is None or denominator <= 0:
        return None
    return round(numerator / denominator, 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.generate import SIZES, data_paths, write
    from bench.run import Paths, emit

    if args.file is not None:  # any history, e.g. a hand-written one (tests/e2e/test_bench_smoke.py)
        label, jsonl = args.file.stem, args.file
        paths = Paths(args.data, label, args.seed, args.tag)
    else:
        label = args.size if args.events is None else str(args.events)
        paths = Paths(args.data, label, args.seed, args.tag)
        jsonl, expected = data_paths(args.data, label, args.seed)
        if not (jsonl.exists() and expected.exists()):
            write(args.events or SIZES[args.size], args.seed, jsonl, expected)
    args.data.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"duckdb-baseline-{label}-", dir=args.data))
    try:
        ledger = ledger_accounts(jsonl, scratch / "home", replay=not args.no_replay)
        # DuckDB twice (the faster counts, as the harness takes the faster baseline),
        # judged at the clock the ledger's whereabouts used.
        duck_runs = [duckdb_accounts(jsonl, ledger.clock, threads=args.threads) for _ in range(args.repeat)]
        duck = min(duck_runs, key=lambda r: r.load_cpu_s + r.query_cpu_s)
        check = compare_lots(duck.lots, ledger.lots)
        # Event ids whose first instant holds two versions: decided by the SQL digest,
        # or undecided (then the answer may differ from the ledger's: the check fails).
        check["digest_ties"] = duck.digest_ties[:DIFFERENCES_SHOWN_MAX]
        check["digest_ties_count"] = len(duck.digest_ties)
        check["digest_undecided"] = duck.digest_undecided[:DIFFERENCES_SHOWN_MAX]
        check["digest_undecided_count"] = len(duck.digest_undecided)
        if duck.digest_undecided:
            check["match"] = False
        digests: dict[str, Any] | str = "not checked (--no-digest-check)"
        if not args.no_digest_check:
            digests = check_digests(jsonl, scratch / "home" / "log.db")
            if digests["different"]:  # the tie-break would not be the ledger's
                check["match"] = False
        one_report: dict[str, Any] | str = "not measured (--no-one-report)"
        if check["match"] and not args.no_one_report:
            one_report = one_report_update(jsonl, scratch / "home", ledger.lots, ledger.clock,
                                           threads=args.threads)
        elif not check["match"]:
            one_report = "not measured: the accounts differ"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    duck_cpu = duck.load_cpu_s + duck.query_cpu_s
    result = {
        "file": str(jsonl),
        "lines": duck.lines,
        "lot_reports": duck.reports,
        "clock": ledger.clock.isoformat(),
        "duckdb": {
            "version": _duckdb_version(),
            "threads": args.threads or "default (one per core)",
            "cpu_s": round(duck_cpu, 3),
            "load_cpu_s": round(duck.load_cpu_s, 3),
            "query_cpu_s": round(duck.query_cpu_s, 3),
            "wall_s": round(duck.load_wall_s + duck.query_wall_s, 3),
            "runs_cpu_s": [round(r.load_cpu_s + r.query_cpu_s, 3) for r in duck_runs],
        },
        "ledger": {
            "ingest_cpu_s": round(ledger.ingest_cpu_s, 3),
            "ingest_wall_s": round(ledger.ingest_wall_s, 3),
            "replay_cpu_s": None if ledger.replay_cpu_s is None else round(ledger.replay_cpu_s, 3),
            "replay_wall_s": None if ledger.replay_wall_s is None else round(ledger.replay_wall_s, 3),
            "whereabouts_cpu_s": round(ledger.whereabouts_cpu_s, 3),
            "ingest": ledger.ingest_summary,
        },
        "ratios": {
            "ledger_replay_cpu_vs_duckdb": _ratio(ledger.replay_cpu_s, duck_cpu),
            "ledger_ingest_cpu_vs_duckdb": _ratio(ledger.ingest_cpu_s, duck_cpu),
            "targets": {"replay_max": 2.0, "ingest_max": 4.0},
        },
        "one_report": one_report,
        "digests": digests,
        "check": check,
    }
    return emit(paths, "duckdb", result)


def _duckdb_version() -> str:
    import duckdb

    return duckdb.__version__


def parser() -> argparse.ArgumentParser:
    from bench.generate import SIZES

    p = argparse.ArgumentParser(prog="python -m bench.duckdb_baseline",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=list(SIZES), default="100k")
    p.add_argument("--events", type=int, help="a history of about N reports (overrides --size), "
                                              "as `bench.generate --events N`")
    p.add_argument("--file", type=Path, help="any JSON Lines history instead of a generated one "
                                            "(results named after its stem)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
    p.add_argument("--tag", default="", help="suffix of the results file name")
    p.add_argument("--threads", type=int, help="DuckDB's threads (default: one per core)")
    p.add_argument("--repeat", type=int, default=2, help="DuckDB runs; the one with least CPU counts")
    p.add_argument("--no-replay", action="store_true", help="skip `ledger replay` (only ingest and compare)")
    p.add_argument("--no-digest-check", action="store_true",
                   help="skip comparing the SQL content digest of every lot report with the ledger's stored one")
    p.add_argument("--no-one-report", action="store_true",
                   help="skip the one-new-report comparison (ledger append + project vs DuckDB recompute)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = run(args)
    check = result["check"]
    print(f"lots compared {check['lots_compared']}, equal {check['lots_equal']}, differing "
          f"{check['lots_differing']}, only in DuckDB {check['only_in_duckdb_count']}, only in the ledger "
          f"{check['only_in_ledger_count']}", file=sys.stderr)
    if not check["match"]:
        print("DuckDB's accounts differ from the ledger's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
