"""The fold's fast paths give exactly what the plain code gave.

Each fast path (remembered spellings, cached unit factors, a License made
once per grant in force, digests only for repeated license event ids) is
checked against the straightforward version it replaced, on many values.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

import pytest

from ledger.events import LicenseGranted, LicenseRevoked, content_digest
from ledger.licenses import LicenseBook, _in_force, _one_version_each
from ledger.quantity import UNITS, DimensionMismatch, Quantity, UnitError, _spell, canonical_decimal, convert
from projections.rows import _id_list, ts

UTC = timezone.utc


def plain_decimal(value: Decimal) -> str:
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def test_canonical_decimal_remembered_spelling_is_the_plain_one() -> None:
    rng = random.Random(7)
    values = [Decimal(rng.randint(-10**21, 10**21)).scaleb(rng.randint(-12, 6)) for _ in range(5000)]
    # Zeros, exponents, and more digits than the context's precision (built
    # from tuples: arithmetic would round them to it).
    values += [Decimal((rng.randint(0, 1), tuple(int(c) for c in str(rng.randint(0, 10 ** rng.randint(0, 34)))),
                        rng.randint(-40, 12))) for _ in range(20000)]
    values += [Decimal(text) for text in ("0", "-0", "0.000", "-0.00", "0E-7", "1E+2", "100", "100.00", "2.500",
                                          "-2.50", "1E-7", "0.0000001", "1000.000", "Infinity", "-Infinity")]
    for value in values:
        assert _spell(value) == plain_decimal(value), value
    for _ in range(2):  # the second pass reads the remembered spellings
        for value in values:
            assert canonical_decimal(value) == plain_decimal(value), value
    # Equal values written differently share one spelling, whichever came first.
    assert canonical_decimal(Decimal("7.100")) == canonical_decimal(Decimal("7.1")) == "7.1"


def test_canonical_decimal_of_a_nan_is_not_remembered() -> None:
    assert canonical_decimal(Decimal("NaN")) == plain_decimal(Decimal("NaN"))
    for _ in range(2):
        with pytest.raises(InvalidOperation):
            plain_decimal(Decimal("sNaN"))
        with pytest.raises(InvalidOperation):
            canonical_decimal(Decimal("sNaN"))


def test_ts_spelling_is_strftime_in_utc() -> None:
    rng = random.Random(11)
    moments = []
    for _ in range(3000):
        zone = timezone(timedelta(minutes=rng.randint(-14 * 60, 14 * 60)))
        moments.append(datetime(rng.randint(1000, 9998), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                                rng.randint(0, 59), rng.randint(0, 59), rng.choice([0, rng.randint(0, 999_999)]),
                                tzinfo=zone))
    for _ in range(2):
        for moment in moments:
            assert ts(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), moment
    # A year below 1000 is padded to four digits (strftime writes "999"), so
    # text order stays time order (issue 14).
    assert ts(datetime(999, 5, 1, 12, tzinfo=UTC)) == "0999-05-01T12:00:00.000000Z"
    assert ts(datetime(999, 5, 1, 12, tzinfo=UTC)) < ts(datetime(1000, 1, 1, tzinfo=UTC))
    assert ts(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000000Z"
    # One instant in two zones: one spelling.
    instant = datetime(2020, 2, 29, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert ts(instant) == ts(instant.astimezone(UTC)) == "2020-03-01T04:30:00.000000Z"
    assert ts(None) is None


@pytest.mark.parametrize("ids", [(), ("",), ("TR-1-01",), ("TR-1-01", "a.b:c/d_e"), ("é",), ('a"b',),
                                 ("a\\b",), ("x y",), ("tab\t",), ("a", "\n")])
def test_event_id_list_is_json(ids: tuple[str, ...]) -> None:
    assert _id_list(ids) == json.dumps(list(ids))


def test_convert_is_quantity_arithmetic() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        unit, other = rng.choice(list(UNITS)), rng.choice(list(UNITS))
        amount = Decimal(rng.randint(0, 10**15)).scaleb(-rng.randint(0, 6))
        if UNITS[unit][0] is UNITS[other][0]:
            expected = amount * UNITS[unit][1] / UNITS[other][1]
            got = convert(amount, unit, other)
            assert got == expected and str(got) == str(expected)
            assert Quantity(amount, unit).to(other) == Quantity(expected, other)
        else:
            with pytest.raises(DimensionMismatch):
                convert(amount, unit, other)
    with pytest.raises(DimensionMismatch, match=r"cannot convert 100 kg \(mass\) to L \(volume\)"):
        Quantity(Decimal(100), "kg").to("L")
    with pytest.raises(UnitError):
        convert(Decimal(1), "kg", "lb")


def _grant(event_id: str, occurred: datetime, *, recorded: datetime | None = None, items: list[str] | None = None,
           destinations: list[str] | None = None) -> LicenseGranted:
    return LicenseGranted(
        event_id=event_id, occurred_at=occurred, recorded_at=recorded or occurred + timedelta(hours=1),
        reporter="AUTH", license_id="LIC-1", kind="individual", exporter="EXP",
        items=items or ["X", "Y", "Z"], destinations=destinations or ["KR", "JP", "CN"],
        end_users=["EU-1", "EU-2"], valid_from=occurred, valid_until=occurred + timedelta(days=400),
        ceiling={"amount": "100", "unit": "kg"},
    )


def _revoke(event_id: str, occurred: datetime) -> LicenseRevoked:
    return LicenseRevoked(event_id=event_id, occurred_at=occurred, recorded_at=occurred + timedelta(hours=1),
                          reporter="AUTH", license_id="LIC-1", reason="revoked")


def test_license_in_force_is_the_plain_rule_at_every_instant() -> None:
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    grants = [_grant("G1", t0), _grant("G2", t0 + timedelta(days=30), destinations=["KR"]),
              _grant("G3", t0 + timedelta(days=90), items=["X"])]
    revocations = [_revoke("R1", t0 + timedelta(days=10)), _revoke("R2", t0 + timedelta(days=60)),
                   _revoke("R3", t0 + timedelta(days=120))]
    book = LicenseBook.from_events([*reversed(grants), *revocations])
    assert book.get("LIC-1") == _in_force("LIC-1", grants, revocations, None)
    instants = [t0 + timedelta(days=day, hours=day % 24) for day in range(-5, 150)]
    for event in [*grants, *revocations]:  # exactly at a grant or a revocation, and just around it
        instants += [event.occurred_at - timedelta(microseconds=1), event.occurred_at,
                     event.occurred_at + timedelta(microseconds=1)]
    for day, at in enumerate(instants):
        assert book.get("LIC-1", at=at) == _in_force("LIC-1", grants, revocations, at), day
        assert _as_pair(book.get("LIC-1", at=at)) == plain_in_force(grants, revocations, at), day
    assert book.get("LIC-1", at=t0 + timedelta(days=12)).revoked_by == "R1"
    assert book.get("LIC-1", at=t0 + timedelta(days=45)).granted_by == "G2"
    assert book.get("LIC-1", at=t0 + timedelta(days=45)).revoked_by is None
    assert book.get("LIC-1", at=t0 - timedelta(days=1)).granted_by == "G1"


def plain_in_force(grants: list[LicenseGranted], revocations: list[LicenseRevoked],
                   at: datetime | None) -> tuple[str, str | None]:
    before = [g for g in grants if at is None or g.occurred_at <= at]
    grant = before[-1] if before else grants[0]
    revoked = next((r for r in revocations if (r.occurred_at, r.event_id) >= (grant.occurred_at, grant.event_id)
                    and (at is None or r.occurred_at <= at)), None)
    return grant.event_id, revoked.event_id if revoked else None


def _as_pair(license: object) -> tuple[str, str | None]:
    return license.granted_by, license.revoked_by  # type: ignore[attr-defined]


def test_one_version_each_picks_first_recorded_then_least_digest_in_any_order() -> None:
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    a = _grant("G1", t0, recorded=t0 + timedelta(hours=2), destinations=["KR"])
    b = _grant("G1", t0, recorded=t0 + timedelta(hours=2), destinations=["JP"])  # same instant: digest decides
    c = _grant("G1", t0, recorded=t0 + timedelta(hours=3), destinations=["CN"])  # later: loses
    d = _grant("G2", t0 + timedelta(days=1))
    least = min((a, b), key=content_digest)
    rng = random.Random(5)
    for _ in range(30):
        events = [a, b, c, d]
        rng.shuffle(events)
        chosen = _one_version_each(events)
        assert sorted(e.event_id for e in chosen) == ["G1", "G2"]
        assert next(e for e in chosen if e.event_id == "G1") is least
        # The order is that of first arrival of each event id, as before.
        assert [e.event_id for e in chosen] == list(dict.fromkeys(e.event_id for e in events))
