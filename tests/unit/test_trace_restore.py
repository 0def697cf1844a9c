"""A trace restored from the versions a store holds is the trace that recorded them.

Restoring raises no event per version (they were recorded when they
arrived) but keeps every rule of recording: each version belongs to the
trace, is stamped, and of two copies of one version the earlier stands.
"""

from __future__ import annotations

import pytest

from ledger.account import Version
from ledger.events import content_digest
from ledger.trace import Outcome, ReportForAnotherTrace, ReportNotStamped, Trace
from tests.builders import consumed, exported, received, retracted, stamp, trace_of


def _held(trace: Trace) -> list[Version]:
    return trace.versions()


def test_a_restored_trace_has_the_versions_and_account_of_the_trace_that_recorded_them():
    export, receipt, use = exported(), received(), consumed()
    conflicting = stamp(consumed(qty="60"), "2019-08-21")
    recorded = trace_of(export, receipt, use, retracted(use))
    recorded.record(conflicting)

    restored = Trace.restored(recorded.trace_id, reversed(_held(recorded)))

    assert sorted((v.event_id, v.digest) for v in restored.versions()) == sorted(
        (v.event_id, v.digest) for v in recorded.versions()
    )
    assert restored.account() == recorded.account()


def test_restoring_records_nothing_new():
    # The Trace is a plain class now (the reports table is the event store of
    # record: ledger/trace.py); restoring must still not count as recording.
    # Every held version, sent again, is a re-send.
    recorded = trace_of(exported(), received(), consumed())
    restored = Trace.restored(recorded.trace_id, _held(recorded))

    assert [restored.record(v.event, v.digest) for v in _held(recorded)] == [Outcome.DUPLICATE] * 3
    assert not hasattr(restored, "collect_events")


def test_of_two_held_copies_of_one_version_the_earlier_recorded_stands():
    early, late = stamp(exported(), "2019-07-10"), stamp(exported(), "2019-07-12")
    digest = content_digest(early)
    assert digest == content_digest(late)

    restored = Trace.restored(early.trace_id, [Version(late, digest), Version(early, digest)])

    [held] = restored.versions()
    assert held.recorded_at == early.recorded_at
    # And what is restored behaves like what was recorded: the later copy is a re-send.
    assert restored.record(late, digest) is Outcome.DUPLICATE


def test_a_version_of_another_trace_is_refused_on_restore():
    export = stamp(exported(trace="TR-OTHER"))
    with pytest.raises(ReportForAnotherTrace, match="TR-OTHER"):
        Trace.restored("TR-MINE", [Version(export, content_digest(export))])


def test_an_unstamped_version_is_refused_on_restore():
    export = exported()
    assert export.recorded_at is None
    with pytest.raises(ReportNotStamped):
        Trace.restored(export.trace_id, [Version(export, content_digest(export))])
