"""The embedded log writes a batch with one statement: receipts, offsets and
the digest header must be what one INSERT per record gave."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from consumers.log.embedded import EmbeddedLog
from ledger.ports import HEADER_DIGEST


def rec(event_id: str, digest: str, key: str = "TR-1") -> tuple[str, str, str, bytes]:
    return (event_id, digest, key, f'{{"event_id":"{event_id}","d":"{digest}"}}'.encode())


def test_a_batch_with_repeats_and_conflicts(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.db")
    try:
        first = log.append([rec("A", "a1"), rec("B", "b1"), rec("A", "a1"), rec("A", "a2"), rec("C", "c1", "TR-2")])
        assert [(r.event_id, r.outcome, r.offset) for r in first] == [
            ("A", "accepted", 1), ("B", "accepted", 2), ("A", "duplicate", 1), ("A", "conflict", 3),
            ("C", "accepted", 4),
        ]
        second = log.append([rec("B", "b1"), rec("D", "d1"), rec("B", "b2"), rec("D", "d1"), rec("A", "a2")])
        assert [(r.event_id, r.outcome, r.offset) for r in second] == [
            ("B", "duplicate", 2), ("D", "accepted", 5), ("B", "conflict", 6), ("D", "duplicate", 5),
            ("A", "duplicate", 3),
        ]
        assert log.end_offsets() == {0: 7}
        assert log.count() == 6
        read = log.read(0, 1, 100)
        assert [(r.offset, r.key, r.value, r.headers) for r in read] == [
            (o, k, v, ((HEADER_DIGEST, d.encode()),))
            for o, (e, d, k, v) in zip(range(1, 7), [rec("A", "a1"), rec("B", "b1"), rec("A", "a2"),
                                                      rec("C", "c1", "TR-2"), rec("D", "d1"), rec("B", "b2")])
        ]
        assert log.append([]) == []
    finally:
        log.close()


def test_offsets_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = EmbeddedLog(path)
    try:
        log.append([rec("A", "a1"), rec("B", "b1"), rec("C", "c1")])
        raw = sqlite3.connect(path)
        raw.execute("DELETE FROM events WHERE offset >= 2")
        raw.commit()
        raw.close()
        receipts = log.append([rec("D", "d1"), rec("E", "e1")])
        assert [r.offset for r in receipts] == [4, 5]
        assert [r.offset for r in log.read(0, 0, 10)] == [1, 4, 5]
        assert log.end_offsets() == {0: 6}
    finally:
        log.close()


def test_a_failed_batch_writes_nothing(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.db")
    try:
        log.append([rec("A", "a1")])
        bad = [rec("B", "b1"), ("C", "c1", "TR-1", None)]  # value NOT NULL: the statement fails
        try:
            log.append(bad)  # type: ignore[list-item]
        except sqlite3.IntegrityError:
            pass
        else:
            raise AssertionError("a NULL value was written")
        assert log.count() == 1
        assert [(r.outcome, r.offset) for r in log.append([rec("B", "b1")])] == [("accepted", 2)]
    finally:
        log.close()


def test_a_log_written_with_the_old_event_id_index_still_detects_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = EmbeddedLog(path)
    log.append([rec("A", "a1")])
    log.close()
    raw = sqlite3.connect(path)
    raw.execute("CREATE INDEX events_by_event_id ON events (event_id)")  # as earlier logs have it
    raw.commit()
    raw.close()
    log = EmbeddedLog(path)
    try:
        indexes = {n for (n,) in log._db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "events_by_event_id" not in indexes
        assert [(r.outcome, r.offset) for r in log.append([rec("A", "a1"), rec("A", "a2")])] == [
            ("duplicate", 1), ("conflict", 2)]
    finally:
        log.close()
