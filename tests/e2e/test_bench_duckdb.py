"""The DuckDB baseline (bench/duckdb_baseline.py, issue 18) at a tiny size: its
SQL accounts equal the ledger's, lot by lot.

Two histories: the generator's ``tiny`` one (about 4,000 reports, every way of
going missing the generator plants), and a hand-written trace that exercises
the rules the generator never does -- corrections, retractions and reports
refused because the reporter is not the holder or the unit's dimension
differs, a second opener of one lot, a re-export by someone who does not hold
the lot, one event id reported in two traces, a correction of an export.
No timing is asserted: the figures are for BENCHMARKS.md, not for CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

from bench.duckdb_baseline import compare_lots  # noqa: E402

SEED = 1
RUN_TIMEOUT_S = 300

EXPORTER = {"id": "JP-EXP-001", "country": "JP"}
CONSIGNEE = {"id": "KR-CNS-001", "country": "KR"}
OTHER = {"id": "KR-CNS-002", "country": "KR"}
DOWNSTREAM = {"id": "VN-DWN-001", "country": "VN"}
HF = {"id": "HF-UHP", "name": "hydrogen fluoride", "classification": "AG 1C350.25"}
RESIST = {"id": "EUV-PR", "name": "EUV photoresist", "classification": "Wassenaar 3C006"}


def baseline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.duckdb_baseline", *args, "--seed", str(SEED)],
                          cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def test_duckdb_agrees_with_the_ledger_on_every_lot_of_the_tiny_history(tmp_path: Path) -> None:
    done = baseline("--size", "tiny", "--data", str(tmp_path), "--repeat", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / f"results-tiny-seed{SEED}-duckdb.json").read_text())
    check = result["check"]
    assert check["match"] is True, check
    assert check["lots_compared"] == check["lots_equal"] == check["lots_ledger"] > 400
    assert check["digest_ties_count"] == check["digest_undecided_count"] == 0
    # Both sides were measured, and the ratios are there for BENCHMARKS.md.
    assert result["duckdb"]["cpu_s"] > 0 and result["ledger"]["replay_cpu_s"] > 0
    assert result["ratios"]["ledger_replay_cpu_vs_duckdb"] > 0
    assert result["ledger"]["ingest"]["rejected_count"] == 0


def _report(lines: list[dict[str, Any]], event_type: str, event_id: str, day: int, reporter: str,
            lot_id: str, *, trace_id: str = "TR-EDGE-1", recorded_day: int | None = None,
            **body: Any) -> dict[str, Any]:
    event = {"type": event_type, "event_id": event_id,
             "occurred_at": f"2019-03-{day:02d}T10:00:00+09:00",
             "recorded_at": f"2019-03-{recorded_day or day + 1:02d}T10:00:00+09:00",
             "reporter": reporter, "trace_id": trace_id, "lot_id": lot_id, **body}
    lines.append(event)
    return event


def _q(amount: str, unit: str) -> dict[str, str]:
    return {"amount": amount, "unit": unit}


def edge_history() -> list[dict[str, Any]]:
    h: list[dict[str, Any]] = []
    exp, cns = EXPORTER["id"], CONSIGNEE["id"]
    # Japan exports 100 kg of hydrogen fluoride; the export is corrected to 110 kg.
    _report(h, "exported", "E-01", 1, exp, "L1", exporter=EXPORTER, consignee=CONSIGNEE, item=HF,
            quantity=_q("100", "kg"))
    _report(h, "corrected", "E-02", 2, exp, "L1", corrected_event_id="E-01", quantity=_q("110", "kg"),
            reason="typo")
    # Receipts: 60,000 g (converted to 60 kg), 50 kg; one by a party that
    # does not hold the lot and one in litres are refused.
    _report(h, "received", "E-03", 4, cns, "L1", quantity=_q("60000", "g"))
    _report(h, "received", "E-04", 5, cns, "L1", quantity=_q("0.05", "t"))
    _report(h, "received", "E-05", 5, OTHER["id"], "L1", quantity=_q("40", "kg"))
    _report(h, "received", "E-06", 6, cns, "L1", quantity=_q("5", "L"))
    # Consumption of 10 kg corrected to 12 kg, then to 12.5 kg; a correction
    # by another party, one in litres and one to zero are refused.
    _report(h, "consumed", "E-07", 7, cns, "L1", quantity=_q("10", "kg"), end_use="wafer etching")
    _report(h, "corrected", "E-08", 8, cns, "L1", corrected_event_id="E-07", quantity=_q("12", "kg"), reason="r")
    _report(h, "corrected", "E-09", 9, cns, "L1", corrected_event_id="E-07", quantity=_q("12500", "g"), reason="r")
    _report(h, "corrected", "E-10", 10, OTHER["id"], "L1", corrected_event_id="E-07", quantity=_q("1", "kg"),
            reason="r")
    _report(h, "corrected", "E-11", 10, cns, "L1", corrected_event_id="E-07", quantity=_q("1", "L"), reason="r")
    _report(h, "corrected", "E-12", 10, cns, "L1", corrected_event_id="E-07", quantity=_q("0", "kg"), reason="r")
    # A consumption retracted by its reporter; one whose retraction by another party is refused.
    _report(h, "consumed", "E-13", 11, cns, "L1", quantity=_q("5", "kg"), end_use="wafer etching")
    _report(h, "retracted", "E-14", 12, cns, "L1", retracted_event_id="E-13", reason="wrong lot")
    _report(h, "consumed", "E-15", 11, cns, "L1", quantity=_q("3", "kg"), end_use="wafer etching")
    _report(h, "retracted", "E-16", 12, OTHER["id"], "L1", retracted_event_id="E-15", reason="not mine")
    # A retracted correction changes nothing.
    _report(h, "corrected", "E-17", 12, cns, "L1", corrected_event_id="E-15", quantity=_q("30", "kg"), reason="r")
    _report(h, "retracted", "E-18", 13, cns, "L1", retracted_event_id="E-17", reason="r")
    # Re-export of 20 kg to Vietnam: a child lot, received there as 0.02 t.
    _report(h, "re_exported", "E-19", 14, cns, "L1", quantity=_q("20", "kg"), child_lot_id="L1-R1",
            consignee=DOWNSTREAM)
    _report(h, "received", "E-20", 20, DOWNSTREAM["id"], "L1-R1", quantity=_q("0.02", "t"))
    _report(h, "consumed", "E-21", 22, DOWNSTREAM["id"], "L1-R1", quantity=_q("7500", "g"), end_use="etching")
    # A second report claiming to open L1-R1 is refused, and moves nothing.
    _report(h, "re_exported", "E-22", 15, cns, "L1", quantity=_q("9", "kg"), child_lot_id="L1-R1",
            consignee=DOWNSTREAM)
    # A re-export by a party that does not hold L1 opens nothing.
    _report(h, "re_exported", "E-23", 15, OTHER["id"], "L1", quantity=_q("4", "kg"), child_lot_id="L1-R2",
            consignee=DOWNSTREAM)
    # Ship-back of 5 kg, never confirmed.
    _report(h, "returned", "E-24", 16, cns, "L1", quantity=_q("5", "kg"), child_lot_id="L1-B1",
            consignee=EXPORTER, reason="defective")
    # Stock declared, then more used: the declaration explains less afterwards.
    _report(h, "stock_declared", "E-25", 17, cns, "L1", quantity=_q("40", "kg"))
    _report(h, "consumed", "E-26", 17, cns, "L1", quantity=_q("6", "kg"), end_use="wafer etching")
    _report(h, "lost", "E-27", 18, cns, "L1", quantity=_q("1.25", "kg"), evidence="police report")
    # One event id sent twice with different content: the first recorded counts.
    _report(h, "consumed", "E-28", 19, cns, "L1", quantity=_q("2", "kg"), end_use="etching", recorded_day=20)
    _report(h, "consumed", "E-28", 19, cns, "L1", quantity=_q("9", "kg"), end_use="etching", recorded_day=25)
    # Two versions of one event id recorded at one instant: the lower content
    # digest wins (the baseline rebuilds the digest in SQL for such ties).
    _report(h, "consumed", "E-29", 19, cns, "L1", quantity=_q("1", "kg"), end_use="etching", recorded_day=21)
    _report(h, "consumed", "E-29", 19, cns, "L1", quantity=_q("4", "kg"), end_use="etching", recorded_day=21)
    _report(h, "lost", "E-30", 19, cns, "L1", quantity=_q("0.5", "kg"), evidence="spill", recorded_day=21)
    _report(h, "lost", "E-30", 19, cns, "L1", quantity=_q("500", "g"), evidence="spill report",
            disposition="destroyed", recorded_day=21)
    # A trace in litres, whose stock declaration is corrected to zero.
    _report(h, "exported", "F-01", 1, exp, "M1", trace_id="TR-EDGE-2", exporter=EXPORTER, consignee=CONSIGNEE,
            item=RESIST, quantity=_q("10", "L"))
    _report(h, "received", "F-02", 3, cns, "M1", trace_id="TR-EDGE-2", quantity=_q("10", "L"))
    _report(h, "consumed", "F-03", 4, cns, "M1", trace_id="TR-EDGE-2", quantity=_q("2500", "mL"), end_use="litho")
    _report(h, "stock_declared", "F-04", 5, cns, "M1", trace_id="TR-EDGE-2", quantity=_q("7.5", "L"))
    _report(h, "corrected", "F-05", 6, cns, "M1", trace_id="TR-EDGE-2", corrected_event_id="F-04",
            quantity=_q("0", "L"), reason="all used")
    # An event id first recorded in trace 1 reported again in trace 2: not counted there.
    _report(h, "consumed", "E-26", 17, cns, "M1", trace_id="TR-EDGE-2", quantity=_q("1", "L"), end_use="litho",
            recorded_day=28)
    # One event id in two traces at one instant: the lower digest wins, whichever trace holds it.
    _report(h, "consumed", "X-01", 7, cns, "L1", quantity=_q("0.75", "kg"), end_use="etching", recorded_day=9)
    _report(h, "consumed", "X-01", 7, cns, "M1", trace_id="TR-EDGE-2", quantity=_q("0.25", "L"), end_use="litho",
            recorded_day=9)
    return h


def test_duckdb_agrees_on_the_rules_the_generator_never_exercises(tmp_path: Path) -> None:
    history = tmp_path / "edge.jsonl"
    history.write_text("".join(json.dumps(e) + "\n" for e in edge_history()))
    done = baseline("--file", str(history), "--data", str(tmp_path), "--repeat", "1", "--no-replay")
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    result = json.loads((tmp_path / f"results-edge-seed{SEED}-duckdb.json").read_text())
    check = result["check"]
    assert result["ledger"]["ingest"]["rejected_count"] == 0
    assert check["match"] is True, check
    assert check["lots_equal"] == 4  # L1, L1-R1, L1-B1 and M1; L1-R2 was never opened
    assert check["digest_ties_count"] == 3 and check["digest_undecided_count"] == 0


def test_a_difference_is_caught_and_named() -> None:
    # The check can fail: one quantity off by a gram, one lot on one side only.
    from decimal import Decimal

    lot = {"unit": "kg", "holder": "KR-CNS-001", "parent_lot_id": None, "origin": "export",
           "opened_by": "E-01", "since": None, **{c: "1" for c in (
               "shipped", "in_transit", "received", "consumed", "re_exported", "returned", "lost", "on_hand",
               "unaccounted")}, "declared_on_hand": None}
    duck = {("T", "L1"): {**lot, "consumed": Decimal("1.001")}, ("T", "L2"): dict(lot)}
    ledger = {("T", "L1"): dict(lot)}
    check = compare_lots(duck, ledger)
    assert check["match"] is False
    assert check["lots_differing"] == 1 and check["only_in_duckdb"] == [["T", "L2"]]
    assert check["first_differences"][0]["consumed"] == {"duckdb": "1.001", "ledger": "1"}
