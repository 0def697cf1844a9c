"""Peak memory and time of one deadline sweep over many due alerts, on a
synthetic SQLite projection store (no history to generate or replay).

    python -m bench.sweep_memory [--alerts 150000] [--steps 2] [--page N] [--dir /tmp/sweep-memory]

Builds (once, kept in --dir) a store whose alert_steps hold --steps steps for
each of --alerts alerts, all due before the sweep's clock, rows inserted
directly.  Then sweeps a copy of it in a fresh process, twice:

- ``first``: nothing journaled yet, every alert is raised (a journal row and
  a status row each);
- ``closing``: the statuses already open and swept_until removed, as in the
  closing sweep of a rebuild, which journaled the alerts while projecting:
  every alert is read, none changes.

Each run prints the process's resident memory before the sweep and its peak
(VmHWM, Linux) after, the sweep's seconds and its transitions.  ``--page``
sets projections.sql_common.SWEEP_PAGE for the run; a page larger than
--alerts journals them all in one call, as the sweep did before it paged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

CLOCK = datetime(2026, 11, 1, tzinfo=timezone.utc)


def build(path: Path, alerts: int, steps: int) -> None:
    from projections.rows import STEP_COLUMNS, ts
    from projections.sqlite_store import SQLiteProjectionStore

    SQLiteProjectionStore(path)  # the schema
    import sqlite3

    db = sqlite3.connect(path)
    marks = ",".join("?" * len(STEP_COLUMNS))
    rows = []
    for n in range(alerts):
        alert_id = hashlib.sha256(f"unaccounted|TR-{n}|LOT-{n}|".encode()).hexdigest()[:24]
        for s in range(steps):
            due = CLOCK - timedelta(days=1 + (n % 300), minutes=s)
            rows.append((alert_id, ts(due), "unaccounted", "warning" if s else "critical", f"TR-{n:08d}",
                         f"LOT-{n:08d}-0", "KR-SEMI", str(30 + s), "kg",
                         f"30 kg of LOT-{n:08d}-0 held by KR-SEMI not accounted for after 90 days",
                         json.dumps([f"ev-{n:08d}-1", f"ev-{n:08d}-2"])))
        if len(rows) >= 50_000:
            db.executemany(f"INSERT INTO alert_steps VALUES ({marks})", rows)
            rows.clear()
    db.executemany(f"INSERT INTO alert_steps VALUES ({marks})", rows)
    db.commit()
    db.execute("ANALYZE")
    db.commit()
    db.close()


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sweep(path: Path, page: int | None) -> None:
    from projections import sql_common
    from projections.sqlite_store import SQLiteProjectionStore

    if page is not None:
        sql_common.SWEEP_PAGE = page

    store = SQLiteProjectionStore(path)
    before = rss_mb("VmRSS")
    start = time.perf_counter()
    written = store.sweep(CLOCK)
    seconds = time.perf_counter() - start
    print(json.dumps({"rss_before_mb": round(before, 1), "peak_mb": round(rss_mb("VmHWM"), 1),
                      "seconds": round(seconds, 2), "transitions": written}))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--alerts", type=int, default=150_000)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--page", type=int, help="SWEEP_PAGE (default: the module's)")
    p.add_argument("--dir", default="/tmp/sweep-memory")
    p.add_argument("--sweep", help=argparse.SUPPRESS)  # the child: sweep this store
    args = p.parse_args()
    if args.sweep:
        sweep(Path(args.sweep), args.page)
        return
    home = Path(args.dir)
    home.mkdir(parents=True, exist_ok=True)
    source = home / f"steps-{args.alerts}x{args.steps}.db"
    if not source.exists():
        build(source, args.alerts, args.steps)
    scratch = home / "scratch.db"
    for stale in home.glob("scratch.db*"):
        stale.unlink()
    shutil.copyfile(source, scratch)
    for case in ("first", "closing"):
        if case == "closing":
            import sqlite3

            db = sqlite3.connect(scratch)
            db.execute("DELETE FROM store_meta WHERE key = 'swept_until'")
            db.commit()
            db.close()
        child = [sys.executable, "-m", "bench.sweep_memory", "--sweep", str(scratch)]
        if args.page is not None:
            child += ["--page", str(args.page)]
        out = subprocess.run(child, check=True, stdout=subprocess.PIPE, text=True).stdout
        print(case, out.strip())


if __name__ == "__main__":
    main()
