"""Premise alerts do not depend on whether a license arrives before or after
the exports that cite it, nor on how the log is cut into batches.

Runs the real projection (project_batch into an in-memory SQLite projection store) over
every arrival order hypothesis draws, and compares the stored lots and alert
steps with the answer for the canonical order.
"""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from builders import cut, exported, license_granted, license_revoked, projected, re_exported, received, retracted, stamp
from ledger.events import content_digest
from ledger.policy import Policy

POLICY = Policy()
CLOCK = datetime(2020, 6, 1, tzinfo=timezone.utc)
SEPTEMBER = datetime(2019, 9, 1, tzinfo=timezone.utc)
LICENSE = "JP-IND-2019-0001"


def reports() -> list:
    """Traces citing one license with a 150 kg ceiling: one re-exported to China,
    one shipped after the license is revoked, one exported and then retracted by
    the exporter (it no longer counts), and one citing a license never granted."""
    grant = license_granted(LICENSE, "2019-07-01", ceiling={"amount": "150", "unit": "kg"},
                            recorded_at="2019-07-01")
    revoke = license_revoked(LICENSE, "2019-09-15", recorded_at="2019-09-15")
    mistaken = exported("E1", "50", trace="TR-E", at="2019-07-05", license_id=LICENSE, end_user="KR-SEMI")
    return [stamp(r) for r in (
        grant,
        mistaken,
        retracted(mistaken, "2019-07-06"),
        revoke,
        exported("A1", "100", trace="TR-A", at="2019-07-10", license_id=LICENSE, end_user="KR-SEMI"),
        received("A1", "100", trace="TR-A", at="2019-07-15"),
        re_exported("A1", "A1-CN", "60", trace="TR-A", at="2019-08-01", end_user="CN-SEMI-XIAN"),
        exported("B1", "80", trace="TR-B", at="2019-08-10", license_id=LICENSE, end_user="KR-SEMI"),
        exported("C1", "0.01", unit="t", trace="TR-C", at="2019-10-01", license_id=LICENSE),
        exported("D1", "5", trace="TR-D", at="2019-07-20", license_id="JP-NEVER-GRANTED"),
    )]


def project(order: list, cuts: list[int]) -> dict[str, str]:
    store = projected(*cut(order, cuts), policy=POLICY, now=CLOCK)
    try:
        fingerprint = store.fingerprint()
        for name, moment in (("standing", CLOCK), ("standing_2019_09", SEPTEMBER)):
            fingerprint[name] = repr(sorted((a["kind"], a["lot_id"], a["quantity"]) for a in
                                            store.standing_alerts(moment)))
        return fingerprint
    finally:
        store.close()


REFERENCE = None


def reference() -> dict[str, str]:
    global REFERENCE
    if REFERENCE is None:
        REFERENCE = project(reports(), [])
    return REFERENCE


def test_the_reference_order_raises_every_premise_alert_of_the_scenario():
    # A1 exported under the license, 60 kg re-exported to China: outside "KR, KR-SEMI".
    # B1 takes the license to 180 kg: 30 kg over its 150 kg ceiling from 2019-08-10.
    # C1 (0.01 t = 10 kg) ships after the revocation and takes it to 40 kg over.
    # D1 cites a license nobody granted.
    assert "('license_ceiling', 'B1', '30')" in reference()["standing_2019_09"]
    standing = reference()["standing"]
    assert "('premise_deviation', 'A1-CN', '60')" in standing
    assert "('license_ceiling', 'C1', '40')" in standing
    assert "('license_invalid', 'C1', '0.01')" in standing
    assert "('license_unknown', 'D1', '5')" in standing


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_premise_alerts_do_not_depend_on_arrival_order_or_batching(data):
    order = data.draw(st.permutations(reports()))
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=len(order) - 1), max_size=4))
    assert project(list(order), cuts) == reference()


def test_a_license_arriving_after_the_export_gives_the_same_alerts_as_before():
    everything = reports()
    licenses = [r for r in everything if r.type.startswith("license")]
    lot_reports = [r for r in everything if not r.type.startswith("license")]
    # One batch each: the exports first, the license reports in a later batch.
    late = project(lot_reports + licenses, [len(lot_reports)])
    early = project(licenses + lot_reports, [len(licenses)])
    assert late == early == reference()


def test_content_digest_of_the_scenario_is_stable():
    # The fingerprint compares payloads; a digest change would mean the builders changed.
    assert len({content_digest(r) for r in reports()}) == len(reports())


def test_as_of_queries_judge_premises_with_the_licenses_granted_and_known_by_then():
    # The export of 2019-07-10 cites a license granted on 2019-07-01 but only
    # recorded by the ledger on 2019-08-01.
    from projections.queries import standing_alerts

    grant = license_granted(LICENSE, "2019-07-01", recorded_at="2019-08-01", end_users=("KR-SEMI",))
    export = stamp(exported("A1", "100", trace="TR-A", at="2019-07-10", license_id=LICENSE, end_user="KR-SEMI",
                            recorded_at="2019-07-10"))
    store = projected([export, grant], policy=POLICY, now=CLOCK)

    def premise_kinds(**when):
        alerts = standing_alerts(store, now=CLOCK, policy=POLICY, trace_id="TR-A", **when)
        return sorted(a["kind"] for a in alerts if a["kind"].startswith("license") or a["kind"] == "premise_deviation")

    assert premise_kinds() == []
    assert premise_kinds(as_of=datetime(2019, 7, 20, tzinfo=timezone.utc)) == []
    # What the ledger knew on 2019-07-20: the export, not yet the license.
    assert premise_kinds(as_of=datetime(2019, 7, 20, tzinfo=timezone.utc),
                         known_at=datetime(2019, 7, 20, tzinfo=timezone.utc)) == ["license_unknown"]
    store.close()


# Two projectors sharing one store file: tests/integration/test_license_order_two_projectors.py.
