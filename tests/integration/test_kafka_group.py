"""Two projector processes in one consumer group split the partitions and,
together, build the same projections as one replay of the whole log."""

from __future__ import annotations

import json
from collections import Counter

from fixtures_kafka import (PARTITIONS, PROCESS_TIMEOUT_S, assignments, committed_alerts, fixed_clock,
                            many_traces, story_lines, wait_until)

from consumers.client import LedgerClient
from consumers.log.kafka import KafkaLog
from consumers.projector import catch_up
from consumers.bootstrap import load_policy
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

    # The alert stream: every journaled transition exactly once, though both
    # members publish what is left when they stop (each fences the other).
    journal = shared.journal(limit=1_000_000)
    raw = Counter(m["transition_id"] for m in committed_alerts(log, len(journal)))
    assert set(raw) == {e["transition_id"] for e in journal}
    copies = sum(n - 1 for n in raw.values())
    assert copies == 0, f"{copies} copies of {len(journal)} transitions"
    log.close()


def test_a_member_overtaken_by_another_drops_what_the_store_has_and_reads_on_from_it(kafka_url, tmp_path):
    # One member applies a first small batch.  Then another member (here a
    # catch-up reading by position from the store's offsets, as a member
    # given the partitions in a rebalance would) applies everything else.
    # The first member's next polls return records the store already has:
    # it drops them and seeks past them.  Nothing is counted twice.
    from consumers.kafka.group_projector import GroupProjector

    log = KafkaLog.from_url(kafka_url)
    reports = story_lines() + many_traces(40)
    with LedgerClient(log, clock=fixed_clock) as client:
        client.send(reports)
    store = SQLiteProjectionStore(tmp_path / "shared.db")
    other = []

    def then_another_member_overtakes(totals) -> None:
        if not other:
            other.append(catch_up(log, store, policy=load_policy(None), clock=fixed_clock))

    member = GroupProjector(log, store, group="overtaken", policy=load_policy(None), clock=fixed_clock,
                            batch_max=5)
    totals = member.run(max_idle_s=1.0, progress=then_another_member_overtakes)
    assert totals.batches >= 1 and totals.already_applied > 0
    assert totals.records + other[0].records == len(reports)

    replayed = SQLiteProjectionStore(tmp_path / "replayed.db")
    catch_up(log, replayed, policy=load_policy(None), clock=fixed_clock)
    assert store.fingerprint() == replayed.fingerprint()
    log.close()


def test_kafka_refusing_alert_transactions_for_a_while_pauses_publishing_not_projecting(kafka_url, tmp_path,
                                                                                        monkeypatch):
    # A broker election moves the transaction coordinator: for a while every
    # attempt to take the publisher role fails.  The member goes on applying
    # reports; once Kafka answers, what was journaled meanwhile goes out,
    # each transition exactly once.
    from consumers.kafka.alert_publisher import AlertPublisher
    from consumers.kafka.group_projector import GroupProjector
    from ledger.ports import LogUnavailable

    refusals = {"left": 3}
    take_the_role = AlertPublisher.start

    def refused_while_the_coordinator_moves(self):
        if refusals["left"]:
            refusals["left"] -= 1
            raise LogUnavailable("Kafka (init alert transactions): KafkaTimeoutError: coordinator not ready")
        return take_the_role(self)

    monkeypatch.setattr(AlertPublisher, "start", refused_while_the_coordinator_moves)
    log = KafkaLog.from_url(kafka_url)
    reports = story_lines() + many_traces(40)
    with LedgerClient(log, clock=fixed_clock) as client:
        client.send(reports)
    store = SQLiteProjectionStore(tmp_path / "member.db")
    said: list[str] = []
    member = GroupProjector(log, store, group="coordinator-moves", policy=load_policy(None), clock=fixed_clock,
                            batch_max=10, say=said.append)
    totals = member.run(max_idle_s=1.0)

    assert totals.records == len(reports)  # projecting never waited for publishing
    assert totals.publish_failures == 3
    assert any(s.startswith("publishing paused, projecting goes on") for s in said), said
    assert any(s.startswith("publishing resumed after") for s in said), said
    journal = store.journal(limit=1_000_000)
    assert journal, "the story raises alerts"
    raw = Counter(m["transition_id"] for m in committed_alerts(log, len(journal)))
    assert set(raw) == {e["transition_id"] for e in journal}
    assert all(n == 1 for n in raw.values()), raw.most_common(3)
    log.close()


def _batch_sizes_behind_the_log(kafka_url, tmp_path, group: str) -> tuple[list[int], int]:
    """A member catching up on 574 reports, batch_max 200, one fetch bringing
    2 KiB a partition: the records of each batch it applied, and the reports."""
    from consumers.kafka.group_projector import GroupProjector

    log = KafkaLog.from_url(kafka_url)
    reports = story_lines() + many_traces(150)
    with LedgerClient(log, clock=fixed_clock) as client:
        client.send(reports)
    store = SQLiteProjectionStore(tmp_path / f"{group}.db")
    member = GroupProjector(log, store, group=group, policy=load_policy(None), clock=fixed_clock,
                            batch_max=200, publish=False, consumer_settings={"max_partition_fetch_bytes": 2048})
    sizes: list[int] = []
    member.run(until=log.end_offsets(), progress=lambda totals: sizes.append(totals.records - sum(sizes)))

    replayed = SQLiteProjectionStore(tmp_path / f"{group}-replayed.db")
    catch_up(log, replayed, policy=load_policy(None), clock=fixed_clock)
    assert store.fingerprint() == replayed.fingerprint()
    log.close()
    return sizes, len(reports)


def test_a_member_behind_its_log_fills_each_batch_to_batch_max_whatever_one_poll_brings(kafka_url, tmp_path):
    # One fetch here brings a few records a partition (2 KiB): the member
    # polls on while the log holds what the batch lacks, so a batch is
    # --batch-max records, not what one poll happened to bring.
    sizes, reports = _batch_sizes_behind_the_log(kafka_url, tmp_path, "behind")

    assert sum(sizes) == reports
    # Full batches while the backlog holds a batch; its tail (174 reports) in one.
    assert sizes == [200, 200, reports - 400], sizes


def test_a_batch_of_large_records_is_bounded_by_bytes_before_records(kafka_url, tmp_path, monkeypatch):
    from consumers.kafka import group_projector

    monkeypatch.setattr(group_projector, "BATCH_BYTES_MAX", 8 * 1024)
    sizes, reports = _batch_sizes_behind_the_log(kafka_url, tmp_path, "bytes")

    assert sum(sizes) == reports
    # The same log filled batches of 200 by count (the test above); 8 KiB
    # of values is some 30 of these reports, so the bytes end each batch.
    assert max(sizes) < 200 and len(sizes) > -(-reports // 200) + 1, sizes
