"""A drill on a trace workspace (playbooks/drills/llm-refund-agent-hijack.md): the builder writes and ingests the
LLM agent's traces, keeps the answer key inside the workspace, and entity-scored questions (principal, technique
id) mark scripted wrong and right answers to the expected score. Real DuckDB files, no mocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workbench.access import local_admin
from workbench.cases import incidents as case_incidents
from workbench.cases import playbooks as case_playbooks
from workbench.drills import session
from workbench.drills.grading import grade
from workbench.drills.scenario import check_scenario, load_scenario, parse_scenario, scenarios_dir
from workbench.drills.scoring import score
from workbench.drills.workspace import _truth, start_drill
from workbench.errors import WorkbenchError
from workbench.store import open_workspace
from workbench.traces import conversations

SID = "llm-refund-agent-hijack"
FACILITATOR = local_admin()
WRONG = [
    ("jailbreak-who", "it was {jailbreak[principals][0]}", 5, "ana"),      # the right name in loose text: 0
    ("jailbreak-technique", "AML.T0051", 6, "ana"),                        # parent of AML.T0051.000: half of 10
    ("poison-technique", "AML.T0051.000", 7, "ben"),                       # the direct sibling: 0
    ("agency-who", "{poison[principals][0]}", 8, "ben"),                   # another incident's principal: 0
    ("contain", "block it", 9, "ben"),                                     # free text, not marked yet: 0
]
RIGHT = [
    ("jailbreak-who", "{jailbreak[principals][0]}", 20, "ana"),            # detects: TTD 20 min -> 10
    ("jailbreak-technique", "AML.T0051.000", 21, "ana"),
    ("poison-technique", "`AML.T0051.001`", 22, "ben"),
    ("agency-who", "{agency[principals][0]}", 23, "ben"),
    ("contain", "Roll back the refund article and disable the e-mail tool", 24, "ben"),
]


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trace drill, built once."""
    out = tmp_path_factory.mktemp("trace_drill")
    info = start_drill(scenarios_dir() / f"{SID}.md", out)
    assert info.incidents == 3 and info.alerts > 0
    return info.path


def test_trace_scenario_is_valid() -> None:
    s = load_scenario(scenarios_dir() / f"{SID}.md")
    assert {i.type for i in s.incidents} == {"llm_indirect_injection", "llm_direct_injection",
                                            "llm_excessive_agency"}
    assert {q.kind for q in s.questions} >= {"principal", "atlas"} and s.injects[0].at_s == 0
    assert check_scenario(s) == []


@pytest.mark.parametrize("extra, message", [
    ("    start: day 2 10:00\n", "takes only id, type and system"),
    ("", "unknown LLM incident type 'llm_nonsense'"),
])
def test_bad_trace_incidents_are_refused(extra: str, message: str) -> None:
    kind = "llm_nonsense" if "nonsense" in message else "llm_direct_injection"
    text = (f"---\nid: t\ntitle: t\nstory: s\nincidents:\n  - id: a\n    type: {kind}\n{extra}"
            "questions:\n  - {id: q, kind: principal, incident: a, text: who}\n"
            "injects:\n  - {at: T+0m, text: go}\n---\nbody\n")
    with pytest.raises(WorkbenchError, match=message):
        parse_scenario(text, "bad.md")


def test_builder_makes_a_trace_workspace_without_leaking_the_key(drill: Path) -> None:
    data = drill.with_name(f"{SID}.data")
    assert (data / "traces" / "spans").is_dir() and not (data / "traces" / "ground_truth.json").exists()
    assert not (data / "ground_truth.json").exists()
    with open_workspace(drill) as ws:
        truth = _truth(ws)
        assert ws.scalar("SELECT count(*) FROM trace_spans") > 500
        assert ws.scalar("SELECT canary FROM trace_systems WHERE system_id = 'bank-assist'")
        detectors = {r[0] for r in ws.rows("SELECT DISTINCT detector FROM alerts")}
    assert {"llm_indirect", "llm_injection", "llm_agency"} <= detectors
    incs = truth["incidents"]
    assert incs["poison"]["atlas"] == ["AML.T0051.001"] and incs["jailbreak"]["principals"]
    assert all(i["system_id"] == "bank-assist" and i["decision_ids"] for i in incs.values())
    secrets = {p for i in incs.values() for p in i["principals"]}
    for f in data.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".md", ".txt"):
            assert not any(p in f.read_text(errors="replace") for p in secrets), f


def test_entity_answers_on_trace_incidents() -> None:
    s = load_scenario(scenarios_dir() / f"{SID}.md")
    q = {x.id: x for x in s.questions}
    truth = {"incidents": {"jailbreak": {"principals": ["cust-0072"], "atlas": ["AML.T0051.000", "AML.T0054"]}}}
    assert grade(q["jailbreak-who"], "cust-0072", truth).points == 20
    assert grade(q["jailbreak-who"], "the customer cust-0072", truth).points == 0
    assert grade(q["jailbreak-who"], "cust-0072, cust-0001", truth).points == 10
    assert grade(q["jailbreak-technique"], "aml.t0054", truth).points == 10
    assert grade(q["poison-technique"], "AML.T0051.001, AML.T0051.000", truth).points == 7.5


def test_trace_drill_scored_on_scripted_answers(drill: Path) -> None:
    with open_workspace(drill) as ws:
        truth = _truth(ws)
        ctx = truth["incidents"]
        t0 = session.start_clock(ws, FACILITATOR, at=datetime.now(UTC) - timedelta(minutes=50))["started_at"]
        for qid, template, minute, who in WRONG:
            session.answer(ws, FACILITATOR, qid, template.format(**ctx), participant=who,
                           at=t0 + timedelta(minutes=minute))
        wrong = score(ws, FACILITATOR)
        assert wrong.total == pytest.approx(5.0), [(q["id"], q["points"]) for q in wrong.questions]
        assert wrong.time_to_detect["points"] == 0
        for qid, template, minute, who in RIGHT:
            session.answer(ws, FACILITATOR, qid, template.format(**ctx), participant=who,
                           at=t0 + timedelta(minutes=minute))
        session.mark_answer(ws, FACILITATOR, "contain", 10, "article and tool")
        # Work the case: an incident, a poisoned conversation frozen as evidence, three playbook steps.
        inc = case_incidents.create_incident(ws, FACILITATOR, "Poisoned refund article", "high",
                                             systems=["bank-assist"])["incident_id"]
        span = ctx["poison"]["decision_ids"][0]
        conv = ws.scalar("SELECT conversation_id FROM trace_spans WHERE span_id = ?", [span])
        conversations.freeze(ws, FACILITATOR, inc, "bank-assist", conv)
        for step in case_playbooks.get_playbook("ai-llm-indirect-injection").steps[:3]:
            case_playbooks.set_step(ws, FACILITATOR, inc, "ai-llm-indirect-injection", step.id, True)
        right = score(ws, FACILITATOR)
        assert [q["verdict"] for q in right.questions] == ["right"] * len(RIGHT)
        assert right.time_to_detect["points"] == 10  # the first right principal at T+20m
        assert right.evidence["relevant"] == 1 and right.playbook_steps["count"] == 3
        assert right.total == pytest.approx(70 + 10 + 3 + 2)
        assert {p["participant"] for p in right.participants} == {"ana", "ben"}
