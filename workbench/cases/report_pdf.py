"""Render incident report data (from ``reports.report_data``) as PDF, with a Unicode font when one is installed.

Every page carries the TLP/PAP banner (TLP:RED in red, ...) at the top and the page number ("page 3 of 9") with
the marking at the bottom; a table of contents with page numbers follows the title. Data is written as plain text
(fpdf2 cells without markdown); invisible control and bidi characters are shown as ``<U+XXXX>``. Authored Markdown
(description, executive summary, root cause, lessons) is rendered: Markdown to HTML, cleaned by nh3 to a few
text tags (no links, no images), then fpdf2's ``write_html``; no backticks or asterisks reach the page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.cases import report_parts as parts
from workbench.cases.report_conversations import lines as conversation_lines
from workbench.cases.report_render import (
    HEADINGS,
    RESPONSE_COLS,
    STEP_COLS,
    TASK_COLS,
    _cell,
    _score,
    _step_rows,
    attack_note,
    attribution_table,
    cut_line,
    evidence_notes,
    explanation_line,
    fmt_attribution,
    fmt_value,
    playbook_heading,
    response_note,
    summary_rows,
)
from workbench.cases.report_safe import visible

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_FONTS = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf",
          "BI": "DejaVuSans-BoldOblique.ttf"}
_PDF_TAGS = {"p", "br", "b", "strong", "i", "em", "code", "pre", "ul", "ol", "li", "blockquote", "h1", "h2", "h3",
             "h4", "h5", "h6", "hr"}


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _make_pdf(mark: dict[str, str], unicode: bool) -> Any:
    from fpdf import FPDF

    class _Doc(FPDF):
        def header(self) -> None:  # the marking on every page
            self.set_fill_color(0, 0, 0)
            self.rect(0, 0, self.w, 8, style="F")
            self.set_xy(self.l_margin, 1.5)
            self.set_font(self.font_family_name, "B", 9)
            self.set_text_color(*_hex(mark["tlp_colour"]))
            self.cell(25, 5, mark["tlp"])
            self.set_text_color(*_hex(mark["pap_colour"]))
            self.cell(25, 5, mark["pap"])
            self.set_text_color(255, 255, 255)
            self.set_font(self.font_family_name, "", 7)
            self.cell(0, 5, self.clean(mark["tlp_meaning"]))
            self.set_text_color(0, 0, 0)
            self.set_y(12)

        def footer(self) -> None:  # page number and marking on every page
            self.set_y(-10)
            self.set_font(self.font_family_name, "", 7)
            self.set_text_color(90, 90, 90)
            self.cell(0, 5, f"{mark['tlp']} {mark['pap']}", align="L")
            self.set_x(self.l_margin)
            self.cell(0, 5, f"page {self.page_no()} of {{nb}}", align="R")
            self.set_text_color(0, 0, 0)

        def clean(self, text: Any) -> str:
            s = visible(text, keep_lines=True).replace("\t", " ")
            return s if unicode else s.encode("latin-1", "replace").decode("latin-1")

    pdf = _Doc(orientation="P", unit="mm", format="A4")
    family = "helvetica"
    if unicode:
        for style, name in _FONTS.items():
            pdf.add_font("dv", style, str(_FONT_DIR / name))
        pdf.add_font("dvmono", "", str(_FONT_DIR / "DejaVuSansMono.ttf"))
        family = "dv"
    pdf.font_family_name = family
    pdf.set_auto_page_break(True, margin=14)
    pdf.set_margins(12, 12, 12)
    return pdf


def _toc(pdf: Any, outline: list[Any]) -> None:
    """The table of contents: each section with its page number."""
    pdf.set_x(pdf.l_margin)
    pdf.set_font(pdf.font_family_name, "B", 13)
    pdf.cell(0, 8, "Contents", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.font_family_name, "", 9)
    for section in outline:
        if section.level:
            continue
        pdf.cell(160, 5.5, pdf.clean(section.name))
        pdf.cell(0, 5.5, str(section.page_number), align="R", new_x="LMARGIN", new_y="NEXT")


class _Pdf:
    """A thin wrapper over fpdf2: marking banner, page numbers, contents, text, tables, bars, Markdown."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.unicode = all((_FONT_DIR / f).exists() for f in [*_FONTS.values(), "DejaVuSansMono.ttf"])
        self.pdf = _make_pdf(parts.marking(data), self.unicode)
        self.family = self.pdf.font_family_name
        self.pdf.add_page()

    def t(self, text: Any) -> str:
        return self.pdf.clean(text)

    def heading(self, text: str, size: int = 13, section: bool = False) -> None:
        if section and self.pdf.get_y() > self.pdf.h - 40:
            self.pdf.add_page()
        self.pdf.set_font(self.family, "B", size)
        self.pdf.ln(2)
        if section:
            self.pdf.start_section(self.t(text))
        self.pdf.multi_cell(0, 6, self.t(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font(self.family, "", 8)

    def para(self, text: str) -> None:
        self.pdf.set_font(self.family, "", 8)
        self.pdf.multi_cell(0, 4, self.t(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(1)

    def markdown(self, text: Any, missing: str = "(not written yet)") -> None:
        """Authored Markdown rendered (bold, italics, lists, code), never as raw markup; links become text."""
        import markdown
        import nh3

        if not text:
            self.para(missing)
            return
        html = markdown.markdown(self.t(text), extensions=["fenced_code"])
        html = nh3.clean(html, tags=_PDF_TAGS, attributes={}, clean_content_tags={"script", "style", "template"},
                         strip_comments=True)
        from fpdf.fonts import FontFace

        mono = "dvmono" if self.unicode else "courier"
        styles = {"code": FontFace(family=mono), "pre": FontFace(family=mono)}
        styles.update({f"h{i}": FontFace(family=self.family, emphasis="BOLD", size_pt=11 - i // 2)
                       for i in range(1, 7)})
        self.pdf.set_font(self.family, "", 9)
        try:
            self.pdf.write_html(html, font_family=self.family, tag_styles=styles, warn_on_tags_not_matching=False)
        except Exception:  # noqa: BLE001 - an HTML layout failure must not lose the text
            self.para(text)
        self.pdf.set_font(self.family, "", 8)
        self.pdf.ln(1)

    def table(self, rows: list[dict[str, Any]], cols: list[str], widths: tuple[int, ...]) -> None:
        if not rows:
            self.para("(none)")
            return
        self.pdf.set_font(self.family, "", 6.5)
        with self.pdf.table(col_widths=widths, line_height=3.2, text_align="LEFT", width=186) as table:
            head = table.row()
            for c in cols:
                head.cell(self.t(c))
            for r in rows:
                row = table.row()
                for c in cols:
                    row.cell(self.t(_cell(r.get(c), 300)))
        self.pdf.ln(2)

    def bars(self, attrs: list[dict[str, Any]]) -> None:
        """A horizontal bar chart drawn with fpdf primitives (no image renderer needed)."""
        if not attrs:
            return
        vals = [_score(a) for a in attrs]
        pdf, peak = self.pdf, max(abs(v) for v in vals) or 1.0
        label_w, area, h = 55, 100, 4.2
        has_neg = any(v < 0 for v in vals)
        if pdf.get_y() + h * len(attrs) + 6 > pdf.h - 14:
            pdf.add_page()
        x0 = pdf.l_margin + label_w
        zero = x0 + (area / 2 if has_neg else 0)
        scale = (area / 2 if has_neg else area) / peak
        pdf.set_font(self.family, "", 7)
        for a, v in zip(attrs, vals, strict=True):
            y = pdf.get_y()
            pdf.set_xy(pdf.l_margin, y)
            shown = fmt_value(a.get("feature_value"))
            label = f"{a['feature']} = {shown}" if shown else str(a["feature"])
            pdf.cell(label_w - 2, h, self.t(_cell(label, 44)), align="R")
            w = abs(v) * scale
            pdf.set_fill_color(*((192, 57, 43) if v > 0 else (46, 134, 193)))
            pdf.rect(zero - (w if v < 0 else 0), y + 0.6, max(w, 0.2), h - 1.2, style="F")
            pdf.set_xy(x0 + area + 2, y)
            pdf.cell(25, h, fmt_attribution(v))
            pdf.set_y(y + h)
        pdf.set_draw_color(120, 120, 120)
        pdf.line(zero, pdf.get_y() - h * len(attrs), zero, pdf.get_y())
        # fpdf2 tables paint with the current colours: do not let the bars' colour leak into later tables.
        pdf.set_fill_color(255, 255, 255)
        pdf.set_draw_color(0, 0, 0)
        pdf.ln(2)

    def timeline(self, g: dict[str, Any] | None) -> None:
        """A time scatter chart (lanes, dots, dated axis) from report_parts.time_chart geometry, scaled to A4."""
        if not g:
            return
        pdf, k = self.pdf, 186 / g["width"]
        height = g["height"] * k
        if pdf.get_y() + height + 8 > pdf.h - 14:
            pdf.add_page()
        y0 = pdf.get_y()
        pdf.set_font(self.family, "", 6)
        pdf.set_draw_color(220, 220, 220)
        for lane in g["lanes"]:
            y = y0 + lane["y"] * k
            pdf.line(pdf.l_margin + g["left"] * k, y, pdf.l_margin + g["right"] * k, y)
            pdf.set_xy(pdf.l_margin, y - 2)
            pdf.cell(g["left"] * k - 2, 4, self.t(_cell(lane["name"], 30)))
        pdf.set_draw_color(80, 80, 80)
        axis = y0 + g["axis_y"] * k
        pdf.line(pdf.l_margin + g["left"] * k, axis, pdf.l_margin + g["right"] * k, axis)
        for t in g["ticks"]:
            pdf.set_xy(pdf.l_margin + t["x"] * k - 12, axis + 1)
            pdf.cell(24, 3, t["label"], align="C")
        for d in g["dots"]:
            pdf.set_fill_color(*_hex(d["fill"]))
            pdf.circle(pdf.l_margin + d["cx"] * k, y0 + d["cy"] * k, 0.9, style="F")
        pdf.set_fill_color(255, 255, 255)
        pdf.set_draw_color(0, 0, 0)
        pdf.set_y(y0 + height + 1)
        self.para(f"{g['points']} events, {g['from']} to {g['to']}." + (f" {g['note']}." if g["note"] else ""))


def to_pdf(data: dict[str, Any], man: dict[str, Any], meta: dict[str, Any]) -> bytes:
    """The report as a PDF for filing (fpdf2): marking on every page, page numbers, contents, rendered Markdown."""
    s = data["sections"]
    sm, wu, imp, act = s["summary"], s.get("writeup") or {}, s.get("impact") or {}, s.get("actions") or {}
    p = _Pdf(data)
    p.heading(f"Incident report {sm['incident_id']}: {sm['title']}", 15)
    p.para(cut_line(data, meta))
    p.para(parts.banner_text(data))
    p.pdf.insert_toc_placeholder(_toc, pages=1, allow_extra_pages=True)
    h = iter(HEADINGS)
    p.heading(next(h), section=True)
    p.markdown(wu["exec_summary"]) if wu.get("exec_summary") else p.para(parts.exec_summary(data))
    p.heading(next(h), section=True)
    p.table(summary_rows(sm), ["field", "value"], (40, 146))
    if sm.get("description"):
        p.markdown(sm["description"])
    p.table(sm["history"], ["ts", "actor", "from_status", "to_status", "note"], (40, 25, 22, 22, 77))
    p.heading(next(h), section=True)
    for line in parts.impact_lines(imp):
        p.para(line)
    by_outcome, by_principal = parts.impact_rows(imp)
    if by_outcome:
        p.table(by_outcome, list(by_outcome[0]), (80, 50, 56) if len(by_outcome[0]) == 3 else (100, 86))
        cols = list(by_principal[0])
        p.table(by_principal, cols, (70, 30, 50, 36) if len(cols) == 4 else (80, 40, 66))
    attack, response = parts.split_timeline(s["timeline"])
    p.heading(next(h), section=True)
    p.para(attack_note(attack))
    p.timeline(parts.time_chart(attack, "kind", "Attack: evidence event times"))
    p.table(attack, ["ts", "kind", "what", "evidence_id"], (38, 22, 110, 16))
    p.heading(next(h), section=True)
    p.heading("Analyst's finding", 10)
    p.markdown(wu.get("root_cause"))
    p.heading("What the detectors' evidence shows", 10)
    for line in parts.finding_lines(s.get("findings") or []) or ["No alert was filed as evidence."]:
        p.para(line)
    p.heading(next(h), section=True)
    p.para(response_note(response))
    p.timeline(parts.time_chart([{**r, "lane": parts.response_lane(r)} for r in response], "lane",
                                "Response: analysts' actions"))
    p.table(response, RESPONSE_COLS, (38, 100, 36, 12))
    p.heading(next(h), section=True)
    for title, rows in (("Tasks done", act.get("tasks_done")), ("Tasks still open", act.get("tasks_open"))):
        p.heading(title, 10)
        p.table(parts.task_rows(rows or []), TASK_COLS, (12, 60, 18, 22, 30, 20, 24))
    p.heading("Playbook steps done", 10)
    p.table(act.get("steps_done") or [], STEP_COLS, (45, 35, 20, 36, 50))
    p.heading(next(h), section=True)
    p.table(s["evidence"], ["evidence_id", "kind", "label", "added_by", "size", "sha256"], (13, 20, 45, 18, 18, 72))
    for line in evidence_notes(s["evidence"]):
        p.para(line)
    for c in s.get("conversations") or []:  # frozen LLM conversations (report_conversations)
        p.heading(f"Conversation excerpt (evidence #{c['evidence_id']})", 10)
        for line in conversation_lines(c):
            p.para(line)
    p.heading(next(h), section=True)
    if not s["explanations"]:
        p.para("No explanations were added as evidence.")
    for x in s["explanations"]:
        p.heading(f"Evidence #{x['evidence_id']}: {x['label']}", 10)
        p.para(explanation_line(x))
        p.bars(x["attributions"])
        cols, rows = attribution_table(x)
        p.table(rows, cols, (76, 60, 50) if len(cols) == 3 else (110, 76))
    p.heading(next(h), section=True)
    if not data.get("playbook_view"):
        p.para("No playbook attached.")
    for pb in data.get("playbook_view") or []:
        p.heading(playbook_heading(pb), 10)
        if pb.get("problem"):
            p.para(f"Note: {pb['problem']}")
        p.table(_step_rows(pb), ["step", "done", "by", "at", "note", "text"], (22, 9, 18, 30, 35, 72))
    p.heading(next(h), section=True)
    p.markdown(wu.get("lessons"))
    p.heading(next(h), section=True)
    p.table(s["audit"], ["seq", "ts", "actor", "action", "what", "hash"], (10, 32, 18, 22, 58, 46))
    p.heading(next(h), section=True)
    p.para("SHA-256 of each section's canonical data and of each evidence item.")
    p.pdf.set_font("courier", "", 6.5)
    p.pdf.multi_cell(0, 3, json.dumps(man, indent=1, sort_keys=True).encode("latin-1", "replace").decode("latin-1"),
                     new_x="LMARGIN", new_y="NEXT")
    return bytes(p.pdf.output())
