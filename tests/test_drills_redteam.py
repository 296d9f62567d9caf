"""Drills that start from a red-team run: the emitted attack, disguised inside normal traffic, is the incident;
entity-scored questions come from the run (principal, ATLAS technique, the feature evasion moved most)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from redteam_data import build
from typer.testing import CliRunner

from workbench.access import Actor, local_admin
from workbench.drills import session
from workbench.drills.from_redteam import drill_id, moved_most, start_drill_from_redteam
from workbench.drills.scoring import score
from workbench.drills.workspace import is_drill, truth_of
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.redteam import run_attack
from workbench.store import open_workspace


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A small loan workspace with one evasion run whose traffic was emitted (the emit dir outlives the copies)."""
    d = tmp_path_factory.mktemp("rt_drill")
    ws = open_workspace(d / "ws.duckdb")
    build(ws, d, n=800)
    run = run_attack(ws, local_admin(), "loan", "evasion", budget=600, seed=1, emit_dir=d / "emit")
    ws.execute("CHECKPOINT")
    ws.close()
    return d / "ws.duckdb", run


@pytest.fixture()
def src(template, tmp_path):
    path, run = template
    shutil.copy(path, tmp_path / "ws.duckdb")
    ws = open_workspace(tmp_path / "ws.duckdb")
    yield ws, run
    ws.close()


def test_drill_from_an_evasion_run_scores_right_and_wrong_answers(src, tmp_path):
    ws, run = src
    admin = local_admin()
    info = start_drill_from_redteam(ws, admin, run["run_id"], tmp_path / "drills")
    assert info.path == tmp_path / "drills" / f"{drill_id(run['run_id'])}.duckdb" and info.incidents == 1
    man = json.loads((Path(run["emit_dir"]) / ".redteam-manifest.json").read_text())
    # Nothing beside the data gives the attack away: one log, no manifest, no red-team names or ids.
    assert sorted(p.name for p in info.data_dir.iterdir()) == ["decisions.jsonl"]
    text = (info.data_dir / "decisions.jsonl").read_text()
    assert "redteam" not in text and run["run_id"] not in text and '"ground_truth"' not in text
    with open_workspace(info.path, create=False) as dws:
        assert is_drill(dws)
        truth = truth_of(dws, admin)["incidents"]["attack"]
        normal = ws.scalar("SELECT count(*) FROM decisions WHERE ts >= ?::TIMESTAMPTZ - INTERVAL 1 DAY",
                           [man["start"]])
        assert dws.scalar("SELECT count(*) FROM decisions") == normal + man["queries"]
        alias = truth["principals"][0]
        assert truth["decision_count"] == man["queries"] == dws.scalar(
            "SELECT count(*) FROM decisions WHERE principal = ?", [alias])
        assert not alias.startswith("redteam") and alias != man["principal"]
        assert truth["atlas"] == run["atlas"] and truth["ips"] == [man["source_ip"]]
        feature = moved_most(run)
        assert truth["feature"] == feature and feature in run["result"]["mutable"]
        assert dws.scalar("SELECT count(*) FROM models WHERE system_id = 'loan'") == 1  # the model to explain

        session.start_clock(dws, admin)
        wrong_feature = next(f for f in run["result"]["mutable"] if f != feature)
        right = {"who": alias, "technique": run["atlas"][0], "feature": feature, "source": man["source_ip"]}
        wrong = {"who": "branch-03", "technique": "AML.T0024.002", "feature": wrong_feature,
                 "source": "10.0.0.3"}
        for qid, text in right.items():
            session.answer(dws, admin, qid, text)
        marks = {q["id"]: q for q in score(dws, admin).questions}
        for qid in right:
            assert marks[qid]["verdict"] == "right" and marks[qid]["points"] == marks[qid]["max_points"], marks[qid]
        first = score(dws, admin)
        assert first.time_to_detect["via"].startswith("answer to who")
        for qid, text in wrong.items():  # the latest answer is the one scored
            session.answer(dws, admin, qid, text)
        marks = {q["id"]: q for q in score(dws, admin).questions}
        for qid in wrong:
            assert marks[qid]["verdict"] == "wrong" and marks[qid]["points"] == 0, marks[qid]
        session.answer(dws, admin, "who", f"{alias} and branch-03")  # a right name and a wrong one: half
        assert {q["id"]: q for q in score(dws, admin).questions}["who"]["points"] == 10
        from workbench.drills.report import write_report

        aar = write_report(dws, admin, "md", tmp_path / "aar.md")  # the after-action report tells the run
        assert run["run_id"] in Path(aar["path"]).read_text() and alias in Path(aar["path"]).read_text()


def test_cli_drill_start_from_redteam_answer_and_score(src, tmp_path, monkeypatch):
    from workbench.cli import app

    ws, run = src
    ws.execute("CHECKPOINT")
    monkeypatch.setenv("WORKBENCH_DB", str(ws.path))
    out = tmp_path / "drills"
    r = CliRunner().invoke(app, ["drill", "start", "--from-redteam", run["run_id"], "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout.splitlines()[-1])
    db = info["path"]
    assert Path(db).is_file() and info["scenario_id"] == drill_id(run["run_id"])
    with open_workspace(Path(db), create=False) as dws:
        alias = truth_of(dws, local_admin())["incidents"]["attack"]["principals"][0]
    for args in (["clock", "start"], ["answer", "who", alias], ["answer", "technique", "AML.T0040"]):
        r = CliRunner().invoke(app, ["drill", *args, "--db", db])
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["drill", "score", "--db", db, "--json"])
    assert r.exit_code == 0, r.output
    marks = {q["id"]: q for q in json.loads(r.stdout)["questions"]}
    assert marks["who"]["verdict"] == "right" and marks["technique"]["verdict"] == "wrong"
    assert marks["feature"]["verdict"] == "unanswered"
    r = CliRunner().invoke(app, ["drill", "start", "--from-redteam", run["run_id"], "--out", str(out)])
    assert isinstance(r.exception, WorkbenchError) and "already exists" in str(r.exception)  # --force rebuilds
    r = CliRunner().invoke(app, ["drill", "start", "--out", str(out)])
    assert isinstance(r.exception, WorkbenchError) and "--from-redteam" in str(r.exception)


def test_drill_needs_emitted_traffic_and_a_facilitator(src, tmp_path):
    ws, run = src
    quiet = run_attack(ws, local_admin(), "loan", "probing", budget=100, seed=2)  # no --emit
    with pytest.raises(WorkbenchError, match="kept no traffic"):
        start_drill_from_redteam(ws, local_admin(), quiet["run_id"], tmp_path / "d")
    with pytest.raises(PermissionDenied):
        start_drill_from_redteam(ws, Actor("ann", "analyst"), run["run_id"], tmp_path / "d")
    with pytest.raises(WorkbenchError, match="no red-team run"):
        start_drill_from_redteam(ws, local_admin(), "RT-000000000000", tmp_path / "d")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / f"{drill_id(run['run_id'])}.duckdb").write_text("not a drill")
    with pytest.raises(WorkbenchError, match="not a drill workspace"):
        start_drill_from_redteam(ws, local_admin(), run["run_id"], tmp_path / "d", force=True)
    assert (tmp_path / "d" / f"{drill_id(run['run_id'])}.duckdb").read_text() == "not a drill"
