"""Replaying the log from the start gives byte-identical projections, and
re-sending the same reports changes nothing."""

from datetime import datetime, timezone
from pathlib import Path

from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.projector import catch_up
from ledger.policy import Policy
from projections.sqlite_store import SQLiteProjectionStore

STORY = Path(__file__).resolve().parents[2] / "examples" / "story-2019.jsonl"
POLICY = Policy()


def clock_at(text: str):
    moment = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    return lambda: moment


def ingest_story(log: EmbeddedLog, at: str):
    lines = STORY.read_text().splitlines()
    return ingest_lines(lines, log, source=str(STORY), clock=clock_at(at)), len(lines)


def test_rebuilding_from_position_zero_gives_byte_identical_projections():
    log = EmbeddedLog(":memory:")
    report, lines = ingest_story(log, "2020-01-01T00:00:00")
    assert (report.accepted, report.rejected, report.duplicates) == (lines, 0, 0)

    live = SQLiteProjectionStore(":memory:")
    catch_up(log, live, policy=POLICY, clock=clock_at("2020-01-02T00:00:00"))
    # A rebuild on another day, in batches of another size, into a fresh store.
    rebuilt = SQLiteProjectionStore(":memory:")
    catch_up(log, rebuilt, policy=POLICY, clock=clock_at("2021-06-30T00:00:00"), batch_max=3)

    assert rebuilt.fingerprint() == live.fingerprint()
    assert set(live.fingerprint()) >= {"reports", "lots", "alert_steps", "licenses"}
    # The rows themselves, not only their digests.
    assert rebuilt.lots() == live.lots()
    assert rebuilt.all_versions() == live.all_versions()
    assert len(live.lots()) == 7  # the story's seven lots
    live.close()
    rebuilt.close()
    log.close()


def test_re_ingesting_the_same_file_is_a_no_op():
    log = EmbeddedLog(":memory:")
    _, lines = ingest_story(log, "2020-01-01T00:00:00")
    store = SQLiteProjectionStore(":memory:")
    catch_up(log, store, policy=POLICY, clock=clock_at("2020-01-02T00:00:00"))
    before = store.fingerprint()
    offsets = log.end_offsets()

    # The same file again a month later: the ledger stamps the reports with
    # a new recorded_at, but what they say is the same, so they are re-sends.
    again, _ = ingest_story(log, "2020-02-01T00:00:00")
    assert (again.accepted, again.duplicates, again.conflicts, again.rejected) == (0, lines, 0, 0)
    assert log.count() == lines
    assert log.end_offsets() == offsets

    totals = catch_up(log, store, policy=POLICY, clock=clock_at("2020-02-02T00:00:00"))
    assert totals.records == 0
    assert store.fingerprint() == before
    store.close()
    log.close()


def test_records_delivered_twice_are_counted_once():
    # A log that cannot de-duplicate (Kafka) may hand the projection the same
    # report twice; the projection is idempotent on (event id, digest).
    log = EmbeddedLog(":memory:")
    ingest_story(log, "2020-01-01T00:00:00")
    records = log.read(0, 0, 1000)
    once = SQLiteProjectionStore(":memory:")
    catch_up(log, once, policy=POLICY, clock=clock_at("2020-01-02T00:00:00"))

    from ledger.ports import LogRecord
    from projections.trace_projection import project_batch

    twice = SQLiteProjectionStore(":memory:")
    doubled = [LogRecord(0, n, r.key, r.value) for n, r in enumerate(records + records)]
    outcome = project_batch(twice, "kafka:test", doubled, policy=POLICY,
                            now=datetime(2020, 1, 2, tzinfo=timezone.utc))
    lot_reports = [r for r in records if not r.key.startswith("license:")]
    assert outcome.duplicates == len(lot_reports)
    assert twice.fingerprint() == once.fingerprint()
    once.close()
    twice.close()
    log.close()
