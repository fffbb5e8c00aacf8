"""The Judge and Analytics tabs in a real browser (Debian's chromium through Playwright): a rater grades results with
the keyboard, and the Analytics tab shows a query typed a moment before, as text."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from first_screen import launch_browser, search_from_box  # noqa: E402

pytest.importorskip("playwright", reason="playwright is in requirements.txt; install it to drive the browser")


def test_a_rater_grades_with_the_keyboard_and_analytics_shows_the_typed_query(
    tmp_path_factory, demo_manifest, tiny_two_tower_dir, tmp_path
):
    from conftest import need_program, tiny_demo_app
    from playwright.sync_api import sync_playwright

    need_program("chromium", "chromium-browser", "google-chrome")
    app = tiny_demo_app(tmp_path_factory, demo_manifest, tiny_two_tower_dir, MMSEARCH_JUDGING="open")
    try:
        with sync_playwright() as p:
            browser = launch_browser(p)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            alerts: list[str] = []
            page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
            search_from_box(page, app.url, "green striped bag <script>alert(1)</script>")
            page.locator("#mm-gallery img").first.click()  # a click on a result is recorded
            page.wait_for_timeout(1500)

            page.get_by_role("tab", name="Judge").click()
            page.locator("#mm-rater textarea, #mm-rater input").first.fill("ann")
            query = page.get_by_label("Query").first
            query.fill("green striped bag")
            page.locator("#mm-judge-start").click()
            progress = page.locator("#mm-judge-progress")

            def rated(n: int) -> None:
                progress.filter(has_text=re.compile(rf"· {n} of \d+ rated")).wait_for(timeout=60_000)

            rated(0)
            page.locator("#mm-judge-item").click()  # out of the text boxes: digits grade
            page.keyboard.press("3")
            rated(1)
            page.keyboard.press("0")
            rated(2)
            assert "ann has judged 1 query" in progress.inner_text()
            page.screenshot(path=str(tmp_path / "judge.png"))
            qrels = httpx.get(app.url + "api/judgments/qrels", timeout=30).text.splitlines()
            assert len(qrels) == 2 and {line.split()[3] for line in qrels} == {"3", "0"}

            page.get_by_role("tab", name="Analytics").click()
            page.locator("#mm-analytics-refresh").click()
            page.wait_for_function(
                "q => (document.querySelector('#mm-analytics')?.innerText || '').includes(q)",
                arg="green striped bag <script>alert(1)</script>",
                timeout=60_000,
            )
            assert alerts == []  # the query showed as text: its markup never ran
            figures = page.locator("#mm-analytics-figures").inner_text()
            assert "searches in the last 7 days" in figures and "click-through rate" in figures
            page.screenshot(path=str(tmp_path / "analytics.png"), full_page=True)
            browser.close()
    finally:
        app.stop()
