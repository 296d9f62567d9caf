"""The HTML report templates (jinja2, autoescaping on) for incident reports and drill after-action reports.

Kept as Python strings so they ship with the package without package-data. Values reach a template only as
variables: ``{{ value }}`` is HTML-escaped, ``|cell`` shortens a value to a table cell and shows invisible
characters, ``|md`` renders authored Markdown through nh3, and the only unescaped insert is our own CSS. Charts
are inline SVG drawn from geometry computed server-side (``report_parts``), every label autoescaped: no plotly.js
(4.8 MB) and no script at all, so a page stays small and its Content-Security-Policy allows no script.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from workbench.cases.report_safe import content_security_policy, safe_markdown, visible

INCIDENT_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:0 auto;padding:0 1em 3em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.85em}td,th{border:1px solid #ccc;padding:3px 6px;
vertical-align:top;word-break:break-word}th{background:#f0f0f0}pre{background:#f7f7f7;padding:1em;overflow:auto;
font-size:.8em}h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;margin-top:1.6em}.problem{color:#b42318}
.tlp{position:sticky;top:0;background:#000;padding:.35em 1em;font-weight:700;font-family:monospace;z-index:9;
margin:0 -1em 1em}.tlp-foot{margin:2em -1em 0}.chart text{font-size:11px;font-family:system-ui,sans-serif}
.note{color:#555;font-size:.85em}.toc li{margin:.1em 0}
@media print{.tlp{position:fixed;left:0;right:0;margin:0}.tlp-top{top:0}.tlp-foot{bottom:0;top:auto}
body{padding-top:2.2em}}"""

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
{%- macro banner(mark, text, where) -%}
<div class="tlp tlp-{{ where }}" role="note"><span style="color:{{ mark.tlp_colour }}">{{ mark.tlp }}</span>
<span style="color:{{ mark.pap_colour }}">{{ mark.pap }}</span>
<span style="color:#fff;font-weight:400">{{ text|cell(400) }}</span></div>
{%- endmacro -%}
{%- macro timechart(g) -%}
{% if g %}<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{{ g.width }}" height="{{ g.height }}"
viewBox="0 0 {{ g.width }} {{ g.height }}" role="img" aria-label="{{ g.title }}">
<text x="4" y="16" font-weight="bold">{{ g.title }} ({{ g.from }} to {{ g.to }})</text>
{% for lane in g.lanes %}<text x="4" y="{{ lane.y + 4 }}">{{ lane.name|cell }}</text>
<line x1="{{ g.left }}" x2="{{ g.right }}" y1="{{ lane.y }}" y2="{{ lane.y }}" stroke="#eaecf0"/>
{% endfor %}<line x1="{{ g.left }}" x2="{{ g.right }}" y1="{{ g.axis_y }}" y2="{{ g.axis_y }}" stroke="#555"/>
{% for t in g.ticks %}<line x1="{{ t.x }}" x2="{{ t.x }}" y1="{{ g.axis_y }}" y2="{{ g.axis_y + 4 }}" stroke="#555"/>
<text x="{{ t.x - 45 }}" y="{{ g.axis_y + 16 }}">{{ t.label }}</text>
{% endfor %}{% for d in g.dots %}<circle cx="{{ d.cx }}" cy="{{ d.cy }}" r="5" fill="{{ d.fill }}"
fill-opacity="0.7"><title>{{ d.tip|cell(400) }}</title></circle>
{% endfor %}</svg>
<p class="note">{{ g.points }} events on this axis (UTC).{% if g.note %} {{ g.note }}.{% endif %}</p>
{% endif %}
{%- endmacro -%}
"""

INCIDENT_HTML = _MACROS + """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<title>{{ title|cell }} [{{ mark.tlp }}]</title>
<style>{{ css }}</style>
</head><body>
{{ banner(mark, banner_text, "top") }}
<h1>Incident report {{ sm.incident_id|cell }}: {{ sm.title|cell(1000) }}</h1>
<p>{{ cut|cell(2000) }}</p>
<nav><ol class="toc">{% for h in headings %}<li><a href="#s{{ loop.index }}">{{ h }}</a></li>{% endfor %}</ol></nav>
<h2 id="s1">{{ headings[0] }}</h2>
{% if wu.exec_summary %}{{ wu.exec_summary|md }}{% else %}<p>{{ exec_summary|cell(5000) }}</p>{% endif %}
<h2 id="s2">{{ headings[1] }}</h2>
{{ table(summary, ["field", "value"]) }}
{% if sm.description %}<div class="description">{{ sm.description|md }}</div>{% endif %}
<p>Status history:</p>
{{ table(sm.history, ["ts", "actor", "role", "from_status", "to_status", "note"]) }}
<h2 id="s3">{{ headings[2] }}</h2>
{% for line in impact_lines %}<p>{{ line|cell(2000) }}</p>
{% endfor %}{% if by_outcome %}<h3>By outcome</h3>
{{ table(by_outcome, by_outcome[0].keys()|list) }}<h3>By principal</h3>
{{ table(by_principal, by_principal[0].keys()|list) }}{% endif %}
<h2 id="s4">{{ headings[3] }}</h2>
<p>{{ attack_note|cell(1000) }}</p>
{{ timechart(attack_chart) }}
{{ table(attack, cols.timeline) }}
<h2 id="s5">{{ headings[4] }}</h2>
<h3>Analyst's finding</h3>
{% if wu.root_cause %}{{ wu.root_cause|md }}{% else %}<p><em>not written yet</em></p>{% endif %}
<h3>What the detectors' evidence shows</h3>
{% if findings %}<ul>{% for f in findings %}<li>{{ f|cell(2000) }}</li>{% endfor %}</ul>
{% else %}<p><em>no alert filed</em></p>{% endif %}
<h2 id="s6">{{ headings[5] }}</h2>
<p>{{ response_note|cell(1000) }}</p>
{{ timechart(response_chart) }}
{{ table(response, cols.response) }}
<h2 id="s7">{{ headings[6] }}</h2>
<h3>Tasks done</h3>
{{ table(tasks_done, cols.tasks) }}
<h3>Playbook steps done</h3>
{{ table(steps_done, cols.steps) }}
<h3>Tasks still open</h3>
{{ table(tasks_open, cols.tasks) }}
<h2 id="s8">{{ headings[7] }}</h2>
{{ table(s.evidence, ["evidence_id", "kind", "label", "added_at", "added_by", "size", "sha256"]) }}
{% if evidence_notes %}<ul>
{% for line in evidence_notes %}<li>{{ line|cell(2000) }}</li>
{% endfor %}</ul>{% endif %}
{% for c in s.conversations %}<h3>Conversation excerpt (evidence #{{ c.evidence_id|cell }})</h3>
{% if c.get('problem') %}<p class="problem">{{ c.problem|cell(1000) }}</p>{% else %}
<p>Conversation {{ c.conversation_id|cell }} of {{ c.system_id|cell }}: {{ c.spans|length }} of
{{ c.spans_total }} spans shown ({{ c.flagged_total }} flagged), sha256 {{ c.sha256|cell(80) }}.
{% if c.get('masked') %}Personal values are masked for this reader's role.{% endif %}</p>
<ul class="conversation">
{% for sp in c.spans %}<li style="margin-left:{{ sp.depth * 1.5 }}em">{% if sp.flags %}<strong>FLAGGED</strong>
{% endif %}{{ sp.kind|cell }}: {{ sp.what|cell(200) }} <span class="note">span {{ sp.span_id|cell }},
{{ sp.ts|cell }}, {{ sp.principal|cell }}</span>
{% for f in sp.flags %}<br>flagged by {{ f|cell(300) }}{% endfor %}
{% for t in sp.texts %}<br><em>{{ t.label }}:</em> {{ t.text|cell(700) }}{% endfor %}</li>
{% endfor %}</ul>{% endif %}
{% endfor %}
<h2 id="s9">{{ headings[8] }}</h2>
{% for e in explanations %}
<h3>Evidence #{{ e.x.evidence_id|cell }}: {{ e.x.label|cell(1000) }}</h3>
<p>{{ e.line|cell(1000) }}</p>
{% set g = e.chart %}{% if g %}<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{{ g.width }}"
height="{{ g.height }}" viewBox="0 0 {{ g.width }} {{ g.height }}" role="img" aria-label="{{ g.measure }}">
{% for b in g.bars %}<text x="{{ g.left - 6 }}" y="{{ b.text_y }}" text-anchor="end">{{ b.label|cell }}</text>
<rect x="{{ b.x }}" y="{{ b.y + 3 }}" width="{{ b.w }}" height="14" fill="{{ b.fill }}"/>
<text x="{{ g.value_x }}" y="{{ b.text_y }}">{{ b.value }}</text>
{% endfor %}<line x1="{{ g.zero }}" x2="{{ g.zero }}" y1="6" y2="{{ g.height - 6 }}" stroke="#555"/></svg>
<p class="note">{{ g.measure }}: red pushes towards the decision, blue away from it.</p>{% endif %}
{{ table(e.rows, e.cols) }}
{% else %}<p><em>no explanations were added as evidence</em></p>
{% endfor %}
<h2 id="s10">{{ headings[9] }}</h2>
{% for p in playbooks %}
<h3>{{ p.heading|cell(1000) }}</h3>
{% if p.pb.problem %}<p class="problem">Note: {{ p.pb.problem|cell(1000) }}</p>{% endif %}
{{ table(p.rows, ["step", "done", "by", "at", "note", "text"]) }}
{% else %}<p><em>no playbook attached</em></p>
{% endfor %}
<h2 id="s11">{{ headings[10] }}</h2>
{% if wu.lessons %}{{ wu.lessons|md }}{% else %}<p><em>not written yet</em></p>{% endif %}
<h2 id="s12">{{ headings[11] }}</h2>
<p>The audit-chain rows about this incident up to the cut (verify the whole chain with
<code>workbench audit verify</code>).</p>
{{ table(s.audit, ["seq", "ts", "actor", "role", "action", "what", "hash"]) }}
<h2 id="s13">{{ headings[12] }}</h2>
<p>SHA-256 of each section's canonical data and each evidence item; check with
<code>workbench report {{ sm.incident_id|cell }} --check MANIFEST.json</code>.</p>
<pre>{{ manifest }}</pre>
{{ banner(mark, banner_text, "foot") }}
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
{% for lane in g.lanes %}<text x="4" y="{{ lane.y + 4 }}">{{ lane.name|cell }}</text>
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
    # imported here: moving this file's imports to the top forms an import cycle
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


def render_incident(*, banner: str, **ctx: Any) -> str:
    """An incident report page from its prepared parts (see report_render.to_html); it runs no script."""
    return template(INCIDENT_HTML).render(css=Markup(INCIDENT_CSS), csp=content_security_policy([]),
                                          banner_text=banner, **ctx)


def render_drill(*, view: dict[str, Any]) -> str:
    """A drill after-action report page from its view (see drills.report.report_view); it runs no script."""
    return template(DRILL_HTML).render(view=view, css=Markup(DRILL_CSS), csp=content_security_policy([]))
