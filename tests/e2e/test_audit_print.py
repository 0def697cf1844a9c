"""`ledger audit`'s HTML report on paper: printed by a real browser (headless
Chromium) to A4 landscape, nothing an auditor needs is cut off.

Test names contain `browser`: they need Debian's chromium and poppler-utils.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from services.browser import BrowserMissing, print_to_pdf

A4_LANDSCAPE_PT = (841.92, 594.96)
EDGE_PT = 1.0  # a word may touch the page's edge by rounding, never cross it


def words_on_pages(pdf: Path) -> list[tuple[float, float, float, str]]:
    """(page width, x min, x max, word) of every word pdftotext finds."""
    if shutil.which("pdftotext") is None:
        pytest.fail("no pdftotext: apt-get install poppler-utils (make test does)", pytrace=False)
    xml = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    found = []
    width = 0.0
    for line in xml.splitlines():
        if (page := re.search(r'<page width="([\d.]+)" height="([\d.]+)"', line)) is not None:
            width, height = float(page.group(1)), float(page.group(2))
            assert (round(width), round(height)) == tuple(round(x) for x in A4_LANDSCAPE_PT), (width, height)
        elif (word := re.search(r'xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)<', line)):
            found.append((width, float(word.group(1)), float(word.group(2)), word.group(3)))
    return found


def test_browser_prints_the_audit_report_on_a4_landscape_with_no_column_cut_off(ledger, tmp_path):
    assert ledger("demo").returncode == 0
    out = tmp_path / "audit"
    assert ledger("audit", "--trace", "TR-PR-2019-0003", "--out", str(out)).returncode == 0
    try:
        pdf = print_to_pdf(out / "report.html", tmp_path / "report.pdf")
    except BrowserMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    words = words_on_pages(pdf)
    text = " ".join(w for *_box, w in words)

    # Nothing runs off the right edge of any page.
    overflowing = [(w, x_max, width) for width, _x_min, x_max, w in words if x_max > width + EDGE_PT]
    assert overflowing == []
    # The columns an auditor lost on paper before are there, figures and all.
    for header in ("on_hand", "unaccounted", "license_id", "digest"):
        assert header in text, header
    with (out / "events.csv").open(newline="", encoding="utf-8") as f:
        events = list(csv.DictReader(f))
    for event in events:  # every report's digest, at least its first line
        assert event["digest"][:10] in text.replace(" ", ""), event["event_id"]
    with (out / "balances.csv").open(newline="", encoding="utf-8") as f:
        for lot in csv.DictReader(f):
            assert lot["license_id"] in text.replace(" ", ""), lot["lot_id"]
