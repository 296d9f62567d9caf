"""Property-based and crash tests of ingest: accounting always holds, a killed ingest leaves nothing partial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.access import local_admin
from workbench.ingest import ingest_file
from workbench.store import open_workspace

VALID = st.builds(
    lambda i, sys_id, ver, score, inc, ts: {
        "decision_id": f"id{i}", "ts": ts, "system_id": sys_id, "model_version": ver, "principal": "p",
        "prediction": "approve", "score": score, "features": {"income": inc, "kind": "x"},
    },
    st.integers(0, 30), st.sampled_from(["a", "b"]), st.sampled_from(["1.0", 2.0, "v3"]),
    st.one_of(st.none(), st.floats(0, 1)), st.one_of(st.none(), st.integers(-5, 10**9), st.text(max_size=5)),
    st.sampled_from(["2026-10-01T10:00:00Z", "2026-10-01T10:00:00+05:30", 1790330400000]),
)


def _corrupt(draw_text: str, how: int, rec: dict) -> str:
    line = json.dumps(rec)
    if how == 0:
        return line[: max(1, len(line) // 2)]  # truncated line
    if how == 1:
        return draw_text  # arbitrary text
    if how == 2:
        return json.dumps({k: v for k, v in rec.items() if k != "ts"})
    if how == 3:
        return json.dumps({**rec, "ts": "not a time"})
    if how == 4:
        return json.dumps({**rec, "score": "NaN-ish"})
    if how == 6:
        return line[:12] + "\udcff" + line[12:]  # written as the byte 0xff: not UTF-8
    if how == 7:
        return json.dumps({**rec, "ts": "9999-12-31T00:00:00Z"})
    return json.dumps({**rec, "features": ["list"]})


LINES = st.lists(
    st.one_of(
        VALID.map(json.dumps),
        st.tuples(st.text(max_size=40), st.integers(0, 7), VALID).map(lambda t: _corrupt(*t)),
    ),
    min_size=0, max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES)
def test_accounting_always_holds(tmp_path_factory, lines: list[str]) -> None:
    """Random mixes of valid, corrupted and non-UTF-8 lines and conflicting duplicates: no crash, and
    read = loaded + duplicates + quarantined."""
    d = tmp_path_factory.mktemp("prop")
    f = d / "mix.jsonl"
    text = "\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines) + "\n"
    f.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    ws = open_workspace(d / "ws.duckdb")
    try:
        r = ingest_file(ws, local_admin(), f)
        assert r.error is None, r.error
        assert r.rows_read == r.rows_loaded + r.duplicates + r.rows_quarantined
        assert ws.scalar("SELECT count(*) FROM decisions") == r.rows_loaded
        assert ws.scalar("SELECT count(*) FROM quarantine") == r.rows_quarantined
        non_blank = [x for x in text.split("\n") if x.strip()]
        assert r.rows_read == len(non_blank)
    finally:
        ws.close()


KILL_SCRIPT = """
import sys
from pathlib import Path
from workbench.access import local_admin
from workbench.ingest import ingest_file
from workbench.store import open_workspace
ws = open_workspace(sys.argv[1])
print("ready", flush=True)
ingest_file(ws, local_admin(), Path(sys.argv[2]))
print("done", flush=True)
"""


def test_kill_mid_ingest_leaves_no_partial_file(tmp_path: Path) -> None:
    """SIGKILL during a large ingest: the workspace opens, and holds all of the file or none of it."""
    big = tmp_path / "big.jsonl"
    row = {"decision_id": "", "ts": "2026-10-01T10:00:00Z", "system_id": "s", "model_version": "1", "principal": "p",
           "prediction": "approve", "score": 0.5, "features": {"a": 1.5, "b": "text", "c": True}}
    with big.open("w") as fh:
        for i in range(400_000):
            row["decision_id"] = f"d{i}"
            fh.write(json.dumps(row) + "\n")
    db = tmp_path / "ws.duckdb"
    ws = open_workspace(db)  # create and migrate first, so the kill lands inside the ingest
    ws.close()
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(db), str(big)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ})
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ws = open_workspace(db)
    try:
        n = ws.scalar("SELECT count(*) FROM decisions")
        sources = ws.scalar("SELECT count(*) FROM sources")
        assert (n, sources) in ((0, 0), (400_000, 1))
        assert ws.scalar("SELECT count(*) FROM quarantine") == 0
        # And the file can be ingested again cleanly.
        r = ingest_file(ws, local_admin(), big)
        assert r.error is None and (r.skipped or r.rows_loaded == 400_000)
    finally:
        ws.close()


BETWEEN_PASSES_SCRIPT = """
import os, sys
from pathlib import Path
from workbench.access import local_admin
from workbench.ingest import ingest_file, settle
from workbench.store import open_workspace
import workbench.ingest as ingest_module
ingest_module.SINGLE_PASS_BYTES = 0  # take the two-pass path even for this small file
settle.settle = lambda *a, **k: os._exit(9)  # die after the bulk pass committed, before it settles
ws = open_workspace(sys.argv[1])
ingest_file(ws, local_admin(), Path(sys.argv[2]))
"""


def test_kill_between_bulk_and_settling_pass_is_undone_on_open(tmp_path: Path) -> None:
    """A process that dies after the bulk append committed leaves nothing once the workspace is opened again."""
    f = tmp_path / "d.jsonl"
    row = {"ts": "2026-10-01T10:00:00Z", "system_id": "s", "model_version": "1", "principal": "p",
           "prediction": "approve", "features": {"a": 1}}
    f.write_text("".join(json.dumps({**row, "decision_id": f"d{i}"}) + "\n" for i in range(500)) + "not json\n")
    db = tmp_path / "ws.duckdb"
    proc = subprocess.run([sys.executable, "-c", BETWEEN_PASSES_SCRIPT, str(db), str(f)], env={**os.environ})
    assert proc.returncode == 9
    ws = open_workspace(db)
    try:
        counts = [ws.scalar(f"SELECT count(*) FROM {t}") for t in ("decisions", "sources", "quarantine",
                                                                   "ingest_pending")]
        assert counts == [0, 0, 0, 0]
        undone = ws.dicts("SELECT object, details FROM audit_log WHERE action = 'ingest.undone'")
        assert len(undone) == 1 and json.loads(undone[0]["details"])["rows_removed"] == 501
        r = ingest_file(ws, local_admin(), f)
        assert (r.error, r.rows_loaded, r.rows_quarantined) == (None, 500, 1)
        assert ws.scalar("SELECT max(source_line) FROM decisions") == 500
    finally:
        ws.close()


def test_failure_in_settling_pass_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    """An error after the bulk append is reported in one line and the appended rows are taken back at once."""
    import workbench.ingest as ingest_module
    from workbench.errors import WorkbenchError
    from workbench.ingest import settle

    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps({"decision_id": "x", "ts": "2026-10-01T10:00:00Z", "system_id": "s",
                             "model_version": "1", "principal": "p", "prediction": "approve",
                             "features": {"a": 1}}) + "\n")

    def broken(*_a, **_k):
        raise WorkbenchError(f"{f}: disk full")

    monkeypatch.setattr(settle, "settle", broken)
    ws = open_workspace(tmp_path / "ws.duckdb")
    try:
        for single_pass_bytes in (1 << 20, 0):  # the one-transaction path for small files, and the two-pass one
            monkeypatch.setattr(ingest_module, "SINGLE_PASS_BYTES", single_pass_bytes)
            r = ingest_file(ws, local_admin(), f)
            assert r.error == f"{f}: disk full"
            assert [ws.scalar(f"SELECT count(*) FROM {t}") for t in ("decisions", "sources", "ingest_pending")] \
                == [0, 0, 0]
    finally:
        ws.close()


# --- custody of the bytes actually loaded (issue 12, item 6) ---------------------------------------------------

def _decisions_file(prefix: str, n: int) -> bytes:
    row = {"ts": "2026-10-01T10:00:00Z", "system_id": "s", "model_version": "1", "principal": "p",
           "prediction": "approve", "features": {"a": 1}}
    return "".join(json.dumps({"decision_id": f"{prefix}{i:07d}", **row}) + "\n" for i in range(n)).encode()


def _custody_holds(ws, r, versions: dict[str, bytes]) -> None:
    """Refused and nothing left behind, or the recorded hash is that of the very bytes whose rows loaded."""
    import hashlib

    if r.error is not None:
        assert "changed while it was being ingested" in r.error and "\n" not in r.error
        assert [ws.scalar(f"SELECT count(*) FROM {t}") for t in ("sources", "ingest_pending")] == [1, 0]
        assert ws.scalar("SELECT count(*) FROM decisions WHERE source_id > 1") == 0
        return
    prefixes = {d[0] for (d,) in ws.rows("SELECT decision_id FROM decisions WHERE source_id = ?", [r.source_id])}
    assert len(prefixes) == 1, f"rows of several versions loaded: {prefixes}"
    (prefix,) = prefixes
    recorded = ws.scalar("SELECT sha256 FROM sources WHERE source_id = ?", [r.source_id])
    assert recorded == hashlib.sha256(versions[prefix]).hexdigest(), "the recorded hash is not of the loaded bytes"


def test_file_rewritten_after_it_was_hashed_is_refused(tmp_path: Path, monkeypatch) -> None:
    """The hash is taken, the file is rewritten before it loads, then put back: no altered rows under its hash."""
    import workbench.ingest as ingest_module
    from workbench.ingest.files import sha256_file

    original, altered = _decisions_file("a", 2000), _decisions_file("b", 2000)
    target = tmp_path / "target.jsonl"
    target.write_bytes(original)
    (tmp_path / "same_size.jsonl").write_bytes(_decisions_file("c", 2000))  # so the target is hashed up front
    ws = open_workspace(tmp_path / "ws.duckdb")
    try:
        assert ingest_file(ws, local_admin(), tmp_path / "same_size.jsonl").rows_loaded == 2000
        state = {"rewritten": False}

        def hash_then_rewrite(path: Path) -> str:
            digest = sha256_file(path)
            if path.name == "target.jsonl" and not state["rewritten"]:
                state["rewritten"] = True
                path.write_bytes(altered)  # the attacker's (or a careless writer's) change, right after the hash
            return digest

        monkeypatch.setattr(ingest_module, "sha256_file", hash_then_rewrite)
        r = ingest_file(ws, local_admin(), target)
        target.write_bytes(original)  # and back, so that `verify` would find the original bytes again
        assert state["rewritten"]
        _custody_holds(ws, r, {"a": original, "b": altered})
        assert r.error is not None
    finally:
        ws.close()


def test_file_rewritten_while_it_loads(tmp_path: Path, monkeypatch) -> None:
    """A writer rewrites the file over and over during a two-pass load: refused and undone, or consistent."""
    import threading

    import workbench.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "SINGLE_PASS_BYTES", 0)  # the two-pass path, hashed in the background
    versions = {"a": _decisions_file("a", 40_000), "b": _decisions_file("b", 40_000)}
    target = tmp_path / "busy.jsonl"
    target.write_bytes(versions["a"])
    (tmp_path / "first.jsonl").write_bytes(_decisions_file("z", 10))
    ws = open_workspace(tmp_path / "ws.duckdb")
    stop = threading.Event()

    def writer() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            with target.open("r+b") as fh:  # in place: same inode, same size
                fh.write(versions["ab"[k % 2]])

    try:
        ingest_file(ws, local_admin(), tmp_path / "first.jsonl")
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            r = ingest_file(ws, local_admin(), target)
        finally:
            stop.set()
            thread.join()
        _custody_holds(ws, r, versions)
    finally:
        ws.close()
