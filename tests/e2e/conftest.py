"""End-to-end fixtures: the real `ledger` console script, run as a user runs it.

Every test gets a fresh LEDGER_HOME (the ``ledger_home`` fixture of
tests/conftest.py) and runs ``ledger`` in a subprocess, so what is tested is
what a compliance officer or an integrator types: arguments, exit status,
standard output and standard error.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

LEDGER = Path(sys.executable).parent / "ledger"
RUN_TIMEOUT_S = 120  # a bound on every `ledger` run; the slowest here takes a few seconds

# The large file: BIG_TRACES traces of ten reports each.
BIG_TRACES = 2000  # 20,000 reports


class LedgerCli:
    """``ledger`` in one LEDGER_HOME: run it, start it, look into its files."""

    def __init__(self, home: Path):
        self.home = home
        # Output as a program reading a pipe gets it: no terminal width, no colour.
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("LEDGER_LOG", "LEDGER_STORE", "LEDGER_POLICY", "COLUMNS", "NO_COLOR")}
        self.env["LEDGER_HOME"] = str(home)

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``ledger ARGS...`` to completion (bounded by RUN_TIMEOUT_S)."""
        return subprocess.run([str(LEDGER), *args], input=stdin, capture_output=True, text=True,
                              env=self.env, timeout=RUN_TIMEOUT_S)

    def start(self, *args: str, capture: bool = False) -> subprocess.Popen[bytes]:
        """Start ``ledger ARGS...`` without waiting (output discarded unless ``capture``)."""
        sink = subprocess.PIPE if capture else subprocess.DEVNULL
        return subprocess.Popen([str(LEDGER), *args], stdout=sink, stderr=sink, env=self.env)

    @property
    def log_db(self) -> Path:
        return self.home / "log.db"

    @property
    def store_db(self) -> Path:
        return self.home / "projections.db"

    def event_rows(self) -> tuple[int, int]:
        """(rows in the log's events table, distinct event ids among them)."""
        return _count(self.log_db, "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events")

    def tracked_offset(self) -> int:
        """The last log offset the projection store has applied (0: none)."""
        return _count(self.store_db, "SELECT COALESCE(MAX(notification_id), 0) FROM tracking "
                                     "WHERE application_name = 'embedded#0'")[0]

    def fingerprint(self) -> dict[str, str]:
        """The projection store's digest per read model (what `ledger replay` compares)."""
        from projections.sqlite_store import SQLiteProjectionStore

        store = SQLiteProjectionStore(self.store_db)
        try:
            return store.fingerprint()
        finally:
            store.close()


def _count(path: Path, sql: str) -> tuple[int, ...]:
    """Read a count from a database another process may be writing (or may
    never have created yet: then 0)."""
    if not path.exists():
        return (0, 0)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql).fetchone()
    except sqlite3.OperationalError:  # the table is not created yet
        return (0, 0)
    finally:
        db.close()


@pytest.fixture
def ledger(ledger_home: Path) -> LedgerCli:
    """``ledger`` in the test's fresh LEDGER_HOME."""
    return LedgerCli(ledger_home)


@pytest.fixture
def other_ledger(tmp_path: Path) -> LedgerCli:
    """``ledger`` in a second, independent home, for comparing two runs."""
    return LedgerCli(tmp_path / "other-home")


@pytest.fixture(scope="session")
def ledger_at() -> type[LedgerCli]:
    """``ledger_at(home)``: ``ledger`` in a home of your choosing (e.g. a session one)."""
    return LedgerCli


@pytest.fixture(scope="session")
def big_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 valid reports over 2,000 traces, every one stamped (recorded_at
    given), so two homes that ingest the file hold byte-identical reports."""
    path = tmp_path_factory.mktemp("big") / "reports.jsonl"
    write_reports(path, BIG_TRACES)
    return path


def write_reports(path: Path, traces: int) -> int:
    """Write ``traces`` traces of ten reports each; returns the line count.

    Each trace is the 2019 story in miniature: JP-FLUORO exports 100 kg to a
    Korean consignee, who receives it, consumes 60, re-exports 30 to China
    (received there: 20 consumed, 10 declared on hand), ships 5 back (the
    exporter confirms 5 and destroys them), and leaves 5 kg unexplained.
    """
    lines = 0
    with path.open("w", encoding="utf-8") as out:
        for n in range(traces):
            for report in _trace_reports(n):
                out.write(json.dumps(report, separators=(",", ":")) + "\n")
                lines += 1
    return lines


def _trace_reports(n: int) -> list[dict[str, object]]:
    trace, lot = f"TR-BIG-{n:05d}", f"BIG-{n:05d}"
    child, back = f"{lot}-CN", f"{lot}-R1"
    consignee = f"KR-FAB-{n % 7}"
    day = 1 + n % 27

    def report(kind: str, seq: int, lot_id: str, by: str, month: int, **body: object) -> dict[str, object]:
        return {
            "type": kind, "event_id": f"big-{n:05d}-{seq:02d}",
            "occurred_at": f"2019-{month:02d}-{day:02d}T10:00:00+09:00",
            "recorded_at": f"2019-{month:02d}-{day:02d}T12:00:00+09:00",
            "reporter": by, "trace_id": trace, "lot_id": lot_id, **body,
        }

    def kg(amount: str) -> dict[str, str]:
        return {"amount": amount, "unit": "kg"}

    return [
        report("exported", 1, lot, "JP-FLUORO", 1,
               exporter={"id": "JP-FLUORO", "country": "JP"}, consignee={"id": consignee, "country": "KR"},
               item={"id": "HF-UHP", "classification": "AG 1C350.25"}, quantity=kg("100")),
        report("received", 2, lot, consignee, 2, quantity=kg("100")),
        report("consumed", 3, lot, consignee, 3, quantity=kg("60"), end_use="wafer etching"),
        report("re_exported", 4, lot, consignee, 4, quantity=kg("30"), child_lot_id=child,
               consignee={"id": "CN-FAB-XIAN", "country": "CN"}),
        report("received", 5, child, "CN-FAB-XIAN", 5, quantity=kg("30")),
        report("consumed", 6, child, "CN-FAB-XIAN", 6, quantity=kg("20"), end_use="lithography"),
        report("stock_declared", 7, child, "CN-FAB-XIAN", 7, quantity=kg("10")),
        report("returned", 8, lot, consignee, 5, quantity=kg("5"), child_lot_id=back,
               consignee={"id": "JP-FLUORO", "country": "JP"}, reason="defective"),
        report("received", 9, back, "JP-FLUORO", 6, quantity=kg("5")),
        report("lost", 10, back, "JP-FLUORO", 7, quantity=kg("5"), disposition="destroyed",
               evidence="waste manifest"),
    ]


def read_tables(text: str) -> list[list[dict[str, str]]]:
    """The tables in ``ledger`` output, each a list of rows keyed by header.

    A table is a header line, a line of dashes (one run per column) and rows
    up to the next blank line; the dash runs give the column positions.
    """
    lines = text.splitlines()
    tables = []
    for i, line in enumerate(lines):
        if i == 0 or not line.strip() or set(line) - {"-", " "}:
            continue
        spans, start = [], None
        for j, ch in enumerate(line + " "):
            if ch == "-" and start is None:
                start = j
            elif ch != "-" and start is not None:
                spans.append((start, j))
                start = None
        spans[-1] = (spans[-1][0], None)  # the last column may run on

        def cells(row: str) -> list[str]:
            return [row[a:b].strip() if b else row[a:].strip() for a, b in spans]

        headers = cells(lines[i - 1])
        rows = []
        for row in lines[i + 1:]:
            if not row.strip():
                break
            rows.append(dict(zip(headers, cells(row))))
        tables.append(rows)
    return tables


@pytest.fixture
def tables():  # type: ignore[no-untyped-def]
    """``read_tables``: the tables printed by a ``ledger`` command."""
    return read_tables
