"""What the forensic notebooks share: open a workspace as the signed-in user, audited aggregates, an alert's own
decisions, findings filed on an incident.

A notebook starts with ``nb = notebook.open_session("notebooks/<name>.ipynb", WORKSPACE)``: the workspace is a
shared handle (in a kernel the file is open only while a cell runs, elsewhere only while a call runs, so the app
and the CLI can use it between cells), the actor is the signed-in user (WORKBENCH_USER / WORKBENCH_PASSWORD) or,
without accounts, the OS user as admin, and without a workspace a fresh demo workspace is built in a temporary
folder that is removed when the kernel exits.
Every read of decision-level data and every write goes through the library, checked and audited like the app.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from workbench import audit, cases, explore
from workbench.access import Actor, local_admin, require
from workbench.access.session import actor_for
from workbench.demo import build_demo
from workbench.detect import get_alert
from workbench.errors import WorkbenchError
from workbench.store import Workspace, open_workspace


def fresh_demo_workspace(sample: str | Path | None = None) -> Path:
    """Build a demo workspace in a new temporary folder (removed when the process exits); return its path."""
    folder = Path(tempfile.mkdtemp(prefix="workbench-notebook-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "demo.duckdb"
    with open_workspace(path) as fresh:
        build_demo(fresh, local_admin(), Path(sample) if sample else None)
    return path


def fresh_drill_workspace(scenario: str) -> Path:
    """Start a drill of the scenario with the CLI, in its own process as a facilitator would, in a new temporary
    folder (removed when this process exits), with its clock started; return the drill workspace's path."""
    folder = Path(tempfile.mkdtemp(prefix="workbench-drill-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "workbench", "drill", "start", scenario, "--out", str(folder),
                           "--start-clock", "--json"], capture_output=True, text=True, check=False)
    if done.returncode:
        raise WorkbenchError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                             f"`workbench drill start {scenario}` failed")
    return Path(json.loads(done.stdout.splitlines()[-1])["path"])


def open_as_user(workspace: str | Path | None = None, *, sample: str | Path | None = None,
                 user: str | None = None, password: str | None = None) -> tuple[Workspace, Actor]:
    """A shared handle on the workspace (a fresh demo one when None) and the actor signed in on it."""
    path = Path(workspace) if workspace else fresh_demo_workspace(sample)
    ws = open_workspace(path, keep_open=False)
    with ws.hold():
        actor = actor_for(ws, user, password)
    hold_while_cells_run(ws)
    return ws, actor


def hold_while_cells_run(ws: Workspace) -> bool:
    """Inside an IPython kernel, keep the file open while each cell runs and let it go between cells (one open
    per cell instead of one per query); return whether it is done (False outside IPython)."""
    try:
        from IPython import get_ipython  # optional: present only where a kernel runs
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    held: list[AbstractContextManager[Workspace]] = []

    def before_cell(*_: object) -> None:
        hold = ws.hold()
        hold.__enter__()
        held.append(hold)

    def after_cell(*_: object) -> None:
        while held:
            held.pop().__exit__(None, None, None)

    shell.events.register("pre_run_cell", before_cell)
    shell.events.register("post_run_cell", after_cell)
    return True


def aggregate(ws: Workspace, actor: Actor, sql: str, params: Sequence[Any] | None = None, *, why: str = "",
              source: str = "notebook") -> pd.DataFrame:
    """An aggregate query run as the actor: `read:aggregates` checked, the query recorded in the audit chain."""
    require(actor, "read:aggregates", ws)
    with ws.hold():
        audit.record(ws, actor, "read.aggregates", source, {"why": why, "sql": " ".join(sql.split())[:400]})
        return ws.df(sql, params)


def alert_decisions(ws: Workspace, actor: Actor, alert: str | dict[str, Any]) -> pd.DataFrame:
    """The decisions an alert names (by id or as returned by get_alert), oldest first: masked per role, audited."""
    with ws.hold():
        found = get_alert(ws, actor, alert) if isinstance(alert, str) else alert
        require(actor, "read:decisions", ws)
        rows = explore.get_decisions(ws, actor, found.get("decision_ids") or [], system_id=found["system_id"])
    return rows.sort_values(["ts", "decision_id"], ignore_index=True) if len(rows) else rows


def file_finding(ws: Workspace, actor: Actor, incident_id: str, heading: str, text: str, *,
                 source: str = "notebook") -> dict[str, Any]:
    """Add a finding to the incident as a hashed note, "<heading> (<source>, by <user>): <text>"; return it."""
    return cases.evidence.add_note(ws, actor, incident_id, f"{heading} ({source}, by {actor.user}): {text}")


@dataclass
class Session:
    """A notebook's workspace and actor, and the name its reads and findings are recorded under."""

    ws: Workspace
    actor: Actor
    source: str

    def aggregate(self, sql: str, params: Sequence[Any] | None = None, why: str = "") -> pd.DataFrame:
        """An audited aggregate query (see `aggregate`)."""
        return aggregate(self.ws, self.actor, sql, params, why=why, source=self.source)

    def alert_decisions(self, alert: str | dict[str, Any]) -> pd.DataFrame:
        """An alert's own decisions, masked and audited (see `alert_decisions`)."""
        return alert_decisions(self.ws, self.actor, alert)

    def file_finding(self, incident_id: str, heading: str, text: str) -> dict[str, Any]:
        """A finding filed as a note on the incident (see `file_finding`)."""
        return file_finding(self.ws, self.actor, incident_id, heading, text, source=self.source)

    def describe(self) -> str:
        """One line: which workspace, acting as whom."""
        return (f"workspace {self.ws.path}; acting as {self.actor.user} ({self.actor.role}); "
                "reads and writes below are audited")


def open_session(source: str, workspace: str | Path | None = None, *, sample: str | Path | None = None,
                 user: str | None = None, password: str | None = None) -> Session:
    """Open the workspace (a fresh demo one when None) as the signed-in user, for the notebook named source."""
    ws, actor = open_as_user(workspace, sample=sample, user=user, password=password)
    return Session(ws, actor, source)
