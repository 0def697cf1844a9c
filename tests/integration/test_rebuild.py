"""A rebuild from position 0 that folds each trace once gives the projections
a catch-up in offset order gives.

``consumers.projector.rebuild`` reads the embedded log license reports
first, then trace by trace, in chunks of whole traces, and records the
offsets at the end.  The stored reports, lots, alert steps and licenses (the
store's fingerprint) and the standing alerts must be those of
``catch_up``, however the log is cut; and a rebuild interrupted anywhere must
end, after a restart, exactly where an uninterrupted one does.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.generate import Summary, generate
from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.log_check import verify_log
from consumers.projector import catch_up, rebuild
from ledger.policy import Policy
from projections.sqlite_store import SQLiteProjectionStore

CLOCK = datetime(2026, 11, 23, tzinfo=timezone.utc)
POLICY = Policy()
STORY = Path(__file__).resolve().parents[2] / "examples" / "story-2019.jsonl"


def _log(tmp_path: Path, lines: list[str]) -> EmbeddedLog:
    log = EmbeddedLog(tmp_path / "log.db")
    ingest_lines(lines, log, source="test", clock=lambda: CLOCK, trust_recorded_at=True)
    return log


def _projections(store: SQLiteProjectionStore) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    standing = sorted((a["alert_id"], a["kind"], a["quantity"]) for a in store.standing_alerts(CLOCK))
    return store.fingerprint(), standing


def _caught_up(tmp_path: Path, log: EmbeddedLog, batch_max: int) -> tuple[dict[str, str], list]:
    store = SQLiteProjectionStore(tmp_path / f"catch-up-{batch_max}.db")
    catch_up(log, store, policy=POLICY, clock=lambda: CLOCK, batch_max=batch_max)
    try:
        return _projections(store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[EmbeddedLog, tuple[dict[str, str], list]]:
    """The benchmark generator's history (licenses, ship-backs, retractions,
    conflicts, late reports), ingested, and what catch_up makes of it."""
    home = tmp_path_factory.mktemp("generated")
    log = _log(home, list(generate(3_000, 11, Summary())))
    return log, _caught_up(home, log, batch_max=97)


@pytest.mark.parametrize("chunk_records", [1, 40, 1_000, 100_000])
def test_a_rebuild_in_chunks_of_whole_traces_stores_what_catch_up_stores(generated, tmp_path, chunk_records):
    log, reference = generated
    fingerprint, standing = reference
    assert len(standing) > 50, "a history with few alerts would prove little"

    store = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    totals = rebuild(log, store, policy=POLICY, clock=lambda: CLOCK, chunk_records=chunk_records)

    assert totals.records == log.count()
    assert _projections(store) == reference
    # Every record is accounted for in the offsets: a catch-up afterwards has nothing to do.
    assert store.tracked_offsets(log.name) == {0: log.end_offsets()[0] - 1}
    assert catch_up(log, store, policy=POLICY, clock=lambda: CLOCK).records == 0
    store.close()


def test_a_rebuild_trusting_the_digests_it_checked_stores_what_catch_up_stores(generated, tmp_path):
    # `ledger replay`: the log checked against its stored digests, then
    # rebuilt from the same snapshot without computing them again.
    log, reference = generated
    store = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    with log.snapshot():
        assert verify_log(log, contract=False).problem_count == 0
        rebuild(log, store, policy=POLICY, clock=lambda: CLOCK, chunk_records=1_000, digests_checked=True)
    assert _projections(store) == reference
    store.close()


def test_the_story_rebuilt_trace_by_trace_is_the_story_caught_up(tmp_path):
    log = _log(tmp_path, STORY.read_text().splitlines())
    store = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    rebuild(log, store, policy=POLICY, clock=lambda: CLOCK, chunk_records=3)
    assert _projections(store) == _caught_up(tmp_path, log, batch_max=4)
    store.close()


class _Interrupted(Exception):
    pass


class _Wrapped:
    """The embedded log, with its grouped read changed by a subclass."""

    def __init__(self, log: EmbeddedLog):
        self._log = log
        self.name, self.reads_by_key = log.name, True

    def __getattr__(self, name):
        return getattr(self._log, name)


class _DiesAfter(_Wrapped):
    """The embedded log, whose grouped read dies after ``n`` records."""

    def __init__(self, log: EmbeddedLog, n: int):
        super().__init__(log)
        self._n = n

    def read_by_key(self, below):
        for i, record in enumerate(self._log.read_by_key(below)):
            if i == self._n:
                raise _Interrupted(f"killed after {i} records")
            yield record


@pytest.mark.parametrize("dies_after", [0, 333, 2_000])
def test_a_rebuild_interrupted_anywhere_ends_after_a_restart_as_if_it_had_not_been(generated, tmp_path,
                                                                                  dies_after):
    log, reference = generated
    path = tmp_path / "rebuilt.db"
    store = SQLiteProjectionStore(path)
    with pytest.raises(_Interrupted):
        rebuild(_DiesAfter(log, dies_after), store, policy=POLICY, clock=lambda: CLOCK, chunk_records=100)
    # Whole chunks were committed, no offsets: nothing says they are applied...
    assert store.tracked_offsets(log.name) == {}
    store.close()

    # ...so the restart applies the log from 0, and what is held comes back as duplicates.
    store = SQLiteProjectionStore(path)
    totals = rebuild(log, store, policy=POLICY, clock=lambda: CLOCK)
    assert totals.records == log.count()
    assert _projections(store) == reference
    store.close()


class _OvertakenAtTheEnd(_Wrapped):
    """The embedded log; when its grouped read is done, another projector
    (a catch-up on another handle to the same store file) applies the whole
    log and records its offsets before the rebuild records its own."""

    def __init__(self, log: EmbeddedLog, store_path: Path):
        super().__init__(log)
        self._store_path = store_path

    def read_by_key(self, below):
        yield from self._log.read_by_key(below)
        other = SQLiteProjectionStore(self._store_path)
        catch_up(self._log, other, policy=POLICY, clock=lambda: CLOCK)
        other.close()


def test_a_rebuild_overtaken_by_another_projector_ends_as_the_reference(generated, tmp_path):
    log, reference = generated
    path = tmp_path / "rebuilt.db"
    store = SQLiteProjectionStore(path)
    totals = rebuild(_OvertakenAtTheEnd(log, path), store, policy=POLICY, clock=lambda: CLOCK, chunk_records=500)
    assert totals.records == log.count()
    assert store.tracked_offsets(log.name) == {0: log.end_offsets()[0] - 1}
    assert _projections(store) == reference
    store.close()
