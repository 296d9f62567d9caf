"""Report parts shared by the Markdown, HTML and PDF renderers: TLP marking, the executive summary, impact,
findings and actions tables, the two timelines (attack: event times; response: analysts' actions) and the
charts' geometry, drawn server-side as SVG (no plotly.js: the page stays small and runs no script).

Charts show at most ``MAX_POINTS`` points each; a larger timeline is sampled evenly (first and last kept) and
the chart says so. Tables list every row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

MAX_POINTS = 250
# FIRST TLP 2.0 colours (text on black); PAP uses the same scheme.
TLP_COLOURS = {"red": "#FF2B2B", "amber": "#FFC000", "amber+strict": "#FFC000", "green": "#33FF00",
               "clear": "#FFFFFF"}
TLP_MEANING = {
    "red": "for the named recipients only; no further disclosure",
    "amber+strict": "limited disclosure: the recipient's organisation only",
    "amber": "limited disclosure: the recipient's organisation and its clients, need-to-know",
    "green": "limited disclosure: the community, not public channels",
    "clear": "disclosure is not limited",
}
PAP_MEANING = {
    "red": "non-detectable actions only (no lookups that reach the attacker)",
    "amber": "passive cross-checks only",
    "green": "active actions allowed",
    "clear": "no restriction on actions",
}
_PALETTE = ("#c0392b", "#2e86c1", "#27ae60", "#8e44ad", "#d68910", "#16a085", "#7f8c8d", "#b03a2e")


def marking(data: dict[str, Any]) -> dict[str, str]:
    """TLP and PAP of the report's incident as labels, colours and meanings (for the banner of every page)."""
    m = data["sections"].get("marking") or {}
    tlp, pap = str(m.get("tlp") or "amber").lower(), str(m.get("pap") or "amber").lower()
    return {"tlp": f"TLP:{tlp.upper()}", "pap": f"PAP:{pap.upper()}", "tlp_colour": TLP_COLOURS.get(tlp, "#FFC000"),
            "pap_colour": TLP_COLOURS.get(pap, "#FFC000"), "tlp_meaning": TLP_MEANING.get(tlp, ""),
            "pap_meaning": PAP_MEANING.get(pap, ""), "tlp_level": tlp}


def banner_text(data: dict[str, Any]) -> str:
    """The one-line marking shown at the top (and bottom) of every page."""
    m = marking(data)
    return f"{m['tlp']} ({m['tlp_meaning']}) · {m['pap']} ({m['pap_meaning']})"


def _n(v: Any) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.2f}" if isinstance(v, float) and not float(v).is_integer() else f"{int(v):,}"


def money_line(imp: dict[str, Any]) -> str | None:
    """What the money figure is, in one sentence (None when no amount feature was named)."""
    m = imp.get("money")
    if not m:
        return None
    note = f" ({imp['amount_note']})" if imp.get("amount_note") else " (unit as recorded in the feature)"
    missing = f"; {m['without_value']} of them have no numeric value for it" if m["without_value"] else ""
    return (f"Money at stake: {_n(m['total'])}{note}, the sum of feature '{m['feature']}' over the "
            f"{imp['decisions']} affected decisions frozen as evidence{missing}.")


def exec_summary(data: dict[str, Any]) -> str:
    """The analyst's executive summary, else one generated from the report's data (said as such)."""
    s = data["sections"]
    wu = s.get("writeup") or {}
    if wu.get("exec_summary"):
        return str(wu["exec_summary"])
    sm, imp, act = s["summary"], s.get("impact") or {}, s.get("actions") or {}
    attack, response = split_timeline(s["timeline"])
    parts = [f"{sm['incident_id']} ({sm['severity']}, status {sm['status']}): {sm['title']}."]
    if imp.get("decisions"):
        outs = ", ".join(f"{o['decisions']} {o['outcome']}" for o in imp["by_outcome"][:4])
        parts.append(f"{imp['decisions']} decisions by {imp['principals']} principals were affected ({outs}), "
                     f"from {imp['first']} to {imp['last']}.")
    else:
        parts.append("No decisions have been frozen as evidence yet, so the impact is not measured.")
    if money_line(imp):
        parts.append(money_line(imp))
    if attack:
        parts.append(f"Attack activity recorded from {attack[0]['ts']} to {attack[-1]['ts']}.")
    if response:
        parts.append(f"Response: {len(response)} recorded actions from {response[0]['ts']} to {response[-1]['ts']}; "
                     f"{len(act.get('tasks_done') or [])} tasks and {len(act.get('steps_done') or [])} playbook "
                     "steps done.")
    if (s.get("writeup") or {}).get("root_cause"):
        parts.append("Root cause: see section 5.")
    return " ".join(parts) + " (Generated from the case data; the analyst has not written a summary.)"


def split_timeline(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(attack, response): evidence event times (what happened) and analysts' actions (what was done)."""
    return [r for r in rows if r.get("source") == "evidence"], [r for r in rows if r.get("source") != "evidence"]


def impact_rows(imp: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(by outcome, by principal) display rows; an amount column only when an amount feature is named."""
    money = bool(imp.get("money"))

    def row(r: dict[str, Any], key: str) -> dict[str, Any]:
        out = {key: r[key], "decisions": r["decisions"]}
        if key == "principal":
            out["outcomes"] = r.get("outcomes")
        if money:
            out["amount"] = _n(r.get("amount"))
        return out

    return ([row(r, "outcome") for r in imp.get("by_outcome") or []],
            [row(r, "principal") for r in imp.get("by_principal") or []])


def impact_lines(imp: dict[str, Any]) -> list[str]:
    """The impact in sentences."""
    if not imp.get("decisions"):
        return ["No decision set was frozen as evidence by the cut, so no decision is counted as affected."]
    lines = [f"{imp['decisions']} distinct decisions affected on {imp['systems']} system(s), by {imp['principals']} "
             f"principals, from {imp['first']} to {imp['last']} (the decisions frozen as evidence items "
             f"{', '.join('#' + str(i) for i in imp['evidence_ids'])})."]
    if imp["principals"] > imp["principals_shown"]:
        lines.append(f"The {imp['principals_shown']} principals with the most decisions are listed.")
    lines.append(money_line(imp) or "No money figure: name the feature that holds it "
                 "(`workbench incident write INC --amount-feature FEATURE` or `workbench report INC "
                 "--amount-feature FEATURE`).")
    return lines


def finding_lines(found: list[dict[str, Any]]) -> list[str]:
    """One sentence per detector finding, with the facts its evidence names (trigger, version, hashes)."""
    out = []
    for f in found:
        facts = "; ".join(f"{k} = {v}" for k, v in (f.get("facts") or {}).items())
        out.append(f"Alert {f['alert_id']} ({f['detector']}, {f['severity']}, evidence #{f['evidence_id']}): "
                   f"{f['summary']}" + (f" [{facts}]" if facts else ""))
    return out


def task_rows(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tasks as table rows."""
    return [{"task": t["task_id"], "title": t["title"], "status": t["status"], "assignee": t["assignee"],
             "done": t.get("done_at"), "by": t.get("done_by"), "source": t.get("source")} for t in tasks]


def _ts(v: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        return None


def sample(rows: list[dict[str, Any]], limit: int = MAX_POINTS) -> tuple[list[dict[str, Any]], str | None]:
    """At most `limit` rows, evenly spaced (first and last kept), and a note saying so when sampled."""
    if len(rows) <= limit:
        return rows, None
    step = (len(rows) - 1) / (limit - 1)
    picked = [rows[round(i * step)] for i in range(limit)]
    return picked, f"chart sampled: {limit} of {len(rows)} events shown, evenly spaced in time order " \
                   "(first and last kept); the table lists every event"


def time_chart(rows: list[dict[str, Any]], lane_key: str, title: str, width: int = 1000) -> dict[str, Any] | None:
    """Geometry of a time scatter chart (one lane per `lane_key` value) on its own time axis, or None."""
    pts = [(r, t) for r in rows if (t := _ts(r.get("ts"))) is not None]
    if not pts:
        return None
    shown, note = sample([r for r, _ in pts])
    times = {id(r): t for r, t in pts}
    lo, hi = min(t for _, t in pts), max(t for _, t in pts)
    span = (hi - lo).total_seconds() or 1.0
    lanes = sorted({str(r.get(lane_key)) for r in shown})
    left, right, top, gap = 170, width - 20, 34, 24
    height = top + gap * len(lanes) + 40
    ys = {name: top + gap * i + 10 for i, name in enumerate(lanes)}
    colours = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(lanes)}

    def x(t: datetime) -> float:
        return round(left + (right - left) * (t - lo).total_seconds() / span, 1)

    ticks = []
    for i in range(5):
        t = lo + (hi - lo) * (i / 4)
        ticks.append({"x": x(t), "label": t.strftime("%Y-%m-%d %H:%M")})
    dots = [{"cx": x(times[id(r)]), "cy": ys[str(r.get(lane_key))], "fill": colours[str(r.get(lane_key))],
             "tip": f"{r.get('ts')} · {r.get('what')}"} for r in shown]
    return {"title": title, "width": width, "height": height, "left": left, "right": right,
            "axis_y": height - 30, "lanes": [{"name": n[:28], "y": ys[n]} for n in lanes], "dots": dots,
            "ticks": ticks, "note": note, "from": lo.strftime("%Y-%m-%d %H:%M UTC"),
            "to": hi.strftime("%Y-%m-%d %H:%M UTC"), "points": len(pts)}


def response_lane(row: dict[str, Any]) -> str:
    """The lane of a response action: the audit action's area (incident, evidence, playbook, task, report...)."""
    return str(row.get("kind") or "action").split(".")[0]


def bar_chart(attrs: list[dict[str, Any]], measure: str, width: int = 760) -> dict[str, Any] | None:
    """Geometry of a horizontal bar chart of attributions (positive red, negative blue), or None."""
    if not attrs:
        return None
    vals = [float(a["attribution"] if "attribution" in a else a.get("value") or 0.0) for a in attrs]
    peak = max(abs(v) for v in vals) or 1.0
    left, area, h = 240, width - 340, 20
    neg = any(v < 0 for v in vals)
    zero = left + (area / 2 if neg else 0)
    scale = (area / 2 if neg else area) / peak
    bars = []
    for i, (a, v) in enumerate(zip(attrs, vals, strict=True)):
        w = abs(v) * scale
        shown = a.get("feature_value")
        label = f"{a['feature']} = {shown}" if shown not in (None, "") else str(a["feature"])
        bars.append({"y": 10 + i * h, "x": round(zero - (w if v < 0 else 0), 1), "w": round(max(w, 0.5), 1),
                     "label": label[:40], "value": f"{v:.4g}", "fill": "#c0392b" if v > 0 else "#2e86c1",
                     "text_y": 10 + i * h + 14})
    return {"width": width, "height": 20 + h * len(attrs), "zero": round(zero, 1), "left": left,
            "value_x": left + area + 8, "bars": bars, "measure": measure}
