"""After a scikit-learn model is loaded (skops or pickle), before anything predicts with it: indices in range.

scikit-learn's compiled code indexes tree nodes, features and output buffers without bounds checks, which is
why skops leaves sklearn.tree._tree.Tree untrusted by default. We trust it, and check here what skops cannot:
every child and feature index in range, forests and boosting stages shaped like the model they belong to.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.explain.artifact_checks import RefusedModel
from workbench.explain.trusted_types import ALLOWED_CLASSES, BOOSTING, FORESTS, SKLEARN_TREE, TREE_ESTIMATORS


def type_name(obj: Any) -> str:
    """The dotted type name of an object, e.g. builtins.dict or sklearn.preprocessing.StandardScaler."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _bad(reason: str) -> RefusedModel:
    return RefusedModel("refused.model_check", f"scikit-learn model refused: {reason}", None)


def _check_tree(tree: Any, width: int | None, where: str) -> None:
    n = int(tree.node_count)
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    feature, n_features = np.asarray(tree.feature), int(tree.n_features)
    if n < 1 or len(left) != n or len(right) != n or len(feature) != n or np.asarray(tree.value).shape[0] != n:
        raise _bad(f"{where}: tree arrays do not match node_count={n}")
    leaf = left == -1
    idx = np.arange(n)
    if (leaf != (right == -1)).any():
        raise _bad(f"{where}: a tree node with one child")
    for side in (left[~leaf], right[~leaf]):
        if ((side <= idx[~leaf]) | (side >= n)).any():
            raise _bad(f"{where}: a tree child index out of range")
    kids = np.concatenate([left[~leaf], right[~leaf]])
    if len(kids) != n - 1 or len(np.unique(kids)) != len(kids):
        raise _bad(f"{where}: tree nodes shared or unreachable")
    if n_features < 1 or ((feature[~leaf] < 0) | (feature[~leaf] >= n_features)).any():
        raise _bad(f"{where}: a tree split feature out of range")
    if width is not None and n_features != width:
        raise _bad(f"{where}: a tree over {n_features} features in a model of {width}")


_LOSSES_FOR = {  # (classifier, several outputs) -> the losses that produce that many raw outputs
    (True, True): {"sklearn._loss.loss.HalfMultinomialLoss"},
    (True, False): {"sklearn._loss.loss.HalfBinomialLoss", "sklearn._loss.loss.ExponentialLoss"},
    (False, False): {f"sklearn._loss.loss.{n}" for n in ("HalfSquaredError", "AbsoluteError", "HuberLoss",
                                                         "PinballLoss")},
}


def _check_boosting(gb: Any, name: str, width: int | None) -> None:
    """GradientBoosting writes stage k of row i into a (rows x K) buffer sized by init_ and the loss, unchecked."""
    est, k = gb.estimators_, getattr(gb, "n_trees_per_iteration_", None)
    if not isinstance(est, np.ndarray) or est.ndim != 2 or not isinstance(k, (int, np.integer)) \
            or est.shape[1] != k or k < 1:
        raise _bad(f"{name}: estimators_ is not an (iterations x n_trees_per_iteration_) array")
    for member in est.ravel():
        if type_name(member) != "sklearn.tree._classes.DecisionTreeRegressor" \
                or getattr(member, "n_features_in_", None) != width \
                or np.asarray(member.tree_.value).shape[1:] != (1, 1):
            raise _bad(f"{name}: a stage that is not a one-output tree over {width} features")
    classifier = name.endswith("Classifier")
    n = len(getattr(gb, "classes_", [])) if classifier else 1
    if classifier and (n < 2 or getattr(gb, "n_classes_", None) != n or k != (1 if n == 2 else n)):
        raise _bad(f"{name}: {k} trees per iteration for {n} classes")
    if not classifier and k != 1:
        raise _bad(f"{name}: a regressor with {k} trees per iteration")
    loss = getattr(gb, "_loss", None)
    if type_name(loss) not in _LOSSES_FOR[(classifier, k > 1)] or classifier and getattr(loss, "n_classes", n) != n:
        raise _bad(f"{name}: a loss ({type_name(loss)}) that does not match {k} outputs")
    init = getattr(gb, "init_", None)
    if isinstance(init, str) and init == "zero":
        return
    if classifier and not (type_name(init) == "sklearn.dummy.DummyClassifier" and getattr(init, "n_outputs_", 0) == 1
                           and len(getattr(init, "class_prior_", [])) == n == len(getattr(init, "classes_", []))):
        raise _bad(f"{name}: init_ does not predict {n} classes")
    if not classifier and not (type_name(init) == "sklearn.dummy.DummyRegressor"
                               and np.size(getattr(init, "constant_", None)) == 1):
        raise _bad(f"{name}: init_ is not a one-output DummyRegressor")


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, np.ndarray):
        return obj.ravel().tolist() if obj.dtype == object else []
    return list(vars(obj).values()) if hasattr(obj, "__dict__") else []


def check_sklearn_model(model: Any) -> None:
    """Walk the loaded object graph: only allow-listed types, and every tree's indices in range."""
    try:
        names = getattr(model, "feature_names_in_", None)
        if names is not None and len(names) != getattr(model, "n_features_in_", None):
            raise _bad("feature_names_in_ and n_features_in_ disagree")
        _walk(model)
    except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
        raise _bad(f"malformed model object ({type(exc).__name__}: {str(exc)[:80]})") from None


def _walk(model: Any) -> None:
    leaves = (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic, np.dtype, type, slice)
    stack, seen = [model], set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, leaves):
            continue
        seen.add(id(obj))
        if len(seen) > 2_000_000:
            raise _bad("more than two million objects")
        name = type_name(obj)
        containers = (dict, list, tuple, set, frozenset, np.ndarray)
        if not isinstance(obj, containers) and name not in ALLOWED_CLASSES:
            raise _bad(f"it holds a {name}, which is not on the allow-list")
        width = getattr(obj, "n_features_in_", None)
        fitted = hasattr(obj, "tree_") or hasattr(obj, "estimators_")
        if fitted and name in TREE_ESTIMATORS | FORESTS | BOOSTING and (
                not isinstance(width, (int, np.integer)) or width < 1):
            raise _bad(f"{name} without n_features_in_ (its predict would not check the input width)")
        if name in TREE_ESTIMATORS and hasattr(obj, "tree_"):
            if type_name(obj.tree_) != SKLEARN_TREE:
                raise _bad(f"{name}.tree_ is a {type_name(obj.tree_)}")
            _check_tree(obj.tree_, width, name)
        elif name in FORESTS and hasattr(obj, "estimators_"):
            for est in obj.estimators_:
                if type_name(est) not in TREE_ESTIMATORS or getattr(est, "n_features_in_", None) != width:
                    raise _bad(f"{name}: a member that is not a tree over the forest's {width} features")
        elif name in BOOSTING and hasattr(obj, "estimators_"):
            _check_boosting(obj, name, width)
        stack.extend(_children(obj))
