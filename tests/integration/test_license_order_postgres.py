"""On PostgreSQL too, premise alerts do not depend on whether the license
arrives before or after the exports citing it, and the read model equals
SQLite's (same fingerprint)."""

from __future__ import annotations

from datetime import datetime, timezone

from builders import cut as cut_at
from builders import exported, license_granted, license_revoked, projected, re_exported, received, retracted, stamp
from ledger.policy import Policy
from projections.postgres_store import PostgresProjectionStore
from projections.sqlite_store import SQLiteProjectionStore

POLICY = Policy()
CLOCK = datetime(2020, 6, 1, tzinfo=timezone.utc)
LICENSE = "JP-IND-2019-0001"


def reports() -> list:
    mistaken = exported("E1", "50", trace="TR-E", at="2019-07-05", license_id=LICENSE, end_user="KR-SEMI")
    return [stamp(r) for r in (
        license_granted(LICENSE, "2019-07-01", ceiling={"amount": "150", "unit": "kg"}, recorded_at="2019-07-01"),
        license_revoked(LICENSE, "2019-09-15", recorded_at="2019-09-15"),
        mistaken,
        retracted(mistaken, "2019-07-06"),
        exported("A1", "100", trace="TR-A", at="2019-07-10", license_id=LICENSE, end_user="KR-SEMI"),
        received("A1", "100", trace="TR-A", at="2019-07-15"),
        re_exported("A1", "A1-CN", "60", trace="TR-A", at="2019-08-01", end_user="CN-SEMI-XIAN"),
        exported("B1", "80", trace="TR-B", at="2019-08-10", license_id=LICENSE, end_user="KR-SEMI"),
        exported("C1", "0.01", unit="t", trace="TR-C", at="2019-10-01", license_id=LICENSE),
    )]


def project(store, order: list, cut: int) -> tuple[dict[str, str], list]:
    projected(*cut_at(order, [cut]), store=store, policy=POLICY, now=CLOCK)
    standing = sorted((a["kind"], a["lot_id"], a["quantity"]) for a in store.standing_alerts(CLOCK))
    return store.fingerprint(), standing


def test_license_after_or_before_the_exports_gives_one_read_model_on_postgres_and_sqlite(postgres_url, tmp_path):
    everything = reports()
    licenses = [r for r in everything if r.type.startswith("license")]
    lots = [r for r in everything if not r.type.startswith("license")]

    sqlite = SQLiteProjectionStore(tmp_path / "p.db")
    reference = project(sqlite, licenses + lots, len(licenses))
    sqlite.close()

    late_store = PostgresProjectionStore.from_url(postgres_url)
    try:
        late = project(late_store, lots + licenses, len(lots))
    finally:
        late_store.close()

    assert late[1] == reference[1]
    assert ("premise_deviation", "A1-CN", "60") in late[1]
    assert ("license_ceiling", "C1", "40") in late[1]  # 100 + 80 + 10 kg against 150 kg
    assert ("license_invalid", "C1", "0.01") in late[1]  # shipped after the revocation
    assert {k: late[0][k] for k in ("lots", "alert_steps", "licenses")} == {
        k: reference[0][k] for k in ("lots", "alert_steps", "licenses")}
