"""Exact path-dependent TreeSHAP on the raw (margin) output, by each library's own implementation."""

from __future__ import annotations

import numpy as np

from workbench.errors import WorkbenchError
from workbench.explain.loaders import LoadedModel


def contributions(model: LoadedModel, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base_value per row, SHAP matrix n x features, raw output per row) with base + sum(shap) = output."""
    n, f = X.shape
    if n == 0:
        return np.zeros(0), np.zeros((0, f)), np.zeros(0)
    if model.kind == "lightgbm":
        contrib = np.asarray(model.obj.predict(X, pred_contrib=True))
    elif model.kind == "xgboost":
        import xgboost as xgb

        dm = xgb.DMatrix(X, feature_names=model.feature_names, missing=np.nan)
        contrib = np.asarray(model.obj.predict(dm, pred_contribs=True))
        if contrib.ndim == 3:
            raise WorkbenchError("multi-output XGBoost models are not supported yet (explain one output)")
    elif model.kind == "sklearn":
        return _sklearn(model, X)
    else:
        raise WorkbenchError(f"cannot explain a {model.kind} model")
    if contrib.shape[1] != f + 1:
        raise WorkbenchError(f"the model has {contrib.shape[1] // (f + 1)} outputs (multiclass); only "
                             "single-output models (binary, regression) are explained")
    base = contrib[:, -1].copy()
    shap = contrib[:, :-1]
    return base, shap, contrib.sum(axis=1)


def _sklearn(model: LoadedModel, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import shap

    try:
        explainer = shap.TreeExplainer(model.obj, feature_perturbation="tree_path_dependent",
                                       model_output="raw")
    except Exception as exc:  # noqa: BLE001 - e.g. a linear model: not a tree ensemble
        raise WorkbenchError(f"{model.objective} is not a tree model TreeSHAP can explain ({exc})") from exc
    values = explainer.shap_values(X, check_additivity=False)
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    values = np.asarray(values)
    if values.ndim == 3:  # (n, features, classes): explain the positive (last) class
        if values.shape[2] > 2:
            raise WorkbenchError("multiclass scikit-learn models are not supported yet")
        values, expected = values[:, :, -1], expected[-1:]
    base = np.full(X.shape[0], float(expected[-1]))
    return base, values, base + values.sum(axis=1)


def predict_score(model: LoadedModel, X: np.ndarray) -> np.ndarray:
    """The model's served score (probability for classifiers, value for regressors) for each row."""
    if len(X) == 0:
        return np.zeros(0)
    if model.kind == "lightgbm":
        return np.asarray(model.obj.predict(X), dtype=np.float64)
    if model.kind == "xgboost":
        import xgboost as xgb

        dm = xgb.DMatrix(X, feature_names=model.feature_names, missing=np.nan)
        return np.asarray(model.obj.predict(dm), dtype=np.float64)
    import pandas as pd

    frame = pd.DataFrame(X, columns=model.feature_names)
    if hasattr(model.obj, "predict_proba"):
        return np.asarray(model.obj.predict_proba(frame), dtype=np.float64)[:, -1]
    return np.asarray(model.obj.predict(frame), dtype=np.float64)
