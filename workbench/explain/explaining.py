"""Explain logged decisions with the version that served them (or a surrogate), batched and cached."""

from __future__ import annotations

from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.access.masking import Masker
from workbench.errors import WorkbenchError
from workbench.explain import cache, features, registry, surrogate, treeshap
from workbench.explain.loaders import LoadedModel
from workbench.store import Workspace


def explain_decisions(ws: Workspace, actor: Actor, system_id: str, decision_ids: list[str], *,
                      version: str | None = None) -> list[dict[str, Any]]:
    """One explanation per decision (decision_id, model_version, method, base_value, output, attributions)."""
    require(actor, "read:decisions", ws)
    ids = features.unique(decision_ids)
    result, stats = explain_batch(ws, actor, system_id, ids, version=version)
    audit.record(ws, actor, "read.explain", system_id,
                 {"decisions": len(ids), "decision_ids": ids[:100], "version": version, **stats})
    return result


def explain_batch(ws: Workspace, actor: Actor, system_id: str, ids: list[str], *,
                  version: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Explanations (cache first, the rest computed in one batch per version) and cache statistics.

    The one read path of explanations: personal feature values are masked here for the actor."""
    require(actor, "read:decisions", ws)
    if not ids:
        return [], {"cached": 0, "computed": 0}
    meta = ws.rows(
        "SELECT d.decision_id, d.model_version, d.model_sha256, d.score FROM (SELECT unnest(?::VARCHAR[]) AS "
        "decision_id) ids JOIN all_decisions d ON d.decision_id = ids.decision_id AND d.system_id = ?",
        [ids, system_id])
    info = {r[0]: r for r in meta}
    missing = [i for i in ids if i not in info]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise WorkbenchError(f"no decision {', '.join(missing[:5])}{more} for system {system_id}")
    registered = {v["version"]: v["sha256"] for v in registry.versions(ws, system_id)}
    groups: dict[str, list[str]] = {}
    if not registered:
        groups["surrogate"] = ids
    else:
        for did in ids:
            groups.setdefault(version or info[did][1], []).append(did)
        unknown = [v for v in groups if v not in registered]
        if unknown:
            raise WorkbenchError(f"{system_id} version {', '.join(unknown)} has no registered artifact "
                                 f"(registered: {', '.join(registered)}); add it with `workbench model add` "
                                 "or explain with --version")
    done: dict[str, dict[str, Any]] = {}
    computed = 0
    extra: dict[str, Any] = {}
    for ver, members in groups.items():
        if ver == "surrogate":

            model, sinfo = surrogate.current(ws, actor, system_id)
            sha, method = model.sha256, "surrogate"
            extra = {"surrogate_r2": sinfo["r2"], "surrogate_window": [sinfo["since"], sinfo["until"]]}
        else:
            model, sha, method = None, registered[ver], "tree"
        hits = cache.lookup(ws, system_id, sha, members)
        done.update(hits)
        todo = [d for d in members if d not in hits]
        if todo:
            model = model or registry.load_model(ws, actor, system_id, ver)
            for e in compute(ws, system_id, model, todo, method=method):
                done[e["decision_id"]] = e
            computed += len(todo)
    result = []
    for did in ids:
        e = dict(done[did])
        logged_sha, score = info[did][2], info[did][3]
        if e["method"] == "surrogate":
            e.update(extra, model_version=info[did][1])
        e["served_version"] = info[did][1]
        e["logged_score"] = score
        e["logged_sha256_matches"] = None if not logged_sha or e["method"] != "tree" else logged_sha == \
            e["model_sha256"]
        result.append(e)
    result = Masker(ws, actor).explanations(system_id, result)
    return result, {"cached": len(ids) - computed, "computed": computed, "versions": sorted(groups)}


def compute(ws: Workspace, system_id: str, model: LoadedModel, ids: list[str], *,
            method: str = "tree") -> list[dict[str, Any]]:
    """Compute explanations for decisions with one model in one batch and put them in the cache."""
    types = features.catalog(ws, system_id)
    ignored = features.check_features(model, types, system_id)
    needed = {f: types[f] for f in model.feature_names}
    frame = features.load_by_ids(ws, system_id, ids, needed)
    X = features.matrix(model, frame, needed)
    base, shap, output, classes = treeshap.contributions_by_class(model, X)
    values = features.display_values(frame, model.feature_names)
    label = model.version if method == "tree" else f"surrogate:{model.sha256[:12]}"
    out = cache.build(list(frame["decision_id"]), model.feature_names, values, base, shap, output,
                      version=label, sha256=model.sha256, method=method, ignored=ignored, classes=classes)
    cache.store(ws, system_id, model.feature_names, shap, out)
    return out
