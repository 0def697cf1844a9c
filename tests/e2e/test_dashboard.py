"""The live dashboard (`ledger serve`, /dashboard/) in headless Chromium,
driven by Playwright: Debian's chromium, never a browser Playwright
downloads.  Test names contain `browser`; a missing chromium fails them.

One server holds the 2019 story (examples/story-2019.jsonl), each party
posting its own reports.  Screenshots of each page go to the test's tmp
dir; with LEDGER_UPDATE_DOCS_IMG=1 they also replace docs/img/'s copies for
docs/DASHBOARD.md (a test run does not rewrite the repository otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from http_server import Client, Server, post_story, serve_env
from services.browser import CHROMIUM_FLAGS, BrowserMissing, chromium


DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
WAIT_MS = 30_000  # a bound on each wait for the page to show something, not a measurement
VIEWPORT = {"width": 1280, "height": 860}
# Japan exports 20 more units of hydrogen fluoride under the license whose
# 100-unit ceiling HF-0001 already used up.
OVER_CEILING_EXPORT = {
    "type": "exported", "event_id": "fluoro-2019-1001-031", "occurred_at": "2019-10-01T10:00:00+09:00",
    "reporter": "JP-FLUORO", "trace_id": "TR-HF-2019-0031", "lot_id": "HF-0031",
    "exporter": {"id": "JP-FLUORO", "country": "JP", "name": "Fluoro Chemical Co. (Osaka)"},
    "consignee": {"id": "KR-SEMI", "country": "KR", "name": "Korea Semiconductor Co. (Icheon fab)"},
    "end_user": {"id": "KR-SEMI", "country": "KR", "name": "Korea Semiconductor Co. (Icheon fab)"},
    "item": {"id": "HF-UHP", "name": "hydrogen fluoride, ultra high purity",
             "classification": "AG 1C350.25 / JP export control list 3(2)"},
    "quantity": {"amount": "20", "unit": "unit"}, "license_id": "JP-IND-2019-0001",
}

# Japan exports 100 more units to KR-SEMI, which receives 60 on 15 July and
# 40 on 15 August and reports 50 used: 10 units stand unaccounted from 13
# October (90 days after the first receipt), 50 from 13 November.
TWO_RECEIPTS_BY = {
    "JP-FLUORO": [dict(OVER_CEILING_EXPORT, event_id="fluoro-2019-0710-041", occurred_at="2019-07-10T10:00:00+09:00",
                       trace_id="TR-HF-2019-0041", lot_id="HF-0041", quantity={"amount": "100", "unit": "unit"},
                       license_id="JP-BULK-2017-0031")],
    "KR-SEMI": [
        {"type": "received", "event_id": "semi-rcv-2019-0715-041", "occurred_at": "2019-07-15T14:00:00+09:00",
         "reporter": "KR-SEMI", "trace_id": "TR-HF-2019-0041", "lot_id": "HF-0041",
         "quantity": {"amount": "60", "unit": "unit"}},
        {"type": "received", "event_id": "semi-rcv-2019-0815-041", "occurred_at": "2019-08-15T14:00:00+09:00",
         "reporter": "KR-SEMI", "trace_id": "TR-HF-2019-0041", "lot_id": "HF-0041",
         "quantity": {"amount": "40", "unit": "unit"}},
        {"type": "consumed", "event_id": "semi-use-2019-0820-041", "occurred_at": "2019-08-20T18:00:00+09:00",
         "reporter": "KR-SEMI", "trace_id": "TR-HF-2019-0041", "lot_id": "HF-0041",
         "quantity": {"amount": "50", "unit": "unit"}, "end_use": "wafer etching, memory line 2"},
    ],
}


class Story:
    def __init__(self, server: Server, clients: dict[str, Client]):
        self.server, self.clients = server, clients
        self.auditor = server.issue("METI-AUDIT", "auditor")
        self.dashboard = server.issue("OPS-WALL", "dashboard")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    home = tmp_path_factory.mktemp("dashboard") / "home"
    server = Server(home, (), serve_env(home)).start()
    try:
        yield Story(server, post_story(server))
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        executable = chromium()
    except BrowserMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    flags = [f for f in CHROMIUM_FLAGS if f != "--headless"]  # Playwright adds its own
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=flags)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert errors == [], errors


def sign_in(page: Any, story: Story, client: Client, path: str = "") -> None:
    page.goto(f"{story.server.url}/dashboard/{path}")
    expect(page.locator("#sign-in")).to_be_visible(timeout=WAIT_MS)
    page.fill("#token", client.token)
    page.click("#sign-in-submit")
    expect(page.locator("#sign-in")).to_be_hidden(timeout=WAIT_MS)


def screenshot(page: Any, tmp_path: Path, name: str) -> None:
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    if os.environ.get("LEDGER_UPDATE_DOCS_IMG") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMG / f"{name}.png")


def figure(page: Any, name: str) -> Any:
    return page.locator(f'#account tr[data-figure="{name}"] td.num')


def test_browser_an_alert_appears_without_reloading(story: Story, page: Any, tmp_path: Path) -> None:
    sign_in(page, story, story.dashboard)
    expect(page.locator("#stream-state")).to_have_text("live", timeout=WAIT_MS)
    # The story's alerts are listed: 30 units of HF-0001 unaccounted at KR-SEMI.
    unaccounted = page.locator('#alerts tr[data-kind="unaccounted"][data-lot="HF-0001"]')
    expect(unaccounted).to_have_count(1, timeout=WAIT_MS)
    expect(unaccounted).to_contain_text("30 unit")
    expect(page.locator('#alerts tr[data-lot="HF-0031"]')).to_have_count(0)
    page.evaluate("window.__not_reloaded = true")

    # Japan exports 20 more units under a license whose ceiling is used up.
    posted = story.clients["JP-FLUORO"].post("/v1/events", json.dumps(OVER_CEILING_EXPORT), "application/json")
    assert posted.status_code == 200 and posted.json()["recorded"] == 1, posted.text
    ceiling = page.locator('#alerts tr[data-kind="license_ceiling"][data-lot="HF-0031"]')
    expect(ceiling).to_have_count(1, timeout=WAIT_MS)
    expect(ceiling).to_contain_text("JP-IND-2019-0001")
    assert page.evaluate("window.__not_reloaded") is True  # the same page, updated in place

    # Filters: by kind, then by party and severity.
    page.select_option("#filter-kind", "license_ceiling")
    rows = page.locator("#alerts tbody tr")
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-lot") == "HF-0031"
    page.select_option("#filter-kind", "")
    page.select_option("#filter-party", "KR-SEMI")
    page.select_option("#filter-severity", "high")
    expect(page.locator("#alerts tbody tr").first).to_be_visible()
    for text in page.locator("#alerts tbody tr td:nth-child(3)").all_text_contents():
        assert text == "KR-SEMI"
    for text in page.locator("#alerts tbody tr .badge").all_text_contents():
        assert text == "high"
    page.select_option("#filter-party", "")
    page.select_option("#filter-severity", "")
    expect(ceiling).to_have_count(1)
    screenshot(page, tmp_path, "dashboard-alerts")

    # Each alert links to its lot; a dashboard token reads alerts only, and the page says so.
    unaccounted.locator("a").click()
    expect(page.locator("#needs-auditor")).to_contain_text("auditor token", timeout=WAIT_MS)


def test_browser_a_lots_figures_change_with_the_as_of_date(story: Story, page: Any, tmp_path: Path) -> None:
    sign_in(page, story, story.auditor, "#/lot/HF-0001")
    # Now: 100 shipped and received, 70 consumed, 30 unaccounted at KR-SEMI.
    expect(figure(page, "unaccounted")).to_have_text("30", timeout=WAIT_MS)
    expect(figure(page, "shipped")).to_have_text("100")
    expect(figure(page, "consumed")).to_have_text("70")
    expect(page.locator('#account tr[data-figure="consumed"] td.ids')).to_have_text("semi-use-2019-0820-001")
    expect(page.locator('#account tr[data-figure="received"] td.ids')).to_have_text("semi-rcv-2019-0715-001")
    expect(page.locator('#account tr[data-figure="unaccounted"] td.ids')).to_contain_text("semi-use-2019-0820-001")
    expect(page.locator("#reports tbody tr")).to_have_count(3)
    for series in ("shipped", "received", "consumed", "on_hand", "unaccounted"):
        expect(page.locator(f'#chart path[data-series="{series}"]')).to_have_count(1)
    screenshot(page, tmp_path, "dashboard-lot")

    # As of 12 July 2019 the lot was in transit: nothing received, nothing unaccounted.
    page.fill("#as-of", "2019-07-12")
    expect(page.locator("#as-of-label")).to_contain_text("2019-07-12", timeout=WAIT_MS)
    expect(figure(page, "in_transit")).to_have_text("100", timeout=WAIT_MS)
    expect(figure(page, "received")).to_have_text("0")
    expect(figure(page, "unaccounted")).to_have_text("0")
    expect(page.locator("#reports tbody tr")).to_have_count(1)
    expect(page.locator("#chart .as-of-label")).to_have_text("as of 2019-07-12")
    screenshot(page, tmp_path, "dashboard-lot-as-of")

    # As of 1 September: received and 70 consumed, the 90 days not yet passed.
    page.fill("#as-of", "2019-09-01")
    expect(figure(page, "consumed")).to_have_text("70", timeout=WAIT_MS)
    expect(figure(page, "on_hand")).to_have_text("30")
    expect(figure(page, "unaccounted")).to_have_text("0")
    page.click("#as-of-now")
    expect(figure(page, "unaccounted")).to_have_text("30", timeout=WAIT_MS)


def test_browser_lineage_draws_every_hop_with_its_quantity(story: Story, page: Any, tmp_path: Path) -> None:
    sign_in(page, story, story.auditor, "#/trace/TR-PR-2019-0003")
    graph = page.locator("#lineage svg")
    expect(graph).to_contain_text("export 1,000 L from JP-FLUORO (JP)", timeout=WAIT_MS)
    expect(graph).to_contain_text("re-export 700 L")
    expect(graph).to_contain_text("re-export 300 L")
    for lot in ("PR-0003", "PR-0003-XA", "PR-0003-WX"):
        expect(page.locator(f'#lineage g[data-lot="{lot}"]')).to_have_count(1)
    expect(page.locator("#lineage path.hop")).to_have_count(2)
    screenshot(page, tmp_path, "dashboard-lineage")

    # The ship-back of HF-0002 and the unaccounted remainder of HF-0001, marked on the holder.
    page.goto(f"{story.server.url}/dashboard/#/trace/TR-HF-2019-0002")
    expect(page.locator("#lineage path.hop.ship-back")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#lineage svg")).to_contain_text("ship-back")
    screenshot(page, tmp_path, "dashboard-lineage-ship-back")
    page.goto(f"{story.server.url}/dashboard/#/trace/TR-HF-2019-0001")
    holder = page.locator('#lineage g.lot.unaccounted[data-lot="HF-0001"]')
    expect(holder).to_contain_text("KR-SEMI (KR)", timeout=WAIT_MS)
    expect(holder).to_contain_text("unaccounted 30 unit")
    screenshot(page, tmp_path, "dashboard-lineage-unaccounted")


def test_browser_flows_show_shipped_against_received_with_gaps(story: Story, page: Any, tmp_path: Path) -> None:
    sign_in(page, story, story.auditor, "#/flows?period=2019")
    # KR -> CN: 4,050 t of hydrogen fluoride shipped, 4,000 t received: a 50 t gap.
    kr_cn = page.locator('#flows tr[data-flow="KR-CN-HF-UHP"]')
    expect(kr_cn).to_contain_text("4,050 t", timeout=WAIT_MS)
    expect(kr_cn).to_contain_text("4,000 t")
    expect(kr_cn.locator(".gap-cell")).to_have_text("50 t (1.2%)")
    assert "gap" in (kr_cn.get_attribute("class") or "")
    balanced = page.locator('#flows tr[data-flow="KR-CN-EUV-PR"]')
    expect(balanced.locator(".gap-cell")).to_have_text("—")
    assert "gap" not in (balanced.get_attribute("class") or "")
    screenshot(page, tmp_path, "dashboard-flows")


def test_browser_a_token_the_ledger_did_not_issue_is_refused_with_the_apis_message(story: Story, page: Any) -> None:
    page.goto(f"{story.server.url}/dashboard/")
    page.fill("#token", "not-a-token-this-ledger-issued")
    page.click("#sign-in-submit")
    expect(page.locator("#sign-in-error")).to_contain_text("not one this ledger issued", timeout=WAIT_MS)
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#stream-state")).to_have_text("refused")


def test_browser_a_partys_token_marks_its_material_and_says_since_when_each_alert_stood(
        story: Story, page: Any, tmp_path: Path) -> None:
    for party, reports in TWO_RECEIPTS_BY.items():
        posted = story.clients[party].post("/v1/events", json.dumps(reports), "application/json")
        assert posted.status_code == 200 and posted.json()["recorded"] == len(reports), posted.text
    fluoro = story.clients["JP-FLUORO"]
    sign_in(page, story, fluoro)
    expect(page.locator("#stream-state")).to_have_text("live", timeout=WAIT_MS)

    # HF-0041's alert is addressed to KR-SEMI, its holder, and shown to
    # JP-FLUORO as about its material; it has stood since 13 October, though
    # its latest step (50 units) came due on 13 November.
    hf41 = page.locator('#alerts tr[data-kind="unaccounted"][data-lot="HF-0041"]')
    expect(hf41).to_have_count(1, timeout=WAIT_MS)
    expect(hf41).to_contain_text("50 unit")
    expect(hf41.locator("td.since")).to_have_text("2019-10-13")
    expect(hf41.locator(".party")).to_have_text("KR-SEMI")
    expect(hf41.locator(".your-material")).to_have_text("your material")
    expect(page.locator("#your-material-note")).to_be_visible()
    screenshot(page, tmp_path, "dashboard-alerts-your-material")

    # Every alert standing, as the API's alert list answers the same token:
    # the same alerts, the same SINCE, the same marks.
    answered = {a["alert_id"]: (a["since"][:10], a["about_your_material"])
                for a in fluoro.get("/v1/alerts").json()["alerts"]}
    assert answered[hf41.get_attribute("data-alert")] == ("2019-10-13", True)
    rows = page.locator("#alerts tbody tr")
    expect(rows).to_have_count(len(answered))
    shown = {row.get_attribute("data-alert"): (row.locator("td.since").inner_text(),
                                               row.get_attribute("data-your-material") == "true")
             for row in rows.all()}
    assert shown == answered
    # The party's own view in the API (?party=, as `ledger alerts --party`) marks them alike.
    for alert in fluoro.get("/v1/alerts", party="JP-FLUORO").json()["alerts"]:
        assert shown[alert["alert_id"]] == (alert["since"][:10], alert["about_your_material"])
