"""Render incident report data (from ``reports.report_data``) as Markdown or self-contained HTML (PDF: report_pdf).

Every value from the workspace is data: Markdown output escapes it (``report_safe.md_text``), HTML output goes
through a jinja2 template with autoescaping (``report_templates``), the description is authored Markdown that is
defanged (Markdown) or rendered and sanitised (HTML), and the figures' JSON is embedded so it cannot close its
``<script>`` element.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.cases import report_parts as parts
from workbench.cases import report_templates as tpl
from workbench.cases.report_conversations import lines as conversation_lines
from workbench.cases.report_safe import md_block, md_text


def _cell(v: Any, limit: int = 160) -> str:
    """A value as one line of table text, shortened to `limit` characters."""
    if v is None:
        return ""
    if isinstance(v, list):
        v = ", ".join(str(x) for x in v)
    elif isinstance(v, dict):
        v = json.dumps(v, sort_keys=True, default=str, ensure_ascii=False)
    s = str(v).replace("\r", " ").replace("\n", " ")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def md_table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    """A Markdown table of the chosen columns, every cell escaped as inert text."""
    if not rows:
        return "_none_\n"
    out = ["| " + " | ".join(md_text(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(md_text(_cell(r.get(c))) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def fmt_value(v: Any) -> str:
    """A feature value as read in a report: whole numbers without a decimal point, others to 6 digits."""
    if v is None:
        return ""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def fmt_attribution(v: Any) -> str:
    """An attribution (SHAP value) rounded to 4 significant digits."""
    return "" if v is None else f"{float(v):.4g}"


def attribution_table(x: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and display rows of an explanation: feature, feature value (when known), the measure."""
    measure = x.get("measure") or "attribution"
    rows = x.get("attributions") or []
    values = any(r.get("feature_value") is not None for r in rows)
    cols = ["feature", *(["feature value"] if values else []), measure]
    out = [
        {"feature": r["feature"], "feature value": fmt_value(r.get("feature_value")),
         measure: fmt_attribution(_score(r))}
        for r in rows
    ]
    return cols, out


def _score(r: dict[str, Any]) -> float:
    """The attribution of a row (older report data called it 'value')."""
    return float(r["attribution"] if "attribution" in r else r.get("value") or 0.0)


def _step_rows(pb: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"step": s["step_id"], "done": "yes" if s["done"] else "no", "by": s["by"], "at": s["at"],
         "note": s["note"], "text": s["text"]}
        for s in pb["steps"]
    ]


def summary_rows(sm: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary table: the incident's fields as of the report's cut, and its ATLAS techniques."""
    atlas = ", ".join(f"{t} ({n})" if n else t for t, n in sm["atlas_names"].items()) or "none recorded"
    fields = ("severity", "status", "owner", "systems", "created_at", "created_by", "closed_at")
    return [{"field": k, "value": sm.get(k)} for k in fields] + [{"field": "ATLAS techniques", "value": atlas}]


def evidence_notes(evidence: list[dict[str, Any]]) -> list[str]:
    """One plain sentence per evidence item worth a line of its own (decision sets, alerts, notes)."""
    lines = []
    for e in evidence:
        if e.get("snapshot"):
            snap = e["snapshot"]
            lines.append(
                f"Evidence #{e['evidence_id']} (frozen decision set): {snap['rows']} rows, "
                f"{snap['principals']} principals, {snap['first']} to {snap['last']}; predictions "
                f"{_cell(snap['predictions'])}; top principals {_cell(snap['top_principals'])}; "
                f"model versions {_cell(snap['model_versions'])}."
            )
        elif e["kind"] == "alert" and e.get("content"):
            c = e["content"]
            lines.append(f"Evidence #{e['evidence_id']} (alert {c.get('alert_id')}, {c.get('detector')}, "
                         f"{c.get('severity')}): {c.get('summary')}")
        elif e["kind"] == "note" and e.get("content"):
            lines.append(f"Evidence #{e['evidence_id']} (note by {e['added_by']}): {e['content'].get('text')}")
    return lines


def explanation_line(x: dict[str, Any]) -> str:
    """The facts line under an explanation's heading."""
    decision = f"decision: {x['decision_id']}; " if x.get("decision_id") else ""
    return (f"Method: {x.get('method') or 'n/a'}; system: {x.get('system_id') or 'n/a'}; {decision}"
            f"sha256 {x['sha256']}.")


def playbook_heading(pb: dict[str, Any]) -> str:
    """The heading of one attached playbook with its progress."""
    return (f"{pb['title']} ({pb['playbook_id']} v{pb['attached_version']}): "
            f"{pb['done']}/{pb['total']} steps done")


def cut_line(data: dict[str, Any], meta: dict[str, Any]) -> str:
    """Who generated the report, when, from which workspace, and the audit row it was cut at."""
    head = f" (row hash {data['as_of_hash']})" if data.get("as_of_hash") else ""
    masked = " Personal feature values are masked for this reader's role." if data.get("masked") else ""
    return (f"Generated {meta['generated_at']} by {meta['generated_by']} from workspace {meta['workspace']}; "
            f"audit chain cut at seq {data['as_of_seq']}{head}: the report shows the case as it stood then.{masked}")


HEADINGS = ("1. Executive summary", "2. Incident", "3. Impact", "4. Timeline of the attack", "5. Root cause",
            "6. Timeline of the response", "7. Actions taken", "8. Evidence", "9. Explanations",
            "10. Playbook progress", "11. Lessons", "12. Audit excerpt", "13. Manifest")
TIMELINE_COLS = ["ts", "kind", "what", "evidence_id"]
RESPONSE_COLS = ["ts", "what", "actor", "seq"]
STEP_COLS = ["playbook_id", "step_id", "by", "at", "note"]
TASK_COLS = ["task", "title", "status", "assignee", "done", "by", "source"]


def attack_note(rows: list[dict[str, Any]]) -> str:
    """What the attack timeline's axis is."""
    if not rows:
        return "No evidence with event times was filed by the cut."
    return (f"Event times of the evidence (alerts' windows, frozen decisions, metric windows), {rows[0]['ts']} to "
            f"{rows[-1]['ts']}: when the attack happened, on its own time axis.")


def response_note(rows: list[dict[str, Any]]) -> str:
    """What the response timeline's axis is."""
    if not rows:
        return "No action recorded by the cut."
    return (f"The analysts' recorded actions (audit chain), {rows[0]['ts']} to {rows[-1]['ts']}: when the team "
            "worked the case, on its own time axis.")


def _md_authored(text: Any, missing: str) -> list[str]:
    return [md_block(text), ""] if text else [f"_{missing}_", ""]


def to_markdown(data: dict[str, Any], man: dict[str, Any], meta: dict[str, Any]) -> str:
    """The report as Markdown; every value from the workspace is escaped so no viewer runs or links it."""

    s = data["sections"]
    sm, wu = s["summary"], s.get("writeup") or {}
    banner = f"**{md_text(parts.banner_text(data))}**"
    h = [f"## {x}" for x in HEADINGS]
    lines = [banner, "", f"# Incident report {md_text(sm['incident_id'])}: {md_text(sm['title'])}", "",
             md_text(cut_line(data, meta)), "", "Contents: " + md_text("; ".join(HEADINGS)), "", h[0], ""]
    lines += [md_block(wu["exec_summary"]) if wu.get("exec_summary") else md_text(parts.exec_summary(data)), ""]
    lines += [h[1], "", md_table(summary_rows(sm), ["field", "value"])]
    if sm.get("description"):
        lines += [md_block(sm["description"]), ""]
    lines += ["Status history:", "", md_table(sm["history"], ["ts", "actor", "role", "from_status", "to_status",
                                                             "note"])]
    imp = s.get("impact") or {}
    by_outcome, by_principal = parts.impact_rows(imp)
    lines += [h[2], "", *[md_text(x) + "  " for x in parts.impact_lines(imp)], ""]
    if by_outcome:
        lines += ["By outcome:", "", md_table(by_outcome, list(by_outcome[0])), "By principal:", "",
                  md_table(by_principal, list(by_principal[0]))]
    attack, response = parts.split_timeline(s["timeline"])
    lines += [h[3], "", md_text(attack_note(attack)), "", md_table(attack, TIMELINE_COLS)]
    lines += [h[4], "", "Analyst's finding:", "", *_md_authored(wu.get("root_cause"), "not written yet"),
              "What the detectors' evidence shows:", ""]
    lines += [f"- {md_text(x)}" for x in parts.finding_lines(s.get("findings") or [])] or ["_no alert filed_"]
    lines += ["", h[5], "", md_text(response_note(response)), "", md_table(response, RESPONSE_COLS)]
    act = s.get("actions") or {}
    lines += [h[6], "", "Tasks done:", "", md_table(parts.task_rows(act.get("tasks_done") or []), TASK_COLS),
              "Playbook steps done:", "", md_table(act.get("steps_done") or [], STEP_COLS),
              "Tasks still open:", "", md_table(parts.task_rows(act.get("tasks_open") or []), TASK_COLS)]
    lines += [h[7], "",
              md_table(s["evidence"], ["evidence_id", "kind", "label", "added_at", "added_by", "size", "sha256"])]
    lines += [f"- {md_text(line)}" for line in evidence_notes(s["evidence"])]
    for c in s.get("conversations") or []:  # frozen LLM conversations: attacker text, every line escaped
        first, *rest = conversation_lines(c)
        lines += ["", f"**Conversation excerpt.** {md_text(first)}", "", *[f"- {md_text(x)}" for x in rest]]
    lines += ["", h[8], ""]
    if not s["explanations"]:
        lines += ["_no explanations were added as evidence_", ""]
    for x in s["explanations"]:
        cols, rows = attribution_table(x)
        lines += [f"### Evidence #{md_text(x['evidence_id'])}: {md_text(x['label'])}", "",
                  md_text(explanation_line(x)), "", md_table(rows, cols)]
    lines += [h[9], ""]
    if not data.get("playbook_view"):
        lines += ["_no playbook attached_", ""]
    for pb in data.get("playbook_view") or []:
        lines += [f"### {md_text(playbook_heading(pb))}", ""]
        if pb.get("problem"):
            lines += [f"**Note:** {md_text(pb['problem'])}", ""]
        lines += [md_table(_step_rows(pb), ["step", "done", "by", "at", "note", "text"])]
    lines += [h[10], "", *_md_authored(wu.get("lessons"), "not written yet")]
    lines += [h[11], "",
              "The audit-chain rows about this incident up to the cut (verify the whole chain with "
              "`workbench audit verify`).", "",
              md_table(s["audit"], ["seq", "ts", "actor", "role", "action", "what", "hash"])]
    lines += [h[12], "",
              "SHA-256 of each section's canonical data and each evidence item; check with "
              f"`workbench report {md_text(sm['incident_id'])} --check MANIFEST.json`.", "",
              "```json", json.dumps(man, indent=2, sort_keys=True).replace("`", "\\u0060"), "```", "", banner, ""]
    return "\n".join(lines)


def to_html(data: dict[str, Any], man: dict[str, Any], meta: dict[str, Any]) -> str:
    """One self-contained HTML file (jinja2, autoescaped): charts drawn as inline SVG, no script at all."""

    s = data["sections"]
    explanations = []
    for x in s["explanations"]:
        cols, rows = attribution_table(x)
        shown = [{**a, "feature_value": fmt_value(a.get("feature_value"))} for a in x["attributions"]]
        explanations.append({"x": x, "line": explanation_line(x), "cols": cols, "rows": rows,
                             "chart": parts.bar_chart(shown, x.get("measure") or "")})
    playbooks = [{"pb": pb, "heading": playbook_heading(pb), "rows": _step_rows(pb)}
                 for pb in data.get("playbook_view") or []]
    attack, response = parts.split_timeline(s["timeline"])
    imp = s.get("impact") or {}
    by_outcome, by_principal = parts.impact_rows(imp)
    act = s.get("actions") or {}
    return tpl.render_incident(
        sm=s["summary"], s=s, summary=summary_rows(s["summary"]), cut=cut_line(data, meta),
        evidence_notes=evidence_notes(s["evidence"]), explanations=explanations, playbooks=playbooks,
        manifest=json.dumps(man, indent=2, sort_keys=True), title=f"Incident report {data['incident_id']}",
        headings=HEADINGS, mark=parts.marking(data), banner=parts.banner_text(data),
        exec_summary=parts.exec_summary(data), wu=s.get("writeup") or {}, impact_lines=parts.impact_lines(imp),
        by_outcome=by_outcome, by_principal=by_principal, findings=parts.finding_lines(s.get("findings") or []),
        attack=attack, response=response, attack_note=attack_note(attack), response_note=response_note(response),
        attack_chart=parts.time_chart(attack, "kind", "Attack: evidence event times"),
        response_chart=parts.time_chart([{**r, "lane": parts.response_lane(r)} for r in response], "lane",
                                        "Response: analysts' actions"),
        tasks_done=parts.task_rows(act.get("tasks_done") or []), tasks_open=parts.task_rows(act.get("tasks_open")
                                                                                            or []),
        steps_done=act.get("steps_done") or [], cols={"timeline": TIMELINE_COLS, "response": RESPONSE_COLS,
                                                     "steps": STEP_COLS, "tasks": TASK_COLS},
    )
