"""Render incident report data (from ``reports.report_data``) as PDF, with a Unicode font when one is installed.

Every value is written as plain text (fpdf2 cells without markdown); invisible control and bidi characters are
shown as ``<U+XXXX>`` so a name cannot hide or reorder what the page says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.cases.report_render import (
    _cell,
    _score,
    _step_rows,
    attribution_table,
    cut_line,
    evidence_notes,
    explanation_line,
    fmt_attribution,
    fmt_value,
    playbook_heading,
    summary_rows,
)
from workbench.cases.report_safe import visible

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


class _Pdf:
    """A thin wrapper over fpdf2 with a Unicode font when one is installed."""

    def __init__(self) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(orientation="P", unit="mm", format="A4")
        self.pdf.set_auto_page_break(True, margin=14)
        self.pdf.set_margins(12, 12, 12)
        self.unicode = (_FONT_DIR / "DejaVuSans.ttf").exists() and (
            _FONT_DIR / "DejaVuSans-Bold.ttf"
        ).exists()
        if self.unicode:
            self.pdf.add_font("dv", "", str(_FONT_DIR / "DejaVuSans.ttf"))
            self.pdf.add_font("dv", "B", str(_FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.family = "dv" if self.unicode else "helvetica"
        self.pdf.add_page()

    def t(self, text: Any) -> str:
        s = visible(text, keep_lines=True).replace("\t", " ")
        return s if self.unicode else s.encode("latin-1", "replace").decode("latin-1")

    def heading(self, text: str, size: int = 13) -> None:
        self.pdf.set_font(self.family, "B", size)
        self.pdf.ln(2)
        self.pdf.multi_cell(0, 6, self.t(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font(self.family, "", 8)

    def para(self, text: str) -> None:
        self.pdf.set_font(self.family, "", 8)
        self.pdf.multi_cell(0, 4, self.t(text), new_x="LMARGIN", new_y="NEXT")
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


def to_pdf(data: dict[str, Any], man: dict[str, Any], meta: dict[str, Any]) -> bytes:
    """The report as a PDF for filing (fpdf2; charts drawn with primitives, tables for every section)."""
    s = data["sections"]
    sm = s["summary"]
    p = _Pdf()
    p.heading(f"Incident report {sm['incident_id']}: {sm['title']}", 15)
    p.para(cut_line(data, meta))
    p.heading("1. Summary")
    p.table(summary_rows(sm), ["field", "value"], (40, 146))
    if sm.get("description"):
        p.para(sm["description"])
    p.table(sm["history"], ["ts", "actor", "from_status", "to_status", "note"], (40, 25, 22, 22, 77))
    p.heading("2. Timeline")
    p.table(s["timeline"], ["ts", "source", "what", "actor"], (38, 16, 100, 32))
    p.heading("3. Evidence")
    p.table(
        s["evidence"],
        ["evidence_id", "kind", "label", "added_by", "size", "sha256"],
        (13, 20, 45, 18, 18, 72),
    )
    for line in evidence_notes(s["evidence"]):
        p.para(line)
    p.heading("4. Explanations")
    if not s["explanations"]:
        p.para("No explanations were added as evidence.")
    for x in s["explanations"]:
        p.heading(f"Evidence #{x['evidence_id']}: {x['label']}", 10)
        p.para(explanation_line(x))
        p.bars(x["attributions"])
        cols, rows = attribution_table(x)
        p.table(rows, cols, (76, 60, 50) if len(cols) == 3 else (110, 76))
    p.heading("5. Playbook progress")
    if not data.get("playbook_view"):
        p.para("No playbook attached.")
    for pb in data.get("playbook_view") or []:
        p.heading(playbook_heading(pb), 10)
        if pb.get("problem"):
            p.para(f"Note: {pb['problem']}")
        p.table(_step_rows(pb), ["step", "done", "by", "at", "note", "text"], (22, 9, 18, 30, 35, 72))
    p.heading("6. Audit excerpt")
    p.table(s["audit"], ["seq", "ts", "actor", "action", "what", "hash"], (10, 32, 18, 22, 58, 46))
    p.heading("7. Manifest")
    p.para("SHA-256 of each section's canonical data and of each evidence item.")
    p.pdf.set_font("courier", "", 6.5)
    p.pdf.multi_cell(
        0,
        3,
        json.dumps(man, indent=1, sort_keys=True).encode("latin-1", "replace").decode("latin-1"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(p.pdf.output())
