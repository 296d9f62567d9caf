"""CSV formula injection (issue 12, item 3): every CSV the workbench writes neutralises formula cells."""

from __future__ import annotations

import csv
import gc
import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from access_data import loan_rows, write_jsonl

from workbench.csv_export import TRIGGERS, csv_bytes, csv_text, neutralise, safe_cell, write_csv

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://127.0.0.1/x?"&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "   =1+1",
    "\uff1dSUM(1)",
    "-1+1",
    "+A1",
    "-5%",
    "-inf",
]
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _unsafe_cells(text: str) -> list[str]:
    """Cells a spreadsheet would evaluate as a formula."""
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row
            if cell.lstrip(" ").startswith(TRIGGERS) and not _NUMBER.fullmatch(cell)]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_formula_cells_get_a_leading_quote(payload):
    assert neutralise(payload) == "'" + payload
    text = csv_text([[payload, 1]], ["value", "n"])
    assert _unsafe_cells(text) == []
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row == ["'" + payload, "1"]  # the original text follows the quote unchanged


def test_numbers_stay_numbers_and_text_stays_text():
    for number in ("-5", "+3", "-1.5", "-2e-3", "+.5", "0", "12"):
        assert neutralise(number) == number
    for text in ("ok", "'=already quoted", "a=b", "x-1", "", "🙂 =1"):
        assert neutralise(text) == text
    assert safe_cell(-5) == -5 and safe_cell(-1.5) == -1.5 and safe_cell(Decimal("-2.5")) == Decimal("-2.5")
    assert safe_cell(np.int64(-3)) == -3 and safe_cell(np.float64(-0.25)) == -0.25
    assert safe_cell(float("nan")) == "" and safe_cell(None) == "" and safe_cell(pd.NaT) == ""
    assert safe_cell(True) == "true" and safe_cell(np.bool_(False)) == "false"
    assert safe_cell(float("-inf")) == "'-inf"
    assert safe_cell(["=x", 1]) == '["=x", 1]' and safe_cell({"k": "=x"}) == '{"k": "=x"}'
    assert safe_cell(b"@x") == "'@x"
    assert safe_cell(datetime(2024, 5, 1, tzinfo=UTC)) == "2024-05-01T00:00:00+00:00"
    # unquoted numbers, quoted text with its quotes doubled (RFC 4180); commas and newlines stay in one cell
    text = csv_text([[-5, "-5", 'say "hi", =1', "two\nlines"]], ["n", "s", "t", "u"])
    assert text.splitlines()[1].startswith('-5,"-5","say ""hi"", =1","two')
    assert list(csv.reader(io.StringIO(text)))[1] == ["-5", "-5", 'say "hi", =1', "two\nlines"]


def test_headers_frames_and_files(tmp_path):
    df = pd.DataFrame({"=x": ["@a", "b"], "n": [-1, 2], "ts": pd.to_datetime(["2024-05-01", "2024-05-02"], utc=True)})
    text = csv_text(df)
    assert list(csv.reader(io.StringIO(text)))[0] == ["'=x", "n", "ts"]
    assert _unsafe_cells(text) == []
    assert csv_bytes(df) == text.encode("utf-8")
    path = write_csv(tmp_path / "out.csv", [{"a": "=1", "b": 2}])
    assert path.read_bytes() == b'"a","b"\r\n"\'=1",2\r\n'
    with pytest.raises(ValueError):
        csv_text([[1, 2]])


_CSV_WRITING = re.compile(r"\.to_csv\(|csv\.writer\(|csv\.DictWriter\(|FORMAT\s*'?csv|text/csv")


def test_every_csv_writer_goes_through_csv_export():
    """No module writes CSV except csv_export (and the download button that serves its bytes)."""
    offenders = []
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("workbench/csv_export.py",) or rel.startswith(("workbench/sample/", "workbench/ingest/")):
            continue  # the sample generator writes synthetic input files; ingest reads CSV
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _CSV_WRITING.search(line, re.IGNORECASE) and "csv_bytes(" not in line:
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == [], "CSV written without workbench.csv_export:\n" + "\n".join(offenders)


# -- every download the app offers -------------------------------------------------------------------------------
@pytest.fixture()
def hostile_db(tmp_path, monkeypatch, admin):
    from workbench import audit
    from workbench.ingest import ingest
    from workbench.store import open_workspace

    rows = loan_rows(20)
    for i, row in enumerate(rows):
        row["principal"] = PAYLOADS[i % 4]
        row["prediction"] = "@SUM(1+1)" if i % 2 else "-1+1"
        row["features"]["purpose"] = PAYLOADS[1]
        row["features"]["=cmd|' /C calc'!A0"] = -5
    path = write_jsonl(tmp_path / "loan.jsonl", rows)
    with path.open("a", encoding="utf-8") as f:
        f.write("=cmd|' /C calc'!A0\n")  # not JSON: quarantined with its raw text
    db = tmp_path / "app.duckdb"
    ws = open_workspace(db)
    try:
        results = ingest(ws, admin, [path])
        assert results[0].rows_loaded == 20 and results[0].rows_quarantined == 1, results
        audit.record(ws, admin, "note.test", '=HYPERLINK("http://127.0.0.1/x","click")', {"n": -1})
        ws.execute("CHECKPOINT")
    finally:
        ws.close()
    monkeypatch.setenv("WORKBENCH_DB", str(db))
    monkeypatch.setenv("WORKBENCH_NO_AUTODEMO", "1")
    return db


def _downloads(at, run) -> dict[str, str]:
    """Run one AppTest step and return the CSV bytes each download button on the page serves, by file name."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    gc.collect()
    gc.disable()  # AppTest drops its media store after the run; keep it alive long enough to read the files
    try:
        run()
        files = {}
        for store in (o for o in gc.get_objects() if isinstance(o, MemoryMediaFileStorage)):
            files.update(store._files_by_id)
    finally:
        gc.enable()
    assert not at.exception, [e.value for e in at.exception]
    out = {}
    for el in _walk(at._tree):
        if getattr(el, "type", "") == "download_button" and el.proto.url.endswith(".csv"):
            file_id = el.proto.url.rsplit("/", 1)[-1].split(".")[0]
            out[el.proto.id.split("-dl_")[-1]] = files[file_id].content.decode("utf-8")
    return out


def _walk(node):
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield child
            yield from _walk(child)


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "workbench" / "streamlit_app.py"), default_timeout=60)


def _check(name: str, text: str, *expected: str) -> None:
    assert _unsafe_cells(text) == [], f"{name}: formula cells {_unsafe_cells(text)[:3]}"
    cells = {c for row in csv.reader(io.StringIO(text)) for c in row}
    for value in expected:
        assert "'" + value in cells or any(("'" + value) in c for c in cells), f"{name}: {value!r} missing"


@pytest.mark.parametrize("page, file, expected", [
    ("decisions", "decisions_loan.csv", [PAYLOADS[0], "@SUM(1+1)", "-1+1", PAYLOADS[1]]),
    ("data", "quarantine.csv", ["=cmd|' /C calc'!A0"]),
    ("data", "sources.csv", []),
    ("audit", "audit_excerpt.csv", ['=HYPERLINK("http://127.0.0.1/x","click")']),
])
def test_app_page_downloads_are_neutralised(hostile_db, page, file, expected):
    at = _app().run()
    at.switch_page(f"app_pages/{page}.py")
    got = _downloads(at, at.run)
    _check(file, got[file], *expected)


def test_sql_page_download_is_neutralised(hostile_db):
    at = _app().run()
    at.switch_page("app_pages/sql.py").run()
    at.text_area(key="sql_text").input(
        "SELECT principal, prediction, -5 AS n, '-5' AS s FROM decisions ORDER BY decision_id")
    got = _downloads(at, at.button(key="sql_run").click().run)
    _check("query.csv", got["query.csv"], PAYLOADS[0], "@SUM(1+1)", "-1+1")
    assert list(csv.reader(io.StringIO(got["query.csv"])))[1][2:] == ["-5", "-5"]  # numbers stay numbers
