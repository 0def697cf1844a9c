"""A contract with no surprises (issue 14): what a reviewer reads on the line
is what the ledger records, and nothing on one line can stop ingest.

Times are ISO text in the years 1900 to 2199 (UTC); a version is an integer;
free text has no control characters; a field is said once; a line is at most
LINE_LENGTH_MAX bytes, counted while reading; a line nested too deep or
carrying a huge number is a reject naming the field, and the rest of the
file is recorded.
"""

import copy
import io
import json
from datetime import datetime, timezone
import tracemalloc

import pytest
from pydantic import ValidationError

from builders import consumed, exported, license_granted, line, payload, received
from consumers.log.embedded import EmbeddedLog
from consumers.ingest import LINE_LENGTH_MAX, READ_CHUNK_BYTES, LongLine, ingest_lines, read_lines
from ledger.events import YEAR_MAX, YEAR_MIN, content_digest, describe_validation_error, parse_event

NOW = datetime(2019, 12, 1, tzinfo=timezone.utc)


def problems(body) -> list[dict[str, str]]:
    """The whole problem payload for a report the contract must refuse."""
    with pytest.raises(ValidationError) as caught:
        parse_event(body)
    return [p.model_dump() for p in describe_validation_error(caught.value)]


def changed(event, path: str, value):
    """The report's JSON with the field at dotted ``path`` set to ``value``."""
    body = copy.deepcopy(payload(event))
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    node[last] = value
    return body


def refused(body) -> list[tuple[str, str]]:
    """(field, message) of each problem of a report the contract refuses."""
    return [(p["field"], p["message"]) for p in problems(body)]


def accepted(body) -> bool:
    try:
        parse_event(body if isinstance(body, str) else json.dumps(body))
    except ValidationError:
        return False
    return True


# -- times ---------------------------------------------------------------------

RANGE = f"must be in the years {YEAR_MIN} to {YEAR_MAX} (UTC)"


@pytest.mark.parametrize(("when", "ok"), [
    ("1899-12-31T23:59:59.999999Z", False),
    ("1900-01-01T00:00:00Z", True),
    ("1900-01-01T00:30:00+01:00", False),  # 1899 in UTC
    ("1899-12-31T23:30:00-01:00", True),   # 1900 in UTC
    ("2199-12-31T23:59:59.999999Z", True),
    ("2200-01-01T00:00:00Z", False),
    ("2199-12-31T23:30:00-01:00", False),  # 2200 in UTC
    ("0999-07-10T10:00:00+09:00", False),  # issue 14: an unpadded year once silenced alerts
    ("0001-01-01T00:00:00+14:00", False),  # issue 14: converting it to UTC overflowed
    ("9999-12-31T23:59:59-14:00", False),
])
def test_times_are_limited_to_the_years_1900_to_2199_in_utc(when, ok):
    body = json.dumps(changed(received(), "occurred_at", when))
    assert accepted(body) is ok
    if not ok:
        assert refused(body) == [("occurred_at", RANGE)]


def test_every_time_field_is_limited():
    for field in ("valid_from", "valid_until", "occurred_at", "recorded_at"):
        body = changed(license_granted(), field, "1800-01-01T00:00:00Z")
        assert (field, RANGE) in refused(json.dumps(body)), field


@pytest.mark.parametrize("value", [1563166800, 1563166800.0, "1563166800", True, "2019-07-15", "15.07.2019 14:00"])
def test_a_time_is_iso_text_never_a_number(value):
    [problem] = problems(json.dumps(changed(received(), "occurred_at", value)))
    assert problem["field"] == "occurred_at"
    assert problem["message"].startswith("must be an ISO 8601 time with zone")


def test_an_iso_time_with_zone_is_accepted_as_before():
    for when in ("2019-07-15T14:00:00+09:00", "2019-07-15T05:00:00Z", "2019-07-15T05:00:00.123456Z"):
        assert accepted(changed(received(), "occurred_at", when))


# -- strict types ------------------------------------------------------------------


def test_schema_version_is_the_integer_1_not_true():
    assert refused(json.dumps(changed(received(), "schema_version", True))) == [
        ("schema_version", "must be the integer 1")]
    assert refused(json.dumps(changed(received(), "schema_version", "1"))) == [
        ("schema_version", "must be the integer 1")]
    assert accepted(changed(received(), "schema_version", 1))


# -- free text ---------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\t", "\n", "\r", "\x7f", "\x85", "\x9b"])
@pytest.mark.parametrize("path", ["end_use", "exporter.name", "item.name", "item.classification"])
def test_control_characters_in_free_text_are_refused_naming_the_field(char, path):
    event = consumed() if path == "end_use" else exported()
    body = json.dumps(changed(event, path, f"ok{char}x"))
    assert refused(body) == [(path, f"contains the control character U+{ord(char):04X} at character 3; "
                                    "free text must be printable")]


def test_printable_text_in_any_script_is_accepted():
    assert accepted(changed(exported(), "item.name", "フッ化水素 \u00a0 Ströme \u2014 \"q\" \\ ☢"))


# -- one spelling for an amount ---------------------------------------------------


def test_an_amount_has_one_spelling_and_trailing_zeros_are_not_precision():
    # docs/EVENTS.md: "100" and "100.00" are one quantity; "1E+2" is refused.
    hundred, padded = received(qty="100"), parse_event(json.dumps(changed(received(qty="100"), "quantity.amount",
                                                                          "100.00")))
    assert content_digest(hundred) == content_digest(padded)
    assert refused(json.dumps(changed(received(), "quantity.amount", "1E+2"))) == [
        ("quantity.amount", 'must be a plain decimal such as "30.5" (digits, one optional point)')]


# -- ingest: one line cannot stop it ------------------------------------------------


def ingest(lines):
    log = EmbeddedLog(":memory:")
    report = ingest_lines(lines, log, source="reports.jsonl", clock=lambda: NOW)
    return report, {r.line: [(p.field, p.message) for p in r.problems] for r in report.rejects}


def test_a_key_said_twice_is_refused_naming_the_key():
    good = line(received())
    twice = good[:-1] + ', "type": "teleported"}'
    nested = json.dumps(payload(received()))[:-2] + ', "amount": "-5"}}'
    report, rejects = ingest([good, twice, nested, line(received(event_id="r-2"))])
    assert (report.accepted, report.rejected) == (2, 2)
    assert rejects[2][0] == ("type", "appears twice in one object; a report names each field once")
    assert rejects[3] == [("amount", "appears twice in one object; a report names each field once"),
                          ("quantity.amount", "must be greater than 0")]  # pydantic reads the last


def test_a_line_nested_too_deep_or_with_a_huge_number_is_a_reject_with_its_field_and_the_rest_is_recorded():
    deep = '{"type": "received", "quantity": ' + '{"a": ' * 1000 + "1" + "}" * 1001
    huge = json.dumps(payload(received()))[:-2].replace('"100"', "9" * 5000) + "}}"
    report, rejects = ingest([line(received(event_id="r-1")), deep, huge, line(received(event_id="r-2"))])
    assert (report.lines, report.accepted, report.rejected) == (4, 2, 2)
    assert rejects[2][0][0] == "a" and "recursion limit exceeded" in rejects[2][0][1]
    assert rejects[3][0][0] == "amount" and "number out of range" in rejects[3][0][1]


def test_every_reject_names_a_field():
    report, rejects = ingest(['[1]', '"text"', "{}", '{"type": 5}', "nul\x00", '{"a": 1e999}'])
    assert report.rejected == 6
    assert all(field != "(event)" for problems_ in rejects.values() for field, _m in problems_)


def _lines(data: bytes) -> list:
    return list(read_lines(io.BytesIO(data)))


def test_the_line_limit_is_in_bytes_both_sides_of_it():
    # "é" is two bytes of UTF-8: the limit counts them, not characters.
    at_limit = b'"' + "é".encode() * ((LINE_LENGTH_MAX - 2) // 2) + b'"'
    assert len(at_limit) == LINE_LENGTH_MAX
    over = at_limit + b" "  # one byte longer
    [first, second] = _lines(at_limit + b"\r\n" + over + b"\n")
    assert first == at_limit.decode()
    assert second == LongLine(LINE_LENGTH_MAX + 1, second.head)
    report, rejects = ingest([first, second])
    assert rejects[1] == [("(line)", "must be a JSON object (one report per line)")]
    assert rejects[2] == [("(line)", f"longer than {LINE_LENGTH_MAX} bytes")]


def test_lines_end_at_newline_crlf_or_a_lone_cr_as_text_files_read_them():
    assert _lines(b"a\nb\r\nc\rd") == ["a", "b", "c", "d"]
    assert _lines(b"a\n\nb\n") == ["a", "", "b"]  # a blank line keeps its number
    # "\r\n" split between two pieces of the read is one line end.
    split = b"x" * (READ_CHUNK_BYTES - 1) + b"\r\ny\n"
    assert _lines(split) == ["x" * (READ_CHUNK_BYTES - 1), "y"]


def test_a_huge_line_is_read_past_without_holding_it():
    size = 30 * LINE_LENGTH_MAX
    stream = io.BytesIO(line(received(event_id="r-1")).encode() + b"\n"
                        + b'{"x": "' + b"a" * size + b'"}\n'
                        + line(received(event_id="r-2")).encode() + b"\n")
    tracemalloc.start()  # counts what the reader allocates, not the stream it reads
    lines = list(read_lines(stream))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert isinstance(lines[1], LongLine) and lines[1].length_bytes == size + 9
    assert peak < 4 * LINE_LENGTH_MAX  # a few pieces, not the 30 MB line
    report, _ = ingest(lines)
    assert (report.accepted, report.rejected) == (2, 1)


def test_the_sdk_refuses_a_key_said_twice_as_ingest_does():
    from consumers.client import EventRejected, LedgerClient

    client = LedgerClient(EmbeddedLog(":memory:"), clock=lambda: NOW)
    good = line(received())
    with pytest.raises(EventRejected) as caught:
        client.validate('{"type": "teleported", ' + good[1:])
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("type", "appears twice in one object; a report names each field once")]
    assert client.validate(good).event_id == received().event_id
