"""A rebuild in several processes stores what a catch-up in offset order stores.

``consumers.parallel_rebuild`` cuts the log's traces into one range of keys
per worker; each worker rebuilds its range into a store of its own, and the
shares are copied into one store.  Two things cross traces, and so may cross
shares; both are in this history, each with its traces at the two ends of
the key order (``AAA-...`` before the generator's ``TR-...``, ``ZZZ-...``
after), so that every cut puts them in different shares:

- a license ceiling exceeded only by the shipments of two traces together
  (100 kg and 80 kg under a 150 kg ceiling);
- one event id reported in two traces, the first recorded winning: once in
  the first share's trace, once in the last's.

The stored reports, lots, alert steps and licenses (the fingerprint) and the
standing alerts must be catch-up's, with any number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from datetime import datetime, timezone

import pytest

from bench.generate import Summary, generate
from builders import exported, license_granted, received, stamp
from consumers.ingest import ingest_lines
from consumers.log.embedded import EmbeddedLog
from consumers.parallel_rebuild import (PARALLEL_RECORDS_MIN, WORKER_CHUNK_RECORDS, ParallelRebuild, Share, _work,
                                       rebuild_in_parallel, workers_for)
from consumers.projector import catch_up
from ledger.policy import Policy
from projections.sqlite_store import SQLiteProjectionStore

CLOCK = datetime(2026, 11, 23, tzinfo=timezone.utc)
POLICY = Policy()
CEILING_LICENSE = "JP-IND-2019-CEIL"


def _lines(*events) -> list[str]:
    return [e.model_dump_json(exclude_none=True) for e in events]


def _ceiling_across_shares() -> list[str]:
    grant = license_granted(CEILING_LICENSE, "2019-07-01", ceiling={"amount": "150", "unit": "kg"},
                            recorded_at="2019-07-01T00:00:00Z")
    first = exported("AAA-CEIL-L", "100", trace="AAA-CEIL", at="2019-07-10", license_id=CEILING_LICENSE,
                     end_user="KR-SEMI", event_id="AAA-CEIL.export", recorded_at="2019-07-10T12:00:00Z")
    second = exported("ZZZ-CEIL-L", "80", trace="ZZZ-CEIL", at="2019-08-10", license_id=CEILING_LICENSE,
                      end_user="KR-SEMI", event_id="ZZZ-CEIL.export", recorded_at="2019-08-10T12:00:00Z")
    return _lines(grant, first, second)


def _one_event_id_in_two_traces(winner: str, loser: str, event_id: str) -> list[str]:
    """Both traces report a receipt with ``event_id``; ``winner``'s is recorded first."""
    def reports(trace: str, recorded: str) -> list[str]:
        lot = f"{trace}-L"
        return _lines(stamp(exported(lot=lot, trace=trace, event_id=f"{trace}.export"), "2019-07-10T12:00:00Z"),
                      stamp(received(lot=lot, trace=trace, event_id=event_id), recorded))
    return [*reports(winner, "2019-07-15T12:00:00Z"), *reports(loser, "2019-07-16T12:00:00Z")]


def _history() -> list[str]:
    lines = list(generate(3_000, 11, Summary()))
    return [*_ceiling_across_shares(), *lines[:1500],
            *_one_event_id_in_two_traces("AAA-ID-WINS", "ZZZ-ID-LOSES", "SHARED-1"),
            *_one_event_id_in_two_traces("ZZZ-ID-WINS", "AAA-ID-LOSES", "SHARED-2"),
            *lines[1500:]]


def _projections(store: SQLiteProjectionStore):
    standing = sorted((a["alert_id"], a["kind"], a["quantity"]) for a in store.standing_alerts(CLOCK))
    return store.fingerprint(), standing


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("parallel")
    log = EmbeddedLog(home / "log.db")
    ingest_lines(_history(), log, source="test", clock=lambda: CLOCK, trust_recorded_at=True)
    store = SQLiteProjectionStore(home / "catch-up.db")
    catch_up(log, store, policy=POLICY, clock=lambda: CLOCK, batch_max=97)
    reference = _projections(store)
    store.close()
    return log, reference


def test_the_history_crosses_every_cut(history):
    log, (_fingerprint, standing) = history
    kinds = {(alert_id.split(":")[0], kind) for alert_id, kind, _q in standing}
    assert any(kind == "license_ceiling" for _a, kind in kinds)
    assert any(kind == "conflicting_report" for _a, kind in kinds)
    for workers in (2, 3):
        shares = log.key_ranges(log.end_offsets(), workers)
        assert len(shares) == workers
        assert shares[0][0] <= "AAA-CEIL" < shares[0][1] and "ZZZ-CEIL" >= shares[-1][0]


@pytest.mark.parametrize("workers", [2, 3])
def test_a_rebuild_in_shares_stores_what_catch_up_stores(history, tmp_path, workers):
    log, reference = history
    store = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    totals = rebuild_in_parallel(log, store, workers=workers, policy=POLICY, clock=lambda: CLOCK, chunk_records=500)

    assert totals.records == log.count()
    assert _projections(store) == reference
    # Every record is accounted for in the offsets: a catch-up afterwards has nothing to do.
    assert store.tracked_offsets(log.name) == {0: log.end_offsets()[0] - 1}
    assert catch_up(log, store, policy=POLICY, clock=lambda: CLOCK).records == 0
    # The shares are gone.
    assert sorted(p.name for p in tmp_path.iterdir() if ".share-" in p.name) == []
    store.close()


def test_the_ceiling_is_counted_over_both_shares(history, tmp_path):
    log, _reference = history
    store = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    rebuild_in_parallel(log, store, workers=2, policy=POLICY, clock=lambda: CLOCK)
    ceilings = [a for a in store.standing_alerts(CLOCK)
                if a["kind"] == "license_ceiling" and a["trace_id"] == f"license:{CEILING_LICENSE}"]
    assert [(a["quantity"], a["unit"]) for a in ceilings] == [("30", "kg")]
    store.close()


def test_the_first_recorded_version_wins_across_shares(history, tmp_path):
    log, _reference = history
    store = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    rebuild_in_parallel(log, store, workers=2, policy=POLICY, clock=lambda: CLOCK)
    received_by_trace = {r["trace_id"]: r["received"] for r in store.lots()
                         if r["trace_id"].endswith(("-ID-WINS", "-ID-LOSES"))}
    assert received_by_trace == {"AAA-ID-WINS": "100", "ZZZ-ID-LOSES": "0", "ZZZ-ID-WINS": "100",
                                 "AAA-ID-LOSES": "0"}
    store.close()


def test_a_log_committed_to_during_the_rebuild_is_rebuilt_in_this_process(history, tmp_path):
    # The workers' snapshots may then hold other bytes than those checked:
    # their shares are dropped, and the rebuild runs in the caller's snapshot.
    log, reference = history
    store = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    with ParallelRebuild(log, store, workers=2, policy=POLICY, clock=lambda: CLOCK, digests_checked=True,
                         log_changed=lambda: True) as rebuilding:
        totals = rebuilding.finish()
    assert totals.batches == 2  # the license reports, then one chunk of every trace: rebuild's, not two shares'
    assert _projections(store) == reference
    store.close()


def test_a_commit_to_the_log_is_seen_by_the_watch(tmp_path):
    log = EmbeddedLog(tmp_path / "log.db")
    with log.commits_watched() as changed:
        assert not changed()
        other = EmbeddedLog(tmp_path / "log.db")  # another writer: ingest beside the replay
        ingest_lines(_ceiling_across_shares(), other, source="test", clock=lambda: CLOCK, trust_recorded_at=True)
        other.close()
        assert changed()
    log.close()


def test_a_rebuild_left_unfinished_leaves_no_share_and_nothing_in_the_store(history, tmp_path):
    log, _reference = history
    store = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    with ParallelRebuild(log, store, workers=2, policy=POLICY, clock=lambda: CLOCK):
        pass  # the check found damage, or ^C
    assert [p.name for p in tmp_path.iterdir() if ".share-" in p.name] == []
    assert store.lots() == [] and store.tracked_offsets(log.name) == {}
    store.close()


def test_auto_is_one_process_for_a_small_log_and_one_per_core_for_a_large_one(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    assert workers_for(None, PARALLEL_RECORDS_MIN - 1) == 1
    assert workers_for(None, PARALLEL_RECORDS_MIN) == 4
    assert workers_for(3, 10) == 3


def test_a_worker_whose_replay_is_gone_stops_at_its_first_chunk_and_removes_its_share(history, tmp_path):
    # The replay was killed before this worker even started: the worker's
    # parent is no longer the pid the replay gave it.  It rebuilds nothing,
    # says it stopped, and leaves no share behind.
    log, _reference = history
    store = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    keys = log.key_ranges(log.end_offsets(), 2)[1]
    share = Share(1, str(log.path), str(tmp_path / "rebuilt.db.share-1"), keys, log.end_offsets(), [], POLICY,
                  WORKER_CHUNK_RECORDS, False)
    receiving, sending = multiprocessing.Pipe(duplex=False)
    gone = os.getppid() + 10**6  # no process: not this one's parent
    _work(share, multiprocessing.Array("q", 2, lock=False), multiprocessing.Value("b", 0, lock=False), gone, sending)

    assert receiving.recv() == ("stopped", None)
    assert [p.name for p in tmp_path.iterdir() if ".share-" in p.name] == []
    store.close()
