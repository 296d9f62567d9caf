"""The workbench app (`streamlit run workbench`): sign-in, shared state, and navigation between the pages."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import streamlit as st

from workbench.app_pages import pages_for
from workbench.drills.workspace import is_drill
from workbench.ui import auth, connection
from workbench.ui.errors import shown
from workbench.ui.favicon import icon

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="AI incident workbench", page_icon=icon(), layout="wide")

ws = None
with shown("Opening the workspace"):
    ws = connection.get_ws()
if ws is None:
    st.info(f"The app serves `{connection.db_path()}` (set WORKBENCH_DB to choose another file).")
    st.stop()

# The file is open only for this run: the CLI and notebooks can use the workspace between runs.
with ExitStack() as run:
    held = False
    with shown("Opening the workspace"):
        run.enter_context(connection.run_hold(ws))
        held = True
    if not held:
        st.caption("The app retries on the next interaction.")
        st.stop()
    with shown("Opening the workspace"):
        connection.ensure_demo(ws)

    actor = auth.gate(ws)
    auth.sidebar_badge(actor)
    st.sidebar.caption(f"Workspace `{ws.path.name}`")

    sections: dict[str, list] = {}
    for spec in pages_for(actor, drill=is_drill(ws)):
        page = st.Page(str(HERE / "app_pages" / spec.file), title=spec.title, icon=spec.icon, default=spec.default)
        sections.setdefault(spec.section, []).append(page)

    st.navigation(sections).run()
