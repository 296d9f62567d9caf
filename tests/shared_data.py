"""Reference data from ../shared/datasets: skipped with a reason locally when absent, a failure under CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ATLAS_YAML = SHARED / "atlas" / "ATLAS.yaml"


def require(path: Path) -> Path:
    """The path if it exists; otherwise skip (locally) or fail (CI=true), naming what is missing."""
    if path.exists():
        return path
    message = f"reference data not found at {path} (the project expects ../shared/datasets beside the checkout)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
