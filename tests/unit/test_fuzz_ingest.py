"""Fuzzing ingest (issue 14): whatever mix of good reports and reports broken
the ways bench/fuzz.py breaks them, ingest and the projection never crash,
every good line is recorded and no bad line is.  `python -m bench.fuzz`
runs the same lines at 100,000 (docs/OPERATIONS.md, "Fuzzing and faults")."""

from __future__ import annotations

import io
import json
import random
import sys
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

from bench.fuzz import BAD_KINDS, GOOD_KINDS, judge, log_record, make_line  # noqa: E402
from consumers.log.embedded import EmbeddedLog  # noqa: E402
from consumers.ingest import ingest_lines, read_lines  # noqa: E402
from consumers.projector import catch_up  # noqa: E402
from ledger.policy import Policy  # noqa: E402
from projections.sqlite_store import SQLiteProjectionStore  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
# Over-long lines are a megabyte each: rarely, so the test stays fast.
KINDS = [*GOOD_KINDS, *(k for k in BAD_KINDS if k != "too_long")]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 2**32)), min_size=1, max_size=30),
       st.booleans())
def test_no_crash_no_good_line_lost_no_bad_line_accepted(picks, with_a_long_line):
    lines = [make_line(kind, random.Random(seed), number) for number, (kind, seed) in enumerate(picks, 1)]
    if with_a_long_line:
        lines.insert(len(lines) // 2, make_line("too_long", random.Random(0), len(lines) + 1))
    data = b"\n".join(item.text for item in lines) + b"\n"
    log = EmbeddedLog(":memory:")
    store = SQLiteProjectionStore(":memory:")

    report = ingest_lines(read_lines(io.BytesIO(data)), log, source="fuzz.jsonl", clock=lambda: NOW)
    projected = catch_up(log, store, policy=Policy(), clock=lambda: NOW)

    recorded = {json.loads(r.value)["event_id"] for r in log.read(0, 0, len(lines) + 1)}
    result = judge(lines, recorded, crashes=0)
    assert (result.good_lost, result.bad_accepted) == (0, 0), (result.lost_kinds, result.accepted_kinds)
    assert (report.lines, report.accepted, report.rejected) == (len(lines), result.good, result.bad)
    assert all(p.field != "(event)" for r in report.rejects for p in r.problems)
    assert (projected.records, projected.dead_letters) == (result.good, 0)
    store.close()
    log.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 2**32)), min_size=1, max_size=30))
def test_the_projector_dead_letters_every_bad_record_in_the_log_and_applies_every_good_one(picks):
    # A producer that bypasses ingest (Kafka does not validate) writes the
    # same lines to the log: the good ones stamped, the bad ones as they are
    # with a recorded_at (bench.fuzz.log_record).
    lines = [make_line(kind, random.Random(seed), number) for number, (kind, seed) in enumerate(picks, 1)]
    log = EmbeddedLog(":memory:")
    store = SQLiteProjectionStore(":memory:")
    log.append([log_record(item, NOW) for item in lines])

    projected = catch_up(log, store, policy=Policy(), clock=lambda: NOW)

    good = sum(item.good for item in lines)
    assert (projected.records, projected.dead_letters) == (len(lines), len(lines) - good)
    assert len(store.all_versions()) == good  # every good report is a trace of its own
    flagged = {a["trace_id"] for a in store.standing_alerts(NOW) if a["kind"] == "quarantined"}
    assert flagged == {f"TR-{item.event_id}" for item in lines if not item.good}
    store.close()
    log.close()


# The bench command itself (python -m bench.fuzz) at a small size: tests/e2e/test_bench_smoke.py.
