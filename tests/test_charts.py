"""Shared plotly figures: legends never run into titles, and every legend entry fits without scrolling."""

from __future__ import annotations

import pandas as pd

from workbench import charts


def _alerts(n: int) -> pd.DataFrame:
    return pd.DataFrame({"severity": ["critical"] * n, "detector": [f"detector_{i}" for i in range(n)],
                         "alerts": [1] * n})


def test_legend_right_of_the_plot_not_above_it() -> None:
    fig = charts.alerts_by_severity(_alerts(8))
    legend, title = fig.layout.legend, fig.layout.title
    assert legend.orientation == "v" and legend.x >= 1 and legend.xanchor == "left"
    assert legend.yanchor == "top" and legend.y <= 1  # inside the plot's height: cannot reach the title
    assert title.text == "Alerts by severity" and title.yref == "container" and title.automargin


def test_height_grows_with_the_legend() -> None:
    few, many = charts.alerts_by_severity(_alerts(2)), charts.alerts_by_severity(_alerts(14))
    assert charts.legend_entries(few) == 2 and charts.legend_entries(many) == 14
    assert many.layout.height > few.layout.height and many.layout.height >= 22 * 14


def test_faceted_metrics_count_one_entry_per_series() -> None:
    ts = pd.date_range("2026-01-01", periods=6, freq="h").tolist()
    df = pd.DataFrame({"ts": ts * 4, "metric": ["a"] * 12 + ["b"] * 12, "value": range(24),
                       "system_id": (["x"] * 6 + ["y"] * 6) * 2})
    fig = charts.metric_timeline(df)
    assert charts.legend_entries(fig) == 2 and fig.layout.legend.x > 1.02  # right of the facet labels
