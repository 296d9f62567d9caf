"""Playbooks: load and lint ``playbooks/*.md``, suggest them for an incident, and track step progress.

The library (find, load, lint, install) is ``playbook_library``; per-incident use (attach, steps, progress,
suggest) is ``playbook_progress``. Every public name of both is importable from here. The file format
(front matter, phases, steps, ``action:`` syntax) is documented in ``workbench/cases/playbook_format.py``
and in ``playbooks/README.md``.
"""

from __future__ import annotations

from workbench.cases.playbook_format import Playbook
from workbench.cases.playbook_library import (
    REQUIRED,
    get_playbook,
    install,
    known_detectors,
    known_queries,
    lint,
    lint_one,
    load_playbooks,
    playbook_dir,
)
from workbench.cases.playbook_progress import attach, progress, set_step, suggest

__all__ = [
    "REQUIRED",
    "Playbook",
    "attach",
    "get_playbook",
    "install",
    "known_detectors",
    "known_queries",
    "lint",
    "lint_one",
    "load_playbooks",
    "playbook_dir",
    "progress",
    "set_step",
    "suggest",
]
