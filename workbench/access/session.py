"""Who is acting: single-user mode (the OS user as admin) or a signed-in account."""

from __future__ import annotations

from workbench import settings
from workbench.access import Actor, accounts, local_admin
from workbench.errors import WorkbenchError
from workbench.store import Workspace


def has_accounts(ws: Workspace) -> bool:
    """Whether the workspace has any accounts (then everyone must sign in)."""
    return ws.table_exists("accounts") and bool(ws.scalar("SELECT count(*) FROM accounts"))


def actor_for(ws: Workspace, user: str | None = None, password: str | None = None) -> Actor:
    """The actor for a CLI or notebook session: OS user as admin without accounts, else a verified account."""
    user = user or settings.get("user") or None
    if not has_accounts(ws):
        if user and user != local_admin().user:
            # Without accounts there is nobody to sign in as; acting under another name would mislead the audit.
            raise WorkbenchError(f"this workspace has no accounts (single-user mode); cannot act as {user!r}")
        return local_admin()
    if not user:
        raise WorkbenchError("this workspace has accounts: give --user NAME (or WORKBENCH_USER) and a password")
    password = password if password is not None else (settings.get("password") or None)
    if password is None:
        raise WorkbenchError(f"password needed for {user}: set WORKBENCH_PASSWORD or use --password-stdin")

    return accounts.authenticate(ws, user, password)
