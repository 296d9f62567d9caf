"""The robustness and detection-coverage report of a model's red-team runs: Markdown, HTML (jinja2, autoescaped,
no script) or PDF (fpdf2, plain text cells). Every value from a log or a run is data (cases.report_safe)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup

from workbench import audit
from workbench.access import Actor, require
from workbench.cases.report_render import md_table
from workbench.cases.report_safe import content_security_policy, visible
from workbench.cases.report_templates import INCIDENT_CSS, environment
from workbench.errors import WorkbenchError
from workbench.redteam.runs import list_runs
from workbench.store import Workspace

FORMATS = ("md", "html", "pdf")


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * float(v):.1f}%"


def headline(run: dict[str, Any]) -> dict[str, Any]:
    """One row per run: the attack's main figure, queries, time, and whether the detectors saw it."""
    r, cov = run.get("result") or {}, run.get("coverage") or {}
    if run["attack"] == "evasion":
        figure = f"success {_pct(r.get('success_rate'))} ({r.get('best_method')})"
    elif run["attack"] == "extraction":
        figure = f"fidelity {_pct(r.get('fidelity'))} (majority {_pct(r.get('majority_baseline'))})"
    elif run["attack"] == "probing":
        figure = f"most sensitive: {r.get('most_sensitive')}; flippable: {len(r.get('flippable_features') or [])}"
    else:
        flagged = r.get("flagged") or []
        figure = ("suspicious: " + ", ".join(f"{c['feature']}={c['value']:g}" if isinstance(c["value"], float)
                                              else f"{c['feature']}={c['value']}" for c in flagged[:3])
                  if flagged else "no trigger found")
    detected = "not run" if not cov else ("yes" if cov.get("detected") else "MISSED")
    if cov and cov.get("detected") and len(cov.get("techniques_missed") or []) == len(cov.get("techniques") or {}):
        detected = "only as " + ", ".join(sorted({a["detector"] for a in cov.get("alerts") or []}))
    return {"run_id": run["run_id"], "attack": run["attack"], "version": run["version"], "figure": figure,
            "queries": run["queries"], "seconds": run["seconds"], "detected": detected,
            "missed": ", ".join(cov.get("techniques_missed") or []) if cov else ""}


def coverage_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The coverage matrix: per run and ATLAS technique, fired or missed, by whom, how late."""
    out = []
    for run in runs:
        cov = run.get("coverage") or {}
        for tech, c in (cov.get("techniques") or {}).items():
            ttd = c.get("time_to_detect_s")
            out.append({"attack": run["attack"], "run_id": run["run_id"], "technique": tech,
                        "fired": "yes" if c["fired"] else "MISSED", "detectors": ", ".join(c["detectors"]),
                        "time_to_detect": "" if ttd is None else f"{ttd / 60:.1f} min",
                        "queries_before": c.get("queries_before_first_flag"),
                        "attack_decisions_missed": _pct(cov.get("missed_share"))})
    return out


def report_data(ws: Workspace, actor: Actor, system_id: str, version: str | None = None) -> dict[str, Any]:
    """Everything the report shows, from the stored runs (newest run per attack first)."""
    runs = list_runs(ws, actor, system_id, version)
    if not runs:
        raise WorkbenchError(f"no red-team runs for {system_id}{' ' + version if version else ''}: "
                             "run `workbench redteam --system S --attack ...` first")
    details = []
    for run in runs:
        r = run.get("result") or {}
        if run["attack"] == "evasion":
            for m in r.get("methods", []):
                for f, v in (m.get("median_change") or {}).items():
                    details.append({"run_id": run["run_id"], "what": f"{m['method']} median change", "feature": f,
                                    "value": f"{v['median_abs_change']:.4g} ({_pct(v['median_relative_change'])} "
                                             f"of range)"})
                details.append({"run_id": run["run_id"], "what": f"{m['method']} success", "feature": "",
                                "value": f"{m['succeeded']}/{m['attempted']}, median "
                                         f"{m['median_queries_to_success']} queries"})
        elif run["attack"] == "extraction":
            for p in r.get("curve", []):
                details.append({"run_id": run["run_id"], "what": "fidelity", "feature": f"{p['queries']} queries",
                                "value": _pct(p["fidelity"])})
        elif run["attack"] == "probing":
            for f in r.get("features", []):
                details.append({"run_id": run["run_id"], "what": "sweep", "feature": f["feature"],
                                "value": f"score range {f['score_range']:.3f}, flips {_pct(f['flip_share'])}"})
        else:
            for c in r.get("flagged", []):
                prev = c.get("previous") or {}
                details.append({"run_id": run["run_id"], "what": "trigger candidate", "feature": c["feature"],
                                "value": f"{c['value']} flips {_pct(c['flip_rate'])} to {c.get('direction')} vs "
                                         f"neighbours {_pct(c['neighbour_flip_rate'])}; previous "
                                         f"{prev.get('version')} flips {_pct(prev.get('flip_rate'))}"})
    return {"system_id": system_id, "version": version, "generated_at": datetime.now(UTC), "by": actor.user,
            "runs": [headline(r) for r in runs], "coverage": coverage_rows(runs), "details": details,
            "missed": [r for r in coverage_rows(runs) if r["fired"] == "MISSED"]}


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<title>Red team report {{ d.system_id|cell }}</title><style>{{ css }}</style></head><body>
<h1>Robustness and detection coverage: {{ d.system_id|cell }}{% if d.version %} {{ d.version|cell }}{% endif %}</h1>
<p>Generated {{ d.generated_at|cell }} by {{ d.by|cell }}. Attacks ran offline against the registered artifact (or
the system's surrogate); their traffic was replayed through the detectors in a scratch copy of the workspace.</p>
{% for title, rows, cols in sections %}<h2>{{ title }}</h2>
{% if rows %}<table><thead><tr>{% for c in cols %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for r in rows %}<tr>{% for c in cols %}<td{% if r.get(c) == 'MISSED' %} class="problem"{% endif %}>
{{- r.get(c)|cell(300) }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% else %}<p><em>none</em></p>{% endif %}
{% endfor %}</body></html>
"""
RUN_COLS = ["run_id", "attack", "version", "figure", "queries", "seconds", "detected", "missed"]
COV_COLS = ["attack", "run_id", "technique", "fired", "detectors", "time_to_detect", "queries_before",
            "attack_decisions_missed"]
DETAIL_COLS = ["run_id", "what", "feature", "value"]


def _sections(d: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]], list[str]]]:
    return [("1. Attacks and their figures", d["runs"], RUN_COLS),
            ("2. Detection coverage per ATLAS technique", d["coverage"], COV_COLS),
            ("3. Findings: what the detectors missed", d["missed"], COV_COLS),
            ("4. Details", d["details"], DETAIL_COLS)]


def to_markdown(d: dict[str, Any]) -> str:
    """The report as Markdown (data escaped by md_table)."""
    out = [f"# Robustness and detection coverage: {visible(d['system_id'])} {visible(d['version'] or '')}", "",
           f"Generated {d['generated_at']:%Y-%m-%d %H:%M UTC} by {visible(d['by'])}.", ""]
    for title, rows, cols in _sections(d):
        out += [f"## {title}", "", md_table(rows, cols) if rows else "_none_", ""]
    return "\n".join(out)


def to_html(d: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (autoescaped; runs no script)."""
    return environment().from_string(_HTML).render(d=d, sections=_sections(d), css=Markup(INCIDENT_CSS),
                                                   csp=content_security_policy([]))


def to_pdf(d: dict[str, Any]) -> bytes:
    """The report as PDF (plain-text table cells)."""
    from fpdf import FPDF

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()

    def text(s: Any) -> str:
        return visible(s).encode("latin-1", "replace").decode("latin-1")

    pdf.set_font("helvetica", "B", 13)
    pdf.multi_cell(0, 7, text(f"Robustness and detection coverage: {d['system_id']} {d['version'] or ''}"),
                   new_x="LMARGIN", new_y="NEXT")
    for title, rows, cols in _sections(d):
        pdf.set_font("helvetica", "B", 10)
        pdf.multi_cell(0, 6, text(title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", "", 7)
        if not rows:
            pdf.multi_cell(0, 5, "none", new_x="LMARGIN", new_y="NEXT")
            continue
        with pdf.table(text_align="LEFT", markdown=False) as table:
            table.row([text(c) for c in cols])
            for r in rows:
                table.row([text("" if r.get(c) is None else str(r.get(c))[:300]) for c in cols])
    return bytes(pdf.output())


def render(ws: Workspace, actor: Actor, system_id: str, version: str | None = None, fmt: str = "md"
           ) -> bytes:
    """The report in one format, as bytes (audited)."""
    require(actor, "export", ws)
    if fmt not in FORMATS:
        raise WorkbenchError(f"unknown report format {fmt!r}; use md, html or pdf")
    d = report_data(ws, actor, system_id, version)
    body = to_pdf(d) if fmt == "pdf" else (to_markdown(d) if fmt == "md" else to_html(d)).encode("utf-8")
    audit.record(ws, actor, "redteam.report", f"{system_id}/{version or '*'}",
                 {"format": fmt, "runs": len(d["runs"]), "bytes": len(body)})
    return body
