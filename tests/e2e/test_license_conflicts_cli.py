"""Two versions of one license grant, as a compliance officer sees them
through the CLI (the real console script, a fresh LEDGER_HOME): the licensing
authority re-sent a grant with another ceiling; the ledger keeps the first
recorded and says so with a conflicting_report on the license."""

from __future__ import annotations

import json

from builders import write_jsonl

GRANT = {
    "type": "license_granted", "event_id": "lic-grant-1", "occurred_at": "2019-07-01T09:00:00+09:00",
    "reporter": "JP-METI", "license_id": "JP-IND-CONFLICT", "kind": "individual", "exporter": "JP-FLUORO",
    "items": ["HF-UHP"], "destinations": ["KR"], "end_users": ["KR-SEMI"],
    "ceiling": {"amount": "150", "unit": "kg"},
    "valid_from": "2019-07-01T00:00:00+09:00", "valid_until": "2020-01-01T00:00:00+09:00",
}
EXPORT = {
    "type": "exported", "event_id": "exp-c1", "occurred_at": "2019-07-10T10:00:00+09:00", "reporter": "JP-FLUORO",
    "trace_id": "TR-CONFLICT", "lot_id": "C-1", "exporter": {"id": "JP-FLUORO", "country": "JP"},
    "consignee": {"id": "KR-SEMI", "country": "KR"},
    "item": {"id": "HF-UHP", "classification": "AG 1C350.25"}, "quantity": {"amount": "100", "unit": "kg"},
    "license_id": "JP-IND-CONFLICT",
}


def _conflicts(ledger, *args):
    result = ledger("alerts", *args, "--json")
    assert result.returncode == 0, result.stderr
    return [a for a in json.loads(result.stdout)["alerts"] if a["kind"] == "conflicting_report"]


def test_a_grant_re_sent_with_another_ceiling_raises_a_conflicting_report_on_the_license(ledger, tmp_path):
    assert ledger("ingest", write_jsonl(tmp_path / "first.jsonl", GRANT, EXPORT)).returncode == 0
    resent = dict(GRANT, ceiling={"amount": "300", "unit": "kg"}, reporter="JP-METI-DESK2")
    identical = dict(GRANT)
    assert ledger("ingest", write_jsonl(tmp_path / "same.jsonl", identical)).returncode == 0
    assert _conflicts(ledger) == []  # an identical resend is no conflict

    ledger("ingest", write_jsonl(tmp_path / "second.jsonl", resent))  # arrives alone
    [alert] = _conflicts(ledger)
    assert (alert["trace_id"], alert["party"], alert["quantity"], alert["event_ids"]) == (
        "license:JP-IND-CONFLICT", "JP-METI-DESK2", None, ["lic-grant-1"])
    assert "the ledger uses the version recorded at" in alert["message"]
    assert "not the one recorded at" in alert["message"]
    # Asking about the export shows it beside the license's ceiling.
    assert [a["alert_id"] for a in _conflicts(ledger, "--trace", "TR-CONFLICT")] == [alert["alert_id"]]
