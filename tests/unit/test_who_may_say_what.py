"""Who may say what (issue 15; docs/COMPLIANCE.md): the domain's rules of authority.

Each attempt a dishonest party made, as the pure fold sees it.  The same
attempts through ingest, the SDK and Kafka are in
tests/integration/test_who_may_say_what.py.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from builders import (
    consumed,
    exemption_confirmed,
    exported,
    license_granted,
    license_revoked,
    received,
    retracted,
    returned,
    stamp,
    trace_of,
)
from ledger.alerts import alert_steps, alerts_as_of
from ledger.evaluation import trace_steps
from ledger.events import FieldProblem
from ledger.licenses import PREMISE_KINDS, LicenseBook, license_report_steps
from ledger.parties import RegisteredParty, by_id, party_problems
from ledger.policy import Policy

AUTHORITIES = {"JP": "JP-METI", "KR": "KR-MOTIE"}
POLICY = Policy(licensing_authorities=AUTHORITIES)
NOW = datetime(2021, 1, 1, tzinfo=timezone.utc)


def _standing(trace, licenses=(), *, as_of=NOW, known_at=None):
    account = trace.account(as_of=as_of, known_at=known_at)
    book = LicenseBook.from_events(licenses, authorities=AUTHORITIES, as_of=as_of, known_at=known_at)
    return alerts_as_of(trace_steps(account, POLICY, book), as_of)


def _kinds(alerts):
    """The license and authority alerts (the account's own, transit and the
    like, are not what these stories are about)."""
    return sorted((a.kind, a.lot_id, a.party) for a in alerts if a.kind in (*PREMISE_KINDS, "unauthorized_report"))


# -- the lot hijack ----------------------------------------------------------------


def test_an_earlier_dated_export_by_another_party_cannot_take_a_lot_over():
    # JP-FLUORO exports 100 kg to KR-SEMI on 10 July; KR-SEMI receives them
    # and reports 70 kg consumed.
    real = stamp(exported(at="2019-07-10", event_id="fluoro-1"), "2019-07-10T12:00:00Z")
    receipt = stamp(received(at="2019-07-15"), "2019-07-15T12:00:00Z")
    use = stamp(consumed(at="2019-08-20", qty="70"), "2019-08-20T12:00:00Z")
    # Later, KR-EVIL reports an export of the same lot in the same trace,
    # dated nine days before the real one, to itself.
    hijack = stamp(exported(at="2019-07-01", exporter="KR-EVIL", consignee="KR-EVIL", event_id="evil-1"),
                   "2019-09-01T12:00:00Z")

    trace = trace_of(real, receipt, use, hijack)
    lot = trace.account().lots["L1"]

    # The lot stays JP-FLUORO's shipment to KR-SEMI: the receipt and the use count.
    assert (lot.opened_by, lot.shipper, lot.holder) == ("fluoro-1", "JP-FLUORO", "KR-SEMI")
    assert (lot.received, lot.consumed) == (100, 70)
    # The attempt is refused, and the rightful holder is told.
    [refused] = [a for a in alert_steps(trace.account(), POLICY) if a.kind == "unauthorized_report"]
    assert (refused.party, refused.lot_id, refused.event_ids) == ("KR-SEMI", "L1", ("evil-1",))
    assert "'KR-EVIL' would open lot 'L1', which 'JP-FLUORO' opened" in refused.message
    assert "however early it is dated" in refused.message
    # As of a date between the two: the hijack opens nothing either.
    early = trace.account(as_of=datetime(2019, 7, 5, tzinfo=timezone.utc))
    assert early.lots == {}
    assert [f.kind for f in early.findings] == ["unauthorized_report"]


def test_one_party_reopening_its_own_lot_is_still_an_invalid_report_not_a_hijack():
    first = stamp(exported(at="2019-07-10", event_id="fluoro-1"), "2019-07-10T12:00:00Z")
    again = stamp(exported(at="2019-07-01", event_id="fluoro-0", qty="5"), "2019-09-01T12:00:00Z")
    account = trace_of(first, again).account()
    # The party's own first-dated opening opens the lot, as before issue 15.
    assert account.lots["L1"].opened_by == "fluoro-0"
    assert [(f.kind, f.event_ids) for f in account.findings] == [("invalid_report", ("fluoro-1",))]


def test_a_re_export_by_someone_not_holding_the_parent_claims_no_child_lot():
    real = stamp(exported(at="2019-07-10"), "2019-07-10T12:00:00Z")
    receipt = stamp(received(at="2019-07-15"), "2019-07-15T12:00:00Z")
    # KR-EVIL, not the holder, "re-exports" to a child lot first ...
    from builders import re_exported

    evil = stamp(re_exported(at="2019-08-01", by="KR-EVIL", event_id="evil-rex"), "2019-08-01T12:00:00Z")
    # ... and KR-SEMI, the holder, re-exports to that child lot later.
    rex = stamp(re_exported(at="2019-09-01", event_id="semi-rex"), "2019-09-01T12:00:00Z")
    lots = trace_of(real, receipt, evil, rex).account().lots
    assert lots["L1-A"].opened_by == "semi-rex"


# -- report identity: (reporter, event id) -------------------------------------------


def test_another_partys_use_of_an_event_id_in_the_same_trace_does_not_shadow_the_holders_report():
    exp = stamp(exported(at="2019-07-10"), "2019-07-10T12:00:00Z")
    receipt = stamp(received(at="2019-07-15"), "2019-07-15T12:00:00Z")
    squat = stamp(consumed(at="2019-08-01", qty="1", by="KR-EVIL", event_id="semi-use-2"), "2019-08-01T12:00:00Z")
    use = stamp(consumed(at="2019-08-20", qty="70", event_id="semi-use-2"), "2019-08-21T12:00:00Z")
    # KR-EVIL's retraction of "semi-use-2" names its own report, never KR-SEMI's.
    undo = stamp(retracted(squat, at="2019-08-25", event_id="evil-undo"), "2019-08-25T12:00:00Z")
    account = trace_of(exp, receipt, squat, use, undo).account()
    assert account.lots["L1"].consumed == 70
    assert "conflicting_report" not in [f.kind for f in account.findings]


def test_two_parties_reports_under_one_event_id_refused_alike_are_two_alerts():
    # Found by the arrival-order property test: two findings with one alert id
    # and one due time made the store refuse the batch forever.
    from ledger.identity import claims_of

    def receipts(trace, lot, at):
        return [stamp(exported(lot=lot, trace=trace), "2019-07-10"),
                stamp(received(lot=lot, trace=trace, event_id="X"), at),
                stamp(received(lot=lot, trace=trace, event_id="X", by="KR-EVIL"), at)]

    # Within a trace, both are refused (there is no lot yet): two unknown_lot alerts.
    alone = trace_of(*receipts("TR-A", "LA", "2019-07-15")[1:])
    steps = [s for s in alert_steps(alone.account(), POLICY) if s.kind == "unknown_lot"]
    assert sorted(s.party for s in steps) == ["KR-EVIL", "KR-SEMI"] and len({s.alert_id for s in steps}) == 2

    # Across traces, both lose to the versions recorded earlier elsewhere: two conflicts.
    first, later = trace_of(*receipts("TR-A", "LA", "2019-07-15")), trace_of(*receipts("TR-B", "LB", "2019-07-20"))
    claims: dict = {}
    for trace_id, trace in (("TR-A", first), ("TR-B", later)):
        for event_id, on_it in claims_of(trace_id, trace.versions()).items():
            claims.setdefault(event_id, []).extend(on_it)
    steps = [s for s in alert_steps(later.account(claims=claims), POLICY) if s.kind == "conflicting_report"]
    assert sorted(s.party for s in steps) == ["KR-EVIL", "KR-SEMI"] and len({s.alert_id for s in steps}) == 2


# -- licenses: only the licensing authority of the issuing country ------------------------


def test_a_revocation_by_anyone_but_the_issuing_authority_is_refused_and_alerted():
    grant = stamp(license_granted("JP-IND-1", at="2019-07-04"), "2019-07-04T12:00:00Z")
    export = stamp(exported(at="2019-07-10", license_id="JP-IND-1"), "2019-07-10T12:00:00Z")
    forged = stamp(license_revoked("JP-IND-1", at="2019-07-05", reporter="KR-EVIL", event_id="evil-rev"),
                   "2019-07-20T12:00:00Z")
    other_country = stamp(license_revoked("JP-IND-1", at="2019-07-06", reporter="KR-MOTIE", event_id="kr-rev"),
                          "2019-07-20T12:00:00Z")
    licenses = [grant, forged, other_country]

    # The export stays licensed ...
    assert _kinds(_standing(trace_of(export), licenses)) == []
    # ... and the license's holder hears of both attempts.
    refused = sorted(alerts_as_of(license_report_steps(licenses, authorities=AUTHORITIES), NOW),
                     key=lambda a: a.due_at)
    assert [(a.kind, a.trace_id, a.party, a.event_ids) for a in refused] == [
        ("unauthorized_report", "license:JP-IND-1", "JP-FLUORO", ("evil-rev",)),
        ("unauthorized_report", "license:JP-IND-1", "JP-FLUORO", ("kr-rev",)),
    ]
    assert "'KR-EVIL' is not a licensing authority named in the policy" in refused[0].message
    assert "'KR-MOTIE' is the licensing authority of KR, but license JP-IND-1 was issued by JP" in refused[1].message
    # The issuing authority itself may revoke it.
    real = stamp(license_revoked("JP-IND-1", at="2019-07-08"), "2019-07-20T12:00:00Z")
    assert _kinds(_standing(trace_of(export), [*licenses, real])) == [("license_invalid", "L1", "JP-FLUORO")]


def test_an_exporter_granting_itself_a_license_licenses_nothing():
    self_grant = stamp(license_granted("SELF-1", at="2019-07-04", reporter="JP-FLUORO", destinations=["KR", "CN"],
                                       event_id="self-grant"), "2019-07-04T12:00:00Z")
    export = stamp(exported(at="2019-07-10", license_id="SELF-1"), "2019-07-10T12:00:00Z")
    assert _kinds(_standing(trace_of(export), [self_grant])) == [("license_unknown", "L1", "JP-FLUORO")]
    [refused] = license_report_steps([self_grant], authorities=AUTHORITIES)
    assert (refused.kind, refused.party, refused.event_ids) == ("unauthorized_report", "JP-FLUORO", ("self-grant",))


def test_a_license_covers_shipments_leaving_its_issuing_country_only():
    korean = stamp(license_granted("KR-1", at="2019-07-04", reporter="KR-MOTIE"), "2019-07-04T12:00:00Z")
    export = stamp(exported(at="2019-07-10", license_id="KR-1"), "2019-07-10T12:00:00Z")
    [deviation] = [a for a in _standing(trace_of(export), [korean]) if a.kind == "premise_deviation"]
    assert deviation.kind == "premise_deviation"
    assert "it was issued by KR, and the shipment leaves JP" in deviation.message


def test_without_authorities_in_the_policy_license_reports_are_taken_from_anyone_as_before():
    grant = stamp(license_granted("JP-IND-1", at="2019-07-04", reporter="JP-FLUORO"), "2019-07-04T12:00:00Z")
    book = LicenseBook.from_events([grant])
    assert "JP-IND-1" in book
    assert license_report_steps([grant]) == []


# -- ship-backs: the license they left under, or the authority's confirmation ---------------


def _ship_back_story(*more):
    grant = stamp(license_granted("JP-IND-1", at="2019-07-04"), "2019-07-04T12:00:00Z")
    reports = [
        stamp(exported(at="2019-07-10", license_id="JP-IND-1"), "2019-07-10T12:00:00Z"),
        stamp(received(at="2019-07-15"), "2019-07-15T12:00:00Z"),
        *more,
    ]
    return trace_of(*reports), [grant]


def test_a_ship_back_citing_no_license_asks_for_its_exemption_to_be_confirmed():
    trace, licenses = _ship_back_story(stamp(returned(at="2019-09-01"), "2019-09-01T12:00:00Z"))
    assert ("ship_back_exemption", "L1-R", "KR-SEMI") in _kinds(_standing(trace, licenses))


def test_a_ship_back_citing_the_license_it_left_under_needs_no_confirmation():
    trace, licenses = _ship_back_story(stamp(returned(at="2019-09-01", license_id="JP-IND-1"), "2019-09-01T12:00:00Z"))
    kinds = _kinds(_standing(trace, licenses))
    assert "ship_back_exemption" not in [k for k, _l, _p in kinds]
    # And it does not count against that license's ceiling (ledger.licenses.uses_license).
    assert trace.account().lots["L1-R"].license_id == "JP-IND-1"


def test_a_ship_back_citing_another_license_still_asks_for_confirmation():
    trace, licenses = _ship_back_story(stamp(returned(at="2019-09-01", license_id="KR-OTHER-9"),
                                             "2019-09-01T12:00:00Z"))
    [step] = [a for a in _standing(trace, licenses) if a.kind == "ship_back_exemption"]
    assert "cites license KR-OTHER-9, not the license its material left under (JP-IND-1)" in step.message


def test_the_authority_of_the_country_a_ship_back_leaves_confirms_its_exemption():
    ship_back = stamp(returned(at="2019-09-01"), "2019-09-01T12:00:00Z")
    confirmed = stamp(exemption_confirmed(at="2019-09-05"), "2019-09-05T12:00:00Z")
    trace, licenses = _ship_back_story(ship_back, confirmed)
    assert "ship_back_exemption" not in [k for k, _l, _p in _kinds(_standing(trace, licenses))]
    # Known before the confirmation was recorded, the alert stood.
    before = _standing(trace, licenses, known_at=datetime(2019, 9, 2, tzinfo=timezone.utc))
    assert "ship_back_exemption" in [a.kind for a in before]


def test_a_confirmation_by_anyone_else_is_refused_and_the_alert_stands():
    ship_back = stamp(returned(at="2019-09-01"), "2019-09-01T12:00:00Z")
    for confirmer in ("KR-SEMI", "JP-METI"):  # the shipper itself; the other country's authority
        forged = stamp(exemption_confirmed(at="2019-09-05", by=confirmer, event_id=f"confirm-{confirmer}"),
                       "2019-09-05T12:00:00Z")
        trace, licenses = _ship_back_story(ship_back, forged)
        alerts = _standing(trace, licenses)
        assert ("ship_back_exemption", "L1-R", "KR-SEMI") in _kinds(alerts)
        [refused] = [a for a in alerts if a.kind == "unauthorized_report"]
        assert refused.party == "KR-SEMI" and refused.event_ids == (f"confirm-{confirmer}",)
        assert "only KR-MOTIE, the licensing authority of KR, may confirm it" in refused.message


# -- the party registry --------------------------------------------------------------------


REGISTRY = by_id([
    RegisteredParty("JP-FLUORO", "JP", ("exporter",)),
    RegisteredParty("KR-SEMI", "KR", ("consignee", "end_user")),
    RegisteredParty("JP-METI", "JP", ("authority",)),
])


def test_a_report_naming_an_unregistered_party_is_refused_naming_field_and_value():
    report = exported(consignee="KR-GHOST")
    assert party_problems(report, REGISTRY) == [FieldProblem(
        field="consignee.id", value='"KR-GHOST"',
        message="is not a registered party; the operator registers parties with `ledger parties add` "
                "(docs/COMPLIANCE.md, \"Who may say what\")")]
    grant = license_granted(end_users=["KR-SEMI", "CN-NOBODY"])
    assert [(p.field, p.value) for p in party_problems(grant, REGISTRY)] == [("end_users.1", '"CN-NOBODY"')]


def test_a_registered_party_placed_in_another_country_is_refused():
    report = exported()
    moved = report.model_copy(update={"consignee": report.consignee.model_copy(update={"country": "CN"})})
    [problem] = party_problems(moved, REGISTRY)
    assert (problem.field, problem.value) == ("consignee.country", '"CN"')
    assert "registered in KR, not CN" in problem.message


def test_an_empty_registry_refuses_nothing():
    assert party_problems(exported(consignee="KR-GHOST"), {}) == []


# -- arrival order does not matter for the authority rules either ---------------------------


def test_any_arrival_order_gives_the_same_licenses_and_refusals():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    reporters = st.sampled_from(["JP-METI", "KR-MOTIE", "KR-EVIL", "JP-FLUORO"])
    days = st.integers(min_value=0, max_value=60).map(lambda d: datetime(2019, 7, 1 + d % 28, tzinfo=timezone.utc))

    @st.composite
    def license_reports(draw):
        out = []
        for index in range(draw(st.integers(1, 6))):
            at, by = draw(days), draw(reporters)
            recorded = stamp(license_granted("L-1", at=at, reporter=by, event_id=f"g{index}") if draw(st.booleans())
                             else license_revoked("L-1", at=at, reporter=by, event_id=f"r{index}"),
                             at.replace(hour=draw(st.integers(0, 23))))
            out.append(recorded)
        return out

    def answer(reports):
        book = LicenseBook.from_events(reports, authorities=AUTHORITIES)
        license = book.get("L-1")
        return (license, sorted(license_report_steps(reports, authorities=AUTHORITIES), key=lambda a: a.alert_id))

    @settings(max_examples=100, deadline=None)
    @given(reports=license_reports(), data=st.data())
    def check(reports, data):
        shuffled = data.draw(st.permutations(reports))
        assert answer(shuffled) == answer(reports)

    check()


# The policy file naming the authorities: tests/integration/test_policy_file.py.
