"""Find library calls that may not be built yet, so a page can say so instead of failing."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def call(module: str, name: str) -> Callable[..., Any] | None:
    """The function `module.name`, or None when that module or function does not exist (yet)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise
    return getattr(mod, name, None)


def module(name: str) -> Any | None:
    """The module, or None when it does not exist (yet)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise
