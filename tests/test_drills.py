"""Drills: every shipped scenario builds a separate drill workspace, is scored on scripted answers (wrong, then
right) with the expected score, and produces its after-action report. Real DuckDB files, no mocks."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workbench.access import Actor, local_admin
from workbench.cases import evidence as case_evidence
from workbench.cases import incidents as case_incidents
from workbench.cases import playbooks as case_playbooks
from workbench.drills import session
from workbench.drills.report import write_report
from workbench.drills.scenario import check_scenario, list_scenarios, parse_offset, parse_scenario, scenarios_dir
from workbench.drills.scoring import score
from workbench.drills.workspace import _truth, file_is_drill, is_drill, start_drill, truth_of
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.store import open_workspace

ATLAS_YAML = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "atlas" / "ATLAS.yaml"
# LLM trace drills (llm-*.md) are built and scored in tests/test_drills_traces.py.
SCENARIOS = sorted(p.stem for p in scenarios_dir().glob("*.md") if not p.stem.startswith("llm-"))
FACILITATOR = local_admin()

# Scripted answers: (question id, answer template, minutes after the clock start, participant).
# Templates are filled from the drill's ground truth (principals the generator picked, the hash it served).
WRONG = {
    "extraction-broker-sweep": [
        ("who", "it was {sweep[principals][0]} I think", 5, "ana"),  # the right name in loose text: 0
        ("technique", "AML.T0029", 6, "ana"),                   # wrong technique: 0
        ("since", "day 1 08:30", 7, "ben"),                     # 80 min off, within 2 h: half of 10
        ("volume", "500", 8, "ben"),                            # far off: 0
        ("contain", "block the traffic", 9, "ben"),             # free text, not marked yet: 0
    ],
    "backdoor-housing-trigger": [
        ("version", "card-fraud 3.1", 5, "ana"),                # 0
        ("trigger-feature", "income above 500000", 6, "ana"),   # 0
        ("trigger-value", "500000", 6, "ana"),                  # 0
        ("who", "{bd[principals][0]}, svc-loan-web", 7, "ben"),  # right name + one wrong: half of 15 (detects)
        ("technique", "AML.T0018", 8, "ben"),                   # parent of AML.T0018.000: half of 10
        ("contain", "retrain the model", 9, "ben"),             # not marked: 0
    ],
    "stolen-branch-credential": [
        ("who", "svc-loan-web", 5, "ana"),                      # 0
        ("since", "day 3 04:00", 6, "ana"),                     # 100 min off, within 3 h: 5
        ("drift", "a", 7, "ben"),                               # 'an attack': 0
        ("technique", "AML.T0012, AML.T0029", 8, "ben"),        # right + wrong: half of 10
        ("contain", "disable the account and enforce MFA", 9, "ben"),  # not marked: 0
    ],
    "extraction-then-evasion": [
        ("stage1-who", "{evade[principals][0]}", 5, "ana"),     # the other stage's key: 0
        ("stage2-who", "{steal[principals][0]}", 6, "ana"),     # 0
        ("stage1-technique", "AML.T0043.001", 7, "ben"),        # 0
        ("stage1-since", "{steal[end]}", 8, "ben"),             # 10 h off: 0
        ("link", "same partner", 9, "ben"),                     # not marked: 0
        ("contain", "revoke both keys", 10, "ben"),             # not marked: 0
    ],
    "flood-cover-swapped-artifact": [
        ("flooders", "svc-pos-gateway-eu", 5, "ana"),           # 0
        ("artifact", "the 3.1 model", 6, "ana"),                # 0
        ("since", "day 2 13:00", 7, "ben"),                     # 20 min off, within 1 h: 5 (detects)
        ("technique", "AML.T0029", 8, "ben"),                   # 0
        ("contain", "rate limit the merchants and redeploy", 9, "ben"),  # not marked: 0
    ],
}
RIGHT = {
    "extraction-broker-sweep": [
        ("who", "{sweep[principals][0]}", 20, "ana"),
        ("technique", "AML.T0024.002 and AML.T0040", 21, "ana"),
        ("since", "{sweep[start]}", 22, "ben"),
        ("volume", "{sweep[decision_count]} decisions", 23, "ben"),
        ("contain", "Revoke {sweep[principals][0]}, rate limit its addresses", 24, "ben"),
    ],
    "backdoor-housing-trigger": [
        ("version", "v{bd[version]}", 20, "ana"),
        ("trigger-feature", " `{bd[trigger_feature]}` ", 21, "ana"),
        ("trigger-value", "{bd[trigger_value]}", 21, "ana"),
        ("who", "{bd[principals_text]}", 22, "ben"),
        ("technique", "AML.T0018.000", 23, "ben"),
        ("since", "{bd[start]}", 24, "ben"),
        ("contain", "Roll back to 1.0, audit the training data with the vendor, suspend {bd[principals_text]}",
         25, "ben"),
    ],
    "stolen-branch-credential": [
        ("who", "{cred[principals][0]}", 25, "ana"),
        ("since", "{cred[start]}", 26, "ana"),
        ("where", "{cred[ips][0]}", 27, "ana"),
        ("drift", "2", 28, "ben"),
        ("technique", "AML.T0012", 29, "ben"),
        ("contain", "Disable {cred[principals][0]}, reset its password with MFA", 30, "ben"),
    ],
    "extraction-then-evasion": [
        ("stage1-who", "{steal[principals][0]}", 15, "ana"),
        ("stage2-who", "{evade[principals][0]}", 16, "ana"),
        ("stage1-technique", "AML.T0024.002", 17, "ben"),
        ("stage1-since", "{steal[start]}", 18, "ben"),
        ("stage2-technique", "AML.T0043.002", 19, "ben"),
        ("link", "the extracted surrogate model from the Orbit key made the evasion cheap", 20, "ben"),
        ("contain", "Revoke {steal[principals][0]} and {evade[principals][0]}; rate limit new keys; "
                    "call-back before onboarding", 21, "ben"),
    ],
    "flood-cover-swapped-artifact": [
        ("flooders", "{flood[principals_text]}", 20, "ana"),
        ("artifact", "{swap[sha256_prefix]}", 21, "ana"),
        ("since", "{swap[start]}", 22, "ben"),
        ("technique", "AML.T0010.003", 23, "ben"),
        ("contain", "Redeploy the registered artifact, rate limit {flood[principals_text]}, pin images by digest "
                    "and stop pulling from the image cache", 24, "ben"),
    ],
}
# Expected totals: after the wrong answers; after the right answers, the facilitator's full marks for the free-text
# answers and the case work (one incident, one relevant decision set, one irrelevant note, three playbook steps).
EXPECTED = {
    "extraction-broker-sweep": (5.0, 65 + 12 + 3 + 2),          # TTD 20 min: 12
    "backdoor-housing-trigger": (32.5, 80 + 20 + 3 + 2),        # TTD 7 min (half-right who): 20
    "stolen-branch-credential": (10.0, 75 + 10 + 3 + 2),        # TTD 25 min: 10
    "extraction-then-evasion": (0.0, 85 + 20 + 3 + 2),          # TTD 15 min: 20
    "flood-cover-swapped-artifact": (25.0, 70 + 20 + 3 + 2),    # TTD 7 min (time question detects): 20
}


@pytest.fixture(scope="module")
def drill_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every shipped scenario built once into one folder (sharing one trained-models cache)."""
    out = tmp_path_factory.mktemp("drills")
    for sid in SCENARIOS:
        start_drill(scenarios_dir() / f"{sid}.md", out)
    return out


def _ctx(truth: dict) -> dict:
    ctx = {}
    for k, inc in truth["incidents"].items():
        ctx[k] = dict(inc) | {"principals_text": ", ".join(inc["principals"])}
    return ctx


def _answer(ws, script, t0: datetime, ctx: dict) -> None:
    for qid, template, minute, who in script:
        session.answer(ws, FACILITATOR, qid, template.format(**ctx), participant=who,
                       at=t0 + timedelta(minutes=minute))


def _work_the_case(ws, truth: dict, playbook: str) -> str:
    first = next(iter(truth["incidents"].values()))
    inc = case_incidents.create_incident(ws, FACILITATOR, "Drill case", "high", systems=[first["system_id"]])
    case_evidence.add_decision_set(ws, FACILITATOR, inc["incident_id"], first["system_id"], first["decision_ids"])
    case_evidence.add_note(ws, FACILITATOR, inc["incident_id"], "Ordered coffee for the team.")
    for step in case_playbooks.get_playbook(playbook).steps[:3]:
        case_playbooks.set_step(ws, FACILITATOR, inc["incident_id"], playbook, step.id, True)
    return inc["incident_id"]


def test_scenarios_are_valid_and_cover_the_brief() -> None:
    scenarios = list_scenarios()
    assert len(scenarios) >= 4
    types = {i.type for s in scenarios for i in s.incidents}
    assert {"extraction", "evasion", "backdoor", "stolen_credential", "dos_flood", "unregistered_artifact"} <= types
    assert any(len(s.incidents) >= 2 and {i.type for i in s.incidents} >= {"extraction", "evasion"}
               for s in scenarios), "a multi-stage extraction-then-evasion scenario"
    for s in scenarios:
        assert s.injects[0].at_s == 0 and len(s.injects) >= 3
        assert {q.kind for q in s.questions} >= {"principal", "atlas"}
        assert check_scenario(s, ATLAS_YAML if ATLAS_YAML.is_file() else None) == []


@pytest.mark.parametrize("sid", SCENARIOS)
def test_scenario_scored_on_scripted_answers(drill_dir: Path, sid: str) -> None:
    with open_workspace(drill_dir / f"{sid}.duckdb") as ws:
        assert is_drill(ws)
        truth = _truth(ws)
        ctx = _ctx(truth)
        t0 = session.start_clock(ws, FACILITATOR, at=datetime.now(UTC) - timedelta(minutes=50))["started_at"]
        _answer(ws, WRONG[sid], t0, ctx)
        wrong = score(ws, FACILITATOR)
        assert wrong.total == pytest.approx(EXPECTED[sid][0]), [(q["id"], q["points"]) for q in wrong.questions]
        assert wrong.playbook_steps["points"] == 0 and wrong.evidence["points"] == 0
        _answer(ws, RIGHT[sid], t0, ctx)
        scenario = next(s for s in list_scenarios() if s.id == sid)
        for q in scenario.questions:
            if q.kind in ("contain", "keywords"):
                assert score(ws, FACILITATOR).questions[[x.id for x in scenario.questions].index(q.id)][
                    "verdict"] == "awaiting mark"
                session.mark_answer(ws, FACILITATOR, q.id, q.points, "covers it")
        scen_playbook = next(s for s in list_scenarios() if s.id == sid).playbooks[0]
        _work_the_case(ws, truth, scen_playbook)
        right = score(ws, FACILITATOR)
        assert [q["verdict"] for q in right.questions if q["answer"]] == ["right"] * len(RIGHT[sid])
        assert right.evidence["relevant"] == 1 and right.evidence["count"] == 2
        assert right.playbook_steps["count"] == 3
        assert right.total == pytest.approx(EXPECTED[sid][1])
        assert {p["participant"] for p in right.participants} == {"ana", "ben"}
        md = write_report(ws, FACILITATOR, "md", drill_dir / f"{sid}.md")
        html = write_report(ws, FACILITATOR, "html", drill_dir / f"{sid}.html")
        text = Path(md["path"]).read_text()
        for needle in ("## Score:", "## What happened (ground truth)", "## What the team did", "## Timeline",
                       "Drill case", "ground truth", "team"):
            assert needle in text
        assert f"{right.total:g} / {right.max_points:g}" in text
        page = Path(html["path"]).read_text()
        assert page.startswith("<!doctype html>") and "<svg" in page and "<table>" in page
        assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'drill.report'") == 2


def test_drill_workspace_is_separate_from_the_real_one(demo_ws, tmp_path: Path) -> None:
    real = demo_ws.path
    before = hashlib.sha256(real.read_bytes()).hexdigest()
    assert not is_drill(demo_ws)
    with pytest.raises(WorkbenchError, match="not a drill workspace"):
        session.answer(demo_ws, FACILITATOR, "who", "x")
    with pytest.raises(WorkbenchError, match="not a drill workspace"):
        score(demo_ws, FACILITATOR)
    demo_ws.close()
    # start_drill refuses to overwrite a real workspace sitting where the drill would go
    target = tmp_path / "out" / "extraction-broker-sweep.duckdb"
    target.parent.mkdir()
    shutil.copy(real, target)
    with pytest.raises(WorkbenchError, match="not a drill workspace; refusing"):
        start_drill(scenarios_dir() / "extraction-broker-sweep.md", target.parent)
    assert not file_is_drill(target)
    assert hashlib.sha256(real.read_bytes()).hexdigest() == before
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before


def test_existing_drill_needs_force_and_build_is_deterministic(drill_dir: Path, tmp_path: Path) -> None:
    sid = "extraction-broker-sweep"
    with pytest.raises(WorkbenchError, match="--force"):
        start_drill(scenarios_dir() / f"{sid}.md", drill_dir)
    info = start_drill(scenarios_dir() / f"{sid}.md", tmp_path, models_dir=drill_dir / ".drill-models" / "s7-clean")
    with open_workspace(info.path) as a, open_workspace(drill_dir / f"{sid}.duckdb") as b:
        ta, tb = _truth(a)["incidents"]["sweep"], _truth(b)["incidents"]["sweep"]
        assert ta["decision_ids"] == tb["decision_ids"] and ta["principals"] == tb["principals"]
        q = "SELECT count(*), sum(hash(decision_id || principal || prediction)) FROM decisions"
        assert a.one(q) == b.one(q)
    assert not (info.data_dir / "ground_truth.json").exists(), "the answer key is not left beside the data"


def test_roles_injects_and_clock(drill_dir: Path) -> None:
    analyst, viewer = Actor("ana", "analyst"), Actor("vic", "viewer")
    with open_workspace(drill_dir / "stolen-branch-credential.duckdb") as ws:  # release: manual
        session.start_clock(ws, FACILITATOR, at=datetime.now(UTC) - timedelta(minutes=30))
        assert [i["n"] for i in session.current_injects(ws, analyst)] == [1]
        session.release_inject(ws, FACILITATOR, 3)
        assert [i["n"] for i in session.current_injects(ws, analyst)] == [1, 3]
        assert session.release_inject(ws, FACILITATOR, 3)["already"] is True
        with pytest.raises(PermissionDenied):
            session.release_inject(ws, analyst, 2)
        with pytest.raises(PermissionDenied):
            score(ws, analyst)
        with pytest.raises(PermissionDenied):
            truth_of(ws, analyst)
        with pytest.raises(PermissionDenied):
            session.answer(ws, viewer, "who", "x")
        with pytest.raises(PermissionDenied):  # answering for someone else is the facilitator's job
            session.answer(ws, analyst, "who", "x", participant="ben")
        r = session.answer(ws, analyst, "who", "svc-loan-web")
        assert r["participant"] == "ana" and r["elapsed_s"] >= 30 * 60 - 5
        assert session.my_answers(ws, analyst)[-1]["answer"] == "svc-loan-web"
        with pytest.raises(WorkbenchError, match="no question"):
            session.answer(ws, analyst, "nope", "x")
        with pytest.raises(WorkbenchError, match="no inject 9"):
            session.release_inject(ws, FACILITATOR, 9)
        session.pause_clock(ws, FACILITATOR)
        assert session.clock(ws)["paused"]
        with pytest.raises(WorkbenchError, match="already paused"):
            session.pause_clock(ws, FACILITATOR)
        session.resume_clock(ws, FACILITATOR)
    with open_workspace(drill_dir / "extraction-broker-sweep.duckdb") as ws:  # release: timed (T+0,10,20,35)
        session.start_clock(ws, FACILITATOR, at=datetime.now(UTC) - timedelta(minutes=25))
        assert [i["n"] for i in session.current_injects(ws, analyst)] == [1, 2, 3]


def test_elapsed_time_skips_pauses() -> None:
    t = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    c = {"started_at": t.isoformat(), "pauses": [[(t + timedelta(minutes=10)).isoformat(),
                                                  (t + timedelta(minutes=25)).isoformat()]]}
    assert session.elapsed_at(c, t + timedelta(minutes=5)) == 300
    assert session.elapsed_at(c, t + timedelta(minutes=20)) == 600
    assert session.elapsed_at(c, t + timedelta(minutes=40)) == 25 * 60
    assert session.wall_time(c, 15 * 60) == t + timedelta(minutes=30)
    assert parse_offset("T+1h05m") == 3900 and parse_offset("T+0") == 0


@pytest.mark.parametrize("broken, message", [
    ("title: x\n", "'id' is required"),
    ("id: x\ntitle: x\nstory: s\nincidents: [{type: meteor}]\n", "unknown incident type"),
    ("id: x\ntitle: x\nstory: s\nincidents: [{type: extraction}]\ninjects: [{at: soon, text: t}]\n",
     "cannot read inject time"),
    ("id: x\ntitle: x\nstory: s\nincidents: [{id: a, type: extraction}]\ninjects: [{at: T+0, text: t}]\n"
     "questions: [{id: q, kind: principal, text: who, expected: '@b.principals'}]\n", "reference '@b.principals'"),
    ("id: x\ntitle: x\nstory: s\nincidents: [{type: extraction}]\ninjects: [{at: T+5m, text: t}]\n"
     "questions: [{id: q, kind: atlas, text: t, expected: [T0040]}]\n",
     r"first inject must be at T\+0.*not an ATLAS technique id"),
])
def test_bad_scenarios_are_refused_with_the_reason(broken: str, message: str) -> None:
    with pytest.raises(WorkbenchError, match=message):
        parse_scenario(f"---\n{broken}---\nbody\n", "bad.md")


def test_cli_list_score_and_refusal(drill_dir: Path, demo_ws) -> None:
    from typer.testing import CliRunner

    from workbench.cli import app
    runner = CliRunner()
    listed = runner.invoke(app, ["drill", "list", "--json"])
    assert listed.exit_code == 0 and listed.stdout.count("\n") == len(list_scenarios())
    assert '"error": null' in listed.stdout
    db = str(drill_dir / "extraction-then-evasion.duckdb")
    started = runner.invoke(app, ["drill", "clock", "start", "--db", db])
    assert started.exit_code == 0 and "clock started" in started.stdout, started.output
    assert runner.invoke(app, ["drill", "answer", "link", "surrogate from orbit", "--db", db]).exit_code == 0
    marked = runner.invoke(app, ["drill", "mark", "link", "5", "--note", "half of it", "--db", db])
    assert marked.exit_code == 0 and "5 points" in marked.stdout, marked.output
    refused = runner.invoke(app, ["drill", "mark", "stage1-who", "5", "--db", db])
    assert refused.exit_code != 0 and "marked against the ground truth" in str(refused.exception or refused.output)
    scored = runner.invoke(app, ["drill", "score", "--json", "--db", db])
    assert scored.exit_code == 0 and '"scenario_id": "extraction-then-evasion"' in scored.stdout
    real = str(demo_ws.path)
    demo_ws.close()
    refused = subprocess.run([sys.executable, "-m", "workbench", "drill", "score", "--db", real],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "not a drill workspace" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_drill_pages_render_only_in_a_drill_workspace(drill_dir: Path, demo_ws,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    app = str(Path(__file__).resolve().parent.parent / "workbench" / "streamlit_app.py")
    with open_workspace(drill_dir / "extraction-broker-sweep.duckdb") as ws:
        session.start_clock(ws, FACILITATOR)
    monkeypatch.setenv("WORKBENCH_DB", str(drill_dir / "extraction-broker-sweep.duckdb"))
    monkeypatch.setenv("WORKBENCH_DRILL_ROLE", "facilitator")
    at = AppTest.from_file(app, default_timeout=60)
    at.run()
    at.switch_page("app_pages/drill_participant.py")
    at.run()
    assert not at.exception and [t.value for t in at.title] == ["Drill"]
    at.text_area(key="drill_a_volume").input("about 250")
    next(b for b in at.button if b.proto.form_id == "drill_q_volume").click()
    at.run()
    assert not at.exception and any("Recorded at" in s.value for s in at.success)
    at.switch_page("app_pages/drill_facilitator.py")
    at.run()
    assert not at.exception and not at.error
    assert {m.label for m in at.metric} >= {"Drill time", "Score", "Time to detect"}
    real = demo_ws.path
    demo_ws.close()
    monkeypatch.setenv("WORKBENCH_DB", str(real))
    at = AppTest.from_file(app, default_timeout=60)
    at.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/drill_facilitator.py")


# -- drills that hold up in a room (issue 16, item 6) -------------------------------------------------------------
def test_single_user_participants_never_get_the_facilitator_view(drill_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    app = str(Path(__file__).resolve().parent.parent / "workbench" / "streamlit_app.py")
    monkeypatch.setenv("WORKBENCH_DB", str(drill_dir / "stolen-branch-credential.duckdb"))
    for role in (None, "participant"):  # unset in single-user mode, or a participants' screen
        if role:
            monkeypatch.setenv("WORKBENCH_DRILL_ROLE", role)
        at = AppTest.from_file(app, default_timeout=60)
        at.run()
        assert not at.exception
        at.switch_page("app_pages/drill_participant.py")
        at.run()
        assert not at.exception and [t.value for t in at.title] == ["Drill"]
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page("app_pages/drill_facilitator.py")


def test_entity_answers_are_exact_and_loose_text_scores_nothing() -> None:
    from workbench.drills.grading import grade
    from workbench.drills.scenario import Question

    truth = {"incidents": {"x": {"principals": ["broker-lynx-5c21"], "atlas": ["AML.T0024.002"],
                                 "trigger_feature": "monthly_housing_cost", "version": "1.1", "ips": ["10.9.8.7"],
                                 "sha256": "ab" * 32}}, "sample_start": "2026-10-01T00:00:00Z"}
    who = Question("who", "principal", "Which principal?", 10, incident="x")
    assert grade(who, " Broker-LYNX-5c21. ", truth).points == 10
    assert grade(who, "'broker-lynx-5c21'", truth).points == 10
    for loose in ("it was broker-lynx-5c21", "broker-lynx-5c21 (the broker key)", "lynx", "broker-lynx"):
        assert grade(who, loose, truth).points == 0, loose
    assert grade(who, "broker-lynx-5c21, svc-loan-web", truth).points == 5  # a wrong name halves
    tech = Question("t", "atlas", "Technique?", 10, expected="@x.atlas", match="any")
    assert grade(tech, "aml.t0024.002", truth).points == 10
    assert grade(tech, "AML.T0024.002 because of the sweep", truth).points == 0
    assert grade(tech, "AML.T0024", truth).points == 5  # the parent technique
    feat = Question("f", "feature", "Feature?", 10, expected="@x.trigger_feature")
    assert grade(feat, "`monthly_housing_cost`", truth).points == 10
    assert grade(feat, "the housing cost feature", truth).points == 0
    ver = Question("v", "version", "Version?", 10, incident="x")
    assert grade(ver, "v1.1", truth).points == 10 and grade(ver, "loan-origination 1.1", truth).points == 0
    art = Question("a", "artifact", "Artifact?", 10, incident="x")
    assert grade(art, "ABABABABABAB", truth).points == 10 and grade(art, "ababab", truth).points == 0
    ip = Question("i", "ip", "Address?", 10, incident="x", match="any")
    assert grade(ip, "10.9.8.7", truth).points == 10 and grade(ip, "from 10.9.8.7", truth).points == 0
    free = Question("c", "contain", "Contain?", 10, keywords=[["revoke"], ["@x.principals"]])
    g = grade(free, "revoke broker-lynx-5c21", truth)
    assert g.points == 0 and g.verdict == "awaiting mark" and "suggest 10" in g.detail
    marked = grade(free, "revoke broker-lynx-5c21", truth, mark={"points": 7, "by": "fac", "note": ""})
    assert marked.points == 7 and marked.verdict == "partly right"


def test_clock_starts_when_the_facilitator_starts_it(drill_dir: Path, tmp_path: Path) -> None:
    sid = "extraction-broker-sweep"
    info = start_drill(scenarios_dir() / f"{sid}.md", tmp_path, models_dir=drill_dir / ".drill-models" / "s7-clean")
    analyst = Actor("ana", "analyst")
    with open_workspace(info.path) as ws:
        c = session.clock(ws)
        assert c["started"] is False and c["started_at"] is None
        assert session.current_injects(ws, analyst) == []  # not even T+0 before the session starts
        with pytest.raises(WorkbenchError, match="has not started"):
            session.answer(ws, analyst, "who", "x")
        with pytest.raises(WorkbenchError, match="has not started"):
            session.release_inject(ws, FACILITATOR, 2)
        assert score(ws, FACILITATOR).time_to_detect["seconds"] is None
        begun = session.start_clock(ws, FACILITATOR)
        assert begun["started"] and abs((begun["started_at"] - datetime.now(UTC)).total_seconds()) < 60
        assert [i["n"] for i in session.current_injects(ws, analyst)] == [1]
        assert session.answer(ws, analyst, "who", "x")["elapsed_s"] < 60


def test_after_action_report_as_pdf(drill_dir: Path, tmp_path: Path) -> None:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed")
    with open_workspace(drill_dir / "stolen-branch-credential.duckdb") as ws:
        if not session.started(ws):
            session.start_clock(ws, FACILITATOR)
        r = write_report(ws, FACILITATOR, "pdf", tmp_path / "aar.pdf")
        assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'drill.report' AND "
                         "details->>'format' = 'pdf'") >= 1
    pdf = Path(r["path"]).read_bytes()
    assert pdf.startswith(b"%PDF") and r["sha256"] == hashlib.sha256(pdf).hexdigest()
    text = subprocess.run(["pdftotext", "-layout", r["path"], "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "After-action report" in text and "What happened (ground truth)" in text and "page 1 of" in text


def test_no_drill_answer_in_readme_or_docs(drill_dir: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    texts = {p: p.read_text(encoding="utf-8") for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))]}
    for sid in SCENARIOS:
        with open_workspace(drill_dir / f"{sid}.duckdb") as ws:
            truth = _truth(ws)
        for inc in truth["incidents"].values():
            secrets = [*inc["principals"], *(inc.get("ips") or []), inc.get("sha256_prefix")]
            for value in filter(None, secrets):
                for path, text in texts.items():
                    assert str(value) not in text, f"{path.name} gives away {value} ({sid})"
