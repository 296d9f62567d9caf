"""Hostile text in reports stays text: escaping for Markdown, sanitised Markdown-to-HTML, JSON inside ``<script>``.

Everything a report shows that came from a decision log, an alert, an analyst or a scenario file is data.
Principal names, predictions, decision ids, labels and notes are written by the very callers under
investigation, so no path may turn them into markup or script:

- ``md_text``: data for a Markdown report. HTML-active characters become entities (``&lt;``), Markdown-active
  ones are backslash-escaped (no links, images, code spans or table cells can be opened), line breaks become
  spaces, invisible control and bidi characters are shown as ``<U+202E>``.
- ``md_block``: authored Markdown (an incident description, a scenario's notes) kept as Markdown but defanged:
  no raw HTML, no entities, no link or image destinations.
- ``safe_markdown``: authored Markdown for an HTML report: rendered, then cleaned by nh3 (an allow-list of tags
  and attributes; links keep http, https and mailto only).
- ``script_json``: JSON to embed in a ``<script>`` element: ``<``, ``>``, ``&``, ``'`` and the JS line
  separators are written as ``\\u`` escapes, so no data can close the element or open a comment.
- ``plotly_text``: text for a plotly label, which plotly reads as its own small HTML dialect: entities only.

HTML reports are rendered by jinja2 with autoescaping on (``report_templates``); data never becomes template
source.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from typing import Any

from markupsafe import Markup

# Tags and attributes an authored Markdown text may produce in an HTML report; everything else is stripped.
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "li", "ol", "p", "pre", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}

_INVISIBLE = ("Cc", "Cf", "Zl", "Zp", "Co", "Cs")
_MD_INLINE = str.maketrans({
    "\\": "\\\\", "`": "\\`", "*": "\\*", "[": "\\[", "]": "\\]", "|": "\\|",
    "&": "&amp;", "<": "&lt;", ">": "&gt;", "\n": " ", "\r": " ", "\t": " ",
})
_JS_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}
_JS_ACTIVE = re.compile("[<>&'\u2028\u2029]")
_SPACES = re.compile(r"\r\n|[\r\n\t]")


def visible(text: Any, keep_lines: bool = False) -> str:
    """The text with control, bidi-override and other invisible format characters shown as ``<U+XXXX>``.

    Line breaks and tabs become spaces unless keep_lines (then they stay as they are)."""
    s = "" if text is None else str(text)
    s = _SPACES.sub(" ", s) if not keep_lines else s.replace("\r\n", "\n").replace("\r", "\n")
    keep = "\n\t" if keep_lines else ""
    if all(ch.isprintable() or ch in keep for ch in s):
        return s
    return "".join(
        f"<U+{ord(ch):04X}>" if ch not in keep and unicodedata.category(ch) in _INVISIBLE else ch for ch in s
    )


def md_text(value: Any) -> str:
    """Data as inert Markdown inline text: nothing in it can become HTML, a link, a code span or a table cell."""
    return visible(value).translate(_MD_INLINE)


def md_block(text: Any) -> str:
    """Authored Markdown for a Markdown report, defanged: raw HTML, entities and link destinations are inert."""
    s = visible(text, keep_lines=True).replace("&", "&amp;").replace("<", "&lt;")
    return s.replace("](", "]\\(").replace("]:", "]\\:")


def safe_markdown(text: Any) -> Markup:
    """Authored Markdown rendered to HTML and sanitised (nh3 allow-list); safe to place in a report page."""
    import markdown
    import nh3

    rendered = markdown.markdown(visible(text, keep_lines=True), extensions=["tables", "fenced_code"])
    return Markup(nh3.clean(rendered, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
                            clean_content_tags={"script", "style", "iframe", "object", "template", "textarea"},
                            strip_comments=True, link_rel="noopener noreferrer nofollow"))


def script_json(json_text: str) -> Markup:
    """JSON text made safe inside a ``<script>`` element (``</script>``, ``<!--`` cannot occur)."""
    return Markup(_JS_ACTIVE.sub(lambda m: _JS_ESCAPES[m.group()], json_text))


def plotly_text(value: Any) -> str:
    """A data string for a plotly label or hover text: plotly's pseudo-HTML becomes entities it shows as text."""
    return visible(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inline_script(js: str) -> Markup:
    """Trusted script text (ours or a vendored library) for a ``<script>`` element; refuses text that closes it."""
    if re.search(r"</script|<!--", js, re.IGNORECASE):
        raise ValueError("script text would close its <script> element")
    return Markup(js)


def csp_hash(js: str) -> str:
    """The Content-Security-Policy source expression allowing exactly this inline script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(scripts: list[str]) -> str:
    """A CSP for a self-contained report: nothing loads from anywhere; only the listed inline scripts run."""
    allowed = " ".join(csp_hash(js) for js in scripts) or "'none'"
    return (f"default-src 'none'; script-src {allowed}; style-src 'unsafe-inline'; img-src data:; "
            "font-src data:; base-uri 'none'; form-action 'none'")
