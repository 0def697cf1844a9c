"""Quantities are exact: units convert within a dimension, never across."""

from decimal import Decimal

import pytest

from ledger.quantity import (
    UNITS,
    Dimension,
    DimensionMismatch,
    Quantity,
    UnitError,
    canonical_decimal,
    unit_dimension,
)


def q(amount: str, unit: str) -> Quantity:
    return Quantity(Decimal(amount), unit)


@pytest.mark.parametrize(
    ("amount", "unit", "to", "expected"),
    [
        ("1", "kg", "g", "1000"),
        ("39650", "kg", "t", "39.65"),
        ("0.001", "t", "g", "1000"),
        ("1", "g", "t", "0.000001"),
        ("0.35", "t", "kg", "350"),
        ("1", "L", "mL", "1000"),
        ("2.5", "m3", "L", "2500"),
        ("1", "mL", "m3", "0.000001"),
        ("700", "L", "m3", "0.7"),
        ("42", "unit", "unit", "42"),
    ],
)
def test_conversion_within_a_dimension_is_exact(amount, unit, to, expected):
    converted = q(amount, unit).to(to)
    assert converted.unit == to
    # Exact equality with a Decimal, not approximate: no binary float anywhere.
    assert converted.amount == Decimal(expected)
    assert isinstance(converted.amount, Decimal)


def test_conversion_there_and_back_loses_nothing():
    # 0.1 + 0.2 kg is exactly 300 g and back: the classic float trap does not apply.
    total = q("0.1", "kg").amount + q("0.2", "kg").amount
    grams = Quantity(total, "kg").to("g")
    assert grams.amount == Decimal("300")
    assert grams.to("kg").amount == Decimal("0.3")


@pytest.mark.parametrize(
    ("unit", "to", "message"),
    [
        ("kg", "L", "cannot convert 100 kg (mass) to L (volume)"),
        ("L", "t", "cannot convert 100 L (volume) to t (mass)"),
        ("unit", "g", "cannot convert 100 unit (count) to g (mass)"),
        ("m3", "unit", "cannot convert 100 m3 (volume) to unit (count)"),
    ],
)
def test_conversion_across_dimensions_is_refused(unit, to, message):
    # 30 kg of a lot that left as 100 L cannot be accounted for without a
    # density nobody reported.
    with pytest.raises(DimensionMismatch) as caught:
        q("100", unit).to(to)
    assert str(caught.value) == message


def test_unknown_unit_is_refused_naming_the_unit_and_the_known_ones():
    with pytest.raises(UnitError) as caught:
        q("1", "lb")
    assert str(caught.value) == "unknown unit 'lb'; known units: g, kg, t, mL, L, m3, unit"
    with pytest.raises(UnitError) as caught:
        q("1", "kg").to("gallon")
    assert str(caught.value) == "unknown unit 'gallon'; known units: g, kg, t, mL, L, m3, unit"


def test_amount_must_be_a_decimal_not_a_float():
    with pytest.raises(TypeError) as caught:
        Quantity(0.1, "kg")  # type: ignore[arg-type]
    assert str(caught.value) == "amount must be a Decimal, got float"


def test_every_unit_has_a_dimension_and_an_exact_factor():
    assert {unit: unit_dimension(unit) for unit in UNITS} == {
        "g": Dimension.MASS, "kg": Dimension.MASS, "t": Dimension.MASS,
        "mL": Dimension.VOLUME, "L": Dimension.VOLUME, "m3": Dimension.VOLUME,
        "unit": Dimension.COUNT,
    }  # fmt: skip
    assert all(isinstance(factor, Decimal) for _, factor in UNITS.values())


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("100", "100"),
        ("100.00", "100"),
        ("1E+2", "100"),
        ("1e2", "100"),
        ("0.50", "0.5"),
        ("39.650", "39.65"),
        ("0.000001", "0.000001"),
        ("1E-6", "0.000001"),
        ("0", "0"),
        ("0.000", "0"),
        ("-0", "0"),
        ("0E+3", "0"),
        ("-30.10", "-30.1"),
        ("4050", "4050"),
        ("123456789012345", "123456789012345"),
    ],
)
def test_canonical_decimal_is_the_one_spelling_of_a_quantity(text, canonical):
    assert canonical_decimal(Decimal(text)) == canonical


def test_quantities_print_canonically():
    assert str(q("100.00", "kg")) == "100 kg"
    assert str(q("1E+3", "L")) == "1000 L"
