"""Who is acting, and what each role may do: checked in the library, whatever the front end."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from workbench.errors import PermissionDenied

ROLES = ("viewer", "analyst", "lead", "auditor", "admin")

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


@dataclass(frozen=True)
class Actor:
    """The user on whose behalf a library call runs, and their role."""

    user: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; roles are {', '.join(ROLES)}")

    def can(self, permission: str) -> bool:
        """Whether this actor's role holds the permission."""
        if permission not in PERMISSIONS:
            raise KeyError(f"unknown permission {permission!r}")
        return self.role in PERMISSIONS[permission]


def require(actor: Actor, permission: str) -> None:
    """Raise PermissionDenied unless the actor holds the permission."""
    if not actor.can(permission):
        raise PermissionDenied(f"{actor.user} ({actor.role}) may not {permission.replace(':', ' ')}")


def os_user() -> str:
    """The operating-system user name, the actor in single-user mode."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "local"


def local_admin() -> Actor:
    """The single-user-mode actor: the OS user with full rights."""
    return Actor(os_user(), "admin")
