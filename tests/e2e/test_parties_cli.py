"""`ledger parties`: the registry the operator manages, as an operator uses it.

The demo registers the story's parties (examples/parties.json); after that,
a report naming a party nobody registered is rejected by `ledger ingest`
with its line, field and value (docs/COMPLIANCE.md, "Who may say what").
"""

from __future__ import annotations

import json
from pathlib import Path

from builders import write_jsonl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_demo_carries_its_registry(ledger):
    assert ledger("demo").returncode == 0
    listed = ledger("parties", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == sorted(json.loads((EXAMPLES / "parties.json").read_text()),
                                               key=lambda p: p["id"])


def test_an_operator_adds_lists_and_removes_a_party(ledger):
    added = ledger("parties", "add", "KR-EVIL", "--country", "KR", "--role", "exporter", "--role", "consignee")
    assert added.returncode == 0, added.stderr
    assert "registered 1 party: KR-EVIL" in added.stdout
    listed = ledger("parties", "list")
    assert "KR-EVIL" in listed.stdout and "consignee exporter" in listed.stdout

    assert ledger("parties", "remove", "KR-EVIL").returncode == 0
    again = ledger("parties", "remove", "KR-EVIL")
    assert again.returncode == 1
    assert "party 'KR-EVIL' is not registered" in again.stderr
    assert "no party registered" in ledger("parties", "list").stdout


def test_a_party_the_registry_cannot_hold_is_refused_naming_field_and_value(ledger, tmp_path):
    # On the command line it is a usage error (exit 2), as a country in `ledger flows` is;
    # in a file (below) the registry refuses it, naming the party.
    bad = ledger("parties", "add", "KR-EVIL", "--country", "ZZ", "--role", "exporter")
    assert bad.returncode == 2
    assert "argument --country: 'ZZ' is not an ISO 3166-1 alpha-2 country code" in bad.stderr
    broken = tmp_path / "parties.json"
    broken.write_text('[{"id": "KR-X", "country": "KR", "roles": ["smuggler"]}]')
    refused = ledger("parties", "add", "--file", str(broken))
    assert refused.returncode == 1
    assert "party #0: role 'smuggler' of 'KR-X'" in refused.stderr


def test_ingest_rejects_a_report_naming_an_unregistered_party(ledger, tmp_path):
    assert ledger("demo").returncode == 0
    reports = write_jsonl(
        tmp_path / "ghost.jsonl",
        {"type": "received", "event_id": "ghost-rcv-1", "occurred_at": "2019-07-16T10:00:00+09:00",
         "reporter": "KR-GHOST", "trace_id": "TR-HF-2019-0001", "lot_id": "HF-0001",
         "quantity": {"amount": "1", "unit": "unit"}},
        # A ship-back may cite the license its material left under (was
        # refused: "Extra inputs are not permitted").
        {"type": "returned", "event_id": "semi-ret-1", "occurred_at": "2019-09-02T10:00:00+09:00",
         "reporter": "KR-SEMI", "trace_id": "TR-HF-2019-0001", "lot_id": "HF-0001", "child_lot_id": "HF-0001-R1",
         "consignee": {"id": "JP-FLUORO", "country": "JP"}, "quantity": {"amount": "30", "unit": "unit"},
         "reason": "defective", "license_id": "JP-IND-2019-0001"},
    )
    done = ledger("ingest", reports)
    assert done.returncode == 3, done.stderr
    assert "2 lines: 1 recorded" in done.stdout
    assert ("rejected line 1: field 'reporter' value \"KR-GHOST\": is not a registered party; the operator "
            "registers parties with `ledger parties add`") in done.stderr
    alerts = json.loads(ledger("alerts", "--json").stdout)["alerts"]
    # The ship-back cites the license HF-0001 left under: no exemption to confirm.
    assert [a["lot_id"] for a in alerts if a["kind"] == "ship_back_exemption"] == ["HF-0002-R1"]
    lots = {lot["lot_id"]: lot for lot in json.loads(ledger("whereabouts", "--json").stdout)["lots"]}
    assert (lots["HF-0001-R1"]["license_id"], lots["HF-0001"]["returned"]) == ("JP-IND-2019-0001", "30")
