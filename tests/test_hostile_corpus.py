"""The hostile-input corpus end to end: payloads in every caller-written field, through ingest, detection, every
CLI command, every app page and every report format. Nothing may run (no marker file, no dialog in Chromium),
nothing may raise an unexpected error, and the accounting stays exact.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from workbench.access import local_admin
from workbench.demo import build_demo
from workbench.sample.hostile import make_hostile_sample
from workbench.store import open_workspace

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hostile(small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A workspace built from the hostile copy of the small sample; the marker file must never appear."""
    base = tmp_path_factory.mktemp("hostile")
    marker = base / "PWNED"
    info = make_hostile_sample(small_sample, base / "sample", marker)
    db = base / "hostile.duckdb"
    ws = open_workspace(db)
    try:
        result = build_demo(ws, local_admin(), base / "sample")
        ws.execute("CHECKPOINT")
    finally:
        ws.close()
    assert not marker.exists(), "a payload ran during ingest or detection"
    return {**info, "db": db, "marker": marker, "base": base, "demo": result}



def test_accounting_is_exact_and_nothing_ran(hostile: dict) -> None:
    ws = open_workspace(hostile["db"])
    try:
        read, loaded, dup, quarantined = ws.one(
            "SELECT sum(rows_read), sum(rows_loaded), sum(duplicates), sum(rows_quarantined) FROM sources "
            "WHERE kind = 'decisions'")
        assert read == hostile["decisions"]
        assert read == loaded + dup + quarantined
        # The hostile principals and the hostile feature arrived as data, unchanged.
        names = {r[0] for r in ws.rows("SELECT DISTINCT principal FROM decisions")}
        assert set(hostile["renames"].values()) <= names
        feats = {r[0] for r in ws.rows("SELECT feature FROM feature_catalog")}
        assert hostile["feature"] in feats
        tables = {r[0] for r in ws.rows("SELECT table_name FROM information_schema.tables")}
        assert "pwned" not in {t.lower() for t in tables}
    finally:
        ws.close()
    assert not hostile["marker"].exists()


def test_every_cli_command_treats_payloads_as_data(hostile: dict, tmp_path: Path, run_cli) -> None:
    db = tmp_path / "cli.duckdb"
    shutil.copy(hostile["db"], db)
    d = ["--db", str(db)]
    ws = open_workspace(db)
    try:
        alerts = ws.rows("SELECT alert_id, detector, system_id FROM alerts ORDER BY alert_id")
        hostile_ids = [r[0] for r in ws.rows(
            "SELECT decision_id FROM decisions WHERE decision_id LIKE '%<img%' OR decision_id LIKE '%@SUM%' LIMIT 4")]
        principal = ws.scalar("SELECT principal FROM decisions WHERE principal LIKE '<script>%' LIMIT 1")
    finally:
        ws.close()
    assert alerts and hostile_ids and principal
    by_detector = {det: (aid, sys_id) for aid, det, sys_id in alerts}
    runs: list[tuple[str, ...]] = [
        ("status",), ("sources",), ("rejects",), ("verify",), ("alerts",), ("alerts", "--json"),
        ("decisions", "search", "--principal", principal, "--json"),
        ("decisions", "search", "--id", hostile_ids[0]),
        ("decisions", "search", "--where", f"{hostile['feature']}=x"),
        ("sql", f"SELECT principal, count(*) FROM decisions WHERE principal = '{principal}' GROUP BY 1"),
        ("audit", "log"), ("audit", "verify"),
    ]
    runs += [("alerts", "--id", aid) for aid, _det, _sys in alerts]
    for decision_id in hostile_ids:
        system = "card-fraud" if decision_id.startswith("CF") else "loan-origination"
        runs.append(("explain", "--system", system, "--decision-id", decision_id))
    if "backdoor" in by_detector:
        aid, system = by_detector["backdoor"]
        runs += [("attribution-drift", "--alert", aid), ("replay", "--system", system, "--to-version", "1.0",
                                                          "--alert", aid)]
    for args in runs:
        code, out, err = run_cli(*args, *d)
        assert code in (0, 1, 2), (args, code, err)
        assert "Traceback" not in out + err, args
        assert not hostile["marker"].exists(), f"a payload ran in {args}"

    # An incident with hostile text everywhere, its evidence, notes, steps and all three reports.
    p = hostile["payloads"]
    first = by_detector.get("backdoor", by_detector.get("flood", (alerts[0][0], None)))[0]
    code, out, err = run_cli("incident", "create", p["script"] + p["formula"], "--alert", first,
                          "--description", p["markdown"] + p["close_script"], "--json", *d)
    assert code == 0, err
    inc = json.loads(out.splitlines()[0])["incident_id"]
    for args in [("incident", "note", inc, p["img"] + p["template"]),
                 ("incident", "add-evidence", inc, "--kind", "decision_set", "--alert", first,
                  "--label", p["close_script"]),
                 ("incident", "show", inc), ("incident", "evidence", inc), ("incident", "timeline", inc),
                 ("playbooks", "suggest", inc)]:
        code, out, err = run_cli(*args, *d)
        assert code == 0, (args, err)
    for fmt in ("md", "html", "pdf"):
        out_file = tmp_path / f"report.{fmt}"
        code, out, err = run_cli("report", inc, "--format", fmt, "--out", str(out_file), *d)
        assert code == 0, (fmt, err)
        assert out_file.exists()
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    for name in ("script", "img", "close_script"):
        assert p[name] not in html, f"{name} payload reached the HTML report unescaped"
    # plotly.js itself mentions the scheme in its own sanitiser; no link or source of the page may use it
    assert 'href="javascript:' not in html.lower() and 'src="javascript:' not in html.lower()
    assert not hostile["marker"].exists()


def test_every_app_page_renders_payloads_as_data(hostile: dict, tmp_path: Path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    from workbench.app_pages import PAGES

    db = tmp_path / "app.duckdb"
    shutil.copy(hostile["db"], db)
    monkeypatch.setenv("WORKBENCH_DB", str(db))
    monkeypatch.setenv("WORKBENCH_NO_AUTODEMO", "1")
    at = AppTest.from_file(str(ROOT / "workbench" / "streamlit_app.py"), default_timeout=90).run()
    for page in PAGES:
        at.switch_page(f"app_pages/{page.file}").run()
        assert not at.exception, (page.file, [e.value for e in at.exception])
        # Streamlit's markdown would render raw HTML only with unsafe_allow_html; no element may carry a payload
        # as live HTML.
        for el in at.markdown:
            assert "<script" not in getattr(el, "value", "") or el.allow_html is False, page.file
    assert not hostile["marker"].exists()


@pytest.mark.browser
def test_html_report_runs_no_script_in_chromium(hostile: dict, tmp_path: Path, run_cli) -> None:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"no Chromium at {chromium}")
        pytest.skip(f"no Chromium at {chromium}")
    db = tmp_path / "b.duckdb"
    shutil.copy(hostile["db"], db)
    p = hostile["payloads"]
    ws = open_workspace(db)
    try:
        first = ws.scalar("SELECT alert_id FROM alerts WHERE summary LIKE '%<script>%' OR summary LIKE '%<img%' "
                          "ORDER BY alert_id LIMIT 1") or ws.scalar("SELECT min(alert_id) FROM alerts")
    finally:
        ws.close()
    code, out, err = run_cli("incident", "create", p["script"], "--alert", first, "--json",
                          "--db", str(db))
    assert code == 0, err
    inc = json.loads(out.splitlines()[0])["incident_id"]
    run_cli("incident", "note", inc, p["img"] + p["close_script"], "--db", str(db))
    run_cli("incident", "add-evidence", inc, "--kind", "decision_set", "--alert", first,
         "--label", p["img"], "--db", str(db))
    report = tmp_path / "r.html"
    code, out, err = run_cli("report", inc, "--format", "html", "--out", str(report),
                          "--db", str(db))
    assert code == 0, err
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=["--headless", "--no-sandbox", "--disable-gpu",
                                           "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(report.as_uri())
            page.wait_for_timeout(1500)
            injected = page.evaluate("() => document.querySelectorAll('img[src=x], svg[onload]').length")
        finally:
            browser.close()
    assert dialogs == [], f"script ran in the report: {dialogs}"
    assert injected == 0
