"""A crash never double-counts: `ledger` killed with SIGKILL, then re-run.

The log commits each batch of reports before reading the next, and the
projection store commits each batch with its log position (tracking).  So
whatever instant the process dies at, re-running the same command finishes
the job, and the ledger ends byte-for-byte where one clean run ends.

Every wait here is bounded; polling reads the SQLite files the killed
process was writing, read-only.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

BIG_REPORTS_LINES = 20_000  # the big_reports fixture's file
QUESTIONS = (("whereabouts", "--json"), ("alerts", "--json"))
START_TIMEOUT_S = 60  # until the first batch is committed
EXIT_TIMEOUT_S = 10  # for a killed process to be reaped
POLL_INTERVAL_S = 0.005
RUN_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory, big_reports, ledger_at):  # type: ignore[no-untyped-def]
    """The reference: the big file ingested (and projected) in one clean run,
    with --progress, as an operator would watch it."""
    reference = ledger_at(tmp_path_factory.mktemp("clean") / "home")
    result = reference("ingest", "--trust-recorded-at", "--progress", str(big_reports))
    assert result.returncode == 0, result.stderr
    answers = {question: reference(*question).stdout for question in QUESTIONS}
    return CleanRun(reference.fingerprint(), answers, result)


@dataclass(frozen=True)
class CleanRun:
    fingerprint: dict[str, str]
    answers: dict[tuple[str, ...], str]  # `ledger` arguments -> standard output
    result: subprocess.CompletedProcess[str]


def test_ingest_killed_midway_then_rerun_ends_where_a_clean_run_ends(ledger, big_reports, clean_run):
    # Kill the ingest once some batches are in the log, long before the end.
    ingest = ledger.start("ingest", "--trust-recorded-at", str(big_reports))
    kill_when(ingest, lambda: ledger.event_rows()[0] > 0, "the first batch of reports in the log")
    rows_at_kill, _ = ledger.event_rows()
    assert 0 < rows_at_kill < BIG_REPORTS_LINES, "the kill should land mid-ingest"

    # Run it again: what was committed is a no-op, the rest is recorded.
    rerun = ledger("ingest", "--trust-recorded-at", str(big_reports), "--json")
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert (summary["recorded"], summary["duplicates"]) == (BIG_REPORTS_LINES - rows_at_kill, rows_at_kill)

    # No report twice in the log, and the projections equal the clean run's.
    assert ledger.event_rows() == (BIG_REPORTS_LINES, BIG_REPORTS_LINES)
    assert_same_ledger(ledger, clean_run)


def test_project_killed_midway_then_rerun_ends_where_a_clean_run_ends(ledger, big_reports, clean_run):
    recorded = ledger("ingest", "--trust-recorded-at", "--no-project", str(big_reports))
    assert recorded.returncode == 0, recorded.stderr

    project = ledger.start("project")
    kill_when(project, lambda: ledger.tracked_offset() > 0, "the first projected batch")
    offset_at_kill = ledger.tracked_offset()
    assert 0 < offset_at_kill < BIG_REPORTS_LINES, "the kill should land mid-projection"

    rerun = ledger("project")
    assert rerun.returncode == 0, rerun.stderr
    # It resumed after the last committed batch: nothing was applied twice.
    assert f"projected {BIG_REPORTS_LINES - offset_at_kill} records" in rerun.stdout
    assert ledger.tracked_offset() == BIG_REPORTS_LINES
    assert ledger.event_rows() == (BIG_REPORTS_LINES, BIG_REPORTS_LINES)
    assert_same_ledger(ledger, clean_run)


def test_two_projectors_at_once_count_nothing_twice(ledger, big_reports, clean_run):
    # Two operators run `ledger project` on the same home at the same time,
    # the first time (so both also create the projection store): whichever
    # commits a batch first wins it, the other resumes after it.
    recorded = ledger("ingest", "--trust-recorded-at", "--no-project", str(big_reports))
    assert recorded.returncode == 0, recorded.stderr
    first, second = ledger.start("project", capture=True), ledger.start("project", capture=True)
    projected = 0
    for projector in (first, second):
        stdout, stderr = projector.communicate(timeout=RUN_TIMEOUT_S)
        assert projector.returncode == 0, stderr.decode()
        projected += int(re.match(r"projected (\d+) records?", stdout.decode()).group(1))
    # Each report was applied by exactly one of them.
    assert projected == BIG_REPORTS_LINES
    assert ledger.tracked_offset() == BIG_REPORTS_LINES
    assert_same_ledger(ledger, clean_run)


def test_progress_is_shown_on_stderr_when_asked(clean_run):
    result = clean_run.result
    progress = [line.strip() for line in result.stderr.splitlines()]
    # At least the closing line of each phase; intermediate lines depend on speed.
    assert any(line.startswith(f"ingested lines: {BIG_REPORTS_LINES:,} done in ") for line in progress)
    assert any(line.startswith(f"projected records: {BIG_REPORTS_LINES:,} done in ") for line in progress)
    assert result.stdout.startswith(f"{_name(result)}: {BIG_REPORTS_LINES} lines: {BIG_REPORTS_LINES} recorded")


def test_no_progress_unless_asked_when_stderr_is_not_a_terminal(ledger, big_reports, tmp_path):
    small = tmp_path / "small.jsonl"
    with big_reports.open(encoding="utf-8") as big:
        small.write_text("".join(itertools.islice(big, 10)), encoding="utf-8")
    result = ledger("ingest", "--trust-recorded-at", str(small))
    assert result.returncode == 0
    assert result.stderr == ""


# -- helpers ----------------------------------------------------------------------


def kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool], what: str) -> None:
    """SIGKILL ``process`` as soon as ``ready()``; fail if it never gets there."""
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not ready():
            if process.poll() is not None:
                pytest.fail(f"`ledger` exited ({process.returncode}) before {what}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {START_TIMEOUT_S} s")
            time.sleep(POLL_INTERVAL_S)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=EXIT_TIMEOUT_S)
    assert process.returncode == -signal.SIGKILL


def assert_same_ledger(recovered: Any, reference: CleanRun) -> None:
    """Same read models (fingerprint), same answers to the same questions."""
    assert recovered.fingerprint() == reference.fingerprint
    for question, answer in reference.answers.items():
        assert recovered(*question).stdout == answer, question
    # Each alert was raised once, though the projection was interrupted.
    raised = [e["alert_id"] for e in json.loads(recovered("alerts", "--journal", "--json").stdout)
              if e["transition"] == "raised"]
    assert len(raised) == len(set(raised))


def _name(result: subprocess.CompletedProcess[str]) -> str:
    return result.args[-1]
