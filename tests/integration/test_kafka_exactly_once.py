"""Alert transitions land on the alerts topic exactly once, counted on the
topic as a read_committed subscriber reads it (docs/KAFKA.md, "Exactly-once
alerts"): after a clean run, and after two group members rebalance mid-stream.
The SIGKILL case is tests/integration/test_kafka_crash.py.
"""

from __future__ import annotations

import json
from collections import Counter

from fixtures_kafka import (PROCESS_TIMEOUT_S, applied, assignments, committed_alerts, fixed_clock, many_traces,
                            story_lines, wait_until)

from consumers.client import LedgerClient
from consumers.kafka.alert_publisher import committed_marker, follow_alerts
from consumers.log.kafka import KafkaLog
from consumers.projector import catch_up
from consumers.bootstrap import load_policy
from projections.sqlite_store import SQLiteProjectionStore

BATCH = "10"  # small batches: many publishing transactions
REBALANCE_AFTER_RECORDS = 150


def copies_on_topic(log: KafkaLog, journal: list[dict]) -> int:
    """Messages on the alerts topic beyond one per journaled transition; the
    topic must hold every journaled transition and nothing else."""
    raw = Counter(m["transition_id"] for m in committed_alerts(log, len(journal)))
    assert set(raw) == {e["transition_id"] for e in journal}
    return sum(raw.values()) - len(raw)


def assert_equal_to_replay(log: KafkaLog, store: SQLiteProjectionStore, tmp_path) -> None:
    replayed = SQLiteProjectionStore(tmp_path / "replayed.db")
    catch_up(log, replayed, policy=load_policy(None), clock=fixed_clock)
    assert store.fingerprint() == replayed.fingerprint()


def test_a_clean_run_puts_each_transition_on_the_topic_once(kafka_url, tmp_path, projectors):
    log = KafkaLog.from_url(kafka_url)
    with LedgerClient(log, clock=fixed_clock) as client:
        client.send(story_lines() + many_traces(300))
    store_path = tmp_path / "projections.db"
    member = projectors(kafka_url, store_path, "clean", "--batch-max", BATCH, "--until-end",
                        stderr_path=tmp_path / "clean.err")
    out, _ = member.communicate(timeout=PROCESS_TIMEOUT_S)
    assert member.returncode == 0, (tmp_path / "clean.err").read_text()
    summary = json.loads(out.strip().splitlines()[-1])

    store = SQLiteProjectionStore(store_path)
    journal = store.journal(limit=1_000_000)
    assert summary["alerts_published"] == len(journal) > 0
    assert copies_on_topic(log, journal) == 0
    assert committed_marker(log).seq == journal[-1]["seq"]
    seen: list[dict] = []
    assert follow_alerts(log, seen.append, until_end=True)["copies"] == 0
    assert_equal_to_replay(log, store, tmp_path)
    log.close()


def test_two_members_rebalancing_mid_stream_put_each_transition_on_the_topic_once(kafka_url, tmp_path, projectors):
    log = KafkaLog.from_url(kafka_url)
    reports = story_lines() + many_traces(600)
    with LedgerClient(log, clock=fixed_clock) as client:
        client.send(reports)
    store_path = tmp_path / "shared.db"

    # One member starts alone with every partition (so it publishes) ...
    first = projectors(kafka_url, store_path, "pair", "--batch-max", BATCH, "--max-idle", "4",
                       stderr_path=tmp_path / "a.err")
    wait_until(lambda: applied(store_path, log.name) >= REBALANCE_AFTER_RECORDS or first.poll() is not None,
               f"the first member to commit {REBALANCE_AFTER_RECORDS} records",
               detail=lambda: (tmp_path / "a.err").read_text()[-2000:])
    # ... and mid-stream a second joins: the group rebalances, partition 0
    # (and with it the publishing) may move, and both publish what is left
    # when they stop.
    second = projectors(kafka_url, store_path, "pair", "--batch-max", BATCH, "--max-idle", "4",
                        stderr_path=tmp_path / "b.err")
    summaries = []
    for process, name in ((first, "a"), (second, "b")):
        out, _ = process.communicate(timeout=PROCESS_TIMEOUT_S)
        assert process.returncode == 0, (tmp_path / f"{name}.err").read_text()
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    assert len(assignments(tmp_path / "a.err")) >= 2, "the first member must have been rebalanced"
    assert sum(s["records"] for s in summaries) == len(reports)

    store = SQLiteProjectionStore(store_path)
    journal = store.journal(limit=1_000_000)
    assert copies_on_topic(log, journal) == 0
    assert sum(s["alerts_published"] for s in summaries) == len(journal)
    assert_equal_to_replay(log, store, tmp_path)
    log.close()
