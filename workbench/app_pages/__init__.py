"""The app's pages, registered in one place: add a PageSpec line here to add a page (e.g. the drill pages)."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.access import Actor
from workbench.drills.roles import may_see_facilitator_view


@dataclass(frozen=True)
class PageSpec:
    """One page: its file under app_pages/, title, icon, navigation section and the permission it needs."""

    file: str
    title: str
    icon: str
    section: str
    permission: str | None = None  # None: every signed-in role sees it
    default: bool = False


PAGES: list[PageSpec] = [
    PageSpec("overview.py", "Overview", ":material/dashboard:", "Monitor", default=True),
    PageSpec("triage.py", "Triage", ":material/notifications_active:", "Monitor"),
    PageSpec("drift.py", "Drift", ":material/insights:", "Monitor"),
    PageSpec("decisions.py", "Decisions", ":material/manage_search:", "Investigate"),
    PageSpec("incidents.py", "Incidents", ":material/emergency:", "Investigate"),
    PageSpec("conversations.py", "Conversations", ":material/forum:", "Investigate", permission="read:decisions"),
    PageSpec("playbooks.py", "Playbooks", ":material/checklist:", "Investigate"),
    PageSpec("redteam.py", "Red team", ":material/security:", "Investigate"),
    PageSpec("sql.py", "SQL", ":material/terminal:", "Investigate", permission="run:sql"),
    PageSpec("data.py", "Data", ":material/database:", "Workspace"),
    PageSpec("audit.py", "Audit", ":material/verified_user:", "Workspace", permission="read:audit"),
]

# Other areas append here (one line each), e.g. the tabletop drills:
#   PageSpec("drill_facilitator.py", "Drill (facilitator)", ":material/sports_esports:", "Drills", "run:drills")
EXTRA_PAGES: list[PageSpec] = []

# Shown only when the workspace is a drill workspace (workbench.drills.workspace.is_drill).
DRILL_PAGES: list[PageSpec] = [
    PageSpec("drill_participant.py", "Drill", ":material/quiz:", "Drill", "run:drills"),
    PageSpec("drill_facilitator.py", "Drill: facilitator", ":material/timer:", "Drill", "facilitate:drills"),
]


def pages_for(actor: Actor, drill: bool = False) -> list[PageSpec]:
    """The pages this actor may open, in navigation order (the drill pages only in a drill workspace)."""
    extra = [*EXTRA_PAGES, *(DRILL_PAGES if drill else [])]
    if drill:  # the facilitator's page shows the answers: never to a participant (workbench.drills.roles)

        if not may_see_facilitator_view(actor):
            extra = [p for p in extra if p.file != "drill_facilitator.py"]
    return [p for p in [*PAGES, *extra] if p.permission is None or actor.can(p.permission)]
