"""The event-log port's contract (ledger/ports.py), run on every adapter.

One abstract suite, subclassed once per adapter, as eventsourcing tests its
recorders: the embedded SQLite log and the Kafka log (a real broker, see
tests/fixtures_kafka.py).
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from fixtures_kafka import fixed_clock, many_traces, story_lines

from consumers.log.embedded import EmbeddedLog
from consumers.ingest import Reject, prepare_line, reject_row
from ledger.events import event_key
from consumers.log.kafka import KafkaLog
from ledger.events import FieldProblem, content_digest, parse_event
from consumers.bootstrap import load_policy
from ledger.ports import EventLog, LogRecord, RejectRow
from projections.sqlite_store import SQLiteProjectionStore
from projections.trace_projection import project_batch

READ_LIMIT = 10_000


def records_of(reports: list[object]) -> list[tuple[str, str, str, bytes]]:
    """(event_id, digest, key, value) as ingest and the SDK append them: validated and stamped."""
    out = []
    for report in reports:
        event = parse_event(report).stamped(fixed_clock())
        out.append((event.event_id, content_digest(event), event_key(event),
                    event.model_dump_json(exclude_none=True).encode()))
    return out


def read_all(log: EventLog, start: dict[int, int] | None = None) -> list[LogRecord]:
    """Every record of every partition from ``start`` (default: the beginning)."""
    out: list[LogRecord] = []
    for partition in log.partitions():
        offset = (start or {}).get(partition, 0)
        while True:
            batch = log.read(partition, offset, 100)
            if not batch:
                break
            out.extend(batch)
            offset = batch[-1].offset + 1
    return out


class EventLogContract:
    """What every EventLog adapter promises."""

    @pytest.fixture
    def log(self) -> EventLog:
        raise NotImplementedError

    def test_appended_reports_read_back_at_the_receipts_positions(self, log: EventLog) -> None:
        records = records_of(story_lines())
        receipts = log.append(records)
        assert [r.event_id for r in receipts] == [r[0] for r in records]
        assert all(r.outcome == "accepted" for r in receipts)
        by_position = {(r.partition, r.offset): r for r in read_all(log)}
        assert len(by_position) == len(records)
        for (event_id, _digest, key, value), receipt in zip(records, receipts):
            found = by_position[(receipt.partition, receipt.offset)]
            # Byte for byte what was appended, under the trace id (or license) key.
            assert (found.key, found.value) == (key, value), event_id

    def test_a_key_lives_in_one_partition_in_the_order_appended(self, log: EventLog) -> None:
        # Three appends interleaving 20 traces: each trace's reports must come
        # back in one partition, in the order they were appended.
        reports = many_traces(20)
        records = records_of(reports)
        for part in (records[0::3], records[1::3], records[2::3]):
            log.append(part)
        appended_order = [r[0] for part in (records[0::3], records[1::3], records[2::3]) for r in part]
        per_key: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        for record in read_all(log):
            per_key[record.key].append((record.partition, record.offset,
                                        parse_event(record.value).event_id))
        assert len(per_key) == 20
        for key, found in per_key.items():
            assert len({partition for partition, _o, _e in found}) == 1, key
            offsets = [offset for _p, offset, _e in found]
            assert offsets == sorted(offsets)
            ids = [event_id for _p, _o, event_id in found]
            assert ids == [e for e in appended_order if e in set(ids)], key

    def test_partitions_are_ascending_and_every_record_is_in_one(self, log: EventLog) -> None:
        partitions = log.partitions()
        assert partitions == sorted(partitions) and partitions[0] == 0
        receipts = log.append(records_of(many_traces(12)))
        assert {r.partition for r in receipts} <= set(partitions)

    def test_end_offsets_are_where_the_next_record_goes(self, log: EventLog) -> None:
        before = log.end_offsets()
        assert sorted(before) == log.partitions()
        records = records_of(many_traces(10))
        # Two appends, so a partition holds more than one record batch.
        receipts = log.append(records[:17]) + log.append(records[17:])
        after = log.end_offsets()
        assert sum(after[p] - before[p] for p in after) == len(records)
        for partition in log.partitions():
            mine = [r.offset for r in receipts if r.partition == partition]
            if mine:
                assert after[partition] == max(mine) + 1
            # Reading at the end gives nothing, not an error and not the start again.
            assert log.read(partition, after[partition], 10) == []

    def test_read_honours_start_offset_and_limit(self, log: EventLog) -> None:
        receipts = log.append(records_of(many_traces(1)))  # one trace: one partition
        partition = receipts[0].partition
        offsets = [r.offset for r in receipts]
        assert [r.offset for r in log.read(partition, offsets[1], 2)] == offsets[1:3]
        assert [r.offset for r in log.read(partition, offsets[0], READ_LIMIT)] == offsets

    def test_a_re_sent_report_changes_nothing_in_the_projection(self, log: EventLog, tmp_path) -> None:
        # The story is appended and projected; then every report is sent
        # again (a party retrying after a timeout).  The embedded log sees the
        # duplicates itself; Kafka writes them again.  Either way the store,
        # applying whatever the log now holds, ends byte for byte the same.
        policy = load_policy(None)
        store = SQLiteProjectionStore(tmp_path / "projections.db")
        records = records_of(story_lines())
        log.append(records)
        project_batch(store, log.name, read_all(log), policy=policy, now=fixed_clock())
        fingerprint, lots = store.fingerprint(), store.lots()

        end = log.end_offsets()
        receipts = log.append(records)
        assert {r.outcome for r in receipts} <= {"accepted", "duplicate"}
        resent = read_all(log, end)
        if resent:
            outcome = project_batch(store, log.name, resent, policy=policy, now=fixed_clock())
            assert outcome.dead_letters == 0
            # Every trace report is recognised as already known.  (License
            # reports are counted "accepted" by project_batch even when
            # already stored; the store ignores them, as the fingerprint shows.)
            assert outcome.duplicates == sum(1 for r in records if not r[2].startswith("license:"))
        assert store.fingerprint() == fingerprint
        assert store.lots() == lots
        store.close()

    def test_a_refused_lines_problems_read_back_as_the_refusal_named_them(self, log: EventLog, tmp_path) -> None:
        keep, read = getattr(log, "keep_rejects", None), getattr(log, "rejects", None)
        if keep is None or read is None:
            pytest.skip("this log keeps no rejects")
        source = f"contract-{tmp_path.name}"  # the broker is shared: this test's rows only
        bad = '{"type": "received", "lot_id": 5}'
        refused = prepare_line(bad, 1, source=source, clock=fixed_clock)
        assert isinstance(refused, Reject)
        older = RejectRow(source, 2, "not json", "field '(line)' value 'not json': not JSON", "2019-01-01T00:00:00")
        keep([reject_row(refused, fixed_clock()), older])
        kept = {r.line: r for r in read(limit=READ_LIMIT) if r.source == source}
        assert kept[1].field_problems() == refused.problems
        assert kept[1].shown().problems == "; ".join(str(p) for p in refused.problems)  # `ledger rejects`
        # A row kept before problems were kept apart: one problem saying it all.
        assert kept[2].field_problems() == [FieldProblem(field="(line)", value="(in the message)",
                                                         message=older.problems)]
        assert kept[2].shown() == older  # `ledger rejects` prints it as it was kept


class TestEmbeddedLog(EventLogContract):
    @pytest.fixture
    def log(self, tmp_path) -> EventLog:
        log = EmbeddedLog(tmp_path / "log.db")
        yield log
        log.close()


class TestKafkaLog(EventLogContract):
    @pytest.fixture
    def log(self, kafka_url: str) -> EventLog:
        log = KafkaLog.from_url(kafka_url)
        yield log
        log.close()
