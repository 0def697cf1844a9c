"""A seeded, deterministic history of reports, and the alerts it must raise.

The generator plays every party.  For each trace it first decides the lot's
*fate* -- clean, or missing in one of the ways the rules detect -- and then
writes the reports that fate implies: an export under a license of some kind,
partial receipts, several consumptions, re-exports, ship-backs, stock
declarations, losses, retractions, identical re-sends and late reports.

Because the generator decided what goes missing, it knows the alerts the
ledger must show once every deadline has passed, without running any ledger
code: ``expected`` is derived here from the fate and the quantities chosen,
never from ``ledger.account`` or ``ledger.alerts``.  Every benchmark run
compares the two, so a fast wrong answer is caught.

The file is in the order the ledger learned the reports (``recorded_at``),
traces interleaved as they are in life.  A heap keeps only the traces still
open in memory, so writing 5M reports needs no more memory than 100k.

    python -m bench.generate --events 100000 --seed 1 --out bench/data/
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["generate", "write", "Expected", "FATES", "SIZES", "data_paths"]

SIZES = {"tiny": 4_000, "100k": 100_000, "1M": 1_000_000, "5M": 5_000_000}

T0 = datetime(2019, 1, 1, tzinfo=timezone.utc)
TRACES_PER_DAY = 40  # a fixed business rate: a bigger history is a longer one, not a busier one
BULK_VALIDITY_DAYS = 3 * 365  # bulk licenses up to 3 years, renewed per generation
INDIVIDUAL_VALIDITY_DAYS = 182  # individual licenses about 6 months
HEAP_MARGIN = timedelta(days=60)  # a trace writes nothing recorded earlier than this before its export
LATE_REPORT_SHARE = 0.05  # reports recorded 20-120 days after they occurred
RESEND_SHARE = 0.02  # reports sent twice, identically (a no-op for the ledger)

# Each fate and its share of traces.  "clean" traces raise no alert except the
# ship-back exemption notice every ship-back gets.
MISSING_SHARE = 0.015
FATES: tuple[str, ...] = (
    "unaccounted",            # received, partly used, the rest never explained ("30 of 100")
    "unaccounted_retracted",  # fully used, then a consumption report withdrawn
    "transit_overdue",        # shipped, never received
    "short_receipt",          # received less than shipped
    "return_unconfirmed",     # shipped back, (mostly) never seen arriving
    "over_accounting",        # more reported out than ever came in
    "premise_deviation",      # re-exported outside the origin license's premise
    "license_missing",        # exported citing no license
    "license_invalid",        # exported under an expired or revoked license
    "license_ceiling",        # exported beyond the license's quantity ceiling
    "conflicting_report",     # one event id sent twice with different content
)

COUNTRY_OFFSET_H = {"JP": 9, "KR": 9, "TW": 8, "SG": 8, "CN": 8, "MY": 8, "VN": 7, "TH": 7,
                    "IN": 5.5, "US": -5, "DE": 1, "NL": 1}
EXPORTERS = {"JP": 30, "US": 12, "DE": 10, "NL": 8}
CONSIGNEES = {"KR": 150, "TW": 100, "SG": 50}
DOWNSTREAM_CLEAN = {"VN": 30, "MY": 30, "TH": 20}  # inside every bulk license's destinations
DOWNSTREAM_OUTSIDE = {"CN": 30, "IN": 10}  # inside no license's destinations
ITEMS = (  # id, name, classification, lot unit, finer unit, whole units only
    ("HF-UHP", "hydrogen fluoride, ultra high purity", "AG 1C350.25", "kg", "g", False),
    ("FPI-FILM", "fluorinated polyimide", "Wassenaar 1C009", "kg", "g", False),
    ("EUV-PR", "EUV photoresist", "Wassenaar 3C006", "L", "mL", False),
    ("WF6", "tungsten hexafluoride", "AG 1C350.x", "kg", "g", False),
    ("NF3", "nitrogen trifluoride", "AG 1C350.y", "t", "kg", False),
    ("EUV-MASK", "EUV mask blank", "Wassenaar 3B001", "unit", None, True),
)
END_USES = ("wafer etching", "chamber cleaning", "lithography", "display panel coating",
            "CVD deposition", "quality control sampling")
MILLI = 1000  # quantities are kept as integers of 1/1000 of the lot's unit: exact, no floats


@dataclass
class Expected:
    """One alert the ledger must show when every deadline has passed."""

    kind: str
    lot_id: str
    party: str
    quantity: str | None  # canonical decimal in ``unit``; None for findings
    unit: str | None

    def key(self) -> tuple[str, str, str, str, str]:
        return (self.kind, self.lot_id, self.party, self.quantity or "", self.unit or "")


@dataclass
class Summary:
    events: int = 0
    traces: int = 0
    lots: int = 0
    licenses: int = 0
    fates: Counter[str] = field(default_factory=Counter)
    max_recorded: datetime = T0
    expected: list[Expected] = field(default_factory=list)

    @property
    def check_clock(self) -> datetime:
        """A time after every deadline (end-use 90 d, transit 30 d) of every report."""
        return (self.max_recorded + timedelta(days=365)).replace(microsecond=0)


def canonical(milli: int) -> str:
    text = format(Decimal(milli) / MILLI, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def iso(at: datetime, country: str) -> str:
    tz = timezone(timedelta(hours=COUNTRY_OFFSET_H[country]))
    return at.astimezone(tz).isoformat()


class World:
    """The parties, items and bulk licenses: the same for every size of a seed."""

    def __init__(self, rng: random.Random):
        def parties(counts: dict[str, int], role: str) -> list[dict[str, str]]:
            return [{"id": f"{c}-{role}-{i:03d}", "country": c, "name": f"{role.title()} {i} ({c})"}
                    for c, n in counts.items() for i in range(n)]

        self.exporters = parties(EXPORTERS, "EXP")
        self.consignees = parties(CONSIGNEES, "CNS")
        self.downstream_clean = parties(DOWNSTREAM_CLEAN, "DWN")
        self.downstream_outside = parties(DOWNSTREAM_OUTSIDE, "DWN")
        self.items = {e["id"]: rng.sample(ITEMS, rng.randint(2, 3)) for e in self.exporters}
        # special bulk licenses name their holder's regular customers as end users
        self.customers = {e["id"]: rng.sample(self.consignees, 5) for e in self.exporters}

    def party_country(self, party_id: str) -> str:
        return party_id[:2]


def bulk_license_id(kind: str, exporter: str, generation: int) -> str:
    short = {"general_bulk": "GB", "special_general_bulk": "SGB", "special_bulk": "SB"}[kind]
    return f"LIC-{short}-{exporter}-G{generation}"


class TraceWriter:
    """Writes one trace's reports and its expected alerts."""

    def __init__(self, gen: "Generator", n: int, start: datetime):
        self.g, self.rng, self.n = gen, gen.rng, n
        self.trace_id = f"TR-{n:07d}"
        self.events: list[dict[str, Any]] = []
        self.expected: list[Expected] = []
        self.seq = 0
        self.start = start
        self.licenses = 0
        self.lots = 0

    # -- reports ------------------------------------------------------------

    def report(self, event_type: str, at: datetime, reporter: str, lot_id: str | None,
               **body: Any) -> dict[str, Any]:
        self.seq += 1
        delay = timedelta(minutes=self.rng.randint(30, 48 * 60))
        if self.rng.random() < LATE_REPORT_SHARE:
            delay = timedelta(days=self.rng.randint(20, 120))
        event: dict[str, Any] = {"type": event_type, "event_id": f"{self.trace_id}-{self.seq:02d}"}
        country = self.g.world.party_country(reporter)
        event["occurred_at"] = iso(at, country)
        event["recorded_at"] = iso(at + delay, country)
        event["reporter"] = reporter
        if lot_id is not None:
            event["trace_id"] = self.trace_id
            event["lot_id"] = lot_id
        event.update(body)
        self.events.append({"_rec": at + delay, **event})
        if self.rng.random() < RESEND_SHARE:  # the same report again, identical: a no-op
            again = dict(event)
            again_at = at + delay + timedelta(hours=self.rng.randint(1, 72))
            again["recorded_at"] = iso(again_at, country)
            self.events.append({"_rec": again_at, **again})
        return event

    def amount(self, milli: int, lot_unit: str, finer: str | None = None) -> dict[str, str]:
        if finer is not None:  # e.g. 1.5 kg reported as 1500 g: the ledger converts exactly
            return {"amount": str(milli), "unit": finer}
        return {"amount": canonical(milli), "unit": lot_unit}

    def expect(self, kind: str, lot_id: str, party: str, milli: int | None, unit: str | None) -> None:
        self.expected.append(
            Expected(kind, lot_id, party, None if milli is None else canonical(milli), unit)
        )

    def split(self, total: int, parts: int, grain: int) -> list[int]:
        """``total`` in ``parts`` positive pieces, each a multiple of ``grain``."""
        units = total // grain
        parts = max(1, min(parts, units))
        cuts = sorted(self.rng.sample(range(1, units), parts - 1)) if parts > 1 else []
        edges = [0, *cuts, units]
        return [(b - a) * grain for a, b in zip(edges, edges[1:])]

    # -- a trace --------------------------------------------------------------

    def write(self, fate: str) -> None:
        rng, world = self.rng, self.g.world
        exporter = rng.choice(world.exporters)
        item_id, item_name, classification, unit, finer, whole = rng.choice(world.items[exporter["id"]])
        grain = MILLI if whole else 1
        quantity = rng.randint(20, 2000) * MILLI if whole else rng.randint(50_000, 5_000_000)
        if fate == "premise_deviation":
            kind = rng.choice(("individual", "general_bulk", "special_bulk"))
        elif fate in ("license_invalid", "license_ceiling"):
            kind = "individual"
        else:
            kind = rng.choices(("individual", "general_bulk", "special_general_bulk", "special_bulk"),
                               (30, 40, 15, 15))[0]
        consignee = rng.choice(world.customers[exporter["id"]] if kind == "special_bulk" else world.consignees)
        lot = f"L{self.n:07d}"
        shipped_at = self.start
        license_id = None if fate == "license_missing" else self.license(
            kind, fate, exporter, consignee, item_id, unit, quantity, shipped_at)
        body: dict[str, Any] = {
            "exporter": exporter, "consignee": consignee,
            "item": {"id": item_id, "name": item_name, "classification": classification},
            "quantity": self.amount(quantity, unit),
        }
        if rng.random() < 0.5:
            body["end_user"] = consignee
        if license_id is not None:
            body["license_id"] = license_id
        self.report("exported", shipped_at, exporter["id"], lot, **body)
        self.lots += 1
        if fate == "license_missing":
            self.expect("license_missing", lot, exporter["id"], quantity, unit)

        # Receipts, partial or whole, within the transit window.
        if fate == "transit_overdue":
            self.expect("transit_overdue", lot, consignee["id"], quantity, unit)
            return
        received = quantity
        if fate == "short_receipt":
            short = max(grain, (quantity * rng.randint(1, 30) // 100) // grain * grain)
            received = quantity - short
            self.expect("short_receipt", lot, consignee["id"], short, unit)
        at = shipped_at
        for part in self.split(received, rng.choice((1, 1, 2, 3)), grain):
            at += timedelta(days=rng.randint(2, 9), hours=rng.randint(0, 23))
            self.report("received", at, consignee["id"], lot,
                        quantity=self.amount(part, unit, None if whole or rng.random() < 0.8 else finer))
        self.dispose(lot, unit, finer, grain, received, at, holder=consignee, fate=fate,
                     exporter=exporter, license_kind=kind)

    def license(self, kind: str, fate: str, exporter: dict[str, str], consignee: dict[str, str],
                item_id: str, unit: str, quantity: int, shipped_at: datetime) -> str:
        if kind != "individual":
            return bulk_license_id(kind, exporter["id"], self.g.generation(shipped_at))
        license_id = f"LIC-IND-{self.n:07d}"
        granted = shipped_at - timedelta(days=self.rng.randint(3, 20))
        valid_from, valid_until = granted, granted + timedelta(days=INDIVIDUAL_VALIDITY_DAYS)
        variant = self.rng.choice(("expired", "revoked")) if fate == "license_invalid" else ""
        if variant == "expired":
            granted = shipped_at - timedelta(days=50)
            valid_from, valid_until = granted, shipped_at - timedelta(days=self.rng.randint(1, 10))
        ceiling = quantity
        if fate == "license_ceiling":
            grain = MILLI if unit == "unit" else 1
            over = max(grain, (quantity * self.rng.randint(5, 40) // 100) // grain * grain)
            ceiling = quantity - over
            self.expect("license_ceiling", f"L{self.n:07d}", exporter["id"], over, unit)
        authority = {"JP": "JP-AUTH-METI", "US": "US-AUTH-BIS", "DE": "DE-AUTH-BAFA",
                     "NL": "NL-AUTH-CDIU"}[exporter["country"]]
        body: dict[str, Any] = {
            "license_id": license_id, "kind": "individual", "exporter": exporter["id"],
            "items": [item_id], "destinations": [consignee["country"]], "end_users": [consignee["id"]],
            "valid_from": iso(valid_from, exporter["country"]),
            "valid_until": iso(valid_until, exporter["country"]),
        }
        if self.rng.random() < 0.7 or fate == "license_ceiling":
            body["ceiling"] = {"amount": canonical(ceiling), "unit": unit}
        self.report("license_granted", granted, authority, None, **body)
        if variant == "revoked":
            self.report("license_revoked", shipped_at - timedelta(days=self.rng.randint(1, 2)), authority,
                        None, license_id=license_id, reason="end user failed an on-site check")
        if fate == "license_invalid":
            self.expect("license_invalid", f"L{self.n:07d}", exporter["id"], quantity, unit)
        self.licenses += 1
        return license_id

    def dispose(self, lot: str, unit: str, finer: str | None, grain: int, received: int, at: datetime,
                *, holder: dict[str, str], fate: str, exporter: dict[str, str], license_kind: str) -> None:
        """The holder's reports after receipt: what leaves, how, and what is left unexplained."""
        rng = self.rng
        holder_id = holder["id"]
        on_hand = received
        t = at

        def later(lo: int = 2, hi: int = 20) -> datetime:
            nonlocal t
            t += timedelta(days=rng.randint(lo, hi), hours=rng.randint(0, 23))
            return t

        def piece(share_max: int) -> int:
            return max(grain, (on_hand * rng.randint(5, share_max) // 100) // grain * grain)

        # A mistaken report, retracted by its reporter: it must change nothing.
        if fate == "clean" and rng.random() < 0.1 and on_hand >= 2 * grain:
            wrong = self.report("consumed", later(), holder_id, lot,
                                quantity=self.amount(piece(60), unit), end_use=rng.choice(END_USES))
            self.report("retracted", later(1, 5), holder_id, lot,
                        retracted_event_id=wrong["event_id"], reason="reported against the wrong lot")

        # Re-export: clean only where the origin license's premise allows it.
        re_export = fate == "premise_deviation" or (
            fate == "clean" and license_kind in ("general_bulk", "special_general_bulk") and rng.random() < 0.3)
        if re_export and on_hand >= 2 * grain:
            amount = piece(50)
            outside = fate == "premise_deviation"
            to = rng.choice(self.g.world.downstream_outside if outside else self.g.world.downstream_clean)
            child = f"{lot}-R1"
            self.report("re_exported", later(), holder_id, lot, quantity=self.amount(amount, unit),
                        child_lot_id=child, consignee=to)
            self.lots += 1
            on_hand -= amount
            if outside:
                self.expect("premise_deviation", child, holder_id, amount, unit)
            self.child_lifecycle(child, unit, finer, grain, amount, t, to)

        # Ship-back to the exporter.
        ship_back = fate == "return_unconfirmed" or (fate == "clean" and rng.random() < 0.08)
        if ship_back and on_hand >= 2 * grain:
            amount = piece(50)
            child = f"{lot}-B1"
            self.report("returned", later(), holder_id, lot, quantity=self.amount(amount, unit),
                        child_lot_id=child, consignee=exporter, reason="defective")
            self.lots += 1
            on_hand -= amount
            self.expect("ship_back_exemption", child, holder_id, amount, unit)
            confirmed = amount
            if fate == "return_unconfirmed":
                confirmed = rng.choice((0, (amount * 3 // 1000) // grain * grain))
                self.expect("return_unconfirmed", child, exporter["id"], amount - confirmed, unit)
            if confirmed:
                back_at = t + timedelta(days=rng.randint(5, 25))
                self.report("received", back_at, exporter["id"], child, quantity=self.amount(confirmed, unit))
                self.report("lost", back_at + timedelta(days=rng.randint(1, 10)), exporter["id"], child,
                            quantity=self.amount(confirmed, unit), disposition="destroyed",
                            evidence="waste disposal manifest")

        # What the holder leaves unexplained, or reports too much of.
        leave = 0
        if fate == "unaccounted" and on_hand >= 2 * grain:
            leave = piece(40)
            self.expect("unaccounted", lot, holder_id, leave, unit)
        if fate == "clean" and rng.random() < 0.05 and on_hand >= 2 * grain:
            lost = piece(10)
            self.report("lost", later(), holder_id, lot, quantity=self.amount(lost, unit),
                        disposition="lost", evidence="police report of a stolen drum")
            on_hand -= lost
        use = on_hand - leave
        declare = 0
        if fate in ("clean", "unaccounted", "conflicting_report") and rng.random() < 0.4 and use >= 2 * grain:
            declare = max(grain, (use * rng.randint(10, 50) // 100) // grain * grain)
        consumptions = self.split(use - declare, rng.randint(1, 4), grain) if use - declare > 0 else []
        consumed_ids = []
        for part in consumptions:
            fine = None if finer is None or rng.random() < 0.8 else finer
            event = self.report("consumed", later(), holder_id, lot, quantity=self.amount(part, unit, fine),
                                end_use=rng.choice(END_USES))
            consumed_ids.append((event, part))
        if declare:
            self.report("stock_declared", later(), holder_id, lot, quantity=self.amount(declare, unit))
            if rng.random() < 0.5 and declare >= 2 * grain:
                # Declared stock used later: still balanced.
                self.report("consumed", later(), holder_id, lot,
                            quantity=self.amount(declare // 2 // grain * grain, unit), end_use=rng.choice(END_USES))
        if fate == "over_accounting":
            extra = max(grain, (received * rng.randint(1, 20) // 100) // grain * grain)
            self.report("consumed", later(), holder_id, lot, quantity=self.amount(extra, unit),
                        end_use=rng.choice(END_USES))
            self.expect("over_accounting", lot, holder_id, extra, unit)
        if fate == "unaccounted_retracted" and consumed_ids:
            event, part = rng.choice(consumed_ids)
            self.report("retracted", later(), holder_id, lot, retracted_event_id=event["event_id"],
                        reason="consumption was booked twice")
            self.expect("unaccounted", lot, holder_id, part, unit)
        if fate == "conflicting_report" and consumed_ids:
            event, _part = consumed_ids[0]
            again = {k: v for k, v in event.items()}
            again["end_use"] = event["end_use"] + " (amended)"
            resent_at = datetime.fromisoformat(event["recorded_at"]) + timedelta(days=rng.randint(1, 10))
            again["recorded_at"] = iso(resent_at, self.g.world.party_country(holder_id))
            self.events.append({"_rec": resent_at, **again})
            self.expect("conflicting_report", lot, holder_id, None, None)
        elif fate == "conflicting_report":
            raise AssertionError("a conflicting_report trace always has a consumption")  # pragma: no cover

    def child_lifecycle(self, child: str, unit: str, finer: str | None, grain: int, amount: int,
                        shipped_at: datetime, holder: dict[str, str]) -> None:
        """A re-exported lot at its new holder: received, used, the rest declared."""
        rng, t = self.rng, shipped_at
        for part in self.split(amount, rng.choice((1, 2)), grain):
            t += timedelta(days=rng.randint(3, 12))
            self.report("received", t, holder["id"], child, quantity=self.amount(part, unit))
        declare = 0
        if rng.random() < 0.5 and amount >= 2 * grain:
            declare = max(grain, (amount * rng.randint(10, 40) // 100) // grain * grain)
        for part in self.split(amount - declare, rng.randint(1, 2), grain):
            t += timedelta(days=rng.randint(3, 30))
            self.report("consumed", t, holder["id"], child, quantity=self.amount(part, unit),
                        end_use=rng.choice(END_USES))
        if declare:
            t += timedelta(days=rng.randint(3, 30))
            self.report("stock_declared", t, holder["id"], child, quantity=self.amount(declare, unit))


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.world = World(random.Random(seed * 7919 + 1))

    @staticmethod
    def generation(at: datetime) -> int:
        return (at - T0).days // BULK_VALIDITY_DAYS

    def bulk_licenses(self, generation: int) -> list[dict[str, Any]]:
        start = T0 + timedelta(days=generation * BULK_VALIDITY_DAYS)
        valid_from, valid_until = start - timedelta(days=30), start + timedelta(days=BULK_VALIDITY_DAYS)
        granted = valid_from - timedelta(days=1)
        out = []
        consignee_countries = sorted(CONSIGNEES)
        for exporter in self.world.exporters:
            c = exporter["country"]
            authority = {"JP": "JP-AUTH-METI", "US": "US-AUTH-BIS", "DE": "DE-AUTH-BAFA",
                         "NL": "NL-AUTH-CDIU"}[c]
            items = sorted(i[0] for i in self.world.items[exporter["id"]])
            for kind in ("general_bulk", "special_general_bulk", "special_bulk"):
                license_id = bulk_license_id(kind, exporter["id"], generation)
                event: dict[str, Any] = {
                    "type": "license_granted", "event_id": f"GRANT-{license_id}",
                    "occurred_at": iso(granted, c), "recorded_at": iso(granted + timedelta(hours=2), c),
                    "reporter": authority, "license_id": license_id, "kind": kind,
                    "exporter": exporter["id"], "items": items,
                    "destinations": consignee_countries + (sorted(DOWNSTREAM_CLEAN) if kind != "special_bulk" else []),
                    "valid_from": iso(valid_from, c), "valid_until": iso(valid_until, c),
                }
                if kind == "special_bulk":
                    event["end_users"] = sorted(p["id"] for p in self.world.customers[exporter["id"]])
                out.append({"_rec": granted + timedelta(hours=2), **event})
        return out

    def fate(self) -> str:
        roll = self.rng.random()
        for index, fate in enumerate(FATES):
            if roll < MISSING_SHARE * (index + 1):
                return fate
        return "clean"


def generate(events_target: int, seed: int, summary: Summary) -> Iterator[str]:
    """JSON Lines, in recorded order, until about ``events_target`` reports; fills ``summary``."""
    gen = Generator(seed)
    heap: list[tuple[datetime, str, int, str]] = []
    tie = 0
    step = timedelta(days=1) / TRACES_PER_DAY
    emitted_estimate = 0
    next_generation = 0
    n = 0

    def push(event: dict[str, Any]) -> None:
        nonlocal tie, emitted_estimate
        recorded = event.pop("_rec")
        tie += 1
        emitted_estimate += 1
        heapq.heappush(heap, (recorded, event["event_id"], tie, json.dumps(event, separators=(",", ":"))))

    def pop_until(bound: datetime | None) -> Iterator[str]:
        while heap and (bound is None or heap[0][0] < bound):
            recorded, _id, _tie, line = heapq.heappop(heap)
            summary.events += 1
            summary.max_recorded = max(summary.max_recorded, recorded)
            yield line

    while emitted_estimate < events_target:
        start = T0 + step * n + timedelta(seconds=gen.rng.randint(0, int(step.total_seconds()) - 1))
        while T0 + timedelta(days=next_generation * BULK_VALIDITY_DAYS - 40) <= start:
            for event in gen.bulk_licenses(next_generation):
                push(event)
                summary.licenses += 1
            next_generation += 1
        yield from pop_until(start - HEAP_MARGIN)
        fate = gen.fate()
        writer = TraceWriter(gen, n, start)
        writer.write(fate)
        for event in writer.events:
            push(event)
        summary.traces += 1
        summary.lots += writer.lots
        summary.licenses += writer.licenses
        summary.fates[fate] += 1
        summary.expected.extend(writer.expected)
        n += 1
    yield from pop_until(None)


def data_paths(out_dir: Path, size: str, seed: int) -> tuple[Path, Path]:
    stem = out_dir / f"history-{size}-seed{seed}"
    return stem.with_suffix(".jsonl"), stem.with_suffix(".expected.json")


def write(events_target: int, seed: int, jsonl: Path, expected_path: Path) -> Summary:
    summary = Summary()
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    with jsonl.open("w", encoding="utf-8") as out:
        for line in generate(events_target, seed, summary):
            out.write(line)
            out.write("\n")
    expected_path.write_text(json.dumps({
        "seed": seed,
        "events_target": events_target,
        "events": summary.events,
        "traces": summary.traces,
        "lots": summary.lots,
        "licenses": summary.licenses,
        "fates": dict(sorted(summary.fates.items())),
        "check_clock": summary.check_clock.isoformat(),
        "alerts": sorted(([e.kind, e.lot_id, e.party, e.quantity, e.unit] for e in summary.expected),
                         key=lambda a: [x or "" for x in a]),
    }, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="100k")
    parser.add_argument("--events", type=int, help="target number of reports (overrides --size)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/data"))
    args = parser.parse_args(argv)
    target = args.events or SIZES[args.size]
    label = args.size if args.events is None else str(args.events)
    jsonl, expected = data_paths(args.out, label, args.seed)
    summary = write(target, args.seed, jsonl, expected)
    print(f"{jsonl}: {summary.events} reports, {summary.traces} traces, {summary.lots} lots, "
          f"{summary.licenses} licenses, {len(summary.expected)} expected alerts", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
