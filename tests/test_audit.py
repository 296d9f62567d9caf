"""The audit chain catches edits, deletions and reordering made directly in the table."""

from __future__ import annotations

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
