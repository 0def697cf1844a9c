"""`ledger audit`'s HTML report on paper: printed by a real browser (headless
Chromium) to A4 landscape, nothing an auditor needs is cut off.

Test names contain `browser`: they need Debian's chromium and poppler-utils.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from services.browser import BrowserMissing, print_to_pdf

A4_LANDSCAPE_PT = (841.92, 594.96)
EDGE_PT = 1.0  # a word may touch the page's edge by rounding, never cross it
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
FLOWS_DPI = 110  # the flows chart's picture (docs/img/audit-report-flows.png)


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
    # And the dashboard's flows view: JP -> KR and KR -> CN, 1,000 L each way, no gap.
    assert "Flows between countries (2)" in text
    assert text.count("shipped 1,000 L received 1,000 L") == 2


def test_browser_prints_the_flows_between_countries_with_each_gap_marked_on_one_page(ledger, tmp_path):
    assert ledger("demo").returncode == 0
    out = tmp_path / "audit"
    assert ledger("audit", "--period", "2019", "--format", "html", "--out", str(out)).returncode == 0
    # What `ledger flows` counts for the same lots: the report draws the same flows.
    listed = ledger("flows", "--period", "2019", "-o", "csv")
    flows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert len(flows) == 6 and {f["unit"] for f in flows} == {"L", "unit", "t", "kg"}
    try:
        pdf = print_to_pdf(out / "report.html", tmp_path / "report.pdf")
    except BrowserMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    words = located_words(pdf)
    assert all(x_max <= A4_LANDSCAPE_PT[0] + EDGE_PT for _page, _x, _y, x_max, _y_max, _w in words)
    [(page, top)] = [(w[0], w[2]) for i, w in enumerate(words)
                     if w[5] == "Flows" and words[i + 1][5] == "between" and words[i + 2][5] == "countries"]
    [bottom] = [w[2] for i, w in enumerate(words)
                if w[0] == page and w[5] == "Where" and words[i + 1][5] == "the" and words[i + 2][5] == "quantity"]
    chart = " ".join(w[5] for w in words if w[0] == page and top <= w[2] < bottom)
    # Every flow on the one page, each figure in its own unit, each gap with its share.
    assert "Flows between countries (6)" in chart
    for f in flows:
        shipped, received = (f"{int(Decimal(f[k])):,} {f['unit']}" for k in ("shipped", "received"))
        assert f"{f['from']} → {f['to']} {f['item_id']} shipped {shipped} received {received}" in chart, f
        gap = Decimal(f["gap"])
        assert (f"gap {int(gap):,} {f['unit']} ({f['gap_percent']} %)" in chart) == (gap != 0), f
    assert re.findall(r"gap [\d,.]+ \w+", chart) == ["gap 50 t", "gap 39,530 kg"]  # KR -> CN, KR -> JP
    # On paper as on the dashboard: the bars in their colours, a row with a gap shaded.
    png = tmp_path / "flows.png"
    crop = picture(pdf, page, top, bottom, png)
    for name, colour, tolerance in (("shipped", (0x3B, 0x6F, 0xB6), 24), ("received", (0x2A, 0x9D, 0x8F), 24),
                                    ("gap shade", (0xFD, 0xEC, 0xEA), 4), ("gap", (0xC0, 0x39, 0x2B), 24)):
        assert painted_ppm(crop, colour, tolerance=tolerance) > 0, name
    if os.environ.get("LEDGER_UPDATE_DOCS_IMG") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, DOCS_IMG / "audit-report-flows.png")


def located_words(pdf: Path) -> list[tuple[int, float, float, float, float, str]]:
    """(page number, x min, y min, x max, y max, word) of every word pdftotext finds, in reading order."""
    xml = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    found, page = [], 0
    for line in xml.splitlines():
        if "<page " in line:
            page += 1
        elif (word := re.search(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<',
                                line)):
            found.append((page, *(float(word.group(k)) for k in range(1, 5)), html.unescape(word.group(5))))
    return found


def picture(pdf: Path, page: int, top_pt: float, bottom_pt: float, png: Path) -> bytes:
    """The part of ``page`` from ``top_pt`` down to ``bottom_pt``, as a PNG at
    ``png`` and returned as a PPM (pdftoppm's crop, FLOWS_DPI)."""
    scale = FLOWS_DPI / 72
    y, height = int((top_pt - 6) * scale), int((bottom_pt - top_pt) * scale)
    crop = ["pdftoppm", "-r", str(FLOWS_DPI), "-f", str(page), "-l", str(page), "-x", "0", "-y", str(y),
            "-W", str(int(A4_LANDSCAPE_PT[0] * scale)), "-H", str(height)]
    subprocess.run([*crop, "-png", "-singlefile", str(pdf), str(png.with_suffix(""))], check=True)
    return subprocess.run([*crop, str(pdf)], capture_output=True, check=True).stdout


def painted(pdf: Path, colour: tuple[int, int, int], *, tolerance: int = 24) -> int:
    """How many pixels of the printed pages (pdftoppm, 50 dpi) are near ``colour``."""
    pages = subprocess.run(["pdftoppm", "-r", "50", str(pdf)], capture_output=True, check=True).stdout
    return painted_ppm(pages, colour, tolerance=tolerance)


def painted_ppm(pages: bytes, colour: tuple[int, int, int], *, tolerance: int = 24) -> int:
    """How many pixels of these PPM pages (pdftoppm's output) are near ``colour``."""
    pixels = 0
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
