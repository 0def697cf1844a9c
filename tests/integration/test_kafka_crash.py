"""A projector process killed with SIGKILL mid-stream, then started again,
ends exactly where an uninterrupted replay ends: nothing counted twice, and
no alert transition twice on the alerts topic (read_committed).
"""

from __future__ import annotations

import ast
import json
import re
import signal
from collections import Counter

from fixtures_kafka import (PROCESS_TIMEOUT_S, applied, committed_alerts, fixed_clock, many_traces, raw_alerts,
                            story_lines, wait_until)

from consumers.client import LedgerClient
from consumers.kafka.alert_publisher import follow_alerts, published_seq
from consumers.log.kafka import KafkaLog
from consumers.projector import catch_up, utc_now
from consumers.bootstrap import load_policy
from projections.sqlite_store import SQLiteProjectionStore

BATCH = "10"  # small batches: many commits, so the kill lands between two of them
KILL_AFTER_RECORDS = 150


def test_kill_9_mid_stream_then_restart_ends_identical_with_no_double_counting(kafka_url, tmp_path, projectors):
    log = KafkaLog.from_url(kafka_url)
    reports = story_lines() + many_traces(600)
    with LedgerClient(log, clock=fixed_clock) as client:
        client.send(reports)
    store_path = tmp_path / "projections.db"

    # The projector runs; once it has committed some batches, kill -9.
    first = projectors(kafka_url, store_path, "crash", "--batch-max", BATCH, stderr_path=tmp_path / "first.err")
    wait_until(lambda: applied(store_path, log.name) >= KILL_AFTER_RECORDS or first.poll() is not None,
               f"the projector to commit {KILL_AFTER_RECORDS} records",
               detail=lambda: (tmp_path / "first.err").read_text()[-2000:])
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=PROCESS_TIMEOUT_S)
    assert first.returncode == -signal.SIGKILL
    on_topic_at_kill = {m["transition_id"]: m["seq"] for m in raw_alerts(log)}

    # Started again (same group, same store), it reads on from the store's
    # offsets, and says where they were: that is what the dead one committed.
    second = projectors(kafka_url, store_path, "crash", "--batch-max", BATCH, "--until-end",
                        stderr_path=tmp_path / "second.err")
    out, _ = second.communicate(timeout=PROCESS_TIMEOUT_S)
    said = (tmp_path / "second.err").read_text()
    assert second.returncode == 0, said
    starts = ast.literal_eval(re.search(r"reading from the store's offsets (\{.*\})", said).group(1))
    at_kill = sum(starts.values())
    assert KILL_AFTER_RECORDS <= at_kill < len(reports), "the kill must land mid-stream"
    recorded_at_kill = int(re.search(r"published up to journal seq (\d+)", said).group(1))
    resumed = json.loads(out.strip().splitlines()[-1])
    # It read nothing the store had (Kafka's committed offsets were never
    # written), and applied exactly the rest: nothing twice, nothing skipped.
    assert resumed["already_applied"] == 0
    assert resumed["records"] == len(reports) - at_kill

    store = SQLiteProjectionStore(store_path)
    replayed = SQLiteProjectionStore(tmp_path / "replayed.db")
    catch_up(log, replayed, policy=load_policy(None), clock=fixed_clock)
    assert store.fingerprint() == replayed.fingerprint()
    assert store.tracked_offsets(log.name) == {p: end - 1 for p, end in log.end_offsets().items()}

    # The alert stream, as a dashboard follows it: each journaled transition
    # exactly once after de-duplication by transition id, none missing.
    journal = store.journal(limit=1_000_000)
    assert published_seq(store, log) == journal[-1]["seq"]
    seen: list[dict] = []
    counts = follow_alerts(log, seen.append, until_end=True)
    assert sorted(m["transition_id"] for m in seen) == sorted(e["transition_id"] for e in journal)
    # The alerts it ends with open are the alerts standing in the store.
    last = {m["alert_id"]: m for m in sorted(seen, key=lambda m: m["seq"])}
    still_open = {a for a, m in last.items() if m["transition"] != "resolved"}
    assert still_open == {a["alert_id"] for a in store.standing_alerts(utc_now())}
    assert still_open, "the generated traces leave alerts standing; an empty set would prove nothing"

    # On the topic as a read_committed subscriber reads it, no copies at all:
    # what the killed projector sent in a transaction it never committed was
    # aborted when the restart took the publisher role, and the restart
    # resumed after the marker Kafka committed, not after the store's record.
    raw = Counter(m["transition_id"] for m in committed_alerts(log, len(journal)))
    assert raw == Counter(e["transition_id"] for e in journal)
    assert counts["copies"] == 0
    assert recorded_at_kill <= journal[-1]["seq"]
    assert set(on_topic_at_kill) <= set(raw)
    log.close()
