"""Render incident report data (from ``reports.report_data``) as Markdown or self-contained HTML (PDF: report_pdf).

Every value from the workspace is data: Markdown output escapes it (``report_safe.md_text``), HTML output goes
through a jinja2 template with autoescaping (``report_templates``), the description is authored Markdown that is
defanged (Markdown) or rendered and sanitised (HTML), and the figures' JSON is embedded so it cannot close its
``<script>`` element.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.cases.report_safe import md_block, md_text, plotly_text


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


def to_markdown(data: dict[str, Any], man: dict[str, Any], meta: dict[str, Any]) -> str:
    """The report as Markdown; every value from the workspace is escaped so no viewer runs or links it."""
    s = data["sections"]
    sm = s["summary"]
    lines = [f"# Incident report {md_text(sm['incident_id'])}: {md_text(sm['title'])}", "",
             md_text(cut_line(data, meta)), "", "## 1. Summary", "", md_table(summary_rows(sm), ["field", "value"])]
    if sm.get("description"):
        lines += [md_block(sm["description"]), ""]
    lines += ["Status history:", "", md_table(sm["history"], ["ts", "actor", "role", "from_status", "to_status",
                                                             "note"])]
    lines += ["## 2. Timeline", "", md_table(s["timeline"], ["ts", "source", "what", "actor", "evidence_id"])]
    lines += ["## 3. Evidence", "",
              md_table(s["evidence"], ["evidence_id", "kind", "label", "added_at", "added_by", "size", "sha256"])]
    lines += [f"- {md_text(line)}" for line in evidence_notes(s["evidence"])]
    lines += ["", "## 4. Explanations", ""]
    if not s["explanations"]:
        lines += ["_no explanations were added as evidence_", ""]
    for x in s["explanations"]:
        cols, rows = attribution_table(x)
        lines += [f"### Evidence #{md_text(x['evidence_id'])}: {md_text(x['label'])}", "",
                  md_text(explanation_line(x)), "", md_table(rows, cols)]
    lines += ["## 5. Playbook progress", ""]
    if not data.get("playbook_view"):
        lines += ["_no playbook attached_", ""]
    for pb in data.get("playbook_view") or []:
        lines += [f"### {md_text(playbook_heading(pb))}", ""]
        if pb.get("problem"):
            lines += [f"**Note:** {md_text(pb['problem'])}", ""]
        lines += [md_table(_step_rows(pb), ["step", "done", "by", "at", "note", "text"])]
    lines += ["## 6. Audit excerpt", "",
              "The audit-chain rows about this incident up to the cut (verify the whole chain with "
              "`workbench audit verify`).", "",
              md_table(s["audit"], ["seq", "ts", "actor", "role", "action", "what", "hash"])]
    lines += ["## 7. Manifest", "",
              "SHA-256 of each section's canonical data and each evidence item; check with "
              f"`workbench report {md_text(sm['incident_id'])} --check MANIFEST.json`.", "",
              "```json", json.dumps(man, indent=2, sort_keys=True).replace("`", "\\u0060"), "```", ""]
    return "\n".join(lines)


def _figures(data: dict[str, Any]) -> dict[str, str]:
    """Plotly figures as JSON text, keyed 'timeline' or by evidence id; every label is plotly-escaped."""
    import plotly.graph_objects as go
    import plotly.io as pio

    figs: dict[str, Any] = {}
    tl = data["sections"]["timeline"]
    if tl:
        fig = go.Figure()
        for source in sorted({str(r["source"]) for r in tl}):
            pts = [r for r in tl if str(r["source"]) == source]
            fig.add_trace(go.Scatter(
                x=[r["ts"] for r in pts], y=[plotly_text(source)] * len(pts), mode="markers",
                name=plotly_text(source), text=[plotly_text(_cell(r["what"], 300)) for r in pts],
                hoverinfo="x+text", marker={"size": 10},
            ))
        fig.update_layout(title="Timeline", height=260, margin={"l": 80, "r": 20, "t": 40, "b": 40})
        figs["timeline"] = fig
    for x in data["sections"]["explanations"]:
        if not x["attributions"]:
            continue
        attrs = list(reversed(x["attributions"]))
        measure = plotly_text(x.get("measure") or "attribution")
        fig = go.Figure(go.Bar(
            x=[_score(a) for a in attrs], y=[plotly_text(_cell(a["feature"], 80)) for a in attrs], orientation="h",
            marker_color=["#c0392b" if _score(a) > 0 else "#2e86c1" for a in attrs],
            customdata=[plotly_text(_cell(fmt_value(a.get("feature_value")), 80)) for a in attrs],
            hovertemplate="%{y} = %{customdata}<br>" + measure + " %{x:.4g}<extra></extra>",
        ))
        fig.update_layout(title=f"{measure}, evidence #{int(x['evidence_id'])}", height=120 + 22 * len(attrs),
                          margin={"l": 140, "r": 20, "t": 40, "b": 40})
        figs[str(int(x["evidence_id"]))] = fig
    return {k: pio.to_json(f, validate=False) for k, f in figs.items()}


def to_html(data: dict[str, Any], man: dict[str, Any], meta: dict[str, Any]) -> str:
    """One self-contained HTML file (jinja2, autoescaped): plotly.js inline, figures from escaped JSON."""
    from workbench.cases import report_templates as tpl

    s = data["sections"]
    explanations = []
    for x in s["explanations"]:
        cols, rows = attribution_table(x)
        explanations.append({"x": x, "line": explanation_line(x), "cols": cols, "rows": rows})
    playbooks = [{"pb": pb, "heading": playbook_heading(pb), "rows": _step_rows(pb)}
                 for pb in data.get("playbook_view") or []]
    return tpl.render_incident(
        sm=s["summary"], s=s, summary=summary_rows(s["summary"]), cut=cut_line(data, meta),
        evidence_notes=evidence_notes(s["evidence"]), explanations=explanations, playbooks=playbooks,
        manifest=json.dumps(man, indent=2, sort_keys=True), figures=_figures(data),
        title=f"Incident report {data['incident_id']}",
    )
