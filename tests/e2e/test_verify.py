"""Damage never passes unnoticed.

`ledger verify` checks the log (every report against the digest stored
with it, offsets contiguous), the projection store (SQLite's
integrity_check) and that the store was projected from this log.  `ledger
replay` refuses a damaged log and never calls a damaged store identical.
A store kept while its log was lost or replaced is refused by every
command that projects, in one line that says what to do.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from builders import exported, payload, write_jsonl
from damage import empty_sqlite_index

EXIT_OK, EXIT_ERROR, EXIT_DAMAGED = 0, 1, 4

CONSUMED_70 = "semi-use-2019-0820-001"  # story line 7: KR-SEMI reports 70 units consumed


@pytest.fixture
def story(ledger):  # type: ignore[no-untyped-def]
    """The 2019 story recorded and projected in a fresh home."""
    result = ledger("demo")
    assert result.returncode == EXIT_OK, result.stderr
    return ledger


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def change_log_report(log_db: Path, event_id: str, old: bytes, new: bytes) -> int:
    """Change bytes of one recorded report in place, its stored digest left as it was; its offset."""
    db = sqlite3.connect(log_db)
    try:
        offset, value = db.execute("SELECT offset, value FROM events WHERE event_id = ?", (event_id,)).fetchone()
        assert old in bytes(value)
        db.execute("UPDATE events SET value = ? WHERE offset = ?", (bytes(value).replace(old, new, 1), offset))
        db.commit()
        return offset
    finally:
        db.close()


def edit_at_the_sqlite3_prompt(log_db: Path, event_id: str, old: str, new: str) -> int:
    """`UPDATE events SET value = replace(value, OLD, NEW)`, as typed at the prompt; the report's offset."""
    db = sqlite3.connect(log_db)
    try:
        db.execute("UPDATE events SET value = replace(value, ?, ?) WHERE event_id = ?", (old, new, event_id))
        db.commit()
        return db.execute("SELECT offset FROM events WHERE event_id = ?", (event_id,)).fetchone()[0]
    finally:
        db.close()


def test_a_whole_ledger_verifies(story):
    result = story("verify")
    assert result.returncode == EXIT_OK, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "verify: whole"
    assert "24 records (partition 0 offsets 1..24): whole" in result.stdout
    assert "SQLite PRAGMA integrity_check: whole" in result.stdout

    report = json.loads(story("verify", "--json").stdout)
    assert report["whole"] is True
    assert report["log"]["records"] == 24
    assert report["belongs"]["log_identity"] == report["belongs"]["store_log_identity"]
    assert report["belongs"]["tracked_offsets"] == {"0": 24}


@pytest.mark.parametrize("edit", ["in place", "at the sqlite3 prompt"])
def test_one_changed_digit_in_the_log_is_named_by_verify_and_refused_by_replay(story, edit):
    # Someone edits log.db: KR-SEMI's "70 consumed" now reads "7" -- in place,
    # or at the sqlite3 prompt, whose replace() leaves the value TEXT.
    if edit == "in place":
        offset = change_log_report(story.log_db, CONSUMED_70, b'"70"', b'"7"')
    else:
        offset = edit_at_the_sqlite3_prompt(story.log_db, CONSUMED_70, '"70"', '"7"')
    before = story.fingerprint()

    result = story("verify")
    assert result.returncode == EXIT_DAMAGED
    assert (f"partition 0 offset {offset}: report '{CONSUMED_70}' does not match its stored digest"
            in result.stdout)
    assert "1 PROBLEM\n" in result.stdout

    result = story("replay", "--replace")
    assert result.returncode == EXIT_DAMAGED
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith(
        "ledger replay: the log has 1 damaged record (listed above; first: partition 0 offset")
    assert "nothing was replayed or replaced" in result.stderr
    assert story.fingerprint() == before  # the live store still says 70


def test_a_record_that_is_not_json_any_more_is_named_in_ingests_words(story):
    offset = edit_at_the_sqlite3_prompt(story.log_db, CONSUMED_70, "", "")  # its offset only
    db = sqlite3.connect(story.log_db)
    db.execute("UPDATE events SET value = '{not json' WHERE offset = ?", (offset,))
    db.commit()
    db.close()
    result = story("verify")
    assert result.returncode == EXIT_DAMAGED
    assert f"partition 0 offset {offset}: not a report (not JSON: " in result.stdout
    assert "validation error" not in result.stdout and "tagged-union" not in result.stdout


def test_a_record_removed_from_the_log_is_a_gap_in_its_offsets(story):
    db = sqlite3.connect(story.log_db)
    db.execute("DELETE FROM events WHERE offset = 5")
    db.commit()
    db.close()
    report = json.loads(story("verify", "--json").stdout)
    assert report["whole"] is False
    assert report["log"]["problems"] == ["partition 0: offsets 5..4 are missing (a gap in the log: records removed)"
                                         .replace("5..4", "5..5")]


def test_a_damaged_index_is_found_by_verify_and_replay_and_replace_repairs_it(story):
    before = story("whereabouts", "HF-0001", "--json")
    assert before.returncode == EXIT_OK
    story("project")  # leaves nothing in the WAL to re-apply
    empty_sqlite_index(story.store_db, "lots_by_lot")

    # The damage is real: a lookup by lot id goes through the index.
    damaged = story("whereabouts", "HF-0001")
    assert damaged.returncode == EXIT_ERROR
    assert "no lot or trace 'HF-0001' is known" in damaged.stderr

    result = story("verify")
    assert result.returncode == EXIT_DAMAGED
    assert "wrong # of entries in index lots_by_lot" in result.stdout

    # A full scan still reads every lot, so the table digests agree; the
    # integrity check is what tells.
    result = story("replay")
    assert result.returncode == EXIT_ERROR
    assert "  lots         identical" in result.stdout
    assert "  integrity    DIFFERENT  damaged: " in result.stdout
    assert result.stdout.splitlines()[-1].startswith("replay: DIFFERENT")

    assert story("replay", "--replace").returncode == EXIT_ERROR  # differed, and was replaced
    assert story("replay").returncode == EXIT_OK
    assert story("verify").returncode == EXIT_OK
    assert story("whereabouts", "HF-0001", "--json").stdout == before.stdout


def test_a_store_kept_while_its_log_was_replaced_is_refused(story, tmp_path):
    # The log is lost; a new one is made by the next ingest.
    story.log_db.unlink()
    report = write_jsonl(tmp_path / "one.jsonl", payload(exported("NEW-1")))
    result = story("ingest", report)
    assert result.returncode == EXIT_ERROR
    line = one_line(result.stderr)
    assert line.startswith(f"ledger ingest: projection store '{story.store_db}' was built from another log "
                           f"than embedded (store: log identity ")
    assert line.endswith("refusing to project: point --store at this log's store, or build a new store from "
                         "this log (`ledger replay --replace`, or move the store aside and run `ledger project`)")
    assert one_line(story("project").stderr).startswith("ledger project: projection store")

    result = story("verify")
    assert result.returncode == EXIT_DAMAGED
    assert "belongs  NO: projection store" in result.stdout

    # What the message says to do works.
    assert story("replay", "--replace").returncode == EXIT_ERROR
    assert story("verify").returncode == EXIT_OK
    assert story("whereabouts", "NEW-1").returncode == EXIT_OK


def test_a_store_without_a_recorded_identity_is_refused_when_it_has_read_beyond_the_log(story, tmp_path):
    # A store from before log identities: only its offsets can tell.
    db = sqlite3.connect(story.store_db)
    db.execute("DELETE FROM store_meta WHERE key LIKE 'log_identity:%'")
    db.commit()
    db.close()
    story.log_db.unlink()
    result = story("ingest", write_jsonl(tmp_path / "one.jsonl", payload(exported("NEW-1"))))
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr).startswith(
        f"ledger ingest: projection store '{story.store_db}' has read embedded partition 0 up to offset 24, "
        f"but this log ends before offset 2: the store was built from another (or a lost) log; refusing")


@pytest.mark.parametrize("damage", ["empty", "not a database", "missing"])
def test_a_store_that_cannot_be_opened_is_a_finding_of_verify(story, damage):
    if damage == "missing":
        story.store_db.unlink()
    else:
        story.store_db.write_bytes(b"" if damage == "empty" else b"not a database at all\n" * 200)
    for suffix in ("-wal", "-shm"):
        Path(f"{story.store_db}{suffix}").unlink(missing_ok=True)
    result = story("verify")
    assert result.returncode == EXIT_DAMAGED, result.stderr
    assert "1 PROBLEM\n" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("verify: DAMAGED")
    assert not story.store_db.exists() if damage == "missing" else True  # verify makes no store


def test_verify_help_has_examples_and_exit_statuses(ledger):
    text = ledger("verify", "--help").stdout
    assert "examples:\n  ledger verify\n" in text
    assert "0 all three checks passed;  4 damage found" in text


def test_verify_checks_a_postgresql_store_and_refuses_it_for_another_log(ledger, postgres_url, tmp_path):
    ledger.env["LEDGER_STORE"] = postgres_url
    story = str(Path(__file__).parents[2] / "examples" / "story-2019.jsonl")
    assert ledger("ingest", story).returncode == EXIT_OK
    report = json.loads(ledger("verify", "--json").stdout)
    assert report["whole"] is True
    assert report["store"]["method"].startswith("PostgreSQL ")
    assert report["belongs"]["store_log_identity"] == report["belongs"]["log_identity"]

    ledger.log_db.unlink()  # the log is lost; the PostgreSQL store is kept
    result = ledger("ingest", write_jsonl(tmp_path / "one.jsonl", payload(exported("NEW-1"))))
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr).startswith(
        f"ledger ingest: projection store '{postgres_url.replace('postgresql://postgres@', 'postgresql://')}' "
        f"was built from another log")
