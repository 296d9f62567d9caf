"""Exact path-dependent TreeSHAP on the raw (margin) output, by each library's own implementation."""

from __future__ import annotations

import json

import numpy as np

from workbench.errors import WorkbenchError
from workbench.explain.loaders import LoadedModel


def contributions(model: LoadedModel, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base_value per row, SHAP matrix n x features, raw output per row) with base + sum(shap) = output."""
    base, shap, output, _ = contributions_by_class(model, X)
    return base, shap, output


def contributions_by_class(model: LoadedModel, X: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Like contributions, plus the class explained per row for a multiclass model (None for one output).

    A multiclass model has one raw output per class; each row is explained for the class the model ranked
    first (the highest raw output), which is the class it served.
    """
    n, f = X.shape
    if n == 0:
        return np.zeros(0), np.zeros((0, f)), np.zeros(0), None
    if model.kind == "lightgbm":
        contrib = np.asarray(model.obj.predict(X, pred_contrib=True))
    elif model.kind == "xgboost":
        import xgboost as xgb

        dm = xgb.DMatrix(X, feature_names=model.feature_names, missing=np.nan)
        contrib = np.asarray(model.obj.predict(dm, pred_contribs=True))
        if contrib.ndim == 3:  # (n, classes, features + 1)
            contrib = contrib.reshape(n, -1)
    elif model.kind == "sklearn":
        return _sklearn(model, X)
    else:
        raise WorkbenchError(f"cannot explain a {model.kind} model")
    if contrib.shape[1] % (f + 1):
        raise WorkbenchError(f"the model returned {contrib.shape[1]} contributions for {f} features")
    blocks = contrib.reshape(n, contrib.shape[1] // (f + 1), f + 1)  # (n, classes, features + bias)
    if blocks.shape[1] == 1:
        return blocks[:, 0, -1].copy(), blocks[:, 0, :-1], blocks[:, 0, :].sum(axis=1), None
    cls = blocks.sum(axis=2).argmax(axis=1)
    chosen = blocks[np.arange(n), cls]
    return chosen[:, -1].copy(), chosen[:, :-1], chosen.sum(axis=1), cls


def _sklearn(model: LoadedModel, X: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    import shap

    try:
        explainer = shap.TreeExplainer(model.obj, feature_perturbation="tree_path_dependent",
                                       model_output="raw")
    except Exception as exc:  # noqa: BLE001 - e.g. a linear model: not a tree ensemble
        raise WorkbenchError(f"TreeSHAP cannot explain this {model.objective}: {str(exc).splitlines()[0]}") from exc
    values = explainer.shap_values(X, check_additivity=False)
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    values = np.asarray(values)
    if values.ndim == 3 and values.shape[2] == 2:  # (n, features, 2): explain the positive (last) class
        values = values[:, :, -1]
    if values.ndim == 2:
        base = np.full(X.shape[0], float(expected[-1]))
        return base, values, base + values.sum(axis=1), None
    outputs = expected[None, :] + values.sum(axis=1)  # (n, classes)
    cls = outputs.argmax(axis=1)
    rows = np.arange(X.shape[0])
    return expected[cls], values[rows, :, cls], outputs[rows, cls], cls


def n_outputs(model: LoadedModel) -> int:
    """How many outputs (classes) the model scores: 1 for binary classifiers and regressors."""
    if model.kind == "lightgbm":
        return int(model.obj.num_model_per_iteration())
    if model.kind == "xgboost":
        return max(1, int(json.loads(model.obj.save_config())["learner"]["learner_model_param"]["num_class"]))
    classes = getattr(model.obj, "classes_", None)
    return len(classes) if classes is not None and len(classes) > 2 else 1


def predict_score(model: LoadedModel, X: np.ndarray) -> np.ndarray:
    """The model's served score (probability for classifiers, value for regressors) for each row.

    For a multiclass model: the probability of the class it ranked first.
    """
    if len(X) == 0:
        return np.zeros(0)
    if model.kind == "lightgbm":
        out = np.asarray(model.obj.predict(X), dtype=np.float64)
    elif model.kind == "xgboost":
        import xgboost as xgb

        dm = xgb.DMatrix(X, feature_names=model.feature_names, missing=np.nan)
        out = np.asarray(model.obj.predict(dm), dtype=np.float64)
    else:
        import pandas as pd

        frame = pd.DataFrame(X, columns=model.feature_names)
        if not hasattr(model.obj, "predict_proba"):
            return np.asarray(model.obj.predict(frame), dtype=np.float64)
        out = np.asarray(model.obj.predict_proba(frame), dtype=np.float64)
        if out.shape[1] == 2:
            return out[:, -1]
    return out.max(axis=1) if out.ndim == 2 else out
