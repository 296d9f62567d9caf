"""CACAO 2.0 export: required fields, deterministic ids, a valid workflow for every shipped playbook."""

from __future__ import annotations

import json

import pytest

from workbench.cases import cacao, playbooks

REQUIRED = (
    "type",
    "spec_version",
    "id",
    "name",
    "created_by",
    "created",
    "modified",
    "workflow_start",
    "workflow",
)


@pytest.mark.parametrize("playbook_id", sorted(playbooks.load_playbooks()))
def test_export_has_required_fields_and_valid_workflow(playbook_id: str) -> None:
    pb = playbooks.get_playbook(playbook_id)
    doc = cacao.to_cacao(pb)
    for key in REQUIRED:
        assert doc.get(key), key
    assert doc["type"] == "playbook" and doc["spec_version"] == "cacao-2.0"
    assert doc["id"].startswith("playbook--") and doc["created_by"].startswith("identity--")
    assert cacao.validate(doc) == []
    wf = doc["workflow"]
    assert wf[doc["workflow_start"]]["type"] == "start"
    actions = [s for s in wf.values() if s["type"] == "action"]
    assert len(actions) == len(pb.steps)
    assert all(c["type"] == "manual" and c["command"] for s in actions for c in s["commands"])
    # chained: following on_completion from start visits every action once and ends at the end step
    seen, sid = [], wf[doc["workflow_start"]]["on_completion"]
    while wf[sid]["type"] != "end":
        seen.append(sid)
        sid = wf[sid]["on_completion"]
    assert len(seen) == len(set(seen)) == len(actions)
    json.dumps(doc)


def test_export_is_deterministic() -> None:
    pb = playbooks.get_playbook("ai-backdoor-poisoned-version")
    assert cacao.to_cacao(pb) == cacao.to_cacao(pb)
    assert cacao.to_cacao(pb)["created"] == "2025-01-15T00:00:00.000Z"


def test_validate_reports_problems() -> None:
    doc = cacao.to_cacao(playbooks.get_playbook("ai-model-drift"))
    broken = {k: v for k, v in doc.items() if k != "created_by"}
    broken["spec_version"] = "cacao-1.0"
    first = next(k for k, v in doc["workflow"].items() if v["type"] == "action")
    broken["workflow"] = {**doc["workflow"], first: {**doc["workflow"][first], "on_completion": "action--x"}}
    problems = " | ".join(cacao.validate(broken))
    assert "created_by" in problems and "spec_version" in problems and "not in workflow" in problems
