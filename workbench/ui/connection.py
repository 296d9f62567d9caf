"""The app's workspace: one shared Workspace per file (a cursor per thread inside), and the first-start demo."""

from __future__ import annotations

import threading
from pathlib import Path

import streamlit as st

from workbench import settings
from workbench.access import local_admin
from workbench.store import Workspace, open_workspace

_demo_lock = threading.Lock()


def db_path() -> Path:
    """The workspace file the app serves: WORKBENCH_DB, else ./workbench.duckdb."""
    return settings.db_path().absolute()


@st.cache_resource(show_spinner="Opening the workspace…")
def _open(path: str) -> Workspace:
    return open_workspace(path)


def get_ws() -> Workspace:
    """The shared Workspace of the file this app serves (opened once per process, per path)."""
    return _open(str(db_path()))


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
    from workbench import demo
    from workbench.session import has_accounts

    if not demo.is_empty(ws) or has_accounts(ws):
        return
    with _demo_lock:
        if not demo.is_empty(ws):
            return
        with st.status("First start: building the demo workspace from the sample data…", expanded=True) as box:
            result = demo.build_demo(ws, local_admin(), progress=box.write)
            box.update(label=f"Demo ready: {len(result['files'])} files, {result['models']} models, "
                             f"{result['alerts']} alerts", state="complete", expanded=False)
    data_changed()
