"""The 2019 story through the producer SDK and Kafka gives what the embedded run gives.

And the SDK's promises to an integrator: validation before anything is sent
(naming field and value), recorded_at stamped by the ledger, the partition
and offset of each report, and a clear error -- never a silent drop --
when the broker cannot be reached.
"""

from __future__ import annotations

import json

import pytest
from fixtures_kafka import FIXED_CLOCK, answers, fixed_clock, report_digests, story_lines

from consumers.client import EventRejected, LedgerClient
from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.kafka.group_projector import GroupProjector
from consumers.log.kafka import KafkaLog
from consumers.projector import catch_up
from consumers.bootstrap import load_policy
from ledger.ports import LogUnavailable
from projections.sqlite_store import SQLiteProjectionStore


def test_story_through_the_sdk_and_kafka_matches_the_embedded_run(kafka_url, tmp_path):
    policy = load_policy(None)
    # The embedded run, as `ledger demo` does it.
    sqlite_log = EmbeddedLog(tmp_path / "log.db")
    embedded = SQLiteProjectionStore(tmp_path / "embedded.db")
    ingest_lines(story_lines(), sqlite_log, source="story", clock=fixed_clock)
    catch_up(sqlite_log, embedded, policy=policy, clock=fixed_clock)

    # The parties' systems send the same reports through the SDK, in two
    # batches; a group projector applies them from Kafka.
    lines = story_lines()
    with LedgerClient(kafka_url, clock=fixed_clock, batch_max=10) as client:
        receipts = client.send(lines[:15]) + client.send(lines[15:])
    assert len(receipts) == len(lines)
    log = KafkaLog.from_url(kafka_url)
    store = SQLiteProjectionStore(tmp_path / "kafka.db")
    totals = GroupProjector(log, store, group="story", policy=policy, clock=fixed_clock).run(until=log.end_offsets())
    assert totals.records == len(lines) and totals.dead_letters == 0

    on_kafka, embedded_answers = answers(store), answers(embedded)
    # On Kafka recorded_at is the broker's append time, never the sender's
    # clock (issue 15): the stored reports are the same reports (digests),
    # stamped by the ledger; every answer is the same (fixtures_kafka.answers).
    assert on_kafka == embedded_answers
    assert report_digests(store) == report_digests(embedded)
    stamps = {json.loads(p)["recorded_at"] for versions in store.all_versions().values() for p, _d in versions}
    assert FIXED_CLOCK.isoformat().replace("+00:00", "Z") not in stamps
    assert store.standing_alerts(FIXED_CLOCK), "the story raises alerts; an empty answer would prove nothing"
    log.close()


def test_receipts_say_where_each_report_is_and_recorded_at_is_stamped(kafka_url):
    # The demo story carries its own recorded_at times (for `ledger audit
    # --known-at`); an integrator's reports do not, so take them off here.
    lines = [json.dumps({k: v for k, v in json.loads(line).items() if k != "recorded_at"}) for line in story_lines()]
    with LedgerClient(kafka_url, clock=fixed_clock) as client:
        receipts = client.send(lines[:5])
    log = KafkaLog.from_url(kafka_url)
    for line, receipt in zip(lines[:5], receipts):
        [record] = log.read(receipt.partition, receipt.offset, 1)
        sent = json.loads(record.value)
        assert sent["event_id"] == json.loads(line)["event_id"] == receipt.event_id
        assert "recorded_at" not in json.loads(line)
        assert sent["recorded_at"] == FIXED_CLOCK.isoformat().replace("+00:00", "Z")
        headers = dict(record.headers)
        assert headers["schema_version"] == b"1" and headers["event_type"] == sent["type"].encode()
    log.close()


def test_a_reported_recorded_at_is_the_ledgers_not_the_senders(kafka_url):
    # Issue 15: the SDK used to keep a recorded_at the sender wrote, so a
    # sender could backdate a second version to win a conflict.
    report = json.loads(story_lines()[5])
    report["recorded_at"] = "2019-07-20T08:00:00+09:00"
    with LedgerClient(kafka_url, clock=fixed_clock) as client:
        receipt = client.send_one(report)
        [record] = client.log.read(receipt.partition, receipt.offset, 1)
    assert json.loads(record.value)["recorded_at"] == FIXED_CLOCK.isoformat().replace("+00:00", "Z")
    # And what the projector reads carries the broker's append time, which is the ledger's.
    assert record.appended_at is not None and not record.stamped_by_ledger


def test_a_refused_report_names_field_and_value_and_nothing_is_sent(kafka_url):
    good = json.loads(story_lines()[5])  # KR-SEMI receives 100 units
    bad = dict(good, event_id="bad-float", quantity={"amount": 30.5, "unit": "kg"})
    with LedgerClient(kafka_url, clock=fixed_clock) as client:
        before = client.log.end_offsets()
        with pytest.raises(EventRejected) as refused:
            client.send([good, bad])
        assert client.log.end_offsets() == before  # not even the good one: the call is all or nothing
    error = refused.value
    assert (error.index, error.event_id) == (1, "bad-float")
    assert [(p.field, p.value) for p in error.problems] == [("quantity.amount", "30.5")]
    assert "report #1 (event_id 'bad-float')" in str(error) and "quantity.amount" in str(error)


def test_an_unreachable_broker_is_a_clear_error_within_bounds():
    # Nothing listens on port 1.  The SDK must say so, naming the broker,
    # after bounded retries -- not hang, and not pretend the reports went.
    # (How long the bounded wait takes is measured in bench/, not asserted here.)
    with pytest.raises(LogUnavailable, match=r"Kafka at 127\.0\.0\.1:1 \(connect\)"):
        LedgerClient(KafkaLog("127.0.0.1:1", "ledger", connect_timeout_s=1)).send(story_lines()[:1])


def test_a_broker_that_goes_away_after_connecting_raises_on_send(tmp_path):
    # A broker of our own, stopped between connecting and sending: the send
    # fails with LogUnavailable once the producer's bounded wait runs out.
    from services.kafka_broker import start_broker

    with start_broker() as broker:
        client = LedgerClient(KafkaLog(broker.bootstrap, "gone", send_timeout_s=2))
        client.send(story_lines()[:1])
    with pytest.raises(LogUnavailable, match=r"send to gone\.events"):
        client.send(story_lines()[1:2])
    client.log.close()  # bounded too, though the broker is gone
