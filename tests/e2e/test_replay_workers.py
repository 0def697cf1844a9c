"""`ledger replay --workers N`: the rebuild in N processes gives the answer
one process gives, and a damaged log is refused as before, with nothing
left behind.  (Why the answer is the same: tests/integration/test_parallel_rebuild.py.)"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from bench.generate import Summary, generate
from tests.e2e.conftest import LEDGER, RUN_TIMEOUT_S

EXIT_OK, EXIT_USAGE, EXIT_DAMAGED, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 2, 4, 130, 143


@pytest.fixture
def generated(ledger, tmp_path):  # type: ignore[no-untyped-def]
    """The benchmark generator's history (3,000 reports, about 400 traces), ingested."""
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join(generate(3_000, 5, Summary())) + "\n")
    result = ledger("ingest", str(history))
    assert result.returncode == EXIT_OK, result.stderr
    return ledger


def test_two_workers_and_one_rebuild_the_same_projections(generated):
    by_two = json.loads(generated("replay", "--workers", "2", "--json").stdout)
    by_one = json.loads(generated("replay", "--workers", "1", "--json").stdout)
    assert by_two["identical"] is True
    assert (by_two.pop("processes"), by_one.pop("processes")) == (2, 1)
    assert by_two == by_one
    assert generated("replay", "--workers", "2").stdout.startswith(
        f"replayed {by_two['records']} records from position 0, in 2 processes\n")
    assert [p.name for p in generated.home.iterdir() if ".share-" in p.name or ".replay" in p.name] == []


def test_two_workers_refuse_a_damaged_log_and_leave_nothing_behind(generated):
    db = sqlite3.connect(generated.log_db)
    offset, value = db.execute("SELECT offset, value FROM events WHERE CAST(value AS TEXT) LIKE ? LIMIT 1",
                               ('%"type":"consumed"%',)).fetchone()
    changed = bytes(value).replace(b'"amount":"', b'"amount":"9', 1)  # 283.342 kg consumed -> 9283.342 kg
    db.execute("UPDATE events SET value = ? WHERE offset = ?", (changed, offset))
    db.commit()
    db.close()
    result = generated("replay", "--workers", "2")
    assert result.returncode == EXIT_DAMAGED, result.stderr
    assert f"partition 0 offset {offset}: report " in result.stderr
    assert "nothing was replayed or replaced" in result.stderr
    assert [p.name for p in generated.home.iterdir() if ".share-" in p.name or ".replay" in p.name] == []


@pytest.mark.parametrize("workers", ["0", "9", "two"])
def test_a_number_of_workers_out_of_range_is_a_usage_error(ledger, workers):
    result = ledger("replay", "--workers", workers)
    assert result.returncode == EXIT_USAGE
    assert f"argument --workers: {workers!r} is not a number of processes: auto, or 1 to 8" in result.stderr


@pytest.mark.parametrize("once_there", ["projections.db.replay", "projections.db.replay.share-1"],
                         ids=["as the scratch store is made", "with the workers at work"])
def test_ctrl_c_stops_the_replay_and_its_workers_and_leaves_nothing_behind(ledger, big_reports, once_there):
    # As a terminal does: SIGINT to the replay's whole process group, once
    # the replay has made its scratch store, or once a worker has its share.
    assert ledger("ingest", str(big_reports)).returncode == EXIT_OK
    before = ledger.fingerprint()
    replay = subprocess.Popen([str(LEDGER), "replay", "--workers", "2"], env=ledger.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (ledger.home / once_there).exists() and replay.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert replay.poll() is None, "the replay ended before it could be interrupted"
    workers = _workers_of(replay)
    os.killpg(replay.pid, signal.SIGINT)
    _out, err = replay.communicate(timeout=RUN_TIMEOUT_S)

    assert replay.returncode == EXIT_INTERRUPTED, err
    assert err.strip().splitlines()[-1] == ("ledger replay: interrupted; nothing was replaced, the live store is as "
                                            "it was; its scratch store is removed")
    assert [p.name for p in ledger.home.iterdir() if ".share-" in p.name or ".replay" in p.name] == []
    assert _still_running(workers) == []
    assert ledger.fingerprint() == before


def _replay_at_work(ledger, big_reports):  # type: ignore[no-untyped-def]
    """A two-worker replay of the big history, once the second worker has its
    share; and the pids of its workers (the first may have ended already)."""
    assert ledger("ingest", str(big_reports)).returncode == EXIT_OK
    replay = subprocess.Popen([str(LEDGER), "replay", "--workers", "2"], env=ledger.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    workers: set[int] = set()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (not (ledger.home / "projections.db.replay.share-1").exists() and replay.poll() is None
           and time.monotonic() < deadline):
        workers |= set(_workers_of(replay))
        time.sleep(0.01)
    workers |= set(_workers_of(replay))
    assert replay.poll() is None, "the replay ended before it could be stopped"
    assert len(workers) == 2, workers
    return replay, sorted(workers)  # in the order they started: pids grow


def _workers_of(replay) -> list[int]:  # type: ignore[no-untyped-def]
    """The replay's worker processes running now (multiprocessing's spawned children)."""
    found = subprocess.run(["pgrep", "-P", str(replay.pid), "-f", "spawn_main"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _still_running(pids: list[int], wait_s: float = 0) -> list[int]:
    """Those of ``pids`` still running (a zombie nobody reaped has ended), after waiting up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        running = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, ProcessLookupError):
                continue
            if state != "Z":
                running.append(pid)
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.05)


def _left_behind(ledger) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.name for p in ledger.home.iterdir() if ".share-" in p.name or ".replay" in p.name]


def test_sigterm_to_the_replay_alone_stops_its_workers_and_leaves_nothing_behind(ledger, big_reports):
    # As systemd or `kill PID` does: SIGTERM to the replay's process only, not its workers.
    replay, workers = _replay_at_work(ledger, big_reports)
    replay.send_signal(signal.SIGTERM)
    _out, err = replay.communicate(timeout=RUN_TIMEOUT_S)

    assert replay.returncode == EXIT_TERMINATED, err
    assert err.strip().splitlines()[-1] == ("ledger replay: terminated (SIGTERM); nothing was replaced, the live "
                                            "store is as it was; its scratch store is removed")
    assert _left_behind(ledger) == []
    assert _still_running(workers) == []
    assert ledger("replay", "--workers", "1").returncode == EXIT_OK  # the live store is as the log says


def test_a_replay_killed_alone_leaves_workers_that_stop_and_remove_their_shares(ledger, big_reports):
    # SIGKILL cannot be caught: the workers notice they were left, stop
    # after their chunk, remove their shares and end; the next replay
    # removes the scratch store the killed one made, and replays as ever.
    replay, workers = _replay_at_work(ledger, big_reports)
    replay.kill()
    replay.communicate(timeout=RUN_TIMEOUT_S)
    assert _still_running(workers, wait_s=RUN_TIMEOUT_S) == []
    assert [name for name in _left_behind(ledger) if ".share-" in name] == []

    again = ledger("replay", "--workers", "2", "--json")
    assert again.returncode == EXIT_OK, again.stderr
    assert json.loads(again.stdout)["identical"] is True
    assert _left_behind(ledger) == []


def test_a_worker_killed_under_the_replay_fails_it_with_nothing_replaced(ledger, big_reports):
    # The OOM killer takes one worker: the replay says so, replaces nothing,
    # stops the other worker and removes every share and its scratch store.
    replay, workers = _replay_at_work(ledger, big_reports)
    os.kill(workers[-1], signal.SIGKILL)  # the second, whose share has just begun
    _out, err = replay.communicate(timeout=RUN_TIMEOUT_S)

    assert replay.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ledger replay: replay worker "), err
    assert "ended without its result (exit code -9: killed, or out of memory?); nothing was replaced" in last
    assert _left_behind(ledger) == []
    assert _still_running(workers) == []
    again = ledger("replay", "--workers", "2", "--json")
    assert again.returncode == EXIT_OK and json.loads(again.stdout)["identical"] is True, again.stderr


def test_a_second_replay_of_the_same_store_is_refused_while_the_first_runs(ledger, big_reports):
    # The second would remove the first's scratch store and shares as a killed
    # replay's, and the first would compare (or, with --replace, adopt) a
    # partial rebuild.  It is refused; the first goes on and says identical.
    replay, _workers = _replay_at_work(ledger, big_reports)
    second = ledger("replay", "--replace")
    out, err = replay.communicate(timeout=RUN_TIMEOUT_S)

    assert second.returncode == 1, second.stderr
    assert "another `ledger replay` of this store is running" in second.stderr
    assert "nothing was replayed" in second.stderr
    assert replay.returncode == EXIT_OK, err
    assert out.strip().splitlines()[-1] == "replay: identical"
    assert _left_behind(ledger) == []
