"""docs/EVENTS.md cannot rot: every example in it is checked against the contract."""

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines
from ledger.events import EVENT_TYPES, parse_event

EVENTS_MD = Path(__file__).resolve().parents[2] / "docs" / "EVENTS.md"
TEXT = EVENTS_MD.read_text()
JSON_BLOCKS = re.findall(r"```json\n(.*?)```", TEXT, flags=re.DOTALL)


def test_the_contract_doc_has_examples():
    assert len(JSON_BLOCKS) >= len(EVENT_TYPES)


@pytest.mark.parametrize("block", JSON_BLOCKS, ids=lambda b: json.loads(b).get("type", "?"))
def test_every_json_example_is_a_valid_report(block):
    event = parse_event(block.strip())
    # The example says what it means: nothing in it is dropped or defaulted away.
    sent = json.loads(block)
    assert json.loads(event.model_dump_json(exclude_none=True, exclude={"schema_version"})) == sent


def test_there_is_exactly_one_example_of_each_event_type():
    types = sorted(json.loads(block)["type"] for block in JSON_BLOCKS)
    assert types == sorted(EVENT_TYPES)


def test_the_envelope_table_names_every_event_type():
    for event_type in EVENT_TYPES:
        assert f"`{event_type}`" in TEXT


def _indented_block_after(marker: str) -> list[str]:
    after = TEXT.split(marker, 1)[1]
    lines = after.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("    "))
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    return block


def test_the_documented_bad_input_gives_the_documented_messages():
    bad_lines = _indented_block_after("Given this file (`bad.jsonl`):")
    documented = _indented_block_after("`LEDGER_HOME=$(mktemp -d) ledger ingest bad.jsonl` prints:")
    report = ingest_lines(bad_lines, EmbeddedLog(":memory:"), source="bad.jsonl",
                          clock=lambda: datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert documented[0] == (
        f"bad.jsonl: {report.lines} lines: {report.accepted} recorded, {report.duplicates} already "
        f"recorded (no-op), {report.conflicts} conflicting, {report.rejected} rejected"
    )
    assert documented[1:] == [
        f"  rejected line {r.line}: " + "; ".join(str(p) for p in r.problems) for r in report.rejects
    ]
