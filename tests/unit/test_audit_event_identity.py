"""The audit export says of a report whose event id its reporter used first
in another trace that it is not used, naming that trace -- as the account
does.  Another party's report under the same id is its own report."""

from __future__ import annotations

from datetime import datetime, timezone

from builders import exported, projected, received, stamp
from ledger.policy import Policy
from projections import audit
from projections.audit import collect

POLICY = Policy()
CLOCK = datetime(2021, 1, 1, tzinfo=timezone.utc)
SHARED = "RCV-SHARED-1"
REPORTS = [
    stamp(exported(lot="LA", trace="TR-A", event_id="EXP-A"), "2019-07-10T12:00:00Z"),
    stamp(exported(lot="LB", trace="TR-B", event_id="EXP-B"), "2019-07-10T12:00:00Z"),
    stamp(exported(lot="LC", trace="TR-C", event_id="EXP-C", consignee="KR-OTHER"), "2019-07-10T12:00:00Z"),
    stamp(received(lot="LA", trace="TR-A", event_id=SHARED), "2019-07-15T12:00:00Z"),
    # KR-SEMI uses its id again in another trace: a conflict, not a second receipt.
    stamp(received(lot="LB", trace="TR-B", event_id=SHARED), "2019-07-16T12:00:00Z"),
    # KR-OTHER happens to choose the same id: its own report (issue 15).
    stamp(received(lot="LC", trace="TR-C", event_id=SHARED, by="KR-OTHER"), "2019-07-15T06:00:00Z"),
]


def test_a_report_whose_event_id_another_trace_recorded_first_is_listed_as_not_used():
    store = projected(REPORTS, policy=POLICY, now=CLOCK, log="embedded")

    data = collect(store, "three traces", ["TR-A", "TR-B", "TR-C"], now=CLOCK, policy=POLICY)
    status = {(e["trace_id"], e["event_id"]): e["status"] for e in data.events}

    assert status[("TR-A", SHARED)] == "in effect"
    assert status[("TR-B", SHARED)] == "not used: event id first recorded in trace TR-A"
    assert status[("TR-B", "EXP-B")] == "in effect"
    assert status[("TR-C", SHARED)] == "in effect"
    store.close()


def test_read_a_trace_at_a_time_the_export_says_the_same_of_every_report(monkeypatch):
    # The reports are read, evaluated and listed TRACES_PER_CHUNK traces at a time, so that
    # what is held meanwhile is bounded by the chunk: the claim TR-A holds on the shared id
    # still decides TR-B's receipt when TR-B is read without TR-A.
    store = projected(REPORTS, policy=POLICY, now=CLOCK, log="embedded")
    whole = collect(store, "three traces", ["TR-A", "TR-B", "TR-C"], now=CLOCK, policy=POLICY)
    asked: list[int] = []
    load_versions = store.load_versions

    def one_chunk(trace_ids):
        asked.append(len(trace_ids))
        return load_versions(trace_ids)

    monkeypatch.setattr(store, "load_versions", one_chunk)
    monkeypatch.setattr(audit, "TRACES_PER_CHUNK", 1)
    chunked = collect(store, "three traces", ["TR-A", "TR-B", "TR-C"], now=CLOCK, policy=POLICY, charts=False)

    assert max(asked) == 1 and asked.count(1) >= 3
    assert chunked.events == whole.events
    assert {e["status"] for e in chunked.events} == {"in effect", "not used: event id first recorded in trace TR-A"}
    store.close()
