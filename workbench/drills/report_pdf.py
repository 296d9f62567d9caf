"""The drill after-action report as PDF (fpdf2): the same view as the Markdown and HTML reports, as plain text.

Page numbers on every page; every value is written as text (invisible control and bidi characters shown as
``<U+XXXX>``), Markdown notes are written as their text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.cases.report_render import _cell
from workbench.cases.report_safe import visible

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def render_pdf(view: dict[str, Any]) -> bytes:
    """The after-action report view (drills.report.report_view) as PDF bytes."""
    from fpdf import FPDF

    unicode = (_FONT_DIR / "DejaVuSans.ttf").exists() and (_FONT_DIR / "DejaVuSans-Bold.ttf").exists()

    class _Doc(FPDF):
        def footer(self) -> None:
            self.set_y(-10)
            self.set_font(family, "", 7)
            self.cell(0, 5, f"{t(view['title'])[:90]} - page {self.page_no()} of {{nb}}", align="R")

    def t(text: Any) -> str:
        s = visible(text, keep_lines=True).replace("\t", " ")
        return s if unicode else s.encode("latin-1", "replace").decode("latin-1")

    pdf = _Doc(orientation="P", unit="mm", format="A4")
    family = "helvetica"
    if unicode:
        pdf.add_font("dv", "", str(_FONT_DIR / "DejaVuSans.ttf"))
        pdf.add_font("dv", "B", str(_FONT_DIR / "DejaVuSans-Bold.ttf"))
        family = "dv"
    pdf.set_auto_page_break(True, margin=14)
    pdf.set_margins(12, 12, 12)
    pdf.add_page()

    def heading(text: str, size: int = 12) -> None:
        pdf.set_font(family, "B", size)
        pdf.ln(2)
        pdf.multi_cell(0, 6, t(text), new_x="LMARGIN", new_y="NEXT")

    def para(text: str) -> None:
        pdf.set_font(family, "", 8)
        pdf.multi_cell(0, 4, t(text), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    def table(rows: list[dict[str, Any]], cols: list[str], widths: tuple[int, ...]) -> None:
        if not rows:
            para("(none)")
            return
        pdf.set_font(family, "", 6.5)
        with pdf.table(col_widths=widths, line_height=3.2, text_align="LEFT", width=186) as tab:
            head = tab.row()
            for c in cols:
                head.cell(t(c))
            for r in rows:
                row = tab.row()
                for c in cols:
                    row.cell(t(_cell(r.get(c), 400)))
        pdf.ln(2)

    heading(view["title"], 15)
    para(view["intro"])
    heading(view["score"])
    table(view["score_rows"], ["part", "points", "of", "how"], (30, 16, 16, 124))
    heading("What happened (ground truth)")
    para(view["summary"])
    for tr in view["truth"]:
        heading(tr["heading"], 10)
        for f in tr["facts"]:
            para(f"- {f}")
    heading("What the team did")
    heading("Answers (latest per question is scored)", 10)
    table(view["answers"], ["question", "expected", "answer", "by", "at", "points", "verdict"],
          (40, 30, 34, 14, 12, 12, 44))
    if view["participants"]:
        table(view["participants"], ["participant", "answered", "points (own latest answers)"], (80, 40, 66))
    heading("Incidents opened", 10)
    table(view["incidents"], ["incident", "title", "severity", "status", "by", "at"], (22, 70, 18, 20, 30, 26))
    heading("Evidence collected", 10)
    table(view["evidence"], ["#", "incident", "kind", "label", "by", "at", "relevant"], (10, 22, 22, 70, 22, 24, 16))
    heading("Playbook steps completed", 10)
    table(view["steps"], ["incident", "playbook", "step", "by", "at"], (26, 60, 40, 30, 30))
    heading("Timeline")
    para("Drill time; ground-truth and detector events are placed by their time in the scenario's data.")
    table(view["timeline"], ["T", "lane", "event", "who", "scenario time"], (18, 22, 90, 24, 32))
    if view.get("notes"):
        heading("Facilitator notes (from the scenario)")
        para(view["notes"])
    return bytes(pdf.output())
