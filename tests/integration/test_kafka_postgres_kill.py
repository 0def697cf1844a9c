"""Issue 6: three projector processes in one consumer group write to one
PostgreSQL store; one is killed with SIGKILL mid-stream.  The survivors take
over its partitions and finish, and the store they leave equals a
single-process replay of the same topic: no lost update, no report or alert
transition counted twice, no member stuck on a lock (every process exits 0
within its bound).

The reports are the benchmark generator's (bench/generate.py): a few
thousand over some 400 traces, with licenses in partitions of their own,
retractions, late reports and identical re-sends -- the cases where members
computing from each other's half-written state would show.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
from fixtures_kafka import (LEDGER, PARTITIONS, PROCESS_TIMEOUT_S, assignments, fixed_clock, ledger_env,
                            wait_until)
from fixtures_postgres import postgres_server_url
from psycopg import sql

from bench.generate import Summary, generate
from consumers.client import LedgerClient
from consumers.log.kafka import KafkaLog
from consumers.projector import catch_up, utc_now
from ledger.events import content_digest, parse_event
from consumers.bootstrap import load_policy
from projections.postgres_store import PostgresProjectionStore, application_name
from projections.sqlite_store import SQLiteProjectionStore

EVENTS = 2_000
SEED = 6
BATCH = "20"  # small batches: many commits, so the kill lands between two of them
IDLE_S = "15"  # a survivor waits this long with nothing to read: the 6 s session timeout and a rebalance fit in it
THIRD_JOIN_GRACE_S = 8.0
KILL_AFTER_RECORDS = 300
  # the store shows this much progress before the kill...
# ...and the stream is not finished when it lands (checked after the kill).


def generated_reports() -> list[str]:
    return list(generate(EVENTS, SEED, Summary()))


def start(kafka_url: str, postgres_url: str, group: str, err: Path, idle_s: str = IDLE_S) -> subprocess.Popen[str]:
    with err.open("a") as stderr:
        return subprocess.Popen(
            [str(LEDGER), "kafka", "project", "--log", kafka_url, "--store", postgres_url,
             "--group", group, "--max-idle", idle_s, "--batch-max", BATCH, "--json"],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=ledger_env(),
        )


def applied(offsets: dict[int, int]) -> int:
    """Records the store has committed, from its tracked offsets."""
    return sum(offset + 1 for offset in offsets.values())


def schema_of(postgres_url: str) -> str:
    return postgres_url.rsplit("schema=", 1)[1]


def report_rows(postgres_url: str) -> tuple[int, int]:
    """(rows, distinct (event id, digest) pairs) in the PostgreSQL store's reports table."""
    with psycopg.connect(postgres_server_url().split("?", 1)[0], autocommit=True) as db:
        row = db.execute(sql.SQL("SELECT count(*), count(DISTINCT (event_id, digest)) FROM {}.reports").format(
            sql.Identifier(schema_of(postgres_url)))).fetchone()
    assert row is not None
    return row[0], row[1]


def lock_holder(postgres_url: str, members: dict[str, subprocess.Popen[str]]) -> str | None:
    """Which member process holds the store's batch lock (a session advisory
    lock in PostgreSQL) right now, if any: the server names the holder's
    client port, /proc names the process with a socket on that port."""
    with psycopg.connect(postgres_server_url().split("?", 1)[0], autocommit=True) as db:
        row = db.execute(
            # The batch lock, or the journal lock taken inside it: both are
            # held only by a member in the middle of a batch (or a sweep).
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = %s LIMIT 1",
            (application_name(schema_of(postgres_url)),),
        ).fetchone()
    if row is None or row[0] is None:
        return None
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == row[0]:
                inodes.add(fields[9])
    for name, process in members.items():
        try:
            links = {os.readlink(fd) for fd in Path(f"/proc/{process.pid}/fd").iterdir()}
        except OSError:
            continue  # exited
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return name
    return None


def test_three_members_one_killed_mid_stream_end_equal_to_one_replay(kafka_url, postgres_url, tmp_path):
    log = KafkaLog.from_url(kafka_url)  # creates the topics, 4 partitions
    assert log.partitions() == list(range(PARTITIONS))
    store = PostgresProjectionStore.from_url(postgres_url)  # creates the tables; the test watches through it
    group = f"issue-6-{uuid.uuid4().hex[:8]}"  # a group of its own: the broker lives for the session
    errs = {name: tmp_path / f"{name}.err" for name in ("a", "b", "c")}
    members: dict[str, subprocess.Popen[str]] = {}

    def stderr_tails() -> str:
        return "\n".join(f"--- {name}\n{err.read_text()[-1500:]}" for name, err in errs.items() if err.exists())

    try:
        # All three start together and are given partitions.  On the Tansu
        # stand-in a member joining in the middle of another's join is at
        # times left without an assignment for tens of seconds (a group
        # coordination problem, not the store's); the test then goes on with
        # the two that joined -- the third still runs, and may join late.
        for name in errs:
            members[name] = start(kafka_url, postgres_url, group, errs[name])
        wait_until(lambda: sum(bool(assignments(err)) for err in errs.values()) >= 2, "two members to join",
                   detail=stderr_tails)
        two_joined = time.monotonic()
        wait_until(lambda: all(assignments(err) for err in errs.values())
                   or time.monotonic() - two_joined > THIRD_JOIN_GRACE_S, "the third member to join")

        # Now the parties report.
        reports = generated_reports()
        with LedgerClient(log, clock=fixed_clock) as client:
            client.send(reports)
        end = {p: last - 1 for p, last in log.end_offsets().items()}
        total = applied(end)
        assert total == len(reports)

        # Once the store shows progress, kill -9 the member applying a batch
        # at that moment -- the one holding the store's batch lock, so known to
        # hold partitions (which member that is, the group's assignment logs
        # cannot say for sure: one may briefly hold a stale assignment).  It
        # gets no chance to clean up; the server must release its lock.
        wait_until(lambda: applied(store.tracked_offsets(log.name)) >= KILL_AFTER_RECORDS,
                   f"the members to commit {KILL_AFTER_RECORDS} records", detail=stderr_tails)
        victim = wait_until(lambda: lock_holder(postgres_url, members), "a member holding the batch lock",
                            detail=stderr_tails)
        seen_at_kill = {name: len(assignments(err)) for name, err in errs.items()}
        members[victim].send_signal(signal.SIGKILL)
        members[victim].wait(timeout=PROCESS_TIMEOUT_S)
        at_kill = applied(store.tracked_offsets(log.name))
        assert members[victim].returncode == -signal.SIGKILL
        assert at_kill < total, "the kill must land mid-stream (more reports or smaller batches)"

        # The survivors notice (session timeout), rebalance, take the dead
        # member's partitions from the store's offsets, and finish.  Each exits
        # 0: a member stuck on the batch lock would fail after LOCK_TIMEOUT_S.
        survivors = [name for name in members if name != victim]
        summaries = {}
        for name in survivors:
            out, _ = members[name].communicate(timeout=PROCESS_TIMEOUT_S)
            assert members[name].returncode == 0, errs[name].read_text()
            summaries[name] = json.loads(out.strip().splitlines()[-1])
        # The group rebalanced after the kill, and no one is left waiting for it.
        assert any(len(assignments(errs[name])) > seen_at_kill[name] for name in survivors), stderr_tails()
        # One more member, to be sure everything is drained (normally it finds
        # nothing left; a member that never got its assignment may have left
        # a partition to it).
        errs["drain"] = tmp_path / "drain.err"
        members["drain"] = start(kafka_url, postgres_url, group, errs["drain"], idle_s="2")
        out, _ = members["drain"].communicate(timeout=PROCESS_TIMEOUT_S)
        assert members["drain"].returncode == 0, errs["drain"].read_text()
        summaries["drain"] = json.loads(out.strip().splitlines()[-1])
        # Between them they applied at least what the victim had not (the
        # victim's own count died with it), and the store has every offset.
        assert sum(s["records"] for s in summaries.values()) >= total - at_kill
        assert store.tracked_offsets(log.name) == end
    finally:
        for process in members.values():
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=PROCESS_TIMEOUT_S)

    # One process replaying the whole topic from offset 0 into a fresh store.
    replayed = SQLiteProjectionStore(tmp_path / "replayed.db")
    catch_up(log, replayed, policy=load_policy(None), clock=fixed_clock)
    try:
        assert store.fingerprint() == replayed.fingerprint()
        assert store.lots() == replayed.lots()
        assert store.standing_alerts(fixed_clock()) == replayed.standing_alerts(fixed_clock())
        assert store.standing_alerts(fixed_clock()), "the generated history leaves alerts standing"

        # No double count.  Each distinct report version (event id and content
        # digest: an identical re-send is the same version, an amended report
        # a new one) has its row -- a re-export two, its parent's trace's and
        # its child's -- and there are no more rows than one replay writes.
        rows, versions = report_rows(postgres_url)
        parsed = [parse_event(json.loads(line)) for line in reports]
        assert versions == len({(e.event_id, content_digest(e)) for e in parsed
                                if e.type not in ("license_granted", "license_revoked")})
        assert rows == sum(len(v) for v in replayed.all_versions().values())
        # And no alert transition journaled twice.
        journal = store.journal(limit=1_000_000)
        twice = {t: n for t, n in Counter(e["transition_id"] for e in journal).items() if n > 1}
        assert journal and not twice
        # No lost update in the journal: the alerts it leaves open are the
        # alerts standing in the store now.
        last = {e["alert_id"]: e for e in journal}  # journal() is in seq order
        still_open = {a for a, e in last.items() if e["transition"] != "resolved"}
        assert still_open == {a["alert_id"] for a in store.standing_alerts(utc_now())}
    finally:
        replayed.close()
        store.close()
        log.close()
