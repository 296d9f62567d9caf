"""The installed CLI's exit codes: a `typer.Exit(n)` inside a command must reach the shell (QA regression)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=120)


def test_failed_file_exits_non_zero(tmp_path: Path) -> None:
    proc = _run("ingest", "--db", str(tmp_path / "w.duckdb"), str(tmp_path / "missing.jsonl"))
    assert proc.returncode == 1
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_verify_exits_one_when_a_source_vanished(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_text('{"decision_id":"a","ts":"2026-10-03T09:14:07Z","system_id":"s","model_version":"1",'
                   '"principal":"p","prediction":"x","features":{"f":1}}\n')
    db = str(tmp_path / "w.duckdb")
    assert _run("ingest", "--db", db, str(src)).returncode == 0
    src.unlink()
    assert _run("verify", "--db", db).returncode == 1


def test_replay_takes_an_alert_as_the_readme_shows(demo_ws) -> None:
    row = demo_ws.one("SELECT alert_id, system_id FROM alerts WHERE detector = 'backdoor' LIMIT 1")
    assert row is not None
    demo_ws.close()
    db = str(demo_ws.path)
    other = _run("replay", "--db", db, "--system", "no-such-system", "--to-version", "1.0", "--alert", row[0])
    assert other.returncode == 2 and "is about" in other.stderr
    proc = _run("replay", "--db", db, "--system", row[1], "--to-version", "1.0", "--alert", row[0], "--json")
    assert "No such option" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
