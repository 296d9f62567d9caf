"""Cached library calls: aggregates computed in DuckDB once per (workspace, user, arguments) within a TTL."""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.access import Actor
from workbench.ui import lib
from workbench.ui.connection import get_ws, ws_key
from workbench.ui.errors import NotAvailable

TTL_SECONDS = 300
MAX_ENTRIES = 512


def has(module: str, name: str) -> bool:
    """Whether the library call exists in this build."""
    return lib.call(module, name) is not None


def need(module: str, name: str, feature: str) -> Any:
    """The library function, or raise NotAvailable (shown as an info box by ui.errors.shown)."""
    fn = lib.call(module, name)
    if fn is None:
        raise NotAvailable(feature, f"{module}.{name}")
    return fn


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def _call(key: str, module: str, name: str, user: str, role: str, args: tuple, kwargs: dict,
          _actor: Actor) -> Any:
    # The signed-in actor itself (unhashed: leading underscore); a rebuilt Actor(user, role) carries no sign-in.
    fn = lib.call(module, name)
    return fn(get_ws(), _actor, *args, **kwargs)


def call(module: str, name: str, actor: Actor, *args: Any, feature: str | None = None, **kwargs: Any) -> Any:
    """`module.name(ws, actor, *args, **kwargs)` through st.cache_data, keyed by workspace generation and user.

    The key holds the user, so reads of decision-level data stay per user (the library audits the first read;
    reruns of the same view within the TTL do not flood the audit log)."""
    need(module, name, feature or f"{module}.{name}")
    return _call(ws_key(), module, name, actor.user, actor.role, tuple(args), dict(kwargs), _actor=actor)


def fresh(module: str, name: str, actor: Actor, *args: Any, feature: str | None = None, **kwargs: Any) -> Any:
    """The same call without the cache (for writes and for data that must be current, e.g. the audit log)."""
    fn = need(module, name, feature or f"{module}.{name}")
    return fn(get_ws(), actor, *args, **kwargs)
