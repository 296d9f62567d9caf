"""Who sees the facilitator's view of a drill (expected answers, live score) in the app.

With accounts, the account's role decides (``facilitate:drills``: lead, admin). In single-user mode everyone
at the screen is the OS user as admin, so the role cannot tell a participant from the facilitator: the app then
shows the facilitator's page only when started with ``WORKBENCH_DRILL_ROLE=facilitator``. An app started with
``WORKBENCH_DRILL_ROLE=participant`` (a participants' screen) hides that page whatever the role.
"""

from __future__ import annotations

from workbench.access import Actor
from workbench.errors import WorkbenchError
from workbench.settings import SETTINGS

ROLES = ("participant", "facilitator")


def drill_role() -> str | None:
    """WORKBENCH_DRILL_ROLE: participant, facilitator, or None when unset."""
    role = SETTINGS["drill_role"].get().strip().lower()
    if role and role not in ROLES:
        raise WorkbenchError(f"WORKBENCH_DRILL_ROLE must be participant or facilitator, not {role!r}")
    return role or None


def may_see_facilitator_view(actor: Actor) -> bool:
    """Whether the app may show this actor the facilitator's page (expected answers, the live score)."""
    if not actor.can("facilitate:drills"):
        return False
    role = drill_role()
    if role is not None:
        return role == "facilitator"
    return actor.via is not None  # signed in with an account: its role decides; single-user mode: hidden
