"""A damaged, empty or missing file, a full disk, an --out that cannot be a
directory: each is one line on stderr saying what and what to do, exit 1,
never a traceback and never an answer read from nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from builders import exported, payload, write_jsonl

EXIT_OK, EXIT_ERROR = 0, 1
TMPFS_SIZE = "256k"  # a disk that fills after a few hundred reports
REPORTS_TO_FILL = 3000


@pytest.fixture(scope="module")
def recorded(ledger_at, tmp_path_factory):  # type: ignore[no-untyped-def]
    ledger = ledger_at(tmp_path_factory.mktemp("story") / "home")
    assert ledger("demo").returncode == EXIT_OK
    return ledger


@pytest.fixture
def story(recorded, ledger_at, tmp_path):  # type: ignore[no-untyped-def]
    """A copy of the recorded story, free to damage."""
    home = tmp_path / "home"
    shutil.copytree(recorded.home, home)
    return ledger_at(home)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_an_empty_projection_store_is_not_an_all_clear(story):
    story.store_db.write_bytes(b"")
    result = story("alerts")
    assert result.returncode == EXIT_ERROR
    assert result.stdout == ""
    assert one_line(result.stderr) == (
        f"ledger alerts: projection store '{story.store_db}' is empty (0 bytes), not a database: rebuild it "
        f"from the log: remove the file and run `ledger project`")


def test_a_store_that_is_not_a_database_is_one_line_with_what_to_do(story):
    story.store_db.write_bytes(os.urandom(4096))
    for command in (("alerts",), ("whereabouts", "HF-0001"), ("project",)):
        result = story(*command)
        assert result.returncode == EXIT_ERROR
        assert one_line(result.stderr) == (
            f"ledger {command[0]}: projection store '{story.store_db}': file is not a database: it is not a "
            f"projection store, or it is damaged; rebuild it from the log (move it aside and run `ledger project`)")


def test_an_empty_log_is_refused_not_started_again(story, tmp_path):
    story.log_db.write_bytes(b"")
    result = story("ingest", write_jsonl(tmp_path / "one.jsonl", payload(exported("NEW-1"))))
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr) == (
        f"ledger ingest: event log '{story.log_db}' is empty (0 bytes), not a database: if the log was lost, "
        f"restore it from a backup; to start a new ledger, remove the file (its projection store will then "
        f"refuse it)")
    assert story.log_db.stat().st_size == 0  # left as it was found


def test_a_log_that_is_not_a_database_is_one_line(story):
    story.log_db.write_bytes(os.urandom(4096))
    result = story("rejects")
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr) == f"ledger rejects: embedded log '{story.log_db}': file is not a database"


def test_a_missing_store_is_not_an_all_clear(story):
    story.store_db.unlink()
    result = story("alerts")
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr).startswith(f"ledger alerts: no projection store at '{story.store_db}'")


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 256 KiB file system (tmpfs: needs root, as on the CI machine)."""
    where = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:  # a failure, not a skip: a skipped test would hide the feature
        pytest.fail(f"cannot mount a small tmpfs (the full-disk tests need root, as on CI): "
                    f"{mounted.stderr.strip()}", pytrace=False)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@pytest.fixture(scope="module")
def many_reports(tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("many") / "many.jsonl"
    return write_jsonl(path, *(payload(exported(f"FULL-{n}", trace=f"TR-FULL-{n}"))
                               for n in range(REPORTS_TO_FILL)))


def test_a_full_disk_under_the_log_is_one_line_and_a_rerun_resumes(ledger, small_disk, many_reports):
    ledger.env["LEDGER_LOG"] = f"sqlite:///{small_disk}/log.db"
    result = ledger("ingest", many_reports)
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr) == (
        f"ledger ingest: embedded log '{small_disk}/log.db': cannot append: database or disk is full; free "
        f"some space and run the same command again: every batch already appended is kept, and a report "
        f"appended twice is a no-op")


def test_a_full_disk_under_the_store_is_one_line(ledger, small_disk, many_reports):
    ledger.env["LEDGER_STORE"] = f"sqlite:///{small_disk}/projections.db"
    result = ledger("ingest", many_reports)
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr) == (
        f"ledger ingest: projection store '{small_disk}/projections.db': cannot commit: database or disk is "
        f"full; free some space and run the same command again (every batch already committed is kept, and "
        f"nothing is counted twice)")
    # Room again: the same command finishes the job, every report once.
    del ledger.env["LEDGER_STORE"]
    assert ledger("project").returncode == EXIT_OK
    assert ledger("whereabouts", "FULL-2999").returncode == EXIT_OK


@pytest.mark.parametrize("out, says", [
    ("a-file", "is a file: name a directory (new or existing); the export writes events.csv, "
               "balances.csv, ..., audit.xlsx and report.html into it"),
    ("/dev/null", "is not a directory (a device or a socket): name a directory (new or existing); the export "
                  "writes events.csv, balances.csv, ..., audit.xlsx and report.html into it"),
    ("x" * 300, ": cannot make that directory: File name too long; name a directory you can write to"),
    ("a-file/below", ": cannot make that directory: Not a directory; name a directory you can write to"),
])
def test_an_audit_out_that_cannot_be_a_directory_is_one_line(recorded, tmp_path, out, says):
    (tmp_path / "a-file").write_text("keep me\n")
    where = out if out.startswith("/") else str(tmp_path / out)
    result = recorded("audit", "--trace", "TR-HF-2019-0001", "--out", where)
    assert result.returncode == EXIT_ERROR
    assert one_line(result.stderr) == f"ledger audit: --out {where!r}" + ("" if says[0] == ":" else " ") + says
    assert (tmp_path / "a-file").read_text() == "keep me\n"
