"""Who may do what, decided in one place.

Roles (``ledger credentials issue PARTY --role ...``):

- reporter: sends reports whose ``reporter`` is its own party; reads only
  its own lots and alerts -- a lot it holds or shipped, every lot of a trace
  it exported at the origin, and the alerts addressed to it or about such
  a lot;
- auditor: reads everything, writes nothing;
- dashboard: reads alerts (standing, journal, stream) only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from consumers.http.credentials import TOKEN_LENGTH_MAX, CredentialStore, token_hash
from ledger.events import shown_value

__all__ = ["Principal", "Refused", "authenticate", "require", "impersonations", "Visibility",
           "WRITE", "READ", "READ_ALERTS", "READ_METRICS"]

WRITE, READ, READ_ALERTS = "write reports", "read lots, traces, flows and rejects", "read alerts"
# Ledger-wide counts (open alerts by kind, reports by outcome): not for a
# reporter, which sees only its own alerts and lots.
READ_METRICS = "read ledger-wide metrics"
ROLE_ACTIONS = {
    "reporter": frozenset({WRITE, READ, READ_ALERTS}),
    "auditor": frozenset({READ, READ_ALERTS, READ_METRICS}),
    "dashboard": frozenset({READ_ALERTS, READ_METRICS}),
}
IMPERSONATIONS_LISTED_MAX = 20


class Refused(Exception):
    """A request the API answers with an error: status, a stable code, and what to do."""

    def __init__(self, status: int, code: str, message: str, *, problems: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems = problems or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.problems:
            out["problems"] = self.problems
        return out


@dataclass(frozen=True, slots=True)
class Principal:
    credential_id: str
    party: str
    role: str

    def may(self, action: str) -> bool:
        return action in ROLE_ACTIONS.get(self.role, frozenset())


def authenticate(header: str | None, store: CredentialStore) -> Principal:
    """The principal a request's ``Authorization`` header names, or Refused(401)."""
    how = "send 'Authorization: Bearer <token>'; the operator issues one with `ledger credentials issue PARTY`"
    if not header:
        raise Refused(401, "unauthenticated", f"no Authorization header: {how}")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Refused(401, "unauthenticated", f"the Authorization header is not a bearer token: {how}")
    credential = None if len(token) > TOKEN_LENGTH_MAX else store.find(token_hash(token))
    if credential is None:
        raise Refused(401, "unauthenticated", f"the bearer token is not one this ledger issued: {how}")
    if not credential.active:
        raise Refused(401, "revoked", f"credential {credential.credential_id} of {credential.party} was revoked "
                                      f"at {credential.revoked_at}; ask the operator for a new token")
    return Principal(credential.credential_id, credential.party, credential.role)


def require(principal: Principal, action: str) -> None:
    """Refused(403) unless the principal's role allows ``action``."""
    if not principal.may(action):
        allowed = sorted(ROLE_ACTIONS.get(principal.role, ()))
        raise Refused(403, "forbidden",
                      f"{_article(principal.role)} {principal.role} credential ({principal.party}) may not {action}; "
                      f"it may: {', '.join(allowed) or 'nothing'}")


def impersonations(principal: Principal, reports: Iterable[tuple[int, Any]]) -> None:
    """Refused(403) if any (index, event) names a reporter other than the principal's party."""
    foreign = [{"index": index, "event_id": event.event_id, "field": "reporter", "value": shown_value(event.reporter),
                "message": f"this credential reports as {principal.party} only"}
               for index, event in reports if event.reporter != principal.party]
    if foreign:
        raise Refused(
            403, "impersonation",
            f"{len(foreign)} report(s) name another party as reporter; a credential of {principal.party} may "
            f"only send reports whose reporter is {principal.party}. Nothing was recorded: send those reports "
            f"with their reporter's own credential",
            problems=foreign[:IMPERSONATIONS_LISTED_MAX],
        )


class Visibility:
    """Which lots and alerts a principal may read.  Auditors and dashboards
    see every alert, auditors every lot; a reporter, its own (module doc).

    ``origins`` maps a trace id to the exporter of its root lot (the lot
    with no parent), read from the lot rows the caller has at hand.
    """

    def __init__(self, principal: Principal):
        self.principal = principal
        self.everything = principal.role in ("auditor", "dashboard")

    @staticmethod
    def origins(rows: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for row in rows:
            if not row.get("parent_lot_id"):
                out.setdefault(row["trace_id"], set()).add(row["shipper"])
        return out

    def lot(self, row: Mapping[str, Any], origins: Mapping[str, set[str]]) -> bool:
        if self.everything:
            return True
        party = self.principal.party
        return party in (row["holder"], row["shipper"]) or party in origins.get(row["trace_id"], ())

    def alert(self, row: Mapping[str, Any], origins: Mapping[str, set[str]],
              lots: Mapping[tuple[str, str], Mapping[str, Any]]) -> bool:
        """An alert addressed to the principal, or about a lot it may read
        (``lots``: lot rows by (trace id, lot id), of the alerts' traces)."""
        if self.everything:
            return True
        if row.get("party") == self.principal.party:
            return True
        lot = lots.get((row.get("trace_id") or "", row.get("lot_id") or ""))
        return lot is not None and self.lot(lot, origins)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
