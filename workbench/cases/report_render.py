"""Render incident report data (from ``reports.report_data``) as Markdown or self-contained HTML (PDF: report_pdf)."""

from __future__ import annotations

import html as html_mod
import json
from typing import Any


def _cell(v: Any, limit: int = 160) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        v = ", ".join(str(x) for x in v)
    elif isinstance(v, dict):
        v = json.dumps(v, sort_keys=True, default=str)
    s = str(v).replace("\n", " ")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def md_table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    """A Markdown table of the chosen columns."""
    if not rows:
        return "_none_\n"
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_cell(r.get(c)).replace("|", "\\|") for c in cols) + " |" for r in rows]
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
        {
            "step": s["step_id"],
            "done": "yes" if s["done"] else "no",
            "by": s["by"],
            "at": s["at"],
            "note": s["note"],
            "text": s["text"],
        }
        for s in pb["steps"]
    ]


def to_markdown(data: dict[str, Any], man: dict[str, Any], meta: dict[str, Any], plots: bool = False) -> str:
    """The report as Markdown (with PLOTSLOT markers for the HTML renderer when plots is true)."""
    s = data["sections"]
    sm = s["summary"]
    atlas = ", ".join(f"{t} ({n})" if n else t for t, n in sm["atlas_names"].items()) or "none recorded"
    lines = [
        f"# Incident report {sm['incident_id']}: {sm['title']}",
        "",
        f"Generated {meta['generated_at']} by {meta['generated_by']} from workspace `{meta['workspace']}`; "
        f"audit chain cut at seq {data['as_of_seq']}.",
        "",
        "## 1. Summary",
        "",
        md_table(
            [
                {"field": k, "value": sm.get(k)}
                for k in ("severity", "status", "owner", "systems", "created_at", "created_by", "closed_at")
            ]
            + [{"field": "ATLAS techniques", "value": atlas}],
            ["field", "value"],
        ),
    ]
    if sm.get("description"):
        lines += [sm["description"], ""]
    lines += [
        "Status history:",
        "",
        md_table(sm["history"], ["ts", "actor", "role", "from_status", "to_status", "note"]),
    ]
    lines += ["## 2. Timeline", ""]
    if plots and s["timeline"]:
        lines += ["PLOTSLOT-timeline", ""]
    lines += [md_table(s["timeline"], ["ts", "source", "what", "actor", "evidence_id"])]
    lines += [
        "## 3. Evidence",
        "",
        md_table(
            s["evidence"], ["evidence_id", "kind", "label", "added_at", "added_by", "size", "sha256"]
        ),
    ]
    for e in s["evidence"]:
        if e.get("snapshot"):
            snap = e["snapshot"]
            lines += [
                f"- Evidence #{e['evidence_id']} (frozen decision set): {snap['rows']} rows, "
                f"{snap['principals']} principals, {snap['first']} to {snap['last']}; predictions "
                f"{_cell(snap['predictions'])}; top principals {_cell(snap['top_principals'])}; "
                f"model versions {_cell(snap['model_versions'])}."
            ]
        elif e["kind"] == "alert" and e.get("content"):
            c = e["content"]
            lines += [
                f"- Evidence #{e['evidence_id']} (alert {c.get('alert_id')}, {c.get('detector')}, "
                f"{c.get('severity')}): {c.get('summary')}"
            ]
        elif e["kind"] == "note" and e.get("content"):
            lines += [f"- Evidence #{e['evidence_id']} (note by {e['added_by']}): {e['content'].get('text')}"]
    lines += ["", "## 4. Explanations", ""]
    if not s["explanations"]:
        lines += ["_no explanations were added as evidence_", ""]
    for x in s["explanations"]:
        lines += [
            f"### Evidence #{x['evidence_id']}: {x['label']}",
            "",
            f"Method: {x.get('method') or 'n/a'}; system: {x.get('system_id') or 'n/a'}; "
            + (f"decision: {x['decision_id']}; " if x.get("decision_id") else "")
            + f"sha256 `{x['sha256']}`.",
            "",
        ]
        if plots and x["attributions"]:
            lines += [f"PLOTSLOT-{x['evidence_id']}", ""]
        cols, rows = attribution_table(x)
        lines += [md_table(rows, cols)]
    lines += ["## 5. Playbook progress", ""]
    if not s["playbooks"]:
        lines += ["_no playbook attached_", ""]
    for pb in s["playbooks"]:
        lines += [
            f"### {pb['title']} ({pb['playbook_id']} v{pb['attached_version']}): "
            f"{pb['done']}/{pb['total']} steps done",
            "",
            md_table(_step_rows(pb), ["step", "done", "by", "at", "note", "text"]),
        ]
    lines += [
        "## 6. Audit excerpt",
        "",
        "The audit-chain rows about this incident (verify the whole chain with `workbench audit verify`).",
        "",
        md_table(s["audit"], ["seq", "ts", "actor", "role", "action", "what", "hash"]),
    ]
    lines += [
        "## 7. Manifest",
        "",
        "SHA-256 of each section's canonical data and each evidence item; check with "
        f"`workbench report {sm['incident_id']} --check MANIFEST.json`.",
        "",
        "```json",
        json.dumps(man, indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)


def _figures(data: dict[str, Any]) -> dict[str, str]:
    import plotly.graph_objects as go
    import plotly.io as pio

    figs: dict[str, Any] = {}
    tl = data["sections"]["timeline"]
    if tl:
        fig = go.Figure()
        for source in sorted({r["source"] for r in tl}):
            pts = [r for r in tl if r["source"] == source]
            fig.add_trace(
                go.Scatter(
                    x=[r["ts"] for r in pts],
                    y=[r["source"] for r in pts],
                    mode="markers",
                    name=source,
                    text=[r["what"] for r in pts],
                    hoverinfo="x+text",
                    marker={"size": 10},
                )
            )
        fig.update_layout(title="Timeline", height=260, margin={"l": 80, "r": 20, "t": 40, "b": 40})
        figs["timeline"] = fig
    for x in data["sections"]["explanations"]:
        if not x["attributions"]:
            continue
        attrs = list(reversed(x["attributions"]))
        measure = x.get("measure") or "attribution"
        fig = go.Figure(
            go.Bar(
                x=[_score(a) for a in attrs],
                y=[a["feature"] for a in attrs],
                orientation="h",
                marker_color=["#c0392b" if _score(a) > 0 else "#2e86c1" for a in attrs],
                customdata=[fmt_value(a.get("feature_value")) for a in attrs],
                hovertemplate="%{y} = %{customdata}<br>" + measure + " %{x:.4g}<extra></extra>",
            )
        )
        fig.update_layout(
            title=f"{measure}, evidence #{x['evidence_id']}",
            height=120 + 22 * len(attrs),
            margin={"l": 140, "r": 20, "t": 40, "b": 40},
        )
        figs[str(x["evidence_id"])] = fig
    return {
        k: pio.to_html(f, full_html=False, include_plotlyjs=False, div_id=f"fig-{k}") for k, f in figs.items()
    }


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.85em}td,th{border:1px solid #ccc;padding:3px 6px;
vertical-align:top;word-break:break-word}th{background:#f0f0f0}pre{background:#f7f7f7;padding:1em;overflow:auto;
font-size:.8em}h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;margin-top:1.6em}"""


def to_html(data: dict[str, Any], man: dict[str, Any], meta: dict[str, Any]) -> str:
    """One self-contained HTML file: plotly.js inline, interactive figures, no external resources."""
    import markdown
    from plotly.offline import get_plotlyjs

    body = markdown.markdown(to_markdown(data, man, meta, plots=True), extensions=["tables", "fenced_code"])
    for key, fig_html in _figures(data).items():
        body = body.replace(f"<p>PLOTSLOT-{key}</p>", f'<div class="plot">{fig_html}</div>')
    title = html_mod.escape(f"Incident report {data['incident_id']}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<style>{_CSS}</style><script type="text/javascript">{get_plotlyjs()}</script></head>'
        f"<body>{body}</body></html>\n"
    )
