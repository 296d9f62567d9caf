"""The app in a real browser: Playwright drives Debian's Chromium against `streamlit run` on a demo workspace.

Sign in, open an alert in Triage, view a SHAP explanation, open an incident from the alert, tick a playbook
step and download the report. Screenshots go to tests/screenshots/ (gitignored). Without Chromium the test is
skipped locally and fails under CI (CI=true).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.access import local_admin
from workbench.store import Workspace

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _need_browser() -> None:
    reason = None
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright for Python is not installed (pip install playwright)"
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"browser tests must run under CI: {reason}")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def served(demo_ws: Workspace, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`streamlit run` on a copy of the demo workspace with one account per role; yields (url, passwords)."""
    _need_browser()
    from workbench.access import accounts

    seeded = accounts.seed_demo_accounts(demo_ws, local_admin())
    demo_ws.execute("CHECKPOINT")
    db = tmp_path / "served.duckdb"
    shutil.copy(demo_ws.path, db)
    port = _free_port()
    env = {**os.environ, "WORKBENCH_DB": str(db), "WORKBENCH_NO_AUTODEMO": "1"}
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "workbench" / "streamlit_app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
         "--server.fileWatcherType", "none"],  # usage statistics: off by workbench/.streamlit/config.toml
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("streamlit did not start: " + (tmp_path / "streamlit.log").read_text()[-2000:])
        yield url, {r["role"]: r["password"] for r in seeded}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _settle(page, timeout: float = 30_000) -> None:
    """Wait until Streamlit has finished the current run."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


def _click_first_row(page, grid_index: int = 0) -> None:
    """Select the first row of an st.dataframe (the selection checkbox column sits at its left edge)."""
    grid = page.locator("[data-testid='stDataFrame']").nth(grid_index)
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)


def test_analyst_works_an_alert_to_a_report(served: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, passwords = served
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                     args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
        page.set_default_timeout(45_000)
        try:
            # Sign in.
            page.goto(url)
            expect(page.get_by_text("Sign in to the workbench")).to_be_visible()
            page.get_by_role("textbox", name="User").fill("demo-analyst")
            page.get_by_role("textbox", name="Password").fill(passwords["analyst"])
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            _settle(page)
            _shot(page, "01_overview")

            # Triage: the newest alert opens by default; pick the first row explicitly.
            page.get_by_role("link", name="Triage", exact=True).click()
            expect(page.get_by_role("heading", name="Triage")).to_be_visible()
            _settle(page)
            _click_first_row(page, 0)
            _settle(page)
            expect(page.get_by_role("button", name="Open incident")).to_be_visible()
            _shot(page, "02_triage_alert")

            # A SHAP explanation of the alert's decisions.
            page.get_by_role("button", name="Explain its decisions").click()
            expect(page.get_by_role("heading", name="Decisions")).to_be_visible()
            _settle(page)
            _click_first_row(page, 0)
            _settle(page, 90_000)
            expect(page.get_by_text("baseline (expected score)")).to_be_visible(timeout=90_000)
            _shot(page, "03_shap_waterfall")

            # Back to the alert; open an incident from it.
            page.get_by_role("link", name="Triage", exact=True).click()
            _settle(page)
            _click_first_row(page, 0)
            _settle(page)
            page.get_by_role("button", name="Open incident").click()
            expect(page.get_by_role("heading", name="Incidents")).to_be_visible()
            # the incident's own heading (the list's grid cells hold the id too, in a hidden accessibility layer)
            expect(page.get_by_role("heading", name="INC-0001")).to_be_visible(timeout=30_000)
            _settle(page)
            _shot(page, "04_incident")

            # Attach a playbook and tick its first step.
            page.get_by_role("tab", name="Playbook").click()
            page.get_by_role("button", name="Attach").click()
            _settle(page)
            box = page.locator("[data-testid='stCheckbox']").first
            expect(box).to_be_visible()
            box.click()
            _settle(page)
            expect(page.get_by_text("1 of ")).to_be_visible()
            expect(page.get_by_text("done by demo-analyst").first).to_be_visible()
            _shot(page, "05_playbook_step")

            # Build and download the report.
            page.get_by_role("tab", name="Report").click()
            page.get_by_role("button", name="Build the report").click()
            _settle(page, 90_000)
            with page.expect_download() as info:
                page.get_by_role("button", name="Download INC-0001.html").click()
            target = tmp_path / "INC-0001.html"
            info.value.save_as(target)
            text = target.read_text(encoding="utf-8")
            assert "INC-0001" in text and len(text) > 1000
            _shot(page, "06_report")
        except Exception:
            _shot(page, "failure")
            raise
        finally:
            browser.close()


def test_no_request_leaves_the_machine(served: tuple[str, dict[str, str]]) -> None:
    """Every request the browser makes, on every page (SHAP waterfall and plotly charts included), goes to the
    local server: no usage statistics, CDN scripts, web fonts or map tiles (issue 16 item 7)."""
    from urllib.parse import urlsplit

    from playwright.sync_api import expect, sync_playwright

    from workbench.app_pages import PAGES

    url, passwords = served
    seen: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                     args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1500, "height": 1100}, service_workers="block")
        context.on("request", lambda r: seen.append(r.url))

        def local_only(route) -> None:  # record and refuse, so the test itself never reaches out
            parts = urlsplit(route.request.url)
            if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != "127.0.0.1":
                route.abort()
            else:
                route.continue_()

        context.route("**/*", local_only)
        page = context.new_page()
        page.set_default_timeout(45_000)
        try:
            page.goto(url)
            page.get_by_role("textbox", name="User").fill("demo-admin")
            page.get_by_role("textbox", name="Password").fill(passwords["admin"])
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            _settle(page)
            for spec in PAGES:
                page.get_by_role("link", name=spec.title, exact=True).click()
                expect(page.get_by_role("heading", name=spec.title).first).to_be_visible()
                _settle(page, 90_000)
            # a decision's SHAP waterfall (plotly) and the triage charts
            page.get_by_role("link", name="Decisions", exact=True).click()
            _settle(page)
            _click_first_row(page, 0)
            _settle(page, 90_000)
            expect(page.get_by_text("baseline (expected score)")).to_be_visible(timeout=90_000)
            page.wait_for_timeout(1500)
        except Exception:
            _shot(page, "network_failure")
            raise
        finally:
            browser.close()
    outside = sorted({u for u in seen if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                      and urlsplit(u).hostname != "127.0.0.1"})
    assert seen and not outside, outside
