"""Local accounts: argon2id password hashes, roles, lockout, and an audited sign-in.

A workspace without accounts runs in single-user mode (the OS user acts as admin, see workbench.access.session).
Creating the first account, which must be an admin, switches the workspace to sign-in for everyone.
An account may also carry an OIDC identity (e-mail or `sub` claim): the app's st.login sign-in maps it to
the account with `actor_for_identity`. `authenticate` and `actor_for_identity` are the only issuers of the
sealed actors a workspace with accounts accepts (see workbench.access); failures are audited under a
Principal (role '-'), which holds no permission.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from workbench import audit, settings
from workbench.access import ROLES, Actor, Principal, _issue, check_actor, os_user, require
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.store import Workspace

MIN_PASSWORD = 8
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_hasher = PasswordHasher()  # argon2id with argon2-cffi's RFC 9106 low-memory defaults
# Verified against when the user is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
_COLUMNS = (
    '"user", role, created_at, created_by, failed_count, locked_until, disabled, last_login, '
    "password_changed_at, identity"
)
_IDENTITY = re.compile(r"^[^\s\x00-\x1f]{1,255}$")


class AuthFailed(WorkbenchError):
    """Sign-in refused: wrong name or password, locked or disabled account."""


def _now() -> datetime:
    return datetime.now(UTC)


def max_failures() -> int:
    """Failed sign-ins in a row that lock an account (setting login_max_failures)."""
    return max(1, int(settings.get("login_max_failures")))


def lockout_minutes() -> float:
    """How long a locked account stays locked (setting login_lockout_minutes)."""
    return max(0.0, float(settings.get("login_lockout_minutes")))


def hash_password(password: str) -> str:
    """An argon2id PHC string for the password."""
    return _hasher.hash(password)


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise WorkbenchError(f"password too short: use at least {MIN_PASSWORD} characters")
    if password != password.strip() or "\n" in password:
        raise WorkbenchError("password must not start or end with spaces or contain line breaks")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise WorkbenchError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return role


def _account(ws: Workspace, user: str) -> dict[str, Any]:
    rows = ws.dicts(f'SELECT {_COLUMNS} FROM accounts WHERE "user" = ?', [user])
    if not rows:
        raise WorkbenchError(f"no account {user!r}")
    return rows[0]


def count_accounts(ws: Workspace) -> int:
    """How many accounts exist (0 means single-user mode)."""
    return int(ws.scalar("SELECT count(*) FROM accounts") or 0)


def normalize_identity(identity: str | None) -> str:
    """An OIDC identity as stored and matched: trimmed; e-mail addresses lower-case; '' when absent."""
    text = identity.strip() if isinstance(identity, str) else ""
    return text.lower() if "@" in text else text


def _check_identity(ws: Workspace, identity: str | None, user: str) -> str | None:
    """The normalized identity (None for none), refused when malformed or linked to another account."""
    norm = normalize_identity(identity)
    if not norm:
        return None
    if not _IDENTITY.match(norm):
        raise WorkbenchError(f"invalid identity {identity!r}: an e-mail address or the provider's subject id")
    other = ws.scalar('SELECT "user" FROM accounts WHERE identity = ? AND "user" <> ?', [norm, user])
    if other:
        raise WorkbenchError(f"identity {norm} is already linked to account {other}")
    return norm


def add_user(ws: Workspace, actor: Actor, user: str, role: str, password: str | None,
             identity: str | None = None) -> dict[str, Any]:
    """Create an account (optionally linked to an OIDC identity); the first must be an admin and switches
    the workspace to sign-in. Without a password (OIDC only) the account cannot sign in with one."""
    require(actor, "write:accounts", ws)
    if not isinstance(user, str) or not _USER_NAME.match(user):
        raise WorkbenchError(f"invalid user name {user!r}: letters, digits and . _ @ - (at most 64)")
    _check_role(role)
    if password is None and not normalize_identity(identity):
        raise WorkbenchError("an account needs a password, an OIDC identity, or both")
    if password is not None:
        _check_password(password)
    # OIDC-only accounts get a hash of a random secret nobody knows: password sign-in always fails.
    digest = hash_password(password if password is not None else secrets.token_urlsafe(32))
    with ws.transaction():
        first = count_accounts(ws) == 0
        if first and role != "admin":
            raise WorkbenchError("the first account must be an admin (it switches the workspace to sign-in)")
        if ws.scalar('SELECT count(*) FROM accounts WHERE lower("user") = lower(?)', [user]):
            raise WorkbenchError(f"account {user!r} already exists")
        linked = _check_identity(ws, identity, user)
        now = _now()
        details: dict[str, Any] = {"role": role, "first": first}
        if linked:
            details.update(identity=linked, password=password is not None)
        # Audited before the insert: from then on the workspace accepts only signed-in actors.
        audit.record(ws, actor, "account.add", user, details)
        if first:
            audit.record(ws, actor, "auth.mode", None, {"mode": "sign-in", "first_admin": user})
        ws.execute(
            'INSERT INTO accounts("user", role, password_hash, created_at, created_by, password_changed_at, '
            "identity) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [user, role, digest, now, actor.user, now if password is not None else None, linked],
        )
    return _account(ws, user)


def link_identity(ws: Workspace, actor: Actor, user: str, identity: str | None) -> dict[str, Any]:
    """Link an account to an OIDC identity (e-mail or `sub` claim), or unlink it with None or ''."""
    require(actor, "write:accounts", ws)
    with ws.transaction():
        before = _account(ws, user)
        linked = _check_identity(ws, identity, user)
        ws.execute('UPDATE accounts SET identity = ? WHERE "user" = ?', [linked, user])
        audit.record(ws, actor, "account.identity", user, {"from": before.get("identity"), "to": linked})
    return _account(ws, user)


def list_users(ws: Workspace, actor: Actor) -> list[dict[str, Any]]:
    """All accounts without their hashes (admins and auditors)."""
    check_actor(ws, actor, "list accounts")
    if not (actor.can("write:accounts") or actor.can("read:audit")):
        raise PermissionDenied(f"{actor.user} ({actor.role}) may not list accounts")
    rows = ws.dicts(f'SELECT {_COLUMNS} FROM accounts ORDER BY "user"')
    now = _now()
    for r in rows:
        r["locked"] = bool(r["locked_until"] and r["locked_until"] > now)
    return rows


def _active_admins(ws: Workspace, excluding: str) -> int:
    return int(
        ws.scalar(
            "SELECT count(*) FROM accounts WHERE role = 'admin' AND NOT disabled AND \"user\" <> ?",
            [excluding],
        )
        or 0
    )


def set_role(ws: Workspace, actor: Actor, user: str, role: str) -> dict[str, Any]:
    """Change an account's role (at least one enabled admin always remains)."""
    require(actor, "write:accounts", ws)
    _check_role(role)
    with ws.transaction():
        before = _account(ws, user)
        if before["role"] == "admin" and role != "admin" and not _active_admins(ws, user):
            raise WorkbenchError("cannot take admin from the last enabled admin account")
        ws.execute('UPDATE accounts SET role = ? WHERE "user" = ?', [role, user])
        audit.record(ws, actor, "account.role", user, {"from": before["role"], "to": role})
    return _account(ws, user)


def disable_user(ws: Workspace, actor: Actor, user: str, disabled: bool = True) -> dict[str, Any]:
    """Disable (or re-enable) an account; a disabled account cannot sign in."""
    require(actor, "write:accounts", ws)
    with ws.transaction():
        before = _account(ws, user)
        if disabled and before["role"] == "admin" and not _active_admins(ws, user):
            raise WorkbenchError("cannot disable the last enabled admin account")
        ws.execute('UPDATE accounts SET disabled = ? WHERE "user" = ?', [disabled, user])
        audit.record(ws, actor, "account.disable" if disabled else "account.enable", user, {})
    return _account(ws, user)


def reset_password(ws: Workspace, actor: Actor, user: str, password: str) -> None:
    """Set a new password (admins for anyone, users for themselves); also clears a lockout."""
    check_actor(ws, actor, "change a password")
    if actor.user != user:
        require(actor, "write:accounts", ws)
    _check_password(password)
    digest = hash_password(password)
    with ws.transaction():
        _account(ws, user)
        ws.execute(
            "UPDATE accounts SET password_hash = ?, password_changed_at = ?, failed_count = 0, "
            'locked_until = NULL WHERE "user" = ?',
            [digest, _now(), user],
        )
        audit.record(ws, actor, "account.password", user, {"by_self": actor.user == user})


def authenticate(ws: Workspace, user: str, password: str) -> Actor:
    """Verify a sign-in and return the account's Actor; failures count towards a lockout. All audited."""
    user = (user or "").strip()
    rows = ws.rows(
        'SELECT role, password_hash, failed_count, locked_until, disabled FROM accounts WHERE "user" = ?',
        [user],
    )
    if not rows:
        _verify(_DUMMY_HASH, password or "")
        audit.record(ws, Principal(user or "?"), "auth.failure", user or None, {"reason": "unknown account"})
        raise AuthFailed("sign-in failed: wrong user name or password")
    role, digest, failed, locked_until, disabled = rows[0]
    who = Principal(user)  # not signed in (yet): failure rows name the account, grant nothing
    now = _now()
    if locked_until is not None and locked_until > now:
        audit.record(ws, who, "auth.locked", user, {"until": locked_until, "attempt": "refused while locked",
                                                    "account_role": role})
        raise AuthFailed(locked_message(ws, user, role, locked_until, now))
    ok = _verify(digest, password or "")
    if ok and disabled:
        audit.record(ws, who, "auth.failure", user, {"reason": "account disabled", "account_role": role})
        raise AuthFailed(f"account {user} is disabled")
    if not ok:
        failed += 1
        with ws.transaction():
            if failed >= max_failures():
                until = now + timedelta(minutes=lockout_minutes())
                ws.execute(
                    'UPDATE accounts SET failed_count = 0, locked_until = ? WHERE "user" = ?', [until, user]
                )
                audit.record(ws, who, "auth.failure", user, {"reason": "wrong password", "failures": failed,
                                                             "account_role": role})
                audit.record(ws, who, "auth.locked", user, {"until": until, "failures": failed,
                                                            "account_role": role})
            else:
                ws.execute('UPDATE accounts SET failed_count = ? WHERE "user" = ?', [failed, user])
                audit.record(ws, who, "auth.failure", user, {"reason": "wrong password", "failures": failed,
                                                             "account_role": role})
        raise AuthFailed("sign-in failed: wrong user name or password")
    with ws.transaction():
        if _hasher.check_needs_rehash(digest):
            ws.execute(
                'UPDATE accounts SET password_hash = ? WHERE "user" = ?', [hash_password(password), user]
            )
        ws.execute(
            'UPDATE accounts SET failed_count = 0, locked_until = NULL, last_login = ? WHERE "user" = ?',
            [now, user],
        )
        signed_in = _issue(ws, user, role, "password")
        audit.record(ws, signed_in, "auth.login", user, {"method": "password"})
    return signed_in


def _admins_who_can_unlock(ws: Workspace, excluding: str, now: datetime) -> list[str]:
    """Enabled admins other than `excluding` who are not locked out themselves."""
    return [
        r[0]
        for r in ws.rows(
            'SELECT "user" FROM accounts WHERE role = \'admin\' AND NOT disabled AND "user" <> ? '
            "AND (locked_until IS NULL OR locked_until <= ?) ORDER BY \"user\"",
            [excluding, now],
        )
    ]


def locked_message(ws: Workspace, user: str, role: str, locked_until: datetime, now: datetime | None = None) -> str:
    """Why a sign-in is refused while locked, and how to get back in (the local recovery for the last admin)."""
    now = now or _now()
    minutes = max(1, math.ceil((locked_until - now).total_seconds() / 60))
    head = (f"account {user} is locked until {locked_until:%Y-%m-%d %H:%M} UTC ({minutes} min) "
            f"after {max_failures()} failed sign-ins")
    if role == "admin" and not _admins_who_can_unlock(ws, user, now):
        return (f"{head}; no other admin can unlock it: wait {minutes} min, or on the machine that holds the "
                f"workspace run `workbench user unlock {user} --local-recovery` (needs write access to the "
                "workspace file; audited)")
    return f"{head}; wait {minutes} min, or ask an admin to run `workbench user unlock {user}`"


def _clear_lock(ws: Workspace, user: str) -> dict[str, Any]:
    before = _account(ws, user)
    ws.execute('UPDATE accounts SET failed_count = 0, locked_until = NULL WHERE "user" = ?', [user])
    return before


def unlock(ws: Workspace, actor: Actor, user: str) -> dict[str, Any]:
    """Clear an account's lockout and failure count (admins); the password is unchanged. Audited."""
    require(actor, "write:accounts", ws)
    with ws.transaction():
        before = _clear_lock(ws, user)
        audit.record(ws, actor, "account.unlock", user,
                     {"method": "admin", "was_locked_until": before["locked_until"],
                      "failed_count": before["failed_count"]})
    return _account(ws, user)


def local_unlock(ws: Workspace, user: str, operator: str | None = None) -> dict[str, Any]:
    """Recovery without sign-in for a locked last admin: clears the lock when nobody else could.

    Only for a locked admin account with no other enabled admin able to sign in, and only with write access
    to the workspace file (whoever has that could change the database directly anyway). The app never calls
    this, so remote password guessing stays locked out. Audited as account.unlock (method local-recovery)."""
    path = getattr(ws, "path", None)
    if not path or not os.path.isfile(str(path)) or not os.access(str(path), os.W_OK):
        raise PermissionDenied("local recovery needs write access to the workspace file on this machine")
    now = _now()
    with ws.transaction():
        acct = _account(ws, user)
        if not (acct["locked_until"] and acct["locked_until"] > now):
            raise WorkbenchError(f"account {user} is not locked")
        if acct["role"] != "admin" or acct["disabled"]:
            raise WorkbenchError(f"local recovery is only for the last enabled admin; {user} is "
                                 f"{'disabled' if acct['disabled'] else 'a ' + acct['role']}: an admin can run "
                                 f"`workbench user unlock {user}`")
        others = _admins_who_can_unlock(ws, user, now)
        if others:
            raise WorkbenchError(f"local recovery is only for the last enabled admin; admin "
                                 f"{', '.join(others)} can sign in and run `workbench user unlock {user}`")
        _clear_lock(ws, user)
        audit.record(ws, Principal(operator or os_user(), "local-recovery"), "account.unlock", user,
                     {"method": "local-recovery", "workspace": str(path), "host": socket.gethostname(),
                      "was_locked_until": acct["locked_until"], "failed_count": acct["failed_count"]})
    return _account(ws, user)


def actor_for_identity(ws: Workspace, *identities: str | None) -> Actor:
    """The Actor of the enabled account linked to an OIDC identity (the first of e.g. email, sub that is
    linked); audited as auth.login (method oidc), or refused and audited as auth.failure."""
    tried = [n for n in dict.fromkeys(normalize_identity(i) for i in identities) if n]
    match = None
    for norm in tried:
        rows = ws.rows('SELECT "user", role, disabled FROM accounts WHERE identity = ?', [norm])
        if rows:
            match = (norm, *rows[0])
            break
    if match is None:
        claimed = tried[0] if tried else "?"
        details = {"method": "oidc", "reason": "unknown identity" if tried else "no identity claim",
                   "identities": tried}
        audit.record(ws, Principal(claimed), "auth.failure", claimed if tried else None, details)
        raise AuthFailed(f"no account is linked to {claimed}; an admin can link one with "
                         f"`workbench user link USER --identity {claimed}`" if tried
                         else "the identity provider sent no e-mail or subject to sign in with")
    identity, user, role, disabled = match
    # A password lockout does not block OIDC: the provider, not a guessed password, vouched for this person.
    if disabled:
        audit.record(ws, Principal(user), "auth.failure", user, {"method": "oidc", "identity": identity,
                                                                 "reason": "account disabled", "account_role": role})
        raise AuthFailed(f"account {user} is disabled")
    with ws.transaction():
        ws.execute('UPDATE accounts SET last_login = ? WHERE "user" = ?', [_now(), user])
        signed_in = _issue(ws, user, role, "oidc")
        audit.record(ws, signed_in, "auth.login", user, {"method": "oidc", "identity": identity})
    return signed_in


def _verify(digest: str, password: str) -> bool:
    try:
        return _hasher.verify(digest, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def seed_demo_accounts(ws: Workspace, actor: Actor) -> list[dict[str, str]]:
    """One account per role with a random password, for training and drills; passwords are returned once.

    On a workspace without accounts the first (demo-admin) switches it to sign-in; the rest are then created
    signed in as demo-admin, the only actor the workspace accepts from that moment."""
    require(actor, "write:accounts", ws)
    out = []
    for role in ("admin", *[r for r in ROLES if r != "admin"]):
        user = f"demo-{role}"
        password = secrets.token_urlsafe(12)
        first = count_accounts(ws) == 0
        add_user(ws, actor, user, role, password)
        if first:
            actor = authenticate(ws, user, password)
        out.append({"user": user, "role": role, "password": password})
    return out
