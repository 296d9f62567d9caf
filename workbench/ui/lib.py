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


def icon() -> Any:
    """The app's favicon drawn here (a shield), served by the app itself: a ":material/..." page icon makes the
    browser fetch it from fonts.gstatic.com, and nothing the browser loads may leave the machine."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.polygon([(32, 4), (58, 14), (54, 40), (32, 60), (10, 40), (6, 14)], fill=(31, 119, 180, 255))
    draw.polygon([(32, 14), (48, 20), (45, 38), (32, 50)], fill=(255, 255, 255, 200))
    return img
