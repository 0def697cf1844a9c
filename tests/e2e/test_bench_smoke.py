"""The benchmarks at a tiny size: the harness runs, and the ledger's alerts
equal the ones the generator planted.

The generator decides each trace's fate -- clean, or missing in one of the
ways the rules detect -- and derives the alerts that fate must raise from
its own quantities, without ledger code.  So this is a correctness check of
the whole pipeline (ingest, replay, alert rules, license premises) against
an independent account of about 500 traces.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

from bench.generate import FATES, data_paths, write  # noqa: E402
from bench.fuzz import main as fuzz_main  # noqa: E402
from bench.run import compare_alerts  # noqa: E402

SEED = 1
RUN_TIMEOUT_S = 300  # the whole tiny run takes seconds


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m bench.run all --size tiny`: generate, ingest, replay, query, latency."""
    data = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "all", "--size", "tiny", "--seed", str(SEED), "--data", str(data)],
        cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return data


def results(data: Path, figure: str) -> dict:
    return json.loads((data / f"results-tiny-seed{SEED}-{figure}.json").read_text())


def standing_in_store(store: Path, as_of: str) -> Counter:
    """The alerts standing at ``as_of``, read straight from the projection
    tables: for each alert its latest step due by then, unless it is zero."""
    # Stored times are fixed-width UTC text, so text order is time order.
    from projections.rows import ts
    from datetime import datetime

    when = ts(datetime.fromisoformat(as_of))
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT kind, lot_id, party, quantity, unit FROM alert_steps s WHERE due_at = "
            "(SELECT MAX(due_at) FROM alert_steps m WHERE m.alert_id = s.alert_id AND m.due_at <= ?)",
            (when,),
        ).fetchall()
    finally:
        db.close()
    return Counter((k, lot, party, _amount(q), unit or "") for k, lot, party, q, unit in rows
                   if q is None or Decimal(q) != 0)


def _amount(text: str | None) -> str:
    return "" if text is None else str(Decimal(text).normalize())


def test_every_planted_loss_is_alerted_and_nothing_else(tiny_run: Path) -> None:
    # The generator wrote the history and, beside it, what must go wrong.
    jsonl, expected_path = data_paths(tiny_run, "tiny", SEED)
    expected = json.loads(expected_path.read_text())
    want = Counter((k, lot, party, _amount(q), unit or "") for k, lot, party, q, unit in expected["alerts"])

    # Every way of going missing is in the history, and the expectation
    # covers each rule, not only the easy ones.
    assert all(expected["fates"].get(fate, 0) > 0 for fate in FATES), expected["fates"]
    assert {a[0] for a in want} == {
        "unaccounted", "transit_overdue", "short_receipt", "return_unconfirmed", "over_accounting",
        "premise_deviation", "license_missing", "license_invalid", "license_ceiling",
        "conflicting_report", "ship_back_exemption",
    }

    # After the replay, the projection holds exactly those alerts, with the
    # same lot, party and quantity: nothing missed, nothing invented.
    got = standing_in_store(tiny_run / f"home-tiny-seed{SEED}" / "projections.db", expected["check_clock"])
    assert sorted((want - got).elements()) == []
    assert sorted((got - want).elements()) == []

    # And the harness's own check, which every benchmark run reports, agrees.
    assert results(tiny_run, "replay")["alerts"]["match"] is True


def test_each_figure_is_measured_against_its_baseline(tiny_run: Path) -> None:
    ingest = results(tiny_run, "ingest")
    assert ingest["ledger"]["rejected"] == 0
    assert ingest["ledger"]["lines"] == ingest["events"]
    assert ingest["embedded_events_per_s"] > 0 and ingest["raw_sqlite_events_per_s"] > 0
    assert ingest["ratio_vs_raw"] > 0

    replay = results(tiny_run, "replay")
    assert replay["records"] == ingest["ledger"]["accepted"] + ingest["ledger"]["conflicts"]
    assert replay["dead_letters"] == 0
    assert replay["ratio_vs_floor"] > 0

    query = results(tiny_run, "query")["sqlite"]
    for figure in ("whereabouts_one_lot", "open_alerts_one_holder"):
        assert 0 < query[figure]["p50_ms"] <= query[figure]["p99_ms"]

    # Alert latency needs the Kafka projector; without it the figure says so.
    assert "state" in results(tiny_run, "latency")


def test_a_wrong_expectation_is_caught(tiny_run: Path) -> None:
    # The check can fail: drop one planted alert and change another's quantity.
    from projections.sqlite_store import SQLiteProjectionStore

    _jsonl, expected_path = data_paths(tiny_run, "tiny", SEED)
    expected = json.loads(expected_path.read_text())
    dropped = expected["alerts"].pop(0)
    changed = next(a for a in expected["alerts"] if a[3] is not None)
    right = changed[3]
    changed[3] = str(Decimal(right) + 1)
    store = SQLiteProjectionStore(tiny_run / f"home-tiny-seed{SEED}" / "projections.db")
    try:
        check = compare_alerts(expected, store)
    finally:
        store.close()
    assert check["match"] is False
    assert len(check["unexpected"]) == 2  # the dropped alert, and the changed one as the ledger has it
    assert len(check["missing"]) == 1  # the changed one as the wrong expectation has it
    assert check["missing"][0][:3] == tuple(changed[:3])
    assert dropped[0] in {u[0] for u in check["unexpected"]}


def test_the_generator_is_deterministic(tmp_path: Path) -> None:
    # One seed, one history, byte for byte, and one expectation.
    digests = []
    for run in ("a", "b"):
        jsonl, expected = tmp_path / f"{run}.jsonl", tmp_path / f"{run}.json"
        write(1500, 7, jsonl, expected)
        digests.append((hashlib.sha256(jsonl.read_bytes()).hexdigest(), expected.read_text()))
    assert digests[0] == digests[1]
    other = tmp_path / "c.jsonl"
    write(1500, 8, other, tmp_path / "c.json")
    assert hashlib.sha256(other.read_bytes()).hexdigest() != digests[0][0]


def test_alert_latency_under_load_on_the_history_clock_runs_and_sees_every_probe(tiny_run: Path) -> None:
    """`bench.run latency --rate ... --clock history` at a tiny size: a broker, the
    history-clock projector (bench/history_clock.py), load and probes."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "latency", "--size", "tiny", "--seed", str(SEED), "--data",
         str(tiny_run), "--rate", "200", "--seconds", "2", "--clock", "history", "--tag", "smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tiny_run / f"results-tiny-seed{SEED}-latency-smoke.json").read_text())
    assert result["state"] == "measured", result
    assert result["clock"] == "history"
    assert result["probes"]["sent"] > 0 and result["probes"]["unseen"] == 0
    assert result["report_to_alert_on_topic"]["n"] == result["probes"]["sent"]
    assert result["projector_totals"]["records"] >= result["load"]["reports_sent"]
    # Where the time goes: every probe cut at the projector's stamps, the
    # three legs adding up to its whole latency (means, in milliseconds).
    legs = result["where_the_time_goes"]
    assert {leg["n"] for leg in legs.values()} == {result["probes"]["sent"]}
    total_ms = sum(leg["mean_ms"] for leg in legs.values())
    assert abs(total_ms - result["report_to_alert_on_topic"]["mean_ms"]) < 1.0, (total_ms, legs)
    # And who used the machine's cores meanwhile.
    shares = result["cpu_during_load"]
    assert shares["projector_core_share"] > 0 and shares["sender_core_share"] > 0
    assert 0 < shares["machine_busy_share"] <= 1.0


def test_the_bench_command_runs_ledger_ingest_and_counts(tmp_path, capsys):
    # The bench command at a small size: the real CLI, five over-long lines.
    assert fuzz_main(["--records", "300", "--seed", "7", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ledger ingest: records tried 300" in out
    assert "ledger project: records tried 300" in out
    assert out.count("crashes 0; good lines lost 0; bad lines accepted 0") == 2
