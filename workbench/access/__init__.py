"""Who is acting, and what each role may do: checked in the library, whatever the front end.

Single-user mode (a workspace without accounts): any Actor is accepted; whoever runs the process can open the
file and is admin anyway, so acting under a lower role is a harmless downgrade. A workspace with accounts accepts
only an Actor that sign-in issued for it (`accounts.authenticate`, `accounts.actor_for_identity`): the Actor
carries a seal, an HMAC under a key that exists only in this process, over (workspace id, user, role, method).
`Actor("x", "admin")` has no seal, and `dataclasses.replace` or a copied seal breaks it, so `require` and
`audit.record` refuse it (and audit the refusal). The account is re-checked on every use: a role change or a
disabled account takes effect at once. This stops a notebook or script from minting a role through the library;
it does not stop code running in the same process from reading the workspace file, or this module's key.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import secrets
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from workbench.errors import PermissionDenied
from workbench.store import Workspace

if TYPE_CHECKING:
    from workbench.store import Workspace

ROLES = ("viewer", "analyst", "lead", "auditor", "admin")
# Names in the audit log's role column that are not roles: no permission is ever granted to them.
NON_ROLES = ("-", "system", "local-recovery")

# Which roles hold each permission. Admin holds all of them (single-user mode acts as admin).
PERMISSIONS: dict[str, frozenset[str]] = {
    "read:aggregates": frozenset(ROLES),
    "read:decisions": frozenset({"analyst", "lead", "auditor", "admin"}),
    "read:personal": frozenset({"lead", "auditor", "admin"}),
    "read:audit": frozenset({"auditor", "admin"}),
    "read:incidents": frozenset({"analyst", "lead", "auditor", "admin"}),
    "write:ingest": frozenset({"analyst", "lead", "admin"}),
    "write:models": frozenset({"analyst", "lead", "admin"}),
    "write:detect": frozenset({"analyst", "lead", "admin"}),
    "write:incidents": frozenset({"analyst", "lead", "admin"}),
    "close:incidents": frozenset({"lead", "admin"}),
    "write:playbooks": frozenset({"lead", "admin"}),
    "write:accounts": frozenset({"admin"}),
    "write:settings": frozenset({"lead", "admin"}),
    "run:sql": frozenset({"analyst", "lead", "auditor", "admin"}),
    "export": frozenset({"analyst", "lead", "auditor", "admin"}),
    "run:drills": frozenset({"analyst", "lead", "admin"}),
    "facilitate:drills": frozenset({"lead", "admin"}),
}

_KEY = secrets.token_bytes(32)  # seals actors issued in this process; never stored, never leaves the process
_ids: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _Seal:
    workspace: str
    via: str
    mac: str


def _mac(workspace: str, user: str, role: str, via: str) -> str:
    message = json.dumps([workspace, user, role, via], separators=(",", ":")).encode("utf-8")
    return hmac.new(_KEY, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Actor:
    """The user on whose behalf a library call runs, and their role (sealed when sign-in issued it)."""

    user: str
    role: str
    _seal: _Seal | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; roles are {', '.join(ROLES)}")

    @property
    def via(self) -> str | None:
        """How sign-in issued this actor ('password', 'oidc'), or None for one made by hand."""
        return self._seal.via if self._seal else None

    def can(self, permission: str) -> bool:
        """Whether this actor's role holds the permission."""
        if permission not in PERMISSIONS:
            raise KeyError(f"unknown permission {permission!r}")
        return self.role in PERMISSIONS[permission]


@dataclass(frozen=True)
class Principal:
    """Someone an audit row names who holds no role: a failed or refused sign-in ('-'), the system undoing an
    interrupted load ('system'), the OS operator of a local recovery ('local-recovery'). Never granted anything."""

    user: str
    role: str = "-"

    def __post_init__(self) -> None:
        if self.role not in NON_ROLES:
            raise ValueError(f"a principal's role is one of {', '.join(NON_ROLES)}, not {self.role!r}")

    def can(self, permission: str) -> bool:
        """Never: a principal holds no permission."""
        return False


def workspace_id(ws: Workspace) -> str:
    """The workspace's identity (a random id set by migration 016; the file path on an unmigrated copy)."""
    known = _ids.get(ws)
    if known:
        return known
    try:
        value = ws.scalar("SELECT value FROM workspace_meta WHERE key = 'workspace_id'")
    except duckdb.CatalogException:
        value = None
    if value is None:
        return f"path:{ws.path}"
    _ids[ws] = found = str(json.loads(value) if isinstance(value, str) else value)
    return found


def _issue(ws: Workspace, user: str, role: str, via: str) -> Actor:
    """A sealed Actor for a verified sign-in. Only `workbench.access.accounts` calls this (after checking the
    password or the identity provider's claim); anything else calling it defeats the point, as documented."""
    wid = workspace_id(ws)
    return Actor(user, role, _Seal(wid, via, _mac(wid, user, role, via)))


def _account_state(ws: Workspace, user: str) -> tuple[int, str | None, bool | None]:
    """(number of accounts, this user's role, whether disabled); (0, None, None) without an accounts table."""
    try:
        row = ws.one(
            'SELECT count(*), any_value(role) FILTER (WHERE "user" = ?), bool_or(disabled) FILTER (WHERE "user" = ?) '
            "FROM accounts",
            [user, user],
        )
    except duckdb.CatalogException:
        return 0, None, None
    return (int(row[0]), row[1], row[2]) if row else (0, None, None)


def _why_not_issued(ws: Workspace, actor: Actor) -> str | None:
    """None when the workspace accepts the actor, else why not."""
    count, role, disabled = _account_state(ws, actor.user)
    if count == 0:
        return None  # single-user mode: any actor, the OS user could open the file anyway
    if type(actor) is not Actor:  # a subclass could answer differently to the seal check and to `can`
        return "only an Actor issued by sign-in is accepted, not a subclass"
    seal = actor._seal
    if seal is None:
        return "the workspace has accounts and this actor was not issued by sign-in"
    wid = workspace_id(ws)
    if seal.workspace != wid or not hmac.compare_digest(seal.mac, _mac(wid, actor.user, actor.role, seal.via)):
        return "this actor's sign-in is not valid for this workspace"
    if role is None or disabled or role != actor.role:
        return "the account was removed, disabled or given another role since sign-in; sign in again"
    return None


def is_issued(ws: Workspace, actor: Actor) -> bool:
    """Whether the workspace accepts this actor now (always true in single-user mode); nothing is audited."""
    return isinstance(actor, Actor) and _why_not_issued(ws, actor) is None


def check_actor(ws: Workspace, actor: Actor, doing: str) -> None:
    """Refuse, and audit the refusal of, an actor the workspace did not issue (see the module docstring)."""
    if not isinstance(actor, Actor):
        raise PermissionDenied(f"{getattr(actor, 'user', '?')} holds no role and may not {doing}")
    reason = _why_not_issued(ws, actor)
    if reason is None:
        return
    _audit_refusal(ws, actor, doing, reason)
    raise PermissionDenied(f"{actor.user} ({actor.role}) may not {doing}: {reason}")


def _audit_refusal(ws: Workspace, actor: Actor, doing: str, reason: str) -> None:
    """Record the refusal from a cursor of its own, so that the caller's rolled-back transaction keeps it."""
    if getattr(ws, "read_only", False):
        return
    from workbench import audit  # audit builds on this module

    def write() -> None:
        try:
            audit.record(ws, Principal(actor.user), "access.refused", doing,
                         {"claimed_role": actor.role, "reason": reason})
        except Exception:  # noqa: BLE001 - a conflict with the caller's open transaction: the refusal still stands
            pass

    worker = threading.Thread(target=write, name="workbench-audit-refusal", daemon=True)
    worker.start()
    worker.join()


def require(actor: Actor, permission: str, ws: Workspace | None) -> None:
    """Raise PermissionDenied unless the actor holds the permission and the workspace accepts the actor.

    Every library entry point passes the workspace it acts on, so a hand-made actor is refused on a workspace
    with accounts. `ws=None` is only for work that touches no existing workspace (building a new drill)."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    if ws is not None:
        check_actor(ws, actor, permission.replace(":", " "))
    if not actor.can(permission):
        raise PermissionDenied(f"{actor.user} ({actor.role}) may not {permission.replace(':', ' ')}")


def os_user() -> str:
    """The operating-system user name, the actor in single-user mode."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "local"


def local_admin() -> Actor:
    """The single-user-mode actor: the OS user with full rights (refused once the workspace has accounts)."""
    return Actor(os_user(), "admin")
