"""Emitted attack traffic, the coverage step, the report, the AI-BOM export and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redteam_data import build
from typer.testing import CliRunner

from workbench.access import local_admin
from workbench.ingest import ingest
from workbench.redteam import get_run, run_attack
from workbench.redteam.bom import export_bom
from workbench.redteam.coverage import coverage
from workbench.redteam.report import render
from workbench.store import open_workspace


@pytest.fixture()
def ws(tmp_path):
    w = open_workspace(tmp_path / "ws.duckdb")
    build(w, tmp_path)
    yield w
    w.close()


def test_emit_writes_canonical_logs_that_ingest(ws, tmp_path):
    run = run_attack(ws, local_admin(), "loan", "probing", budget=300, seed=1, emit_dir=tmp_path / "emit")
    man = json.loads((tmp_path / "emit" / ".redteam-manifest.json").read_text())
    assert man["queries"] == run["queries"] and man["principal"].startswith("redteam-probing-")
    rows = [json.loads(line) for line in (tmp_path / "emit" / man["attack_file"]).read_text().splitlines()]
    assert len(rows) == run["queries"] and all(r["principal"] == man["principal"] for r in rows)
    ts = [r["ts"] for r in rows]
    assert ts == sorted(ts) and isinstance(rows[0]["features"]["age"], int)
    last = ws.scalar("SELECT max(ts) FROM decisions")
    assert rows[-1]["ts"] <= last.isoformat().replace("+00:00", "Z")  # inside the normal traffic
    empty = open_workspace(tmp_path / "fresh.duckdb")  # the directory alone replays the mix
    res = ingest(empty, local_admin(), [tmp_path / "emit"], kind="decisions")
    assert not [f.error for f in res if f.error]
    assert empty.scalar("SELECT count(DISTINCT principal) FROM decisions") > 1
    assert empty.scalar("SELECT count(*) FROM decisions WHERE principal = ?", [man["principal"]]) == len(rows)


def test_coverage_reports_each_technique_and_keeps_misses(ws, tmp_path):
    before = ws.scalar("SELECT count(*) FROM decisions")
    run = run_attack(ws, local_admin(), "loan", "extraction", budget=800, seed=1, emit_dir=tmp_path / "e")
    cov = coverage(ws, local_admin(), tmp_path / "e")
    assert ws.scalar("SELECT count(*) FROM decisions") == before  # only the scratch copy got the traffic
    assert set(cov["techniques"]) == {"AML.T0024.002", "AML.T0040"}
    assert cov["attack_decisions"] == 800
    assert cov["decisions_flagged"] + cov["decisions_missed"] == 800
    for tech, c in cov["techniques"].items():
        assert (tech in cov["techniques_missed"]) == (not c["fired"])
    assert get_run(ws, local_admin(), run["run_id"])["coverage"]["run_id"] == run["run_id"]
    md = render(ws, local_admin(), "loan", None, "md").decode()
    assert run["run_id"] in md and "Detection coverage" in md
    if cov["techniques_missed"]:
        assert "MISSED" in md


def test_report_formats_and_bom(ws, tmp_path):
    run_attack(ws, local_admin(), "loan", "evasion", budget=400, seed=2)
    html = render(ws, local_admin(), "loan", None, "html").decode()
    assert "<script" not in html and "Content-Security-Policy" in html
    assert render(ws, local_admin(), "loan", None, "pdf").startswith(b"%PDF")
    doc = export_bom(ws, local_admin(), "loan")
    card = doc["components"][0]["modelCard"]
    assert any(m["type"] == "evasion success rate" for m in card["quantitativeAnalysis"]["performanceMetrics"])
    assert card["considerations"]["technicalLimitations"]


def test_cli_run_list_report(ws, tmp_path):
    from workbench.cli import app
    db = str(ws.path)
    ws.execute("CHECKPOINT")
    r = CliRunner().invoke(app, ["redteam", "--system", "loan", "--attack", "probing", "--budget", "200",
                                 "--seed", "3", "--json", "--db", db])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.splitlines()[-1])
    assert out["attack"] == "probing" and out["queries"] <= 200
    r = CliRunner().invoke(app, ["redteam", "list", "--db", db, "--json"])
    assert r.exit_code == 0 and out["run_id"] in r.output
    target = Path(tmp_path / "r.md")
    r = CliRunner().invoke(app, ["redteam", "report", "--system", "loan", "--out", str(target), "--db", db])
    assert r.exit_code == 0 and out["run_id"] in target.read_text()
