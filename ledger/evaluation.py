"""One evaluation: what a set of traces' reports mean, under a policy.

Every answer the ledger gives about a trace -- the projection's rows, an
as-of or known-at query, an audit export's report statuses, the benchmark's
fold -- comes from ``evaluate``.  It takes what the caller loaded:

- each trace's report versions (``Version``: report and digest),
- the claims other traces hold on their event ids (ledger/identity.py),
- the license reports the traces cite (``None``: the premise rules are not run),
- the policy, and ``as_of`` / ``known_at``,

and returns, per trace, the account, its alert steps and what it made of each
report (applied, retracted, corrected, refused, a conflicting version, or
another trace's), and per license, its ceiling and license-report steps.

Pure: nothing here reads a file, the environment or a store.  The one thing
it may need beyond what the caller can know up front -- the shipments of
traces *not* evaluated that count against a license's ceiling -- it asks for
through ``uses_elsewhere``, and only for licenses that have a ceiling (a bulk
license without one may be cited by many thousands of lots).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from ledger.account import NOT_USED, TraceAccount, Verdict, Version, build_account, named_by_reporter
from ledger.alerts import Alert, alert_steps, alerts_as_of
from ledger.events import LicenseGranted, LicenseRevoked
from ledger.identity import Claims, standing
from ledger.licenses import (
    LicenseBook,
    LicenseUse,
    ceiling_steps,
    ceiling_trace_id,
    license_report_steps,
    premise_steps,
    uses_license,
)
from ledger.policy import Policy

__all__ = ["evaluate", "Evaluation", "ReportStatus", "account_of", "trace_steps", "license_uses",
           "licenses_named", "LicenseReport"]

LicenseReport = LicenseGranted | LicenseRevoked


@dataclass(frozen=True, slots=True)
class ReportStatus:
    """What the evaluation made of one report version."""

    trace_id: str
    version: Version
    verdict: Verdict  # its state (APPLIED, RETRACTED, ...) and why, in words


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of ``evaluate``.

    ``steps``: trace id -> every alert step of the trace (premise rules
    included when license reports were given).  ``license_steps``: the pseudo
    trace id of each license concerned (``license:<id>``, in license id
    order) -> its ceiling steps and the steps on its reports (conflicting
    versions, reports their reporter may not make); possibly empty, which
    clears a ceiling alert that no longer stands.
    """

    versions: Mapping[str, Sequence[Version]]
    accounts: Mapping[str, TraceAccount]
    steps: Mapping[str, list[Alert]]
    license_steps: Mapping[str, list[Alert]]

    def standing(self, as_of: datetime) -> list[Alert]:
        """Every alert standing at ``as_of``, of the traces and of the licenses."""
        every = [a for steps in self.steps.values() for a in steps]
        every.extend(a for steps in self.license_steps.values() for a in steps)
        return alerts_as_of(every, as_of)

    def statuses(self, trace_id: str) -> list[ReportStatus]:
        """What the account of ``trace_id`` made of each of its versions, in the order given."""
        account = self.accounts[trace_id]
        return [ReportStatus(trace_id, v, account.verdict(v)) for v in self.versions[trace_id]]


def evaluate(
    traces: Mapping[str, Sequence[Version]],
    *,
    policy: Policy,
    claims: Claims | None = None,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
    license_reports: Iterable[LicenseReport] | None = None,
    licenses: Iterable[str] = (),
    uses_elsewhere: Callable[[list[str]], Iterable[LicenseUse]] | None = None,
) -> Evaluation:
    """Evaluate ``traces`` (trace id -> its versions).

    With ``license_reports`` the premise rules run, and ``license_steps``
    holds every license the accounts' lots cite plus ``licenses`` (those
    the caller knows changed: a lot that cited one may cite none now).
    A license's ceiling counts the lots of the traces evaluated and those
    ``uses_elsewhere(license ids)`` gives for the traces not evaluated.
    ``as_of`` keeps the reports that occurred by then, ``known_at`` those
    the ledger had recorded by then (ledger/account.py ``build_account``).
    """
    accounts = {t: account_of(t, v, claims=claims, as_of=as_of, known_at=known_at) for t, v in traces.items()}
    if license_reports is None:
        steps = {t: alert_steps(a, policy) for t, a in accounts.items()}
        return Evaluation(traces, accounts, steps, {})
    reports = list(license_reports)
    authorities = policy.licensing_authorities
    book = LicenseBook.from_events(reports, as_of=as_of, known_at=known_at, authorities=authorities)
    steps = {t: trace_steps(a, policy, book) for t, a in accounts.items()}
    cited = {lot.license_id for a in accounts.values() for lot in a.lots.values() if lot.license_id}
    concerned = sorted(cited | set(licenses))
    on_licenses: dict[str, list[Alert]] = {ceiling_trace_id(i): [] for i in concerned}
    with_ceiling = [i for i in concerned if (license := book.get(i)) is not None and license.ceiling is not None]
    if with_ceiling:
        uses: dict[str, list[LicenseUse]] = {i: [] for i in with_ceiling}
        for use in uses_elsewhere(with_ceiling) if uses_elsewhere is not None else ():
            if use.trace_id not in accounts and use.license_id in uses:  # an evaluated trace counts as it is now
                uses[use.license_id].append(use)
        for account in accounts.values():
            for use in license_uses(account, uses):
                uses[use.license_id].append(use)
        for license_id in with_ceiling:
            on_licenses[ceiling_trace_id(license_id)].extend(ceiling_steps(book.get(license_id), uses[license_id]))  # type: ignore[arg-type]
    for step in license_report_steps(reports, authorities=authorities, known_at=known_at):
        if step.trace_id in on_licenses:
            on_licenses[step.trace_id].append(step)
    return Evaluation(traces, accounts, steps, on_licenses)


def account_of(
    trace_id: str,
    versions: Iterable[Version],
    *,
    claims: Claims | None = None,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> TraceAccount:
    """The account of one trace's versions.

    ``claims`` (event id -> the claims other traces hold on it,
    ledger/identity.py) makes an event id name one report ledger-wide: a
    version another trace recorded first does not count here, and raises a
    finding instead.
    """
    versions = list(versions)
    lost: list = []
    lost_to: dict[tuple[str, str], str] = {}
    kept = versions
    if claims:
        kept, lost, lost_to = standing(trace_id, versions, claims, known_at=known_at)
    account = build_account(trace_id, kept, as_of=as_of, known_at=known_at)
    for (reporter, event_id), holder in lost_to.items():
        for version in versions:
            if version.identity == (reporter, event_id):
                account.set_aside[(reporter, event_id, version.digest)] = Verdict(
                    NOT_USED, f"not used: event id first recorded in trace {holder}")
    if as_of is not None:
        lost = [f for f in lost if f.at <= as_of]
    if not lost:
        return account
    # Two parties' reports under one event id, both lost to other traces:
    # two alerts, named by reporter (as within a trace).
    merged = named_by_reporter(versions, [*account.findings, *lost])
    findings = sorted(merged, key=lambda f: (f.at, f.kind, f.lot_id, f.event_ids, f.by))
    return replace(account, findings=findings)


def trace_steps(account: TraceAccount, policy: Policy, book: LicenseBook | None = None) -> list[Alert]:
    """Every alert step of one account: the lot and finding rules, and with
    ``book`` the license premise rules."""
    return alert_steps(account, policy, premise_steps(account, book) if book is not None else ())


def license_uses(account: TraceAccount, license_ids: Iterable[str] | None = None) -> list[LicenseUse]:
    """The shipments of an account that count against the licenses they
    cite (of ``license_ids``, when given)."""
    wanted = None if license_ids is None else set(license_ids)
    return [
        LicenseUse(account.trace_id, lot.lot_id, lot.opened_by, lot.shipped_at, lot.shipped, lot.unit,
                   license_id=lot.license_id)
        for lot in account.lots.values()
        if lot.license_id and (wanted is None or lot.license_id in wanted) and uses_license(lot.origin)
    ]


def licenses_named(versions: Iterable[Version]) -> set[str]:
    """Every license id these reports name: the licenses their lots may
    cite, so a caller loads those reports before the evaluation says which
    the lots do cite."""
    out = set()
    for version in versions:
        license_id = getattr(version.event, "license_id", None)
        if license_id:
            out.add(license_id)
    return out
