"""The flood detector with its decision-level work on Spark: bucket counts, per-principal window counts,
health figures and the implicated bursts are Spark jobs; the judgement (surge windows, culprits, severity)
is flood's own code or a line-for-line copy of it, run on the small results in Python/DuckDB.

Times travel as integer microseconds since the epoch, so DuckDB's and Spark's timestamp semantics never differ.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from workbench.detect import flood, metric_story
from workbench.detect.alerts import Alert
from workbench.detect.common import fmt_ts
from workbench.detect.context import Ctx, SystemScope
from workbench.lake.spark import EPOCH_2000_01_03_US

DAY_US = 86_400_000_000
MIN_US = 60_000_000
COLUMNS = ("decision_id", "principal", "us", "ts", "latency_ms", "status")


def _us(t: datetime) -> int:
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _ts(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


class SparkFlood:
    """flood.detect for one run, reading a system's rows from a Spark DataFrame of the lake."""

    def __init__(self, frames: dict[str, Any]) -> None:
        self.frames = frames  # system_id -> Spark DataFrame of that system's lake rows (with `us`)
        self.ran_on: dict[str, str] = {}

    def __call__(self, ctx: Ctx) -> list[Alert]:
        """Surge windows per system, as flood.detect finds them."""
        out: list[Alert] = []
        for s in ctx.systems:
            if s.n_scope < 50:
                continue
            if s.system_id not in self.frames:  # rows only the workspace holds: DuckDB judges this system
                self.ran_on[s.system_id] = "duckdb"
                out += flood._system(ctx, s)
                continue
            self.ran_on[s.system_id] = "spark"
            out += self._system(ctx, s)
        return out

    def _rows(self, ctx: Ctx, s: SystemScope) -> tuple[Any, Any]:
        """The run's rows of the system (its time range) and the unclaimed ones."""
        from pyspark.sql import functions as F

        spark = self.frames[s.system_id].sparkSession
        lo, hi = _us(min(s.since, s.ref_since)), _us(max(s.until, s.ref_until))
        run = self.frames[s.system_id].where((F.col("us") >= lo) & (F.col("us") <= hi)) \
            .select(*COLUMNS)  # only what flood reads: the cache holds five narrow columns, not the features
        claimed = [r[0] for r in ctx.ws.rows("SELECT DISTINCT decision_id FROM _claimed WHERE system_id = ?",
                                             [s.system_id])]
        if not claimed:
            return run, run
        ids = spark.createDataFrame([(c,) for c in claimed], "decision_id string")
        return run, run.join(F.broadcast(ids), "decision_id", "left_anti")

    def _system(self, ctx: Ctx, s: SystemScope) -> list[Alert]:
        from pyspark.sql import functions as F

        run, free = self._rows(ctx, s)
        run, free = run.cache(), free.cache()  # the system's rows are read from the lake once per run
        r = free.agg(F.min("us"), F.max("us"), F.count(F.lit(1))).first()
        if r[0] is None:
            free.unpersist()
            run.unpersist()
            return []
        t_min, t_max, n = int(r[0]), int(r[1]), int(r[2])
        bucket = flood.bucket_minutes(n, (t_max - t_min) / MIN_US)
        b_us = bucket * MIN_US
        t_min = max(t_min, t_max - b_us * flood.MAX_BUCKETS)
        start = (t_min - EPOCH_2000_01_03_US) // b_us * b_us + EPOCH_2000_01_03_US
        got = {int(x[0]): float(x[1]) for x in free.groupBy(
            (F.floor((F.col("us") - EPOCH_2000_01_03_US) / b_us) * b_us + EPOCH_2000_01_03_US).alias("bt")
        ).count().collect()}
        grid = list(range(start, t_max, b_us))
        counts = pd.DataFrame({"bt": pd.to_datetime(pd.Series(grid, dtype="int64"), unit="us", utc=True),
                               "n": [got.get(g, 0.0) for g in grid]})
        out: list[Alert] = []
        if len(counts) >= 3:
            c, runs = flood.surge_windows(counts, bucket)
            days = max(1, int(run.select(F.countDistinct(F.to_date("ts"))).first()[0] or 1) - 1)
            for k, (i0, i1) in enumerate(runs):
                w0 = _ts(grid[i0])
                w1 = _ts(grid[i1] + b_us)
                if w1 < s.since or w0 > s.until:
                    continue
                seg = c.iloc[i0:i1 + 1]
                observed, expected = float(seg["n"].sum()), float(seg["exp"].sum())
                alert = self._window(ctx, s, run, free, k, w0, w1, bucket, seg, observed, expected, days)
                if alert:
                    out.append(alert)
                    # the window's culprits are claimed now: later windows judge the rest, as flood does
                    free.unpersist()
                    free = self._rows(ctx, s)[1].cache()
        free.unpersist()
        run.unpersist()
        return out

    def _per_principal(self, run: Any, free: Any, w0: datetime, w1: datetime, days: int) -> list[dict[str, Any]]:
        from pyspark.sql import functions as F

        u0, u1 = _us(w0), _us(w1)
        day0 = u0 // DAY_US * DAY_US
        tod = F.col("us") - F.floor(F.col("us") / DAY_US) * DAY_US
        inw = free.where((F.col("us") >= u0) & (F.col("us") < u1)).groupBy("principal").agg(F.count("*").alias("n"))
        other = free.where((F.floor(F.col("us") / DAY_US) != u0 // DAY_US) & (tod >= u0 - day0) & (tod < u1 - day0)) \
            .groupBy("principal").agg(F.count("*").alias("o"))
        hist = run.where((F.col("us") < u0 - DAY_US) | (F.col("us") > u1 + DAY_US)) \
            .groupBy("principal").agg(F.count("*").alias("history"))
        rows = inw.join(other, "principal", "left").join(hist, "principal", "left").collect()
        per = [{"principal": x["principal"], "n": int(x["n"]), "expected": (x["o"] or 0) / float(days),
                "history": int(x["history"] or 0)} for x in rows]
        per.sort(key=lambda p: (-(p["n"] - p["expected"]), p["principal"] is None, p["principal"] or ""))
        return per

    def _bursts(self, free: Any, names: list[str], w0: datetime, w1: datetime) -> list[tuple]:
        """(decision_id, us) of each culprit's bursts of activity that overlap the window."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        u0, u1 = _us(w0), _us(w1)
        r = free.where(F.col("principal").isin(names) & (F.col("us") >= u0 - 3 * 3600 * 1_000_000)
                       & (F.col("us") < u1 + 3 * 3600 * 1_000_000)).select("decision_id", "principal", "us")
        gap = flood.BURST_GAP_MINUTES * MIN_US
        w_lag = Window.partitionBy("principal").orderBy("us")
        w_sum = Window.partitionBy("principal").orderBy("us", "decision_id").rowsBetween(
            Window.unboundedPreceding, Window.currentRow)
        prev = F.lag("us").over(w_lag)
        g = r.withColumn("brk", F.when(prev.isNotNull() & (F.col("us") - prev <= gap), 0).otherwise(1))
        b = g.withColumn("burst", F.sum("brk").over(w_sum))
        keep = b.groupBy("principal", "burst").agg(F.max("us").alias("hi"), F.min("us").alias("lo")) \
            .where((F.col("hi") >= u0) & (F.col("lo") < u1)).select("principal", "burst")
        return [(x[0], int(x[1])) for x in b.join(keep, ["principal", "burst"]).select("decision_id", "us").collect()]

    def _health(self, run: Any, w0: datetime, w1: datetime) -> dict[str, Any]:
        from pyspark.sql import functions as F

        u0, u1 = _us(w0), _us(w1)
        day0 = u0 // DAY_US * DAY_US
        tod = F.col("us") - F.floor(F.col("us") / DAY_US) * DAY_US
        inw = (F.col("us") >= u0) & (F.col("us") < u1)
        oth = F.floor(F.col("us") / DAY_US) != u0 // DAY_US
        err = (F.col("status") == "error").cast("int")
        row = run.where((tod >= u0 - day0) & (tod < u1 - day0)).agg(
            F.percentile(F.when(inw, F.col("latency_ms")), F.lit(0.95)),
            F.percentile(F.when(oth, F.col("latency_ms")), F.lit(0.95)),
            F.avg(F.when(inw, err)), F.avg(F.when(oth, err))).first()
        p95_in, p95_other, err_in, err_other = row
        out = {"latency_p95_ms_window": p95_in, "latency_p95_ms_usual": p95_other, "error_rate_window": err_in,
               "error_rate_usual": err_other}
        out["degraded"] = bool((p95_in and p95_other and p95_in > 1.5 * p95_other)
                               or (err_in is not None and err_other is not None and err_in > 2 * err_other + 0.005))
        return out

    def _window(self, ctx: Ctx, s: SystemScope, run: Any, free: Any, k: int, w0: datetime, w1: datetime, bucket: int,
                seg: pd.DataFrame, observed: float, expected: float, days: int) -> Alert | None:
        # a copy of flood._window's judgement over Spark's results (keep the two in step)
        excess = observed - expected
        culprits = []
        for p in self._per_principal(run, free, w0, w1, days):
            ex = p["n"] - p["expected"]
            if ex < flood.MIN_EXCESS_SHARE * excess or p["n"] < flood.RATIO_MIN * max(p["expected"], 1.0):
                break
            culprits.append(p | {"excess": ex, "share_of_excess": ex / max(excess, 1.0), "new": p["history"] == 0})
        key = f"{k}|{w0.isoformat()}"
        names = [p["principal"] for p in culprits]
        t0, t1 = w0, w1
        if names:
            hits = self._bursts(free, names, w0, w1)
            ctx.ws.execute("INSERT INTO _hits SELECT ?, ?, ?, unnest(?::VARCHAR[])",
                           [flood.NAME, key, s.system_id, [h[0] for h in hits]])
            ctx.claim(flood.NAME, s, [key])
            t0, t1 = (_ts(min(h[1] for h in hits)), _ts(max(h[1] for h in hits))) if hits else (None, None)
        return _alert(ctx, s, w0, w1, bucket, seg, observed, expected, excess, culprits, names, key, t0, t1,
                      self._health(run, w0, w1))


def _alert(ctx: Ctx, s: SystemScope, w0, w1, bucket: int, seg: pd.DataFrame, observed: float, expected: float,
           excess: float, culprits: list[dict], names: list[str], key: str, t0, t1, health: dict) -> Alert:
    ratio = observed / max(expected, 1.0)
    peak = seg.loc[seg["z"].idxmax()]
    exported = metric_story.ingested(ctx, s, w0, w1)
    health["source"] = "decision log" + (" and ingested metrics" if exported else "")
    health["ingested"] = exported
    health["degraded"] = bool(health["degraded"] or metric_story.degraded(exported))
    sev = "high" if names else "medium"
    if names and ratio >= 5 and health.get("degraded"):
        sev = "critical"
    elif ratio < 3:
        sev = "medium" if names else "low"
    who = (", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")) if names else \
        "no single principal (broad surge)"
    told = metric_story.headline(exported)
    summary = (f"{s.system_id} received {observed:.0f} requests between {fmt_ts(w0)} and {fmt_ts(w1)}, "
               f"{ratio:.1f}x the {expected:.0f} expected for that time of day, driven by {who}"
               + (f"; {told}" if told else "") + ".")
    return Alert(
        flood.NAME, s.system_id, sev, t0, t1, summary,
        {"observed_requests": observed, "expected_requests": expected, "ratio": ratio, "excess": excess,
         "peak_bucket": {"start": pd.Timestamp(peak["bt"]).to_pydatetime(), "observed": peak["n"],
                         "expected": peak["exp"], "z": peak["z"]},
         "bucket_minutes": bucket, "principals": names,
         "culprits": [{k2: p[k2] for k2 in ("principal", "n", "expected", "excess", "share_of_excess", "new")}
                      for p in culprits],
         "metrics": health, "engine": "spark",
         "thresholds": {"z": flood.Z_MIN, "ratio": flood.RATIO_MIN, "min_excess_share": flood.MIN_EXCESS_SHARE,
                        "baseline": "median and MAD of the same time-of-day slot over all days"}},
        atlas=list(flood.ATLAS), principal=names[0] if names else None, metric="request_rate",
        score=float(peak["z"]), hits=key if names else None)
