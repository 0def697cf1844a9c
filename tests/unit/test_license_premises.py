"""License premises, one scenario per alert kind, on both sides of each boundary.

The rules (ledger/licenses.py, docs/COMPLIANCE.md): an export must cite a
known license, valid and unrevoked on the day it ships, granted to the
exporter for the item, the destination and the end user; a re-export must
stay inside the premise of the license the material left its origin under,
whatever the transit country licensed; a ship-back is flagged for
confirmation; shipments citing a license may not exceed its ceiling.
"""

from __future__ import annotations

from decimal import Decimal

from builders import (
    MICROSECOND,
    exported,
    license_granted,
    license_revoked,
    re_exported,
    received,
    returned,
    stamp,
    versions,
    when,
)
from ledger.account import build_account
from ledger.alerts import ALERT_KINDS, SEVERITY, alert_steps
from ledger.evaluation import trace_steps
from ledger.licenses import PREMISE_KINDS, LicenseBook, LicenseUse, ceiling_steps, premise_steps
from ledger.policy import Policy

POLICY = Policy()
LICENSE = "JP-IND-2019-0001"


def book(*events) -> LicenseBook:
    return LicenseBook.from_events([stamp(e) for e in events])


def premise(*reports, licenses=()) -> list:
    account = build_account("TR-1", versions(*reports))
    return premise_steps(account, book(*licenses))


def kinds(steps) -> list[tuple[str, str]]:
    return sorted((s.kind, s.lot_id) for s in steps)


# Japan grants an individual license: hydrogen fluoride to KR-SEMI in Korea,
# valid 2019-07-04 up to (not including) 2020-01-04.
GRANT = license_granted(LICENSE, "2019-07-04", valid_from="2019-07-04T00:00:00+00:00",
                        valid_until="2020-01-04T00:00:00+00:00")


def licensed_export(at="2019-07-10", **kw):
    kw.setdefault("end_user", "KR-SEMI")
    return exported(at=at, license_id=LICENSE, **kw)


def test_every_premise_kind_is_a_known_alert_kind_with_a_severity():
    for kind in PREMISE_KINDS:
        assert kind in ALERT_KINDS
        assert kind in SEVERITY


def test_an_export_inside_the_license_raises_nothing():
    assert premise(licensed_export(), licenses=[GRANT]) == []


# -- license_missing / license_unknown ------------------------------------------------------


def test_an_export_citing_no_license_is_flagged_and_cites_the_export():
    export = exported()
    [step] = premise(export, licenses=[GRANT])
    assert step.kind == "license_missing"
    assert step.event_ids == (export.event_id,)
    assert step.quantity == Decimal(100) and step.party == "JP-FLUORO"
    assert "cites no export license" in step.message


def test_an_unknown_license_id_is_an_alert_not_a_crash_and_resolves_when_the_grant_arrives():
    export = licensed_export()
    [step] = premise(export)
    assert step.kind == "license_unknown"
    assert LICENSE in step.message and step.event_ids == (export.event_id,)
    assert premise(export, licenses=[GRANT]) == []


# -- license_invalid: the validity window and revocation --------------------------------------


def test_an_export_on_the_last_instant_of_the_window_is_covered():
    last = when("2020-01-04T00:00:00+00:00") - MICROSECOND
    assert premise(licensed_export(at=last), licenses=[GRANT]) == []


def test_an_export_on_the_day_the_license_expires_is_flagged():
    export = licensed_export(at="2020-01-04T00:00:00+00:00")
    [step] = premise(export, licenses=[GRANT])
    assert step.kind == "license_invalid"
    assert "expired on 2020-01-04" in step.message
    assert step.event_ids == (export.event_id, GRANT.event_id)


def test_an_export_before_the_license_is_valid_is_flagged_and_from_the_first_instant_it_is_not():
    before = licensed_export(at=when("2019-07-04T00:00:00+00:00") - MICROSECOND)
    assert kinds(premise(before, licenses=[GRANT])) == [("license_invalid", "L1")]
    on_time = licensed_export(at="2019-07-04T00:00:00+00:00")
    assert premise(on_time, licenses=[GRANT]) == []


def test_a_revoked_license_no_longer_covers_exports_from_the_revocation_on():
    revoke = license_revoked(LICENSE, "2019-09-01T00:00:00+00:00")
    just_before = licensed_export(at=when("2019-09-01T00:00:00+00:00") - MICROSECOND)
    assert premise(just_before, licenses=[GRANT, revoke]) == []
    at_revocation = licensed_export(at="2019-09-01T00:00:00+00:00")
    [step] = premise(at_revocation, licenses=[GRANT, revoke])
    assert step.kind == "license_invalid" and "revoked" in step.message
    assert revoke.event_id in step.event_ids


# -- premise_deviation: the export's own license ------------------------------------------------


def test_an_export_to_a_destination_the_license_does_not_permit_is_a_premise_deviation():
    [step] = premise(licensed_export(consignee="CN-CHEM", end_user="CN-CHEM"), licenses=[GRANT])
    assert step.kind == "premise_deviation"
    assert "destination CN is not permitted (KR)" in step.message
    assert "end user CN-CHEM is not permitted (KR-SEMI)" in step.message


def test_with_no_end_user_named_the_consignee_is_checked_as_the_end_user():
    export = exported(license_id=LICENSE, consignee="KR-TRADE")
    [step] = premise(export, licenses=[GRANT])
    assert "end user KR-TRADE is not permitted" in step.message
    assert premise(exported(license_id=LICENSE, consignee="KR-SEMI"), licenses=[GRANT]) == []


def test_a_license_granted_to_another_exporter_or_for_another_item_does_not_cover():
    other = license_granted(LICENSE, "2019-07-04", exporter="JP-OTHER", items=("EUV-PR",))
    [step] = premise(licensed_export(), licenses=[other])
    assert "granted to JP-OTHER, not JP-FLUORO" in step.message
    assert "does not cover item HF-UHP" in step.message


def test_a_license_naming_no_end_users_permits_any_end_user_in_its_destinations():
    bulk = license_granted(LICENSE, "2019-07-04", kind="general_bulk", end_users=())
    assert premise(licensed_export(consignee="KR-TRADE", end_user="KR-TRADE"), licenses=[bulk]) == []


# -- premise_deviation: re-exports against the origin license -------------------------------------


def china_re_export(**kw):
    return re_exported(qty="70", child="L1-CN", to="CN-SEMI-XIAN", end_user="CN-SEMI-XIAN", **kw)


def test_a_re_export_outside_the_origin_license_is_flagged_even_when_the_transit_country_licensed_it():
    # Korea licenses KR-SEMI to send the material on to its own fab in China.
    korea = license_granted("KR-STR-0440", "2019-08-20", reporter="KR-MOTIE", exporter="KR-SEMI",
                            destinations=("CN",), end_users=("CN-SEMI-XIAN",))
    export, receipt = licensed_export(), received()
    onward = china_re_export(license_id="KR-STR-0440")
    [step] = premise(export, receipt, onward, licenses=[GRANT, korea])
    assert step.kind == "premise_deviation" and step.lot_id == "L1-CN"
    assert step.party == "KR-SEMI"
    assert "destination CN and end user CN-SEMI-XIAN outside the premise of license " + LICENSE in step.message
    assert "transit country's license KR-STR-0440 does not change that" in step.message
    # It cites the export the material left under, the re-export, and the grant.
    assert step.event_ids == (export.event_id, onward.event_id, GRANT.event_id)


def test_a_re_export_inside_the_origin_premise_raises_nothing():
    # A bulk license for Korea and Taiwan, any end user: a re-export to Taiwan stays inside.
    bulk = license_granted(LICENSE, "2019-07-04", kind="general_bulk", destinations=("KR", "TW"), end_users=())
    onward = re_exported(to="TW-FAB", child="L1-TW")
    assert premise(licensed_export(), received(), onward, licenses=[bulk]) == []
    to_china = re_exported(to="CN-FAB", child="L1-CN")
    assert kinds(premise(licensed_export(), received(), to_china, licenses=[bulk])) == [
        ("premise_deviation", "L1-CN")
    ]


def test_every_re_export_down_the_chain_is_checked_against_the_origin_license():
    hop1 = china_re_export()
    hop2 = re_exported(lot="L1-CN", child="L1-VN", qty="10", by="CN-SEMI-XIAN", to="VN-FAB")
    steps = premise(licensed_export(), received(), hop1,
                    received(lot="L1-CN", qty="70", by="CN-SEMI-XIAN", at="2019-09-05"), hop2,
                    licenses=[GRANT])
    assert kinds(steps) == [("premise_deviation", "L1-CN"), ("premise_deviation", "L1-VN")]


# -- ship_back_exemption --------------------------------------------------------------------


def test_a_ship_back_is_flagged_for_confirmation_of_its_exemption():
    back = returned(qty="30", child="L1-R")
    [step] = premise(licensed_export(), received(), back, licenses=[GRANT])
    assert step.kind == "ship_back_exemption" and step.severity == "medium"
    assert step.lot_id == "L1-R" and step.quantity == Decimal(30)
    assert "confirm the exemption" in step.message and step.event_ids == (back.event_id,)


def test_a_ship_back_is_not_a_premise_deviation_of_the_origin_license():
    # Going home to Japan is outside "KR only", but it is not a re-export.
    steps = premise(licensed_export(), received(), returned(child="L1-R"), licenses=[GRANT])
    assert [s.kind for s in steps] == ["ship_back_exemption"]


# -- license_ceiling --------------------------------------------------------------------------


def ceiling_license(amount="100", unit="kg"):
    grant = license_granted(LICENSE, "2019-07-04", ceiling={"amount": amount, "unit": unit})
    return book(grant).get(LICENSE)


def use(lot, amount, at, unit="kg", trace="TR-1"):
    return LicenseUse(trace, lot, f"exp.{lot}", when(at), Decimal(amount), unit)


def test_shipments_exactly_reaching_the_ceiling_raise_nothing():
    assert ceiling_steps(ceiling_license(), [use("A", "60", "2019-07-10"), use("B", "40", "2019-07-11")]) == []


def test_the_shipment_that_exceeds_the_ceiling_raises_the_excess_and_later_ones_add_to_it():
    steps = ceiling_steps(ceiling_license(), [
        use("A", "60", "2019-07-10"), use("B", "40.001", "2019-07-11"), use("C", "5", "2019-07-12"),
    ])
    assert [(s.lot_id, s.quantity) for s in steps] == [("B", Decimal("0.001")), ("C", Decimal("5.001"))]
    assert steps[0].alert_id == steps[1].alert_id  # one alert, growing
    assert steps[0].trace_id == "license:" + LICENSE and steps[0].party == "JP-FLUORO"
    assert steps[1].event_ids[1:] == ("exp.B", "exp.C")
    assert "total 105.001 kg" in steps[1].message  # 60 + 40.001 + 5


def test_the_ceiling_sums_in_shipment_order_and_converts_units_exactly():
    # 0.06 t + 40 kg = 100 kg exactly; a late report of an earlier 1 kg pushes B over.
    uses = [use("B", "40", "2019-07-11"), use("A", "0.06", "2019-07-10", unit="t")]
    assert ceiling_steps(ceiling_license(), uses) == []
    [step] = ceiling_steps(ceiling_license(), [*uses, use("Z", "1", "2019-07-01")])
    assert step.lot_id == "B" and step.quantity == Decimal(1)


def test_two_shipments_at_one_instant_give_one_step():
    steps = ceiling_steps(ceiling_license(), [use("A", "101", "2019-07-10"), use("B", "1", "2019-07-10")])
    assert [(s.lot_id, s.quantity) for s in steps] == [("B", Decimal(2))]


def test_a_ceiling_in_another_dimension_is_a_premise_deviation_of_the_export():
    grant = license_granted(LICENSE, "2019-07-04", ceiling={"amount": "100", "unit": "L"})
    [step] = premise(licensed_export(), licenses=[grant])
    assert step.kind == "premise_deviation" and "ceiling in L cannot count a lot kept in kg" in step.message


# -- the book, and alert_steps -------------------------------------------------------------------


def test_the_latest_grant_of_a_license_id_is_in_force_in_any_order():
    first = license_granted(LICENSE, "2019-07-04", destinations=("KR",), event_id="grant-1")
    amended = license_granted(LICENSE, "2019-08-01", destinations=("KR", "TW"), event_id="grant-2")
    assert book(first, amended).get(LICENSE).destinations == {"KR", "TW"}
    assert book(amended, first).get(LICENSE).granted_by == "grant-2"


def test_alert_steps_run_the_premise_rules_only_when_given_licenses():
    account = build_account("TR-1", versions(exported(), received()))
    assert not [s for s in alert_steps(account, POLICY) if s.kind in PREMISE_KINDS]
    assert [s.kind for s in trace_steps(account, POLICY, book()) if s.kind in PREMISE_KINDS] == [
        "license_missing"
    ]


def test_two_versions_of_one_grant_give_the_same_license_whichever_arrives_first():
    # Event G1 is sent twice with different destinations; the first recorded wins.
    to_kr = stamp(license_granted(event_id="G1", destinations=["KR"]), "2019-07-04T01:00:00Z")
    to_cn = stamp(license_granted(event_id="G1", destinations=["CN"]), "2019-07-04T02:00:00Z")
    for order in ((to_kr, to_cn), (to_cn, to_kr)):
        book = LicenseBook.from_events(order)
        assert book.get("JP-IND-2019-0001").destinations == frozenset({"KR"})


# -- the grant in force when the goods shipped --------------------------------------------------


def test_an_amendment_applies_from_when_it_is_granted_not_to_what_shipped_before():
    # July: an export to Korea under the license.  September: the license is
    # amended to permit Taiwan only.  The July export stays covered.
    amended = license_granted(LICENSE, "2019-09-01", event_id="amendment-1", destinations=["TW"],
                              valid_from="2019-07-04T00:00:00+00:00", valid_until="2020-01-04T00:00:00+00:00")
    assert premise(licensed_export(at="2019-07-10"), licenses=[GRANT, amended]) == []
    # An export to Korea after the amendment is outside it.
    assert kinds(premise(licensed_export(at="2019-09-10"), licenses=[GRANT, amended])) == [
        ("premise_deviation", "L1")]


def test_a_revocation_ends_at_a_later_re_grant():
    revoke = license_revoked(LICENSE, "2019-08-01T00:00:00+00:00")
    re_grant = license_granted(LICENSE, "2019-09-01", event_id="re-grant-1",
                               valid_from="2019-09-01T00:00:00+00:00", valid_until="2020-03-01T00:00:00+00:00")
    # Shipped while revoked: flagged.  Shipped after the re-grant: covered.
    assert kinds(premise(licensed_export(at="2019-08-15"), licenses=[GRANT, revoke, re_grant])) == [
        ("license_invalid", "L1")]
    assert premise(licensed_export(at="2019-10-01"), licenses=[GRANT, revoke, re_grant]) == []


def test_a_grant_reported_after_the_shipment_does_not_license_it_retroactively():
    # Granted on 1 August with a window back-dated to 1 July; the goods left on 10 July.
    late = license_granted(LICENSE, "2019-08-01", valid_from="2019-07-01T00:00:00+00:00",
                           valid_until="2020-01-01T00:00:00+00:00")
    [step] = premise(licensed_export(at="2019-07-10"), licenses=[late])
    assert step.kind == "license_invalid" and "granted only on 2019-08-01" in step.message
