"""Each forensic notebook executes top to bottom (nbclient) against a fresh small demo workspace in < 60 s,
acts as the named user, and files its findings as evidence through the cases library."""

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


def test_notebooks_are_committed_without_outputs() -> None:
    names = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["attribution_forensics", "drill_after_action", "inference_api_abuse", "post_incident_forensics"]
    for name in names:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} has outputs"
        assert any("parameters" in c.metadata.get("tags", []) for c in code), f"{name} has no parameters cell"


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
    from workbench.cases.accounts import seed_demo_accounts

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
