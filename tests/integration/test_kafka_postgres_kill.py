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
import signal
import subprocess
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
from consumers.kafka.log import KafkaLog
from consumers.projector import catch_up, utc_now
from ledger.events import content_digest, parse_event
from ledger.policy import load_policy
from projections.postgres_store import PostgresProjectionStore
from projections.sqlite_store import SQLiteProjectionStore

EVENTS = 3_000
SEED = 6
BATCH = "10"  # small batches: many commits, so the kill lands between two of them
IDLE_S = "6"  # a survivor waits this long with nothing to read: longer than the 2 s session timeout
KILL_AFTER_RECORDS = 300  # the store shows this much progress before the kill...
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


def test_three_members_one_killed_mid_stream_end_equal_to_one_replay(kafka_url, postgres_url, tmp_path):
    log = KafkaLog.from_url(kafka_url)  # creates the topics, 4 partitions
    assert log.partitions() == list(range(PARTITIONS))
    store = PostgresProjectionStore.from_url(postgres_url)  # creates the tables; the test watches through it
    group = f"issue-6-{uuid.uuid4().hex[:8]}"  # a group of its own: the broker lives for the session
    errs = {name: tmp_path / f"{name}.err" for name in ("a", "b", "c")}
    members = {name: start(kafka_url, postgres_url, group, err) for name, err in errs.items()}
    try:
        def stderr_tails() -> str:
            return "\n".join(f"--- {name}\n{err.read_text()[-1500:]}" for name, err in errs.items())

        # All three have joined and the group has settled: the partitions are
        # split three ways, every member holding at least one.
        def settled() -> bool:
            latest = [assignments(err)[-1] if assignments(err) else [] for err in errs.values()]
            return all(latest) and sorted(p for ps in latest for p in ps) == list(range(PARTITIONS))

        wait_until(settled, "three members to split the four partitions", detail=stderr_tails)

        # Now the parties report.
        reports = generated_reports()
        with LedgerClient(log, clock=fixed_clock) as client:
            client.send(reports)
        end = {p: last - 1 for p, last in log.end_offsets().items()}
        total = applied(end)
        assert total == len(reports)

        # Once the store shows progress, kill -9 the member holding the most
        # partitions, mid-batch or between two: it gets no chance to clean up.
        wait_until(lambda: applied(store.tracked_offsets(log.name)) >= KILL_AFTER_RECORDS,
                   f"the members to commit {KILL_AFTER_RECORDS} records", detail=stderr_tails)
        victim = max(members, key=lambda name: len(assignments(errs[name])[-1]))
        victim_partitions = assignments(errs[victim])[-1]
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
        after_kill = {p for name in survivors for ps in assignments(errs[name])[seen_at_kill[name]:] for p in ps}
        assert set(victim_partitions) <= after_kill, (victim, victim_partitions, stderr_tails())
        # Between them they applied at least what the victim had not.
        assert sum(s["records"] for s in summaries.values()) >= total - at_kill
        assert store.tracked_offsets(log.name) == end

        # One more member, to be sure: it finds nothing left to apply.
        errs["drain"] = tmp_path / "drain.err"
        members["drain"] = start(kafka_url, postgres_url, group, errs["drain"], idle_s="2")
        out, _ = members["drain"].communicate(timeout=PROCESS_TIMEOUT_S)
        assert members["drain"].returncode == 0, errs["drain"].read_text()
        assert json.loads(out.strip().splitlines()[-1])["records"] == 0
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
