"""`ledger alerts --as-of`: a license ceiling exceeded by that date is in the
auditor's answer, as it is in the answer now (the real console script)."""

from __future__ import annotations

import json
from pathlib import Path

from builders import write_jsonl

LICENSE = "JP-IND-2019-0001"


def _report(type_: str, **fields) -> dict:
    return {"type": type_, **fields}


GRANT = _report(
    "license_granted", event_id="lic-1", occurred_at="2019-07-01T09:00:00+09:00", reporter="JP-METI",
    license_id=LICENSE, kind="individual", exporter="JP-FLUORO", items=["HF-UHP"], destinations=["KR"],
    end_users=["KR-SEMI"], ceiling={"amount": "150", "unit": "kg"},
    valid_from="2019-07-01T00:00:00+09:00", valid_until="2020-01-01T00:00:00+09:00",
)


def _export(trace: str, lot: str, amount: str, at: str) -> dict:
    return _report(
        "exported", event_id=f"exp-{lot}", occurred_at=at, reporter="JP-FLUORO", trace_id=trace, lot_id=lot,
        exporter={"id": "JP-FLUORO", "country": "JP"}, consignee={"id": "KR-SEMI", "country": "KR"},
        item={"id": "HF-UHP", "classification": "AG 1C350.25"}, quantity={"amount": amount, "unit": "kg"},
        license_id=LICENSE,
    )


def _ceilings(ledger, *args: str) -> list[dict]:
    result = ledger("alerts", "--json", *args)
    assert result.returncode == 0, result.stderr
    return [a for a in json.loads(result.stdout)["alerts"] if a["kind"] == "license_ceiling"]


def test_a_ceiling_exceeded_by_september_is_in_the_answer_as_of_september(ledger, tmp_path: Path):
    reports = [GRANT, _export("TR-A", "A1", "100", "2019-07-10T10:00:00+09:00"),
               _export("TR-B", "B1", "80", "2019-08-10T10:00:00+09:00")]
    assert ledger("ingest", write_jsonl(tmp_path / "reports.jsonl", *reports)).returncode == 0

    [now] = _ceilings(ledger)
    assert (now["trace_id"], now["lot_id"], now["quantity"]) == (f"license:{LICENSE}", "B1", "30")
    [then] = _ceilings(ledger, "--as-of", "2019-09-01")
    assert then == now
    # The lot's own trace, asked about as of then, shows the ceiling its shipment exceeded.
    assert _ceilings(ledger, "--as-of", "2019-09-01", "--trace", "TR-B") == [now]
    # Before the second shipment the license was within its ceiling.
    assert _ceilings(ledger, "--as-of", "2019-08-01") == []
