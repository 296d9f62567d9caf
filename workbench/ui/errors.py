"""No traceback ever reaches the page: WorkbenchError becomes st.error saying what to do; bugs get one line."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import duckdb
import streamlit as st

from workbench.errors import PermissionDenied, WorkbenchError, WorkspaceBusy

log = logging.getLogger("workbench.app")
F = TypeVar("F", bound=Callable[..., Any])


def message_for(exc: BaseException) -> str:
    """The one-line message (with what to do) that the page shows for an exception."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, PermissionDenied):
        return f"Not allowed: {text}. Ask an admin for a role that permits it, or sign in as another user."
    if isinstance(exc, WorkspaceBusy):
        return f"{text}."
    if isinstance(exc, WorkbenchError):
        return text
    if isinstance(exc, duckdb.Error):
        return (f"The workspace query failed ({type(exc).__name__}: {text}). "
                "Reload the page; if it persists, run `workbench status` on the workspace.")
    return (f"Something went wrong ({type(exc).__name__}: {text}). This is a bug in the workbench; "
            "the details are in the server log. Reload the page to continue.")


@contextmanager
def shown(what: str | None = None) -> Iterator[None]:
    """Run a block; a WorkbenchError or any bug is shown as one st.error line instead of a traceback."""
    try:
        yield
    except WorkbenchError as exc:
        st.error(((what + ": ") if what else "") + message_for(exc), icon="⚠️")
    except Exception as exc:  # noqa: BLE001 - the point is that nothing escapes as a traceback
        log.exception("app error%s", f" in {what}" if what else "")
        st.error(((what + ": ") if what else "") + message_for(exc), icon="🛑")


def guarded(fn: F) -> F:
    """Decorator: run a page body (or a section) under `shown`, so it never shows a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with shown():
            return fn(*args, **kwargs)
        return None

    return wrapper  # type: ignore[return-value]

