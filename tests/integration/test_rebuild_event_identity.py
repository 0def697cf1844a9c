"""A rebuild trace by trace and a catch-up in offset order agree on a history
where one event id is reported in two traces (ledger/identity.py).

The benchmark generator's history, with two such collisions added: in one
the trace recorded first comes first in the log, in the other last; so some
chunking puts the losing trace in an earlier chunk than the winner, and the
winner's chunk must recompute it.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bench.generate import Summary, generate
from builders import exported, received, stamp
from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.projector import catch_up, rebuild
from ledger.policy import Policy
from projections.sqlite_store import SQLiteProjectionStore

CLOCK = datetime(2026, 11, 23, tzinfo=timezone.utc)
POLICY = Policy()


def _pair(winner: str, loser: str, event_id: str) -> tuple[list[str], list[str]]:
    """(the winner trace's lines, the loser trace's lines): both report ``event_id``."""
    def lines(trace: str, recorded: str) -> list[str]:
        lot = f"{trace}-L"
        reports = [stamp(exported(lot=lot, trace=trace, event_id=f"{trace}.export"), "2019-07-10T12:00:00Z"),
                   stamp(received(lot=lot, trace=trace, event_id=event_id), recorded)]
        return [r.model_dump_json(exclude_none=True) for r in reports]
    return lines(winner, "2019-07-15T12:00:00Z"), lines(loser, "2019-07-16T12:00:00Z")


def _history() -> list[str]:
    lines = list(generate(3_000, 11, Summary()))
    win_1, lose_1 = _pair("TR-ID-A", "TR-ID-B", "SHARED-1")  # winner first in the log and by id
    win_2, lose_2 = _pair("TR-ID-Z", "TR-ID-Y", "SHARED-2")  # winner last in the log and by id
    return [*win_1, *lines[:1500], *lose_1, *lose_2, *lines[1500:], *win_2]


def _projections(store: SQLiteProjectionStore):
    standing = sorted((a["alert_id"], a["kind"], a["quantity"]) for a in store.standing_alerts(CLOCK))
    return store.fingerprint(), standing


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("identity")
    log = EmbeddedLog(home / "log.db")
    ingest_lines(_history(), log, source="test", clock=lambda: CLOCK, trust_recorded_at=True)
    store = SQLiteProjectionStore(home / "catch-up.db")
    catch_up(log, store, policy=POLICY, clock=lambda: CLOCK, batch_max=97)
    reference = _projections(store)
    lost = {(a["trace_id"], a["event_ids"][0]) for a in store.standing_alerts(CLOCK)
            if a["kind"] == "conflicting_report" and a["trace_id"].startswith("TR-ID-")}
    lots = {r["trace_id"]: r["received"] for r in store.lots() if r["trace_id"].startswith("TR-ID-")}
    store.close()
    return log, reference, lost, lots


def test_catch_up_counts_only_the_first_recorded_version(history):
    _log, _reference, lost, lots = history
    assert lost == {("TR-ID-B", "SHARED-1"), ("TR-ID-Y", "SHARED-2")}
    assert lots == {"TR-ID-A": "100", "TR-ID-B": "0", "TR-ID-Z": "100", "TR-ID-Y": "0"}


@pytest.mark.parametrize("chunk_records", [1, 40, 1_000, 100_000])
def test_a_rebuild_in_chunks_stores_what_catch_up_stores_with_a_collision(history, tmp_path, chunk_records):
    log, reference, _lost, _lots = history
    store = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    rebuild(log, store, policy=POLICY, clock=lambda: CLOCK, chunk_records=chunk_records)
    assert _projections(store) == reference
    store.close()


def test_a_catch_up_in_one_batch_stores_the_same(history, tmp_path):
    log, reference, _lost, _lots = history
    store = SQLiteProjectionStore(tmp_path / "one-batch.db")
    catch_up(log, store, policy=POLICY, clock=lambda: CLOCK, batch_max=100_000)
    assert _projections(store) == reference
    store.close()
