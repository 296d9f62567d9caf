"""Hostile text in every report format stays text (issue 12, item 2).

Principal names, predictions and decision ids come from the callers under investigation; incident titles,
labels, notes and scenario files from people. Payloads put in each of them must come out of the Markdown, HTML
and PDF reports (incident and drill after-action) as text: no markup, no script, no link. The fast tests parse
what was written; the browser test opens every HTML page (and the Markdown rendered by two Markdown renderers
that pass raw HTML through, as a naive viewer would) in Chromium and checks that no dialog fires and no
injected element exists.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from case_helpers import T0

from workbench.access import Actor, local_admin
from workbench.cases import evidence, incidents, playbooks, reports
from workbench.ingest import ingest_file

ANALYST = Actor("ana", "analyst")
P = {
    "script": "<script>alert('xss-script')</script>",
    "img": "<img src=x onerror=alert('xss-img')>",
    "close": "</script><script>alert('xss-close')</script>",
    "comment": "<!--<script>alert('xss-comment')</script>-->",
    "svg": "<svg onload=alert('xss-svg')>",
    "iframe": "<iframe srcdoc=\"<script>alert('xss-iframe')</script>\"></iframe>",
    "md_link": "[click me](javascript:alert('xss-mdlink'))",
    "md_img": "![pic](javascript:alert('xss-mdimg'))",
    "md_ref": "[ref]\n\n[ref]: javascript:alert('xss-mdref')",
    "md_entity": "[e](jav&#97;script:alert('xss-entity'))",
    "autolink": "<javascript:alert('xss-autolink')>",
    "template": "{{ cycler.__init__.__globals__.os.system('id') }}{% raw %}",
    "table": "a | b \\| c\n# fake heading",
    "bidi": "adm\u202eni\u200b",
}
RAW_TAGS = ("script", "img", "close", "comment", "svg", "iframe")
PRINCIPAL = P["script"] + " #1"
DECISION_ID = "d-" + P["svg"]
PREDICTION = P["img"]


def _write_decisions(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(12):
            fh.write(json.dumps({
                "decision_id": DECISION_ID if i == 0 else f"d{i}", "ts": (T0 + timedelta(minutes=i)).isoformat(),
                "system_id": "loan", "model_version": "v1", "principal": PRINCIPAL if i % 2 else "broker-1",
                "prediction": PREDICTION if i % 3 == 0 else "approve", "score": i / 20,
                "features": {"income": 1000 + i, "purpose": "car"}, "source_ip": "10.0.0.1",
            }) + "\n")
    return path


def _insert_alert(ws) -> str:
    """An alert as a detector stores it, quoting the hostile principal in its summary."""
    alert_id = "AL-00000000000000aa"
    ws.execute(
        "INSERT INTO alerts (alert_id, detector, system_id, severity, window_start, window_end, principal, feature, "
        "metric, atlas, summary, evidence, score, n_decisions, status, first_seen, last_seen) VALUES "
        "(?, 'extraction', 'loan', 'high', ?, ?, ?, NULL, NULL, ['AML.T0024.002'], ?, ?, 9.5, 6, 'open', now(), now())",
        [alert_id, T0, T0 + timedelta(minutes=12), PRINCIPAL,
         f"principal {PRINCIPAL} swept the input space {P['close']} {P['md_link']}",
         json.dumps({"principal": PRINCIPAL, "note": P["comment"]})],
    )
    ws.execute("INSERT INTO alert_decisions SELECT ?, 'loan', decision_id FROM decisions WHERE principal = ?",
               [alert_id, PRINCIPAL])
    return alert_id


@pytest.fixture()
def hostile_case(ws, admin, tmp_path) -> str:
    """An incident with a payload in every field a report shows."""
    result = ingest_file(ws, admin, _write_decisions(tmp_path / "hostile.jsonl"))
    assert not result.error, result.error
    alert_id = _insert_alert(ws)
    iid = incidents.create_incident(
        ws, ANALYST, P["img"] + " " + P["template"] + " " + P["bidi"], "high", alert_ids=[alert_id],
        systems=["loan"], description="\n\n".join([P["md_link"], P["md_img"], P["md_ref"], P["md_entity"],
                                                    P["autolink"], P["script"], P["table"]]),
    )["incident_id"]
    evidence.add_decision_set(ws, ANALYST, iid, "loan", [DECISION_ID, "d1", "d3"], P["close"])
    evidence.add_explanation(ws, ANALYST, iid, {
        "method": "tree", "system_id": "loan", "decision_id": DECISION_ID,
        "attributions": [
            {"feature": "purpose" + P["close"], "value": P["img"], "shap": 1.5},
            {"feature": "income", "value": P["comment"], "shap": -0.5},
        ],
    }, P["svg"])
    incidents.add_note(ws, ANALYST, iid, P["md_img"] + " " + P["iframe"] + " " + P["table"])
    playbooks.set_step(ws, ANALYST, iid, "ai-model-extraction", _first_step("ai-model-extraction"), True,
                       P["iframe"] + P["md_link"])
    incidents.set_status(ws, ANALYST, iid, "triage", P["script"])
    return iid


def _first_step(playbook_id: str) -> str:
    return playbooks.get_playbook(playbook_id).steps[0].id


# -- parsing what was written ----------------------------------------------------------------------------------
class _Page(HTMLParser):
    """Every element (tag, attributes), the text outside script/style, and each script's raw text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in: str | None = None
        self._attrs: dict[str, str | None] = {}
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in, self._attrs, self._buf = tag, dict(attrs), []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            if tag == "script":
                self.scripts.append((self._attrs, "".join(self._buf)))
            self._in = None

    def handle_data(self, data: str) -> None:
        (self._buf if self._in else self.text).append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _assert_inert(page: _Page, allowed_scripts: set[str]) -> None:
    """No injected element, handler, javascript: URL or script beyond our own."""
    tags = {t for t, _ in page.elements}
    assert not tags & {"img", "iframe", "object", "embed", "frame", "base", "form", "link", "template", "math"}
    for tag, attrs in page.elements:
        assert not [a for a in attrs if a.lower().startswith("on")], (tag, attrs)
        for name in ("href", "src", "xlink:href", "action", "formaction", "srcdoc", "data"):
            value = re.sub(r"[\s\x00-\x1f]", "", attrs.get(name) or "").lower()
            assert not value.startswith(("javascript:", "data:", "vbscript:")), (tag, attrs)
            assert name != "srcdoc" or not attrs.get(name)
        if tag == "svg":
            assert set(attrs) <= {"class", "xmlns", "width", "height", "viewbox", "role", "aria-label"}, attrs
    for attrs, body in page.scripts:
        if attrs.get("type") == "application/json":
            assert "<" not in body and ">" not in body
            json.loads(body)
        else:
            assert body in allowed_scripts, body[:200]


# -- incident reports --------------------------------------------------------------------------------------------
def test_markdown_report_escapes_every_payload(ws, hostile_case) -> None:
    text = reports.render_report(ws, ANALYST, hostile_case, "md").decode()
    assert "<" not in text, "a raw '<' in the Markdown report"
    assert not _unescaped_link(text), "a link destination survived"
    assert "&lt;script&gt;alert('xss-script')&lt;/script&gt;" in text  # the principal, shown as text
    assert "&lt;U+202E&gt;" in text  # a bidi override cannot reorder the title
    assert "{{ cycler" in text  # template syntax in data is data
    for renderer in (_python_markdown, _commonmark):
        _assert_inert(_parse(renderer(text)), set())


def _unescaped_link(text: str) -> list[str]:
    """Each ']' not escaped by a backslash that is followed by '(' or ':' (a link or a link definition)."""
    out = []
    for m in re.finditer(r"(\\*)\][(:]", text):
        if len(m.group(1)) % 2 == 0:
            out.append(text[max(0, m.start() - 40): m.end() + 40])
    return out


def _python_markdown(text: str) -> str:
    import markdown

    return markdown.markdown(text, extensions=["tables", "fenced_code"])


def _commonmark(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


def _csp_hash(js: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode() + "'"


def test_html_report_escapes_every_payload(ws, hostile_case) -> None:
    html = reports.render_report(ws, ANALYST, hostile_case, "html").decode()
    for name in RAW_TAGS:
        assert P[name] not in html, f"{name} payload reached the HTML report unescaped"
    page = _parse(html)
    assert not page.scripts  # charts are inline SVG: the report runs no script at all
    _assert_inert(page, set())
    text = "".join(page.text)
    for shown in (P["script"], P["img"], P["close"], P["svg"], P["iframe"], P["template"]):
        assert shown in text, f"{shown!r} is not shown as text"
    assert "adm<U+202E>ni<U+200B>" in text  # a bidi override cannot reorder the title
    # The description is authored Markdown: rendered, with its javascript: links and raw HTML removed.
    links = [a for t, a in page.elements if t == "a" and not str(a.get("href", "")).startswith("#")]
    assert links and all("href" not in a for a in links), links
    assert "xss-mdref" not in text and "xss-mdimg" not in text.replace(P["md_img"], "")
    csp = next(a["content"] for t, a in page.elements if t == "meta" and a.get("http-equiv"))
    assert "default-src 'none'" in csp and "script-src 'none'" in csp
    assert sum(1 for t, _ in page.elements if t == "svg") == 3  # attack and response timelines, the explanation
    assert "purpose</script><script>alert('xss-close')</script>" in text  # the feature's bar label, as text


def test_pdf_report_writes_payloads_as_text(ws, hostile_case, tmp_path) -> None:
    pdf = reports.render_report(ws, ANALYST, hostile_case, "pdf")
    assert pdf.startswith(b"%PDF")
    objects = re.sub(rb"stream\r?\n.*?endstream", b"", pdf, flags=re.S)  # PDF objects, not binary streams
    for action in (b"/JavaScript", b"/JS", b"/Launch", b"/URI", b"/AA", b"/SubmitForm"):  # no actions
        assert action not in objects
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed")
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True, check=True).stdout
    text = " ".join(text.split())
    assert P["img"] in text and "alert('xss-close')" in text and "<U+202E>" in text


# -- drill after-action reports ------------------------------------------------------------------------------
FACILITATOR = local_admin()


@pytest.fixture(scope="module")
def hostile_drill(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small drill whose scenario, ground truth, answers and case work all carry payloads; both reports."""
    from workbench.drills import session
    from workbench.drills.report import write_report
    from workbench.drills.scenario import scenarios_dir
    from workbench.drills.workspace import start_drill
    from workbench.store import open_workspace

    out = tmp_path_factory.mktemp("hostile_drill")
    text = (scenarios_dir() / "extraction-broker-sweep.md").read_text(encoding="utf-8")
    principal = "<img src=x onerror=alert('xss-truth')>"
    edits = {
        'title: "The broker key that asked too many questions"': f"title: {json.dumps(P['script'] + ' drill')}",
        "summary: A new broker API key sweeps the loan-origination model's input space to copy it.":
            f"summary: {json.dumps(P['md_link'] + ' ' + P['close'] + ' ' + P['md_entity'])}",
        "days: 4\n  decisions_per_day: 3000": "days: 2\n  decisions_per_day: 800",
        "principals: [broker-lynx-5c21]": f"principals: [{json.dumps(principal)}]",
        "title: The page": f"title: {json.dumps(P['svg'])}",
        "text: Which principal (API key) is abusing the loan-origination API?":
            f"text: {json.dumps(P['comment'] + ' Which principal is abusing the API?')}",
        "# Facilitator notes\n": "# Facilitator notes\n\n" + "\n\n".join(
            [P["md_link"], P["md_img"], P["md_ref"], P["md_entity"], P["autolink"], P["script"], P["iframe"]]) + "\n",
    }
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    scenario = out / "hostile-sweep.md"
    scenario.write_text(text, encoding="utf-8")
    info = start_drill(scenario, out / "drills")
    with open_workspace(info.path) as ws:
        t0 = datetime.now(UTC) - timedelta(minutes=30)
        session.start_clock(ws, FACILITATOR, at=t0)
        session.answer(ws, FACILITATOR, "who", principal + " " + P["md_link"], participant=P["script"],
                       at=t0 + timedelta(minutes=5))
        session.answer(ws, FACILITATOR, "contain", P["iframe"] + P["table"], participant="ben",
                       at=t0 + timedelta(minutes=6))
        iid = incidents.create_incident(ws, FACILITATOR, P["img"] + " drill case", "high",
                                        systems=["loan-origination"])["incident_id"]
        evidence.add_note(ws, FACILITATOR, iid, P["close"] + P["md_img"])
        playbooks.set_step(ws, FACILITATOR, iid, "ai-model-extraction", _first_step("ai-model-extraction"), True,
                           P["svg"])
        md = write_report(ws, FACILITATOR, "md", out / "aar.md")
        html = write_report(ws, FACILITATOR, "html", out / "aar.html")
    return {"md": Path(md["path"]), "html": Path(html["path"])}


def test_drill_markdown_report_escapes_every_payload(hostile_drill) -> None:
    text = hostile_drill["md"].read_text(encoding="utf-8")
    assert "<" not in text, "a raw '<' in the after-action report"
    assert not _unescaped_link(text), "a link destination survived"
    assert "&lt;img src=x onerror=alert('xss-truth')&gt;" in text  # the ground-truth principal, as text
    for renderer in (_python_markdown, _commonmark):
        _assert_inert(_parse(renderer(text)), set())


def test_drill_html_report_escapes_every_payload(hostile_drill) -> None:
    html = hostile_drill["html"].read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    for payload in (P["script"], P["img"], P["close"], P["svg"], P["iframe"], "<img src=x onerror=alert('xss-truth')>"):
        assert payload not in html
    page = _parse(html)
    _assert_inert(page, set())
    assert not page.scripts  # the after-action report runs no script at all
    text = "".join(page.text)
    assert "<img src=x onerror=alert('xss-truth')>" in text and P["script"] + " drill" in text
    assert "xss-mdref" not in text and "xss-entity" not in text  # only in the scenario's notes
    assert all("href" not in a for t, a in page.elements if t == "a")


# -- in a real browser ---------------------------------------------------------------------------------------
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
_INJECTED = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      if (a.name.toLowerCase().startsWith('on')) bad.push(el.tagName + ' ' + a.name);
      if (/^\\s*(javascript|data|vbscript):/i.test(a.value) && /href|src|action|data/i.test(a.name))
        bad.push(el.tagName + ' ' + a.name + '=' + a.value);
    }
  }
  for (const el of document.querySelectorAll('img, iframe, object, embed, frame, base, form, template'))
    bad.push('element ' + el.tagName);
  for (const s of document.querySelectorAll('script'))
    if (s.type !== 'application/json' && s.textContent.includes('xss-')) bad.push('script ' + s.textContent);
  return bad;
}"""


def _need_browser() -> None:
    reason = None
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright for Python is not installed (pip install playwright)"
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"browser tests must run under CI: {reason}")
        pytest.skip(reason)


@pytest.mark.browser
def test_no_payload_runs_in_chromium(ws, hostile_case, hostile_drill, tmp_path) -> None:
    _need_browser()
    from playwright.sync_api import sync_playwright

    incident_html = tmp_path / "incident.html"
    incident_html.write_bytes(reports.render_report(ws, ANALYST, hostile_case, "html"))
    incident_md = reports.render_report(ws, ANALYST, hostile_case, "md").decode()
    pages = {"incident.html": (incident_html, 0), "aar.html": (hostile_drill["html"], 0)}
    for name, md in (("incident", incident_md), ("aar", hostile_drill["md"].read_text(encoding="utf-8"))):
        for renderer in (_python_markdown, _commonmark):  # a Markdown viewer that lets raw HTML through
            path = tmp_path / f"{name}.{renderer.__name__.strip('_')}.html"
            path.write_text("<!doctype html><meta charset='utf-8'><body>" + renderer(md), encoding="utf-8")
            pages[path.name] = (path, 0)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                     args=ARGS, headless=True)
        try:
            for name, (path, plots) in pages.items():
                page = browser.new_page()
                dialogs: list[str] = []
                page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))
                page.goto(path.resolve().as_uri(), wait_until="load")
                if plots:  # the page's own script ran: a payload that could run would have run too
                    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length === {plots}",
                                           timeout=30_000)
                page.wait_for_timeout(300)
                assert dialogs == [], (name, dialogs)
                assert page.evaluate(_INJECTED) == [], name
                assert "alert(" in page.inner_text("body"), f"{name}: the payloads should show as text"
                page.close()
        finally:
            browser.close()
