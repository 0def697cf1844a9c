"""The account every lot must balance.

For every lot and its holder, as of a time T and with what the ledger knew at
K (``known_at``)::

    shipped  = received + in_transit
    received = consumed + re_exported + returned + lost + on_hand

A pure fold over one trace's reports.  The reports are put in one canonical
order first, so the same reports in any arrival order give the same account.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import ValidationError

from ledger.events import (
    Consumed,
    Corrected,
    ExemptionConfirmed,
    Exported,
    LotEvent,
    Lost,
    Received,
    ReExported,
    Retracted,
    Returned,
    StockDeclared,
)
from ledger.quantity import canonical_decimal, convert, same_dimension, unit_dimension

__all__ = ["Version", "LotAccount", "Finding", "TraceAccount", "Verdict", "build_account", "named_by_reporter",
           "APPLIED", "RETRACTED", "CORRECTED", "REFUSED", "CONFLICTING", "NOT_USED"]

ZERO = Decimal(0)

# What the account made of one report version (``Verdict.state``).
APPLIED = "applied"
RETRACTED = "retracted"  # its original reporter withdrew it
CORRECTED = "corrected"  # its original reporter replaced its quantity
REFUSED = "refused"  # a rule refused it; an invalid_report / unknown_lot finding says why
CONFLICTING = "conflicting"  # another version of the same report was recorded first
NOT_USED = "not_used"  # another trace recorded this report first (ledger/identity.py)
# The findings that refuse the report they cite (the others leave it in effect).
_REFUSING = ("invalid_report", "unknown_lot")


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a report as the ledger holds it (stamped, with its digest)."""

    event: LotEvent
    digest: str

    @property
    def event_id(self) -> str:
        return self.event.event_id

    @property
    def identity(self) -> tuple[str, str]:
        """(reporter, event id): what names one report.  Parties choose their
        own event ids, so one party's id never shadows another's."""
        return (self.event.reporter, self.event.event_id)

    @property
    def recorded_at(self) -> datetime:
        recorded_at = self.event.recorded_at
        if recorded_at is None:
            raise ValueError(f"event {self.event.event_id!r} was stored without recorded_at")
        return recorded_at


class Receipt(NamedTuple):
    """One receipt posted to a lot.  NamedTuples (not dataclasses) for these
    three: the fold makes one per report, and tuples order as the rules sort them."""

    occurred_at: datetime
    amount: Decimal  # in the lot's unit
    event_id: str


class Since(NamedTuple):
    """Since when a condition holds: the report that tipped it."""

    at: datetime
    event_id: str


class Confirmation(NamedTuple):
    """A report confirming a ship-back's return exemption; the premise rule
    decides whose confirmation counts."""

    reporter: str
    event_id: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A report the account could not use, or two reports that disagree."""

    kind: str  # "conflicting_report" | "invalid_report" | "unknown_lot" | "unauthorized_report"
    lot_id: str
    party: str
    at: datetime
    message: str
    event_ids: tuple[str, ...]
    # The reporter of the report cited, set only where two parties use its
    # event id in one trace (a report is named by reporter and event id), so
    # the two findings are two alerts.  Empty: the event id says which.
    by: str = ""


@dataclass(slots=True)
class LotAccount:
    """The balance of one lot at its holder.  Quantities are in ``unit``."""

    trace_id: str
    lot_id: str
    parent_lot_id: str | None
    origin: str  # "export" | "re_export" | "ship_back"
    opened_by: str
    item_id: str
    item_name: str | None
    classification: str
    unit: str
    shipper: str
    shipper_country: str
    holder: str
    holder_country: str
    end_user: str | None
    license_id: str | None
    shipped_at: datetime
    shipped: Decimal
    received: Decimal = ZERO
    consumed: Decimal = ZERO
    re_exported: Decimal = ZERO
    returned: Decimal = ZERO
    lost: Decimal = ZERO
    declared_on_hand: Decimal | None = None
    declared_at: datetime | None = None
    # What the latest declaration can explain: never more than the book
    # showed on hand at its date (received by then, less reported out).
    declared_explains: Decimal = ZERO
    # Outflows reported after the latest stock declaration: that stock has
    # since shrunk by this much.
    out_since_declared: Decimal = ZERO
    last_movement_at: datetime | None = None
    receipts: list[Receipt] = field(default_factory=list)
    outflow_event_ids: list[str] = field(default_factory=list)
    over_accounted_since: Since | None = None
    over_received_since: Since | None = None
    # Ship-backs: each report confirming the return exemption.
    exemption_confirmations: list[Confirmation] = field(default_factory=list)

    @property
    def in_transit(self) -> Decimal:
        return max(ZERO, self.shipped - self.received)

    @property
    def out(self) -> Decimal:
        return self.consumed + self.re_exported + self.returned + self.lost

    @property
    def on_hand(self) -> Decimal:
        return self.received - self.out

    @property
    def explained(self) -> Decimal:
        """What the holder has accounted for: outflows plus declared stock still there."""
        declared = ZERO
        if self.declared_on_hand is not None:
            declared = max(ZERO, self.declared_explains - self.out_since_declared)
        return self.out + declared

    @property
    def since(self) -> datetime:
        return self.last_movement_at or self.shipped_at


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the account made of a report: ``state`` (APPLIED, RETRACTED, ...)
    and, unless applied, why, in words an auditor reads."""

    state: str
    why: str = ""

    @property
    def text(self) -> str:
        return "in effect" if self.state == APPLIED else self.why


@dataclass(slots=True)
class TraceAccount:
    trace_id: str
    lots: dict[str, LotAccount]
    findings: list[Finding]
    # The reports not simply applied, by (reporter, event id) of the version
    # chosen: retracted, corrected or refused.  Every other one is APPLIED.
    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    # Versions not chosen, by (reporter, event id, digest): CONFLICTING or NOT_USED.
    set_aside: dict[tuple[str, str, str], Verdict] = field(default_factory=dict)

    def verdict(self, version: Version) -> Verdict:
        """What this account made of ``version`` (one of the versions it was built from)."""
        reporter, event_id = version.identity
        aside = self.set_aside.get((reporter, event_id, version.digest)) if self.set_aside else None
        return aside or self.verdicts.get((reporter, event_id)) or _APPLIED


_APPLIED = Verdict(APPLIED)


def _order(version: Version) -> tuple[datetime, int, str, str]:
    # At one instant (parties often report dates only, all at midnight),
    # movements come before a stock declaration: the declaration attests
    # what is left at the end of that instant, whatever the event ids.
    event = version.event
    return (event.occurred_at, isinstance(event, StockDeclared), event.event_id, event.reporter)


def build_account(
    trace_id: str,
    versions: Iterable[Version],
    *,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> TraceAccount:
    """Fold one trace's reports into lot accounts.

    ``as_of`` keeps reports that occurred at or before it ("where was it on
    date D"); ``known_at`` keeps reports the ledger had recorded by then
    ("what did the ledger know on date K").
    """
    findings: list[Finding] = []
    verdicts: dict[tuple[str, str], Verdict] = {}
    set_aside: dict[tuple[str, str, str], Verdict] = {}
    canonical = _choose_versions(versions, known_at, findings, set_aside)
    canonical.sort(key=_order)
    # Retractions and corrections fix the record, not the world: what the
    # ledger knows (known_at) decides them, whenever they occurred, so a
    # report withdrawn later is gone from every as-of date too, and the
    # as-of answer agrees with the stored steps.
    live = _apply_corrections(_apply_retractions(canonical, findings, verdicts), findings, verdicts)
    owners = None
    if as_of is not None:
        # Who owns each lot id is decided by everything known, whenever it
        # occurred: an earlier-dated report cannot take a lot over as of a
        # date before its rightful opening.
        owners = _lot_owners(trace_id, live)
        live = [e for e in live if e.occurred_at <= as_of]
        findings = [f for f in findings if f.at <= as_of]
    lots = _open_lots(trace_id, live, findings, owners)
    _post_movements(lots, live, findings)
    if findings:
        findings = named_by_reporter(canonical, findings)
    if len(findings) > 1:
        findings.sort(key=lambda f: (f.at, f.kind, f.lot_id, f.event_ids, f.by))
    for finding in findings:
        if finding.kind in _REFUSING:  # after the retractions and corrections: a refusal overrides them
            reporter = finding.by or finding.party  # a refusal is addressed to the report's reporter
            for event_id in finding.event_ids:
                verdicts[(reporter, event_id)] = Verdict(REFUSED, f"refused: {finding.message}")
    return TraceAccount(trace_id=trace_id, lots=lots, findings=findings, verdicts=verdicts, set_aside=set_aside)


def named_by_reporter(canonical: Iterable[Version], findings: list[Finding]) -> list[Finding]:
    """Findings citing an event id two parties use in this trace, with the
    reporter of the report each cites (``Finding.by``)."""
    reporters: dict[str, str] = {}
    shared: set[str] = set()
    for version in canonical:
        event = version.event
        first = reporters.setdefault(event.event_id, event.reporter)
        if first != event.reporter:
            shared.add(event.event_id)
    if not shared:
        return findings
    return [replace(f, by=f.by or f.party) if not f.by and shared.intersection(f.event_ids) else f
            for f in findings]


def _choose_versions(
    versions: Iterable[Version], known_at: datetime | None, findings: list[Finding],
    set_aside: dict[tuple[str, str, str], Verdict],
) -> list[Version]:
    """One version per report identity (reporter, event id): the first
    recorded wins, ties by digest.

    That choice depends only on the versions, never on arrival order, so the
    account is deterministic even when two parties send one event id with
    different content.  The loser is kept in history and raises an alert.
    """
    by_id: dict[tuple[str, str], Version] = {}  # the only version of a report, or the first of several
    more: dict[tuple[str, str], list[Version]] = {}  # (reporter, event id) -> every version, when several
    for version in versions:
        event = version.event
        recorded_at = event.recorded_at
        if recorded_at is None:
            version.recorded_at  # raises: a stored version is stamped
        if known_at is not None and recorded_at > known_at:
            continue
        key = (event.reporter, event.event_id)
        if key not in by_id:
            by_id[key] = version
        elif key in more:
            more[key].append(version)
        else:
            more[key] = [by_id[key], version]
    if not more:
        return list(by_id.values())
    chosen = []
    for key, only in by_id.items():
        if key not in more:
            chosen.append(only)
            continue
        event_id = key[1]
        candidates = more[key]
        candidates.sort(key=lambda v: (v.recorded_at, v.digest))
        winner = candidates[0]
        chosen.append(winner)
        # One finding per instant: versions recorded at the same instant are
        # one step of one alert (the store keys steps by alert id and due time).
        losers: dict[datetime, list[Version]] = {}
        for loser in candidates[1:]:
            losers.setdefault(loser.recorded_at, []).append(loser)
            set_aside[(*key, loser.digest)] = _CONFLICTING
        for at, same_instant in losers.items():
            loser = same_instant[0]
            findings.append(
                Finding(
                    kind="conflicting_report",
                    lot_id=winner.event.lot_id,
                    party=loser.event.reporter,
                    at=at,
                    message=(
                        f"event {event_id!r} was reported again with different content"
                        f"{differences(same_instant[0].event, winner.event)} "
                        f"(digest {', '.join(v.digest[:12] for v in same_instant)} vs {winner.digest[:12]}); "
                        f"the first recorded version is used"
                    ),
                    event_ids=(event_id,),
                )
            )
    return chosen


_CONFLICTING = Verdict(CONFLICTING, "conflicting version, not used")


DIFFERENCES_SHOWN_MAX = 3  # fields named in a conflict's message; the digests identify the rest
DIFFERENCE_TEXT_MAX_CHARS = 60  # a free-text value is cut to this in a conflict's message


def differences(later: Any, first: Any) -> str:
    """What a conflicting version says otherwise than the version used, as
    ``": quantity 75 kg vs 70 kg used"``; "" if only fields not shown differ.
    Read by a person deciding which party is right, so values, not digests."""
    a = later.model_dump(mode="json", exclude={"recorded_at"}, exclude_none=True)
    b = first.model_dump(mode="json", exclude={"recorded_at"}, exclude_none=True)
    changed = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    if not changed:
        return ""
    shown = [f"{k} {_shown(a.get(k))} vs {_shown(b.get(k))} used" for k in changed[:DIFFERENCES_SHOWN_MAX]]
    more = len(changed) - DIFFERENCES_SHOWN_MAX
    return ": " + ", ".join(shown) + (f" and {more} more field(s)" if more > 0 else "")


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, dict) and set(value) == {"amount", "unit"}:
        return f"{value['amount']} {value['unit']}"
    if isinstance(value, dict) and "id" in value:
        return str(value["id"])
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= DIFFERENCE_TEXT_MAX_CHARS else text[: DIFFERENCE_TEXT_MAX_CHARS - 3] + "..."


def _apply_retractions(effective: list[Version], findings: list[Finding],
                       verdicts: dict[tuple[str, str], Verdict]) -> list[LotEvent]:
    events = [v.event for v in effective]
    if not any(isinstance(e, Retracted) for e in events):
        return events
    by_id = {(e.reporter, e.event_id): e for e in events}
    others = {e.event_id: e for e in events}  # any reporter's, to say whose it is
    retracted: set[tuple[str, str]] = set()
    for version in effective:
        event = version.event
        if not isinstance(event, Retracted):
            continue
        # A reporter's event ids are its own: the retraction names one of them.
        target = by_id.get((event.reporter, event.retracted_event_id)) or others.get(event.retracted_event_id)
        problem = _amendment_problem(event, event.retracted_event_id, target, noun="retraction", verb="retract",
                                     unknown="", again="report the event again instead", kind=Retracted)
        if problem:
            findings.append(
                Finding("invalid_report", event.lot_id, event.reporter, event.occurred_at,
                        problem, (event.event_id,))
            )
            continue
        retracted.add((event.reporter, event.retracted_event_id))
        verdicts[(event.reporter, event.retracted_event_id)] = Verdict(RETRACTED, f"retracted by {event.event_id}")
    return [
        v.event
        for v in effective
        if (v.event.reporter, v.event_id) not in retracted and not isinstance(v.event, Retracted)
    ]


def _amendment_problem(event: Retracted | Corrected, target_id: str, target: LotEvent | None, *, noun: str,
                       verb: str, unknown: str, again: str, kind: type) -> str | None:
    """Why a retraction or correction of ``target_id`` is refused, or None:
    the rules both share (the report must be known, not itself of the same
    kind, and only its original reporter may amend it)."""
    if target is None:
        return (f"{noun} {event.event_id!r} names event {target_id!r}, which is not known{unknown} "
                f"in trace {event.trace_id!r}")
    if isinstance(target, kind):
        return f"{noun} {event.event_id!r} names another {noun}; {again}"
    if target.reporter != event.reporter:
        return (f"{noun} {event.event_id!r} by {event.reporter!r} refused: event {target_id!r} was "
                f"reported by {target.reporter!r}, and only the original reporter may {verb} it")
    return None


def _apply_corrections(live: list[LotEvent], findings: list[Finding],
                       verdicts: dict[tuple[str, str], Verdict]) -> list[LotEvent]:
    """Replace the quantity of each corrected report; drop the corrections.

    Only the original reporter may correct a report, only its quantity, and
    only within one unit dimension.  Corrections apply in canonical order, so
    of two corrections of one report the later one stands.  A retracted
    report cannot be corrected (report it again instead).
    """
    if not any(isinstance(e, Corrected) for e in live):
        return live
    by_id = {(e.reporter, e.event_id): e for e in live}
    others = {e.event_id: e for e in live}  # any reporter's, to say whose it is
    replaced: dict[tuple[str, str], LotEvent] = {}
    for event in live:
        if not isinstance(event, Corrected):
            continue
        target_id = event.corrected_event_id
        key = (event.reporter, target_id)
        target = replaced.get(key) or by_id.get(key) or others.get(target_id)
        problem = _amendment_problem(event, target_id, target, noun="correction", verb="correct",
                                     unknown=" (or was retracted)", again="correct the original report",
                                     kind=Corrected)
        new = None
        if problem is not None or target is None:
            pass  # refused by the rules a retraction shares
        elif getattr(target, "quantity", None) is None:
            problem = (f"correction {event.event_id!r} names {target.type} {target_id!r}, which has no "
                       f"quantity; retract it instead")
        else:
            old_unit, new_unit = target.quantity.unit, event.quantity.unit  # type: ignore[union-attr]
            if unit_dimension(old_unit) is not unit_dimension(new_unit):
                problem = (
                    f"correction {event.event_id!r} of event {target_id!r} changes the unit from "
                    f"{old_unit!r} ({unit_dimension(old_unit).value}) to {new_unit!r} "
                    f"({unit_dimension(new_unit).value}); a correction cannot change the dimension"
                )
            else:
                try:
                    new = type(target).model_validate(
                        {**target.model_dump(), "quantity": event.quantity.model_dump()}
                    )
                except ValidationError as error:
                    reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
                    problem = (
                        f"correction {event.event_id!r} of event {target_id!r} refused: quantity "
                        f"{event.quantity.quantity()} {reasons}"
                    )
        if problem or new is None:
            findings.append(
                Finding("invalid_report", event.lot_id, event.reporter, event.occurred_at,
                        problem or "correction refused", (event.event_id,))
            )
            continue
        replaced[key] = new
        # The amount as the correction spells it (its stored JSON), so the audit shows what was sent.
        amount = event.quantity.model_dump(mode="json")
        verdicts[key] = Verdict(CORRECTED, f"corrected by {event.event_id} to {amount['amount']} {amount['unit']}")
    return [replaced.get((e.reporter, e.event_id), e) for e in live if not isinstance(e, Corrected)]


def _open_lots(trace_id: str, live: list[LotEvent], findings: list[Finding],
               owners: dict[str, str] | None = None) -> dict[str, LotAccount]:
    """Open every lot: exports first, then child lots whose parent is open.

    A lot id belongs to the party whose valid opening report (an export, or
    a re-export or ship-back by the parent's holder) the ledger recorded
    first: recording times are the ledger's own, so no party can choose
    them.  Of that party's opening reports the first in canonical order
    opens the lot, and its others are refused as re-openings
    (``invalid_report``).  Another party's opening report is refused as an
    attempt to take the lot over (``unauthorized_report``, addressed to the
    lot's rightful holder), however early it is dated.  ``owners`` (lot id
    -> party) fixes the owners, for an as-of answer that decides them by
    everything known.
    """
    candidates: dict[str, list[LotEvent]] = {}
    posting = _POSTING
    for event in live:  # canonical order
        kind = posting.get(type(event)) or _posting(type(event))
        if kind is _OPENS:
            lot_id = event.lot_id
        elif kind is _RE_EXPORTED or kind is _RETURNED:
            lot_id = event.child_lot_id  # type: ignore[union-attr]
        else:
            continue
        candidates.setdefault(lot_id, []).append(event)

    lots: dict[str, LotAccount] = {}
    pending = dict(candidates)
    progress = True
    while pending and progress:  # child lots open once their parent is open
        progress = False
        for lot_id, events in sorted(pending.items(), key=lambda kv: (kv[1][0].occurred_at, kv[1][0].event_id)):
            # Decided once every candidate's parent is settled (open, or
            # refused, or never opened in this trace).
            if any(not isinstance(e, Exported) and e.lot_id not in lots and e.lot_id in pending for e in events):
                continue
            del pending[lot_id]
            progress = True
            valid = []
            for event in events:
                if not isinstance(event, Exported):
                    parent = lots.get(event.lot_id)
                    if parent is None or _check_reporter(parent, event) or _check_dimension(parent, event):
                        # Refused as a movement of the parent (a finding is
                        # raised there), so it opens nothing either.
                        continue
                valid.append(event)
            if valid:
                _open_one(trace_id, lot_id, valid, lots, findings, owners)
    return lots


def _open_one(trace_id: str, lot_id: str, valid: list[LotEvent], lots: dict[str, LotAccount],
              findings: list[Finding], owners: dict[str, str] | None) -> None:
    owner = owners.get(lot_id) if owners is not None else None
    if owner is None:
        owner = min(valid, key=_recorded_order).reporter
    opener = next((e for e in valid if e.reporter == owner), None)
    if opener is not None:
        if isinstance(opener, Exported):
            lots[lot_id] = _export_lot(trace_id, opener)
        else:
            lots[lot_id] = _child_lot(trace_id, lots[opener.lot_id], opener)  # type: ignore[arg-type]
    for event in valid:
        if event is opener:
            continue
        if event.reporter == owner and opener is not None:
            findings.append(
                Finding("invalid_report", lot_id, event.reporter, event.occurred_at,
                        f"event {event.event_id!r} opens lot {lot_id!r}, already opened by "
                        f"{opener.event_id!r}", (event.event_id,))
            )
            continue
        holder = lots[lot_id].holder if opener is not None else owner
        at = max(event.occurred_at, opener.occurred_at) if opener is not None else event.occurred_at
        opened = f" (event {opener.event_id!r})" if opener is not None else ""
        findings.append(
            Finding("unauthorized_report", lot_id, holder, at,
                    f"{event.type} {event.event_id!r} by {event.reporter!r} would open lot {lot_id!r}, "
                    f"which {owner!r} opened{opened}, recorded first: only {owner!r} may report the "
                    f"lot's shipment, so this report is refused, however early it is dated; "
                    f"{holder!r} holds the lot", (event.event_id,), by=event.reporter)
        )


def _recorded_order(event: LotEvent) -> tuple[Any, ...]:
    return (event.recorded_at, event.occurred_at, event.event_id, event.reporter)


def _lot_owners(trace_id: str, live: list[LotEvent]) -> dict[str, str]:
    """Lot id -> the party that owns it, by everything in ``live``."""
    return {lot_id: lot.shipper for lot_id, lot in _open_lots(trace_id, live, []).items()}


def _export_lot(trace_id: str, event: Exported) -> LotAccount:
    return LotAccount(
        trace_id=trace_id,
        lot_id=event.lot_id,
        parent_lot_id=None,
        origin="export",
        opened_by=event.event_id,
        item_id=event.item.id,
        item_name=event.item.name,
        classification=event.item.classification,
        unit=event.quantity.unit,
        shipper=event.exporter.id,
        shipper_country=event.exporter.country,
        holder=event.consignee.id,
        holder_country=event.consignee.country,
        end_user=event.end_user.id if event.end_user else None,
        license_id=event.license_id,
        shipped_at=event.occurred_at,
        shipped=event.quantity.amount,
    )


def _child_lot(trace_id: str, parent: LotAccount, event: ReExported | Returned) -> LotAccount:
    end_user = event.end_user.id if isinstance(event, ReExported) and event.end_user else None
    license_id = event.license_id
    return LotAccount(
        trace_id=trace_id,
        lot_id=event.child_lot_id,
        parent_lot_id=parent.lot_id,
        origin="re_export" if isinstance(event, ReExported) else "ship_back",
        opened_by=event.event_id,
        item_id=parent.item_id,
        item_name=parent.item_name,
        classification=parent.classification,
        unit=event.quantity.unit,
        shipper=event.reporter,
        shipper_country=parent.holder_country,
        holder=event.consignee.id,
        holder_country=event.consignee.country,
        end_user=end_user,
        license_id=license_id,
        shipped_at=event.occurred_at,
        shipped=event.quantity.amount,
    )


def _post_movements(lots: dict[str, LotAccount], live: list[LotEvent], findings: list[Finding]) -> None:
    posting = _POSTING
    for event in live:
        kind = posting.get(type(event))
        if kind is None:
            kind = _posting(type(event))
        if kind is _OPENS:
            continue
        lot = lots.get(event.lot_id)
        if kind is _CONFIRMS and lot is not None:
            # Not a movement: the premise rule decides whose confirmation counts.
            lot.exemption_confirmations.append(Confirmation(event.reporter, event.event_id))
            continue
        if lot is None:
            findings.append(
                Finding("unknown_lot", event.lot_id, event.reporter, event.occurred_at,
                        f"{event.type} {event.event_id!r} is about lot {event.lot_id!r}, "
                        f"which no known export or re-export opened", (event.event_id,))
            )
            continue
        quantity = event.quantity  # type: ignore[union-attr]
        if event.reporter != lot.holder or not same_dimension(quantity.unit, lot.unit):
            problem = _check_reporter(lot, event) or _check_dimension(lot, event)
            findings.append(
                Finding("invalid_report", lot.lot_id, event.reporter, event.occurred_at,
                        problem or "", (event.event_id,))
            )
            continue
        if kind is _RE_EXPORTED or kind is _RETURNED:
            child = lots.get(event.child_lot_id)  # type: ignore[union-attr]
            if child is None or child.opened_by != event.event_id:
                # Refused as the opener of its child lot (a finding says why),
                # so it moves nothing: quantity never leaves a lot for nowhere.
                continue
        amount = convert(quantity.amount, quantity.unit, lot.unit)
        occurred_at = event.occurred_at
        if kind is _RECEIVED:
            lot.received += amount
            lot.receipts.append(Receipt(occurred_at, amount, event.event_id))
        elif kind is _DECLARED:
            on_hand = max(ZERO, lot.on_hand)
            if amount > on_hand:
                # A declaration explains at most what the book shows on hand at
                # its date; stock declared beyond that is not evidence of anything.
                findings.append(
                    Finding("over_declared", lot.lot_id, event.reporter, occurred_at,
                            f"stock_declared {event.event_id!r} attests {canonical_decimal(amount)} {lot.unit} "
                            f"on hand in lot {lot.lot_id!r} on {occurred_at.isoformat()}, but only "
                            f"{canonical_decimal(on_hand)} {lot.unit} had been received and not "
                            f"reported out by then", (event.event_id,))
                )
            lot.declared_on_hand = amount
            lot.declared_explains = min(amount, on_hand)
            lot.declared_at = occurred_at
            lot.out_since_declared = ZERO
        else:
            if kind is _CONSUMED:
                lot.consumed += amount
            elif kind is _RE_EXPORTED:
                lot.re_exported += amount
            elif kind is _RETURNED:
                lot.returned += amount
            elif kind is _LOST:
                lot.lost += amount
            lot.out_since_declared += amount
            lot.outflow_event_ids.append(event.event_id)
        lot.last_movement_at = occurred_at
        # Over-accounting is judged after every movement, so the alert can say
        # since when, and stops when a later receipt covers it.
        received = lot.received
        if lot.consumed + lot.re_exported + lot.returned + lot.lost > received:  # lot.out
            if lot.over_accounted_since is None:
                lot.over_accounted_since = Since(occurred_at, event.event_id)
        else:
            lot.over_accounted_since = None
        if received > lot.shipped:
            if lot.over_received_since is None:
                lot.over_received_since = Since(occurred_at, event.event_id)
        else:
            lot.over_received_since = None


# How a report posts, by its class (decided by isinstance once per class).
_OPENS, _RECEIVED, _DECLARED, _CONSUMED, _RE_EXPORTED, _RETURNED, _LOST, _CONFIRMS, _OTHER = (
    "opens", "received", "declared", "consumed", "re_exported", "returned", "lost", "confirms", "other")
_POSTING: dict[type, str] = {}


def _posting(cls: type) -> str:
    for base, kind in ((Exported, _OPENS), (Received, _RECEIVED), (StockDeclared, _DECLARED),
                       (Consumed, _CONSUMED), (ReExported, _RE_EXPORTED), (Returned, _RETURNED), (Lost, _LOST),
                      (ExemptionConfirmed, _CONFIRMS)):
        if issubclass(cls, base):
            break
    else:
        kind = _OTHER
    _POSTING[cls] = kind
    return kind


def _check_reporter(lot: LotAccount, event: LotEvent) -> str | None:
    if event.reporter != lot.holder:
        return (
            f"{event.type} {event.event_id!r} reported by {event.reporter!r}, "
            f"but lot {lot.lot_id!r} is held by {lot.holder!r}; only the holder reports its movements"
        )
    return None


def _check_dimension(lot: LotAccount, event: LotEvent) -> str | None:
    quantity = event.quantity  # type: ignore[union-attr]
    if not same_dimension(quantity.unit, lot.unit):
        return (
            f"{event.type} {event.event_id!r} reports {quantity.unit!r} "
            f"({unit_dimension(quantity.unit).value}) for lot {lot.lot_id!r} kept in "
            f"{lot.unit!r} ({unit_dimension(lot.unit).value}); a lot cannot mix dimensions"
        )
    return None
