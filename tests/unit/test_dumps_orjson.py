"""A report's digest and stored bytes do not depend on which JSON writer
wrote them.

Logs on disk hold content digests (tests/unit/test_content_digest_pinned.py
pins their definition: the json module's sorted, compact, ASCII text), and
ingest stores each report as the json module's compact UTF-8 text.
ledger/events.py takes orjson's text instead wherever it is the same; here,
on bodies generated to hold what makes the two writers differ (quotes,
backslashes, control characters, DEL, non-ASCII and lone surrogates, keys
that sort differently, integers past 64 bits), the bytes are the json
module's every time.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.events import _canonical_bytes, _compact_bytes
from tests.unit.test_content_digest_pinned import EXPORTED, GRANTED, RECEIVED

# What a pydantic JSON-mode dump of a report holds: no floats (the contract has none).
TEXT = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=12)
TRICKY = st.sampled_from(['"', "\\", "\n", "\x00", "\x1f", "\x7f", "\x80", "\u2028", "é", "株", "☢", "\ud800", "/"])
STRINGS = st.one_of(TEXT, TRICKY, st.lists(TRICKY, max_size=4).map("".join))
SCALARS = st.one_of(STRINGS, st.integers(min_value=-(2**70), max_value=2**70), st.booleans(), st.none())
BODIES = st.dictionaries(
    STRINGS,
    st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                  st.dictionaries(STRINGS, inner, max_size=3)), max_leaves=8),
    max_size=6,
)


def json_module(body: dict, **options) -> bytes | type[Exception]:
    try:
        return json.dumps(body, separators=(",", ":"), **options).encode()
    except UnicodeEncodeError:  # a lone surrogate is not UTF-8
        return UnicodeEncodeError


def ours(dump, body: dict) -> bytes | type[Exception]:
    try:
        return dump(body)
    except UnicodeEncodeError:
        return UnicodeEncodeError


@settings(max_examples=400, deadline=None)
@given(BODIES)
def test_the_digest_text_is_the_json_modules_sorted_ascii_text(body):
    assert ours(_canonical_bytes, body) == json_module(body, sort_keys=True)


@settings(max_examples=400, deadline=None)
@given(BODIES)
def test_the_stored_text_is_the_json_modules_compact_utf8_text(body):
    assert ours(_compact_bytes, body) == json_module(body, ensure_ascii=False)


def test_the_pinned_reports_are_written_alike_by_both():
    for body in (EXPORTED, RECEIVED, GRANTED):
        assert _canonical_bytes(body) == json_module(body, sort_keys=True)
        assert _compact_bytes(body) == json_module(body, ensure_ascii=False)
