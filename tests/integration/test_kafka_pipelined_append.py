"""Ingest and the SDK keep several batches in flight on Kafka
(KafkaLog.begin_append): every report must still be on the log, once, in
order within its trace, with a receipt that points at it, and counted only
once acknowledged."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from fixtures_kafka import fixed_clock, many_traces

from consumers.client import LedgerClient
from consumers.ingest import ingest_lines
from ledger.events import event_key
from consumers.log.kafka import KafkaLog
from ledger.events import content_digest, parse_event
from ledger.ports import LogUnavailable

BATCH = 7  # many small batches: more than KafkaLog.appends_in_flight_max of them in flight over the run


def read_all(log: KafkaLog) -> list[tuple[int, int, dict[str, bytes], dict]]:
    out = []
    for partition, end in log.end_offsets().items():
        offset = 0
        while offset < end:
            for r in log.read(partition, offset, 1000):
                out.append((r.partition, r.offset, dict(r.headers), json.loads(r.value)))
                offset = r.offset + 1
    return out


def test_ingest_with_batches_in_flight_writes_every_report_once_in_order(kafka_url: str) -> None:
    reports = many_traces(20)
    lines = [json.dumps(r) for r in reports]
    assert len(lines) > BATCH * (KafkaLog.appends_in_flight_max + 2)
    log = KafkaLog.from_url(kafka_url)
    seen: list[int] = []
    try:
        report = ingest_lines(lines, log, source="t", clock=fixed_clock, batch_max=BATCH,
                              progress=lambda r: seen.append(r.accepted))
        assert (report.accepted, report.rejected, report.lines) == (len(lines), 0, len(lines))
        assert seen == sorted(seen) and seen[-1] == len(lines)  # progress counts only what is acknowledged
        records = read_all(log)
    finally:
        log.close()
    assert sorted(r[3]["event_id"] for r in records) == sorted(r["event_id"] for r in reports)
    # Within a partition the log keeps the order the reports were read in.
    position = {r["event_id"]: n for n, r in enumerate(reports)}
    by_partition: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for partition, offset, headers, body in records:
        by_partition[partition].append((offset, body["event_id"]))
        event = parse_event(body)
        assert headers["digest"] == content_digest(event).encode()
        assert headers["event_id"] == event.event_id.encode()
    for rows in by_partition.values():
        order = [position[event_id] for _offset, event_id in sorted(rows)]
        assert order == sorted(order)


def test_sdk_receipts_point_at_their_reports(kafka_url: str) -> None:
    reports = many_traces(12)
    with LedgerClient(kafka_url, clock=fixed_clock, batch_max=BATCH) as client:
        receipts = client.send(reports)
        assert [r.event_id for r in receipts] == [r["event_id"] for r in reports]
        assert all(r.outcome == "accepted" for r in receipts)
        log = client.log
        for receipt, report in zip(receipts, reports):
            (record,) = log.read(receipt.partition, receipt.offset, 1)
            assert json.loads(record.value)["event_id"] == report["event_id"]
            assert record.key == event_key(parse_event(report))
        assert len({(r.partition, r.offset) for r in receipts}) == len(reports)


def test_begin_append_promises_nothing_until_its_receipts(kafka_url: str) -> None:
    # The receipts of a pending append are those append would give: the
    # record is readable at each.
    log = KafkaLog.from_url(kafka_url)
    try:
        event = parse_event(many_traces(1)[0]).stamped(fixed_clock())
        record = (event.event_id, content_digest(event), event_key(event),
                  event.model_dump_json(exclude_none=True).encode())
        pending = log.begin_append([record])
        (receipt,) = pending.receipts()
        (read,) = log.read(receipt.partition, receipt.offset, 1)
        assert read.value == record[3] and dict(read.headers)["digest"] == record[1].encode()
    finally:
        log.close()


def test_a_broker_gone_mid_ingest_raises_and_counts_nothing_unacknowledged() -> None:
    from services.kafka_broker import start_broker

    lines = [json.dumps(r) for r in many_traces(10)]
    with start_broker() as broker:
        log = KafkaLog(broker.bootstrap, "gone", send_timeout_s=2)
        log.append([])  # connected
        log.producer  # noqa: B018 - the producer is up before the broker goes
    counted: list[int] = []
    with pytest.raises(LogUnavailable, match=r"send to gone\.events"):
        ingest_lines(lines, log, source="t", clock=fixed_clock, batch_max=BATCH,
                     progress=lambda r: counted.append(r.accepted))
    assert counted == [] or counted[-1] == 0
    log.close()
