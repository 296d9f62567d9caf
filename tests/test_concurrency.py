"""One workspace, several fronts at once: the app (AppTest), CLI commands and a notebook-style process write to
the same DuckDB file together, and nothing is lost (issue 16 item 4). Real files, real subprocesses, no mocks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench import audit
from workbench.access import local_admin
from workbench.errors import WorkspaceBusy
from workbench.store import Workspace, open_workspace

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "workbench" / "streamlit_app.py"

# Holds the file read-write for argv[2] seconds, like a long-running command; prints "held" once it has it.
HOLDER = ("import duckdb, sys, time\n"
          "c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(float(sys.argv[2])); c.close()\n")

# A notebook: a shared handle (keep_open=False) that reads and writes between other fronts' turns.
NOTEBOOK = """
import sys, time
from workbench.access import local_admin
from workbench.cases import incidents
from workbench.store import open_workspace
ws = open_workspace(sys.argv[1], keep_open=False)
for i in range(int(sys.argv[2])):
    ws.scalar("SELECT count(*) FROM decisions")
    incidents.create_incident(ws, local_admin(), f"notebook-{i}", "low")
    time.sleep(0.2)
print("notebook done", flush=True)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    return {**env, "WORKBENCH_NO_AUTODEMO": "1", **extra}


def _hold(db: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _cli(db: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args, "--db", str(db)], capture_output=True,
                          text=True, env=_env(**env), timeout=120)


@pytest.fixture()
def shared_db(demo_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A closed copy of the demo workspace that the app serves through WORKBENCH_DB."""
    demo_ws.execute("CHECKPOINT")
    path = tmp_path / "shared.duckdb"
    shutil.copy(demo_ws.path, path)
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_NO_AUTODEMO", "1")
    return path


def test_shared_handle_closes_the_file_between_calls(shared_db: Path) -> None:
    ws = open_workspace(shared_db, keep_open=False)
    assert not ws.is_open, "migrated, then closed"
    assert ws.scalar("SELECT count(*) FROM decisions") > 0
    assert not ws.is_open
    # another process can write now
    assert _cli(shared_db, "incident", "create", "between calls").returncode == 0
    with ws.hold():
        assert ws.is_open
        with ws.transaction() as cur:
            cur.execute("SELECT 1")
        assert ws.is_open, "a transaction inside a hold keeps the file"
    assert not ws.is_open
    assert ws.scalar("SELECT count(*) FROM incidents WHERE title = 'between calls'") == 1


def test_use_outside_a_hold_closes_after_idle(shared_db: Path) -> None:
    from workbench.store import workspace

    ws = open_workspace(shared_db, keep_open=False)
    ws.con.execute("SELECT 1").fetchall()  # raw cursor use, e.g. an app fragment's rerun
    assert ws.is_open
    time.sleep(workspace.IDLE_SECONDS * 2.5)
    assert not ws.is_open, "the idle timer closed the file"
    assert ws.con.execute("SELECT 2").fetchone() == (2,), "and the next use reopens it"


def test_open_waits_for_a_short_holder(shared_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_LOCK_WAIT", "20")
    holder = _hold(shared_db, 1.5)
    try:
        t0 = time.monotonic()
        ws = open_workspace(shared_db)
        waited = time.monotonic() - t0
        ws.close()
    finally:
        holder.wait(10)
    assert waited > 0.5, "it really waited for the other process"


def test_busy_is_one_line_in_the_cli_and_the_app(shared_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_LOCK_WAIT", "0.5")
    holder = _hold(shared_db, 60)
    try:
        with pytest.raises(WorkspaceBusy, match="busy in another process"):
            open_workspace(shared_db)
        got = _cli(shared_db, "incident", "list", WORKBENCH_LOCK_WAIT="0.5")
        assert got.returncode == 2
        lines = got.stderr.strip().splitlines()
        assert len(lines) == 1 and "busy in another process" in lines[0], got.stderr
        assert "Traceback" not in got.stderr
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.error and "busy in another process" in at.error[0].value
    finally:
        holder.kill()
        holder.wait(10)
    at.run()  # the holder is gone: the next interaction works
    assert not at.exception and not at.error
    assert at.title[0].value == "Overview"


@pytest.mark.slow
def test_app_cli_and_notebook_write_together(shared_db: Path) -> None:
    """The app creates incidents while two CLI loops and a notebook create theirs: every one of them lands."""
    n_cli, n_nb, n_app = 4, 6, 4
    loop = ("import subprocess, sys\n"
            "for i in range(int(sys.argv[3])):\n"
            "    r = subprocess.run([sys.executable, '-m', 'workbench', 'incident', 'create', f'{sys.argv[2]}-{i}',"
            " '--db', sys.argv[1]], capture_output=True, text=True)\n"
            "    print(r.returncode, r.stderr.strip()[:300], flush=True)\n")
    others = [subprocess.Popen([sys.executable, "-c", loop, str(shared_db), f"cli{k}", str(n_cli)],
                               stdout=subprocess.PIPE, text=True, env=_env(WORKBENCH_LOCK_WAIT="60"))
              for k in range(2)]
    others.append(subprocess.Popen([sys.executable, "-c", NOTEBOOK, str(shared_db), str(n_nb)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=_env(WORKBENCH_LOCK_WAIT="60")))
    os.environ["WORKBENCH_LOCK_WAIT"] = "60"
    try:
        at = AppTest.from_file(str(APP), default_timeout=120).run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        at.switch_page("app_pages/incidents.py").run()
        for i in range(n_app):
            at.text_input(key="inc_new_title").input(f"app-{i}")
            [b for b in at.button if b.label == "Create"][0].click().run()
            assert not at.exception and not at.error, [e.value for e in at.exception or at.error]
        outs = [p.communicate(timeout=600)[0] for p in others]
    finally:
        os.environ.pop("WORKBENCH_LOCK_WAIT", None)
        for p in others:
            if p.poll() is None:
                p.kill()
    for p, out in zip(others, outs, strict=True):
        assert p.returncode == 0, out
    assert all(line.startswith("0 ") or line == "0" for out in outs[:2] for line in out.strip().splitlines()), outs
    assert "notebook done" in outs[2]
    with open_workspace(shared_db) as ws:
        titles = {r[0] for r in ws.rows("SELECT title FROM incidents")}
        expected = ({f"cli{k}-{i}" for k in range(2) for i in range(n_cli)} | {f"notebook-{i}" for i in range(n_nb)}
                    | {f"app-{i}" for i in range(n_app)})
        assert expected <= titles, sorted(expected - titles)
        created = ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'incident.create'")
        assert created == len(titles) == len(expected)
        assert audit.verify(ws, local_admin()).ok


@pytest.mark.slow
def test_notebook_removes_its_temporary_workspace(small_sample: Path) -> None:
    """The notebooks' fresh demo workspace (built when no WORKBENCH_NOTEBOOK_DB is given) goes with the kernel."""
    code = ("import sys\nfrom workbench.notebook import fresh_demo_workspace\n"
            "path = fresh_demo_workspace(sys.argv[2])\nprint(path, flush=True)\n")
    got = subprocess.run([sys.executable, "-c", code, str(ROOT / "notebooks"), str(small_sample)],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert got.returncode == 0, got.stderr[-2000:]
    path = Path(got.stdout.strip().splitlines()[-1])
    assert path.name == "demo.duckdb" and "workbench-notebook-" in path.parent.name
    assert not path.parent.exists(), f"{path.parent} left behind"
