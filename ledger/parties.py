"""The party registry: who may appear in a report, and where they are.

The operator registers every party (id, country, roles) the ledger takes
reports from or about (``ledger parties add``); the registry is the
identity an HTTP API's credentials will bind to.  A report naming a party
the registry does not hold, or placing a registered party in another
country, is refused with a reason naming the field and the value
(``party_problems``), on every path: ``ledger ingest`` rejects the line,
the SDK raises before sending, and the projector dead-letters a record any
producer wrote to the log.

An empty registry refuses nothing: a ledger nobody has registered a party
in runs open, as before the registry existed (a first try, a migration);
registering the first party closes it.  Pure: no I/O; the adapters beside
the port (``ledger.ports.PartyRegistry``) keep it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.events import (
    COUNTRY_CODES,
    ID_LENGTH_MAX,
    ID_PATTERN,
    TEXT_LENGTH_MAX,
    FieldProblem,
    LicenseGranted,
    Party,
    shown_value,
)

__all__ = ["ROLES", "RegisteredParty", "PartyError", "party_problems", "parties_from_json", "named_parties",
           "by_id"]

ROLES = ("exporter", "consignee", "end_user", "carrier", "authority")
PARTIES_MAX = 100_000  # a registry file larger than this is refused, not read whole
_ID = re.compile(ID_PATTERN)


class PartyError(ValueError):
    """A party the registry cannot hold; the message names the field and value."""


@dataclass(frozen=True, slots=True)
class RegisteredParty:
    party_id: str
    country: str
    roles: tuple[str, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        if not (0 < len(self.party_id) <= ID_LENGTH_MAX and _ID.match(self.party_id)):
            raise PartyError(f"id {self.party_id!r}: must be 1-{ID_LENGTH_MAX} letters, digits or ._:/- "
                             f"starting with a letter or digit, as in reports")
        if self.country not in COUNTRY_CODES:
            raise PartyError(f"country {self.country!r} of {self.party_id!r}: not an ISO 3166-1 alpha-2 "
                             f"code (e.g. JP, KR, CN)")
        if not self.roles:
            raise PartyError(f"roles of {self.party_id!r}: name at least one of {', '.join(ROLES)}")
        for role in self.roles:
            if role not in ROLES:
                raise PartyError(f"role {role!r} of {self.party_id!r}: one of {', '.join(ROLES)}")
        if self.name is not None and len(self.name) > TEXT_LENGTH_MAX:
            raise PartyError(f"name of {self.party_id!r}: longer than {TEXT_LENGTH_MAX} characters")
        object.__setattr__(self, "roles", tuple(sorted(set(self.roles))))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.party_id, "country": self.country, "roles": list(self.roles)}
        if self.name is not None:
            out["name"] = self.name
        return out


def parties_from_json(text: str, *, source: str = "parties file") -> list[RegisteredParty]:
    """Parties from JSON: a list of {"id", "country", "roles", "name"?} objects
    (examples/parties.json), or {"parties": [...]}."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise PartyError(f"{source}: not JSON: {error}") from None
    if isinstance(data, dict):
        data = data.get("parties")
    if not isinstance(data, list):
        raise PartyError(f"{source}: must be a JSON list of parties (or {{\"parties\": [...]}})")
    if len(data) > PARTIES_MAX:
        raise PartyError(f"{source}: more than {PARTIES_MAX} parties")
    out = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict) or set(entry) - {"id", "country", "roles", "name"}:
            raise PartyError(f"{source}: party #{index} must be an object with id, country, roles and "
                             f"optionally name, not {json.dumps(entry)[:80]}")
        roles = entry.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise PartyError(f"{source}: party #{index} ({entry.get('id')!r}): roles must be a list of "
                             f"{', '.join(ROLES)}")
        try:
            out.append(RegisteredParty(str(entry.get("id", "")), str(entry.get("country", "")), tuple(roles),
                                       entry.get("name")))
        except PartyError as error:
            raise PartyError(f"{source}: party #{index}: {error}") from None
    return out


def named_parties(event: Any) -> list[tuple[str, str, str | None]]:
    """(field, party id, country or None) of every party a report names, the
    reporter first."""
    out: list[tuple[str, str, str | None]] = [("reporter", event.reporter, None)]
    for field in ("exporter", "consignee", "end_user"):
        value = getattr(event, field, None)
        if isinstance(value, Party):
            out.append((f"{field}.id", value.id, value.country))
    if isinstance(event, LicenseGranted):
        out.append(("exporter", event.exporter, None))
        out.extend((f"end_users.{i}", party_id, None) for i, party_id in enumerate(event.end_users))
    return out


def party_problems(event: Any, registry: Mapping[str, RegisteredParty]) -> list[FieldProblem]:
    """Why a report cannot be taken from or about these parties: each party it
    names must be registered, in the country the report says.  An empty
    registry refuses nothing (module docstring)."""
    if not registry:
        return []
    problems = []
    for field, party_id, country in named_parties(event):
        registered = registry.get(party_id)
        if registered is None:
            problems.append(FieldProblem(
                field=field, value=shown_value(party_id),
                message="is not a registered party; the operator registers parties with "
                        "`ledger parties add` (docs/COMPLIANCE.md, \"Who may say what\")"))
        elif country is not None and country != registered.country:
            problems.append(FieldProblem(
                field=field.removesuffix(".id") + ".country", value=shown_value(country),
                message=f"party {party_id!r} is registered in {registered.country}, not {country}; "
                        f"correct the report, or the operator corrects the registry"))
    return problems


def by_id(parties: Iterable[RegisteredParty]) -> dict[str, RegisteredParty]:
    return {p.party_id: p for p in parties}
