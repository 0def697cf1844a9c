"""The ledger, not the sender, says when it learned a report.

recorded_at decides which of two conflicting versions of an event wins and
what an auditor's --known-at query sees, so a party must not be able to
choose it; and a report may not describe the future.
"""

from datetime import datetime, timezone

from builders import consumed, exported, line, received

from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from consumers.projector import catch_up
from ledger.policy import Policy
from projections.sqlite_store import SQLiteProjectionStore

NOW = datetime(2019, 9, 1, tzinfo=timezone.utc)
LATER = datetime(2019, 9, 2, tzinfo=timezone.utc)


class Ledger:
    """An embedded log and its projection store, both in memory."""

    def __init__(self) -> None:
        self.log, self.store = EmbeddedLog(":memory:"), SQLiteProjectionStore(":memory:")

    def ingest(self, lines, *, clock, trust=False):
        report = ingest_lines(lines, self.log, source="test", clock=lambda: clock, trust_recorded_at=trust)
        catch_up(self.log, self.store, policy=Policy(), clock=lambda: clock)
        return report, self.store


def ingest(lines, *, clock, trust=False):
    """``lines`` ingested into a new ledger and projected."""
    return Ledger().ingest(lines, clock=clock, trust=trust)


def test_a_backdated_second_version_does_not_win_the_conflict():
    # The consignee reports 100 kg received and consumes it all.
    first = [line(exported()), line(received(qty="100", event_id="RCV-1")), line(consumed(qty="100"))]
    ledger = Ledger()
    ledger.ingest(first, clock=NOW)
    # Later someone re-sends RCV-1 saying 10 kg, with a recorded_at long past.
    forged = line(received(qty="10", event_id="RCV-1"), recorded_at="2019-07-15T00:00:00Z")
    report, store = ledger.ingest([forged], clock=LATER)
    # It is kept as a conflicting version, but the first recorded still counts.
    assert report.conflicts == 1
    [lot] = store.lots(lot_id="L1")
    assert lot["received"] == "100"
    kinds = {a["kind"] for a in store.standing_alerts(LATER)}
    assert "conflicting_report" in kinds and "over_accounting" not in kinds


def test_a_migration_may_keep_the_recording_times_it_carries():
    migrated = line(exported(), recorded_at="2019-07-10T12:00:00Z")
    _report, store = ingest([migrated], clock=LATER, trust=True)
    [(payload, _digest)] = store.load_versions(["TR-1"])["TR-1"]
    assert '"recorded_at":"2019-07-10T12:00:00Z"' in payload


def test_a_report_dated_after_its_recording_is_refused_naming_the_field():
    # A holder cannot silence an alert today with a consumption dated next year.
    report, store = ingest([line(exported()), line(consumed(at="2030-01-01"))], clock=NOW)
    assert report.accepted == 1 and report.rejected == 1
    [problem] = report.rejects[0].problems
    assert problem.field == "occurred_at"
    assert problem.value == '"2030-01-01T00:00:00+00:00"'
    assert problem.message.startswith("is later than when the ledger recorded the report (2019-09-01T00:00:00+00:00)")


def test_clock_skew_of_a_few_minutes_is_tolerated():
    report, _store = ingest([line(exported(at="2019-09-01T00:10:00Z"))], clock=NOW)
    assert report.accepted == 1 and report.rejected == 0
