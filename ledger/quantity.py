"""Exact quantities with units.

Every quantity in the ledger is a ``decimal.Decimal`` with a unit.  Units
convert exactly within one dimension (mass, volume, count); converting across
dimensions is an error, because 30 kg of a lot that left as 100 L cannot be
accounted for without a density nobody reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

__all__ = [
    "Dimension",
    "UNITS",
    "Quantity",
    "UnitError",
    "DimensionMismatch",
    "canonical_decimal",
    "unit_dimension",
]


class Dimension(str, Enum):
    MASS = "mass"
    VOLUME = "volume"
    COUNT = "count"


# unit -> (dimension, size of one unit in the dimension's base unit).
# Base units: kg, L, unit.  Factors are exact decimals, so conversion is exact.
UNITS: dict[str, tuple[Dimension, Decimal]] = {
    "g": (Dimension.MASS, Decimal("0.001")),
    "kg": (Dimension.MASS, Decimal("1")),
    "t": (Dimension.MASS, Decimal("1000")),
    "mL": (Dimension.VOLUME, Decimal("0.001")),
    "L": (Dimension.VOLUME, Decimal("1")),
    "m3": (Dimension.VOLUME, Decimal("1000")),
    "unit": (Dimension.COUNT, Decimal("1")),
}


class UnitError(ValueError):
    """A unit the ledger does not know."""


class DimensionMismatch(ValueError):
    """Two quantities of different dimensions were combined."""


def unit_dimension(unit: str) -> Dimension:
    try:
        return UNITS[unit][0]
    except KeyError:
        known = ", ".join(UNITS)
        raise UnitError(f"unknown unit {unit!r}; known units: {known}") from None


def canonical_decimal(value: Decimal) -> str:
    """The one spelling of a decimal: no exponent, no trailing zeros.

    ``Decimal("100")``, ``Decimal("100.00")`` and ``Decimal("1E+2")`` are the
    same quantity and must hash, compare and print the same.
    """
    # Equal decimals hash and compare equal and have one spelling, so the
    # spelling is remembered by value (a fold spells the same amounts again
    # and again); NaN and non-decimals go the long way.
    if type(value) is not Decimal:
        return _spell(value)
    try:
        text = _SPELLED.get(value)
    except TypeError:  # a signalling NaN does not hash
        return _spell(value)
    if text is None:
        text = _spell(value)
        if value.is_finite():
            if len(_SPELLED) >= _SPELLED_MAX:
                _SPELLED.clear()
            _SPELLED[value] = text
    return text


def _spell(value: Decimal) -> str:
    text = str(value)
    if len(text) <= 28 and "E" not in text and "N" not in text:
        # Plain notation with at most 28 digits (normalize() cannot round
        # them), or an infinity: the spelling is this text without trailing
        # fraction zeros.  (A NaN goes the long way: a signalling one raises.)
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_SPELLED: dict[Decimal, str] = {}
_SPELLED_MAX = 1 << 14  # bounded: a few MB, and the recent spellings are the ones reused


@dataclass(frozen=True, slots=True)
class Quantity:
    amount: Decimal
    unit: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"amount must be a Decimal, got {type(self.amount).__name__}")
        unit_dimension(self.unit)

    @property
    def dimension(self) -> Dimension:
        return unit_dimension(self.unit)

    def to(self, unit: str) -> Quantity:
        return Quantity(convert(self.amount, self.unit, unit), unit)

    def __str__(self) -> str:
        return f"{canonical_decimal(self.amount)} {self.unit}"


def _known(unit: str) -> tuple[Dimension, Decimal]:
    unit_dimension(unit)
    return UNITS[unit]


def convert(amount: Decimal, unit: str, to_unit: str) -> Decimal:
    """``Quantity(amount, unit).to(to_unit).amount``, without building Quantities.

    The same arithmetic (``amount * factor_from / factor_to``), so the same
    Decimal.  Raises DimensionMismatch across dimensions, UnitError for an
    unknown unit.
    """
    try:
        factor_from, factor_to = _FACTORS[unit, to_unit]
    except KeyError:
        factor_from, factor_to = _factors(unit, to_unit, amount)
    return amount * factor_from / factor_to


def same_dimension(unit: str, other: str) -> bool:
    """Whether quantities in ``unit`` convert to ``other`` (UnitError if either is unknown)."""
    try:
        return _FACTORS[unit, other] is not None
    except KeyError:
        return unit_dimension(unit) is unit_dimension(other)


def _factors(unit: str, to_unit: str, amount: Decimal) -> tuple[Decimal, Decimal]:
    dim_from, factor_from = _known(unit)
    dim_to, factor_to = _known(to_unit)
    if dim_from is not dim_to:
        raise DimensionMismatch(
            f"cannot convert {canonical_decimal(amount)} {unit} ({dim_from.value}) to {to_unit} ({dim_to.value})"
        )
    return factor_from, factor_to


# (from, to) -> (factor_from, factor_to) for every pair within one dimension.
_FACTORS: dict[tuple[str, str], tuple[Decimal, Decimal]] = {
    (a, b): (UNITS[a][1], UNITS[b][1]) for a in UNITS for b in UNITS if UNITS[a][0] is UNITS[b][0]
}
