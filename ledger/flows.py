"""Cross-border reconciliation: what senders report shipped against what
receivers report received, per (origin country, destination country, item,
period).

Trade statistics disagree across borders ("Korea reports 4,050 t exported to
China, China reports 4,000 t imported") because each side counts on its own.
Here both sides count the same lots: a lot's ``shipped`` is what its shipper
reported, its ``received`` what its consignee reported, so the gap of a flow
is the sum of its lots' gaps and each gap names its lots.

A shipment belongs to the period of the day it shipped (UTC), and its receipt
to the same period, however late it arrived: the question is "of what left in
2019, how much arrived".  Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from ledger.quantity import UNITS, Dimension, Quantity, canonical_decimal

__all__ = ["Shipment", "Flow", "Period", "parse_period", "reconcile", "BASE_UNITS"]

BASE_UNITS = {Dimension.MASS: "kg", Dimension.VOLUME: "L", Dimension.COUNT: "unit"}
_PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2]))?$")


class PeriodError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar year ("2019") or month ("2019-07"), in UTC."""

    year: int
    month: int | None = None

    def __str__(self) -> str:
        return f"{self.year:04d}" if self.month is None else f"{self.year:04d}-{self.month:02d}"

    def contains(self, moment: datetime) -> bool:
        utc = moment.astimezone(timezone.utc)
        return utc.year == self.year and (self.month is None or utc.month == self.month)

    def of(self, moment: datetime) -> Period:
        """The period of the same granularity that contains ``moment``."""
        utc = moment.astimezone(timezone.utc)
        return Period(utc.year, None if self.month is None else utc.month)


YEARLY = Period(1970)  # granularity template: group by year


def parse_period(text: str) -> Period:
    match = _PERIOD.match(text.strip())
    if not match:
        raise PeriodError(f"period {text!r} is not a year (2019) or a month (2019-07)")
    year, month = match.groups()
    return Period(int(year), int(month) if month else None)


@dataclass(frozen=True, slots=True)
class Shipment:
    """One lot as the reconciliation counts it (quantities in ``unit``)."""

    trace_id: str
    lot_id: str
    origin: str  # how the lot opened: export | re_export | ship_back
    origin_country: str
    destination_country: str
    item_id: str
    unit: str
    shipped_at: datetime
    shipped: Decimal
    received: Decimal


@dataclass(frozen=True, slots=True)
class Flow:
    origin_country: str
    destination_country: str
    item_id: str
    period: str
    unit: str
    shipped: Decimal  # as the senders report it
    received: Decimal  # as the receivers report it
    lots: tuple[str, ...]  # every lot counted, "trace/lot"

    @property
    def gap(self) -> Decimal:
        return self.shipped - self.received

    @property
    def gap_share(self) -> Decimal | None:
        """The gap as a share of what was shipped (0.997 is 99.7 %)."""
        return None if self.shipped == 0 else self.gap / self.shipped

    def as_dict(self) -> dict[str, object]:
        share = self.gap_share
        return {
            "from": self.origin_country,
            "to": self.destination_country,
            "item_id": self.item_id,
            "period": self.period,
            "unit": self.unit,
            "shipped": canonical_decimal(self.shipped),
            "received": canonical_decimal(self.received),
            "gap": canonical_decimal(self.gap),
            "gap_percent": None if share is None else canonical_decimal(round(share * 100, 1)),
            "lots": list(self.lots),
        }


def reconcile(
    shipments: Iterable[Shipment],
    *,
    period: Period | None = None,
    origin_country: str | None = None,
    destination_country: str | None = None,
    item_id: str | None = None,
) -> list[Flow]:
    """Flows per (origin, destination, item, period, unit dimension).

    With ``period``, only shipments in it, grouped at its granularity;
    without, grouped by year.  Within a group every quantity is converted to
    the one unit its lots share, or to the dimension's base unit (kg, L,
    unit) when they differ.  Lots of different dimensions (100 unit and 40 t
    of one item) are different flows: no density was reported to add them.
    """
    template = period or YEARLY
    groups: dict[tuple[str, str, str, str, str], list[Shipment]] = {}
    for s in shipments:
        if period is not None and not period.contains(s.shipped_at):
            continue
        if origin_country is not None and s.origin_country != origin_country:
            continue
        if destination_country is not None and s.destination_country != destination_country:
            continue
        if item_id is not None and s.item_id != item_id:
            continue
        dimension = UNITS[s.unit][0].value
        key = (s.origin_country, s.destination_country, s.item_id, str(template.of(s.shipped_at)), dimension)
        groups.setdefault(key, []).append(s)
    flows = []
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda s: (s.shipped_at, s.trace_id, s.lot_id))
        units = {s.unit for s in members}
        unit = units.pop() if len(units) == 1 else BASE_UNITS[Dimension(key[4])]
        shipped = sum((Quantity(s.shipped, s.unit).to(unit).amount for s in members), Decimal(0))
        received = sum((Quantity(s.received, s.unit).to(unit).amount for s in members), Decimal(0))
        flows.append(
            Flow(key[0], key[1], key[2], key[3], unit, shipped, received,
                 tuple(f"{s.trace_id}/{s.lot_id}" for s in members))
        )
    return flows
