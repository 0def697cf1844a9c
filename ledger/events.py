"""The event contract: every fact a party can report, as pydantic v2 models.

Reports are immutable.  A mistake is fixed by a later ``retracted`` report,
never by editing.  ``ledger schema`` writes the JSON Schema of ``LedgerEvent``
for integrators; docs/EVENTS.md shows an example of each type.
"""

from __future__ import annotations

import hashlib
import re
import json
import json.encoder
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

import orjson
import pycountry
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ledger.quantity import UNITS, Quantity, canonical_decimal

__all__ = [
    "SCHEMA_VERSION",
    "LICENSE_KEY_PREFIX",
    "country_code",
    "EVENT_TYPES",
    "Party",
    "Item",
    "Amount",
    "Exported",
    "Received",
    "Consumed",
    "ReExported",
    "Returned",
    "StockDeclared",
    "Lost",
    "Retracted",
    "Corrected",
    "LicenseGranted",
    "LicenseRevoked",
    "ExemptionConfirmed",
    "LedgerEvent",
    "LotEvent",
    "parse_event",
    "event_key",
    "line_shape_problems",
    "event_json_schema",
    "content_digest",
    "digest_and_json",
    "FieldProblem",
    "shown_value",
    "describe_validation_error",
    "duplicate_keys",
    "Timestamp",
    "YEAR_MIN",
    "ID_PATTERN",
    "stored_body_digest",
    "YEAR_MAX",
]

SCHEMA_VERSION = 1

# Bounds on what a report may carry (TigerBeetle: put a limit on everything).
ID_LENGTH_MAX = 128
TEXT_LENGTH_MAX = 2000
AMOUNT_INTEGER_DIGITS_MAX = 15
AMOUNT_DECIMAL_PLACES_MAX = 6
LIST_LENGTH_MAX = 500
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# Clock skew allowed between a report's occurred_at and the ledger's recording.
OCCURRED_AFTER_RECORDED_MAX = timedelta(minutes=15)

# Every id a report carries (events, traces, lots, parties): one spelling,
# used by the contract, the party registry and the HTTP credentials alike.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/\-]*$"

Identifier = Annotated[
    str,
    Field(min_length=1, max_length=ID_LENGTH_MAX, pattern=ID_PATTERN),
]
# ISO 3166-1 alpha-2, from pycountry's copy of the ISO tables (kept current
# by its maintainers), plus XK, the code customs systems use for Kosovo.
COUNTRY_CODES = frozenset(c.alpha_2 for c in pycountry.countries) | {"XK"}


def country_code(text: str) -> str:
    """``text`` if it is an ISO 3166-1 alpha-2 code as reports write it (upper
    case: "kr" is refused, as a report's or the party registry's "kr" is);
    else a ValueError naming it, for a command line or a query parameter."""
    if text not in COUNTRY_CODES:
        hint = f"; write {text.upper()}" if text.upper() in COUNTRY_CODES else ""
        raise ValueError(f"{text!r} is not an ISO 3166-1 alpha-2 country code (e.g. JP, KR, CN){hint}")
    return text


def _iso_country(value: str) -> str:
    if value not in COUNTRY_CODES:
        raise ValueError("is not an ISO 3166-1 alpha-2 country code (e.g. JP, KR, CN)")
    return value


CountryCode = Annotated[
    str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2"), AfterValidator(_iso_country)
]
# Times a report may carry, in UTC: the years 1900 through 2199.  Nothing
# the ledger keeps account of happened before 1900 (export control lists
# start in 1949), and 2199 leaves a license valid for decades plus every
# policy deadline (DAYS_MAX, ten years) inside four-digit years and inside
# what datetime can hold.  So every stored time is one fixed-width, sortable
# spelling (projections/rows.py), and no time zone or deadline arithmetic
# can overflow: a report dated 0001-01-01T00:00:00+14:00 once stopped all
# projection (issue 14).
YEAR_MIN = 1900
YEAR_MAX = 2199
_TIME_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _time_text(value: Any) -> Any:
    """A time is ISO 8601 text, never a number (pydantic would read
    1563166800 or "1563166800" as seconds since 1970).  A datetime is one
    too: only Python code (the SDK, tests) can pass one, never JSON."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(
            "must be an ISO 8601 time with zone as a string, such as \"2019-07-15T14:00:00+09:00\""
        )
    if not _TIME_TEXT.match(value):
        raise ValueError(
            "must be an ISO 8601 time with zone, such as \"2019-07-15T14:00:00+09:00\""
        )
    return value


def _sane_year(value: datetime) -> datetime:
    # The local year first: converting 0001-01-01T00:00+14:00 to UTC overflows.
    if not YEAR_MIN - 1 <= value.year <= YEAR_MAX + 1 or not (
        YEAR_MIN <= value.astimezone(timezone.utc).year <= YEAR_MAX
    ):
        raise ValueError(f"must be in the years {YEAR_MIN} to {YEAR_MAX} (UTC)")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_time_text), AfterValidator(_sane_year)]

# Control characters (C0, DEL, C1: NUL, BEL, ESC, CR, LF, TAB, ...) in free
# text: none.  A report is one line; what it says is shown in terminals,
# CSV and HTML, where a raw ESC or NUL changes what a reviewer sees.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _printable(value: str | None) -> str | None:
    if value is None:
        return value
    found = _CONTROL.search(value)
    if found:
        raise ValueError(
            f"contains the control character U+{ord(found.group()):04X} at character "
            f"{found.start() + 1}; free text must be printable"
        )
    return value


Text = Annotated[str, Field(min_length=1, max_length=TEXT_LENGTH_MAX), AfterValidator(_printable)]
Name = Annotated[str | None, Field(default=None, max_length=TEXT_LENGTH_MAX), AfterValidator(_printable)]


def _refuse(field: str, value: str, message: str) -> PydanticCustomError:
    """A check across fields that still names the one field and value it refuses.

    A plain ValueError from a model validator has no location, so the error
    would name the whole report instead of the field.
    """
    return PydanticCustomError(
        "report_invalid", "{message}", {"message": message, "field": field, "value": value}
    )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Party(_Model):
    """An exporter, consignee, end user, carrier or authority."""

    id: Identifier
    country: CountryCode
    name: Name = None


class Item(_Model):
    """What moves, with its export-control classification."""

    id: Identifier
    name: Name = None
    classification: Text = Field(
        description="Control-list entry, e.g. 'AG 1C350.51' or 'Wassenaar 3C006'."
    )


class Amount(_Model):
    """An exact decimal amount with a unit.

    ``amount`` is a JSON string ("30.5") or integer (30).  JSON floats are
    refused: 0.1 + 0.2 is not 0.3 in binary floating point, and a ledger that
    must balance to the last gram cannot start from an approximation.
    """

    amount: Decimal
    unit: str = Field(description="One of: " + ", ".join(UNITS))

    @field_validator("amount", mode="before")
    @classmethod
    def _no_floats(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError(
                "must be a decimal string such as \"30.5\" or an integer; "
                "JSON floats are inexact and are not accepted"
            )
        if isinstance(value, bool):
            raise ValueError("must be a decimal string or an integer, not a boolean")
        if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value):
            # Decimal() also reads "1_000", " 5 " and "1e3"; a ledger figure is
            # written one way only, so a typo cannot pass as a number.
            raise ValueError('must be a plain decimal such as "30.5" (digits, one optional point)')
        return value

    @field_validator("amount")
    @classmethod
    def _bounded(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("must be a finite number")
        sign, digits, exponent = value.normalize().as_tuple()
        assert isinstance(exponent, int)
        decimals = max(0, -exponent)
        integer_digits = max(0, len(digits) + exponent)
        if decimals > AMOUNT_DECIMAL_PLACES_MAX:
            raise ValueError(f"has more than {AMOUNT_DECIMAL_PLACES_MAX} decimal places")
        if integer_digits > AMOUNT_INTEGER_DIGITS_MAX:
            raise ValueError(f"has more than {AMOUNT_INTEGER_DIGITS_MAX} integer digits")
        return value

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str) -> str:
        if value not in UNITS:
            raise ValueError(f"unknown unit; known units: {', '.join(UNITS)}")
        return value

    @field_serializer("amount")
    def _canonical(self, value: Decimal) -> str:
        return canonical_decimal(value)

    def quantity(self) -> Quantity:
        return Quantity(self.amount, self.unit)


class PositiveAmount(Amount):
    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value


class NonNegativeAmount(Amount):
    @field_validator("amount")
    @classmethod
    def _non_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError("must not be negative")
        return value


class _Event(_Model):
    """Fields every report carries."""

    event_id: Identifier = Field(description="Globally unique; the idempotency key.")
    schema_version: Literal[1] = SCHEMA_VERSION
    occurred_at: Timestamp = Field(
        description=f"When it happened: ISO 8601 text with a zone, in the years {YEAR_MIN} to {YEAR_MAX} (UTC)."
    )
    recorded_at: Timestamp | None = Field(
        default=None,
        description="When the ledger learned it: stamped by the ledger on ingest (a sent value is replaced unless the ingest trusts it, for migrations).",
    )
    reporter: Identifier = Field(description="Party id of who reports this fact.")

    @field_validator("schema_version", mode="before")
    @classmethod
    def _integer_version(cls, value: Any) -> Any:
        if type(value) is not int:  # true == 1 in Python; a version is not a boolean
            raise ValueError(f"must be the integer {SCHEMA_VERSION}")
        return value

    def stamped(self, recorded_at: datetime, *, overwrite: bool = False) -> "_Event":
        """This report with ``recorded_at`` set: if the reporter left it out,
        or always with ``overwrite`` (the ledger's own append time must not
        be the sender's to choose: it decides which of two conflicting
        versions wins and what an auditor's "known at" query sees)."""
        if self.recorded_at is not None and not overwrite:
            return self
        return self.model_copy(update={"recorded_at": recorded_at})

    def future_problem(self) -> "FieldProblem | None":
        """A report must not describe what has not happened yet when recorded.

        A holder could otherwise silence an alert today with a consumption
        dated next year.  A small tolerance absorbs clock skew.
        """
        if self.recorded_at is None:
            return None
        if self.occurred_at > self.recorded_at + OCCURRED_AFTER_RECORDED_MAX:
            return FieldProblem(
                field="occurred_at",
                value=shown_value(self.occurred_at.isoformat()),
                message=(
                    f"is later than when the ledger recorded the report "
                    f"({self.recorded_at.isoformat()}); a report cannot describe the future "
                    f"(check the time zone)"
                ),
            )
        return None


class _LotEvent(_Event):
    trace_id: Identifier = Field(description="Root lot's trace code, printed on the documents.")
    lot_id: Identifier = Field(description="The lot this report is about.")


class Exported(_LotEvent):
    """An exporter ships a quantity of one item to a consignee: opens a lot."""

    type: Literal["exported"] = "exported"
    exporter: Party
    consignee: Party
    end_user: Party | None = None
    item: Item
    quantity: PositiveAmount
    license_id: Identifier | None = None

    @model_validator(mode="after")
    def _exporter_reports(self) -> "Exported":
        if self.exporter.id != self.reporter:
            raise _refuse(
                "reporter", self.reporter,
                f"reporter {self.reporter!r} must be the exporter {self.exporter.id!r}",
            )
        return self


class Received(_LotEvent):
    """The consignee receives (part of) a lot: transit -> on hand."""

    type: Literal["received"] = "received"
    quantity: PositiveAmount


class Consumed(_LotEvent):
    """The holder uses (part of) a lot, with the declared end use."""

    type: Literal["consumed"] = "consumed"
    quantity: PositiveAmount
    end_use: Text


class ReExported(_LotEvent):
    """The holder ships on part of a lot: a child lot in transit to a new party."""

    type: Literal["re_exported"] = "re_exported"
    quantity: PositiveAmount
    child_lot_id: Identifier
    consignee: Party
    end_user: Party | None = None
    license_id: Identifier | None = None


class Returned(_LotEvent):
    """The holder ships part of a lot back (ship-back): a child lot in transit back."""

    type: Literal["returned"] = "returned"
    quantity: PositiveAmount
    child_lot_id: Identifier
    consignee: Party = Field(description="The addressee of the ship-back.")
    reason: Text
    license_id: Identifier | None = Field(
        default=None, description="The license the material left under, which covers its return."
    )


class ExemptionConfirmed(_LotEvent):
    """The licensing authority of the country a ship-back leaves confirms
    that the return exemption applies to it (``lot_id``: the ship-back's lot)."""

    type: Literal["exemption_confirmed"] = "exemption_confirmed"
    reference: Text = Field(description="The authority's decision or file reference.")


class StockDeclared(_LotEvent):
    """The holder attests a quantity still on hand as of ``occurred_at``."""

    type: Literal["stock_declared"] = "stock_declared"
    quantity: NonNegativeAmount


class Lost(_LotEvent):
    """The holder writes off (part of) a lot as lost or destroyed, with evidence."""

    type: Literal["lost"] = "lost"
    quantity: PositiveAmount
    disposition: Literal["lost", "destroyed"] = "lost"
    evidence: Text


class Retracted(_LotEvent):
    """The original reporter withdraws an earlier report of the same trace."""

    type: Literal["retracted"] = "retracted"
    retracted_event_id: Identifier
    reason: Text


class Corrected(_LotEvent):
    """The original reporter replaces the quantity of an earlier report of the
    same trace.  The original stays in history; the account uses the new
    quantity from the original's place in time.  Anything else wrong with a
    report is fixed by retracting it and reporting again."""

    type: Literal["corrected"] = "corrected"
    corrected_event_id: Identifier
    quantity: NonNegativeAmount = Field(description="The quantity the corrected report should have said.")
    reason: Text


class LicenseGranted(_Event):
    """An authority grants (or an exporter registers) an export license."""

    type: Literal["license_granted"] = "license_granted"
    license_id: Identifier
    kind: Literal["individual", "general_bulk", "special_general_bulk", "special_bulk"]
    exporter: Identifier
    items: list[Identifier] = Field(min_length=1, max_length=LIST_LENGTH_MAX)
    destinations: list[CountryCode] = Field(min_length=1, max_length=LIST_LENGTH_MAX)
    end_users: list[Identifier] = Field(
        default_factory=list,
        max_length=LIST_LENGTH_MAX,
        description="Permitted end users; empty means the license names none.",
    )
    ceiling: PositiveAmount | None = None
    valid_from: Timestamp
    valid_until: Timestamp

    @model_validator(mode="after")
    def _window(self) -> "LicenseGranted":
        if self.valid_until <= self.valid_from:
            raise _refuse(
                "valid_until", self.valid_until.isoformat(),
                f"license {self.license_id!r} ends ({self.valid_until.isoformat()}) "
                f"before it starts ({self.valid_from.isoformat()})",
            )
        return self


class LicenseRevoked(_Event):
    type: Literal["license_revoked"] = "license_revoked"
    license_id: Identifier
    reason: Text


LotEvent = Union[
    Exported, Received, Consumed, ReExported, Returned, StockDeclared, Lost, Retracted, Corrected,
    ExemptionConfirmed,
]
LedgerEvent = Annotated[
    Union[
        Exported,
        Received,
        Consumed,
        ReExported,
        Returned,
        StockDeclared,
        Lost,
        Retracted,
        Corrected,
        LicenseGranted,
        LicenseRevoked,
        ExemptionConfirmed,
    ],
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[str, ...] = (
    "exported",
    "received",
    "consumed",
    "re_exported",
    "returned",
    "stock_declared",
    "lost",
    "retracted",
    "corrected",
    "license_granted",
    "license_revoked",
    "exemption_confirmed",
)

_ADAPTER: TypeAdapter[Any] = TypeAdapter(LedgerEvent)


# The log key of a license report: ``license:<id>``.
LICENSE_KEY_PREFIX = "license:"


def event_key(event: object) -> str:
    """The log key a report is written under: its trace id, so a trace lives in one
    partition and is projected in order; a license report under ``license:<id>``."""
    if isinstance(event, (LicenseGranted, LicenseRevoked)):
        return f"{LICENSE_KEY_PREFIX}{event.license_id}"
    return event.trace_id  # type: ignore[attr-defined]


def parse_event(data: str | bytes | dict[str, Any]) -> Any:
    """Validate one report.  Raises pydantic.ValidationError."""
    if isinstance(data, dict):
        return _ADAPTER.validate_python(data)
    return _ADAPTER.validate_json(data)


# The published schema says what the validators above enforce, in JSON
# Schema terms, so an integrator's standard validator gives the ledger's
# verdict (tests/unit/test_published_schema.py runs jsonschema on every
# good and bad example).  Derived from the same constants as the checks.
SCHEMA_ID = f"urn:traceability-ledger:schema:ledger-event:{SCHEMA_VERSION}"
_YEARS = r"(19[0-9]{2}|2[01][0-9]{2})"  # YEAR_MIN..YEAR_MAX, 1900..2199
TIME_PATTERN = (rf"^{_YEARS}-[0-9]{{2}}-[0-9]{{2}}[Tt ][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}(\.[0-9]+)?)?"
                r"([Zz]|[+-][0-9]{2}:?[0-9]{2})$")
PRINTABLE_PATTERN = "^[^\u0000-\u001f\u007f-\u009f]*$"  # what _printable refuses
# A plain decimal of at most AMOUNT_INTEGER_DIGITS_MAX integer digits and
# AMOUNT_DECIMAL_PLACES_MAX decimal places once trailing zeros are dropped.
# (No look-arounds: generators such as hypothesis's, which schemathesis uses,
# cannot draw strings for them.)
_FRACTION = rf"(\.[0-9]{{1,{AMOUNT_DECIMAL_PLACES_MAX}}}0*)?"
_DECIMAL_TEXT = rf"0*[0-9]{{1,{AMOUNT_INTEGER_DIGITS_MAX}}}{_FRACTION}"
# Greater than 0: a non-zero integer part, or a zero one and a non-zero digit
# within the decimal places.
_POSITIVE_DECIMAL_TEXT = (rf"(0*[1-9][0-9]{{0,{AMOUNT_INTEGER_DIGITS_MAX - 1}}}{_FRACTION}"
                          rf"|0+\.[0-9]{{0,{AMOUNT_DECIMAL_PLACES_MAX - 1}}}[1-9]0*)")
_AMOUNT_INTEGER_MAX = 10**AMOUNT_INTEGER_DIGITS_MAX - 1


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of a report, as strict as the contract
    where JSON Schema can say it: times with a zone in 1900-2199, amounts as
    plain decimal strings or integers (never floats), known units, ISO
    country codes, no control characters in free text, ``type`` required.
    What it cannot say (a key given twice; a year that crosses 1900 or 2199
    only in UTC) the ledger still refuses."""
    schema = _ADAPTER.json_schema()
    defs = schema.get("$defs", {})
    for name, definition in defs.items():
        properties = definition.get("properties", {})
        if "type" in properties and "const" in properties["type"]:
            definition["required"] = sorted(set(definition.get("required", [])) | {"type"})
        for field_schema in properties.values():
            _strict_field(field_schema)
        if name in ("PositiveAmount", "NonNegativeAmount"):
            low = 1 if name == "PositiveAmount" else 0
            text = _POSITIVE_DECIMAL_TEXT if name == "PositiveAmount" else _DECIMAL_TEXT
            properties["amount"] = {
                "description": "a plain decimal string such as \"30.5\", or an integer; never a JSON float",
                "anyOf": [
                    {"type": "integer", "minimum": low, "maximum": _AMOUNT_INTEGER_MAX},
                    {"type": "string", "pattern": f"^{text}$"},
                ],
            }
            properties["unit"] = {"type": "string", "enum": list(UNITS)}
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
              "title": "LedgerEvent", "$comment": f"schema_version {SCHEMA_VERSION}", **schema}
    return schema


def _strict_field(field_schema: dict[str, Any]) -> None:
    """Tighten one property's schema in place (and the branches of an anyOf)."""
    for branch in field_schema.get("anyOf", []):
        _strict_field(branch)
    if field_schema.get("format") == "date-time":
        # The pattern says more than the format (a zone, the years), and a
        # generator that draws date-times then filters them by the pattern
        # (hypothesis, in schemathesis) gives up: the pattern alone.
        del field_schema["format"]
        field_schema["pattern"] = TIME_PATTERN
    if field_schema.get("type") == "string" and field_schema.get("maxLength") == TEXT_LENGTH_MAX:
        field_schema["pattern"] = PRINTABLE_PATTERN
    if field_schema.get("description") == "ISO 3166-1 alpha-2":
        field_schema["enum"] = sorted(COUNTRY_CODES)


def content_digest(event: _Event) -> str:
    """Hash of what a report says, excluding when the ledger learned it.

    Two reports with one event id and one digest are the same report sent
    twice (a no-op); one event id with two digests is a conflicting report.

    The digest is SHA-256 of ``json.dumps(body, sort_keys=True,
    separators=(",", ":"))`` (ASCII, non-ASCII escaped) of the report in
    pydantic's JSON mode without ``recorded_at`` and unset fields.  Logs on
    disk hold these digests: the definition must never change
    (tests/unit/test_content_digest_pinned.py pins it).
    """
    body = event.model_dump(mode="json", exclude=_NOT_CONTENT, exclude_none=True)
    return hashlib.sha256(_canonical_bytes(body)).hexdigest()


_NOT_CONTENT = frozenset({"recorded_at"})


def stored_body_digest(body: dict[str, Any]) -> str:
    """``content_digest`` of a report from the JSON body it was stored as,
    without parsing it into the contract: the same dump, so the same digest.
    For a stored report the current contract refuses (the contract grew
    stricter since it was recorded): its bytes can still be checked."""
    return hashlib.sha256(_canonical_json({k: v for k, v in body.items() if k not in _NOT_CONTENT}).encode()
                          ).hexdigest()


def digest_and_json(event: _Event) -> tuple[str, bytes]:
    """``(content_digest(event), event.model_dump_json(exclude_none=True).encode())``
    from one dump of the report, as ingest and the SDK append it.

    The JSON text is written by the json module from pydantic's JSON-mode
    dump, in the dump's field order, compact, UTF-8 unescaped: the same
    bytes pydantic writes (tests/unit/test_content_digest_pinned.py compares
    them); the digest is content_digest's, from the same dump without
    ``recorded_at``.
    """
    body = event.model_dump(mode="json", exclude_none=True)
    value = _compact_bytes(body)
    body.pop("recorded_at", None)
    return hashlib.sha256(_canonical_bytes(body)).hexdigest(), value


def _make_compact_json() -> Any:
    """``json.dumps(body, ensure_ascii=False, separators=(",", ":"))``, with one encoder."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return lambda body: json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    encode = make(None, None, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda body: "".join(encode(body, 0))


def _make_canonical_json() -> Any:
    """``json.dumps(body, sort_keys=True, separators=(",", ":"))``, without
    building an encoder per call.

    json.dumps makes a new encoder object for every call, a measurable part
    of ingest; this makes the same C encoder once, with the arguments
    json.dumps gives it (minus the circular-reference check, which a
    pydantic dump, a tree, never needs), so the text is the same to the byte.
    Without the C accelerator, json.dumps itself.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return lambda body: json.dumps(body, sort_keys=True, separators=(",", ":"))
    encode = make(None, None, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True)
    return lambda body: "".join(encode(body, 0))


_canonical_json = _make_canonical_json()
_compact_json = _make_compact_json()


# orjson writes a dump about seven times faster than the json module's C
# encoder (0.4 against 2.7-3.2 us a report: bench/codecs.py), the same
# bytes wherever neither escapes anything.  The two below take orjson's
# text only then, and the json module's otherwise, so the bytes, and the
# digests stored in logs on disk, never depend on which wrote them
# (tests/unit/test_dumps_orjson.py compares them on generated bodies).
# Both take a pydantic JSON-mode dump of a report: strings, integers,
# booleans, lists and objects, never a float (the contract has no float
# field); stored_body_digest, which may read anything stored, keeps the
# json module.
_SORTED = orjson.OPT_SORT_KEYS


def _canonical_bytes(body: dict[str, Any]) -> bytes:
    """``_canonical_json(body).encode()``.  Taken from orjson when it is plain
    ASCII without a backslash or DEL: the json module (``ensure_ascii``)
    escapes exactly the quote, the backslash, control characters, DEL and
    non-ASCII, and orjson escapes each of those but DEL and non-ASCII with
    a backslash.  Sorted keys: the same order for ASCII keys."""
    try:
        text = orjson.dumps(body, option=_SORTED)
    except orjson.JSONEncodeError:  # an integer past 64 bits, a lone surrogate
        return _canonical_json(body).encode()
    if text.isascii() and b"\\" not in text and b"\x7f" not in text:
        return text
    return _canonical_json(body).encode()


def _compact_bytes(body: dict[str, Any]) -> bytes:
    """``_compact_json(body).encode()``.  Taken from orjson when it has no
    backslash: without ``ensure_ascii`` the json module escapes exactly the
    quote, the backslash and control characters, and orjson escapes each
    of them with a backslash; both write everything else as UTF-8."""
    try:
        text = orjson.dumps(body)
    except orjson.JSONEncodeError:
        return _compact_json(body).encode()
    if b"\\" not in text:
        return text
    return _compact_json(body).encode()


class FieldProblem(BaseModel):
    """One reason a report was refused, naming the field and the value.

    ``value`` is what the report holds at ``field`` as JSON text
    (``shown_value``): ``"30.5"`` a string, ``30.5`` a number, ``null``,
    ``{"id": "KR-SEMI"}``, so a client tells them apart and can parse it;
    cut after VALUE_PREVIEW_LENGTH_MAX characters with ``...`` (no longer
    valid JSON then).  Where there is no value to show, a note in
    parentheses, which no JSON text starts with: ``(missing)``,
    ``(1048577 bytes)``.  The same text on every path: ``ledger ingest
    --json``, the SDK's ``EventRejected``, the HTTP API, the rejects table.
    """

    field: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"field '{self.field}' value {self.value}: {self.message}"


VALUE_PREVIEW_LENGTH_MAX = 80


def describe_validation_error(error: ValidationError, text: str | None = None) -> list[FieldProblem]:
    """One FieldProblem per error.  ``text``, the JSON the report was read
    from, lets an error in the JSON itself (a number out of range, nesting
    too deep) name the field it is in."""
    problems = []
    for detail in error.errors(include_url=False):
        loc = [str(part) for part in detail["loc"]]
        # The discriminated union puts the event type first in the location
        # ("exported", "quantity", "amount"); the integrator wrote the field
        # path without it.
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]
        field = ".".join(loc) or "(line)"
        if detail["type"] == "json_invalid" and text is not None:
            field, shown = _field_at(text, detail["msg"])
        elif detail["type"] == "missing":
            shown = "(missing)"
        else:
            shown = shown_value(detail.get("input"))
        message = detail["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if detail["type"] == "report_invalid":
            field = detail["ctx"]["field"]
            shown = shown_value(detail["ctx"]["value"])
        elif detail["type"] == "union_tag_invalid":
            field = "type"
            shown = shown_value(detail.get("ctx", {}).get("tag"))
        elif detail["type"] == "union_tag_not_found":
            field, shown = "type", "(missing)"
            message = "required; one of: " + ", ".join(EVENT_TYPES)
        problems.append(FieldProblem(field=field, value=shown, message=message))
    return problems


class _DuplicateKey(ValueError):
    def __init__(self, key: str, value: object):
        super().__init__(key)
        self.key, self.value = key, value


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)  # the common case, at C speed: no key said twice
    if len(out) < len(pairs):
        seen: set[str] = set()
        for key, value in pairs:
            if key in seen:
                raise _DuplicateKey(key, value)
            seen.add(key)
    return out


# One decoder for every call: json.loads(text, object_pairs_hook=...) makes
# a new one each time, a third of duplicate_keys' cost, which the projector
# pays on every record it reads.
_UNIQUE_KEYS_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def duplicate_keys(text: str | bytes) -> list[FieldProblem]:
    """A problem naming the first key said twice in one object of ``text``, or [].

    pydantic's JSON parser keeps the last of two equal keys; a reviewer
    reading the line sees the first ({"type": "teleported", ..., "type":
    "received"}), so a report says each field once.  Ingest checks every
    line, the projector every record (a producer may bypass ingest).
    """
    try:
        if isinstance(text, (bytes, bytearray)):  # as json.loads reads bytes
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        _UNIQUE_KEYS_DECODER.decode(text)
    except _DuplicateKey as duplicate:
        return [FieldProblem(field=duplicate.key, value=shown_value(duplicate.value),
                             message="appears twice in one object; a report names each field once")]
    except (ValueError, RecursionError):
        pass  # not JSON, nested too deep, a number too long: pydantic's error says where
    return []


def line_shape_problems(text: str) -> list[FieldProblem]:
    """Why ``text`` is not a JSON object (not JSON; JSON, but not an object),
    or [] if it is one, or if pydantic's own error says better where (nested
    deeper than the parser goes, an integer longer than int() reads)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return [FieldProblem(field="(line)", value=shown_value(text), message=f"not JSON: {error}")]
    except (ValueError, RecursionError):
        return []
    if not isinstance(value, dict):
        return [FieldProblem(field="(line)", value=shown_value(value),
                             message="must be a JSON object (one report per line)")]
    return []


def shown_value(value: Any) -> str:
    """``value`` as a FieldProblem shows it: its JSON text, cut after
    VALUE_PREVIEW_LENGTH_MAX characters with ``...``.  Text is kept as it
    reads (``"Müller"``), unless it holds bytes that were not UTF-8."""
    if isinstance(value, str) and len(value) > VALUE_PREVIEW_LENGTH_MAX:
        value = value[: VALUE_PREVIEW_LENGTH_MAX + 1]  # its JSON text is still too long: cut, and says so
    try:
        text = json.dumps(value, default=str, ensure_ascii=False, allow_nan=False)
    except ValueError:
        try:  # a number no JSON float holds (1e999 reads as Infinity): not JSON, so a note
            return _preview(f"({json.dumps(value, default=str, ensure_ascii=False)})")
        except ValueError:
            return f"(an integer of more than {VALUE_PREVIEW_LENGTH_MAX} digits)"
    if not text.isascii() and _SURROGATE.search(text):
        text = json.dumps(value, default=str)  # \udcXX: stays storable and sendable as UTF-8
    return _preview(text)


_SURROGATE = re.compile("[\ud800-\udfff]")


_JSON_COLUMN = re.compile(r"at line [0-9]+ column ([0-9]+)")
_JSON_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')


def _field_at(text: str, message: str) -> tuple[str, str]:
    """(the key nearest before the column the JSON parser stopped at, the
    JSON text from there, as written): "quantity" and ``1e999`` for
    {"quantity": 1e999}; "(line)" and the line, as a JSON string, when the
    parser names no column or no key precedes it."""
    found = _JSON_COLUMN.search(message)
    if found is None:
        return "(line)", shown_value(text)
    column = int(found.group(1))
    before = text[: column - 1]
    keys = list(_JSON_KEY.finditer(before))
    if not keys:
        return "(line)", shown_value(text)
    return keys[-1].group(1), _preview(text[keys[-1].end() : column].strip())


def _preview(text: str) -> str:
    if len(text) <= VALUE_PREVIEW_LENGTH_MAX:
        return text
    return text[: VALUE_PREVIEW_LENGTH_MAX - 3] + "..."
