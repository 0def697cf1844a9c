"""`ledger demo`: the 2019 story (docs/STORY.md), as a compliance officer sees it.

The demo records examples/story-2019.jsonl on a fresh embedded log, projects
it, and prints the whereabouts, the standing alerts and a replay check.
"""

from __future__ import annotations

import json
from pathlib import Path

from builders import exported, payload, write_jsonl

STORY = Path(__file__).resolve().parents[2] / "examples" / "story-2019.jsonl"


def story_reports() -> int:
    return sum(1 for line in STORY.read_text(encoding="utf-8").splitlines() if line.strip())

# The columns of one lot in `ledger whereabouts --json` (and the store's lots table).
LOT_KEYS = {
    "trace_id", "lot_id", "parent_lot_id", "origin", "opened_by", "item_id", "item_name",
    "classification", "unit", "shipper", "shipper_country", "holder", "holder_country",
    "end_user", "license_id", "shipped_at", "shipped", "received", "in_transit", "consumed",
    "re_exported", "returned", "lost", "on_hand", "declared_on_hand", "declared_at", "since",
    "unaccounted",
}  # fmt: skip
ALERT_KEYS = {
    "alert_id", "due_at", "kind", "severity", "trace_id", "lot_id", "party", "quantity", "unit",
    "message", "event_ids", "since",
}  # fmt: skip


def test_demo_surfaces_the_2019_story(ledger, tables):
    demo = ledger("demo")
    assert demo.returncode == 0, demo.stderr
    n = story_reports()
    assert f"{n} lines: {n} recorded, 0 already recorded (no-op), 0 conflicting, 0 rejected" in demo.stdout
    lots_table, alerts_table, *_ = tables(demo.stdout)
    lots = {row["LOT"]: row for row in lots_table}

    # Japan exported 100 units of hydrogen fluoride to KR-SEMI; 70 were
    # reported used, nobody answered for the other 30.
    assert lots["HF-0001"]["HOLDER"] == "KR-SEMI (KR)"
    assert lots["HF-0001"]["UNIT"] == "unit"
    assert lots["HF-0001"]["CONSUMED"] == "70"
    assert lots["HF-0001"]["UNACCOUNTED"] == "30"

    # The ship-back "as defective": 39,650 kg declared, 120 kg seen arriving.
    assert lots["HF-0002-R1"]["FROM"] == "HF-0002 (ship-back)"
    assert lots["HF-0002-R1"]["HOLDER"] == "JP-FLUORO (JP)"
    assert lots["HF-0002-R1"]["SHIPPED"] == "39,650"
    assert lots["HF-0002-R1"]["RECEIVED"] == "120"
    assert lots["HF-0002-R1"]["IN TRANSIT"] == "39,530"

    # The photoresist licensed for KR-SEMI went on to its fabs in China:
    # 700 L to Xi'an (Shaanxi), 300 L to Wuxi (Jiangsu).
    for lot, holder, amount in (("PR-0003-XA", "CN-SEMI-XIAN (CN)", "700"),
                                ("PR-0003-WX", "CN-SEMI-WUXI (CN)", "300")):
        assert lots[lot]["FROM"] == "PR-0003 (re-export)"
        assert lots[lot]["HOLDER"] == holder
        assert (lots[lot]["UNIT"], lots[lot]["RECEIVED"]) == ("L", amount)

    alerts = {(row["KIND"], row["LOT"]): row for row in alerts_table}
    assert alerts[("unaccounted", "HF-0001")]["PARTY"] == "KR-SEMI"
    assert alerts[("unaccounted", "HF-0001")]["QUANTITY"] == "30 unit"
    assert alerts[("return_unconfirmed", "HF-0002-R1")]["PARTY"] == "JP-FLUORO"
    assert alerts[("return_unconfirmed", "HF-0002-R1")]["QUANTITY"] == "39,530 kg"
    assert "39530 kg unconfirmed" in alerts[("return_unconfirmed", "HF-0002-R1")]["WHAT"]

    # Rebuilding every projection from the log gives the same bytes.
    assert demo.stdout.rstrip().endswith("replay: identical")


def test_demo_twice_is_a_no_op_the_second_time(ledger):
    first = ledger("demo")
    rows_after_first = ledger.event_rows()
    fingerprint_after_first = ledger.fingerprint()
    second = ledger("demo")
    assert (first.returncode, second.returncode) == (0, 0), second.stderr

    # Every report is already in the log: nothing is recorded twice.
    n = story_reports()
    assert f"{n} lines: 0 recorded, {n} already recorded (no-op), 0 conflicting, 0 rejected" in second.stdout
    assert ledger.event_rows() == rows_after_first == (n, n)
    assert ledger.fingerprint() == fingerprint_after_first

    # The same whereabouts and alerts, line for line (only the summary differs).
    def without_summary(out: str) -> list[str]:
        return [line for line in out.splitlines() if f"{n} lines:" not in line]

    assert without_summary(first.stdout) == without_summary(second.stdout)


def test_demo_again_on_its_own_home_with_reports_added_after_it_is_still_a_no_op(ledger):
    # The README's order: make demo, then ingest the example of bad reports (its good lines are kept), then demo.
    assert ledger("demo").returncode == 0
    ledger("ingest", str(STORY.parent / "bad-reports.jsonl"))
    rows = ledger.event_rows()
    again = ledger("demo")
    assert again.returncode == 0, again.stderr
    assert ledger.event_rows() == rows


def test_demo_refuses_a_home_that_holds_other_reports(ledger, tmp_path):
    # A home in use: one report of someone's own, in an open registry.
    own = write_jsonl(tmp_path / "own.jsonl", payload(exported("OWN-1", "1")))
    assert ledger("ingest", str(own)).returncode == 0
    rows = ledger.event_rows()

    refused = ledger("demo")
    assert refused.returncode == 1
    assert "already holds reports that are not the demo's story" in refused.stderr
    assert "LEDGER_HOME=$(mktemp -d) ledger demo" in refused.stderr
    assert ledger.event_rows() == rows  # nothing added to it
    assert ledger("parties", "list", "--json").stdout.strip() in ("[]", "")  # the registry still open


def test_json_output_is_stable_for_scripts(ledger):
    assert ledger("demo").returncode == 0
    out = {}
    for args in (("whereabouts", "--json"), ("alerts", "--json"),
                 ("whereabouts", "HF-0001", "--as-of", "2019-09-01", "--json")):
        once, twice = ledger(*args), ledger(*args)
        assert once.returncode == 0, once.stderr
        assert once.stdout == twice.stdout, args  # same bytes on every run
        out[args[0] if len(args) == 2 else "early"] = json.loads(once.stdout)

    where = out["whereabouts"]
    assert set(where) == {"as_of", "known_at", "lots"}
    assert (where["as_of"], where["known_at"]) == (None, None)
    assert all(set(lot) == LOT_KEYS for lot in where["lots"])
    by_lot = {lot["lot_id"]: lot for lot in where["lots"]}
    # Quantities are exact decimal strings, never JSON numbers.
    assert (by_lot["HF-0001"]["unaccounted"], by_lot["HF-0001"]["unit"]) == ("30", "unit")
    assert by_lot["HF-0002-R1"]["in_transit"] == "39530"
    assert (by_lot["PR-0003-XA"]["holder"], by_lot["PR-0003-XA"]["received"]) == ("CN-SEMI-XIAN", "700")
    assert (by_lot["PR-0003-WX"]["holder"], by_lot["PR-0003-WX"]["received"]) == ("CN-SEMI-WUXI", "300")

    alerts = out["alerts"]
    assert set(alerts) == {"as_of", "known_at", "alerts"}
    assert all(set(alert) == ALERT_KEYS for alert in alerts["alerts"])
    kinds = {(a["kind"], a["lot_id"]): a for a in alerts["alerts"]}
    assert kinds[("unaccounted", "HF-0001")]["quantity"] == "30"
    assert kinds[("return_unconfirmed", "HF-0002-R1")]["quantity"] == "39530"

    # As of 2019-09-01 the 90-day end-use deadline for HF-0001 had not passed.
    early = out["early"]
    assert early["as_of"] == "2019-09-01T23:59:59.999999+00:00"
    assert [lot["unaccounted"] for lot in early["lots"]] == ["0"]


def test_the_replace_command_replay_suggests_adopts_the_same_rebuild(ledger, tmp_path):
    """`ledger replay --policy p.toml` that differs suggests a --replace that
    carries the policy (and the home): run as printed, it adopts that rebuild."""
    import os
    import re
    import subprocess

    from tests.e2e.conftest import LEDGER

    assert ledger("demo").returncode == 0
    policy = tmp_path / "sixty days.toml"  # a path a shell must have quoted
    policy.write_text('end_use_reporting_days = 60\n[licensing_authorities]\nJP = "JP-METI"\nKR = "KR-MOTIE"\n')
    differs = ledger("replay", "--policy", str(policy))
    assert differs.returncode == 1
    [suggested] = re.findall(r"run `([^`]+)` to adopt", differs.stdout)
    assert "--policy " in suggested and "sixty days.toml" in suggested
    assert suggested.startswith(f"LEDGER_HOME={ledger.home} ledger replay --replace")

    env = {**ledger.env, "PATH": f"{LEDGER.parent}{os.pathsep}{ledger.env.get('PATH', '')}"}
    env.pop("LEDGER_HOME")  # what the printed command says is all it needs
    adopted = subprocess.run(["bash", "-c", suggested], capture_output=True, text=True, env=env, timeout=120)
    assert adopted.returncode == 1, adopted.stderr  # it differed, and is replaced
    assert "live store replaced by the rebuilt one" in adopted.stdout
    assert ledger("replay", "--policy", str(policy)).stdout.rstrip().endswith("replay: identical")


def test_a_conflicting_line_is_exit_0_with_the_first_version_used_as_help_and_readme_say(ledger, tmp_path):
    """Same reporter and event id, other content: recorded, not used, alerted;
    exit 0 (the line is not refused).  The help and the README say exactly that."""
    assert ledger("demo").returncode == 0
    story = (Path(__file__).resolve().parents[2] / "examples" / "story-2019.jsonl").read_text().splitlines()
    [line] = [s for s in story if '"semi-use-2019-0820-001"' in s]
    report = json.loads(line)
    report["quantity"]["amount"] = "75"
    del report["recorded_at"]  # recorded now: after the first version
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps(report) + "\n")

    result = ledger("ingest", "--json", str(other))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["conflicts"] == 1
    [lot] = json.loads(ledger("whereabouts", "HF-0001", "--json").stdout)["lots"]
    assert lot["consumed"] == "70"  # the first recorded version is used
    alerts = json.loads(ledger("alerts", "--kind", "conflicting_report", "--json").stdout)["alerts"]
    assert any("semi-use-2019-0820-001" in a["message"] for a in alerts)

    said = " ".join(ledger("ingest", "--help").stdout.split("exit status:", 1)[1].split())
    assert ("0 every line recorded (or already recorded). A conflict is exit 0 too: a line with the same "
            "reporter and event_id as a recorded report but other content is recorded, the first recorded "
            'version is used, and the conflict is a conflicting_report alert and, in --json, "conflicts";') in said
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert ("A conflict is exit 0: a line with the event id of a recorded report but other content is recorded, "
            "the first recorded version is used, and the conflict is a `conflicting_report` alert and, in "
            "`--json`, `conflicts`.") in readme
