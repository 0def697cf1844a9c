"""Deadlines and tolerances the alert rules apply.

Stated in a TOML file (``--policy FILE`` or ``LEDGER_POLICY``, read by
consumers/bootstrap.py ``load_policy``); every key is optional and falls
back to the documented default below (docs/POLICY.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["Policy", "PolicyError", "policy_from_document"]

DAYS_MAX = 3660


class PolicyError(ValueError):
    pass


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    end_use_reporting_days: int = Field(
        default=90,
        ge=0,
        le=DAYS_MAX,
        description="Days after a receipt by which the holder must account for it "
        "(consumed, re-exported, returned, lost or declared on hand).",
    )
    transit_days_max: int = Field(
        default=30,
        ge=0,
        le=DAYS_MAX,
        description="Days after a shipment by which the consignee must report receipt.",
    )
    return_confirmation_days: int = Field(
        default=30,
        ge=0,
        le=DAYS_MAX,
        description="Days after a ship-back by which its addressee must confirm receipt.",
    )

    licensing_authorities: dict[str, str] = Field(
        default_factory=dict,
        description="The licensing authority of each country, by party id (JP = \"JP-METI\"): "
        "only it grants, amends and revokes that country's licenses and confirms ship-back "
        "exemptions.  Empty: license reports are taken from anyone (as before issue 15).",
    )

    @field_validator("licensing_authorities")
    @classmethod
    def _authorities(cls, value: dict[str, str]) -> dict[str, str]:
        from ledger.events import COUNTRY_CODES, ID_LENGTH_MAX

        for country, party_id in value.items():
            if country not in COUNTRY_CODES:
                raise ValueError(f"{country!r} is not an ISO 3166-1 alpha-2 country code (e.g. JP, KR)")
            if not isinstance(party_id, str) or not 0 < len(party_id) <= ID_LENGTH_MAX:
                raise ValueError(f"the authority of {country} must be a party id, not {party_id!r}")
        parties = list(value.values())
        for party_id in parties:
            if parties.count(party_id) > 1:
                raise ValueError(f"{party_id!r} is named for more than one country; an authority licenses one")
        return value

    def authority_country(self, party_id: str) -> str | None:
        """The country whose licensing authority ``party_id`` is, or None."""
        for country, authority in self.licensing_authorities.items():
            if authority == party_id:
                return country
        return None

    @property
    def end_use_reporting(self) -> timedelta:
        return timedelta(days=self.end_use_reporting_days)

    @property
    def transit_max(self) -> timedelta:
        return timedelta(days=self.transit_days_max)

    @property
    def return_confirmation(self) -> timedelta:
        return timedelta(days=self.return_confirmation_days)


def policy_from_document(data: Mapping[str, Any], *, source: str) -> Policy:
    """The policy a parsed policy document (TOML's tables) states; ``source``
    names it in errors.  Reading the file and the environment is the
    composition root's (consumers/bootstrap.py ``load_policy``)."""
    try:
        body = data.get("policy", data)
        if "policy" in data and "licensing_authorities" in data:
            # [policy] for the deadlines beside a top-level [licensing_authorities]
            # table: both count (TOML puts the latter outside [policy]).
            if "licensing_authorities" in body:
                raise PolicyError(f"{source}: licensing_authorities is given twice, "
                                  f"in [policy] and at the top level; keep one")
            body = {**body, "licensing_authorities": data["licensing_authorities"]}
        return Policy.model_validate(body)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))} = {e.get('input')!r}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise PolicyError(f"{source}: {problems}") from None
