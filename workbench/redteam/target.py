"""The model under attack: a registered artifact (safe loaders only) or a black-box system's surrogate.

Every attacker query goes through `Target.query`, which counts it against the budget (queries and seconds)
and keeps it for `--emit`. `Target.oracle` scores rows for setup and evaluation (finding refused applications
to start from, held-out fidelity) and is neither counted nor emitted. Nothing here reaches a live endpoint:
the model is the registry's hash-checked copy or the workspace's own surrogate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.access import Actor
from workbench.errors import WorkbenchError
from workbench.explain import features, registry, surrogate, treeshap
from workbench.explain.loaders import LoadedModel
from workbench.explain.replay import apply_rule, decision_rule
from workbench.redteam.space import Space
from workbench.store import Workspace

MAX_KEEP = 50_000  # queries kept for --emit


class BudgetExhausted(Exception):
    """The attack used its query or time budget."""


@dataclass
class Target:
    """A loaded model, the decision rule learned from its log, the input space, and the query meter."""

    system_id: str
    version: str                 # the registered version, or surrogate:<sha12>
    kind: str                    # registered | surrogate
    model: LoadedModel
    rule: dict[str, Any]
    space: Space
    logged_version: str | None   # the version whose decisions are the base rows
    budget: int
    seconds: float
    queries: int = 0
    started: float = field(default_factory=time.perf_counter)
    log: list[dict[str, Any]] = field(default_factory=list)
    kept: int = 0
    ws: Any = field(default=None, repr=False)
    progress: Callable[[int, int], None] | None = field(default=None, repr=False)  # (queries used, budget)

    @property
    def favourable(self) -> str:
        """The outcome an applicant wants: the class with the lowest scores (approve, allow)."""
        return str(self.rule["labels"][0])

    @property
    def threshold(self) -> float:
        """Score below which the outcome is favourable."""
        return float(self.rule["thresholds"][0])

    def elapsed(self) -> float:
        """Seconds since the attack started."""
        return time.perf_counter() - self.started

    def left(self) -> int:
        """Queries left in the budget."""
        return max(0, self.budget - self.queries)

    def oracle(self, frame: pd.DataFrame) -> np.ndarray:
        """Scores for setup and evaluation only: not an attacker query, not counted, not emitted."""
        X = features.matrix(self.model, frame, self.space.types)
        return treeshap.predict_score(self.model, X)

    def query(self, frame: pd.DataFrame, tag: str = "") -> np.ndarray:
        """The attacker sends these inputs: counted against the budget, kept for --emit, scores returned."""
        if len(frame) == 0:
            return np.zeros(0)
        if self.queries + len(frame) > self.budget:
            raise BudgetExhausted(f"query budget of {self.budget} used")
        if self.elapsed() > self.seconds:
            raise BudgetExhausted(f"time budget of {self.seconds:.0f} s used")
        scores = self.oracle(frame)
        self.queries += len(frame)
        if self.progress is not None:
            self.progress(self.queries, self.budget)
        if self.kept < MAX_KEEP:
            take = min(len(frame), MAX_KEEP - self.kept)
            self.log.append({"frame": frame.iloc[:take].reset_index(drop=True), "scores": scores[:take],
                             "tag": tag})
            self.kept += take
        return scores

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """The outcome the learned decision rule gives each score."""
        return apply_rule(self.rule, np.asarray(scores, dtype=np.float64))

    def queried(self) -> pd.DataFrame:
        """Every kept query in order: features, score, prediction, tag and call number."""
        parts = []
        for i, q in enumerate(self.log):
            f = q["frame"].copy()
            f["__score"], f["__tag"], f["__call"] = q["scores"], q["tag"], i
            parts.append(f)
        if not parts:
            return pd.DataFrame()
        out = pd.concat(parts, ignore_index=True)
        out["__prediction"] = self.decide(out["__score"].to_numpy())
        return out

    def base_rows(self, n: int, seed: int, *, unfavourable: bool = False, pool: int = 4) -> pd.DataFrame:
        """Logged inputs to start from (hash order under the seed); only refused ones when unfavourable."""
        types = self.space.types
        where, params = "d.score IS NOT NULL", []
        if self.logged_version:
            where += " AND d.model_version = ?"
            params.append(self.logged_version)
        same = self.kind == "registered" and self.logged_version == self.version
        if unfavourable and same:  # the logged scores are this model's: refused ones straight from the log
            where += " AND d.score >= ?"
            params.append(self.threshold)
        limit = (n * pool if same else max(n * 20, 2000)) if unfavourable else n
        frame = features.load_where(self.ws, self.system_id, where, params, types,
                                    order=f"hash(d.decision_id || '{int(seed)}')", limit=limit)
        frame = frame[list(types)].reset_index(drop=True)
        if unfavourable and len(frame):
            frame = frame[self.oracle(frame) >= self.threshold].reset_index(drop=True)
        return frame.iloc[:n].reset_index(drop=True)


def _rule(ws: Workspace, system_id: str, version: str | None) -> tuple[dict[str, Any], str | None]:
    logged = [r[0] for r in ws.rows("SELECT model_version FROM decisions WHERE system_id = ? AND score IS NOT NULL "
                                    "GROUP BY 1 ORDER BY max(ts) DESC", [system_id])]
    for v in ([version] if version in logged else []) + logged:
        try:
            rule = decision_rule(ws, system_id, v)
        except WorkbenchError:
            continue
        if rule["thresholds"]:
            return rule, v
    return {"version": None, "labels": ["below-0.5", "above-0.5"], "thresholds": [0.5], "agreement": None,
            "classes": []}, None


def open_target(ws: Workspace, actor: Actor, system_id: str, version: str | None, space: Space, *,
                budget: int, seconds: float, use_surrogate: bool = False,
                progress: Callable[[int, int], None] | None = None) -> Target:
    """Load what to attack: the registered version (hash-checked), else the system's surrogate."""
    have = [v["version"] for v in registry.versions(ws, system_id)]
    if use_surrogate or not have:
        model, info = surrogate.current(ws, actor, system_id)
        kind, label = "surrogate", f"surrogate:{info['sha256'][:12]}"
    else:
        if version is None:
            version = have[-1]
        model = registry.load_model(ws, actor, system_id, version)
        kind, label = "registered", version
    features.check_features(model, space.types, system_id)
    if treeshap.n_outputs(model) > 1:
        raise WorkbenchError(f"{system_id} {label} is a multiclass model: the attacks need one score per input")
    rule, logged = _rule(ws, system_id, version if kind == "registered" else None)
    return Target(system_id, label, kind, model, rule, space, logged, int(budget), float(seconds), ws=ws,
                  progress=progress)
