"""Deadlines and tolerances the alert rules apply.

Read from a TOML file (``--policy FILE`` or ``LEDGER_POLICY``); every key is
optional and falls back to the documented default below (docs/POLICY.md).
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["Policy", "PolicyError", "load_policy", "POLICY_ENV"]

POLICY_ENV = "LEDGER_POLICY"
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

    @property
    def end_use_reporting(self) -> timedelta:
        return timedelta(days=self.end_use_reporting_days)

    @property
    def transit_max(self) -> timedelta:
        return timedelta(days=self.transit_days_max)

    @property
    def return_confirmation(self) -> timedelta:
        return timedelta(days=self.return_confirmation_days)


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy from ``path``, else from $LEDGER_POLICY, else the defaults."""
    if path is None:
        path = os.environ.get(POLICY_ENV) or None
    if path is None:
        return Policy()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PolicyError(f"policy file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"policy file {str(path)!r} is not valid TOML: {error}") from None
    try:
        return Policy.model_validate(data.get("policy", data))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))} = {e.get('input')!r}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise PolicyError(f"policy file {str(path)!r}: {problems}") from None
