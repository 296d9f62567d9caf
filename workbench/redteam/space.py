"""The input space an attacker works in, learned from the logged decisions with DuckDB aggregates.

Numbers get their range, quantiles and whether they are whole; text features their categories (by frequency);
booleans their share. "Mutable" features are the ones an applicant or customer can change: numbers whose
name does not say they are history or identity (age, delinquencies, account age, hour, counts, term ...),
unless the caller names them. Attacks keep mutable values inside the plausible range (the logged 1st-99th
percentile) and keep categories to the ones seen in the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.explain import features
from workbench.store import Workspace
from workbench.store.sqltext import typed_json_fields

QUANTILES = [i / 20 for i in range(21)] + [0.01, 0.99]
SAMPLE_ROWS = 100_000
MAX_CATEGORIES = 50
IMMUTABLE_HINTS = re.compile(r"age|delinq|history|hour|count|num_|term|score|avg_|_30d|_days|tenure|since",
                             re.IGNORECASE)


@dataclass
class FeatureSpec:
    """One feature as logged: type, range and quantiles (numbers), categories (text), whether it is mutable."""

    name: str
    kind: str                       # number | string | bool
    mutable: bool = False
    lo: float = 0.0                 # logged minimum / maximum
    hi: float = 0.0
    p01: float = 0.0                # plausible range: 1st and 99th percentile
    p99: float = 0.0
    integer: bool = False
    quantiles: list[float] = field(default_factory=list)   # 0, 0.05, ..., 1
    categories: list[Any] = field(default_factory=list)    # most frequent first
    weights: list[float] = field(default_factory=list)
    null_share: float = 0.0

    def step(self, parts: int = 20) -> float:
        """A move of 1/parts of the plausible range (at least 1 for whole numbers)."""
        width = (self.p99 - self.p01) or (self.hi - self.lo) or 1.0
        return max(width / parts, 1.0) if self.integer else width / parts

    def clip(self, x: np.ndarray, plausible: bool = True) -> np.ndarray:
        """Values clipped to the plausible (or logged) range and rounded for whole-number features."""
        lo, hi = (self.p01, self.p99) if plausible else (self.lo, self.hi)
        out = np.clip(np.asarray(x, dtype=np.float64), lo, hi)
        return np.round(out) if self.integer else out

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no quantile list)."""
        d = {"name": self.name, "kind": self.kind, "mutable": self.mutable}
        if self.kind == "number":
            d |= {"lo": self.lo, "hi": self.hi, "p01": self.p01, "p99": self.p99, "integer": self.integer}
        elif self.kind == "string":
            d["categories"] = len(self.categories)
        return d


@dataclass
class Space:
    """Every logged feature of a system, in catalog order."""

    system_id: str
    specs: dict[str, FeatureSpec]
    rows: int

    @property
    def types(self) -> dict[str, str]:
        """Feature -> logged type, as features.catalog gives it."""
        return {n: s.kind for n, s in self.specs.items()}

    def mutable(self) -> list[FeatureSpec]:
        """The features an attack may change."""
        return [s for s in self.specs.values() if s.mutable]

    def sample(self, n: int, rng: np.random.Generator, mode: str = "marginal") -> pd.DataFrame:
        """n synthetic inputs: each feature drawn from its logged quantiles ('marginal') or uniformly."""
        cols: dict[str, Any] = {}
        for s in self.specs.values():
            if s.kind == "number":
                if mode == "uniform":
                    x = s.lo + rng.random(n) * (s.hi - s.lo)
                else:
                    grid = np.asarray(s.quantiles[:21], dtype=np.float64)
                    x = np.interp(rng.random(n) * 20, np.arange(21), grid)
                cols[s.name] = np.round(x) if s.integer else x
            elif s.kind == "bool":
                p = s.weights[0] if s.weights else 0.5
                cols[s.name] = rng.random(n) < (0.5 if mode == "uniform" else p)
            else:
                cats = np.asarray(s.categories, dtype=object)
                if not len(cats):
                    cols[s.name] = np.full(n, None, dtype=object)
                    continue
                w = np.asarray(s.weights, dtype=np.float64) if mode != "uniform" else np.ones(len(cats))
                cols[s.name] = cats[rng.choice(len(cats), n, p=w / w.sum())]
        return pd.DataFrame(cols)


def learn(ws: Workspace, system_id: str, mutable: list[str] | None = None) -> Space:
    """The feature space of a system from its logged decisions (a hash sample of at most SAMPLE_ROWS)."""
    types = features.catalog(ws, system_id)
    if not types:
        raise WorkbenchError(f"no logged features for system {system_id}: the attack needs its decision log to "
                             "learn the features' ranges and types")
    unknown = sorted(set(mutable or []) - set(types))
    if unknown:
        raise WorkbenchError(f"--mutable names features {system_id} does not log: {', '.join(unknown)}")
    names = list(types)
    inner, items, param = typed_json_fields("d.features", types, "_fl")
    cols = ", ".join(f"{sql} AS c{i}" for i, sql in enumerate(items))
    ws.execute(f"CREATE OR REPLACE TEMP TABLE _rt_space AS SELECT {cols} FROM (SELECT {inner} AS _fl FROM "
               f"(SELECT features FROM decisions d WHERE system_id = ? ORDER BY hash(decision_id) "
               f"LIMIT {SAMPLE_ROWS}) d)", [param, system_id])
    rows = int(ws.scalar("SELECT count(*) FROM _rt_space") or 0)
    specs: dict[str, FeatureSpec] = {}
    for i, name in enumerate(names):
        kind = types[name]
        s = FeatureSpec(name, kind)
        c = f"c{i}"
        if kind == "number":
            r = ws.one(f"SELECT min({c}), max({c}), quantile_cont({c}, ?::DOUBLE[]), "
                       f"coalesce(bool_and({c} = round({c})), false), count({c}) FROM _rt_space", [QUANTILES])
            if r[0] is None:
                s.quantiles = [0.0] * 21
            else:
                q = [float(v) for v in r[2]]
                s.lo, s.hi, s.quantiles, s.integer = float(r[0]), float(r[1]), q[:21], bool(r[3])
                s.p01, s.p99 = q[21], q[22]
                if s.p99 <= s.p01:
                    s.p01, s.p99 = s.lo, s.hi
            s.null_share = 1.0 - (r[4] or 0) / max(rows, 1)
            s.mutable = name in mutable if mutable is not None else not IMMUTABLE_HINTS.search(name)
        elif kind == "bool":
            r = ws.one(f"SELECT avg({c}::INTEGER), count({c}) FROM _rt_space")
            s.weights = [float(r[0]) if r[0] is not None else 0.5]
            s.mutable = bool(mutable) and name in mutable
        else:
            top = ws.rows(f"SELECT {c}, count(*) FROM _rt_space WHERE {c} IS NOT NULL GROUP BY 1 "
                          f"ORDER BY 2 DESC, 1 LIMIT {MAX_CATEGORIES}")
            total = sum(n for _, n in top) or 1
            s.categories, s.weights = [v for v, _ in top], [n / total for _, n in top]
            s.mutable = bool(mutable) and name in mutable
        specs[name] = s
    ws.execute("DROP TABLE IF EXISTS _rt_space")
    return Space(system_id, specs, rows)
