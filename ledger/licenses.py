"""License premises: which exports and re-exports a license covers.

Pure rules, no I/O.  A ``LicenseBook`` is folded from ``license_granted`` and
``license_revoked`` reports; ``premise_steps`` checks one trace's lots against
it and ``ceiling_steps`` checks the cumulative use of one license across every
trace that cites it.  Both return alert steps like ``ledger.alerts``.

The rules, in the words of a compliance officer:

- an export must cite a license (``license_missing``) the ledger knows
  (``license_unknown``), valid on the day it ships and not revoked by then
  (``license_invalid``: the window is ``valid_from <= shipped < valid_until``),
  granted to the exporter, for the item, the destination country and the end
  user (``premise_deviation``);
- a re-export that cites its own (transit-country) license is checked the
  same way against that license;
- whatever the transit country licensed, every re-export must stay inside
  the premise of the license the material left its origin under: the
  destination country and the end user must be ones that license permits
  (``premise_deviation``);
- the exports citing a license may not exceed its quantity ceiling, summed
  in shipment order (``license_ceiling``; exactly reaching it is allowed);
- a ship-back moves goods across a border without a license; many regimes
  exempt returns, so it is flagged for confirmation (``ship_back_exemption``);
- two versions of one license report (one event id, different content: a
  grant re-sent with another ceiling or validity) are resolved as for lot
  reports, the first recorded wins, and raise a ``conflicting_report`` on the
  license (``license_conflict_steps``), naming the version used and the one
  not used;
- only the licensing authority of a country (named in the policy) grants,
  amends and revokes that country's licenses; a license is issued by the
  country whose authority's grant of it was recorded first, and covers
  shipments leaving that country.  Any other license report is refused
  (``authorized``) and raises ``unauthorized_report`` on the license
  (``license_report_steps``);
- a ship-back that cites the license its material left under, or whose
  return exemption the licensing authority of the country it leaves
  confirmed (``exemption_confirmed``), raises no ``ship_back_exemption``.

The end user of a lot is the party the report names as end user, or the
consignee when it names none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import NamedTuple

from ledger.account import LotAccount, TraceAccount, differences
from ledger.alerts import PREMISE_KINDS, Alert, alert_id
from ledger.events import LicenseGranted, LicenseRevoked, content_digest
from ledger.quantity import DimensionMismatch, Quantity, canonical_decimal, unit_dimension

__all__ = [
    "License",
    "LicenseBook",
    "LicenseUse",
    "PREMISE_KINDS",
    "premise_steps",
    "ceiling_steps",
    "ceiling_trace_id",
    "license_conflict_steps",
    "license_report_steps",
    "authorized",
    "uses_license",
]


# Ceiling alerts belong to a license, not to one trace: the projection keeps
# them under this pseudo trace id, recomputed whenever a lot citing the
# license changes.
CEILING_TRACE_PREFIX = "license:"

# A re-export chain deeper than this is refused as a premise check (cycle guard).
LINEAGE_DEPTH_MAX = 1000


def ceiling_trace_id(license_id: str) -> str:
    return CEILING_TRACE_PREFIX + license_id


@dataclass(frozen=True, slots=True)
class License:
    license_id: str
    kind: str
    exporter: str
    items: frozenset[str]
    destinations: frozenset[str]
    end_users: frozenset[str]  # empty: the license names none
    ceiling: Quantity | None
    valid_from: datetime
    valid_until: datetime
    granted_by: str  # event id of the grant in force
    granted_at: datetime | None = None  # when that grant occurred
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    # The country whose licensing authority issued it (None: the policy names no authorities).
    issuing_country: str | None = None

    def describe_premise(self) -> str:
        text = f"destinations {', '.join(sorted(self.destinations))}"
        if self.end_users:
            text += f" and end users {', '.join(sorted(self.end_users))}"
        return text + " only"


@dataclass(frozen=True, slots=True)
class LicenseUse:
    """One shipment citing a license, as the ceiling rule counts it."""

    trace_id: str
    lot_id: str
    event_id: str
    shipped_at: datetime
    amount: Decimal
    unit: str
    license_id: str = ""  # the license it cites


class LicenseBook:
    """The licenses known, by id.  Deterministic in any arrival order.

    When one license id was granted more than once (an amendment, a
    re-grant), each shipment is judged by the grant in force when it left
    (``get(id, at=shipped_at)``): the last grant that occurred by then.  A
    revocation counts from when it occurred until a later grant.  ``get(id)``
    without ``at`` gives the latest grant (the ceiling uses its amount).
    """

    def __init__(self, licenses: dict[str, License],
                 history: dict[str, tuple[list[LicenseGranted], list[LicenseRevoked]]] | None = None,
                 *, authorities: Mapping[str, str] | None = None, issuing: Mapping[str, str] | None = None):
        self._licenses = dict(licenses)
        self._history = dict(history or {})
        # country -> its licensing authority's party id (Policy.licensing_authorities)
        self.authorities: dict[str, str] = dict(authorities or {})
        self._issuing = dict(issuing or {})
        # (license id, grant index, revocation index or -1) -> the License they
        # make: most shipments citing a license are judged by one grant.
        self._made: dict[tuple[str, int, int], License] = {}

    @classmethod
    def from_events(
        cls,
        events: Iterable[LicenseGranted | LicenseRevoked],
        *,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        authorities: Mapping[str, str] | None = None,
    ) -> LicenseBook:
        """The licenses the reports make.  With ``authorities`` (country ->
        its licensing authority), only the reports ``authorized`` takes."""
        grants: dict[str, list[LicenseGranted]] = {}
        revocations: dict[str, list[LicenseRevoked]] = {}
        known = [e for e in _one_version_each(events)
                 if known_at is None or e.recorded_at is None or e.recorded_at <= known_at]
        # Who may say it is decided by everything known, whenever it occurred.
        issuing = _issuing_countries(known, authorities)
        accepted, _refused = authorized(known, authorities, issuing=issuing)
        for event in accepted:
            if as_of is not None and event.occurred_at > as_of:
                continue
            if isinstance(event, LicenseGranted):
                grants.setdefault(event.license_id, []).append(event)
            elif isinstance(event, LicenseRevoked):
                revocations.setdefault(event.license_id, []).append(event)
        order = lambda e: (e.occurred_at, e.event_id)  # noqa: E731
        history = {
            license_id: (sorted(granted, key=order), sorted(revocations.get(license_id, []), key=order))
            for license_id, granted in grants.items()
        }
        book = cls({}, history, authorities=authorities, issuing=issuing)
        book._licenses = {license_id: book._in_force(license_id, *h, None) for license_id, h in history.items()}
        return book

    def get(self, license_id: str, *, at: datetime | None = None) -> License | None:
        """The license as the latest grant says, or as in force ``at`` a shipment:
        the last grant that occurred by then (an amendment applies from when it
        is granted, not to what shipped before), revoked only by a revocation
        that came after that grant and by then."""
        if at is None or license_id not in self._history:
            return self._licenses.get(license_id)
        return self._in_force(license_id, *self._history[license_id], at)

    def _in_force(self, license_id: str, grants: list[LicenseGranted], revocations: list[LicenseRevoked],
                  at: datetime | None) -> License:
        """``_in_force(...)``, each distinct License made once."""
        grant_index, revocation_index = _in_force_indexes(grants, revocations, at)
        key = (license_id, grant_index, revocation_index)
        license = self._made.get(key)
        if license is None:
            revoked = revocations[revocation_index] if revocation_index >= 0 else None
            license = self._made[key] = _license(license_id, grants[grant_index], revoked,
                                                 self._issuing.get(license_id))
        return license

    def __contains__(self, license_id: str) -> bool:
        return license_id in self._licenses

    def __len__(self) -> int:
        return len(self._licenses)

    def ids(self) -> list[str]:
        return sorted(self._licenses)


# -- per-trace rules --------------------------------------------------------------


def premise_steps(account: TraceAccount, book: LicenseBook) -> list[Alert]:
    """Premise alerts of one trace's lots.  Each is due when the lot shipped."""
    steps: list[Alert] = []
    for lot_id in sorted(account.lots):
        lot = account.lots[lot_id]
        if lot.origin == "ship_back":
            steps.extend(_ship_back_steps(lot, account, book))
            continue
        if lot.origin == "export" and lot.license_id is None:
            steps.append(_missing_step(lot))
        elif lot.license_id is not None:
            steps.extend(_own_license_steps(lot, book.get(lot.license_id, at=lot.shipped_at)))
        if lot.origin == "re_export":
            step = _origin_premise_step(lot, account, book)
            if step is not None:
                steps.append(step)
    return steps


def _what(lot: LotAccount) -> str:
    verb = "export" if lot.origin == "export" else "re-export"
    return (
        f"{verb} of {_q(lot.shipped, lot.unit)} {lot.item_id} (lot {lot.lot_id}) by {lot.shipper} "
        f"({lot.shipper_country}) to {lot.holder} ({lot.holder_country}) on {lot.shipped_at.astimezone(timezone.utc).date().isoformat()} (UTC)"
    )


def _end_user(lot: LotAccount) -> str:
    return lot.end_user or lot.holder


def _step(kind: str, lot: LotAccount, subject: str, message: str, event_ids: tuple[str, ...],
          *, party: str | None = None) -> Alert:
    return Alert(
        alert_id=alert_id(kind, lot.trace_id, lot.lot_id, subject),
        kind=kind,
        trace_id=lot.trace_id,
        lot_id=lot.lot_id,
        party=party or lot.shipper,
        due_at=lot.shipped_at,
        quantity=lot.shipped,
        unit=lot.unit,
        message=message,
        event_ids=event_ids,
    )


def _missing_step(lot: LotAccount) -> Alert:
    return _step("license_missing", lot, "", f"{_what(lot)} cites no export license", (lot.opened_by,))


def _own_license_steps(lot: LotAccount, license: License | None) -> list[Alert]:
    assert lot.license_id is not None
    if license is None:
        return [
            _step("license_unknown", lot, lot.license_id,
                  f"{_what(lot)} cites license {lot.license_id}, which the ledger does not know "
                  f"(no license_granted report for it)", (lot.opened_by,))
        ]
    steps = []
    cites = (lot.opened_by, license.granted_by)
    invalid = None
    if license.revoked_at is not None and license.revoked_at <= lot.shipped_at:
        invalid = f"was revoked on {license.revoked_at.isoformat()}"
        cites = (*cites, license.revoked_by or "")
    elif license.granted_at is not None and lot.shipped_at < license.granted_at:
        invalid = (f"was granted only on {license.granted_at.isoformat()}, after the shipment "
                   f"(a validity window starting earlier does not license it retroactively)")
    elif lot.shipped_at < license.valid_from:
        invalid = f"is valid only from {license.valid_from.isoformat()}"
    elif lot.shipped_at >= license.valid_until:
        invalid = f"expired on {license.valid_until.isoformat()}"
    if invalid:
        steps.append(
            _step("license_invalid", lot, license.license_id,
                  f"{_what(lot)} cites license {license.license_id}, which {invalid}", cites)
        )
    reasons = []
    if license.issuing_country is not None and license.issuing_country != lot.shipper_country:
        reasons.append(f"it was issued by {license.issuing_country}, and the shipment leaves {lot.shipper_country}")
    if license.exporter != lot.shipper:
        reasons.append(f"it was granted to {license.exporter}, not {lot.shipper}")
    if lot.item_id not in license.items:
        reasons.append(f"it does not cover item {lot.item_id} (covers {', '.join(sorted(license.items))})")
    if lot.holder_country not in license.destinations:
        reasons.append(f"destination {lot.holder_country} is not permitted "
                       f"({', '.join(sorted(license.destinations))})")
    if license.end_users and _end_user(lot) not in license.end_users:
        reasons.append(f"end user {_end_user(lot)} is not permitted ({', '.join(sorted(license.end_users))})")
    if license.ceiling is not None and license.ceiling.dimension is not unit_dimension(lot.unit):
        reasons.append(f"its ceiling in {license.ceiling.unit} cannot count a lot kept in {lot.unit}")
    if reasons:
        steps.append(
            _step("premise_deviation", lot, "own:" + license.license_id,
                  f"{_what(lot)} is outside license {license.license_id}: " + "; ".join(reasons),
                  (lot.opened_by, license.granted_by))
        )
    return steps


def _origin_lot(lot: LotAccount, account: TraceAccount) -> tuple[LotAccount, list[LotAccount]] | None:
    """The export lot this re-export's material left its origin under, and the
    re-export chain from it; None when the chain passes a ship-back (the
    material went home) or breaks."""
    chain = [lot]
    current = lot
    for _ in range(LINEAGE_DEPTH_MAX):
        if current.parent_lot_id is None:
            return None
        parent = account.lots.get(current.parent_lot_id)
        if parent is None or parent.origin == "ship_back":
            return None
        if parent.origin == "export":
            return parent, chain
        chain.append(parent)
        current = parent
    return None


def _origin_premise_step(lot: LotAccount, account: TraceAccount, book: LicenseBook) -> Alert | None:
    found = _origin_lot(lot, account)
    if found is None:
        return None
    origin, chain = found
    if origin.license_id is None:
        return None  # the export itself is alerted as license_missing
    license = book.get(origin.license_id, at=origin.shipped_at)
    if license is None:
        return None  # the export itself is alerted as license_unknown
    reasons = []
    if lot.holder_country not in license.destinations:
        reasons.append(f"destination {lot.holder_country}")
    if license.end_users and _end_user(lot) not in license.end_users:
        reasons.append(f"end user {_end_user(lot)}")
    if not reasons:
        return None
    transit = ""
    if lot.license_id is not None:
        transit = f"; the transit country's license {lot.license_id} does not change that"
    cites = (origin.opened_by, *(c.opened_by for c in reversed(chain)), license.granted_by)
    return _step(
        "premise_deviation", lot, "origin:" + license.license_id,
        f"{_what(lot)}: {' and '.join(reasons)} outside the premise of license {license.license_id}, "
        f"under which lot {origin.lot_id} left {origin.shipper_country}; it permits "
        f"{license.describe_premise()}{transit}",
        cites, party=lot.shipper,
    )


def _ship_back_steps(lot: LotAccount, account: TraceAccount, book: LicenseBook) -> list[Alert]:
    """A ship-back needs its exemption confirmed, unless it cites the license
    its material left under.  The licensing authority of the country it
    leaves confirms it (``exemption_confirmed``); anyone else's confirmation
    is refused (``unauthorized_report``, addressed to the shipper)."""
    steps: list[Alert] = []
    authority = book.authorities.get(lot.shipper_country)
    confirmed_by = None
    for reporter, event_id in lot.exemption_confirmations:
        if authority is not None and reporter == authority:
            confirmed_by = confirmed_by or event_id
            continue
        who = (f"only {authority}, the licensing authority of {lot.shipper_country}, may confirm it"
               if authority is not None else
               f"the policy names no licensing authority of {lot.shipper_country} to confirm it")
        steps.append(Alert(
            alert_id=alert_id("unauthorized_report", lot.trace_id, lot.lot_id, f"{reporter}/{event_id}"),
            kind="unauthorized_report", trace_id=lot.trace_id, lot_id=lot.lot_id, party=lot.shipper,
            due_at=lot.shipped_at, quantity=None, unit=None,
            message=(f"exemption_confirmed {event_id!r} by {reporter!r} for ship-back lot {lot.lot_id} "
                     f"refused: {who}"),
            event_ids=(event_id,),
        ))
    parent = account.lots.get(lot.parent_lot_id or "")
    left_under = _left_under(lot, account)
    if confirmed_by is not None or (lot.license_id is not None and lot.license_id == left_under):
        return steps
    if lot.license_id is None:
        cites = "cites no export license"
    else:
        cites = (f"cites license {lot.license_id}, not the license its material left under "
                 f"({left_under or 'none cited'})")
    message = (
        f"ship-back of {_q(lot.shipped, lot.unit)} {lot.item_id} (lot {lot.lot_id}) from {lot.shipper} "
        f"({lot.shipper_country}) to {lot.holder} ({lot.holder_country}) on {lot.shipped_at.astimezone(timezone.utc).date().isoformat()} (UTC) "
        f"{cites}; many regimes exempt ship-backs: confirm the exemption applies"
    )
    if parent is not None and parent.shipper != lot.holder:
        message += f" (note: {lot.holder} is not the party that shipped lot {parent.lot_id}, {parent.shipper})"
    steps.append(_step("ship_back_exemption", lot, "", message, (lot.opened_by,)))
    return steps


def _left_under(lot: LotAccount, account: TraceAccount) -> str | None:
    """The license the material of a ship-back left under: the nearest
    lot up its lineage (not itself a ship-back) that cites one."""
    current = lot
    for _ in range(LINEAGE_DEPTH_MAX):
        parent = account.lots.get(current.parent_lot_id or "")
        if parent is None:
            return None
        if parent.origin != "ship_back" and parent.license_id is not None:
            return parent.license_id
        current = parent
    return None


# -- cross-trace rule: the ceiling ----------------------------------------------------


def uses_license(origin: str) -> bool:
    """Whether a lot of this origin uses the license it cites (counts against
    its ceiling).  A ship-back cites the license its material left under,
    which covers the return: it uses nothing more of it."""
    return origin != "ship_back"


def ceiling_steps(license: License, uses: Iterable[LicenseUse]) -> list[Alert]:
    """Steps of the ceiling alert of one license: at each shipment that leaves
    the cumulative use above the ceiling, the excess so far.

    Uses are summed in shipment order (shipped_at, event id), so a late report
    of an early shipment moves the excess to where it belongs.  A use in
    another dimension is not counted (the premise rule alerts it).
    """
    if license.ceiling is None:
        return []
    ceiling = license.ceiling
    total = Decimal(0)
    over: list[str] = []
    steps = []
    for use in sorted(uses, key=lambda u: (u.shipped_at, u.event_id)):
        try:
            amount = Quantity(use.amount, use.unit).to(ceiling.unit).amount
        except DimensionMismatch:
            continue
        total += amount
        if total <= ceiling.amount:
            continue
        over.append(use.event_id)
        excess = total - ceiling.amount
        if steps and steps[-1].due_at == use.shipped_at:
            # One step per instant: the store keys steps by (alert id, due time).
            steps.pop()
        steps.append(
            Alert(
                alert_id=alert_id("license_ceiling", ceiling_trace_id(license.license_id), "", ""),
                kind="license_ceiling",
                trace_id=ceiling_trace_id(license.license_id),
                lot_id=use.lot_id,
                party=license.exporter,
                due_at=use.shipped_at,
                quantity=excess,
                unit=ceiling.unit,
                message=(
                    f"license {license.license_id} allows {_q(ceiling.amount, ceiling.unit)}; shipments citing it "
                    f"total {_q(total, ceiling.unit)} by lot {use.lot_id} (trace {use.trace_id}) on "
                    # UTC: the uses come from stored rows (UTC) and from fresh reports
                    # (the reporter's zone); the message must not depend on which.
                    f"{use.shipped_at.astimezone(timezone.utc).date().isoformat()} (UTC): "
                    f"{_q(excess, ceiling.unit)} over the ceiling"
                ),
                event_ids=(license.granted_by, *over),
            )
        )
    return steps


# -- two versions of one license report -----------------------------------------------


def license_conflict_steps(
    events: Iterable[LicenseGranted | LicenseRevoked],
    *,
    known_at: datetime | None = None,
) -> list[Alert]:
    """``conflicting_report`` steps for each license report (event id) that
    came in more than one version, on the license's pseudo trace
    (``ceiling_trace_id``), the rule ``ledger.account`` applies to lot reports.

    The version used is the one ``LicenseBook`` uses: the first recorded, ties
    broken by content digest.  Each other version recorded at a later instant
    adds a step due then (when the ledger learned of the conflict), naming the
    version used and the one not used, its party the reporter of the version
    not used.  An identical resend (same digest) is no conflict.  A version
    recorded after ``known_at`` is not known.  Deterministic in any arrival
    order: versions are ordered by (recorded_at, digest), never by arrival.
    """
    grouped: dict[tuple[str, str], list[LicenseGranted | LicenseRevoked]] = {}
    for event in events:
        if known_at is not None and event.recorded_at is not None and event.recorded_at > known_at:
            continue
        grouped.setdefault((event.license_id, event.event_id), []).append(event)
    far_future = datetime.max.replace(tzinfo=timezone.utc)
    steps: list[Alert] = []
    for (license_id, event_id), same_id in sorted(grouped.items()):
        if len(same_id) < 2:
            continue
        # One entry per digest: the earliest recorded copy of each content.
        versions: dict[str, LicenseGranted | LicenseRevoked] = {}
        for event in same_id:
            digest = content_digest(event)
            held = versions.get(digest)
            if held is None or (event.recorded_at or far_future) < (held.recorded_at or far_future):
                versions[digest] = event
        if len(versions) < 2:
            continue
        ordered = sorted(versions.items(), key=lambda dv: (dv[1].recorded_at or far_future, dv[0]))
        winner_digest, winner = ordered[0]
        trace_id = ceiling_trace_id(license_id)
        # One step per instant: the store keys steps by (alert id, due time).
        by_instant: dict[datetime, list[tuple[str, LicenseGranted | LicenseRevoked]]] = {}
        for digest, loser in ordered[1:]:
            by_instant.setdefault(loser.recorded_at or far_future, []).append((digest, loser))
        for at, same_instant in by_instant.items():
            loser_digest, loser = same_instant[0]
            steps.append(
                Alert(
                    alert_id=alert_id("conflicting_report", trace_id, "", event_id),
                    kind="conflicting_report",
                    trace_id=trace_id,
                    lot_id="",
                    party=loser.reporter,
                    due_at=at,
                    quantity=None,
                    unit=None,
                    message=(
                        f"{loser.type} report {event_id!r} of license {license_id} was reported again with "
                        f"different content{differences(loser, winner)}; the ledger uses the version recorded at {_utc(winner.recorded_at)} "
                        f"(digest {winner_digest[:12]}), not the one recorded at {_utc(loser.recorded_at)} "
                        f"(digest {', '.join(d[:12] for d, _e in same_instant)})"
                    ),
                    event_ids=(event_id,),
                )
            )
    return steps


# -- who may grant, amend and revoke ------------------------------------------------------


def _issuing_countries(events: Iterable[LicenseGranted | LicenseRevoked],
                       authorities: Mapping[str, str] | None) -> dict[str, str]:
    """License id -> the country whose licensing authority's grant of it the
    ledger recorded first (recording times are the ledger's own: no party
    can choose them).  Empty without authorities."""
    if not authorities:
        return {}
    country_of = {party: country for country, party in authorities.items()}
    far_future = datetime.max.replace(tzinfo=timezone.utc)
    first: dict[str, _Grant] = {}
    for event in events:
        if isinstance(event, LicenseGranted) and event.reporter in country_of:
            key = _Grant(event.recorded_at or far_future, event.occurred_at, event.event_id, country_of[event.reporter])
            if event.license_id not in first or key < first[event.license_id]:
                first[event.license_id] = key
    return {license_id: grant.country for license_id, grant in first.items()}


class _Grant(NamedTuple):
    """An authority's grant, ordered as "recorded first" compares them."""

    recorded_at: datetime
    occurred_at: datetime
    event_id: str
    country: str


def authorized(
    events: Iterable[LicenseGranted | LicenseRevoked],
    authorities: Mapping[str, str] | None,
    *,
    issuing: Mapping[str, str] | None = None,
) -> tuple[list[LicenseGranted | LicenseRevoked], list[tuple[LicenseGranted | LicenseRevoked, str]]]:
    """The license reports their reporters may make, and the others with why.

    Only the licensing authority of a country (``authorities``: country ->
    party id, from the policy) grants, amends and revokes that country's
    licenses; a license id belongs to the country whose authority's grant of
    it was recorded first.  Without authorities every report is taken (the
    policy names none: the ledger cannot tell)."""
    events = list(events)
    if not authorities:
        return events, []
    country_of = {party: country for country, party in authorities.items()}
    if issuing is None:
        issuing = _issuing_countries(events, authorities)
    named = ", ".join(f"{party} ({country})" for country, party in sorted(authorities.items()))
    accepted: list[LicenseGranted | LicenseRevoked] = []
    refused: list[tuple[LicenseGranted | LicenseRevoked, str]] = []
    for event in events:
        country = country_of.get(event.reporter)
        issuer = issuing.get(event.license_id)
        if country is None:
            refused.append((event, f"{event.reporter!r} is not a licensing authority named in the policy "
                                   f"({named}); only the issuing country's authority grants, amends or "
                                   f"revokes a license"))
        elif issuer is not None and issuer != country:
            refused.append((event, f"{event.reporter!r} is the licensing authority of {country}, but license "
                                   f"{event.license_id} was issued by {issuer} ({authorities.get(issuer)}); "
                                   f"only it may amend or revoke it"))
        else:
            accepted.append(event)
    return accepted, refused


def license_report_steps(
    events: Iterable[LicenseGranted | LicenseRevoked],
    *,
    authorities: Mapping[str, str] | None = None,
    known_at: datetime | None = None,
) -> list[Alert]:
    """Every alert on license reports themselves, on the license's pseudo
    trace: two versions of one report (``license_conflict_steps``), and each
    report its reporter may not make (``unauthorized_report``, due when it
    occurred, addressed to the license's holder as the authority's grant
    names it, else to the exporter the report names)."""
    events = [e for e in events if known_at is None or e.recorded_at is None or e.recorded_at <= known_at]
    steps = license_conflict_steps(events)
    known = _one_version_each(events)
    _accepted, refused = authorized(known, authorities)
    if not refused:
        return steps
    holders: dict[str, str] = {}
    for event in _accepted:
        if isinstance(event, LicenseGranted):
            holders[event.license_id] = event.exporter
    by_key: dict[tuple[str, datetime], Alert] = {}
    for event, why in refused:
        trace_id = ceiling_trace_id(event.license_id)
        party = holders.get(event.license_id) or getattr(event, "exporter", None) or event.reporter
        step = Alert(
            alert_id=alert_id("unauthorized_report", trace_id, "", f"{event.reporter}/{event.event_id}"),
            kind="unauthorized_report", trace_id=trace_id, lot_id="", party=party, due_at=event.occurred_at,
            quantity=None, unit=None,
            message=f"{event.type} {event.event_id!r} of license {event.license_id} by {event.reporter!r} "
                    f"refused: {why}",
            event_ids=(event.event_id,),
        )
        by_key.setdefault((step.alert_id, step.due_at), step)  # the store keys steps so
    steps.extend(by_key[k] for k in sorted(by_key))
    return steps


def _utc(at: datetime | None) -> str:
    return at.astimezone(timezone.utc).isoformat() if at is not None else "an unknown time"


def _in_force(license_id: str, grants: list[LicenseGranted], revocations: list[LicenseRevoked],
              at: datetime | None) -> License:
    """The license from the grant in force at ``at`` (None: the latest grant).

    A shipment before any grant occurred is judged by the first grant, whose
    ``granted_at`` then shows it was granted after the fact."""
    grant_index, revocation_index = _in_force_indexes(grants, revocations, at)
    return _license(license_id, grants[grant_index],
                    revocations[revocation_index] if revocation_index >= 0 else None)  # no issuer: test helper


def _in_force_indexes(grants: list[LicenseGranted], revocations: list[LicenseRevoked],
                      at: datetime | None) -> tuple[int, int]:
    """Which grant is in force at ``at`` and which revocation (-1: none) revokes it."""
    grant_index = len(grants) - 1 if grants else 0  # the latest grant (an empty list fails below)
    if at is not None:
        # The last grant that occurred by ``at``; else the first grant.
        for index in range(len(grants) - 1, -1, -1):
            if grants[index].occurred_at <= at:
                grant_index = index
                break
        else:
            grant_index = 0
    grant = grants[grant_index]
    since = (grant.occurred_at, grant.event_id)
    for index, r in enumerate(revocations):
        if (r.occurred_at, r.event_id) >= since and (at is None or r.occurred_at <= at):
            return grant_index, index
    return grant_index, -1


def _license(license_id: str, grant: LicenseGranted, revoked: LicenseRevoked | None,
             issuing_country: str | None = None) -> License:
    return License(
        license_id=license_id,
        kind=grant.kind,
        exporter=grant.exporter,
        items=frozenset(grant.items),
        destinations=frozenset(grant.destinations),
        end_users=frozenset(grant.end_users),
        ceiling=grant.ceiling.quantity() if grant.ceiling else None,
        valid_from=grant.valid_from,
        valid_until=grant.valid_until,
        granted_by=grant.event_id,
        granted_at=grant.occurred_at,
        revoked_at=revoked.occurred_at if revoked else None,
        revoked_by=revoked.event_id if revoked else None,
        issuing_country=issuing_country,
    )


def _one_version_each(events: Iterable[LicenseGranted | LicenseRevoked]) -> list[LicenseGranted | LicenseRevoked]:
    """One version per event id, as for lot reports: the first recorded wins,
    ties broken by content digest, so two conflicting versions of one grant
    give the same license whichever arrived first."""
    first: dict[str, LicenseGranted | LicenseRevoked] = {}
    several: dict[str, list[LicenseGranted | LicenseRevoked]] = {}
    for event in events:
        held = first.get(event.event_id)
        if held is None:
            first[event.event_id] = event
        elif event.event_id in several:
            several[event.event_id].append(event)
        else:
            several[event.event_id] = [held, event]
    if not several:
        return list(first.values())
    # Digests only where an event id has several versions: the first of the
    # least (recorded_at, digest) wins.
    far_future = datetime.max.replace(tzinfo=timezone.utc)
    return [
        min(several[event_id], key=lambda e: (e.recorded_at or far_future, content_digest(e)))
        if event_id in several else event
        for event_id, event in first.items()
    ]


def _q(amount: Decimal, unit: str) -> str:
    return f"{canonical_decimal(amount)} {unit}"
