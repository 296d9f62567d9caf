"""The role matrix: each role against each library action, allowed or PermissionDenied (no UI involved)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from access_data import load, loan_rows, role, write_jsonl

from workbench import audit, explore
from workbench.access import PERMISSIONS, ROLES, Actor
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.store import Workspace

ALL = set(ROLES)
INVESTIGATORS = {"analyst", "lead", "admin"}
READERS = {"analyst", "lead", "auditor", "admin"}

# action -> roles that may do it
EXPECTED: dict[str, set[str]] = {
    "ingest": INVESTIGATORS,
    "search decisions": READERS,
    "get decisions": READERS,
    "nearest normal": READERS,
    "principal activity (aggregate)": ALL,
    "metric window (aggregate)": ALL,
    "read quarantine": READERS,
    "explain": READERS,
    "register model": INVESTIGATORS,
    "run detectors": INVESTIGATORS,
    "create incident": INVESTIGATORS,
    "close incident": {"lead", "admin"},
    "playbook edit": {"lead", "admin"},
    "add user": {"admin"},
    "list users": {"auditor", "admin"},
    "mark personal": {"lead", "admin"},
    "audit verify": {"auditor", "admin"},
    "audit export": {"auditor", "admin"},
    "run sql": READERS,
}
OPTIONAL = {
    "explain": "workbench.explain.explaining",
    "register model": "workbench.explain.registry",
    "run detectors": "workbench.detect",
    "create incident": "workbench.cases.incidents",
    "close incident": "workbench.cases.incidents",
    "playbook edit": "workbench.cases.playbooks",
}


def _actions(ws: Workspace, tmp: Path, admin: Actor) -> dict[str, Callable[[Actor], object]]:
    from workbench.access import accounts, masking
    from workbench.explore.sandbox import run_sql
    from workbench.ingest import ingest, rejects

    counter = iter(range(1000))

    def do_ingest(a: Actor) -> object:
        rows = loan_rows(3)
        n = next(counter)
        for r in rows:
            r["decision_id"] = f"N{n}-{r['decision_id']}"
        res = ingest(ws, a, [write_jsonl(tmp / f"new{n}.jsonl", rows)])
        assert res[0].rows_loaded == 3
        return res

    def explain(a: Actor) -> object:
        from workbench.explain.explaining import explain_decisions

        try:
            return explain_decisions(ws, a, "loan", ["L001"])
        except PermissionDenied:
            raise
        except (
            WorkbenchError
        ):  # no model or surrogate for the tiny system: permitted, just nothing to explain
            return None

    def register_model(a: Actor) -> object:
        from workbench.explain.registry import add_model

        try:
            return add_model(ws, a, "loan", "v9", tmp / "no-such-model.txt")
        except PermissionDenied:
            raise
        except WorkbenchError:  # permitted; the missing file is the next check
            return None

    def run_detectors(a: Actor) -> object:
        from workbench.detect import run_all

        return run_all(ws, a)

    def create_incident(a: Actor) -> object:
        from workbench.cases.incidents import create_incident

        return create_incident(ws, a, "matrix test", "low", systems=["loan"])

    def close_incident(a: Actor) -> object:
        from workbench.cases.incidents import create_incident, set_status

        inc = create_incident(ws, admin, "to close", "low", systems=["loan"])
        return set_status(ws, a, inc["incident_id"], "closed", note="resolved in the matrix test")

    def playbook_edit(a: Actor) -> object:
        from workbench.cases.playbooks import install, playbook_dir

        src = next(playbook_dir().glob("*.md"))
        if src.name == "README.md":
            src = sorted(p for p in playbook_dir().glob("ai-*.md"))[0]
        dest = tmp / f"pb{next(counter)}"
        dest.mkdir()
        return install(ws, a, shutil.copy(src, tmp / src.name), dir=dest)

    return {
        "ingest": do_ingest,
        "search decisions": lambda a: explore.search_decisions(ws, a, "loan", limit=5),
        "get decisions": lambda a: explore.get_decisions(ws, a, ["L001"]),
        "nearest normal": lambda a: explore.nearest_normal(ws, a, "loan", "L001", k=2),
        "principal activity (aggregate)": lambda a: explore.principal_activity(ws, a, "loan", "app-1"),
        "metric window (aggregate)": lambda a: explore.metric_window(ws, a, "loan", None),
        "read quarantine": lambda a: rejects(ws, a),
        "explain": explain,
        "register model": register_model,
        "run detectors": run_detectors,
        "create incident": create_incident,
        "close incident": close_incident,
        "playbook edit": playbook_edit,
        "add user": lambda a: accounts.add_user(ws, a, f"user{next(counter)}", "admin", "long enough pw"),
        "list users": lambda a: accounts.list_users(ws, a),
        "mark personal": lambda a: masking.mark_personal(ws, a, "loan", ["email"]),
        "audit verify": lambda a: audit.verify(ws, a),
        "audit export": lambda a: audit.export(ws, a, tmp / f"audit{next(counter)}.jsonl"),
        "run sql": lambda a: run_sql(ws, a, "SELECT count(*) FROM metrics"),
    }


def _signed_in(ws: Workspace, admin: Actor) -> dict[str, Actor]:
    """One account per role (the single-user admin creates them), each signed in: the actors the app issues."""
    from workbench.access import accounts

    seeded = accounts.seed_demo_accounts(ws, admin)
    return {a["role"]: accounts.authenticate(ws, a["user"], a["password"]) for a in seeded}


@pytest.mark.parametrize("role_name", ROLES)
def test_role_matrix(ws, tmp_path, admin, role_name):
    """Each role, signed in on a workspace with accounts, against each library action."""
    load(ws, tmp_path)
    signed_in = _signed_in(ws, admin)
    actions = _actions(ws, tmp_path, signed_in["admin"])
    assert set(actions) == set(EXPECTED)
    actor = signed_in[role_name]
    got, skipped = {}, []
    for name, action in actions.items():
        if name in OPTIONAL and importlib.util.find_spec(OPTIONAL[name]) is None:
            skipped.append(name)
            continue
        try:
            action(actor)
            got[name] = True
        except PermissionDenied:
            got[name] = False
    expected = {name: role_name in EXPECTED[name] for name in got}
    assert got == expected, {k: (got[k], expected[k]) for k in got if got[k] != expected[k]}


def test_matrix_agrees_with_the_permission_table():
    """The role sets above follow from access.PERMISSIONS (admin holds everything)."""
    assert EXPECTED["search decisions"] == set(PERMISSIONS["read:decisions"])
    assert EXPECTED["close incident"] == set(PERMISSIONS["close:incidents"])
    assert EXPECTED["add user"] == set(PERMISSIONS["write:accounts"])
    assert EXPECTED["run sql"] == set(PERMISSIONS["run:sql"])
    assert all(name in PERMISSIONS[p] for p in PERMISSIONS for name in ("admin",))


def test_denials_change_nothing(ws, tmp_path, admin):
    load(ws, tmp_path)
    before = ws.scalar("SELECT count(*) FROM audit_log")
    viewer = role("viewer")
    for call in (
        lambda: explore.search_decisions(ws, viewer),
        lambda: explore.get_decisions(ws, viewer, ["L001"]),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert ws.scalar("SELECT count(*) FROM audit_log") == before


# -- roles in the library: on a workspace with accounts only a signed-in actor gets in (issue 12, item 8) ------


def _refused_rows(ws: Workspace) -> list[dict]:
    return ws.dicts("SELECT actor, role, object, details FROM audit_log WHERE action = 'access.refused' ORDER BY seq")


def test_hand_made_actor_refused_on_a_workspace_with_accounts(ws, tmp_path, admin):
    from workbench.access import accounts
    from workbench.cases.incidents import create_incident
    from workbench.ingest import ingest

    load(ws, tmp_path)
    signed_in = _signed_in(ws, admin)
    forged = Actor("x", "admin")
    new_file = write_jsonl(tmp_path / "more.jsonl", [{**r, "decision_id": f"M{i}"}
                                                       for i, r in enumerate(loan_rows(3))])
    decisions, incidents = ws.scalar("SELECT count(*) FROM decisions"), ws.scalar("SELECT count(*) FROM incidents")
    attempts = {
        "search": lambda a: explore.search_decisions(ws, a, "loan", limit=5),
        "ingest": lambda a: ingest(ws, a, [new_file]),
        "incident create": lambda a: create_incident(ws, a, "forged", "low", systems=["loan"]),
        "audit.record": lambda a: audit.record(ws, a, "incident.create", "INC-9999", {"forged": True}),
        "aggregates": lambda a: explore.principal_activity(ws, a, "loan", "app-1"),
        "add user": lambda a: accounts.add_user(ws, a, "eve", "admin", "long enough pw"),
    }
    for attempt in attempts.values():
        with pytest.raises(PermissionDenied, match="not issued by sign-in"):
            attempt(forged)
        with pytest.raises(PermissionDenied):  # the OS user's single-user actor no longer counts either
            attempt(admin)
    assert ws.scalar("SELECT count(*) FROM decisions") == decisions
    assert ws.scalar("SELECT count(*) FROM incidents") == incidents
    assert not ws.scalar("SELECT count(*) FROM audit_log WHERE object = 'INC-9999' OR actor = 'eve'")
    refused = _refused_rows(ws)
    assert len(refused) == 2 * len(attempts), "every refusal is audited"
    assert {(r["actor"], r["role"]) for r in refused} == {("x", "-"), (admin.user, "-")}
    assert json.loads(refused[0]["details"])["claimed_role"] == "admin"
    # the signed-in actors work, and their rows name them with their real role
    lead = signed_in["lead"]
    assert len(explore.search_decisions(ws, lead, "loan", limit=5)) == 5
    assert ingest(ws, lead, [new_file])[0].rows_loaded == 3
    inc = create_incident(ws, lead, "real", "low", systems=["loan"])
    assert ws.one("SELECT actor, role FROM audit_log WHERE action = 'incident.create' AND object = ?",
                  [inc["incident_id"]]) == ("demo-lead", "lead")
    assert audit.verify(ws, signed_in["auditor"]).ok


def test_a_sealed_actor_cannot_be_altered_or_carried_to_another_workspace(ws, tmp_path, admin):
    import dataclasses

    from workbench.access import accounts
    from workbench.store import open_workspace

    signed_in = _signed_in(ws, admin)
    viewer = signed_in["viewer"]
    assert viewer == Actor("demo-viewer", "viewer") and viewer.via == "password"
    promoted = dataclasses.replace(viewer, role="admin")  # carries the viewer's seal, which no longer matches
    with pytest.raises(PermissionDenied, match="not valid for this workspace"):
        audit.verify(ws, promoted)
    with pytest.raises(PermissionDenied, match="not valid for this workspace"):
        audit.verify(ws, Actor("demo-admin", "admin", viewer._seal))
    other = open_workspace(tmp_path / "other.duckdb")
    try:
        load(other, tmp_path)
        accounts.add_user(other, admin, "demo-admin", "admin", "another long password")
        with pytest.raises(PermissionDenied, match="not valid for this workspace"):
            audit.verify(other, signed_in["admin"])  # same name, another workspace's sign-in
    finally:
        other.close()
    # a role change or a disabled account takes effect at once, not at the next sign-in
    analyst = signed_in["analyst"]
    accounts.set_role(ws, signed_in["admin"], "demo-analyst", "viewer")
    with pytest.raises(PermissionDenied, match="sign in again"):
        explore.principal_activity(ws, analyst, "loan", "app-1")
    accounts.disable_user(ws, signed_in["admin"], "demo-lead")
    with pytest.raises(PermissionDenied, match="sign in again"):
        explore.principal_activity(ws, signed_in["lead"], "loan", "app-1")


def test_single_user_mode_accepts_any_role_as_a_downgrade(ws, tmp_path, admin):
    """Without accounts the OS user is admin anyway: acting with a lower role is allowed, and limited to it."""
    from workbench.cases.incidents import create_incident

    load(ws, tmp_path)
    analyst = Actor("alice", "analyst")
    assert len(explore.search_decisions(ws, analyst, "loan", limit=3)) == 3
    assert create_incident(ws, analyst, "downgraded", "low", systems=["loan"])["incident_id"]
    with pytest.raises(PermissionDenied):
        audit.verify(ws, analyst)
    assert audit.verify(ws, admin).ok and not _refused_rows(ws)


def test_a_subclass_of_actor_is_not_a_way_in(ws, admin):
    class Always(Actor):
        def can(self, permission: str) -> bool:
            return True

    viewer = _signed_in(ws, admin)["viewer"]
    with pytest.raises(PermissionDenied, match="not a subclass"):
        audit.verify(ws, Always(viewer.user, viewer.role, viewer._seal))
