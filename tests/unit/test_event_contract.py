"""The event contract refuses bad input, naming the field and the value.

The error payload is a contract with integrators (their systems show it to
whoever fixes the report), so every test compares the whole payload.
"""

import copy
import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from builders import exported, license_granted, line, payload, received, stock_declared
from consumers.log.embedded import EmbeddedLog
from consumers.ingest import ingest_lines, prepare_line
from ledger.events import EVENT_TYPES, content_digest, describe_validation_error, parse_event

NOW = datetime(2019, 12, 1, tzinfo=timezone.utc)


def problems(body: dict | str) -> list[dict[str, str]]:
    """The whole problem payload for a report the contract must refuse."""
    with pytest.raises(ValidationError) as caught:
        parse_event(body)
    return [p.model_dump() for p in describe_validation_error(caught.value)]


def changed(event, path: str, value=...):
    """The report's JSON with the field at dotted ``path`` set to ``value`` (or removed)."""
    body = copy.deepcopy(payload(event))
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


# -- input that is not a report at all (checked by ingest, line by line) ----------


def test_ingest_rejects_lines_that_are_not_json_objects_and_keeps_the_rest():
    log = EmbeddedLog(":memory:")
    report = ingest_lines(
        ['{"type": "received",', "[1, 2]", "", line(exported()), '"a string"'],
        log, source="reports.jsonl", clock=lambda: NOW,
    )
    assert (report.lines, report.accepted, report.rejected) == (5, 1, 3)
    assert [(r.line, [p.model_dump() for p in r.problems]) for r in report.rejects] == [
        (1, [{"field": "(line)", "value": '"{\\"type\\": \\"received\\","',  # the line, as a JSON string
              "message": "not JSON: Expecting property name enclosed in double quotes: "
                         "line 1 column 21 (char 20)"}]),
        (2, [{"field": "(line)", "value": "[1, 2]",  # JSON, not an object
              "message": "must be a JSON object (one report per line)"}]),
        (5, [{"field": "(line)", "value": '"a string"',
              "message": "must be a JSON object (one report per line)"}]),
    ]  # fmt: skip
    assert str(report.rejects[1]) == (
        "reports.jsonl:2: field '(line)' value [1, 2]: must be a JSON object (one report per line)"
    )
    assert log.count() == 1


def test_ingest_reports_contract_violations_with_line_field_and_value():
    log = EmbeddedLog(":memory:")
    bad = line(received(), quantity={"amount": "-5", "unit": "kg"})
    report = ingest_lines([line(exported()), bad], log, source="reports.jsonl", clock=lambda: NOW)
    assert (report.accepted, report.rejected) == (1, 1)
    assert str(report.rejects[0]) == (
        "reports.jsonl:2: field 'quantity.amount' value \"-5\": must be greater than 0"
    )


# -- schema failures ------------------------------------------------------------------


def test_a_field_of_the_wrong_type():
    assert problems(changed(received(), "lot_id", 5)) == [
        {"field": "lot_id", "value": "5", "message": "Input should be a valid string"}
    ]


def test_an_identifier_with_forbidden_characters():
    assert problems(changed(received(), "lot_id", "lot 1!")) == [
        {"field": "lot_id", "value": '"lot 1!"',
         "message": "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._:/\\-]*$'"}
    ]  # fmt: skip


def test_a_field_the_contract_does_not_know():
    assert problems(changed(received(), "colour", "red")) == [
        {"field": "colour", "value": '"red"', "message": "Extra inputs are not permitted"}
    ]


def test_a_country_code_in_lower_case():
    assert problems(changed(exported(), "consignee.country", "kr")) == [
        {"field": "consignee.country", "value": '"kr"',
         "message": "String should match pattern '^[A-Z]{2}$'"}
    ]  # fmt: skip


def test_a_schema_version_this_ledger_does_not_read():
    assert problems(changed(received(), "schema_version", 2)) == [
        {"field": "schema_version", "value": "2", "message": "Input should be 1"}
    ]


@pytest.mark.parametrize("field", ["event_id", "occurred_at", "reporter", "trace_id", "lot_id", "quantity"])
def test_a_missing_field(field):
    assert problems(changed(received(), field)) == [
        {"field": field, "value": "(missing)", "message": "Field required"}
    ]


def test_every_missing_field_is_named_at_once():
    body = {"type": "received", "event_id": "r1"}
    assert problems(body) == [
        {"field": name, "value": "(missing)", "message": "Field required"}
        for name in ("occurred_at", "reporter", "trace_id", "lot_id", "quantity")
    ]


# -- quantities -----------------------------------------------------------------------


def test_a_negative_quantity():
    assert problems(changed(received(), "quantity.amount", "-5")) == [
        {"field": "quantity.amount", "value": '"-5"', "message": "must be greater than 0"}
    ]


def test_a_zero_quantity_moves_nothing_and_is_refused():
    assert problems(changed(received(), "quantity.amount", "0")) == [
        {"field": "quantity.amount", "value": '"0"', "message": "must be greater than 0"}
    ]


def test_a_stock_declaration_may_say_nothing_is_left_but_not_less():
    assert stock_declared(qty="0").quantity.amount == 0
    assert problems(changed(stock_declared(), "quantity.amount", "-1")) == [
        {"field": "quantity.amount", "value": '"-1"', "message": "must not be negative"}
    ]


PLAIN_DECIMAL = 'must be a plain decimal such as "30.5" (digits, one optional point)'


@pytest.mark.parametrize(
    ("amount", "value", "message"),
    [
        ("ten", '"ten"', PLAIN_DECIMAL),
        ("NaN", '"NaN"', PLAIN_DECIMAL),
        ("Infinity", '"Infinity"', PLAIN_DECIMAL),
        ("1_000", '"1_000"', PLAIN_DECIMAL),  # Python's Decimal would read it as 1000
        ("1e3", '"1e3"', PLAIN_DECIMAL),
        (" 5", '" 5"', PLAIN_DECIMAL),
        (True, "true", "must be a decimal string or an integer, not a boolean"),
    ],
)
def test_a_quantity_that_is_not_a_number(amount, value, message):
    assert problems(changed(received(), "quantity.amount", amount)) == [
        {"field": "quantity.amount", "value": value, "message": message}
    ]


FLOAT_REFUSED = (
    'must be a decimal string such as "30.5" or an integer; '
    "JSON floats are inexact and are not accepted"
)


def test_a_json_float_quantity_is_refused():
    # As JSON text, the way a party sends it, and as a parsed object.
    text = json.dumps(changed(received(), "quantity.amount", 30.5))
    assert '"amount": 30.5' in text
    assert problems(text) == [{"field": "quantity.amount", "value": "30.5", "message": FLOAT_REFUSED}]
    assert problems(changed(received(), "quantity.amount", 0.1)) == [
        {"field": "quantity.amount", "value": "0.1", "message": FLOAT_REFUSED}
    ]


def test_a_quantity_as_a_string_or_an_integer_is_exact():
    assert parse_event(changed(received(), "quantity.amount", "30.5")).quantity.amount == Decimal("30.5")
    assert parse_event(changed(received(), "quantity.amount", 30)).quantity.amount == Decimal(30)


def test_an_unknown_unit():
    assert problems(changed(received(), "quantity.unit", "lb")) == [
        {"field": "quantity.unit", "value": '"lb"',
         "message": "unknown unit; known units: g, kg, t, mL, L, m3, unit"}
    ]  # fmt: skip


def test_too_many_decimal_places():
    assert problems(changed(received(), "quantity.amount", "1.0000001")) == [
        {"field": "quantity.amount", "value": '"1.0000001"', "message": "has more than 6 decimal places"}
    ]
    # Trailing zeros are spelling, not precision: one millionth is the limit.
    assert parse_event(changed(received(), "quantity.amount", "1.000001000")).quantity.amount == Decimal(
        "1.000001"
    )


def test_too_many_integer_digits():
    assert problems(changed(received(), "quantity.amount", "1234567890123456")) == [
        {"field": "quantity.amount", "value": '"1234567890123456"',
         "message": "has more than 15 integer digits"}
    ]  # fmt: skip


# -- times ------------------------------------------------------------------------------


def test_a_time_without_a_zone():
    assert problems(changed(received(), "occurred_at", "2019-07-15T14:00:00")) == [
        {"field": "occurred_at", "value": '"2019-07-15T14:00:00"', "message": "Input should have timezone info"}
    ]


# -- the event type -------------------------------------------------------------------


def test_an_unknown_event_type():
    assert problems(changed(received(), "type", "shipped")) == [
        {"field": "type", "value": '"shipped"',
         "message": "Input tag 'shipped' found using 'type' does not match any of the expected tags: "
                    + ", ".join(f"'{t}'" for t in EVENT_TYPES)}
    ]  # fmt: skip


def test_a_missing_event_type():
    assert problems(changed(received(), "type")) == [
        {"field": "type", "value": "(missing)", "message": "required; one of: " + ", ".join(EVENT_TYPES)}
    ]


# -- rules across fields ------------------------------------------------------------------


def test_an_export_is_reported_by_its_exporter():
    assert problems(changed(exported(), "reporter", "KR-TRADE")) == [
        {"field": "reporter", "value": '"KR-TRADE"',
         "message": "reporter 'KR-TRADE' must be the exporter 'JP-FLUORO'"}
    ]  # fmt: skip


def test_a_license_that_ends_before_it_starts():
    body = payload(license_granted())
    body.update(valid_from="2019-07-04T00:00:00+00:00", valid_until="2019-07-01T00:00:00+00:00")
    assert problems(body) == [
        {"field": "valid_until", "value": '"2019-07-01T00:00:00+00:00"',
         "message": "license 'JP-IND-2019-0001' ends (2019-07-01T00:00:00+00:00) "
                    "before it starts (2019-07-04T00:00:00+00:00)"}
    ]  # fmt: skip


def test_a_license_that_ends_the_moment_it_starts():
    body = payload(license_granted())
    body.update(valid_from="2019-07-04T00:00:00+00:00", valid_until="2019-07-04T00:00:00+00:00")
    assert [p["field"] for p in problems(body)] == ["valid_until"]


def test_a_value_is_shown_as_its_json_text_so_a_string_a_number_and_null_differ():
    shown = {name: problems(changed(received(), "quantity.amount", amount))[0]["value"]
             for name, amount in (("string", "thirty"), ("number", 30.5), ("null", None), ("object", {"a": 1}))}
    assert shown == {"string": '"thirty"', "number": "30.5", "null": "null", "object": '{"a": 1}'}
    assert [json.loads(text) for text in shown.values()] == ["thirty", 30.5, None, {"a": 1}]
    # Text reads as it was written; an identifier with a quote in it stays one JSON string.
    assert problems(changed(received(), "lot_id", "Müller's lot"))[0]["value"] == '"Müller\'s lot"'
    assert problems(changed(received(), "lot_id", 'a "b"'))[0]["value"] == '"a \\"b\\""'
    # A number JSON can write but no float holds: no JSON text to show, a note.
    text = line(received()).replace('"amount": "100"', '"amount": 1e999')
    assert [(p.field, p.value) for p in prepare_line(text, 1, source="t", clock=lambda: NOW).problems] == [
        ("quantity.amount", "(Infinity)")]


def test_a_long_value_is_shown_shortened():
    [problem] = problems(changed(received(), "lot_id", "x" * 200))
    assert problem["field"] == "lot_id"
    assert problem["value"] == '"' + "x" * 76 + "..."  # no closing quote: not the whole value
    assert len(problem["value"]) == 80


# -- the idempotency key: what a report says, not when the ledger learned it --------------


def test_content_digest_ignores_recorded_at():
    report = received()
    first = report.stamped(datetime(2019, 7, 15, tzinfo=timezone.utc))
    again = report.stamped(datetime(2019, 7, 20, tzinfo=timezone.utc))
    assert content_digest(first) == content_digest(again) == content_digest(report)


def test_content_digest_ignores_the_spelling_of_decimals():
    spellings = ["100", "100.00", "100.0", 100]
    digests = {content_digest(parse_event(changed(received(), "quantity.amount", s))) for s in spellings}
    assert len(digests) == 1


def test_content_digest_changes_with_what_the_report_says():
    assert content_digest(received(qty="100")) != content_digest(received(qty="100", event_id="other"))
    base = received(qty="100", event_id="r1")
    assert content_digest(base) != content_digest(received(qty="99", event_id="r1"))
    assert content_digest(base) != content_digest(received(qty="100", unit="t", event_id="r1"))


def test_a_country_must_be_an_iso_3166_code():
    with pytest.raises(ValidationError) as refused:
        parse_event(changed(exported(), "consignee.country", "ZZ"))
    assert [(p.field, p.value, p.message) for p in describe_validation_error(refused.value)] == [
        ("consignee.country", '"ZZ"', "is not an ISO 3166-1 alpha-2 country code (e.g. JP, KR, CN)")]
