"""Two projector processes in one consumer group split the partitions and,
together, build the same projections as one replay of the whole log."""

from __future__ import annotations

import json

from fixtures_kafka import (PARTITIONS, PROCESS_TIMEOUT_S, assignments, fixed_clock, many_traces,
                            story_lines, wait_until)

from consumers.client import LedgerClient
from consumers.kafka.log import KafkaLog
from consumers.projector import catch_up
from ledger.policy import load_policy
from projections.sqlite_store import SQLiteProjectionStore

IDLE_S = "4"  # after its last record (or its last rebalance) a member stops


def test_two_members_split_the_partitions_and_end_equal_to_one_replay(kafka_url, tmp_path, projectors):
    log = KafkaLog.from_url(kafka_url)  # creates the topics, 4 partitions
    assert log.partitions() == list(range(PARTITIONS))
    store_path = tmp_path / "shared.db"
    members = [(projectors(kafka_url, store_path, "pair", "--max-idle", IDLE_S, "--batch-max", "50",
                           stderr_path=tmp_path / f"{name}.err"), tmp_path / f"{name}.err")
               for name in ("a", "b")]

    # Both have joined and the group has settled on two partitions each.
    wait_until(lambda: all(assignments(err) and len(assignments(err)[-1]) == 2 for _p, err in members),
               "both members to hold two partitions each",
               detail=lambda: "\n".join(err.read_text()[-2000:] for _p, err in members))
    final = [assignments(err)[-1] for _p, err in members]
    assert sorted(final[0] + final[1]) == list(range(PARTITIONS))

    # Now the parties report: the story and 300 more traces.
    reports = story_lines() + many_traces(300)
    with LedgerClient(log, clock=fixed_clock) as client:
        client.send(reports)

    summaries = []
    for process, err in members:
        out, _ = process.communicate(timeout=PROCESS_TIMEOUT_S)
        assert process.returncode == 0, err.read_text()
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    # Each member applied its share, and no report was applied twice.
    assert all(s["records"] > 0 for s in summaries), summaries
    assert sum(s["records"] for s in summaries) == len(reports)

    # One process replaying the whole log from offset 0 gets the same projections.
    shared = SQLiteProjectionStore(store_path)
    replayed = SQLiteProjectionStore(tmp_path / "replayed.db")
    catch_up(log, replayed, policy=load_policy(None), clock=fixed_clock)
    assert shared.fingerprint() == replayed.fingerprint()
    assert shared.standing_alerts(fixed_clock()) == replayed.standing_alerts(fixed_clock())
    assert shared.tracked_offsets(log.name) == {p: end - 1 for p, end in log.end_offsets().items()}
    log.close()
