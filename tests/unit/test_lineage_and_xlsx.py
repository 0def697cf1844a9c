"""The lineage tree of a trace (the XLSX writer of the audit export, which
writes files: tests/integration/test_xlsx_writer.py)."""

from __future__ import annotations

import pytest
from builders import exported, re_exported, received, returned, versions
from ledger.account import build_account
from ledger.lineage import build_lineage, lineage_dict, render_lineage
from projections.rows import LOT_COLUMNS, lot_row


def rows_of(*reports):
    account = build_account("TR-1", versions(*reports))
    return [dict(zip(LOT_COLUMNS, lot_row(account.lots[k]))) for k in sorted(account.lots)]


def test_the_tree_runs_from_the_export_to_every_re_export_and_ship_back_in_shipment_order():
    rows = rows_of(
        exported("L1", "100"), received("L1", "100"),
        returned("L1", "L1-R", "5", at="2019-09-03"),
        re_exported("L1", "L1-CN", "30", at="2019-09-01"),
        received("L1-CN", "30", by="CN-SEMI-XIAN", at="2019-09-05"),
        re_exported("L1-CN", "L1-VN", "10", by="CN-SEMI-XIAN", to="VN-FAB", at="2019-09-10"),
    )
    [root] = build_lineage(rows)
    tree = lineage_dict(root)
    assert [c["lot_id"] for c in tree["children"]] == ["L1-CN", "L1-R"]  # 1 Sept before 3 Sept
    assert [c["lot_id"] for c in tree["children"][0]["children"]] == ["L1-VN"]
    # Each node carries its account: L1 received 100, 30 re-exported, 5 returned, 65 on hand.
    assert (tree["received"], tree["re_exported"], tree["returned"], tree["on_hand"]) == ("100", "30", "5", "65")

    lines = render_lineage([root])
    assert lines[0].startswith("L1  export  JP-FLUORO (JP) -> KR-SEMI (KR)  HF-UHP")
    assert lines[2].startswith("├─ L1-CN  re-export  KR-SEMI (KR) -> CN-SEMI-XIAN (CN)")
    assert lines[4].startswith("│  └─ L1-VN  re-export  CN-SEMI-XIAN (CN) -> VN-FAB (VN)")
    assert lines[6].startswith("└─ L1-R  ship-back  KR-SEMI (KR) -> JP-FLUORO (JP)")
    assert "shipped 30, in transit 0, received 30, consumed 0, re-exported 10" in lines[3]


def test_two_exporters_traces_that_each_hold_a_lot_LOT_1_are_two_trees():
    # JP-FLUORO's trace and US-CHEM's trace each name their first lot "LOT-1";
    # each re-exports part of it.  Asked about "LOT-1", the ledger draws both.
    first = [dict(r, trace_id="T-A") for r in rows_of(
        exported("LOT-1", "100"), received("LOT-1", "100"),
        re_exported("LOT-1", "LOT-1-CN", "30", at="2019-09-01"))]
    second = [dict(r, trace_id="T-B") for r in rows_of(
        exported("LOT-1", "50", at="2019-07-01", exporter="US-CHEM"), received("LOT-1", "50"),
        re_exported("LOT-1", "LOT-1-VN", "20", to="VN-FAB", at="2019-09-02"))]
    roots = build_lineage(first + second)
    assert [(r.row["trace_id"], r.lot_id, [c.lot_id for c in r.children]) for r in roots] == [
        ("T-A", "LOT-1", ["LOT-1-CN"]), ("T-B", "LOT-1", ["LOT-1-VN"])]


def test_a_lot_whose_parent_is_missing_or_itself_becomes_a_root():
    rows = [{"lot_id": "A", "parent_lot_id": "GONE"}, {"lot_id": "B", "parent_lot_id": "B"}]
    assert sorted(n.lot_id for n in build_lineage(rows)) == ["A", "B"]
