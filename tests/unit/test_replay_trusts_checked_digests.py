"""`ledger replay` validates each report exactly once (issue 18), and still
catches a record whose bytes were changed after it was written.

On a log only the ledger appends to (``EventLog.validated_on_append``: the
embedded log) the replay checks each record's bytes against the digest stored
beside them, then rebuilds trusting that digest.  On a log any producer
appends to (Kafka) a stored digest is only a claim: the rebuild computes
each digest from the report itself.  Either way each record is read into the
contract once, and a record whose bytes do not match their stored digest is
damage, found before anything is rebuilt.

In memory: a log held in a list (``HeldLog``, a fake of the port), stores
``:memory:``.  The same on the embedded log's file, with another writer
beside the replay: tests/integration/test_replay_trusts_checked_digests.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone

import pytest

import consumers.log_check
import projections.trace_projection
from consumers.log_check import verify_log
from consumers.projector import rebuild
from ledger.events import content_digest, digest_and_json, event_key, parse_event, stored_body_digest
from ledger.policy import Policy
from ledger.ports import HEADER_DIGEST, AppendReceipt, EventLog, LogRecord
from projections.sqlite_store import SQLiteProjectionStore
from tests.builders import consumed, exported, received, stamp
from tests.unit.test_content_digest_pinned import PINNED

POLICY = Policy()
NOW = datetime(2020, 1, 2, tzinfo=timezone.utc)
RECORDED = "2019-12-01T00:00:00+00:00"

# Japan exports 100 kg to the consignee, who receives 100 kg and reports 70 kg consumed.
STORY = [exported("L1", trace="TR-1"), received("L1", trace="TR-1"), consumed("L1", qty="70", trace="TR-1"),
         exported("L2", trace="TR-2"), received("L2", trace="TR-2")]

# Intact (stored with the digest of its own body) but refused by today's
# contract: a year the contract no longer takes (tests/unit/test_quarantine.py).
REFUSED = (b'{"type":"received","event_id":"q-rcv-1","occurred_at":"0001-01-01T00:00:00+14:00",'
           b'"recorded_at":"2019-12-01T00:00:00+00:00","reporter":"KR-B","trace_id":"TR-Q1","lot_id":"Q1",'
           b'"quantity":{"amount":"100","unit":"kg"}}')


class HeldLog(EventLog):
    """One partition held in a list, offsets from 0: the port and nothing
    else.  ``validated``: the embedded log's promise (only the ledger
    appends, after validating) or Kafka's (any producer may)."""

    name = "held"

    def __init__(self, *, validated: bool, reads_by_key: bool = True):
        self.validated_on_append = validated
        self.reads_by_key = reads_by_key
        self.records: list[LogRecord] = []

    def append(self, records: Sequence[tuple[str, str, str, bytes]]) -> list[AppendReceipt]:
        receipts = []
        for event_id, digest, key, value in records:
            offset = len(self.records)
            self.records.append(LogRecord(0, offset, key, value, ((HEADER_DIGEST, digest.encode()),)))
            receipts.append(AppendReceipt(event_id, "accepted", 0, offset))
        return receipts

    def partitions(self) -> list[int]:
        return [0]

    def read(self, partition: int, start_offset: int, limit: int) -> list[LogRecord]:
        return self.records[start_offset:start_offset + limit]

    def read_by_key(self, below: dict[int, int]) -> Iterator[LogRecord]:
        held = self.records[:below.get(0, 0)]
        yield from sorted(held, key=lambda r: (not r.key.startswith("license:"), r.key, r.offset))

    def end_offsets(self) -> dict[int, int]:
        return {0: len(self.records)}

    def report(self, *events) -> None:
        """Append ``events`` as ingest does: stamped, its bytes, its digest."""
        rows = []
        for event in events:
            digest, value = digest_and_json(stamp(event, RECORDED))
            rows.append((event.event_id, digest, event_key(event), value))
        self.append(rows)

    def edit(self, event_id: str, old: bytes, new: bytes) -> None:
        """Change a held report's bytes, its stored digest left as it was."""
        [n] = [n for n, r in enumerate(self.records) if json.loads(r.value).get("event_id") == event_id]
        assert old in self.records[n].value
        self.records[n] = dataclasses.replace(self.records[n], value=self.records[n].value.replace(old, new, 1))


def replay(log: HeldLog, *, digests_checked: bool = True) -> tuple[SQLiteProjectionStore, int]:
    """What `ledger replay` does (consumers/cli/record.py): the quick check,
    then, with no damage found, the rebuild.  The store, and the problems."""
    store = SQLiteProjectionStore(":memory:")
    with log.snapshot():
        problems = verify_log(log, contract=False).problem_count
        if not problems:
            rebuild(log, store, policy=POLICY, clock=lambda: NOW, digests_checked=digests_checked)
    return store, problems


@pytest.fixture
def counted(monkeypatch):
    """How many times each record was read into the contract, and each
    report's digest computed, by the check and the rebuild together."""
    counts: dict[str, Counter] = {"parsed": Counter(), "digested": Counter()}

    def parse(data):
        event = parse_event(data)
        counts["parsed"][event.event_id] += 1
        return event

    def digest(event):
        counts["digested"][event.event_id] += 1
        return content_digest(event)

    for module in (consumers.log_check, projections.trace_projection):
        monkeypatch.setattr(module, "parse_event", parse)
    monkeypatch.setattr(projections.trace_projection, "content_digest", digest)
    return counts


@pytest.mark.parametrize(("report", "_digest"), PINNED, ids=["line", "exported", "received", "corrected", "granted"])
def test_bytes_intact_by_their_digest_are_the_report_the_contract_reads(report, _digest):
    # What the rebuild relies on: bytes as ingest writes them, whose body
    # hashes to the stored digest, read into the contract give that digest.
    event = parse_event(report).stamped(datetime(2030, 1, 1, tzinfo=timezone.utc))
    digest, value = digest_and_json(event)
    assert stored_body_digest(json.loads(value)) == digest
    assert content_digest(parse_event(value)) == digest


def test_a_log_validated_on_append_has_each_report_read_once_and_no_digest_computed_again(counted):
    log = HeldLog(validated=True)
    log.report(*STORY)

    store, problems = replay(log)

    ids = [e.event_id for e in STORY]
    assert problems == 0
    assert counted["parsed"] == Counter(ids)  # by the rebuild; the check read none into the contract
    assert counted["digested"] == Counter()  # the stored digests, checked against the bytes, are used
    assert store.fingerprint() == replay(log, digests_checked=False)[0].fingerprint()


@pytest.mark.parametrize("reads_by_key", [True, False], ids=["rebuilt-by-key", "caught-up-as-kafka"])
def test_a_log_any_producer_appends_to_is_still_validated_exactly_once(counted, reads_by_key):
    # Kafka: the same reports, but the log does not promise they were validated.
    log = HeldLog(validated=False, reads_by_key=reads_by_key)
    log.report(*STORY)

    store, problems = replay(log)

    ids = [e.event_id for e in STORY]
    assert problems == 0
    assert counted["parsed"] == Counter(ids)
    assert counted["digested"] == Counter(ids)  # each computed from the report, not taken from the header
    trusted = HeldLog(validated=True)
    trusted.report(*STORY)
    assert store.fingerprint() == replay(trusted, digests_checked=False)[0].fingerprint()


def test_a_producers_digest_header_is_not_the_reports_digest_on_a_log_it_may_append_to():
    # A producer writes 100 kg as "100.0" and stamps the digest of its own
    # bytes: intact by that digest, but the report's content digest (its
    # identity: a re-send of the same report is a no-op, not a conflict) is
    # computed from what it says.  Trusted, the digest would be the header's.
    digest, value = digest_and_json(stamp(received("L1", trace="TR-1"), RECORDED))
    body = json.loads(value)
    body["quantity"]["amount"] = "100.0"
    producers = json.dumps(body).encode()
    assert stored_body_digest(body) != digest == content_digest(parse_event(producers))

    log = HeldLog(validated=False)
    log.report(exported("L1", trace="TR-1"))
    log.append([(body["event_id"], stored_body_digest(body), "TR-1", producers)])
    log.report(received("L1", trace="TR-1"))  # the same report again, as the ledger writes it

    store, problems = replay(log)

    assert problems == 0
    # As if the ledger had written both: a re-send, dropped (trusted, the
    # header's digest would make it a conflicting report).
    ledgers = HeldLog(validated=True)
    ledgers.report(exported("L1", trace="TR-1"), received("L1", trace="TR-1"), received("L1", trace="TR-1"))
    assert store.fingerprint() == replay(ledgers)[0].fingerprint()


@pytest.mark.parametrize("validated", [True, False], ids=["embedded", "kafka"])
def test_a_changed_record_is_damage_found_before_anything_is_rebuilt(validated):
    # The consignee's 70 kg consumed now reads 7 kg, its stored digest as it was.
    log = HeldLog(validated=validated)
    log.report(*STORY)
    log.edit(STORY[2].event_id, b'"70"', b'"7"')

    check = verify_log(log, contract=False)
    store, problems = replay(log)

    stored = digest_and_json(stamp(STORY[2], RECORDED))[0]
    changed = content_digest(parse_event(log.records[2].value))
    assert problems == check.problem_count == 1
    assert check.problems == [f"partition 0 offset 2: report '{STORY[2].event_id}' does not match its stored "
                              f"digest (stored {stored[:16]}..., its content {changed[:16]}...): "
                              f"changed after it was recorded"]
    assert store.fingerprint() == SQLiteProjectionStore(":memory:").fingerprint()  # nothing rebuilt


def test_a_rebuild_that_was_not_checked_computes_the_digests_and_so_does_not_take_a_changed_record_as_its_report(
        counted):
    # Trust is the caller's promise that it checked (`ledger replay` does):
    # without it the rebuild computes every digest, even on the embedded log.
    log = HeldLog(validated=True)
    log.report(*STORY)
    log.edit(STORY[2].event_id, b'"70"', b'"7"')
    store = SQLiteProjectionStore(":memory:")

    rebuild(log, store, policy=POLICY, clock=lambda: NOW)

    assert counted["digested"] == Counter(e.event_id for e in STORY)


def test_the_quick_check_finds_the_damage_the_full_check_finds():
    log = HeldLog(validated=True)
    log.report(*STORY[:3])
    log.append([("q-rcv-1", stored_body_digest(json.loads(REFUSED)), "TR-Q1", REFUSED),  # intact, refused
                ("q-rcv-2", "0" * 64, "TR-Q1", REFUSED.replace(b"q-rcv-1", b"q-rcv-2"))])  # not its digest
    log.edit(STORY[2].event_id, b'"70"', b'"7"')  # 70 consumed now reads 7
    log.edit(STORY[1].event_id, b'"lot_id":"L1"', b'"lot_id":"L9","lot_id":"L1"')  # a key said twice

    full, quick = verify_log(log), verify_log(log, contract=False)

    assert quick.problems == full.problems
    assert quick.problem_count == full.problem_count == 2
    assert any(f"report '{STORY[2].event_id}' does not match its stored digest" in p for p in quick.problems)
    assert any("not a report" in p for p in quick.problems)
    # The key said twice keeps its content (the last one counts, as in the
    # contract): whole by its digest either way; the projector refuses it.
    # Only the full check reads the intact records into the contract.
    assert (full.not_reports, quick.not_reports) == (1, 0)


def test_a_rebuild_trusting_checked_digests_still_refuses_what_the_contract_refuses(monkeypatch):
    log = HeldLog(validated=True)
    log.report(exported("Q1", trace="TR-Q1"), exported("G1", trace="TR-GOOD"))
    log.append([("q-rcv-1", stored_body_digest(json.loads(REFUSED)), "TR-Q1", REFUSED)])
    log.report(received("G1", trace="TR-GOOD"))
    log.edit(received("G1", trace="TR-GOOD").event_id, b'"lot_id":"G1"', b'"lot_id":"G9","lot_id":"G1"')

    untrusted, problems = replay(log, digests_checked=False)
    monkeypatch.setattr(projections.trace_projection, "content_digest", _not_again)
    trusted, problems_trusted = replay(log)

    assert problems == problems_trusted == 0
    assert trusted.fingerprint() == untrusted.fingerprint()
    for store in (trusted, untrusted):
        errors = sorted(dead["error"] for dead in store.dead_letters())
        assert len(errors) == 2
        assert 'field \'lot_id\' value "G1": appears twice in one object' in errors[0]
        assert 'field \'occurred_at\' value "0001-01-01T00:00:00+14:00"' in errors[1]


def _not_again(event):
    raise AssertionError(f"the digest of {event.event_id!r} was computed again")
