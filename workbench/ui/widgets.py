"""Shared filters and chart-selection helpers used by several pages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

SEVERITIES = ("critical", "high", "medium", "low", "info")


def pick_system(systems: Sequence[str], key: str, allow_all: bool = True, label: str = "System") -> str | None:
    """A system selector; None means all systems."""
    options = (["(all systems)"] if allow_all else []) + list(systems)
    if not options:
        return None
    choice = st.selectbox(label, options, key=key)
    return None if choice == "(all systems)" else choice


def date_window(first: Any, last: Any, key: str, label: str = "Time window (UTC)") -> tuple[datetime, datetime] | None:
    """A UTC date range input over [first, last]; returns half-open [start, end) datetimes or None."""
    if first is None or last is None or pd.isna(first) or pd.isna(last):
        return None
    lo, hi = pd.Timestamp(first).date(), pd.Timestamp(last).date()
    picked = st.date_input(label, value=(lo, hi), min_value=lo, max_value=hi, key=key)
    if not isinstance(picked, tuple | list) or len(picked) != 2:
        return None
    start, end = picked
    return _utc(start), _utc(end) + timedelta(days=1)


def _utc(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _as_ts(value: Any) -> pd.Timestamp | None:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def selected_time_range(event: Any) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The time range a user box-selected (or the span of the points selected) on a time-axis plotly chart."""
    selection = _selection(event)
    if not selection:
        return None
    for box in selection.get("box") or []:
        xs = box.get("x") or []
        if len(xs) >= 2:
            a, b = _as_ts(min(xs)), _as_ts(max(xs))
            if a is not None and b is not None:
                return a, b
    xs = [_as_ts(p.get("x")) for p in selection.get("points") or [] if p.get("x") is not None]
    xs = [x for x in xs if x is not None]
    if xs:
        return min(xs), max(xs)
    return None


def selected_values(event: Any, field: str = "customdata") -> list[Any]:
    """Values of one field (customdata's first item, x, y, ...) of the points a user selected."""
    out = []
    for p in (_selection(event) or {}).get("points") or []:
        value = p.get(field)
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        if value is not None:
            out.append(value)
    return out


def _selection(event: Any) -> dict | None:
    if event is None:
        return None
    try:
        return event.get("selection") if hasattr(event, "get") else getattr(event, "selection", None)
    except Exception:  # noqa: BLE001 - a chart without a selection state
        return None


def selected_rows(event: Any) -> list[int]:
    """Row positions a user selected in an st.dataframe with on_select."""
    selection = _selection(event) or {}
    return list(selection.get("rows") or [])


def narrowed_note(window: tuple[pd.Timestamp, pd.Timestamp] | None, what: str = "tables") -> None:
    """A caption saying that a chart selection narrows the tables, and how to clear it."""
    if window:
        st.caption(f"Selection {window[0]:%Y-%m-%d %H:%M} → {window[1]:%Y-%m-%d %H:%M} UTC narrows the {what}. "
                   "Double-click the chart to clear it.")
    else:
        st.caption("Drag a box on the chart (box select) to narrow the tables to that time range.")


def csv_download(df: pd.DataFrame, filename: str, label: str = "Download CSV", key: str | None = None) -> None:
    """A CSV download button for a table already on the page."""
    from workbench.csv_export import csv_bytes  # every CSV goes through the formula-injection guard

    st.download_button(label, csv_bytes(df), file_name=filename, mime="text/csv",
                       key=key or f"dl_{filename}", icon=":material/download:")


def by_severity_then_time(alerts: pd.DataFrame, time_col: str = "start") -> pd.DataFrame:
    """An alert queue ordered by severity (critical first), then newest first within a severity."""
    if alerts.empty or "severity" not in alerts.columns:
        return alerts.sort_values(time_col, ascending=False) if time_col in alerts.columns else alerts
    rank = alerts["severity"].astype(str).str.lower().map({s: i for i, s in enumerate(SEVERITIES)})
    keys = alerts.assign(_rank=rank.fillna(len(SEVERITIES)))
    by = ["_rank"] + ([time_col] if time_col in alerts.columns else [])
    return keys.sort_values(by, ascending=[True, False][:len(by)], kind="stable").drop(columns="_rank")


def whole_number(value: Any) -> str:
    """A number written out in full (thousands separated, no truncation), or the value as text."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalars
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) < 1e15 else f"{value:,}"
    return str(value)


def numbers_table(numbers: dict[str, Any]) -> pd.DataFrame:
    """An alert's evidence numbers as (measure, value) rows, nested dicts and lists spelled out in full."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list | tuple) and value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value, 1):
                walk(f"{prefix}[{i}]", v)
        elif isinstance(value, list | tuple):
            rows.append((prefix, ", ".join(whole_number(v) for v in value)))
        else:
            rows.append((prefix, whole_number(value)))

    walk("", numbers)
    return pd.DataFrame(rows, columns=["measure", "value"])


def part_title(shown: int, total: int | None, how: str, what: str = "decisions") -> str:
    """A chart title that says when the chart shows only part of the window, and which part."""
    if total is not None and shown >= total:
        return f"All {total:,} {what}"
    if total is None:
        return f"{shown:,} {what}, {how}: the window holds more"
    return f"{shown:,} of {total:,} {what}, {how}"


def open_attribution_drift(alert: dict) -> None:
    """Go to the Drift page with the alert's decisions chosen for attribution drift, computed on arrival."""
    st.session_state["dr_system"] = alert.get("system_id")
    st.session_state["dr_attr_source"] = f"alert {alert.get('alert_id')}"
    st.session_state["dr_attr_auto"] = True
    st.switch_page("app_pages/drift.py")


_ACTION_SPAN = re.compile(r"\s*`action:[^`]*`")


def step_label(text: str) -> str:
    """A playbook step's text without its `action: ...` span (the page shows the action once, beside it)."""
    return _ACTION_SPAN.sub("", text).strip()


def user_named(text: str, saved: Any, name: str) -> str:
    """A message about the kept copy of an upload (a Path), rewritten to name the file the user chose."""
    for form in (str(saved.resolve()), str(saved.absolute()), str(saved), saved.name):
        text = text.replace(form, name)
    return text


def empty_workspace_hint() -> None:
    """What to do when the workspace holds no data yet."""
    st.info("This workspace is empty. Load data on the **Data** page (or `workbench ingest PATH`), or build the "
            "demo with `workbench demo`.", icon="📭")


def severity_badge(severity: str | None) -> str:
    """A coloured markdown badge for a severity."""
    colors = {"critical": "red", "high": "orange", "medium": "yellow", "low": "blue", "info": "gray"}
    sev = (severity or "info").lower()
    return f":{colors.get(sev, 'gray')}-badge[{sev}]"


_OPS = r"is\s+not\s+null|is\s+null|not\s+in|in|like|>=|<=|!=|<>|=|<|>"
_COND = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(" + _OPS + r")\s*(.*?)\s*$", re.IGNORECASE)


def _value(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        return text


def parse_conditions(text: str) -> list[tuple[str, str, Any]]:
    """'income > 50000 and purpose in ('car', 'home')' -> [(feature, op, value), ...]; ValueError if unclear."""
    out: list[tuple[str, str, Any]] = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        m = _COND.match(part)
        if not m:
            raise ValueError(f"cannot read the condition {part!r}: write FEATURE OP VALUE, e.g. income > 50000")
        feature, op, raw = m.group(1), re.sub(r"\s+", " ", m.group(2).lower()), m.group(3)
        op = "!=" if op == "<>" else op
        if op in ("is null", "is not null"):
            out.append((feature, op, None))
        elif op in ("in", "not in"):
            items = raw.strip().lstrip("(").rstrip(")")
            out.append((feature, op, [_value(v) for v in items.split(",") if v.strip()]))
        else:
            if not raw:
                raise ValueError(f"the condition {part!r} needs a value")
            out.append((feature, op, _value(raw)))
    return out
