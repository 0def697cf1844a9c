"""Two versions of one license report: the licensing authority re-sent a
grant (one event id) with another ceiling or validity.  The ledger uses the
first recorded version, as for lot reports, and says so: a
``conflicting_report`` alert on the license (``license:<id>``), naming the
version used and the one not used, due when the ledger learned of the
conflict (the second version's recorded_at), whatever arrived first.

Asked of the pure rule (ledger/licenses.py) and of a real projection store
(projections/premises.py, projections/queries.py).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from builders import exported, license_granted, license_revoked, projected, stamp, when
from ledger.events import content_digest
from ledger.licenses import LicenseBook, ceiling_trace_id, license_conflict_steps
from ledger.policy import Policy
from projections.queries import standing_alerts
from projections.store import ProjectionStore

POLICY = Policy()
NOW = datetime(2021, 1, 1, tzinfo=timezone.utc)
LICENSE = "JP-IND-2019-0001"
ON_LICENSE = ceiling_trace_id(LICENSE)

# The grant as first sent (150 kg), and re-sent a week later with 300 kg.
FIRST = license_granted(LICENSE, "2019-07-01", ceiling={"amount": "150", "unit": "kg"},
                        recorded_at="2019-07-01T10:00:00+00:00")
SECOND = license_granted(LICENSE, "2019-07-01", ceiling={"amount": "300", "unit": "kg"},
                         reporter="JP-METI-2", recorded_at="2019-07-08T09:00:00+00:00")
RESENT = FIRST.model_copy(update={"recorded_at": when("2019-07-09T09:00:00+00:00")})  # identical content
SECOND_KNOWN = when("2019-07-08T09:00:00+00:00")

EXPORT = exported("A1", "100", trace="TR-A", at="2019-07-10", license_id=LICENSE, end_user="KR-SEMI",
                  event_id="exp-A1")


def conflicts(steps):
    return [s for s in steps if s.kind == "conflicting_report"]


def conflict_rows(rows):
    return [r for r in rows if r["kind"] == "conflicting_report"]


def project(*batches) -> ProjectionStore:
    """A store fed ``batches`` (each a list of reports), one projected batch each."""
    return projected(*([stamp(r) for r in batch] for batch in batches), policy=POLICY, now=NOW)


# -- the rule -------------------------------------------------------------------------------------


def test_two_versions_of_one_grant_raise_a_conflicting_report_on_the_license():
    [step] = license_conflict_steps([FIRST, SECOND])
    assert (step.kind, step.trace_id, step.lot_id, step.party, step.quantity, step.unit) == (
        "conflicting_report", ON_LICENSE, "", "JP-METI-2", None, None)
    assert step.severity == "high"
    assert step.due_at == SECOND_KNOWN
    assert step.event_ids == (FIRST.event_id,)
    used, not_used = content_digest(FIRST)[:12], content_digest(SECOND)[:12]
    assert "uses the version recorded at 2019-07-01T10:00:00+00:00" in step.message
    assert "different content: ceiling 300 kg vs 150 kg used, reporter JP-METI-2 vs JP-METI used;" in step.message
    assert f"(digest {used})" in step.message
    assert f"not the one recorded at 2019-07-08T09:00:00+00:00 (digest {not_used})" in step.message
    # The version named as used is the one the book uses.
    assert LicenseBook.from_events([FIRST, SECOND]).get(LICENSE).ceiling.amount == 150


def test_two_versions_of_one_grant_raise_the_same_conflicting_report_whatever_arrives_first():
    assert license_conflict_steps([FIRST, SECOND]) == license_conflict_steps([SECOND, FIRST])
    assert license_conflict_steps([FIRST, SECOND, RESENT]) == license_conflict_steps([RESENT, SECOND, FIRST])


def test_an_identical_resend_of_a_grant_raises_nothing():
    assert license_conflict_steps([FIRST, RESENT]) == []
    assert license_conflict_steps([FIRST]) == []


def test_a_conflict_is_not_known_before_the_second_version_was_recorded():
    assert license_conflict_steps([FIRST, SECOND], known_at=when("2019-07-08T08:59:59+00:00")) == []
    assert len(license_conflict_steps([FIRST, SECOND], known_at=SECOND_KNOWN)) == 1


def test_two_versions_of_one_revocation_raise_a_conflicting_report_too():
    one = license_revoked(LICENSE, "2019-09-01", reason="end user changed", recorded_at="2019-09-01")
    other = license_revoked(LICENSE, "2019-09-01", reason="end user failed a check", recorded_at="2019-09-02")
    [step] = license_conflict_steps([other, one])
    assert (step.trace_id, step.due_at, step.event_ids) == (ON_LICENSE, when("2019-09-02"), (one.event_id,))


# -- the projection -------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["first_then_second", "second_then_first", "one_batch"])
def test_two_versions_of_one_grant_raise_a_conflicting_report_on_the_license_in_the_store(order):
    batches = {
        "first_then_second": [[FIRST, EXPORT], [SECOND]],  # the conflicting version arrives alone
        "second_then_first": [[SECOND], [EXPORT], [FIRST]],
        "one_batch": [[SECOND, EXPORT, FIRST]],
    }[order]
    store = project(*batches)
    try:
        [row] = conflict_rows(store.standing_alerts(NOW))
        [expected] = license_conflict_steps([FIRST, SECOND])
        assert (row["trace_id"], row["party"], row["quantity"], row["message"]) == (
            ON_LICENSE, "JP-METI-2", None, expected.message)
        # Asking about the export shows the conflict on the license it cites.
        assert conflict_rows(store.standing_alerts(NOW, trace_id=ON_LICENSE)) == [row]
        assert [r["message"] for r in conflict_rows(standing_alerts(store, now=NOW, policy=POLICY,
                                                                    trace_id="TR-A"))] == [expected.message]
    finally:
        store.close()


def test_a_conflict_on_a_license_no_export_cites_is_raised_too():
    store = project([FIRST], [SECOND])
    try:
        assert len(conflict_rows(store.standing_alerts(NOW))) == 1
        assert len(conflict_rows(standing_alerts(store, now=NOW, policy=POLICY, as_of=NOW))) == 1
    finally:
        store.close()


def test_an_identical_resend_of_a_grant_raises_nothing_in_the_store():
    store = project([FIRST, EXPORT], [RESENT])
    try:
        assert conflict_rows(store.standing_alerts(NOW)) == []
        assert conflict_rows(standing_alerts(store, now=NOW, policy=POLICY, as_of=NOW)) == []
    finally:
        store.close()


# -- as of / known at ---------------------------------------------------------------------------


@pytest.fixture
def store():
    store = project([FIRST, EXPORT], [SECOND])
    yield store
    store.close()


def test_as_of_now_the_conflict_stands_as_the_projection_says(store):
    now = conflict_rows(store.standing_alerts(NOW))
    for trace_id in (None, "TR-A"):
        then = conflict_rows(standing_alerts(store, now=NOW, policy=POLICY, as_of=NOW, trace_id=trace_id))
        assert [(r["alert_id"], r["party"], r["message"]) for r in then] == [
            (r["alert_id"], r["party"], r["message"]) for r in now]


def test_as_of_before_the_second_version_was_known_there_is_no_conflict(store):
    before = when("2019-07-08T08:00:00+00:00")
    assert conflict_rows(standing_alerts(store, now=NOW, policy=POLICY, as_of=before)) == []
    assert conflict_rows(standing_alerts(store, now=NOW, policy=POLICY, as_of=NOW, known_at=before)) == []
    assert conflict_rows(standing_alerts(store, now=NOW, policy=POLICY, as_of=NOW, known_at=before,
                                         trace_id="TR-A")) == []
    assert len(conflict_rows(standing_alerts(store, now=NOW, policy=POLICY, as_of=NOW,
                                             known_at=SECOND_KNOWN))) == 1
    # The export itself was recorded on 10 July: known then, it shows the conflict on its license.
    assert len(conflict_rows(standing_alerts(store, now=NOW, policy=POLICY, as_of=NOW,
                                             known_at=when("2019-07-10"), trace_id="TR-A"))) == 1
