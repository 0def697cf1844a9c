"""content_digest is pinned: logs on disk store these digests, and a re-sent
report is recognised as a duplicate only if its digest is the one stored.

The digests below were computed with the original definition (model_dump in
JSON mode without recorded_at and None fields, json.dumps with sorted keys
and compact separators, SHA-256) before any change to how it is computed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ledger.events import content_digest, parse_event

ROOT = Path(__file__).resolve().parents[2]

LICENSE_LINE = (
    '{"type":"license_granted","event_id":"TR-0000077-01","occurred_at":"2018-11-13T17:19:15-05:00",'
    '"recorded_at":"2018-11-14T21:47:15-05:00","reporter":"US-AUTH-BIS","license_id":"LIC-IND-0000077",'
    '"kind":"individual","exporter":"US-EXP-006","items":["HF-UHP"],"destinations":["KR"],'
    '"end_users":["KR-CNS-045"],"valid_from":"2018-11-13T17:19:15-05:00",'
    '"valid_until":"2018-12-27T17:19:15-05:00","ceiling":{"amount":"3268.749","unit":"kg"}}'
)

EXPORTED = {
    # Non-ASCII names, a quote and a backslash, an amount with trailing
    # zeros, microseconds and a +09:00 offset.  (Control characters in free
    # text are refused by the contract since issue 14.)
    "type": "exported", "event_id": "EV-u-1", "occurred_at": "2024-03-01T09:30:00.123456+09:00",
    "recorded_at": "2024-03-02T00:00:00Z", "reporter": "JP-EXP-1", "trace_id": "TR-1", "lot_id": "LOT-1",
    "exporter": {"id": "JP-EXP-1", "country": "JP", "name": "株式会社 Ströme \"Nord\" \\ ok"},
    "consignee": {"id": "KR-CNS-1", "country": "KR", "name": "line break tab del \u00a0nbsp"},
    "item": {"id": "HF", "classification": "AG 1C350.51", "name": "Fluorwasserstoff ☢"},
    "quantity": {"amount": "30.500", "unit": "kg"}, "license_id": "LIC-1",
}
RECEIVED = {  # an integer amount, no optional field, no recorded_at
    "type": "received", "event_id": "EV-2", "occurred_at": "2024-03-05T10:00:00-05:00",
    "reporter": "KR-CNS-1", "trace_id": "TR-1", "lot_id": "LOT-1", "quantity": {"amount": 30, "unit": "kg"},
}
CORRECTED = {
    "type": "corrected", "event_id": "EV-3", "occurred_at": "2024-03-06T10:00:00+00:00",
    "reporter": "KR-CNS-1", "trace_id": "TR-1", "lot_id": "LOT-1", "corrected_event_id": "EV-2",
    "quantity": {"amount": "0", "unit": "kg"}, "reason": "typo: 30 was 3.0 \u2014 sorry",
}
GRANTED = {
    "type": "license_granted", "event_id": "EV-4", "occurred_at": "2024-01-01T00:00:00Z",
    "reporter": "JP-AUTH", "license_id": "LIC-9", "kind": "general_bulk", "exporter": "JP-EXP-1",
    "items": ["HF", "NF3"], "destinations": ["KR", "XK"],
    "valid_from": "2024-01-01T00:00:00Z", "valid_until": "2025-01-01T00:00:00Z",
}

PINNED = [
    (LICENSE_LINE, "9c248d3aa9c8c2e4cd113b0eba63fc6b4515002f79d64708ecbf409784b92736"),
    (EXPORTED, "cac662cded1218b0bff825af6c593c0b622a9c64f9552f54e49aba6bf3cc1308"),
    (RECEIVED, "7122fefd18db37cd09e5adc30231a3ec23d5ed4374e43a99e35cd019b87a2725"),
    (CORRECTED, "23ccdeee6f20085d1278fd654df4fba725dea3197aaed6f9fc98ceaf6c1c12d2"),
    (GRANTED, "a209066b4b084cfcef59e7158fa665a066ca629092e3095dfb4c608a65ea154f"),
]


def _original_digest(event: object) -> str:
    """The original definition, kept here as the reference."""
    body = event.model_dump(mode="json", exclude={"recorded_at"}, exclude_none=True)  # type: ignore[attr-defined]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("report", "digest"), PINNED, ids=["line", "exported", "received", "corrected", "granted"])
def test_digest_is_pinned(report: object, digest: str) -> None:
    event = parse_event(report)  # type: ignore[arg-type]
    assert content_digest(event) == digest
    assert _original_digest(event) == digest


@pytest.mark.parametrize(("report", "_digest"), PINNED, ids=["line", "exported", "received", "corrected", "granted"])
def test_digest_ignores_recorded_at(report: object, _digest: str) -> None:
    from datetime import datetime, timezone

    event = parse_event(report)  # type: ignore[arg-type]
    restamped = event.stamped(datetime(2030, 1, 1, tzinfo=timezone.utc), overwrite=True)
    assert content_digest(restamped) == content_digest(event)


def test_digest_differs_when_content_differs() -> None:
    other = dict(RECEIVED, quantity={"amount": "30.001", "unit": "kg"})
    assert content_digest(parse_event(other)) != content_digest(parse_event(RECEIVED))


def test_equal_amounts_written_differently_have_one_digest() -> None:
    # "30", 30 and "30.000" are one quantity: canonical_decimal makes them one text.
    texts = {content_digest(parse_event(dict(RECEIVED, quantity={"amount": a, "unit": "kg"})))
             for a in (30, "30", "30.000")}
    assert len(texts) == 1


ODD_TEXTS = ["plain", "株式会社 Ströme", "quote \" backslash \\ slash /", "\x00\x01\x08\x0c\x1f\x7f",
             "line\nreturn\rtab\t", "\u2028\u2029", "astral \U0001f600 \U00010348", "\ufeff bom", "é" * 300]


@pytest.mark.parametrize("report", [LICENSE_LINE, EXPORTED, RECEIVED, CORRECTED, GRANTED],
                         ids=["line", "exported", "received", "corrected", "granted"])
def test_digest_and_json_is_content_digest_and_pydantics_json(report: object) -> None:
    from datetime import datetime, timezone

    from ledger.events import digest_and_json

    event = parse_event(report)  # type: ignore[arg-type]
    for e in (event, event.stamped(datetime(2030, 1, 1, 12, 30, 15, 123, tzinfo=timezone.utc), overwrite=True)):
        assert digest_and_json(e) == (content_digest(e), e.model_dump_json(exclude_none=True).encode())


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_digest_and_json_writes_any_text_as_pydantic_does(text: str) -> None:
    from ledger.events import digest_and_json

    # The contract refuses control characters in free text (issue 14); a
    # log written before may hold them, so the text is set without
    # validation and must still be written as pydantic writes it.
    event = parse_event(EXPORTED)
    event = event.model_copy(update={"exporter": event.exporter.model_copy(update={"name": text}),
                                     "item": event.item.model_copy(update={"name": text[::-1]})})
    digest, value = digest_and_json(event)
    assert value == event.model_dump_json(exclude_none=True).encode()
    assert digest == content_digest(event) == _original_digest(event)


def test_a_stored_body_hashes_to_its_content_digest_without_being_parsed():
    # ledger verify checks a report the current contract refuses (recorded
    # before it grew stricter) by its stored JSON body: the same digest.
    import json

    from ledger.events import digest_and_json, parse_event, stored_body_digest

    for line in (ROOT / "examples" / "story-2019.jsonl").read_text(encoding="utf-8").splitlines():
        event = parse_event(line).stamped(datetime(2026, 1, 15, tzinfo=timezone.utc))
        digest, value = digest_and_json(event)
        assert stored_body_digest(json.loads(value)) == digest
