"""What every page starts with: the workspace and the signed-in actor set up by the router."""

from __future__ import annotations

import streamlit as st

from workbench.access import Actor
from workbench.store import Workspace
from workbench.ui.auth import current_actor
from workbench.ui.connection import get_ws


def context() -> tuple[Workspace, Actor]:
    """The workspace and actor of this session (the router signs in before any page runs)."""
    actor = current_actor()
    if actor is None:
        st.warning("Not signed in: open the app from its start page.")
        st.stop()
    return get_ws(), actor


def require_page(actor: Actor, permission: str, what: str) -> None:
    """Stop the page with a clear message when the actor's role lacks the permission."""
    if not actor.can(permission):
        st.warning(f"Your role ({actor.role}) cannot {what}. Ask an admin if you need it.", icon="🔒")
        st.stop()
