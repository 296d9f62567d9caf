"""What a CISO and a regulator read in a report, beyond the case file: the analyst's write-up and derived sections.

- The write-up (``incident_writeups``): an executive-summary override, root cause, lessons (Markdown) and the
  feature that holds money at stake with a note on what the figure is. ``write`` changes it and records an
  ``incident.write`` audit row with ``{field: {"from": old, "to": new}}``; ``writeup_at`` undoes later rows, so a
  report cut at audit seq N shows the text as it stood then.
- Marking (TLP, PAP), impact (the decisions frozen as evidence: by outcome, by principal, money at stake),
  findings (the detectors' evidence on the alerts filed) and actions taken (tasks done, playbook steps done),
  each built from the state at the cut only (frozen evidence, audit rows up to N), so a filed report re-checks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.cases.incidents import require_incident
from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.store.sqltext import json_pointer

FIELDS = ("exec_summary", "root_cause", "lessons", "amount_feature", "amount_note")
MAX_TEXT = 20_000
TOP_PRINCIPALS = 15
_FINDING_KEYS = ("trigger_feature", "trigger_value", "feature", "value", "version", "new_version", "prev_version",
                 "previous_version", "model_version", "sha256", "model_sha256", "registered_sha256")


def _clean(field: str, value: str | None) -> str | None:
    """None clears a field; text is stripped and bounded; a feature name is one word."""
    if value is None:
        return None
    text = str(value).strip()
    if len(text) > MAX_TEXT:
        raise WorkbenchError(f"{field} is at most {MAX_TEXT} characters")
    if field == "amount_feature" and text and (len(text) > 200 or any(c.isspace() for c in text)):
        raise WorkbenchError("the amount feature is one feature name (e.g. loan_amount)")
    return text or None


def current(ws: Workspace, incident_id: str) -> dict[str, Any]:
    """The write-up as stored now (every field None when nothing was written)."""
    rows = ws.dicts(f"SELECT {', '.join(FIELDS)} FROM incident_writeups WHERE incident_id = ?", [incident_id])
    return rows[0] if rows else dict.fromkeys(FIELDS)


def write(ws: Workspace, actor: Actor, incident_id: str, **fields: str | None) -> dict[str, Any]:
    """Set write-up fields (only those given; '' clears one); audited as incident.write with from/to."""
    require(actor, "write:incidents", ws)
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise WorkbenchError(f"unknown write-up field(s) {sorted(unknown)}; fields are {', '.join(FIELDS)}")
    inc = require_incident(ws, incident_id)
    iid = inc["incident_id"]
    before = current(ws, iid)
    changes = {k: _clean(k, v) for k, v in fields.items() if v is not None}
    changes = {k: v for k, v in changes.items() if v != before[k]}
    if not changes:
        return before
    after = {**before, **changes}
    with ws.transaction():
        ws.execute("DELETE FROM incident_writeups WHERE incident_id = ?", [iid])
        ws.execute(
            f"INSERT INTO incident_writeups (incident_id, {', '.join(FIELDS)}, updated_at, updated_by) "
            f"VALUES (?, {', '.join('?' * len(FIELDS))}, ?, ?)",
            [iid, *(after[k] for k in FIELDS), datetime.now(UTC), actor.user],
        )
        audit.record(ws, actor, "incident.write", iid, {k: {"from": before[k], "to": v} for k, v in changes.items()})
    return after


def get(ws: Workspace, actor: Actor, incident_id: str) -> dict[str, Any]:
    """The incident's write-up now."""
    require(actor, "read:incidents", ws)
    return current(ws, require_incident(ws, incident_id)["incident_id"])


def writeup_at(ws: Workspace, incident_id: str, rows: list[dict[str, Any]], seq: int) -> dict[str, Any]:
    """The write-up as it stood at audit seq `seq` (later incident.write rows undone)."""
    state = current(ws, incident_id)
    for r in reversed([r for r in rows if r["seq"] > seq and r["action"] == "incident.write"]):
        for k, change in (r["details"] or {}).items():
            if k in state and isinstance(change, dict) and "from" in change:
                state[k] = change["from"]
    return state


def tasks_at(rows: list[dict[str, Any]], seq: int) -> list[dict[str, Any]]:
    """The incident's tasks as of `seq`, replayed from their task.add / task.update audit rows."""
    tasks: dict[int, dict[str, Any]] = {}
    for r in rows:
        d = r["details"] if isinstance(r["details"], dict) else {}
        if r["seq"] > seq or not isinstance(d.get("task_id"), int):
            continue
        if r["action"] == "task.add":
            tasks[d["task_id"]] = {"task_id": d["task_id"], "title": d.get("title"), "status": d.get("status"),
                                   "assignee": d.get("assignee"), "due": d.get("due"), "source": d.get("source"),
                                   "created_at": r["ts"], "created_by": r["actor"], "done_at": None,
                                   "done_by": None}
        elif r["action"] == "task.update" and d["task_id"] in tasks:
            t = tasks[d["task_id"]]
            for k, change in d.items():
                if k in t and isinstance(change, dict) and "to" in change:
                    t[k] = change["to"]
            if isinstance(d.get("status"), dict) and d["status"].get("to") == "done":
                t["done_at"], t["done_by"] = r["ts"], r["actor"]
    return [tasks[k] for k in sorted(tasks)]


def impact(ws: Workspace, evidence_ids: list[int], amount_feature: str | None) -> dict[str, Any]:
    """Decisions affected: the distinct decisions frozen as evidence, by outcome and by principal, with the sum
    of the amount feature over them when one is named (decisions without the feature are counted apart)."""
    src = ("(SELECT DISTINCT ON (system_id, decision_id) *, TRY_CAST(json_extract_string(features, ?) AS DOUBLE) "
           "AS amt FROM evidence_decisions WHERE evidence_id IN (SELECT unnest(?::INTEGER[])) "
           "ORDER BY system_id, decision_id, evidence_id)")
    params = [json_pointer(amount_feature) if amount_feature else None, sorted(int(i) for i in evidence_ids)]
    total = ws.one(f"SELECT count(*), count(DISTINCT principal), min(ts), max(ts), count(DISTINCT system_id), "
                   f"sum(amt), count(amt) FROM {src} d", params)
    outcomes = ws.dicts(f"SELECT prediction AS outcome, count(*) AS decisions, sum(amt) AS amount "
                        f"FROM {src} d GROUP BY 1 ORDER BY 2 DESC, 1", params)
    principals = ws.dicts(f"SELECT principal, count(*) AS decisions, sum(amt) AS amount, "
                          f"string_agg(DISTINCT prediction, ', ' ORDER BY prediction) AS outcomes "
                          f"FROM {src} d GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_PRINCIPALS}", params)
    money = None
    if amount_feature:
        money = {"feature": amount_feature, "total": total[5], "with_value": int(total[6]),
                 "without_value": int(total[0] - total[6])}
    return {"decisions": int(total[0]), "principals": int(total[1]), "first": total[2], "last": total[3],
            "systems": int(total[4]), "by_outcome": outcomes, "by_principal": principals,
            "principals_shown": min(TOP_PRINCIPALS, int(total[1])), "money": money}


def findings(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the detectors found, from the alerts filed as evidence (e.g. a backdoor's trigger and version)."""
    out = []
    for item in items:
        c = item.get("content") if isinstance(item.get("content"), dict) else {}
        if item["kind"] != "alert" or not c:
            continue
        ev = c.get("evidence") if isinstance(c.get("evidence"), dict) else {}
        facts = {k: ev[k] for k in _FINDING_KEYS if k in ev and not isinstance(ev[k], dict | list)}
        out.append({"evidence_id": item["evidence_id"], "alert_id": c.get("alert_id"), "detector": c.get("detector"),
                    "severity": c.get("severity"), "system_id": c.get("system_id"), "feature": c.get("feature"),
                    "atlas": c.get("atlas"), "summary": c.get("summary"), "facts": facts})
    return out


def actions(tasks: list[dict[str, Any]], playbooks: list[dict[str, Any]]) -> dict[str, Any]:
    """Actions taken: tasks done and playbook steps done (as of the cut), with what is still open."""
    steps = [{"playbook_id": p["playbook_id"], "step_id": s["step_id"], "by": s["by"], "at": s["at"],
              "note": s["note"]} for p in playbooks for s in p["steps"] if s["done"]]
    return {"tasks_done": [t for t in tasks if t["status"] == "done"],
            "tasks_open": [t for t in tasks if t["status"] in ("todo", "in_progress")],
            "steps_done": steps}


def sections(ws: Workspace, state: dict[str, Any], rows: list[dict[str, Any]], seq: int,
             items: list[dict[str, Any]], playbooks: list[dict[str, Any]],
             amount_feature: str | None = None) -> dict[str, Any]:
    """The report's sections added for issue 16: marking, writeup, impact, findings, actions (data, hashed)."""
    wu = writeup_at(ws, state["incident_id"], rows, seq)
    feature = amount_feature or wu.get("amount_feature")
    sets = [i["evidence_id"] for i in items if i["kind"] == "decision_set"]
    return {
        "marking": {"tlp": state.get("tlp") or "amber", "pap": state.get("pap") or "amber"},
        "writeup": wu,
        "impact": {**impact(ws, sets, feature), "amount_note": wu.get("amount_note"),
                   "evidence_ids": sorted(sets)},
        "findings": findings(items),
        "actions": actions(tasks_at(rows, seq), playbooks),
    }
