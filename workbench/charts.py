"""Plotly figures shared by the app and the notebooks (no Streamlit here): zoomable, hoverable, selectable."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

SEVERITY_ORDER = ["critical", "high", "medium", "low", "info"]
SEVERITY_COLORS = {"critical": "#b91c1c", "high": "#ea580c", "medium": "#ca8a04", "low": "#2563eb",
                   "info": "#6b7280"}


# The legend sits right of the plot, top-aligned: plotly widens the right margin to fit it, so it can never
# run into the title, however many entries wrap (a horizontal legend above the plot grows upwards into the
# title once it needs a second row, e.g. eight detectors in a half-width column).
LEGEND = dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.02, tracegroupgap=2,
              itemsizing="constant", font=dict(size=11))


def legend_entries(fig: go.Figure) -> int:
    """How many entries the figure's legend shows (traces of one legend group count once)."""
    return len({tr.legendgroup or tr.name for tr in fig.data
                if tr.showlegend is not False and (tr.name or tr.legendgroup)})


def _layout(fig: go.Figure, title: str | None = None, height: int = 320, legend_x: float = 1.02) -> go.Figure:
    # Tall enough that the legend shows every entry without scrolling: plotly caps a vertical legend at the
    # plot area's height (the figure less title and axis margins), about 22 px an entry plus its title.
    height = max(height, (56 if title else 30) + 90 + 26 + 22 * legend_entries(fig))
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", y=1.0, yanchor="top", yref="container",
                                 pad=dict(t=12, l=4), automargin=True) if title else None,
                      height=height, margin=dict(l=10, r=10, t=56 if title else 30, b=10, autoexpand=True),
                      legend={**LEGEND, "x": legend_x}, dragmode="zoom", hovermode="closest")
    return fig


def empty(message: str, height: int = 200) -> go.Figure:
    """A placeholder figure that says why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height=height)


def decisions_per_day(df: pd.DataFrame) -> go.Figure:
    """Decisions per day per system (columns: day, system_id, decisions); box-select a range of days."""
    if df is None or df.empty:
        return empty("No decisions yet")
    fig = px.bar(df, x="day", y="decisions", color="system_id", barmode="group")
    return _layout(fig, "Decisions per day (UTC)")


def metric_timeline(df: pd.DataFrame, anomalies: pd.DataFrame | None = None, title: str = "Health") -> go.Figure:
    """Metric series (ts, metric, value[, system_id]) one panel per metric; anomalies (start[, end], label) marked."""
    if df is None or df.empty:
        return empty("No metrics in this window")
    color = "system_id" if "system_id" in df.columns and df["system_id"].nunique() > 1 else None
    metrics = list(dict.fromkeys(df["metric"]))
    fig = px.line(df, x="ts", y="value", color=color, facet_row="metric", category_orders={"metric": metrics},
                  render_mode="webgl")
    fig.update_yaxes(matches=None, title=None)
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    _mark_windows(fig, anomalies)
    # the facet labels stand just right of the panels: the legend goes right of them
    return _layout(fig, title, height=max(260, 150 * len(metrics)), legend_x=1.06)


def _mark_windows(fig: go.Figure, windows: pd.DataFrame | None) -> None:
    if windows is None or windows.empty:
        return
    for row in windows.head(200).itertuples(index=False):
        start = getattr(row, "start", None)
        end = getattr(row, "end", None) or start
        if start is None or pd.isna(start):
            continue
        color = SEVERITY_COLORS.get(str(getattr(row, "severity", "high")).lower(), "#ea580c")
        if end is None or pd.isna(end) or end == start:
            fig.add_vline(x=start, line_color=color, line_dash="dot", opacity=0.7)
        else:
            fig.add_vrect(x0=start, x1=end, fillcolor=color, opacity=0.15, line_width=0)


def alerts_by_severity(df: pd.DataFrame) -> go.Figure:
    """Alert counts per severity (and detector): columns severity, detector, alerts."""
    if df is None or df.empty:
        return empty("No alerts")
    fig = px.bar(df, x="severity", y="alerts", color="detector" if "detector" in df.columns else None,
                 category_orders={"severity": SEVERITY_ORDER})
    return _layout(fig, "Alerts by severity", height=300)


def alert_timeline(df: pd.DataFrame) -> go.Figure:
    """Alerts over time, one row per detector, coloured by severity; customdata is the alert id (selectable)."""
    if df is None or df.empty:
        return empty("No alerts")
    data = df.copy()
    data["severity"] = data["severity"].astype(str).str.lower()
    fig = px.scatter(data, x="start", y="detector", color="severity", color_discrete_map=SEVERITY_COLORS,
                     custom_data=["alert_id"], hover_data=[c for c in ("alert_id", "system_id", "title", "principal")
                                                           if c in data.columns],
                     category_orders={"severity": SEVERITY_ORDER})
    fig.update_traces(marker=dict(size=11, line=dict(width=1, color="white")))
    return _layout(fig, "Alerts over time (box-select to narrow the queue)", height=300)


def activity(df: pd.DataFrame, window: tuple[Any, Any] | None = None, title: str = "Activity") -> go.Figure:
    """Counts over time (bucket, n[, series]) with an optional highlighted window, e.g. a principal's calls."""
    if df is None or df.empty:
        return empty("No activity in this window")
    xcol = "bucket" if "bucket" in df.columns else df.columns[0]
    ycol = "n" if "n" in df.columns else df.columns[1]
    series = next((c for c in ("series", "prediction", "principal", "system_id") if c in df.columns), None)
    fig = px.bar(df, x=xcol, y=ycol, color=series)
    if window and window[0] is not None:
        fig.add_vrect(x0=window[0], x1=window[1] or window[0], fillcolor="#ea580c", opacity=0.15, line_width=0)
    return _layout(fig, title, height=260)


def score_scatter(df: pd.DataFrame, title: str = "Decisions") -> go.Figure:
    """Decisions as points (ts, score, prediction, decision_id); lasso or box to select and narrow the table."""
    if df is None or df.empty:
        return empty("No decisions match")
    fig = px.scatter(df, x="ts", y="score", color="prediction" if "prediction" in df.columns else None,
                     custom_data=["decision_id"], render_mode="webgl",
                     hover_data=[c for c in ("decision_id", "principal", "model_version") if c in df.columns])
    fig.update_traces(marker=dict(size=5, opacity=0.7))
    return _layout(fig, title, height=300)


def histogram(df: pd.DataFrame, x: str, y: str = "n", color: str | None = None, title: str | None = None) -> go.Figure:
    """A pre-aggregated histogram (bin column x, count column y), e.g. the score distribution from DuckDB."""
    if df is None or df.empty:
        return empty("Nothing to show")
    fig = px.bar(df, x=x, y=y, color=color if color and color in df.columns else None, barmode="overlay")
    fig.update_traces(opacity=0.75)
    return _layout(fig, title, height=260)


def drift_lines(df: pd.DataFrame, value: str = "drift", title: str = "Feature drift over time") -> go.Figure:
    """Drift statistic per feature over time (bucket, feature, <value>): hover to read, box-select a period."""
    if df is None or df.empty:
        return empty("No drift computed for this window")
    xcol = "bucket" if "bucket" in df.columns else "ts"
    fig = px.line(df, x=xcol, y=value, color="feature", markers=True)
    return _layout(fig, title, height=340)


def drift_heatmap(df: pd.DataFrame, value: str = "drift", title: str = "Drift by feature and period") -> go.Figure:
    """Heatmap of a drift statistic, features down, periods across."""
    if df is None or df.empty:
        return empty("No drift computed for this window")
    xcol = "bucket" if "bucket" in df.columns else "ts"
    pivot = df.pivot_table(index="feature", columns=xcol, values=value, aggfunc="mean")
    fig = px.imshow(pivot, aspect="auto", color_continuous_scale="OrRd", origin="lower")
    return _layout(fig, title, height=max(240, 24 * len(pivot) + 80))


DRIFT_VERDICT_STYLE = {"pass": ("#2563eb", "circle"), "over": ("#ca8a04", "diamond"),
                       "drift": ("#b91c1c", "x"), "reference": ("#9ca3af", "circle-open"),
                       "new version": ("#9ca3af", "square-open")}


def drift_test(df: pd.DataFrame, title: str | None = None) -> go.Figure:
    """One drift test of one target per window, as the detector judged it (rows of detect.drift.windows for one
    target and test): the statistic, its threshold (dashed), the reference windows shaded, and a marker per
    verdict of the window (pass, over: some test over its threshold once, drift: an alert's windows; a window's
    verdict comes from all its tests, the hover says whether this one was over); box-select a period."""
    if df is None or df.empty:
        return empty("No drift judged for this choice")
    d = df.sort_values("window_start")
    fig = go.Figure()
    ref = d[d["verdict"] == "reference"]
    if not ref.empty:
        fig.add_vrect(x0=ref["window_start"].min(), x1=ref["window_end"].max(), fillcolor="#e5e7eb", opacity=0.5,
                      line_width=0, layer="below", annotation_text="reference", annotation_position="top left")
    fig.add_trace(go.Scatter(x=d["window_start"], y=d["threshold"], name="threshold", mode="lines",
                             line=dict(color="#b91c1c", dash="dash", shape="hv", width=1.5),
                             hovertemplate="%{x|%Y-%m-%d %H:%M}<br>threshold %{y:.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=d["window_start"], y=d["statistic"], name="statistic", mode="lines",
                             line=dict(color="#6b7280", width=1), hoverinfo="skip", showlegend=False))
    for verdict, (color, symbol) in DRIFT_VERDICT_STYLE.items():
        part = d[d["verdict"] == verdict]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["window_start"], y=part["statistic"], name=verdict, mode="markers",
            marker=dict(color=color, symbol=symbol, size=11 if verdict == "drift" else 8,
                        line=dict(width=2 if verdict == "drift" else 1, color=color)),
            customdata=pd.DataFrame({"n": part["n"], "thr": part["threshold"],
                                     "this": (part["statistic"] > part["threshold"]).map(
                                         {True: "over", False: "under"})}).to_numpy(),
            hovertemplate="%{x|%Y-%m-%d %H:%M}<br>statistic %{y:.4g} (%{customdata[2]} this test's threshold "
                          "%{customdata[1]:.4g})" f"<br>%{{customdata[0]:,}} decisions<br>window: {verdict}"
                          "<extra></extra>"))
    fig.update_yaxes(title_text=str(d["test"].iloc[0]) if "test" in d else None, rangemode="tozero")
    top, bar = d["statistic"].max(), d["threshold"].max()
    if bar > 0 and top > 10 * bar and (d["statistic"] > 0).all():  # a strong drift would flatten the bar
        fig.update_yaxes(type="log", rangemode="normal")
    return _layout(fig, title, height=340)


def bar_ranking(items: Mapping[str, float] | pd.DataFrame, title: str, x: str = "value",
                y: str = "feature") -> go.Figure:
    """A horizontal ranking (feature -> value), largest on top, e.g. mean |SHAP| change per feature."""
    df = pd.DataFrame({y: list(items.keys()), x: list(items.values())}) if isinstance(items, Mapping) else items
    if df is None or df.empty:
        return empty("Nothing to rank")
    df = df.sort_values(x, key=lambda s: s.abs())
    fig = px.bar(df, x=x, y=y, orientation="h")
    return _layout(fig, title, height=max(220, 22 * len(df) + 80))


def incident_timeline(events: Sequence[Mapping[str, Any]] | pd.DataFrame) -> go.Figure:
    """An incident's timeline: one marker per event (ts, kind, title), coloured by kind."""
    df = events if isinstance(events, pd.DataFrame) else pd.DataFrame(list(events))
    if df.empty or "ts" not in df.columns:
        return empty("No timeline events yet")
    kind = "kind" if "kind" in df.columns else None
    label = next((c for c in ("title", "summary", "text", "what") if c in df.columns), None)
    fig = px.scatter(df, x="ts", y=kind or [0] * len(df), color=kind, hover_data=[label] if label else None)
    fig.update_traces(marker=dict(size=12, symbol="diamond"))
    return _layout(fig, "Timeline", height=260)


def progress_bars(phases: Iterable[tuple[str, int, int]]) -> go.Figure:
    """Playbook progress per phase: (phase, done, total)."""
    rows = [{"phase": p, "done": d, "open": t - d} for p, d, t in phases]
    if not rows:
        return empty("No steps")
    df = pd.DataFrame(rows).melt(id_vars="phase", var_name="state", value_name="steps")
    fig = px.bar(df, x="steps", y="phase", color="state", orientation="h",
                 color_discrete_map={"done": "#16a34a", "open": "#d1d5db"})
    return _layout(fig, None, height=60 + 30 * len(rows))


def attribution_bars(expl: Mapping[str, Any], top: int = 12) -> go.Figure:
    """A SHAP waterfall from the baseline (expected output) to this decision's output, largest effects shown."""
    attrs = list(expl.get("attributions") or [])
    if not attrs:
        return empty("No attributions")
    shown_attrs, rest = attrs[:top], attrs[top:]
    labels = [f"{a['feature']} = {a.get('value')}" for a in shown_attrs]
    values = [float(a["shap"]) for a in shown_attrs]
    if rest:
        labels.append(f"{len(rest)} other features")
        values.append(float(sum(a["shap"] for a in rest)))
    base = float(expl.get("base_value") or 0.0)
    fig = go.Figure(go.Waterfall(
        orientation="h", y=["baseline", *labels[::-1], "output"],
        x=[base, *values[::-1], 0.0], measure=["absolute", *(["relative"] * len(values)), "total"],
        increasing=dict(marker=dict(color="#dc2626")), decreasing=dict(marker=dict(color="#2563eb")),
        hovertemplate="%{y}: %{x:+.4f}<extra></extra>"))
    return _layout(fig, f"Why {expl.get('decision_id', '')}: from baseline {base:.3f} to "
                        f"{float(expl.get('output') or 0):.3f}", height=max(300, 26 * (len(values) + 2) + 80))
