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
        lots = list(csv.DictReader(f))
    for lot in lots:
        assert lot["license_id"] in text.replace(" ", ""), lot["lot_id"]
    # The dashboard's chart of each lot's quantities over time is on paper too:
    # its caption, its legend with the lot's last figures, and its lines in their colours.
    for lot in lots:
        assert f"{lot['lot_id']} ({lot['trace_id']}), in {lot['unit']}" in text, lot["lot_id"]
        assert f"shipped {int(lot['shipped']):,}" in text, lot["lot_id"]
    assert text.count("latest") == len(lots)
    # And the lineage drawn as the dashboard draws it: each hop labelled with its quantity.
    for lot in lots:
        if lot["origin"] == "re_export":
            assert f"re-export {int(lot['shipped']):,} {lot['unit']}" in text, lot["lot_id"]
    for name, colour in (("shipped", (0x3B, 0x6F, 0xB6)), ("consumed", (0x8A, 0x5C, 0xC2))):
        assert painted(pdf, colour) > 0, name


def painted(pdf: Path, colour: tuple[int, int, int], *, tolerance: int = 24) -> int:
    """How many pixels of the printed pages (pdftoppm, 50 dpi) are near ``colour``."""
    pixels = 0
    pages = subprocess.run(["pdftoppm", "-r", "50", str(pdf)], capture_output=True, check=True).stdout
    while pages:  # one binary PPM per page, one after the other: "P6 WIDTH HEIGHT 255" and RGB bytes
        header = re.match(rb"P6\s+(\d+)\s+(\d+)\s+255\s", pages)
        assert header is not None, pages[:20]
        start, size = header.end(), int(header.group(1)) * int(header.group(2)) * 3
        body, pages = pages[start:start + size], pages[start + size:]
        for i in range(0, len(body), 3):
            if all(abs(body[i + k] - colour[k]) <= tolerance for k in range(3)):
                pixels += 1
    return pixels


# What an auditor must find on the printed workbook, sheet by sheet: each
# sheet's header row with every one of its columns, on one line of one page.
WORKBOOK_SHEETS_PRINTED = {
    "events": ("event_id", "type", "status", "occurred_at", "reporter", "lot_id", "amount", "unit",
               "license_id", "digest"),
    "balances": ("lot_id", "holder", "shipped", "received", "consumed", "re_exported", "on_hand",
                 "unaccounted", "license_id"),
    "totals": ("trace_id", "shipped", "on_hand", "unaccounted", "balance_check"),
    "alerts": ("severity", "kind", "lot_id", "party", "quantity", "due_at", "message", "event_ids"),
    "alert_history": ("at", "transition", "kind", "lot_id", "party", "due_at", "message"),
}
LIBREOFFICE_PROFILE = Path.home() / ".cache" / "traceability-ledger" / "libreoffice-profile"
LIBREOFFICE_TIMEOUT_S = 120  # its first start makes a profile (about 6 s here), later ones about 2 s


def test_the_workbook_prints_every_column_an_auditor_needs_on_a4_landscape_through_libreoffice(ledger, tmp_path):
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.fail("no soffice: apt-get install libreoffice-calc-nogui (make test does)", pytrace=False)
    assert ledger("demo").returncode == 0
    out = tmp_path / "audit"
    assert ledger("audit", "--trace", "TR-PR-2019-0003", "--out", str(out), "--format", "xlsx").returncode == 0
    # LibreOffice headless, as an auditor's office suite prints it (a profile
    # of our own, kept between runs, so no user's settings change the page).
    subprocess.run([soffice, f"-env:UserInstallation={LIBREOFFICE_PROFILE.as_uri()}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), str(out / "audit.xlsx")],
                   capture_output=True, check=True, timeout=LIBREOFFICE_TIMEOUT_S)
    pdf = tmp_path / "audit.pdf"
    # Every word within the page, every page A4 landscape (words_on_pages checks the size).
    assert all(x_max <= width + EDGE_PT for width, _x, x_max, _w in words_on_pages(pdf))
    pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")
    headers = [next((line.split() for line in page.splitlines() if line.strip()), []) for page in pages]
    for sheet, needed in WORKBOOK_SHEETS_PRINTED.items():
        assert any(set(needed) <= set(header) for header in headers), (sheet, headers)
    # The figures too: the 700 L re-exported to Xi'an, and the alert about it.
    text = "\f".join(pages)
    assert "PR-0003-XA" in text and "premise_deviation" in text and "CN-SEMI-XIAN" in text
    # Fitted to the width, the whole workbook is a few pages, not a few columns per page.
    assert len([p for p in pages if p.strip()]) <= 12
    png = tmp_path / "balances"
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "3", "-l", "3", str(pdf), str(png)], check=True,
                   timeout=LIBREOFFICE_TIMEOUT_S)
    assert list(tmp_path.glob("balances*.png"))
