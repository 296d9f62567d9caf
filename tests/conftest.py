"""Shared fixtures: a small generated sample and a workspace built from it (real DuckDB files, no mocks)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from workbench.access import Actor, local_admin
from workbench.store import Workspace, open_workspace

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "datasets"

# A small but complete sample: every incident type, a few days, two systems.
SMALL = {"seed": 11, "days": 6, "decisions_per_day": 4000}


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small labelled sample (all incident types) generated once per test session."""
    from workbench.sample import generate

    out = tmp_path_factory.mktemp("small_sample")
    generate(out, **SMALL)
    return out


@pytest.fixture(scope="session")
def small_clean_sample(tmp_path_factory: pytest.TempPathFactory, small_sample: Path) -> Path:
    """The clean variant of the small sample (same traffic, no incidents)."""
    from workbench.sample import generate

    out = tmp_path_factory.mktemp("small_clean")
    generate(out, clean=True, models_dir=small_sample, **SMALL)
    return out


@pytest.fixture(scope="session")
def _demo_ws_template(tmp_path_factory: pytest.TempPathFactory, small_sample: Path) -> Path:
    from workbench.demo import build_demo

    path = tmp_path_factory.mktemp("demo_template") / "demo.duckdb"
    ws = open_workspace(path)
    result = build_demo(ws, local_admin(), small_sample)
    ws.close()
    # A detector that fails is recorded and the others run on; every test built on the demo must see all of them.
    assert not result["detector_errors"], result["detector_errors"]
    return path


@pytest.fixture()
def demo_ws(tmp_path: Path, _demo_ws_template: Path) -> Workspace:
    """A fresh copy of a workspace built from the small sample (ingested, models registered, detected)."""
    path = tmp_path / "demo.duckdb"
    shutil.copy(_demo_ws_template, path)
    ws = open_workspace(path)
    yield ws
    ws.close()


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    """An empty workspace in a temporary file."""
    w = open_workspace(tmp_path / "ws.duckdb")
    yield w
    w.close()


@pytest.fixture()
def admin() -> Actor:
    """The single-user-mode actor."""
    return local_admin()


@pytest.fixture(autouse=True)
def _no_env_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WORKBENCH_DB", "WORKBENCH_USER", "WORKBENCH_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    os.environ.setdefault("WORKBENCH_NO_AUTODEMO", "1")


@pytest.fixture()
def run_cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """Run the CLI in-process as `workbench ARGS...`: (exit code, stdout, stderr). An unexpected exception
    propagates (WORKBENCH_DEBUG) instead of becoming one line, so a test sees the bug."""
    from workbench.cli import main

    monkeypatch.setenv("WORKBENCH_DEBUG", "1")

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["workbench", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
