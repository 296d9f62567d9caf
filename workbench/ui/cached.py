"""Cached library calls: aggregates computed in DuckDB once per (workspace, user, arguments) within a TTL.

Pages import the library's functions and pass the function itself: `cached.call(list_incidents, actor,
open_only=True)`. The cache keys on the function's module and qualified name, the workspace generation, the
user and the arguments; a renamed function fails at the page's import, not here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import streamlit as st

from workbench.access import Actor
from workbench.store import Workspace
from workbench.ui.connection import get_ws, ws_key

TTL_SECONDS = 300
MAX_ENTRIES = 512

P = ParamSpec("P")
R = TypeVar("R")


def key_of(fn: Callable[..., Any]) -> str:
    """The cache's name for a library function: `module.qualname`."""
    return f"{fn.__module__}.{fn.__qualname__}"


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def _call(key: str, name: str, user: str, role: str, args: tuple, kwargs: dict, _fn: Callable[..., Any],
          _actor: Actor) -> Any:
    # The function and the signed-in actor itself are unhashed (leading underscore): `name` stands for the
    # function, and a rebuilt Actor(user, role) would carry no sign-in.
    return _fn(get_ws(), _actor, *args, **kwargs)


def call(fn: Callable[Concatenate[Workspace, Actor, P], R], actor: Actor, /, *args: P.args,
         **kwargs: P.kwargs) -> R:
    """`fn(ws, actor, *args, **kwargs)` through st.cache_data, keyed by workspace generation, user and arguments.

    The key holds the user, so reads of decision-level data stay per user (the library audits the first read;
    reruns of the same view within the TTL do not flood the audit log)."""
    return _call(ws_key(), key_of(fn), actor.user, actor.role, tuple(args), dict(kwargs), _fn=fn, _actor=actor)


def fresh(fn: Callable[Concatenate[Workspace, Actor, P], R], actor: Actor, /, *args: P.args,
          **kwargs: P.kwargs) -> R:
    """The same call without the cache (for writes and for data that must be current, e.g. the audit log);
    after a write the caller runs `connection.data_changed()` to drop the cached aggregates."""
    return fn(get_ws(), actor, *args, **kwargs)
