"""`ledger replay` validates a report once: its bytes are checked against the
digest stored with them (``verify_log(contract=False)``), and the rebuild
that reads the very same bytes, in the same snapshot of the log, trusts that
digest instead of computing it again (issue 18).  What it may not do: apply
a record whose bytes do not match, see other bytes than those checked, or
stop refusing what the contract refuses."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from consumers.log.embedded import EmbeddedLog
from consumers.log_check import verify_log
from consumers.projector import rebuild
from ledger.events import content_digest, digest_and_json, event_key, parse_event, stored_body_digest
from ledger.policy import Policy
from projections.sqlite_store import SQLiteProjectionStore
from tests.builders import consumed, exported, received, stamp
from tests.unit.test_content_digest_pinned import PINNED

POLICY = Policy()
NOW = datetime(2020, 1, 2, tzinfo=timezone.utc)
RECORDED = "2019-12-01T00:00:00+00:00"

# Intact (stored with the digest of its own body) but refused by today's
# contract: a year the contract no longer takes (tests/unit/test_quarantine.py).
REFUSED = (b'{"type":"received","event_id":"q-rcv-1","occurred_at":"0001-01-01T00:00:00+14:00",'
           b'"recorded_at":"2019-12-01T00:00:00+00:00","reporter":"KR-B","trace_id":"TR-Q1","lot_id":"Q1",'
           b'"quantity":{"amount":"100","unit":"kg"}}')


def append(log: EmbeddedLog, *events) -> None:
    records = []
    for event in events:
        digest, value = digest_and_json(stamp(event, RECORDED))
        records.append((event.event_id, digest, event_key(event), value))
    log.append(records)


def edit(log_db: Path, event_id: str, old: bytes, new: bytes) -> None:
    """Change a recorded report's bytes in place, its stored digest left as it was."""
    db = sqlite3.connect(log_db)
    (value,) = db.execute("SELECT value FROM events WHERE event_id = ?", (event_id,)).fetchone()
    assert old in bytes(value)
    db.execute("UPDATE events SET value = ? WHERE event_id = ?", (bytes(value).replace(old, new, 1), event_id))
    db.commit()
    db.close()


@pytest.mark.parametrize(("report", "_digest"), PINNED, ids=["line", "exported", "received", "corrected", "granted"])
def test_bytes_intact_by_their_digest_are_the_report_the_contract_reads(report, _digest):
    # What the rebuild relies on: bytes as ingest writes them, whose body
    # hashes to the stored digest, read into the contract give that digest.
    event = parse_event(report).stamped(datetime(2030, 1, 1, tzinfo=timezone.utc))
    digest, value = digest_and_json(event)
    assert stored_body_digest(json.loads(value)) == digest
    assert content_digest(parse_event(value)) == digest


def test_the_quick_check_finds_the_damage_the_full_check_finds(tmp_path):
    log = EmbeddedLog(tmp_path / "log.db")
    append(log, exported("L1", trace="TR-1"), received("L1", trace="TR-1"), consumed("L1", qty="70", trace="TR-1"))
    event_ids = [r.event_id for r in (exported("L1", trace="TR-1"), received("L1", trace="TR-1"),
                                      consumed("L1", qty="70", trace="TR-1"))]
    log.append([("q-rcv-1", stored_body_digest(json.loads(REFUSED)), "TR-Q1", REFUSED),  # intact, refused
                ("q-rcv-2", "0" * 64, "TR-Q1", REFUSED.replace(b"q-rcv-1", b"q-rcv-2"))])  # not its digest
    edit(tmp_path / "log.db", event_ids[2], b'"70"', b'"7"')  # 70 consumed now reads 7
    edit(tmp_path / "log.db", event_ids[1], b'"lot_id":"L1"', b'"lot_id":"L9","lot_id":"L1"')  # a key said twice

    full, quick = verify_log(log), verify_log(log, contract=False)

    assert quick.problems == full.problems
    assert quick.problem_count == full.problem_count == 2
    assert any(f"report '{event_ids[2]}' does not match its stored digest" in p for p in quick.problems)
    assert any("not a report" in p for p in quick.problems)
    # The key said twice keeps its content (the last one counts, as in the
    # contract): whole by its digest either way; the projector refuses it.
    # Only the full check reads the intact records into the contract.
    assert (full.not_reports, quick.not_reports) == (1, 0)
    log.close()


def test_a_rebuild_trusting_checked_digests_still_refuses_what_the_contract_refuses(tmp_path, monkeypatch):
    log = EmbeddedLog(tmp_path / "log.db")
    append(log, exported("Q1", trace="TR-Q1"), exported("G1", trace="TR-GOOD"))
    log.append([("q-rcv-1", stored_body_digest(json.loads(REFUSED)), "TR-Q1", REFUSED)])
    append(log, received("G1", trace="TR-GOOD"))
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
        assert "field 'lot_id' value 'G1': appears twice in one object" in errors[0]
        assert "field 'occurred_at' value '0001-01-01T00:00:00+14:00'" in errors[1]
        store.close()
    log.close()


def _not_again(event):
    raise AssertionError(f"the digest of {event.event_id!r} was computed again")


def test_inside_a_snapshot_the_log_reads_as_it_stood_whatever_is_appended(tmp_path):
    log = EmbeddedLog(tmp_path / "log.db")
    append(log, exported("L1", trace="TR-1"))
    other = EmbeddedLog(tmp_path / "log.db")  # ingest, beside the replay
    with log.snapshot():
        before = log.end_offsets()
        append(other, received("L1", trace="TR-1"))
        edit(tmp_path / "log.db", exported("L1", trace="TR-1").event_id, b'"100"', b'"10"')
        assert log.end_offsets() == before == {0: 2}
        [record] = log.read(0, 0, 10)
        assert b'"100"' in record.value
        assert [r.value for r in log.read_by_key(before)] == [record.value]
    assert log.end_offsets() == {0: 3}
    assert b'"10"' in log.read(0, 0, 10)[0].value
    other.close()
    log.close()
