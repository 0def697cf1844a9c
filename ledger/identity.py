"""Report identity across traces: (reporter, event id) names one report, ledger-wide.

Within one trace the fold already settles two versions of one event id (the
first recorded wins, ties by digest: ledger/account.py ``_choose_versions``).
Across traces each trace is folded alone, so this module decides, for one
trace, which of its versions stand given the claims other traces hold on the
same event ids.

Each party chooses its own event ids, so the identity of a report is
(reporter, event id): one party's ids never shadow another's.  The rule: of
every version of party R's event id E anywhere in the ledger, the first
recorded wins, compared by ``(recorded_at, digest, trace_id)`` (a total
order).  A trace that does not hold that first version does not count any
of its versions of (R, E); each of them (one per recording instant, as
within a trace) raises a ``conflicting_report`` finding on that trace,
naming the event id and the trace that holds the first recorded report: one
party reusing an id in two traces is a conflict, not two movements.  A
trace that holds it keeps all its versions of (R, E) (its own fold then
chooses among them).  Another party's E, in any trace, is another report.

Pure: the same versions and claims give the same answer, whatever the
arrival order.  With ``known_at`` only the claims recorded by then count;
since a winner is recorded no later than the version it beats, the answer
known at K uses exactly what was recorded by K.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import NamedTuple

from ledger.account import Finding, Version

__all__ = ["Claim", "Claims", "FirstClaim", "standing_versions", "first_claim", "claims_of", "contested",
           "claims_moved"]


class Claim(NamedTuple):
    """One version of an event id held by a trace.  A NamedTuple, not a
    dataclass: the stores hand claims over as plain rows of these four
    columns, and code reading them unpacks them, so either kind works."""

    trace_id: str
    digest: str
    recorded_at: datetime
    reporter: str


Claims = Mapping[str, Iterable[Claim]]


class FirstClaim(NamedTuple):
    """The first recorded claim on a report: ordered as the rule compares
    claims (recording time, then digest, then trace id: a total order)."""

    recorded_at: datetime
    digest: str
    trace_id: str


def first_claim(claims: Iterable[Claim], *, known_at: datetime | None = None,
                excluding: str | None = None, reporter: str | None = None) -> FirstClaim | None:
    """The first recorded claim (of ``reporter``'s, when given), or None."""
    best = None
    for trace_id, digest, recorded_at, by in claims:
        if trace_id == excluding or (known_at is not None and recorded_at > known_at):
            continue
        if reporter is not None and by != reporter:
            continue
        key = FirstClaim(recorded_at, digest, trace_id)
        if best is None or key < best:
            best = key
    return best


def claims_of(trace_id: str, versions: Iterable[Version]) -> dict[str, list[Claim]]:
    """The claims one trace's versions make, by event id."""
    out: dict[str, list[Claim]] = {}
    for version in versions:
        out.setdefault(version.event_id, []).append(
            Claim(trace_id, version.digest, version.recorded_at, version.event.reporter))
    return out


def contested(stored: Claims, added: Claims | None = None) -> dict[str, list[Claim]]:
    """The claims on event ids one reporter holds in more than one trace
    (``stored`` and ``added`` together): the only ones that can change an
    account, so the only ones the evaluation is given."""
    added = added or {}
    out: dict[str, list[Claim]] = {}
    for event_id in stored.keys() | added.keys():
        on_it = [*stored.get(event_id, ()), *added.get(event_id, ())]
        if len(on_it) < 2:
            continue
        traces: dict[str, set[str]] = {}
        for trace_id, _digest, _recorded_at, reporter in on_it:
            traces.setdefault(reporter, set()).add(trace_id)
        if any(len(held) > 1 for held in traces.values()):
            out[event_id] = on_it
    return out


def claims_moved(stored: Claims, added: Claims) -> set[str]:
    """Traces holding an event id (``stored``) whose first recorded holder the
    claims ``added`` change: each must be evaluated again, though it has no
    new report."""
    out: set[str] = set()
    for event_id, new in added.items():
        before = list(stored.get(event_id, ()))
        if not before:
            continue
        for reporter in sorted({by for _t, _d, _r, by in new}):
            was = first_claim(before, reporter=reporter)
            now = first_claim([*before, *new], reporter=reporter)
            if was is not None and now is not None and was.trace_id != now.trace_id:
                out.update(trace_id for trace_id, _d, _r, by in before if by == reporter)
    return out


def standing_versions(
    trace_id: str,
    versions: Iterable[Version],
    claims: Claims,
    *,
    known_at: datetime | None = None,
) -> tuple[list[Version], list[Finding]]:
    """The versions of ``trace_id`` that stand, and the findings for those that do not.

    ``claims`` maps event ids to the claims on them (claims by ``trace_id``
    itself are ignored, so a store-wide lookup can be passed as it is).
    """
    kept, findings, _lost_to = standing(trace_id, versions, claims, known_at=known_at)
    return kept, findings


def standing(
    trace_id: str,
    versions: Iterable[Version],
    claims: Claims,
    *,
    known_at: datetime | None = None,
) -> tuple[list[Version], list[Finding], dict[tuple[str, str], str]]:
    """``standing_versions``, and for each report (reporter, event id) not
    counted here the trace that recorded it first."""
    versions = list(versions)
    if not claims:
        return versions, [], {}
    rivals: dict[tuple[str, str], FirstClaim] = {}  # (reporter, event id) -> first elsewhere
    for event_id, on_it in claims.items():
        on_it = list(on_it)
        for reporter in sorted({by for _t, _d, _r, by in on_it}):
            rival = first_claim(on_it, known_at=known_at, excluding=trace_id, reporter=reporter)
            if rival is not None:
                rivals[(reporter, event_id)] = rival
    if not rivals:
        return versions, [], {}
    own: dict[tuple[str, str], FirstClaim] = {}
    for version in versions:
        identity = version.identity
        if identity not in rivals:
            continue
        recorded_at = version.recorded_at
        if known_at is not None and recorded_at > known_at:
            continue
        key = FirstClaim(recorded_at, version.digest, trace_id)
        if identity not in own or key < own[identity]:
            own[identity] = key
    losing = {identity for identity, key in own.items() if rivals[identity] < key}
    if not losing:
        return versions, [], {}
    kept: list[Version] = []
    # One finding per report and recording instant, as within a trace (the
    # store keys alert steps by alert id and due time).
    lost: dict[tuple[str, str, datetime], list[Version]] = {}
    for version in versions:
        if version.identity not in losing:
            kept.append(version)
        elif known_at is None or version.recorded_at <= known_at:
            lost.setdefault((version.event_id, version.event.reporter, version.recorded_at), []).append(version)
    findings = []
    for (event_id, reporter, at), same_instant in sorted(lost.items()):
        same_instant.sort(key=lambda v: v.digest)
        loser = same_instant[0]
        winner_trace = rivals[(reporter, event_id)].trace_id
        findings.append(
            Finding(
                kind="conflicting_report",
                lot_id=loser.event.lot_id,
                party=loser.event.reporter,
                at=at,
                message=(
                    f"event {event_id!r} of {reporter!r} was first recorded in trace {winner_trace!r}; "
                    f"this report of it in trace {trace_id!r} "
                    f"(digest {', '.join(v.digest[:12] for v in same_instant)}) is not counted: "
                    f"the first recorded report is used"
                ),
                event_ids=(event_id,),
            )
        )
    return kept, findings, {identity: rivals[identity].trace_id for identity in losing}
