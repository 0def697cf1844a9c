"""The published contract is the enforced contract: `ledger schema`, read by
a standard JSON Schema validator (jsonschema, Draft 2020-12), gives the same
verdict as the ledger on every good and bad example we publish and on the
mistakes integrators make."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from ledger.events import event_json_schema, parse_event

ROOT = Path(__file__).resolve().parents[2]
GOOD_RECEIPT = {"type": "received", "event_id": "semi-rcv-1", "occurred_at": "2019-07-15T14:00:00+09:00",
                "reporter": "KR-SEMI", "trace_id": "TR-1", "lot_id": "L1",
                "quantity": {"amount": "100", "unit": "kg"}}
EXPORT = {"type": "exported", "event_id": "exp-1", "occurred_at": "2019-07-10T10:00:00+09:00",
          "reporter": "JP-FLUORO", "trace_id": "TR-1", "lot_id": "L1",
          "exporter": {"id": "JP-FLUORO", "country": "JP"}, "consignee": {"id": "KR-SEMI", "country": "KR"},
          "item": {"id": "HF-UHP", "classification": "AG 1C350.25"},
          "quantity": {"amount": "100", "unit": "kg"}, "license_id": "JP-IND-1"}

# What integrators get wrong, each one change from a good report.
MISTAKES = {
    "a JSON float amount": {**GOOD_RECEIPT, "quantity": {"amount": 30.5, "unit": "kg"}},
    "a time without a zone": {**GOOD_RECEIPT, "occurred_at": "2019-07-15T14:00:00"},
    "country XX": {**EXPORT, "consignee": {"id": "KR-SEMI", "country": "XX"}},
    "unit lb": {**GOOD_RECEIPT, "quantity": {"amount": "100", "unit": "lb"}},
    "an amount in exponent form": {**GOOD_RECEIPT, "quantity": {"amount": "1E+2", "unit": "kg"}},
    "a negative amount": {**GOOD_RECEIPT, "quantity": {"amount": "-5", "unit": "kg"}},
    "a zero receipt": {**GOOD_RECEIPT, "quantity": {"amount": "0", "unit": "kg"}},
    "seven decimal places": {**GOOD_RECEIPT, "quantity": {"amount": "1.1234567", "unit": "kg"}},
    "sixteen integer digits": {**GOOD_RECEIPT, "quantity": {"amount": "1234567890123456", "unit": "kg"}},
    "a time as a Unix number": {**GOOD_RECEIPT, "occurred_at": 1563166800},
    "the year 999": {**GOOD_RECEIPT, "occurred_at": "0999-07-10T00:00:00+00:00"},
    "the year 2200": {**GOOD_RECEIPT, "occurred_at": "2200-01-02T00:00:00+00:00"},
    "schema_version true": {**GOOD_RECEIPT, "schema_version": True},
    "an ESC in an end use": {**GOOD_RECEIPT, "type": "consumed", "end_use": "etching \x1b[31m"},
    "an unknown field": {**GOOD_RECEIPT, "colour": "blue"},
    "no type": {k: v for k, v in GOOD_RECEIPT.items() if k != "type"},
    "an unknown type": {**GOOD_RECEIPT, "type": "teleported"},
}
EDGES_KEPT = {
    "trailing zeros past six places": {**GOOD_RECEIPT, "quantity": {"amount": "1.50000000", "unit": "kg"}},
    "an integer amount": {**GOOD_RECEIPT, "quantity": {"amount": 100, "unit": "kg"}},
    "fifteen integer digits": {**GOOD_RECEIPT, "quantity": {"amount": "123456789012345", "unit": "kg"}},
    "the first instant of 1900 in UTC": {**GOOD_RECEIPT, "occurred_at": "1900-01-01T00:00:00Z"},
    "Kosovo": {**EXPORT, "consignee": {"id": "XK-FAB", "country": "XK"}},
}


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = event_json_schema()
    Draft202012Validator.check_schema(schema)  # a schema a standard validator accepts
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and schema["$id"]
    return Draft202012Validator(schema)


def ledger_accepts(report: object) -> bool:
    try:
        parse_event(json.dumps(report))
    except ValidationError:
        return False
    return True


def published_examples() -> list[tuple[str, object]]:
    """Every JSON object a user reads in examples/ and docs/EVENTS.md."""
    found: list[tuple[str, object]] = []
    for path in (ROOT / "examples" / "story-2019.jsonl", ROOT / "examples" / "bad-reports.jsonl"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                found.append((f"{path.name}:{number}", json.loads(line)))
            except json.JSONDecodeError:
                pass  # not JSON at all: no schema to ask, and the ledger refuses it
    for number, block in enumerate(re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "EVENTS.md").read_text(),
                                              re.S), start=1):
        value = json.loads(block)
        if isinstance(value, dict) and "occurred_at" in value:
            found.append((f"EVENTS.md block {number}", value))
    return found


def test_the_schema_and_the_ledger_agree_on_every_published_example(validator):
    examples = published_examples()
    assert len(examples) > 30
    disagree = [(where, ledger_accepts(report)) for where, report in examples
                if validator.is_valid(report) != ledger_accepts(report)]
    assert disagree == []
    assert any(not ledger_accepts(r) for _w, r in examples)  # the bad ones are in there too


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_the_schema_refuses_what_the_ledger_refuses(validator, mistake):
    report = MISTAKES[mistake]
    assert not ledger_accepts(report)
    assert not validator.is_valid(report), mistake


@pytest.mark.parametrize("edge", sorted(EDGES_KEPT))
def test_the_schema_accepts_what_the_ledger_accepts_at_the_edges(validator, edge):
    report = EDGES_KEPT[edge]
    assert ledger_accepts(report)
    assert validator.is_valid(report), list(validator.iter_errors(report))


@pytest.mark.parametrize("amount, positive, non_negative", [
    ("0", False, True), ("0.000000", False, True), ("0.000001", True, True), ("0.0000001", False, False),
    ("000.5", True, True), ("1.5000000000", True, True), ("999999999999999", True, True),
    ("1000000000000000", False, False), ("00001000000000000000", False, False), ("1.", False, False),
    (".5", False, False), ("+1", False, False), ("1_000", False, False), (" 5", False, False),
])
def test_amount_patterns_draw_the_ledgers_line(validator, amount, positive, non_negative):
    # Both sides of every bound: receipts need more than 0, stock declarations 0 or more.
    receipt = {**GOOD_RECEIPT, "quantity": {"amount": amount, "unit": "kg"}}
    stock = {**GOOD_RECEIPT, "type": "stock_declared", "quantity": {"amount": amount, "unit": "kg"}}
    assert (ledger_accepts(receipt), validator.is_valid(receipt)) == (positive, positive)
    assert (ledger_accepts(stock), validator.is_valid(stock)) == (non_negative, non_negative)
