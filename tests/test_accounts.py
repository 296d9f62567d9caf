"""Local accounts: argon2id hashes, first-admin rule, sign-in mode switch, lockout, audited logins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench import audit
from workbench.access import Actor, accounts, local_admin
from workbench.access.session import actor_for, has_accounts
from workbench.errors import PermissionDenied, WorkbenchError

PW = "correct horse battery"


def _root(ws, admin) -> Actor:
    """Create the first admin (single-user mode) and sign in as it: from then on the only way in."""
    accounts.add_user(ws, admin, "root", "admin", PW)
    return accounts.authenticate(ws, "root", PW)


def _actions(ws, prefix: str = "") -> list[tuple[str, str, str | None]]:
    return ws.rows(
        "SELECT action, actor, object FROM audit_log WHERE starts_with(action, ?) ORDER BY seq", [prefix]
    )


def test_hash_is_argon2id_and_never_listed(ws, admin):
    root = _root(ws, admin)
    stored = ws.scalar("SELECT password_hash FROM accounts WHERE \"user\" = 'root'")
    assert stored.startswith("$argon2id$v=19$") and PW not in stored
    rows = accounts.list_users(ws, root)
    assert rows[0]["user"] == "root" and "password_hash" not in rows[0]
    assert not any(PW in str(r) for r in ws.rows("SELECT details FROM audit_log"))


def test_first_account_must_be_admin(ws, admin):
    with pytest.raises(WorkbenchError, match="first account must be an admin"):
        accounts.add_user(ws, admin, "ann", "analyst", PW)
    assert not has_accounts(ws)
    root = _root(ws, admin)
    accounts.add_user(ws, root, "ann", "analyst", PW)
    assert [r["role"] for r in accounts.list_users(ws, root)] == ["analyst", "admin"]
    assert ("account.add", admin.user, "root") in _actions(ws, "account.")
    assert _actions(ws, "auth.mode")
    # the single-user actor that created the first admin is refused from then on, and the refusal audited
    with pytest.raises(PermissionDenied, match="not issued by sign-in"):
        accounts.add_user(ws, admin, "bob", "admin", PW)
    assert ("access.refused", admin.user, "write accounts") in _actions(ws, "access.")


def test_single_user_mode_then_sign_in(ws, admin, monkeypatch):
    assert actor_for(ws) == local_admin()
    with pytest.raises(WorkbenchError, match="single-user mode"):
        actor_for(ws, "somebody-else")
    root = _root(ws, admin)
    accounts.add_user(ws, root, "ann", "analyst", PW)
    assert has_accounts(ws)
    with pytest.raises(WorkbenchError, match="--user"):
        actor_for(ws)
    with pytest.raises(WorkbenchError, match="password needed"):
        actor_for(ws, "ann")
    assert actor_for(ws, "ann", PW) == Actor("ann", "analyst")
    monkeypatch.setenv("WORKBENCH_USER", "root")
    monkeypatch.setenv("WORKBENCH_PASSWORD", PW)
    assert actor_for(ws) == Actor("root", "admin")


def test_login_and_failures_are_audited(ws, admin):
    accounts.add_user(ws, admin, "root", "admin", PW)
    root = accounts.authenticate(ws, "root", PW)
    assert root == Actor("root", "admin") and root.via == "password"
    with pytest.raises(accounts.AuthFailed, match="wrong user name or password"):
        accounts.authenticate(ws, "root", "wrong password")
    with pytest.raises(accounts.AuthFailed, match="wrong user name or password"):
        accounts.authenticate(ws, "nobody", PW)
    rows = ws.dicts(
        "SELECT actor, role, action, object, details FROM audit_log "
        "WHERE starts_with(action, 'auth.') AND action <> 'auth.mode' ORDER BY seq"
    )
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("root", "auth.login"),
        ("root", "auth.failure"),
        ("nobody", "auth.failure"),
    ]
    assert rows[2]["role"] == "-" and json.loads(rows[2]["details"])["reason"] == "unknown account"
    # a failed sign-in grants no role: its row names the account, with the role '-'
    assert rows[1]["role"] == "-" and json.loads(rows[1]["details"])["account_role"] == "admin"
    assert audit.verify(ws, root).ok
    assert ws.scalar("SELECT last_login FROM accounts WHERE \"user\" = 'root'") is not None


def test_lockout_after_repeated_failures(ws, admin, monkeypatch):
    monkeypatch.setenv("WORKBENCH_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("WORKBENCH_LOGIN_LOCKOUT_MINUTES", "10")
    root = _root(ws, admin)
    accounts.add_user(ws, root, "ann", "analyst", PW)
    for _ in range(3):
        with pytest.raises(accounts.AuthFailed, match="wrong"):
            accounts.authenticate(ws, "ann", "not the password")
    # locked: even the right password is refused, and the refusal is audited
    with pytest.raises(accounts.AuthFailed, match="locked until"):
        accounts.authenticate(ws, "ann", PW)
    acts = [a for a, who, _ in _actions(ws, "auth.") if who == "ann"]
    assert acts == ["auth.failure"] * 3 + ["auth.locked", "auth.locked"]
    assert accounts.list_users(ws, root)[0]["locked"]
    # the lock expires after M minutes (moved into the past here) and a success clears the count
    ws.execute("UPDATE accounts SET locked_until = now() - INTERVAL 1 MINUTE WHERE \"user\" = 'ann'")
    assert accounts.authenticate(ws, "ann", PW).role == "analyst"
    assert ws.scalar("SELECT failed_count FROM accounts WHERE \"user\" = 'ann'") == 0
    # an admin's password reset also clears a lock
    for _ in range(3):
        with pytest.raises(accounts.AuthFailed):
            accounts.authenticate(ws, "ann", "nope nope")
    accounts.reset_password(ws, root, "ann", "a new password")
    assert accounts.authenticate(ws, "ann", "a new password").user == "ann"


def _lock(ws, user: str, n: int = 3) -> None:
    for _ in range(n):
        with pytest.raises(accounts.AuthFailed, match="wrong"):
            accounts.authenticate(ws, user, "not the password")


def test_locked_last_admin_is_told_how_to_recover(ws, admin, monkeypatch):
    monkeypatch.setenv("WORKBENCH_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("WORKBENCH_LOGIN_LOCKOUT_MINUTES", "15")
    root = _root(ws, admin)
    accounts.add_user(ws, root, "ann", "analyst", PW)
    _lock(ws, "ann")
    with pytest.raises(accounts.AuthFailed) as info:
        accounts.authenticate(ws, "ann", PW)
    assert "(15 min)" in str(info.value) and "ask an admin to run `workbench user unlock ann`" in str(info.value)
    _lock(ws, "root")
    with pytest.raises(accounts.AuthFailed) as info:
        accounts.authenticate(ws, "root", PW)
    msg = str(info.value)
    assert "no other admin can unlock it: wait 15 min" in msg and "--local-recovery" in msg
    assert "an admin can reset" not in msg and "\n" not in msg
    # the lock still holds for sign-in (the app's only path): the right password is refused
    with pytest.raises(accounts.AuthFailed, match="locked until"):
        accounts.authenticate(ws, "root", PW)
    # local recovery refuses non-admins and accounts that are not locked
    with pytest.raises(WorkbenchError, match="only for the last enabled admin"):
        accounts.local_unlock(ws, "ann", operator="ops")
    row = accounts.local_unlock(ws, "root", operator="ops")
    assert row["locked_until"] is None and row["failed_count"] == 0
    who, role, details = ws.one(
        "SELECT actor, role, details FROM audit_log WHERE action = 'account.unlock' ORDER BY seq DESC LIMIT 1"
    )
    assert (who, role, json.loads(details)["method"]) == ("ops", "local-recovery", "local-recovery")
    assert audit.verify(ws, root).ok
    root = accounts.authenticate(ws, "root", PW)
    assert root.role == "admin"
    with pytest.raises(WorkbenchError, match="not locked"):
        accounts.local_unlock(ws, "root", operator="ops")
    # an admin unlocks others by signing in
    accounts.unlock(ws, root, "ann")
    ann = accounts.authenticate(ws, "ann", PW)
    with pytest.raises(PermissionDenied):
        accounts.unlock(ws, ann, "ann")


def test_local_recovery_refused_while_another_admin_can_sign_in(ws, admin, monkeypatch):
    monkeypatch.setenv("WORKBENCH_LOGIN_MAX_FAILURES", "3")
    accounts.add_user(ws, _root(ws, admin), "bob", "admin", PW)
    _lock(ws, "root")
    with pytest.raises(accounts.AuthFailed) as info:
        accounts.authenticate(ws, "root", PW)
    assert "--local-recovery" not in str(info.value) and "workbench user unlock root" in str(info.value)
    with pytest.raises(WorkbenchError, match="admin bob can sign in"):
        accounts.local_unlock(ws, "root", operator="ops")
    _lock(ws, "bob")  # now neither can sign in: local recovery is the way back
    assert accounts.local_unlock(ws, "root", operator="ops")["locked_until"] is None


def test_cli_unlock_local_recovery(tmp_path, monkeypatch):
    from workbench.cli import app
    from workbench.store import open_workspace
    monkeypatch.setenv("WORKBENCH_LOGIN_MAX_FAILURES", "2")
    db = tmp_path / "cli.duckdb"
    w = open_workspace(db)
    accounts.add_user(w, local_admin(), "root", "admin", PW)
    _lock(w, "root", 2)
    w.close()
    runner = CliRunner()
    res = runner.invoke(app, ["user", "unlock", "--help"])
    assert "--local-recovery" in res.output and "audit" in res.output
    res = runner.invoke(app, ["user", "unlock", "root", "--local-recovery", "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert "unlocked" in res.output
    w = open_workspace(db)
    try:
        assert accounts.authenticate(w, "root", PW).role == "admin"
    finally:
        w.close()


def test_disable_role_and_last_admin(ws, admin):
    root = _root(ws, admin)
    accounts.add_user(ws, root, "ann", "analyst", PW)
    with pytest.raises(WorkbenchError, match="last enabled admin"):
        accounts.set_role(ws, root, "root", "lead")
    with pytest.raises(WorkbenchError, match="last enabled admin"):
        accounts.disable_user(ws, root, "root")
    accounts.disable_user(ws, root, "ann")
    with pytest.raises(accounts.AuthFailed, match="disabled"):
        accounts.authenticate(ws, "ann", PW)
    with pytest.raises(accounts.AuthFailed, match="wrong"):
        accounts.authenticate(ws, "ann", "wrong password")
    accounts.disable_user(ws, root, "ann", disabled=False)
    assert accounts.set_role(ws, root, "ann", "lead")["role"] == "lead"
    assert accounts.authenticate(ws, "ann", PW) == Actor("ann", "lead")
    assert {"account.disable", "account.enable", "account.role"} <= {
        a for a, _, _ in _actions(ws, "account.")
    }


def test_only_admins_manage_accounts(ws, admin):
    root = _root(ws, admin)
    signed_in = {}
    for role in ("viewer", "analyst", "lead", "auditor"):
        accounts.add_user(ws, root, f"x-{role}", role, PW)
        signed_in[role] = accounts.authenticate(ws, f"x-{role}", PW)
        with pytest.raises(PermissionDenied):
            accounts.add_user(ws, signed_in[role], "eve", "admin", PW)
    with pytest.raises(PermissionDenied):
        accounts.list_users(ws, signed_in["analyst"])
    assert accounts.list_users(ws, signed_in["auditor"])
    with pytest.raises(PermissionDenied, match="not issued by sign-in"):  # a hand-made auditor is nobody
        accounts.list_users(ws, Actor("x-auditor", "auditor"))
    with pytest.raises(WorkbenchError, match="too short"):
        accounts.add_user(ws, root, "short", "viewer", "abc")
    with pytest.raises(WorkbenchError, match="invalid user name"):
        accounts.add_user(ws, root, "bad name; drop", "viewer", PW)
    with pytest.raises(WorkbenchError, match="already exists"):
        accounts.add_user(ws, root, "ROOT", "viewer", PW)
    # users may change their own password, not others'; a hand-made actor not even its "own"
    accounts.add_user(ws, root, "ann", "analyst", PW)
    ann = accounts.authenticate(ws, "ann", PW)
    with pytest.raises(PermissionDenied, match="not issued by sign-in"):
        accounts.reset_password(ws, Actor("ann", "analyst"), "ann", "a forged new password")
    accounts.reset_password(ws, ann, "ann", "my new password")
    with pytest.raises(PermissionDenied):
        accounts.reset_password(ws, ann, "root", "my new password")


def test_seed_demo_accounts(ws, admin):
    seeded = accounts.seed_demo_accounts(ws, admin)
    assert sorted(a["role"] for a in seeded) == sorted(["viewer", "analyst", "lead", "auditor", "admin"])
    assert seeded[0]["role"] == "admin"
    creators = ws.rows("SELECT actor FROM audit_log WHERE action = 'account.add' ORDER BY seq")
    assert [c[0] for c in creators] == [admin.user] + ["demo-admin"] * 4  # then signed in as the first admin
    for acc in seeded:
        assert accounts.authenticate(ws, acc["user"], acc["password"]) == Actor(acc["user"], acc["role"])
    assert len({a["password"] for a in seeded}) == 5


def test_cli_user_commands_and_sign_in(tmp_path, monkeypatch):
    from workbench.cli import app
    db = str(tmp_path / "cli.duckdb")
    runner = CliRunner()
    res = runner.invoke(
        app, ["user", "add", "root", "--role", "admin", "--password-stdin", "--db", db], input=PW + "\n"
    )
    assert res.exit_code == 0, res.output
    # now everyone signs in: the root option reads the sign-in password, the command's option the new one
    res = runner.invoke(
        app,
        [
            "--password-stdin",
            "user",
            "add",
            "ann",
            "--role",
            "analyst",
            "--password-stdin",
            "--user",
            "root",
            "--db",
            db,
        ],
        input=PW + "\nanother password\n",
    )
    assert res.exit_code == 0, res.output
    monkeypatch.setenv("WORKBENCH_PASSWORD", PW)
    res = runner.invoke(app, ["user", "list", "--json", "--user", "root", "--db", db])
    assert res.exit_code == 0, res.output
    assert [json.loads(line)["user"] for line in res.output.splitlines()] == ["ann", "root"]
    monkeypatch.setenv("WORKBENCH_PASSWORD", "another password")
    res = runner.invoke(app, ["user", "list", "--user", "ann", "--db", db])
    assert isinstance(res.exception, PermissionDenied)
    res = runner.invoke(app, ["user", "list", "--db", db])
    assert isinstance(res.exception, WorkbenchError) and "--user" in str(res.exception)


# -- OIDC identities (st.login): an identity maps to an existing, enabled, linked account ---------------------


def _auth_rows(ws) -> list[dict]:
    return ws.dicts(
        "SELECT actor, role, action, object, details FROM audit_log "
        "WHERE starts_with(action, 'auth.') AND action <> 'auth.mode' ORDER BY seq"
    )


def test_oidc_identity_signs_in_the_linked_account(ws, admin):
    root = _root(ws, admin)
    row = accounts.add_user(ws, root, "ann", "analyst", None, identity="  Ann@Example.ORG ")
    assert row["identity"] == "ann@example.org" and row["password_changed_at"] is None
    ann = accounts.actor_for_identity(ws, "ANN@example.org")
    assert ann == Actor("ann", "analyst") and ann.via == "oidc"
    # an OIDC-only account has no usable password
    with pytest.raises(accounts.AuthFailed, match="wrong user name or password"):
        accounts.authenticate(ws, "ann", PW)
    # the subject claim works as well, when the e-mail is not linked
    accounts.link_identity(ws, root, "root", "00u1ab2CD3")
    assert accounts.actor_for_identity(ws, "someone@else.org", "00u1ab2CD3") == Actor("root", "admin")
    with pytest.raises(accounts.AuthFailed):  # a subject id is matched exactly, not case-folded
        accounts.actor_for_identity(ws, "00U1AB2CD3")
    rows = [r for r in _auth_rows(ws) if r["action"] == "auth.login" and "oidc" in r["details"]]
    assert [(r["actor"], r["role"], r["object"]) for r in rows] == [
        ("ann", "analyst", "ann"), ("root", "admin", "root")]
    assert [json.loads(r["details"]) for r in rows] == [
        {"method": "oidc", "identity": "ann@example.org"},
        {"method": "oidc", "identity": "00u1ab2CD3"},
    ]
    assert ws.scalar("SELECT last_login FROM accounts WHERE \"user\" = 'ann'") is not None
    assert audit.verify(ws, root).ok


def test_oidc_unknown_unlinked_or_disabled_identity_is_refused_and_audited(ws, admin):
    root = _root(ws, admin)
    accounts.add_user(ws, root, "ann", "analyst", PW, identity="ann@example.org")
    with pytest.raises(accounts.AuthFailed, match="no account is linked to eve@example.org"):
        accounts.actor_for_identity(ws, "eve@example.org")
    # an account's name is not an identity: only an explicit link signs in
    with pytest.raises(accounts.AuthFailed):
        accounts.actor_for_identity(ws, "root")
    with pytest.raises(accounts.AuthFailed, match="no e-mail or subject"):
        accounts.actor_for_identity(ws, None, "  ")
    accounts.disable_user(ws, root, "ann")
    with pytest.raises(accounts.AuthFailed, match="disabled"):
        accounts.actor_for_identity(ws, "ann@example.org")
    accounts.disable_user(ws, root, "ann", disabled=False)
    accounts.link_identity(ws, root, "ann", None)
    with pytest.raises(accounts.AuthFailed, match="no account is linked"):
        accounts.actor_for_identity(ws, "ann@example.org")
    rows = _auth_rows(ws)
    assert [json.loads(r["details"])["method"] for r in rows if r["action"] == "auth.login"] == ["password"]
    rows = [r for r in rows if r["action"] != "auth.login"]
    assert [(r["actor"], r["role"], r["action"]) for r in rows] == [
        ("eve@example.org", "-", "auth.failure"),
        ("root", "-", "auth.failure"),
        ("?", "-", "auth.failure"),
        ("ann", "-", "auth.failure"),  # no role granted: the account's role is in the details
        ("ann@example.org", "-", "auth.failure"),
    ]
    details = [json.loads(r["details"]) for r in rows]
    assert all(d["method"] == "oidc" for d in details)
    assert [d["reason"] for d in details] == [
        "unknown identity", "unknown identity", "no identity claim", "account disabled", "unknown identity"]
    assert details[3]["account_role"] == "analyst"
    assert audit.verify(ws, root).ok


def test_identity_links_are_unique_admin_only_and_audited(ws, admin):
    root = _root(ws, admin)
    accounts.add_user(ws, root, "ann", "analyst", PW)
    with pytest.raises(WorkbenchError, match="password, an OIDC identity, or both"):
        accounts.add_user(ws, root, "bob", "viewer", None)
    accounts.link_identity(ws, root, "ann", "ann@example.org")
    with pytest.raises(WorkbenchError, match="already linked to account ann"):
        accounts.link_identity(ws, root, "root", "ANN@example.org")
    with pytest.raises(WorkbenchError, match="already linked to account ann"):
        accounts.add_user(ws, root, "bob", "viewer", None, identity="ann@example.org")
    with pytest.raises(WorkbenchError, match="invalid identity"):
        accounts.link_identity(ws, root, "root", "two words")
    with pytest.raises(WorkbenchError, match="no account"):
        accounts.link_identity(ws, root, "nobody", "x@example.org")
    for role in ("viewer", "analyst", "lead", "auditor"):
        accounts.set_role(ws, root, "ann", role)
        with pytest.raises(PermissionDenied, match="may not write accounts$"):
            accounts.link_identity(ws, accounts.authenticate(ws, "ann", PW), "ann", "mine@example.org")
    assert accounts.link_identity(ws, root, "ann", "ann@example.org")["identity"] == "ann@example.org"
    events = ws.dicts("SELECT object, details FROM audit_log WHERE action = 'account.identity' ORDER BY seq")
    assert [(e["object"], json.loads(e["details"])) for e in events] == [
        ("ann", {"from": None, "to": "ann@example.org"}),
        ("ann", {"from": "ann@example.org", "to": "ann@example.org"}),
    ]
    assert {r["user"]: r["identity"] for r in accounts.list_users(ws, root)} == {
        "ann": "ann@example.org", "root": None}


def test_cli_user_identity_add_and_link(tmp_path, monkeypatch):
    from workbench.cli import app
    db = str(tmp_path / "cli.duckdb")
    runner = CliRunner()
    res = runner.invoke(app, ["user", "add", "root", "--role", "admin", "--password-stdin", "--db", db,
                              "--identity", "Root@Example.org"], input=PW + "\n")
    assert res.exit_code == 0, res.output
    assert "OIDC identity root@example.org" in res.output
    monkeypatch.setenv("WORKBENCH_PASSWORD", PW)
    # an OIDC-only account: no password asked for
    res = runner.invoke(app, ["user", "add", "ann", "--role", "analyst", "--identity", "ann@example.org",
                              "--user", "root", "--db", db])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["user", "link", "ann", "--identity", "00uANN", "--user", "root", "--db", db])
    assert res.exit_code == 0 and "linked to 00uANN" in res.output, res.output
    res = runner.invoke(app, ["user", "link", "ann", "--user", "root", "--db", db])
    assert isinstance(res.exception, WorkbenchError) and "--unlink" in str(res.exception)
    res = runner.invoke(app, ["user", "list", "--json", "--user", "root", "--db", db])
    assert {json.loads(x)["user"]: json.loads(x)["identity"] for x in res.output.splitlines()} == {
        "ann": "00uANN", "root": "root@example.org"}
    res = runner.invoke(app, ["user", "link", "ann", "--unlink", "--user", "root", "--db", db])
    assert res.exit_code == 0 and "unlinked" in res.output, res.output


_OIDC_SECRETS = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "not-a-real-secret",
                 "client_id": "workbench-test", "client_secret": "not-a-real-secret",
                 "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration"}


def test_app_oidc_sign_in_maps_identity_to_account(tmp_path, monkeypatch):
    """The app's st.login gate through AppTest's own st.user/st.secrets seeding; the mapping is the library's."""
    from streamlit.testing.v1 import AppTest

    from workbench.store import open_workspace

    db = tmp_path / "oidc_app.duckdb"
    w = open_workspace(db)
    accounts.add_user(w, _root(w, local_admin()), "ann", "analyst", None, identity="ann@example.org")
    w.close()
    monkeypatch.setenv("WORKBENCH_DB", str(db))
    monkeypatch.setenv("WORKBENCH_NO_AUTODEMO", "1")
    app_file = str(Path(__file__).resolve().parent.parent / "workbench" / "streamlit_app.py")

    def run(user: dict) -> AppTest:
        at = AppTest.from_file(app_file, default_timeout=60)
        at.secrets["auth"] = _OIDC_SECRETS
        at.user = user
        return at.run()

    at = run({"is_logged_in": False})
    assert at.title[0].value == "Sign in to the workbench" and not at.metric
    at = run({"is_logged_in": True, "email": "Ann@Example.org", "sub": "00uANN"})
    assert not at.exception and not at.error, [*at.exception, *at.error]
    assert at.title[0].value == "Overview"
    assert any("ann" in m.value and "analyst" in m.value for m in at.sidebar.markdown)
    # an unverified e-mail is not used; the subject is not linked: refused
    at = run({"is_logged_in": True, "email": "ann@example.org", "email_verified": False, "sub": "00uANN"})
    assert at.error and "refuses it" in at.error[0].value and not at.metric
    at = run({"is_logged_in": True, "email": "eve@example.org", "sub": "00uEVE"})
    assert at.error and "no account is linked to eve@example.org" in at.error[0].value
    w = open_workspace(db)
    try:
        acts = w.rows("SELECT actor, action FROM audit_log WHERE starts_with(action, 'auth.') "
                      "AND action <> 'auth.mode' ORDER BY seq")
    finally:
        w.close()
    assert acts == [("root", "auth.login"),  # the test's own sign-in to create ann
                    ("ann", "auth.login"), ("00uANN", "auth.failure"), ("eve@example.org", "auth.failure")]
