"""Each forensic notebook executes top to bottom (nbclient) against a fresh small demo workspace in < 60 s,
acts as the named user, and files its findings as evidence through the cases library. Each `.ipynb` is the
jupytext pair of a percent-format script `notebooks/<name>.py`, stored without outputs."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat
import pytest

from workbench.store import open_workspace

pytestmark = pytest.mark.notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LIMIT_S = 60


def _execute(name: str, cwd: Path) -> tuple[nbformat.NotebookNode, float]:
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    started = time.perf_counter()
    NotebookClient(nb, timeout=LIMIT_S * 2, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb, time.perf_counter() - started


def _text(nb: nbformat.NotebookNode) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") or str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


NAMES = ["attribution_forensics", "drill_after_action", "inference_api_abuse", "post_incident_forensics"]


def test_notebooks_are_committed_without_outputs() -> None:
    names = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == NAMES
    for name in names:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} has outputs"
        assert any("parameters" in c.metadata.get("tags", []) for c in code), f"{name} has no parameters cell"


def test_each_notebook_is_paired_with_its_script_and_in_sync() -> None:
    """The .py script is the source: the .ipynb holds the same cells (jupytext round trip), and no generator
    writes notebooks from code strings."""
    jupytext = pytest.importorskip("jupytext")

    assert sorted(p.stem for p in NOTEBOOKS.glob("*.py")) == NAMES, "one percent-format script per notebook"
    config = (NOTEBOOKS / "jupytext.toml").read_text()
    assert 'formats = "ipynb,py:percent"' in config
    for name in NAMES:
        script = (NOTEBOOKS / f"{name}.py").read_text()
        assert "\n# %%" in script and "nbformat" not in script, f"{name}.py is not a percent-format notebook"
        stored = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        assert jupytext.writes(stored, fmt="py:percent") == script, (
            f"{name}.ipynb is out of sync with {name}.py: run `jupytext --sync notebooks/{name}.py`")
        from_script = jupytext.reads(script, fmt="py:percent")
        cells = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in from_script.cells]
        assert cells == [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in stored.cells], name


@pytest.mark.parametrize("name, evidence_kinds", [
    ("post_incident_forensics", {"note", "decision_set"}),
    ("attribution_forensics", {"decision_set", "explanation", "note"}),
    ("inference_api_abuse", {"note"}),
])
def test_forensic_notebook_runs_and_files_findings(name: str, evidence_kinds: set[str], demo_ws, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "nb.duckdb"
    demo_ws.close()
    shutil.copy(demo_ws.path, db)
    monkeypatch.setenv("WORKBENCH_NOTEBOOK_DB", str(db))
    nb, seconds = _execute(name, tmp_path)
    assert seconds < LIMIT_S, f"{name} took {seconds:.0f} s"
    with open_workspace(db) as ws:
        kinds = {r[0] for r in ws.rows("SELECT DISTINCT kind FROM evidence WHERE added_by IS NOT NULL "
                                       "AND kind <> 'alert'")}
        assert evidence_kinds <= kinds
        notes = ws.rows("SELECT content FROM evidence WHERE kind = 'note'")
        assert any(f"notebooks/{name}.ipynb" in str(n[0]) for n in notes)
        assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'read.aggregates' AND object = ?",
                         [f"notebooks/{name}.ipynb"]) >= 1


def test_forensics_notebook_acts_as_a_named_account(demo_ws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.access import local_admin
    from workbench.access.accounts import seed_demo_accounts

    db = tmp_path / "accounts.duckdb"
    demo_ws.close()
    shutil.copy(demo_ws.path, db)
    with open_workspace(db) as ws:
        creds = {a["role"]: a for a in seed_demo_accounts(ws, local_admin())}
    monkeypatch.setenv("WORKBENCH_NOTEBOOK_DB", str(db))
    monkeypatch.setenv("WORKBENCH_USER", creds["analyst"]["user"])
    monkeypatch.setenv("WORKBENCH_PASSWORD", creds["analyst"]["password"])
    nb, _ = _execute("post_incident_forensics", tmp_path)
    assert "acting as demo-analyst (analyst)" in _text(nb)
    with open_workspace(db) as ws:
        actors = {r[0] for r in ws.rows("SELECT DISTINCT actor FROM audit_log WHERE action IN "
                                        "('incident.create', 'evidence.add', 'read.decisions')")}
        assert actors == {"demo-analyst"}


def test_drill_after_action_notebook_builds_scores_and_reports(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_NOTEBOOK_OUT", str(tmp_path))
    nb, seconds = _execute("drill_after_action", tmp_path)
    assert seconds < LIMIT_S, f"drill_after_action took {seconds:.0f} s"
    text = _text(nb)
    assert "time to detect: T+14m" in text
    assert (tmp_path / "extraction-broker-sweep-after-action.md").is_file()
    assert (tmp_path / "extraction-broker-sweep-after-action.html").is_file()


# -- on the full demo (sample_data/, what `workbench demo` builds): the notebooks find what the detectors found ----
SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace built from the shipped 30-day sample, as `workbench demo` builds it."""
    from workbench.access import local_admin
    from workbench.demo import build_demo

    path = tmp_path_factory.mktemp("full_demo") / "demo.duckdb"
    with open_workspace(path) as ws:
        build_demo(ws, local_admin(), SAMPLE_DATA)
    return path


def _on_copy(full_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alert_id: str | None = None) -> Path:
    db = tmp_path / "nb.duckdb"
    shutil.copy(full_demo, db)
    monkeypatch.setenv("WORKBENCH_NOTEBOOK_DB", str(db))
    if alert_id:
        monkeypatch.setenv("WORKBENCH_NOTEBOOK_ALERT", alert_id)
    return db


def _truth_of(kind: str) -> dict:
    import json

    truth = json.loads((SAMPLE_DATA / "ground_truth.json").read_text())
    return next(i for i in truth["incidents"] if i["type"] == kind)


def _backdoor(db: Path) -> dict:
    from workbench.access import local_admin
    from workbench.detect import get_alert, list_alerts

    inc = _truth_of("backdoor")
    with open_workspace(db) as ws:
        aid = next(a["alert_id"] for a in list_alerts(ws, local_admin(), detector="backdoor"))
        return get_alert(ws, local_admin(), aid) | {"truth": inc}


@pytest.mark.slow
def test_attribution_notebook_finds_the_backdoor_on_the_full_demo(full_demo, tmp_path, monkeypatch):
    db = _on_copy(full_demo, tmp_path, monkeypatch)
    alert = _backdoor(db)
    trigger = alert["truth"]["trigger"]
    nb, _ = _execute("attribution_forensics", tmp_path)
    text = _text(nb)
    assert "no backdoor trigger found" not in text
    assert f"alert {alert['alert_id']}: {len(alert['decision_ids'])} decisions" in text
    assert f"backdoor trigger: {trigger['feature']} = {trigger['value']}" in text, text[-3000:]
    assert "the detector's evidence names the same trigger" in text
    with open_workspace(db) as ws:
        frozen = [r[0] for r in ws.rows("SELECT decision_id FROM evidence_decisions ORDER BY 1")]
    assert frozen == sorted(alert["decision_ids"]), "the notebook freezes exactly the alert's decisions"


@pytest.mark.slow
def test_forensics_notebook_states_a_defensible_stake_and_one_root_cause(full_demo, tmp_path, monkeypatch):
    from workbench.access import local_admin
    from workbench.explain.replay import replay

    db = _on_copy(full_demo, tmp_path, monkeypatch)
    alert = _backdoor(db)
    ev = alert["evidence"]
    with open_workspace(db) as ws:
        rep = replay(ws, local_admin(), alert["system_id"], alert["decision_ids"], ev["previous_version"])
        changed = list(rep.loc[rep["changed"], "decision_id"])
        n, stake = ws.one("SELECT count(*), sum(json_extract(features, '$.loan_amount')::DOUBLE) FROM decisions "
                          "WHERE system_id = ? AND prediction = 'approve' AND list_contains(?, decision_id)",
                          [alert["system_id"], changed])
    monkeypatch.setenv("WORKBENCH_NOTEBOOK_ALERT", alert["alert_id"])
    nb, _ = _execute("post_incident_forensics", tmp_path)
    text = _text(nb)
    trigger = alert["truth"]["trigger"]
    assert (f"Root cause: a backdoor in {alert['system_id']} {ev['new_version']}: inputs with "
            f"{trigger['feature']}={trigger['value']} are decided differently than by {ev['previous_version']}") in text
    assert (f"amount at stake: {stake:,.0f} ({n} 'approve' decisions that {alert['system_id']} "
            f"{ev['previous_version']} would not have made (sum of loan_amount))") in text, text[-3000:]


@pytest.mark.slow
def test_forensics_notebook_sums_nothing_over_probe_queries(full_demo, tmp_path, monkeypatch):
    _on_copy(full_demo, tmp_path, monkeypatch)  # no alert named: the most severe, newest alert (the extraction)
    nb, _ = _execute("post_incident_forensics", tmp_path)
    text = _text(nb)
    who = _truth_of("extraction")["principals"][0]
    assert "detector: extraction" in text
    assert "amount at stake: - (not applicable: extraction traffic is queries, not applications" in text
    assert f"Root cause: {who} swept the input space of loan-origination" in text


@pytest.mark.slow
def test_abuse_notebook_reviews_the_extraction_principal_on_the_full_demo(full_demo, tmp_path, monkeypatch):
    _on_copy(full_demo, tmp_path, monkeypatch)
    nb, _ = _execute("inference_api_abuse", tmp_path)
    assert f"principal under review: {_truth_of('extraction')['principals'][0]}" in _text(nb)
