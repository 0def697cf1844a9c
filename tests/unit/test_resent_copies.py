"""Re-sent copies (docs/EVENTS.md, "Idempotency and conflicts"): of the
copies of one report a log holds, the one with the earliest recorded_at is
kept, whatever order they arrive in; a log that keeps one copy (the
embedded log) keeps the first appended, which ingest stamped first."""

import json
from datetime import datetime, timezone

from builders import received, stamp
from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from ledger.events import event_key
from ledger.events import digest_and_json
from ledger.policy import Policy
from ledger.ports import LogRecord
from projections.sqlite_store import SQLiteProjectionStore
from projections.trace_projection import project_batch

NOW = datetime(2020, 1, 1, tzinfo=timezone.utc)
EARLY, LATE = "2019-07-16T00:00:00+00:00", "2019-07-20T00:00:00+00:00"


def kept_recorded_at(store: SQLiteProjectionStore) -> list[str]:
    return [json.loads(payload)["recorded_at"] for versions in store.all_versions().values()
            for payload, _digest in versions]


def test_the_copy_recorded_first_is_kept_in_any_arrival_order():
    # A log that holds every copy sent (Kafka): the projection chooses.
    report = received()
    copies = {name: stamp(report, at) for name, at in (("early", EARLY), ("late", LATE))}
    kept = {}
    for order in (("late", "early"), ("early", "late")):
        store = SQLiteProjectionStore(":memory:")
        for offset, name in enumerate(order):
            digest, value = digest_and_json(copies[name])
            project_batch(store, "log", [LogRecord(0, offset, event_key(report), value)], policy=Policy(), now=NOW)
        kept[order] = kept_recorded_at(store)
    assert kept == {("late", "early"): ["2019-07-16T00:00:00Z"], ("early", "late"): ["2019-07-16T00:00:00Z"]}


def test_the_embedded_log_keeps_the_copy_appended_first():
    # The embedded log refuses a re-send at the door; ingest stamps its own
    # clock, so the copy appended first is the copy recorded first.  Only a
    # migration (trust_recorded_at) can send a later copy stamped earlier:
    # it is a no-op, and the log keeps what the ledger learned first.
    log = EmbeddedLog(":memory:")
    body = json.loads(received().model_dump_json(exclude_none=True))
    lines = [json.dumps({**body, "recorded_at": at}) for at in (LATE, EARLY)]
    outcome = ingest_lines(lines, log, source="migration.jsonl", clock=lambda: NOW, trust_recorded_at=True)
    assert (outcome.accepted, outcome.duplicates) == (1, 1)
    [record] = log.read(0, 0, 10)
    assert json.loads(record.value)["recorded_at"] == "2019-07-20T00:00:00Z"
