"""workbench.notebook: what the notebooks share (a shared handle opened as the signed-in user, audited
aggregates, an alert's own decisions masked per role, findings filed on an incident, a throwaway demo)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import cases, notebook
from workbench.access import local_admin
from workbench.access.accounts import seed_demo_accounts
from workbench.access.masking import mark_personal
from workbench.detect import list_alerts
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.store import Workspace

SOURCE = "notebooks/test.ipynb"


def _closed(ws: Workspace) -> Path:
    ws.close()
    return ws.path


def _with_accounts(ws: Workspace) -> dict[str, dict[str, str]]:
    """Seed one account per role (the workspace then requires sign-in); return them by role."""
    return {a["role"]: a for a in seed_demo_accounts(ws, local_admin())}


def _alert_with_decisions(ws: Workspace) -> dict:
    return next(a for a in list_alerts(ws, local_admin()) if a["decision_ids"])


def test_single_user_session_does_not_hold_the_file(demo_ws: Workspace) -> None:
    path = _closed(demo_ws)
    nb = notebook.open_session(SOURCE, path)
    assert (nb.actor.user, nb.actor.role) == (local_admin().user, "admin")
    assert f"acting as {nb.actor.user} (admin)" in nb.describe()
    counts = nb.aggregate("SELECT system_id, count(*) AS n FROM decisions GROUP BY 1 ORDER BY 1", why="sizes")
    assert counts["n"].sum() > 0
    assert not nb.ws.is_open, "a notebook's handle must not hold the workspace between calls"
    other = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}).close()"],
                           capture_output=True, text=True, check=False)
    assert other.returncode == 0, other.stderr
    row = nb.ws.one("SELECT actor, details FROM audit_log WHERE action = 'read.aggregates' AND object = ? "
                    "ORDER BY seq DESC LIMIT 1", [SOURCE])
    assert row is not None and row[0] == nb.actor.user
    assert json.loads(row[1])["why"] == "sizes"


def test_in_a_kernel_the_file_is_held_while_a_cell_runs_and_let_go_after(demo_ws: Workspace) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    path = _closed(demo_ws)
    shell = InteractiveShell.instance()
    try:
        shell.run_cell(f"from workbench import notebook\nnb = notebook.open_session('x', {str(path)!r})").raise_error()
        shell.run_cell("during = nb.ws.is_open\nn = nb.aggregate('SELECT count(*) FROM decisions').iloc[0, 0]"
                       ).raise_error()
        assert shell.user_ns["during"] is True and shell.user_ns["n"] > 0
        assert not shell.user_ns["nb"].ws.is_open, "let go between cells"
        shell.run_cell("raise ValueError('a failing cell')")
        assert not shell.user_ns["nb"].ws.is_open, "let go after a failing cell too"
    finally:
        InteractiveShell.clear_instance()


def test_session_signs_in_from_the_environment(demo_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = _with_accounts(demo_ws)
    path = _closed(demo_ws)
    with pytest.raises(WorkbenchError, match="has accounts"):
        notebook.open_as_user(path)
    monkeypatch.setenv("WORKBENCH_USER", creds["analyst"]["user"])
    monkeypatch.setenv("WORKBENCH_PASSWORD", "not the password")
    with pytest.raises(WorkbenchError):
        notebook.open_as_user(path)
    monkeypatch.setenv("WORKBENCH_PASSWORD", creds["analyst"]["password"])
    ws, actor = notebook.open_as_user(path)
    assert (actor.user, actor.role) == (creds["analyst"]["user"], "analyst")
    assert not ws.is_open


def test_alert_decisions_are_the_alerts_own_masked_per_role_and_audited(demo_ws: Workspace) -> None:
    alert = _alert_with_decisions(demo_ws)
    mark_personal(demo_ws, local_admin(), alert["system_id"], ["income"])
    creds = _with_accounts(demo_ws)
    path = _closed(demo_ws)
    seen = {}
    for role in ("analyst", "lead"):
        nb = notebook.open_session(SOURCE, path, user=creds[role]["user"], password=creds[role]["password"])
        rows = nb.alert_decisions(alert["alert_id"])
        assert sorted(rows["decision_id"]) == sorted(alert["decision_ids"])
        assert list(rows["ts"]) == sorted(rows["ts"]), "oldest first"
        seen[role] = rows["f.income"].astype(str)
    assert seen["analyst"].str.startswith("hmac:").all(), "an analyst sees personal features as tokens"
    assert not seen["lead"].str.startswith("hmac:").any(), "a lead may read personal data"
    viewer = notebook.open_session(SOURCE, path, user=creds["viewer"]["user"], password=creds["viewer"]["password"])
    with pytest.raises(PermissionDenied):
        viewer.alert_decisions(alert["alert_id"])
    readers = {r[0] for r in viewer.ws.rows("SELECT DISTINCT actor FROM audit_log WHERE action = 'read.decisions'")}
    assert {creds["analyst"]["user"], creds["lead"]["user"]} <= readers


def test_file_finding_adds_a_hashed_note_naming_the_notebook_and_user(demo_ws: Workspace) -> None:
    path = _closed(demo_ws)
    nb = notebook.open_session(SOURCE, path)
    incident = cases.create_incident(nb.ws, nb.actor, "notebook finding", "low")
    note = nb.file_finding(incident["incident_id"], "Forensics", "3 decisions; root cause: a test.")
    assert note["kind"] == "note" and note["sha256"]
    text = f"Forensics ({SOURCE}, by {nb.actor.user}): 3 decisions; root cause: a test."
    items = cases.list_evidence(nb.ws, nb.actor, incident["incident_id"], with_content=True)
    assert [e["content"]["text"] for e in items if e["kind"] == "note"] == [text]
    assert not nb.ws.is_open


@pytest.mark.slow
def test_fresh_demo_workspace_is_built_and_removed_at_exit(small_sample: Path) -> None:
    code = ("from workbench import notebook\n"
            f"nb = notebook.open_session('x', None, sample={str(small_sample)!r})\n"
            "print(nb.ws.path, nb.ws.scalar('SELECT count(*) FROM alerts') > 0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    path, detected = done.stdout.split()
    assert detected == "True", "the fresh workspace is a full demo (ingested and detected)"
    assert Path(path).name == "demo.duckdb" and not Path(path).parent.exists(), "removed when the process exits"
