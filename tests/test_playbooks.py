"""Playbooks: shipped ones lint clean, their ATLAS IDs exist in MITRE's data; parsing, progress, suggest."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from shared_data import require

from workbench import settings
from workbench.access import Actor
from workbench.cases import atlas, incidents, playbooks
from workbench.cases.playbook_format import PHASES, parse
from workbench.errors import PermissionDenied, WorkbenchError

ATLAS_YAML = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "atlas" / "ATLAS.yaml"
ANALYST = Actor("ana", "analyst")
SAMPLE_TYPES = {
    "extraction": "AML.T0024.002",
    "evasion": "AML.T0043.001",
    "backdoor": "AML.T0018.000",
    "unregistered_artifact": "AML.T0010.003",
    "dos_flood": "AML.T0029",
    "stolen_credential": "AML.T0012",
    "drift": "drift",
}


def _mitre_ids() -> set[str]:
    require(ATLAS_YAML)
    doc = yaml.safe_load(ATLAS_YAML.read_text(encoding="utf-8"))
    return {t["id"] for m in doc["matrices"] for t in m["techniques"]}


def test_shipped_playbooks_lint_clean() -> None:
    books = playbooks.load_playbooks()
    assert len(books) >= 7
    issues = playbooks.lint()
    assert issues == [], issues


def test_every_sample_incident_type_has_a_playbook() -> None:
    covered = {a for pb in playbooks.load_playbooks().values() for a in pb.applies_to}
    for kind, marker in SAMPLE_TYPES.items():
        assert marker in covered, f"no playbook applies to {kind} ({marker})"


def test_atlas_ids_exist_in_mitre_data() -> None:
    mitre = _mitre_ids()
    used = {a for pb in playbooks.load_playbooks().values() for a in pb.atlas}
    assert used and used <= mitre, used - mitre
    assert set(atlas.shipped()) <= mitre
    assert used <= set(atlas.shipped())
    assert playbooks.lint(atlas_path=ATLAS_YAML) == []


def test_newer_atlas_file_via_setting(monkeypatch) -> None:
    _mitre_ids()
    monkeypatch.setenv("WORKBENCH_ATLAS", str(ATLAS_YAML))
    assert len(atlas.catalog()) > len(atlas.shipped())
    assert atlas.name("AML.T0029") == "Denial of AI Service"


def test_parse_steps_ids_and_actions() -> None:
    pb = playbooks.get_playbook("ai-model-extraction")
    assert [k for k, _ in PHASES] == list(dict.fromkeys(s.phase for s in pb.steps))
    step = pb.step("detection-2")
    assert step is not None and step.action == {
        "verb": "evidence",
        "args": ["alert"],
        "text": "evidence alert",
    }
    assert all(s.text for s in pb.steps)


def test_lint_catches_problems(tmp_path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text(
        "---\nid: Bad Id\ntitle: x\nversion: one\napplies_to: [AML.T9999]\nseverity: [urgent]\n"
        "roles: [boss]\nreferences: [x]\n---\n## Preparation\n- [ ] a `action: teleport`\n"
        "## Containment\n- [ ] b {#dup}\n- [ ] c {#dup}\n- [ ] d `action: export docx`\n"
    )
    messages = " | ".join(i["message"] for i in playbooks.lint(tmp_path) if i["level"] == "error")
    for expected in (
        "slug",
        "version",
        "AML.T9999",
        "urgent",
        "boss",
        "teleport",
        "missing phase",
        "used twice",
        "docx",
    ):
        assert expected in messages, expected
    assert parse(tmp_path / "none.md", "no front matter\n").problems


def _custom_dir(tmp_path: Path) -> Path:
    text = (settings.playbooks_dir() / "ai-model-extraction.md").read_text(encoding="utf-8")
    (tmp_path / "ai-model-extraction.md").write_text(text, encoding="utf-8")
    return tmp_path


def test_progress_set_and_unset(ws, tmp_path) -> None:
    iid = incidents.create_incident(ws, ANALYST, "x", "high", atlas=["AML.T0024.002"])["incident_id"]
    r = playbooks.set_step(
        ws, ANALYST, iid, "ai-model-extraction", "containment-1", True, "key revoked, CHG-42"
    )
    assert r["done"] and r["by"] == "ana"
    (prog,) = playbooks.progress(ws, Actor("aud", "auditor"), iid)
    assert prog["done"] == 1 and prog["total"] == len(playbooks.get_playbook("ai-model-extraction").steps)
    step = next(s for s in prog["steps"] if s["step_id"] == "containment-1")
    assert step["note"] == "key revoked, CHG-42" and step["by"] == "ana" and step["at"] is not None
    playbooks.set_step(ws, ANALYST, iid, "ai-model-extraction", "containment-1", False, "undo")
    assert playbooks.progress(ws, ANALYST, iid)[0]["done"] == 0
    assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'playbook.step'") == 2
    with pytest.raises(WorkbenchError, match="no step"):
        playbooks.set_step(ws, ANALYST, iid, "ai-model-extraction", "containment-99", True)
    for role in ("viewer", "auditor"):
        with pytest.raises(PermissionDenied):
            playbooks.set_step(ws, Actor("x", role), iid, "ai-model-extraction", "containment-1", True)


def test_suggest_by_atlas_and_detector(ws) -> None:
    iid = incidents.create_incident(ws, ANALYST, "x", "high", atlas=["AML.T0029"])["incident_id"]
    top = playbooks.suggest(ws, ANALYST, iid)[0]
    assert top["playbook_id"] == "ai-denial-of-service" and top["atlas"] == ["AML.T0029"]
    iid2 = incidents.create_incident(ws, ANALYST, "y", "high", atlas=["AML.T0024.001"])["incident_id"]
    fam = playbooks.suggest(ws, ANALYST, iid2)
    top = {r["playbook_id"]: r for r in fam if fam and r["score"] == fam[0]["score"]}
    # ai-llm-sensitive-data applies to the AML.T0024 family too: the two tie, ranked by id.
    assert "ai-model-extraction" in top and top["ai-model-extraction"]["related_atlas"] == ["AML.T0024.001"]


def test_install_needs_lead(ws, tmp_path) -> None:
    target = tmp_path / "books"
    target.mkdir()
    src = settings.playbooks_dir() / "ai-model-drift.md"
    with pytest.raises(PermissionDenied):
        playbooks.install(ws, ANALYST, src, target)
    assert playbooks.install(ws, Actor("lee", "lead"), src, target)["id"] == "ai-model-drift"
    assert (target / "ai-model-drift.md").exists()


BAD_FRONT = (
    "---\nid: Bad Id\ntitle: x\nversion: one\napplies_to: [AML.T9999, extraction]\nseverity: [urgent, high]\n"
    "roles:\n  - analyst\n  - boss\nreferences: [x, '']\n---\n"
)
BODY = "".join(f"## {title}\n- [ ] step {{#s-{key}}}\n" for key, title in PHASES)


def test_lint_locates_every_front_matter_problem(tmp_path) -> None:
    (tmp_path / "bad.md").write_text(BAD_FRONT + BODY + "- [ ] again {#s-post-incident}\n")
    errors = {(i["line"], i["message"]) for i in playbooks.lint(tmp_path) if i["level"] == "error"}
    assert errors == {
        (2, "id: 'Bad Id' must be a lower-case slug (a-z, 0-9, -)"),
        (4, "version: 'one' must look like 1.0 or 1.0.0"),
        (5, "applies_to: unknown ATLAS technique ID AML.T9999"),
        (6, "severity[0]: 'urgent' is not one of low, medium, high, critical"),
        (9, "roles[1]: 'boss' is not one of viewer, analyst, lead, auditor, admin"),
        (10, "references[1]: a reference is empty (give a title or a url)"),
        (22, "step id 's-post-incident' is used twice (also line 21)"),
    }


def test_lint_names_every_missing_field(tmp_path) -> None:
    (tmp_path / "empty.md").write_text("---\nsummary: only this\n---\n" + BODY)
    missing = [i["message"] for i in playbooks.lint(tmp_path) if i["level"] == "error"]
    assert missing == [f"{key}: missing" for key in playbooks.REQUIRED]


def test_install_lists_every_error_one_per_line(ws, tmp_path) -> None:
    src = tmp_path / "bad.md"
    src.write_text(BAD_FRONT + BODY)
    with pytest.raises(WorkbenchError) as exc:
        playbooks.install(ws, Actor("lee", "lead"), src, tmp_path / "books")
    head, *lines = str(exc.value).splitlines()
    assert head.startswith("bad.md: 6 problems")
    assert [ln.split(":")[1].strip() for ln in lines] == [f"line {n}" for n in (2, 4, 5, 6, 9, 10)]
    assert all(ln.startswith("  bad.md: line ") for ln in lines)
    assert exc.value.problems[1].message.startswith("version: 'one'")


def test_known_names_come_from_detect_and_store(tmp_path) -> None:
    import subprocess
    import sys

    from workbench import detect
    from workbench.store.queries import all_queries

    assert playbooks.known_detectors() == set(detect.DETECTOR_NAMES) >= {"extraction", "drift", "llm_injection"}
    assert playbooks.known_queries() == set(all_queries())
    # workbench.detect imports workbench.cases (masking) first: the playbook library must still load and lint.
    code = "import workbench.detect; from workbench.cases import playbooks; print(len(playbooks.known_detectors()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == len(detect.DETECTOR_NAMES)
