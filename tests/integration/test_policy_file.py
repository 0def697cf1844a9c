"""The policy file, read by the composition root (consumers.bootstrap.load_policy)."""

from __future__ import annotations

import pytest


def test_the_policy_file_names_the_licensing_authorities_beside_or_without_a_policy_table(tmp_path):
    from consumers.bootstrap import load_policy
    from ledger.policy import PolicyError

    alone = tmp_path / "alone.toml"
    alone.write_text('[licensing_authorities]\nJP = "JP-METI"\n')
    beside = tmp_path / "beside.toml"
    beside.write_text('[policy]\nend_use_reporting_days = 60\n\n[licensing_authorities]\nKR = "KR-MOTIE"\n')
    assert load_policy(alone).licensing_authorities == {"JP": "JP-METI"}
    assert (load_policy(beside).end_use_reporting_days, load_policy(beside).licensing_authorities) == (
        60, {"KR": "KR-MOTIE"})

    bad = tmp_path / "bad.toml"
    bad.write_text('[licensing_authorities]\nZZ = "ZZ-NOBODY"\n')
    with pytest.raises(PolicyError, match="'ZZ' is not an ISO 3166-1 alpha-2 country code"):
        load_policy(bad)
