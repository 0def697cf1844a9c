"""`ledger replay` on the embedded log's file: the check against the stored
digests and the rebuild that trusts them read one snapshot of the log, while
another writer appends beside them, and a record edited in the file is still
refused (issue 18).  The rules themselves, in memory:
tests/unit/test_replay_trusts_checked_digests.py."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from consumers.log.embedded import EmbeddedLog
from consumers.log_check import verify_log
from consumers.projector import rebuild
from ledger.events import stored_body_digest
from ledger.policy import Policy
from projections.sqlite_store import SQLiteProjectionStore
from tests.builders import OVERFLOWING_RECEIPT, append_stamped, consumed, exported, received

POLICY = Policy()
NOW = datetime(2020, 1, 2, tzinfo=timezone.utc)


def edit(log_db: Path, event_id: str, old: bytes, new: bytes) -> None:
    """Change a recorded report's bytes in place, its stored digest left as it was."""
    db = sqlite3.connect(log_db)
    (value,) = db.execute("SELECT value FROM events WHERE event_id = ?", (event_id,)).fetchone()
    assert old in bytes(value)
    db.execute("UPDATE events SET value = ? WHERE event_id = ?", (bytes(value).replace(old, new, 1), event_id))
    db.commit()
    db.close()


def test_a_record_edited_in_the_file_is_found_by_the_replays_check(tmp_path):
    # The consignee's 70 kg consumed now reads 7 kg, its stored digest as it was.
    log = EmbeddedLog(tmp_path / "log.db")
    story = [exported("L1", trace="TR-1"), received("L1", trace="TR-1"), consumed("L1", qty="70", trace="TR-1")]
    append_stamped(log, *story)
    edit(tmp_path / "log.db", story[2].event_id, b'"70"', b'"7"')
    with log.snapshot():
        check = verify_log(log, contract=False)
    assert check.problem_count == 1
    assert check.problems[0].startswith(f"partition 0 offset 3: report '{story[2].event_id}' does not match "
                                        f"its stored digest")
    log.close()


def test_a_rebuild_trusting_checked_digests_still_refuses_what_the_contract_refuses(tmp_path, monkeypatch):
    log = EmbeddedLog(tmp_path / "log.db")
    append_stamped(log, exported("Q1", trace="TR-Q1"), exported("G1", trace="TR-GOOD"))
    log.append([("q-rcv-1", stored_body_digest(json.loads(OVERFLOWING_RECEIPT)), "TR-Q1", OVERFLOWING_RECEIPT)])
    append_stamped(log, received("G1", trace="TR-GOOD"))
    edit(tmp_path / "log.db", received("G1", trace="TR-GOOD").event_id, b'"lot_id":"G1"',
         b'"lot_id":"G9","lot_id":"G1"')
    stores = {checked: SQLiteProjectionStore(tmp_path / f"rebuilt-{checked}.db") for checked in (False, True)}
    for checked, store in stores.items():
        if checked:  # trusted: no report's digest is computed again
            monkeypatch.setattr("projections.trace_projection.content_digest", _not_again)
        with log.snapshot():
            assert verify_log(log, contract=False).problem_count == 0
            rebuild(log, store, policy=POLICY, clock=lambda: NOW, digests_checked=checked)

    assert stores[True].fingerprint() == stores[False].fingerprint()
    for store in stores.values():
        errors = sorted(dead["error"] for dead in store.dead_letters())
        assert len(errors) == 2
        assert 'field \'lot_id\' value "G1": appears twice in one object' in errors[0]
        assert 'field \'occurred_at\' value "0001-01-01T00:00:00+14:00"' in errors[1]
        store.close()
    log.close()


def _not_again(event):
    raise AssertionError(f"the digest of {event.event_id!r} was computed again")


def test_inside_a_snapshot_the_log_reads_as_it_stood_whatever_is_appended(tmp_path):
    log = EmbeddedLog(tmp_path / "log.db")
    append_stamped(log, exported("L1", trace="TR-1"))
    other = EmbeddedLog(tmp_path / "log.db")  # ingest, beside the replay
    with log.snapshot():
        before = log.end_offsets()
        append_stamped(other, received("L1", trace="TR-1"))
        edit(tmp_path / "log.db", exported("L1", trace="TR-1").event_id, b'"100"', b'"10"')
        assert log.end_offsets() == before == {0: 2}
        [record] = log.read(0, 0, 10)
        assert b'"100"' in record.value
        assert [r.value for r in log.read_by_key(before)] == [record.value]
    assert log.end_offsets() == {0: 3}
    assert b'"10"' in log.read(0, 0, 10)[0].value
    other.close()
    log.close()
