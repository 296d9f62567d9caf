"""Decision-level reads for the app and notebooks: search, fetch, principal activity, metrics, nearest normal.

Every read of decision rows needs `read:decisions`, masks personal features for roles without `read:personal`,
and is audited as `read.decisions` (who saw which decisions, or which filter). Aggregates need only
`read:aggregates`. All SQL is parameterised; feature names are checked against feature_catalog and
never reach the SQL text (names and values are parameters; feature columns are renamed in pandas).

The reads live in ``search`` (search, fetch), ``aggregates`` (principal activity, metric points) and
``nearest`` (nearest normal), on the SQL helpers of ``sql``; this package is the one place to import them
from. ``sample`` thins decisions for charts, ``overview`` holds the landing page's aggregates and ``sandbox``
runs read-only ad-hoc SQL.
"""

from __future__ import annotations

from workbench.explore.aggregates import metric_window, principal_activity
from workbench.explore.nearest import alerted_ids_sql, nearest_normal
from workbench.explore.search import BASE_COLUMNS, OPS, Filter, feature_types, get_decisions, search_decisions
from workbench.explore.sql import quote_ident

__all__ = [
    "BASE_COLUMNS",
    "OPS",
    "Filter",
    "alerted_ids_sql",
    "feature_types",
    "get_decisions",
    "metric_window",
    "nearest_normal",
    "principal_activity",
    "quote_ident",
    "search_decisions",
]
