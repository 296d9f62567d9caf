"""The audit chain catches edits, deletions and reordering made directly in the table."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from workbench import audit
from workbench.access import Actor
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.store import Workspace


@pytest.fixture()
def chained(ws: Workspace, admin: Actor) -> Workspace:
    for i in range(6):
        audit.record(ws, admin, "test.action", f"obj-{i}", {"i": i, "nested": {"b": [1, 2], "a": "x"}})
    return ws


def test_intact_chain_verifies(chained: Workspace, admin: Actor) -> None:
    result = audit.verify(chained, admin)
    assert result.ok and result.rows == 6


@pytest.mark.parametrize(("tamper", "bad_seq"), [
    ("UPDATE audit_log SET details = '{\"i\":99}' WHERE seq = 3", 3),
    ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 5", 5),
    ("DELETE FROM audit_log WHERE seq = 4", 5),
    ("UPDATE audit_log SET seq = CASE seq WHEN 2 THEN 3 WHEN 3 THEN 2 END WHERE seq IN (2, 3)", 2),
    ("DELETE FROM audit_log WHERE seq = 1", 2),
])
def test_tampering_is_caught(chained: Workspace, admin: Actor, tamper: str, bad_seq: int) -> None:
    chained.execute(tamper)
    result = audit.verify(chained, admin)
    assert not result.ok and result.first_bad_seq == bad_seq and result.reason


def test_rehashed_edit_still_caught_by_next_row(chained: Workspace, admin: Actor) -> None:
    """An attacker who edits a row and recomputes its hash breaks the link to the row after it."""
    seq, ts, user, role, action, obj, _details, prev = chained.one(
        "SELECT seq, ts, actor, role, action, object, details, prev_hash FROM audit_log WHERE seq = 2")
    forged = audit.row_hash(seq, ts, user, role, action, obj, {"i": 42}, prev)
    chained.execute("UPDATE audit_log SET details = '{\"i\":42}', hash = ? WHERE seq = 2", [forged])
    result = audit.verify(chained, admin)
    assert not result.ok and result.first_bad_seq == 3


def test_export_verifies_offline(chained: Workspace, admin: Actor, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    info = audit.export(chained, admin, out)
    assert info["rows"] == 6 and audit.verify_export(out).ok
    lines = out.read_text().splitlines()
    lines[3] = lines[3].replace('"obj-2"', '"obj-x"')
    out.write_text("\n".join(lines) + "\n")
    assert audit.verify_export(out).first_bad_seq == 3


def test_export_check_refuses_foreign_and_truncated_files(chained: Workspace, admin: Actor, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    audit.export(chained, admin, out)
    lines = out.read_text().splitlines()
    (tmp_path / "cut.jsonl").write_text("\n".join(lines[:-2]) + "\n")  # newest rows dropped
    cut = audit.verify_export(tmp_path / "cut.jsonl")
    assert not cut.ok and "truncated" in (cut.reason or "")
    (tmp_path / "note.txt").write_text("not an export\n")
    with pytest.raises(WorkbenchError):
        audit.verify_export(tmp_path / "note.txt")
    (tmp_path / "nohead.jsonl").write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(WorkbenchError):
        audit.verify_export(tmp_path / "nohead.jsonl")


def test_only_auditor_and_admin_read_the_log(chained: Workspace) -> None:
    for role in ("viewer", "analyst", "lead"):
        with pytest.raises(PermissionDenied):
            audit.verify(chained, Actor("u", role))
    assert audit.verify(chained, Actor("a", "auditor")).ok


# -- anchors: truncation and re-hashing since an anchor (issue 12, item 7) -----------------------------------

KEY = "an anchor key kept outside the workspace"


def _rehash_from(ws: Workspace, first: int) -> None:
    """What an attacker with the file does after editing row `first`: re-compute it and every later hash."""
    prev = ws.scalar("SELECT hash FROM audit_log WHERE seq = ?", [first - 1]) or audit.GENESIS
    for seq, ts, user, role, action, obj, details in ws.rows(
            "SELECT seq, ts, actor, role, action, object, details FROM audit_log WHERE seq >= ? ORDER BY seq",
            [first]):
        digest = audit.row_hash(seq, ts, user, role, action, obj, json.loads(details), prev)
        ws.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", [prev, digest, seq])
        prev = digest


def test_head_is_the_newest_row(ws: Workspace, admin: Actor) -> None:
    assert audit.head(ws) == (0, audit.GENESIS)
    seq = audit.record(ws, admin, "test.action", "x")
    assert audit.head(ws) == (seq, ws.scalar("SELECT hash FROM audit_log WHERE seq = ?", [seq]))


def test_anchor_is_one_line_naming_the_head(chained: Workspace, admin: Actor, tmp_path: Path) -> None:
    anchor = audit.take_anchor(chained, admin, tmp_path / "anchor.txt")
    assert anchor.seq == 7 and (anchor.seq, anchor.hash) == audit.head(chained)
    assert chained.scalar("SELECT action FROM audit_log WHERE seq = 7") == "audit.anchor"
    line = (tmp_path / "anchor.txt").read_text()
    assert line == anchor.line() + "\n" and line.count("\n") == 1 and anchor.workspace in line
    pasted = f"Ticket SEC-12: audit head at close\n> {anchor.line()}\nthanks"
    assert audit.Anchor.parse(pasted) == anchor
    assert audit.verify(chained, admin, anchor).ok


@pytest.mark.parametrize("tamper", ["newest rows deleted", "every row deleted", "edited and re-hashed"])
def test_anchor_catches_truncation_and_rehash(chained: Workspace, admin: Actor, tamper: str) -> None:
    anchor = audit.take_anchor(chained, admin)
    if tamper == "newest rows deleted":
        chained.execute("DELETE FROM audit_log WHERE seq >= 5")
    elif tamper == "every row deleted":
        chained.execute("DELETE FROM audit_log")
    else:
        chained.execute("UPDATE audit_log SET details = '{\"i\":42}' WHERE seq = 3")
        _rehash_from(chained, 3)
    blind = audit.check_rows(chained.rows(
        "SELECT seq, ts, actor, role, action, object, details, prev_hash, hash FROM audit_log ORDER BY seq"))
    assert blind.ok, "without an anchor the chain itself cannot tell (the hole this closes)"
    result = audit.verify(chained, admin, anchor)
    assert not result.ok and result.anchored
    expected = "truncated" if "deleted" in tamper else "re-hashed"
    assert expected in (result.reason or "")


def test_keyed_anchor_cannot_be_forged_by_whoever_edits_the_workspace(chained: Workspace, admin: Actor,
                                                                      tmp_path: Path) -> None:
    key = KEY.encode()
    anchor = audit.take_anchor(chained, admin, key=key)
    assert anchor.mac and audit.verify(chained, admin, anchor, key).ok
    chained.execute("UPDATE audit_log SET details = '{\"i\":42}' WHERE seq = 2")
    _rehash_from(chained, 2)
    seq, digest = audit.head(chained)
    forged = dataclasses.replace(anchor, seq=seq, hash=digest)  # the attacker rewrites the anchor too
    assert not audit.verify(chained, admin, forged, key).ok
    unsigned = dataclasses.replace(forged, mac=None)
    assert "no HMAC" in (audit.verify(chained, admin, unsigned, key).reason or "")
    with pytest.raises(WorkbenchError, match="--key-env"):
        audit.verify(chained, admin, anchor)  # a keyed anchor is not checked half-way


def test_anchor_of_another_workspace_is_refused(chained: Workspace, admin: Actor) -> None:
    anchor = dataclasses.replace(audit.take_anchor(chained, admin), workspace="someone-else")
    result = audit.verify(chained, admin, anchor)
    assert not result.ok and "not this one" in (result.reason or "")


def test_export_header_is_not_trusted(chained: Workspace, admin: Actor, tmp_path: Path) -> None:
    anchor = audit.take_anchor(chained, admin)
    out = tmp_path / "audit.jsonl"
    info = audit.export(chained, admin, out)
    header, *rows = out.read_text().splitlines()
    assert json.loads(header)["head"] == {"seq": info["head_seq"], "hash": info["head_hash"]} and info["head_seq"] == 7
    assert audit.verify_export(out, anchor).ok
    # drop the newest rows and make the header agree: the rows alone still verify, only the anchor can tell
    head = json.loads(header)
    cut = rows[:4]
    last = json.loads(cut[-1])
    head.update(rows=len(cut), head={"seq": last["seq"], "hash": last["hash"]})
    (tmp_path / "cut.jsonl").write_text("\n".join([json.dumps(head), *cut]) + "\n")
    unanchored = audit.verify_export(tmp_path / "cut.jsonl")
    assert unanchored.ok and not unanchored.anchored
    cut_check = audit.verify_export(tmp_path / "cut.jsonl", anchor)
    assert not cut_check.ok and "truncated" in (cut_check.reason or "")
    # a header claiming a head the rows do not end with is a failure in itself
    head.update(rows=len(rows), head={"seq": 99, "hash": "0" * 64})
    (tmp_path / "lie.jsonl").write_text("\n".join([json.dumps(head), *rows]) + "\n")
    assert not audit.verify_export(tmp_path / "lie.jsonl").ok


def test_cli_anchor_and_verify_exit_codes(tmp_path: Path, admin: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.store import open_workspace
    db = tmp_path / "cli.duckdb"
    with open_workspace(db) as w:
        for i in range(5):
            audit.record(w, admin, "test.action", f"obj-{i}")
    monkeypatch.setenv("ANCHOR_KEY", KEY)
    runner = CliRunner()
    out = tmp_path / "anchor.txt"
    res = runner.invoke(app, ["audit", "anchor", "--out", str(out), "--key-env", "ANCHOR_KEY", "--db", str(db)])
    assert res.exit_code == 0, res.output
    line = res.stdout.strip().splitlines()[0]
    assert line.startswith(audit.ANCHOR_FORMAT) and "seq=6" in line and "hmac-sha256=" in line
    assert out.read_text().strip() == line
    verify = ["audit", "verify", "--anchor", str(out), "--db", str(db)]
    res = runner.invoke(app, [*verify, "--key-env", "ANCHOR_KEY"])
    assert res.exit_code == 0 and "anchor seq 6 matches" in res.output, res.output
    res = runner.invoke(app, verify)  # signed anchor, no key: refused, not half-checked
    assert isinstance(res.exception, WorkbenchError)
    with open_workspace(db) as w:
        w.execute("DELETE FROM audit_log WHERE seq >= 6")
    res = runner.invoke(app, [*verify, "--key-env", "ANCHOR_KEY"])
    assert res.exit_code == 1 and "truncated" in res.output, res.output
    exported = tmp_path / "audit.jsonl"
    assert runner.invoke(app, ["audit", "export", str(exported), "--db", str(db)]).exit_code == 0
    res = runner.invoke(app, ["audit", "verify", "--file", str(exported), "--anchor", str(out),
                              "--key-env", "ANCHOR_KEY"])
    assert res.exit_code == 1, res.output  # the export was made after the rows went: the anchor still knows
