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
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


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
        dim_from, factor_from = UNITS[self.unit]
        dim_to, factor_to = _known(unit)
        if dim_from is not dim_to:
            raise DimensionMismatch(
                f"cannot convert {self} ({dim_from.value}) to {unit} ({dim_to.value})"
            )
        return Quantity(self.amount * factor_from / factor_to, unit)

    def __str__(self) -> str:
        return f"{canonical_decimal(self.amount)} {self.unit}"


def _known(unit: str) -> tuple[Dimension, Decimal]:
    unit_dimension(unit)
    return UNITS[unit]
