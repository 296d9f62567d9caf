"""Drift windows chosen from the data, the reference that holds enough of them, and binned counts per window.

A window is a calendar period (day, week, month: the shortest that holds about MIN_WINDOW decisions at the
system's rate) or, when even a month holds fewer, a run of MIN_WINDOW decisions (chunks, as NannyML does).
`WORKBENCH_DRIFT_WINDOW` (day, week, month, or a number of decisions) overrides the choice. Only complete windows
are judged: a calendar window must be covered by the data for 90% of its length (a week judged on Monday alone
would read the weekly cycle as drift), a chunk must hold 90% of its decisions.
The reference is made of whole windows: those overlapping the configured reference window. When they hold fewer
than REF_MIN decisions or REF_WINDOWS complete windows (a low-volume system's first week), earlier windows are
added, then later ones, never past the first 30% of the data (or the configured reference's own end).
All counting is done by DuckDB (GROUP BY window and bin); Python sees arrays of windows x bins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from workbench import settings
from workbench.detect.context import Ctx, SystemScope
from workbench.errors import WorkbenchError
from workbench.store.sqltext import quote_literal

MIN_WINDOW = 500        # decisions a window should hold: KS then sees a ~0.3 sd shift with 80% power
REF_MIN = 2000          # decisions the reference should hold ...
REF_WINDOWS = 5         # ... in at least this many complete windows (for the window-to-window variation)
REF_MAX_FRACTION = 0.3  # extending the reference stops at the first 30% of the data
MIN_TEST = 30           # a window with fewer decisions is not judged
COMPLETE = 0.9
NUM_BINS = 20
MAX_CATEGORIES = 50
CAT_MIN_SHARE = 0.005
SAMPLE_ROWS = 200_000   # reference rows used for bin edges (seeded reservoir sample above this)
SEED = 13
PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}


@dataclass(frozen=True)
class Rule:
    """How windows are cut: a calendar period, or a count of decisions."""

    kind: str            # day | week | month | count
    size: int = 0        # decisions per window (count)
    reason: str = ""

    @property
    def label(self) -> str:
        """Human name: '1 week' or '500 decisions'."""
        return f"{self.size:,} decisions" if self.kind == "count" else f"1 {self.kind}"


def parse_rule(text: str | int | None) -> Rule | None:
    """'auto' (or empty) -> None; 'day'/'week'/'month'; a whole number of decisions per window."""
    value = str(text if text is not None else "").strip().lower()
    if value in ("", "auto"):
        return None
    value = {"daily": "day", "weekly": "week", "monthly": "month", "1d": "day", "7d": "week"}.get(value, value)
    if value in PERIODS:
        return Rule(value, reason="set")
    if value.isdigit() and int(value) >= 50:
        return Rule("count", int(value), reason="set")
    raise WorkbenchError(f"drift window {text!r}: use auto, day, week, month or a number of decisions >= 50")


def setting_rule() -> Rule | None:
    """The window rule from the drift_window setting (None = chosen from the data)."""
    return parse_rule(settings.get("drift_window") if "drift_window" in settings.SETTINGS else "auto")


def choose(n: int, first: datetime, last: datetime, override: Rule | None = None) -> Rule:
    """The window rule: the override, else the shortest calendar period that holds MIN_WINDOW decisions."""
    if override is not None:
        return override
    days = max((last - first).total_seconds() / 86400.0, 1.0 / 24)
    rate = n / days
    for kind, length in PERIODS.items():
        per = rate * length.days
        if per >= MIN_WINDOW:
            return Rule(kind, reason=f"auto: about {per:,.0f} decisions a {kind}, the shortest calendar period "
                                     f"holding at least {MIN_WINDOW}")
    return Rule("count", MIN_WINDOW, reason=f"auto: about {rate * 30:,.0f} decisions a month, fewer than "
                                             f"{MIN_WINDOW}: windows of {MIN_WINDOW} decisions")


def lit(ts: datetime) -> str:
    """A TIMESTAMPTZ literal."""
    return f"TIMESTAMPTZ '{pd.Timestamp(ts).isoformat()}'"


@dataclass
class Plan:
    """Windows of one system and which of them are the reference and which are judged."""

    rule: Rule
    src: str                 # FROM clause: the system's unclaimed decisions with their window index w
    windows: pd.DataFrame    # w, t0, t1, n, complete, role (reference | monitored | skipped | before)
    ref_t0: datetime
    ref_t1: datetime
    n_ref: int
    configured: dict
    extended: str | None

    @property
    def ref(self) -> pd.DataFrame:
        """The reference windows."""
        return self.windows[self.windows["role"] == "reference"]

    @property
    def monitored(self) -> pd.DataFrame:
        """The windows judged against the reference."""
        return self.windows[self.windows["role"] == "monitored"]


def plan(ctx: Ctx, s: SystemScope, override: Rule | None = None) -> Plan | None:
    """Cut the system's unclaimed decisions into windows and pick the reference; None without data."""
    ws = ctx.ws
    base = f"(SELECT * FROM {s.table} WHERE NOT claimed AND ts <= {lit(s.until)})"
    row = ws.one(f"SELECT count(*), min(ts), max(ts) FROM {base}")
    if not row or not row[0]:
        return None
    n, first, last = int(row[0]), row[1], row[2]
    rule = choose(n, first, last, override)
    if rule.kind == "count":
        bounds = [r[0] for r in ws.rows(f"""
            SELECT ts FROM (SELECT ts, row_number() OVER (ORDER BY ts, decision_id) - 1 AS rn FROM {base})
            WHERE rn % {rule.size} = 0 ORDER BY ts""")]
        ws.execute("CREATE OR REPLACE TEMP TABLE _dwb(w INTEGER, t0 TIMESTAMPTZ)")
        ws.execute("INSERT INTO _dwb SELECT unnest(range(len(?::TIMESTAMPTZ[])))::INTEGER, unnest(?::TIMESTAMPTZ[])",
                   [bounds, bounds])
        src = f"(SELECT d.*, b.w FROM {base} d ASOF JOIN _dwb b ON d.ts >= b.t0)"
    else:
        # the window index by arithmetic on UTC microseconds (no calendar function per row)
        start = pd.Timestamp(ws.scalar(f"SELECT date_trunc('{rule.kind}', {lit(first)})"))
        if rule.kind == "month":
            naive = "make_timestamp(epoch_us(ts))"
            w_sql = f"((year({naive}) - {start.year}) * 12 + month({naive}) - {start.month})::INTEGER"
        else:
            step = int(PERIODS[rule.kind].total_seconds() * 1_000_000)
            w_sql = f"((epoch_us(ts) - {int(start.value // 1000)}) // {step})::INTEGER"
        src = f"(SELECT *, {w_sql} AS w FROM {base})"
    win = ws.df(f"SELECT w, count(*) AS n, min(ts) AS first, max(ts) AS last FROM {src} GROUP BY w ORDER BY w")
    if rule.kind == "count":
        win["t0"] = win["first"]
        win["t1"] = win["t0"].shift(-1).fillna(win["last"].iloc[-1])
        win["complete"] = win["n"] >= COMPLETE * rule.size
    else:
        win["t0"] = [start + (pd.DateOffset(months=int(w)) if rule.kind == "month" else PERIODS[rule.kind] * int(w))
                     for w in win["w"]]
        win["t1"] = [pd.Timestamp(t) + _period(rule.kind) for t in win["t0"]]
        lo = np.maximum(pd.to_datetime(win["t0"]), pd.Timestamp(first))
        hi = np.minimum(pd.to_datetime(win["t1"]), pd.Timestamp(last))
        win["complete"] = (hi - lo) >= (pd.to_datetime(win["t1"]) - pd.to_datetime(win["t0"])) * COMPLETE
    win = win.sort_values("w").reset_index(drop=True)
    return _reference(s, rule, src, win, first, last)


def _period(kind: str) -> pd.Timedelta | pd.DateOffset:
    return pd.DateOffset(months=1) if kind == "month" else pd.Timedelta(PERIODS[kind])


def _reference(s: SystemScope, rule: Rule, src: str, win: pd.DataFrame, first: datetime, last: datetime) -> Plan:
    t0 = pd.to_datetime(win["t0"])
    t1 = pd.to_datetime(win["t1"])
    inside = np.flatnonzero((t0 < pd.Timestamp(s.ref_until)) & (t1 > pd.Timestamp(s.ref_since)))
    lo, hi = (int(inside[0]), int(inside[-1])) if inside.size else (0, 0)
    cap = max(t1.iloc[hi], pd.Timestamp(first) + (pd.Timestamp(last) - pd.Timestamp(first)) * REF_MAX_FRACTION)

    def enough(a: int, b: int) -> bool:
        part = win.iloc[a:b + 1]
        return int(part["n"].sum()) >= REF_MIN and int(part["complete"].sum()) >= REF_WINDOWS

    start = (lo, hi)
    while not enough(lo, hi) and lo > 0:
        lo -= 1
    while not enough(lo, hi) and hi + 1 < len(win) - 1 and t1.iloc[hi + 1] <= cap:
        hi += 1
    extended = None
    if (lo, hi) != start:
        extended = (f"the configured reference held {int(win.iloc[start[0]:start[1] + 1]['n'].sum()):,} decisions "
                    f"in {int(win.iloc[start[0]:start[1] + 1]['complete'].sum())} complete windows; extended to "
                    f"{int(win.iloc[lo:hi + 1]['n'].sum()):,} in {int(win.iloc[lo:hi + 1]['complete'].sum())}")
    role = np.full(len(win), "skipped", dtype=object)
    role[:lo] = "before"
    role[lo:hi + 1] = "reference"
    after = np.arange(len(win)) > hi
    judged = after & win["complete"].to_numpy() & (win["n"].to_numpy() >= MIN_TEST) \
        & (t1 > pd.Timestamp(s.since)).to_numpy()
    role[judged] = "monitored"
    win["role"] = role
    ref = win.iloc[lo:hi + 1]
    return Plan(rule, src, win, t0.iloc[lo].to_pydatetime(), t1.iloc[hi].to_pydatetime(), int(ref["n"].sum()),
                {"since": s.ref_since, "until": s.ref_until, "source": s.ref_source}, extended)


@dataclass
class Target:
    """One thing judged for drift: an input feature, the prediction or the score."""

    name: str
    kind: str          # feature | prediction | score
    type: str          # number | category
    col: str           # column in the run table


@dataclass
class Binned:
    """A target's bins (from the reference; bin 0 = missing) and its counts per window."""

    target: Target
    expr: str                    # SQL: the bin of a row
    labels: list[str]
    centers: np.ndarray | None   # numbers: the reference median of each non-missing bin
    scale: float                 # numbers: the reference standard deviation
    ref_median: float | None = None
    counts: np.ndarray | None = None  # windows x bins, rows in plan.windows order


def bins(ctx: Ctx, p: Plan, t: Target, ref: str) -> Binned | None:
    """A target's bins from its reference values (column `ref` of the `_dwr` sample): quantiles for numbers, its
    frequent values for categories."""
    ws = ctx.ws
    if t.type == "number":
        col = f"{t.col}::DOUBLE"
        nb = int(min(NUM_BINS, max(5, p.n_ref // 100)))
        edge_levels = [i / nb for i in range(1, nb)]
        mid_levels = [(i + 0.5) / nb for i in range(nb)]
        row = ws.one(f"SELECT quantile_disc(v, {edge_levels}), quantile_disc(v, {mid_levels}), stddev_pop(v), "
                     f"median(v) FROM (SELECT {ref}::DOUBLE AS v FROM _dwr) WHERE isfinite(v)")
        if not row or row[0] is None:
            return None
        edges = sorted({float(e) for e in row[0]})
        mids = np.array(row[1], dtype=float)
        # each bin sits at the median of the reference's mid-quantiles inside it (its lower edge if none are)
        lower = [-np.inf] + edges
        upper = edges + [np.inf]
        centers = np.array([float(np.median(mids[(mids >= a) & (mids < b)])) if ((mids >= a) & (mids < b)).any()
                            else (a if np.isfinite(a) else b) for a, b in zip(lower, upper, strict=True)])
        cases = " ".join(f"WHEN {col} < {e!r} THEN {i + 1}" for i, e in enumerate(edges))
        expr = f"CASE WHEN {col} IS NULL OR NOT isfinite({col}) THEN 0 {cases} ELSE {len(edges) + 1} END"
        labels = (["(missing)", f"< {edges[0]:.4g}"]
                  + [f"{a:.4g} - {b:.4g}" for a, b in zip(edges, edges[1:], strict=False)] + [f">= {edges[-1]:.4g}"])
        scale = float(row[2] or 0.0) or float(np.ptp(centers)) or 1.0
        return Binned(t, expr, labels, np.maximum.accumulate(centers), scale,
                      float(row[3]) if row[3] is not None else None)
    col = f"{t.col}::VARCHAR"
    rows = ws.rows(f"SELECT {ref}::VARCHAR AS v, count(*) AS c FROM _dwr WHERE {ref} IS NOT NULL GROUP BY 1 "
                   f"ORDER BY 2 DESC, 1 LIMIT 1000")
    total = sum(c for _, c in rows)
    if not total:
        return None
    cats = [v for v, c in rows if c >= CAT_MIN_SHARE * total][:MAX_CATEGORIES]
    lst = "[" + ", ".join(quote_literal(c) for c in cats) + "]::VARCHAR[]"
    expr = f"CASE WHEN {col} IS NULL THEN 0 ELSE coalesce(list_position({lst}, {col}), {len(cats) + 1}) END"
    return Binned(t, expr, ["(missing)"] + cats + ["(other)"], None, 1.0)


def binned(ctx: Ctx, p: Plan, targets: list[Target]) -> list[Binned]:
    """Every target's bins, then its counts per window and bin, all counted in one pass over the decisions.

    Also sets p.windows['same_version']: the share of each window's decisions made by a model version that the
    reference holds (at least 1% of it)."""
    ws = ctx.ws
    # the reference values of every target, one seeded reservoir sample of rows above SAMPLE_ROWS (one pass)
    ref = (f"SELECT model_version{''.join(f', {t.col} AS r{i}' for i, t in enumerate(targets))} FROM {p.src} "
           f"WHERE ts >= {lit(p.ref_t0)} AND ts < {lit(p.ref_t1)}")
    if p.n_ref > SAMPLE_ROWS:
        ref = f"SELECT * FROM ({ref}) USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE ({SEED})"
    ws.execute(f"CREATE OR REPLACE TEMP TABLE _dwr AS {ref}")
    try:
        out = [b for b in (bins(ctx, p, t, f"r{i}") for i, t in enumerate(targets)) if b is not None]
        versions = [r[0] for r in ws.rows("SELECT model_version FROM _dwr GROUP BY 1 "
                                          "HAVING count(*) >= 0.01 * (SELECT count(*) FROM _dwr)")]
    finally:
        ws.execute("DROP TABLE IF EXISTS _dwr")
    cols = "".join(f", ({b.expr})::SMALLINT AS b{i}" for i, b in enumerate(out))
    ws.execute(f"CREATE OR REPLACE TEMP TABLE _dwx AS SELECT w, list_contains(?::VARCHAR[], model_version) AS same"
               f"{cols} FROM {p.src} WHERE ts >= {lit(p.ref_t0)}", [versions])
    try:
        index = {int(w): i for i, w in enumerate(p.windows["w"])}
        share = dict(ws.rows("SELECT w, avg(same::INTEGER) FROM _dwx GROUP BY w"))
        p.windows["same_version"] = [float(share.get(int(w), 1.0)) for w in p.windows["w"]]
        for i, b in enumerate(out):
            rows = np.array(ws.rows(f"SELECT w, b{i}, count(*) FROM _dwx GROUP BY ALL"), dtype=np.int64).reshape(-1, 3)
            b.counts = np.zeros((len(p.windows), len(b.labels)))
            pos = np.array([index.get(int(w), -1) for w in rows[:, 0]], dtype=np.int64)
            keep = pos >= 0
            np.add.at(b.counts, (pos[keep], rows[keep, 1]), rows[keep, 2])
    finally:
        ws.execute("DROP TABLE IF EXISTS _dwx")
    return out
