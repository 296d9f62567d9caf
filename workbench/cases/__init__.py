"""Incident cases: incidents, frozen evidence, timelines, playbooks, CACAO export and reports.

The library API the app, CLI and notebooks share (every call takes a workspace and an Actor):

- ``incidents``: create_incident, list_incidents, get_incident, set_status, assign, update, add_note
- ``evidence``: add_alert, add_decision_set, add_metric_window, add_explanation, add_note, add_file,
  list_evidence, get_evidence, snapshot, verify_evidence
- ``timeline``: build_timeline
- ``playbooks``: load_playbooks, get_playbook, lint, attach, set_step, progress, suggest, install
- ``atlas``: catalog, name, unknown (shipped IDs and names, or a full ATLAS.yaml via WORKBENCH_ATLAS)
- ``cacao``: to_cacao, validate
- ``reports``: render_report, write_report, report_data, manifest, verify_manifest

Accounts and masking live in ``workbench.access``.
"""

from workbench.cases import atlas, incidents  # noqa: I001 - incidents before the modules that use it
from workbench.cases import cacao, evidence, playbooks, reports, timeline
from workbench.cases.cacao import to_cacao
from workbench.cases.evidence import (
    add_alert,
    add_decision_set,
    add_explanation,
    add_file,
    add_metric_window,
    list_evidence,
    verify_evidence,
)
from workbench.cases.incidents import assign, create_incident, get_incident, list_incidents, set_status
from workbench.cases.incidents import add_note
from workbench.cases.playbooks import lint, load_playbooks, progress, set_step, suggest
from workbench.cases.reports import render_report, write_report
from workbench.cases.timeline import build_timeline

__all__ = [
    "add_alert",
    "add_decision_set",
    "add_explanation",
    "add_file",
    "add_metric_window",
    "add_note",
    "assign",
    "atlas",
    "build_timeline",
    "cacao",
    "create_incident",
    "evidence",
    "get_incident",
    "incidents",
    "lint",
    "list_evidence",
    "list_incidents",
    "load_playbooks",
    "playbooks",
    "progress",
    "render_report",
    "reports",
    "set_status",
    "set_step",
    "suggest",
    "timeline",
    "to_cacao",
    "verify_evidence",
    "write_report",
]
