"""The HTML report templates (jinja2, autoescaping on) for incident reports and drill after-action reports.

Kept as Python strings so they ship with the package without package-data. Values reach a template only as
variables: ``{{ value }}`` is HTML-escaped, ``|cell`` shortens a value to a table cell and shows invisible
characters, ``|md`` renders authored Markdown through nh3, and the only unescaped inserts are our own constants
(CSS, plotly.js, the figure loader) and figure JSON escaped by ``report_safe.script_json``. A page allows only
its own inline scripts (a Content-Security-Policy with their hashes), so injected markup could not run even if
it got in.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from workbench.cases.report_safe import content_security_policy, inline_script, safe_markdown, script_json, visible

# Draws each figure from its JSON block; the JSON is data (type application/json), never executed.
FIGURE_LOADER = """document.querySelectorAll('script.fig-data').forEach(function (el) {
  var fig = JSON.parse(el.textContent);
  Plotly.newPlot(el.getAttribute('data-target'), fig.data, fig.layout, {displaylogo: false, responsive: true});
});"""

INCIDENT_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.85em}td,th{border:1px solid #ccc;padding:3px 6px;
vertical-align:top;word-break:break-word}th{background:#f0f0f0}pre{background:#f7f7f7;padding:1em;overflow:auto;
font-size:.8em}h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;margin-top:1.6em}.problem{color:#b42318}"""

_MACROS = """
{%- macro table(rows, cols) -%}
{% if rows %}<table>
<thead><tr>{% for c in cols %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for r in rows %}<tr>{% for c in cols %}<td>{{ r.get(c)|cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% else %}<p><em>none</em></p>
{% endif %}
{%- endmacro -%}
"""

INCIDENT_HTML = _MACROS + """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<title>{{ title|cell }}</title>
<style>{{ css }}</style>
{% if figures %}<script>{{ plotly_js }}</script>{% endif %}
</head><body>
<h1>Incident report {{ sm.incident_id|cell }}: {{ sm.title|cell(1000) }}</h1>
<p>{{ cut|cell(2000) }}</p>
<h2>1. Summary</h2>
{{ table(summary, ["field", "value"]) }}
{% if sm.description %}<div class="description">{{ sm.description|md }}</div>{% endif %}
<p>Status history:</p>
{{ table(sm.history, ["ts", "actor", "role", "from_status", "to_status", "note"]) }}
<h2>2. Timeline</h2>
{% if figures.get('timeline') %}<div class="plot" id="fig-timeline"></div>{% endif %}
{{ table(s.timeline, ["ts", "source", "what", "actor", "evidence_id"]) }}
<h2>3. Evidence</h2>
{{ table(s.evidence, ["evidence_id", "kind", "label", "added_at", "added_by", "size", "sha256"]) }}
{% if evidence_notes %}<ul>
{% for line in evidence_notes %}<li>{{ line|cell(2000) }}</li>
{% endfor %}</ul>{% endif %}
<h2>4. Explanations</h2>
{% for e in explanations %}
<h3>Evidence #{{ e.x.evidence_id|cell }}: {{ e.x.label|cell(1000) }}</h3>
<p>{{ e.line|cell(1000) }}</p>
{% if figures.get(e.x.evidence_id|string) %}<div class="plot" id="fig-{{ e.x.evidence_id|string }}"></div>{% endif %}
{{ table(e.rows, e.cols) }}
{% else %}<p><em>no explanations were added as evidence</em></p>
{% endfor %}
<h2>5. Playbook progress</h2>
{% for p in playbooks %}
<h3>{{ p.heading|cell(1000) }}</h3>
{% if p.pb.problem %}<p class="problem">Note: {{ p.pb.problem|cell(1000) }}</p>{% endif %}
{{ table(p.rows, ["step", "done", "by", "at", "note", "text"]) }}
{% else %}<p><em>no playbook attached</em></p>
{% endfor %}
<h2>6. Audit excerpt</h2>
<p>The audit-chain rows about this incident up to the cut (verify the whole chain with
<code>workbench audit verify</code>).</p>
{{ table(s.audit, ["seq", "ts", "actor", "role", "action", "what", "hash"]) }}
<h2>7. Manifest</h2>
<p>SHA-256 of each section's canonical data and each evidence item; check with
<code>workbench report {{ sm.incident_id|cell }} --check MANIFEST.json</code>.</p>
<pre>{{ manifest }}</pre>
{% for key, fig in figures.items() %}<script type="application/json" class="fig-data" data-target="fig-{{ key }}">
{{- fig -}}
</script>
{% endfor %}
{% if figures %}<script>{{ loader }}</script>{% endif %}
</body></html>
"""


DRILL_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1180px;margin:2em auto;
padding:0 1em;color:#101828;line-height:1.45}table{border-collapse:collapse;margin:.6em 0;font-size:.9em;width:100%}
th,td{border:1px solid #d0d5dd;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#f2f4f7}
h1{border-bottom:3px solid #101828}h2{margin-top:1.6em;border-bottom:1px solid #d0d5dd}code{background:#f2f4f7}
.tl text{font-size:11px;font-family:system-ui,sans-serif}"""

DRILL_HTML = _MACROS + """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<title>{{ view.title|cell(300) }}</title>
<style>{{ css }}</style>
</head><body>
<h1>{{ view.title|cell(1000) }}</h1>
<p>{{ view.intro|cell(2000) }}</p>
<h2>{{ view.score|cell }}</h2>
{{ table(view.score_rows, ["part", "points", "of", "how"]) }}
<h2>What happened (ground truth)</h2>
{{ view.summary|md }}
{% for t in view.truth %}
<h3>{{ t.heading|cell(1000) }}</h3>
<ul>
{% for f in t.facts %}<li>{{ f|cell(4000) }}</li>
{% endfor %}</ul>
{% endfor %}
<h2>What the team did</h2>
<h3>Answers (latest per question is scored)</h3>
{{ table(view.answers, ["question", "expected", "answer", "by", "at", "points", "verdict"]) }}
{% if view.participants %}{{ table(view.participants, ["participant", "answered", "points (own latest answers)"]) }}
{% endif %}
<h3>Incidents opened</h3>
{{ table(view.incidents, ["incident", "title", "severity", "status", "by", "at"]) }}
<h3>Evidence collected</h3>
{{ table(view.evidence, ["#", "incident", "kind", "label", "by", "at", "relevant"]) }}
<h3>Playbook steps completed</h3>
{{ table(view.steps, ["incident", "playbook", "step", "by", "at"]) }}
<h2>Timeline</h2>
{% set g = view.svg %}
{% if g %}<svg class="tl" xmlns="http://www.w3.org/2000/svg" width="{{ g.width }}" height="{{ g.height }}"
viewBox="0 0 {{ g.width }} {{ g.height }}" role="img" aria-label="drill timeline">
{% for lane in g.lanes %}<text x="4" y="{{ lane.y + 4 }}">{{ lane.name }}</text>
<line x1="{{ g.left }}" x2="{{ g.right_x }}" y1="{{ lane.y }}" y2="{{ lane.y }}" stroke="#eaecf0"/>
{% endfor %}<line x1="{{ g.zero }}" x2="{{ g.zero }}" y1="8" y2="{{ g.height - 24 }}" stroke="#101828"
stroke-dasharray="4 3"/><text x="{{ g.zero + 3 }}" y="{{ g.height - 8 }}">T+0</text>
<text x="{{ g.left }}" y="{{ g.height - 8 }}">{{ g.lo }}</text>
<text x="{{ g.right_x - 60 }}" y="{{ g.height - 8 }}">{{ g.hi }}</text>
{% for d in g.dots %}<circle cx="{{ d.cx }}" cy="{{ d.cy }}" r="5" fill="{{ d.fill }}" fill-opacity="0.75">
<title>{{ d.tip|cell(600) }}</title></circle>
{% endfor %}</svg>
{% endif %}
<p>Drill time; ground-truth and detector events are placed by their time in the scenario's data.</p>
{{ table(view.timeline, ["T", "lane", "event", "who", "scenario time"]) }}
{% if view.notes %}<h2>Facilitator notes (from the scenario)</h2>
{{ view.notes|md }}
{% endif %}
</body></html>
"""

def _cell(value: Any, limit: int = 160) -> str:
    from workbench.cases.report_render import _cell as cell

    return visible(cell(value, limit))


@cache
def template(source: str) -> jinja2.Template:
    """A compiled report template (compiled once per source text)."""
    return environment().from_string(source)


@cache
def environment() -> jinja2.Environment:
    """The report templates' environment: autoescaping on, undefined names are errors."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["cell"] = _cell
    env.filters["md"] = safe_markdown
    return env


def render_incident(*, figures: dict[str, str], **ctx: Any) -> str:
    """An incident report page from its prepared parts (see report_render.to_html)."""
    scripts: list[str] = []
    extra: dict[str, Any] = {"css": Markup(INCIDENT_CSS), "loader": inline_script(FIGURE_LOADER)}
    if figures:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
        scripts = [plotly_js, FIGURE_LOADER]
        extra["plotly_js"] = inline_script(plotly_js)
    extra["csp"] = content_security_policy(scripts)
    safe_figures = {str(k): script_json(v) for k, v in figures.items()}
    return template(INCIDENT_HTML).render(figures=safe_figures, **extra, **ctx)


def render_drill(*, view: dict[str, Any]) -> str:
    """A drill after-action report page from its view (see drills.report.report_view); it runs no script."""
    return template(DRILL_HTML).render(view=view, css=Markup(DRILL_CSS), csp=content_security_policy([]))
