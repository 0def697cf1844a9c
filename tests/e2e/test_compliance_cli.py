"""`ledger demo`, `ledger flows`, `ledger trace` and bad compliance input,
as a compliance officer runs them (the real console script, a fresh LEDGER_HOME)."""

from __future__ import annotations

import json

from builders import write_jsonl


def test_demo_flags_the_china_re_export_outside_the_license_and_the_ship_back(ledger, tables):
    demo = ledger("demo")
    assert demo.returncode == 0, demo.stderr
    _lots, alerts_table, *_ = tables(demo.stdout)
    alerts = {(row["KIND"], row["LOT"]): row for row in alerts_table}

    # JP license JP-IND-2019-0002 permits KR / KR-SEMI only; the photoresist went on to China.
    for lot, amount, end_user in (("PR-0003-XA", "700 L", "CN-SEMI-XIAN"), ("PR-0003-WX", "300 L", "CN-SEMI-WUXI")):
        row = alerts[("premise_deviation", lot)]
        assert (row["SEVERITY"], row["PARTY"], row["QUANTITY"]) == ("high", "KR-SEMI", amount)
        assert f"destination CN and end user {end_user} outside the premise of license JP-IND-2019-0002" in row["WHAT"]
        # Korea licensed it (KR-STR-2019-0440 is in the story), and that does not change it.
        assert "the transit country's license KR-STR-2019-0440 does not change that" in row["WHAT"]
    assert ("license_unknown", "PR-0003-XA") not in alerts

    # The ship-back "as defective" left Korea without a license: confirm the exemption.
    ship_back = alerts[("ship_back_exemption", "HF-0002-R1")]
    assert (ship_back["PARTY"], ship_back["QUANTITY"]) == ("KR-TRADE", "39,650 kg")
    assert "confirm the exemption" in ship_back["WHAT"]

    # The acceptance figures of the story are intact.
    assert alerts[("unaccounted", "HF-0001")]["QUANTITY"] == "30 unit"
    assert alerts[("return_unconfirmed", "HF-0002-R1")]["QUANTITY"] == "39,530 kg"


def test_flows_show_the_reconciliation_gaps_of_the_demo(ledger, tables):
    assert ledger("demo").returncode == 0
    flows = ledger("flows", "--period", "2019", "--json")
    assert flows.returncode == 0, flows.stderr
    by_route = {(f["from"], f["to"], f["item_id"], f["unit"]): f for f in json.loads(flows.stdout)["flows"]}
    # Korea reports 4,050 t shipped to China; China reports 4,000 t received.
    kr_cn = by_route[("KR", "CN", "HF-UHP", "t")]
    assert (kr_cn["shipped"], kr_cn["received"], kr_cn["gap"]) == ("4050", "4000", "50")
    assert kr_cn["lots"] == ["TR-HF-2019-0004/HF-0004"]
    # The ship-back: 39,650 kg declared shipped to Japan, 120 kg recorded received (99.7 % missing).
    kr_jp = by_route[("KR", "JP", "HF-UHP", "kg")]
    assert (kr_jp["shipped"], kr_jp["received"], kr_jp["gap"], kr_jp["gap_percent"]) == (
        "39650", "120", "39530", "99.7")
    # The photoresist re-exported to China arrived in full: 700 L + 300 L.
    assert (by_route[("KR", "CN", "EUV-PR", "L")]["shipped"], by_route[("KR", "CN", "EUV-PR", "L")]["gap"]) == (
        "1000", "0")

    # The command in the issue: Japan to Korea in 2019, as a table.
    jp_kr = ledger("flows", "--from", "JP", "--to", "KR", "--period", "2019")
    assert jp_kr.returncode == 0, jp_kr.stderr
    [rows] = tables(jp_kr.stdout)
    assert sorted((r["ITEM"], r["UNIT"], r["SHIPPED"], r["RECEIVED"], r["GAP"]) for r in rows) == [
        ("EUV-PR", "L", "1,000", "1,000", "0"),
        ("HF-UHP", "t", "40", "40", "0"),
        ("HF-UHP", "unit", "100", "100", "0"),
    ]
    gaps = ledger("flows", "--gaps-only", "--json")
    assert sorted((f["from"], f["to"], f["gap"]) for f in json.loads(gaps.stdout)["flows"]) == [
        ("KR", "CN", "50"), ("KR", "JP", "39530")]


def test_flows_refuse_a_malformed_period_by_name(ledger):
    assert ledger("demo").returncode == 0
    bad = ledger("flows", "--period", "2019-13")
    assert bad.returncode == 2  # a usage error, said by argparse before anything is opened
    assert "ledger flows: error: argument --period: period '2019-13' is not a year (2019) or a month (2019-07)" in bad.stderr


def test_trace_shows_the_lineage_with_the_account_at_each_node(ledger):
    assert ledger("demo").returncode == 0
    text = ledger("trace", "TR-PR-2019-0003")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[1].startswith("PR-0003  export  JP-FLUORO (JP) -> KR-SEMI (KR)  EUV-PR  license JP-IND-2019-0002")
    assert "re-exported 1,000" in lines[2]
    # Children in shipment order: Xi'an at 10:00, Wuxi at 10:05.
    assert lines[3].startswith("├─ PR-0003-XA  re-export  KR-SEMI (KR) -> CN-SEMI-XIAN (CN)")
    assert "shipped 700, in transit 0, received 700, consumed 700" in lines[4]
    assert lines[5].startswith("└─ PR-0003-WX  re-export  KR-SEMI (KR) -> CN-SEMI-WUXI (CN)")
    assert "premise_deviation" in text.stdout

    tree = json.loads(ledger("trace", "HF-0002-R1", "--json").stdout)  # a lot id selects its trace
    [root] = tree["lineage"]
    assert (root["lot_id"], root["shipped"], root["unit"], root["returned"]) == ("HF-0002", "40", "t", "39.65")
    [back] = root["children"]
    assert (back["lot_id"], back["origin"], back["shipped"], back["received"], back["in_transit"]) == (
        "HF-0002-R1", "ship_back", "39650", "120", "39530")
    assert back["children"] == []

    early = json.loads(ledger("trace", "TR-PR-2019-0003", "--as-of", "2019-08-31", "--json").stdout)
    assert [r["lot_id"] for r in early["lineage"]] == ["PR-0003"]
    assert early["lineage"][0]["children"] == []  # the re-exports had not happened yet

    assert ledger("trace", "NO-SUCH-TRACE").returncode == 1


# -- bad input: each gets a clear message naming the event ---------------------------------------


EXPORT = {
    "type": "exported", "event_id": "exp-1", "occurred_at": "2019-07-10T10:00:00+09:00", "reporter": "JP-FLUORO",
    "trace_id": "TR-BAD", "lot_id": "BAD-1", "exporter": {"id": "JP-FLUORO", "country": "JP"},
    "consignee": {"id": "KR-SEMI", "country": "KR"},
    "item": {"id": "HF-UHP", "classification": "AG 1C350.25"}, "quantity": {"amount": "100", "unit": "kg"},
    "license_id": "JP-NO-SUCH-LICENSE",
}
RECEIPT = {"type": "received", "event_id": "rcv-1", "occurred_at": "2019-07-15T10:00:00+09:00",
           "reporter": "KR-SEMI", "trace_id": "TR-BAD", "lot_id": "BAD-1", "quantity": {"amount": "100", "unit": "kg"}}


def test_bad_compliance_input_gets_a_clear_message_naming_the_event(ledger, tmp_path):
    backwards = {
        "type": "license_granted", "event_id": "lic-backwards", "occurred_at": "2019-07-04T09:00:00+09:00",
        "reporter": "JP-METI", "license_id": "JP-IND-BACKWARDS", "kind": "individual", "exporter": "JP-FLUORO",
        "items": ["HF-UHP"], "destinations": ["KR"], "valid_from": "2020-01-04T00:00:00+09:00",
        "valid_until": "2019-07-04T00:00:00+09:00",
    }
    ghost_retraction = {"type": "retracted", "event_id": "ret-ghost", "occurred_at": "2019-08-01T10:00:00+09:00",
                        "reporter": "KR-SEMI", "trace_id": "TR-BAD", "lot_id": "BAD-1",
                        "retracted_event_id": "never-reported", "reason": "typo"}
    litres = {"type": "corrected", "event_id": "cor-litres", "occurred_at": "2019-08-02T10:00:00+09:00",
              "reporter": "KR-SEMI", "trace_id": "TR-BAD", "lot_id": "BAD-1", "corrected_event_id": "rcv-1",
              "quantity": {"amount": "100", "unit": "L"}, "reason": "wrong unit"}
    result = ledger("ingest", write_jsonl(tmp_path / "bad.jsonl", backwards, EXPORT, RECEIPT, ghost_retraction, litres))

    # A license that ends before it starts is refused at the door, naming the license.
    assert result.returncode == 3, result.stderr
    assert "rejected line 1" in result.stderr and "'JP-IND-BACKWARDS' ends" in result.stderr

    # The rest is recorded; each problem is an alert naming its event, not a crash.
    alerts = {a["kind"] + ":" + ",".join(a["event_ids"]): a["message"]
              for a in json.loads(ledger("alerts", "--trace", "TR-BAD", "--json").stdout)["alerts"]}
    assert "cites license JP-NO-SUCH-LICENSE, which the ledger does not know" in alerts["license_unknown:exp-1"]
    assert alerts["invalid_report:ret-ghost"] == (
        "retraction 'ret-ghost' names event 'never-reported', which is not known in trace 'TR-BAD'")
    assert alerts["invalid_report:cor-litres"] == (
        "correction 'cor-litres' of event 'rcv-1' changes the unit from 'kg' (mass) to 'L' (volume); "
        "a correction cannot change the dimension")


def test_a_license_granted_after_the_export_resolves_the_unknown_license_alert(ledger, tmp_path):
    assert ledger("ingest", write_jsonl(tmp_path / "export.jsonl", EXPORT, RECEIPT)).returncode == 0
    kinds = {a["kind"] for a in json.loads(ledger("alerts", "--trace", "TR-BAD", "--json").stdout)["alerts"]}
    assert "license_unknown" in kinds
    grant = {
        "type": "license_granted", "event_id": "lic-late", "occurred_at": "2019-07-01T09:00:00+09:00",
        "reporter": "JP-METI", "license_id": "JP-NO-SUCH-LICENSE", "kind": "individual", "exporter": "JP-FLUORO",
        "items": ["HF-UHP"], "destinations": ["KR"], "end_users": ["KR-SEMI"],
        "valid_from": "2019-07-01T00:00:00+09:00", "valid_until": "2020-01-01T00:00:00+09:00",
    }
    assert ledger("ingest", write_jsonl(tmp_path / "grant.jsonl", grant)).returncode == 0
    after = json.loads(ledger("alerts", "--trace", "TR-BAD", "--json").stdout)["alerts"]
    assert not [a for a in after if a["kind"].startswith("license") or a["kind"] == "premise_deviation"]
    journal = json.loads(ledger("alerts", "--journal", "--json").stdout)
    assert ("resolved", "license_unknown") in {(e["transition"], e["kind"]) for e in journal}
