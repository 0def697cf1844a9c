"""Alert rules: pure functions of (the events known at T, T, the policy).

Each rule reads a lot account and returns the *steps* of its alert: from
``due_at`` on, the alert stands at ``quantity``.  ``alerts_as_of`` keeps the
steps due by T; the projection stores every step so that "open alerts now"
is an indexed query, not a replay.  An alert resolves itself when later
reports account for the quantity: its steps then vanish on recomputation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from ledger.account import ZERO, Finding, LotAccount, Since, TraceAccount
from ledger.policy import Policy

__all__ = ["Alert", "ALERT_KINDS", "PREMISE_KINDS", "SEVERITY", "alert_steps", "alerts_as_of", "alert_id"]

# License premises (ledger/licenses.py; docs/COMPLIANCE.md).  Named here, not
# there, so this module needs nothing of licenses.py (which builds on it).
PREMISE_KINDS = (
    "license_missing",
    "license_unknown",
    "license_invalid",
    "premise_deviation",
    "license_ceiling",
    "ship_back_exemption",
)

ALERT_KINDS = (
    "unaccounted",
    "transit_overdue",
    "short_receipt",
    "return_unconfirmed",
    "over_accounting",
    "conflicting_report",
    "invalid_report",
    "over_declared",
    "unknown_lot",
    *PREMISE_KINDS,
    # Who may say what (docs/COMPLIANCE.md): a report its reporter may not make.
    "unauthorized_report",
    # A trace the projection could not compute (projections/trace_projection.py)
    "quarantined",
)

SEVERITY = {
    "unaccounted": "high",
    "return_unconfirmed": "high",
    "over_accounting": "high",
    "conflicting_report": "high",
    "short_receipt": "medium",
    "transit_overdue": "medium",
    "unknown_lot": "medium",
    "invalid_report": "low",
    "over_declared": "high",
    "license_missing": "high",
    "license_unknown": "high",
    "license_invalid": "high",
    "premise_deviation": "high",
    "license_ceiling": "high",
    "ship_back_exemption": "medium",
    "unauthorized_report": "high",
    "quarantined": "high",
}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert step.  ``quantity`` is in ``unit``; findings carry none."""

    alert_id: str
    kind: str
    trace_id: str
    lot_id: str
    party: str
    due_at: datetime
    quantity: Decimal | None
    unit: str | None
    message: str
    event_ids: tuple[str, ...] = field(default=())

    @property
    def severity(self) -> str:
        return SEVERITY.get(self.kind, "medium")


def alert_id(kind: str, trace_id: str, lot_id: str, subject: str = "") -> str:
    """Stable across runs and machines, so a re-published alert is recognisable."""
    text = "|".join((kind, trace_id, lot_id, subject))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def alert_steps(account: TraceAccount, policy: Policy, more: Iterable[Alert] = ()) -> list[Alert]:
    """Every step of every alert the account implies if nothing else is
    reported, with ``more`` steps (the license premise rules': the
    evaluation, ledger/evaluation.py, adds them) in one order."""
    steps: list[Alert] = []
    for lot_id in sorted(account.lots):
        lot = account.lots[lot_id]
        steps.extend(_transit_steps(lot, policy))
        steps.extend(_unaccounted_steps(lot, policy))
        steps.extend(_over_accounting_steps(lot))
    steps.extend(_finding_step(account.trace_id, f) for f in account.findings)
    steps.extend(more)
    if len(steps) > 1:
        steps.sort(key=lambda a: (a.due_at, a.kind, a.lot_id, a.alert_id))
    return steps


def alerts_as_of(steps: list[Alert], as_of: datetime) -> list[Alert]:
    """The alerts standing at ``as_of``: for each alert, its latest step due by then."""
    latest: dict[str, Alert] = {}
    for step in steps:
        if step.due_at <= as_of:
            current = latest.get(step.alert_id)
            if current is None or step.due_at >= current.due_at:
                latest[step.alert_id] = step
    standing = [a for a in latest.values() if a.quantity is None or a.quantity > 0]
    standing.sort(key=lambda a: (a.trace_id, a.lot_id, a.kind, a.alert_id))
    return standing


def _transit_steps(lot: LotAccount, policy: Policy) -> list[Alert]:
    missing = lot.shipped - lot.received
    if missing <= 0:
        return []
    if lot.origin == "ship_back":
        kind, window = "return_unconfirmed", policy.return_confirmation
        what = (
            f"ship-back of {_q(lot.shipped, lot.unit)} to {lot.holder} ({lot.holder_country}): "
            f"{_q(lot.received, lot.unit)} confirmed received, {_q(missing, lot.unit)} unconfirmed"
        )
    elif lot.received > 0:
        kind, window = "short_receipt", policy.transit_max
        what = (
            f"{_q(lot.shipped, lot.unit)} shipped to {lot.holder} ({lot.holder_country}), "
            f"only {_q(lot.received, lot.unit)} received: {_q(missing, lot.unit)} short"
        )
    else:
        kind, window = "transit_overdue", policy.transit_max
        what = (
            f"{_q(lot.shipped, lot.unit)} shipped to {lot.holder} ({lot.holder_country}) "
            f"on {lot.shipped_at.astimezone(timezone.utc).date().isoformat()} (UTC), no receipt reported"
        )
    # One alert id for the lot's transit, whatever its kind now, so a
    # transit_overdue that becomes a short_receipt is the same alert, updated.
    return [
        Alert(
            alert_id=alert_id("transit", lot.trace_id, lot.lot_id),
            kind=kind,
            trace_id=lot.trace_id,
            lot_id=lot.lot_id,
            party=lot.holder,
            due_at=lot.shipped_at + window,
            quantity=missing,
            unit=lot.unit,
            message=what,
            event_ids=(lot.opened_by, *(r.event_id for r in lot.receipts)),
        )
    ]


def _unaccounted_steps(lot: LotAccount, policy: Policy) -> list[Alert]:
    """Each receipt must be accounted for within the end-use reporting window.

    At the deadline of the k-th receipt, the holder must explain everything
    received up to it; what the outflows and declared stock do not explain is
    unaccounted ("30 of 100 units").
    """
    if not lot.receipts:
        return []
    explained = lot.explained
    steps: list[Alert] = []
    received_due = ZERO
    receipts = sorted(lot.receipts)
    for index, (occurred_at, amount, _event_id) in enumerate(receipts):
        received_due += amount
        if index + 1 < len(receipts) and receipts[index + 1].occurred_at == occurred_at:
            continue  # receipts at one instant share one deadline: one step, not two
        unaccounted = received_due - explained
        if unaccounted <= 0 and not steps:
            continue
        steps.append(
            Alert(
                alert_id=alert_id("unaccounted", lot.trace_id, lot.lot_id),
                kind="unaccounted",
                trace_id=lot.trace_id,
                lot_id=lot.lot_id,
                party=lot.holder,
                due_at=occurred_at + policy.end_use_reporting,
                quantity=max(ZERO, unaccounted),
                unit=lot.unit,
                message=(
                    f"{_q(max(ZERO, unaccounted), lot.unit)} of {_q(received_due, lot.unit)} "
                    f"received by {lot.holder} ({lot.holder_country}) not accounted for "
                    f"within {policy.end_use_reporting_days} days"
                ),
                event_ids=tuple(r.event_id for r in lot.receipts) + tuple(lot.outflow_event_ids),
            )
        )
    return steps


def _over_accounting_steps(lot: LotAccount) -> list[Alert]:
    """More out than came in, or more received than was shipped: since the
    report that tipped it, for as long as it holds."""
    steps = []
    if lot.over_accounted_since is not None:
        steps.append(_over_accounting(lot, "outflow", lot.over_accounted_since, lot.out - lot.received,
                                      f"{lot.holder} reports {_q(lot.out, lot.unit)} out of lot {lot.lot_id} "
                                      f"but received only {_q(lot.received, lot.unit)}"))
    if lot.over_received_since is not None:
        steps.append(_over_accounting(lot, "receipt", lot.over_received_since, lot.received - lot.shipped,
                                      f"{lot.holder} reports {_q(lot.received, lot.unit)} received of lot "
                                      f"{lot.lot_id}, but only {_q(lot.shipped, lot.unit)} was shipped"))
    return steps


def _over_accounting(lot: LotAccount, subject: str, since: Since, excess: Decimal,
                     what: str) -> Alert:
    at, event_id = since
    return Alert(
        alert_id=alert_id("over_accounting", lot.trace_id, lot.lot_id, subject),
        kind="over_accounting",
        trace_id=lot.trace_id,
        lot_id=lot.lot_id,
        party=lot.holder,
        due_at=at,
        quantity=excess,
        unit=lot.unit,
        message=f"{what}: {_q(excess, lot.unit)} too many",
        event_ids=(event_id,),
    )


def _finding_step(trace_id: str, finding: Finding) -> Alert:
    subject = ",".join(finding.event_ids)
    if finding.by:  # two parties' reports under one event id: two alerts
        subject += "/" + finding.by
    return Alert(
        alert_id=alert_id(finding.kind, trace_id, finding.lot_id, subject),
        kind=finding.kind,
        trace_id=trace_id,
        lot_id=finding.lot_id,
        party=finding.party,
        due_at=finding.at,
        quantity=None,
        unit=None,
        message=finding.message,
        event_ids=finding.event_ids,
    )


def _q(amount: Decimal, unit: str) -> str:
    from ledger.quantity import canonical_decimal

    return f"{canonical_decimal(amount)} {unit}"
