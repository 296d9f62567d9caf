"""The app's workspace: one shared handle per file that opens the file only while a run or action needs it.

The app never keeps the DuckDB file open between reruns, so the CLI and notebooks can write to the same workspace
while the app runs: each script run holds the file (`run_hold`) and closes it at the end; opening retries with
backoff while another process holds it (workbench.store.workspace), then shows one line."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from pathlib import Path

import streamlit as st

from workbench import demo, settings
from workbench.access import local_admin
from workbench.access.session import has_accounts
from workbench.store import Workspace, open_workspace

_demo_lock = threading.Lock()


def db_path() -> Path:
    """The workspace file the app serves: WORKBENCH_DB, else ./workbench.duckdb."""
    return settings.db_path().absolute()


@st.cache_resource(show_spinner="Opening the workspace…")
def _open(path: str) -> Workspace:
    # Cached: the handle (a factory for short-lived connections), not an open file. Migrates once, then closes.
    return open_workspace(path, keep_open=False)


def get_ws() -> Workspace:
    """The shared workspace handle of the file this app serves (one per process and path; file opened on use)."""
    return _open(str(db_path()))


def run_hold(ws: Workspace) -> AbstractContextManager[Workspace]:
    """Hold the file for one script run (or action): opened on entry, closed when the last run in flight ends."""
    return ws.hold()


def ws_key() -> str:
    """A cache key for the workspace and its data generation (changes after writes made in the app)."""
    return f"{db_path()}#{_GEN['n']}"


_GEN = {"n": 0}


def data_changed() -> None:
    """Call after the app wrote to the workspace: drops cached aggregates so every page shows the new state."""
    _GEN["n"] += 1
    st.cache_data.clear()


def ensure_demo(ws: Workspace) -> None:
    """On first start with an empty, account-less workspace, build the demo from the shipped sample."""
    if settings.get("no_autodemo") or ws.read_only:
        return
    if not demo.is_empty(ws) or has_accounts(ws):
        return
    with _demo_lock:
        if not demo.is_empty(ws):
            return
        with st.status("First start: building the demo workspace from the sample data…", expanded=True) as box:
            result = demo.build_demo(ws, local_admin(), progress=box.write)
            failed = result["detector_errors"]  # each already written in the box as one line
            box.update(label=f"Demo ready: {len(result['files'])} files, {result['models']} models, "
                             f"{result['alerts']} alerts" + (f"; {len(failed)} detector(s) failed" if failed else ""),
                       state="error" if failed else "complete", expanded=bool(failed))
    data_changed()
