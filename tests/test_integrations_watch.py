"""Watch mode: files are loaded once complete, detection on what is new matches a full run for the systems it
covers, and a watch killed mid-delivery resumes without losing or repeating an event."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from test_integrations_sinks import Receiver

from workbench.detect import run_all
from workbench.ingest import ingest
from workbench.integrations import sinks, watch
from workbench.store import open_workspace

ROOT = Path(__file__).resolve().parent.parent


def _split(sample: Path, out: Path) -> dict[int, list[Path]]:
    """The sample's decisions as one Parquet file per system and day (day index -> files), plus metrics."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    parts: dict[int, list[Path]] = {}
    for f in sorted((sample / "decisions").glob("*.parquet")):
        days = [r[0] for r in con.execute(f"SELECT DISTINCT date_trunc('day', ts) d FROM '{f}' ORDER BY d").fetchall()]
        for i, d in enumerate(days):
            target = out / f"{f.stem}-day{i}.parquet"
            con.execute(f"COPY (SELECT * FROM '{f}' WHERE date_trunc('day', ts) = ? ORDER BY ts) TO '{target}'", [d])
            parts.setdefault(i, []).append(target)
    con.close()
    return parts


def test_watch_detects_what_is_new_like_a_full_run(tmp_path: Path, small_sample: Path, admin) -> None:
    parts = _split(small_sample, tmp_path / "parts")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    days = sorted(parts)
    first, second = days[:-2], days[-2:]
    ws = open_workspace(tmp_path / "watched.duckdb")
    for d in first:
        for p in parts[d]:
            (inbox / p.name).write_bytes(p.read_bytes())
    figures = watch.watch(ws, admin, [inbox], once=True, settle=0.05)
    assert figures["files_loaded"] == sum(len(parts[d]) for d in first) and not figures["errors"]
    for d in second:
        for p in parts[d]:
            (inbox / p.name).write_bytes(p.read_bytes())
    marker = ws.scalar("SELECT now()")
    figures = watch.watch(ws, admin, [inbox], once=True, settle=0.05)
    assert figures["files_loaded"] == sum(len(parts[d]) for d in second)
    touched = set(figures["systems_detected"])
    # Compared on what an alert says, not its id: a backdoor alert's id folds in the trigger's HMAC token under the
    # workspace's own masking key, so the same alert has another id in another workspace.
    cols = "detector, system_id, severity, window_start, window_end, principal, feature, metric, n_decisions"
    got = set(ws.rows(f"SELECT {cols} FROM alerts WHERE last_seen >= ? AND list_contains(?, system_id)",
                      [marker, sorted(touched)]))
    ws.close()
    # the same files loaded at once and run through a full detection
    full = open_workspace(tmp_path / "full.duckdb")
    ingest(full, admin, [p for d in days for p in parts[d]])
    ids = [a["alert_id"] for a in run_all(full, admin) if a["system_id"] in touched]
    want = set(full.rows(f"SELECT {cols} FROM alerts WHERE list_contains(?, alert_id)", [ids]))
    full.close()
    assert touched and got == want


def test_file_being_written_is_waited_for_and_skips(tmp_path: Path, small_sample: Path, ws, admin) -> None:
    src = next((small_sample / "decisions").glob("*.parquet"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = src.read_bytes()
    target = inbox / "late.parquet"
    target.write_bytes(data[: len(data) // 2])
    (inbox / "skipped.parquet.part").write_bytes(data)
    (inbox / "locked.parquet").write_bytes(data)
    (inbox / "locked.parquet.lock").write_text("")
    assert watch.cycle(ws, admin, [inbox])["files_loaded"] == 0  # first sight: waiting
    with target.open("ab") as fh:
        fh.write(data[len(data) // 2:])
    assert watch.cycle(ws, admin, [inbox])["files_loaded"] == 0  # it grew: still waiting
    figures = watch.cycle(ws, admin, [inbox])
    assert figures["files_loaded"] == 1 and not figures["errors"]
    assert ws.scalar("SELECT count(*) FROM sources") == 1
    assert ws.scalar("SELECT path FROM sources").endswith("late.parquet")
    assert ws.scalar("SELECT count(*) FROM decisions") > 0
    assert watch.cycle(ws, admin, [inbox])["files_loaded"] == 0  # loaded once
    last = watch.last_run(ws)
    assert last and last["files_loaded"] == 1 and last["figures"]["files_loaded"] == 1


def _watch_cmd(db: Path, inbox: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "workbench", "watch", str(inbox), "--db", str(db), "--backoff", "0.2", *extra]


def test_kill_mid_delivery_loses_and_repeats_nothing(demo_ws, admin, tmp_path: Path) -> None:
    receiver = Receiver(delay=0.25)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    try:
        sinks.add_sink(demo_ws, admin, "webhook", receiver.url, backfill=True)
        expected = {f"{r[0]}/{r[1]}" for r in demo_ws.rows("SELECT alert_id, severity FROM alerts")}
        assert len(expected) >= 4
        db = demo_ws.path
        demo_ws.close()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKBENCH_NO_AUTODEMO": "1"}
        proc = subprocess.Popen(_watch_cmd(db, inbox, "--every", "0.2"), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.time() + 90
        while len(receiver.requests) < 2 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert len(receiver.requests) >= 2, proc.stderr.read().decode() if proc.poll() is not None else "too slow"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert len(set(receiver.events())) < len(expected)  # killed before it could finish
        done = subprocess.run(_watch_cmd(db, inbox, "--once", "--settle", "0"), env=env, capture_output=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        ws = open_workspace(db)
        states = dict(ws.rows("SELECT state, count(*) FROM outbox GROUP BY ALL"))
        delivered_audit = ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'sink.deliver'")
        ws.close()
    finally:
        receiver.close()
    events = receiver.events()
    assert set(events) == expected  # nothing lost
    assert len(events) - len(set(events)) <= 1  # at most the one in flight at the kill, with the same key
    assert states == {"delivered": len(expected)} and delivered_audit == len(expected)


@pytest.mark.parametrize("bad", ["not-a-dir"])
def test_watch_refuses_a_missing_folder(ws, admin, tmp_path: Path, bad: str) -> None:
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="not a directory"):
        watch.watch(ws, admin, [tmp_path / bad], once=True, settle=0)
