"""Sanity checks on XGBoost JSON/UBJ models (and pickled Booster buffers), run before XGBoost parses them.

XGBoost trusts the counts and indices in a model document: a huge num_class is a huge allocation, an
out-of-range child, parent, split or tree id is an out-of-bounds read at predict time. UBJ is decoded here
with every declared length bounded by the bytes left in the file.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from workbench.explain.artifact_checks import (
    MAX_CLASSES,
    MAX_FEATURES,
    MAX_NODES,
    MAX_OUTPUT_WIDTH,
    MAX_TREES,
    _int,
    refuse,
)

_MAX_DEPTH = 64  # nesting of a UBJ document


def _check_children(left: np.ndarray, right: np.ndarray, what: str, tree: str) -> None:
    """Children (-1 for none) point forward, so no cycles, and every node but the root has exactly one parent."""
    n = len(left)
    leaf = left == -1
    if (leaf != (right == -1)).any():
        raise refuse(what, f"{tree}: a node with one child")
    idx = np.arange(n)[~leaf]
    for side in (left[~leaf], right[~leaf]):
        if ((side <= idx) | (side >= n)).any():
            raise refuse(what, f"{tree}: a child index out of range")
    kids = np.concatenate([left[~leaf], right[~leaf]])
    if len(kids) != n - 1 or len(np.unique(kids)) != len(kids):
        raise refuse(what, f"{tree}: nodes shared or unreachable (not a tree)")


# -- XGBoost JSON / UBJ --------------------------------------------------------------------------
_UBJ_NUMBERS = {b"i": ">i1", b"U": ">u1", b"I": ">i2", b"l": ">i4", b"L": ">i8", b"d": ">f4", b"D": ">f8"}


class _Ubj:
    """A bounded UBJSON reader: every declared length is checked against the bytes that remain."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.i, self.what = memoryview(data), 0, what

    def take(self, n: int) -> memoryview:
        """The next n bytes, or a refusal if the file ends first."""
        if n < 0 or self.i + n > len(self.data):
            raise refuse(self.what, "UBJ length beyond the end of the file")
        out = self.data[self.i:self.i + n]
        self.i += n
        return out

    def marker(self) -> bytes:
        """The next type marker (no-op markers skipped)."""
        m = bytes(self.take(1))
        while m == b"N":
            m = bytes(self.take(1))
        return m

    def count(self, m: bytes | None = None) -> int:
        """A length or count: an integer no larger than the bytes left."""
        m = m or self.marker()
        if m not in (b"i", b"U", b"I", b"l", b"L"):
            raise refuse(self.what, "UBJ length is not an integer")
        n = int(np.frombuffer(self.take(np.dtype(_UBJ_NUMBERS[m]).itemsize), _UBJ_NUMBERS[m])[0])
        if n < 0 or n > len(self.data) - self.i:
            raise refuse(self.what, f"UBJ count {n} is more than the bytes left in the file")
        return n

    def value(self, m: bytes, depth: int) -> Any:
        """The value that marker m introduces."""
        if depth > _MAX_DEPTH:
            raise refuse(self.what, "UBJ nested too deeply")
        if m in _UBJ_NUMBERS:
            dt = np.dtype(_UBJ_NUMBERS[m])
            return np.frombuffer(self.take(dt.itemsize), dt)[0].item()
        if m in (b"S", b"H"):
            return bytes(self.take(self.count())).decode("utf-8", "replace")
        if m == b"C":
            return bytes(self.take(1)).decode("latin-1")
        if m in (b"T", b"F", b"Z"):
            return {b"T": True, b"F": False, b"Z": None}[m]
        if m == b"[":
            return self.array(depth)
        if m == b"{":
            return self.object(depth)
        raise refuse(self.what, f"unknown UBJ marker {m!r}")

    def _container(self) -> tuple[bytes | None, int | None]:
        kind = n = None
        if self.data[self.i:self.i + 1] == b"$":
            self.i += 1
            kind = bytes(self.take(1))
            if kind not in _UBJ_NUMBERS and kind not in (b"S", b"T", b"F"):
                raise refuse(self.what, f"unsupported UBJ container type {kind!r}")
            if self.data[self.i:self.i + 1] != b"#":
                raise refuse(self.what, "UBJ typed container without a count")
        if self.data[self.i:self.i + 1] == b"#":
            self.i += 1
            n = self.count()
        return kind, n

    def array(self, depth: int) -> Any:
        """An array: typed numeric arrays as numpy, others as lists."""
        kind, n = self._container()
        if kind in _UBJ_NUMBERS and n is not None:
            dt = np.dtype(_UBJ_NUMBERS[kind])
            return np.frombuffer(self.take(n * dt.itemsize), dt)
        if n is not None:
            return [self.value(kind or self.marker(), depth + 1) for _ in range(n)]
        out = []
        while (m := self.marker()) != b"]":
            out.append(self.value(m, depth + 1))
        return out

    def object(self, depth: int) -> dict[str, Any]:
        """An object with string keys."""
        kind, n = self._container()
        out: dict[str, Any] = {}
        for _ in range(n if n is not None else len(self.data)):
            m = self.marker() if n is None else None
            if m == b"}":
                return out
            key = bytes(self.take(self.count(m))).decode("utf-8", "replace")
            out[key] = self.value(kind or self.marker(), depth + 1)
        if n is None:
            raise refuse(self.what, "UBJ object not closed")
        return out


def decode_ubjson(data: bytes, what: str = "XGBoost model") -> Any:
    """Decode a UBJSON document with every count bounded by the file size (numeric arrays as numpy)."""
    reader = _Ubj(data, what)
    doc = reader.value(reader.marker(), 0)
    return doc


def _arr(value: Any, name: str, what: str) -> np.ndarray:
    """A flat numeric array from a JSON list or UBJ array, or a refusal."""
    try:
        out = np.asarray(value if value is not None else [], dtype=np.float64)
    except (TypeError, ValueError):
        raise refuse(what, f"{name} is not a list of numbers") from None
    if out.ndim != 1:
        raise refuse(what, f"{name} is not a flat list")
    return out


def _idx(value: Any, name: str, what: str) -> np.ndarray:
    """Like _arr, for arrays of indices: finite whole numbers only."""
    out = _arr(value, name, what)
    if not np.isfinite(out).all() or (out != np.floor(out)).any() or (np.abs(out) > 1 << 40).any():
        raise refuse(what, f"{name} holds a value that is not an index")
    return out.astype(np.int64)


def _xgb_tree(tree: Any, i: int, n_features: int, what: str) -> None:
    name = f"tree {i}"
    if not isinstance(tree, dict) or not isinstance(tree.get("tree_param"), dict):
        raise refuse(what, f"{name} has no tree_param")
    n = _int(tree["tree_param"].get("num_nodes"), f"{name} num_nodes", 1, MAX_NODES, what)
    if _int(tree["tree_param"].get("size_leaf_vector", 1), f"{name} size_leaf_vector", 0, MAX_CLASSES, what) > 1:
        raise refuse(what, f"{name} is a multi-output tree (size_leaf_vector > 1), which cannot be explained")
    arrays = {}
    if tree.get("id") != i:
        raise refuse(what, f"{name} has id {str(tree.get('id'))[:20]!r}")
    for key in ("left_children", "right_children", "parents", "split_indices", "split_conditions", "default_left",
                "split_type", "base_weights", "loss_changes", "sum_hessian"):
        if key in tree or key in ("left_children", "right_children", "parents", "split_indices"):
            as_index = key not in ("split_conditions", "base_weights", "loss_changes", "sum_hessian")
            arrays[key] = (_idx if as_index else _arr)(tree.get(key), f"{name} {key}", what)
            if arrays[key].shape != (n,):
                raise refuse(what, f"{name} {key} has {arrays[key].size} values, num_nodes is {n}")
    left, right = arrays["left_children"], arrays["right_children"]
    _check_children(left, right, what, name)
    inner = np.flatnonzero(left != -1)
    parents = arrays["parents"]
    if parents[0] not in (-1, 2147483647) or (parents[left[inner]] != inner).any() \
            or (parents[right[inner]] != inner).any():
        raise refuse(what, f"{name}: parents do not match children")
    split = arrays["split_indices"][inner]
    if ((split < 0) | (split >= max(n_features, 1))).any():
        raise refuse(what, f"{name}: split index out of range (num_feature={n_features})")
    for key in ("default_left", "split_type"):
        if key in arrays and ~np.isin(arrays[key], (0, 1)).all():
            raise refuse(what, f"{name}: {key} is not 0/1")
    cat_nodes = _idx(tree.get("categories_nodes"), f"{name} categories_nodes", what)
    segments = _idx(tree.get("categories_segments"), f"{name} categories_segments", what)
    sizes = _idx(tree.get("categories_sizes"), f"{name} categories_sizes", what)
    n_cats = len(_arr(tree.get("categories"), f"{name} categories", what))
    categorical = set(inner[arrays["split_type"][inner] == 1].tolist()) if "split_type" in arrays else set()
    if not (len(cat_nodes) == len(segments) == len(sizes)) or set(cat_nodes.tolist()) != categorical \
            or len(np.unique(cat_nodes)) != len(cat_nodes) or (segments < 0).any() or (sizes < 0).any() \
            or (segments + sizes > n_cats).any():
        raise refuse(what, f"{name}: categorical split tables out of range")


def _xgb_cats(cats: Any, n_features: int, what: str) -> None:
    """The category re-coding tables of XGBoost 3 (per feature: categories, sorted order)."""
    if not cats:
        return
    if not isinstance(cats, dict):
        raise refuse(what, "cats is not an object")
    enc = cats.get("enc") or []
    segments = _idx(cats.get("feature_segments"), "cats feature_segments", what)
    order = _idx(cats.get("sorted_idx"), "cats sorted_idx", what)
    if not len(enc) and not len(segments) and not len(order):
        return
    if not isinstance(enc, list) or len(enc) != n_features or len(segments) != n_features + 1 \
            or segments[0] != 0 or (np.diff(segments) < 0).any() or segments[-1] != len(order):
        raise refuse(what, "category tables do not match the features")
    for f, entry in enumerate(enc):
        if not isinstance(entry, dict):
            raise refuse(what, f"category table {f} is not an object")
        values = _arr(entry.get("values"), f"cats enc {f} values", what)
        if "offsets" in entry:
            offsets = _idx(entry["offsets"], f"cats enc {f} offsets", what)
            count = max(len(offsets) - 1, 0)
            if len(offsets) and (offsets[0] != 0 or (np.diff(offsets) < 0).any() or offsets[-1] != len(values)):
                raise refuse(what, f"category table {f}: offsets out of range")
        else:
            count = len(values)
        part = order[int(segments[f]):int(segments[f + 1])]
        if len(part) != count or not np.array_equal(np.sort(part), np.arange(count)):
            raise refuse(what, f"category table {f}: sorted index is not a permutation")


def check_xgboost_doc(doc: Any, what: str = "XGBoost model") -> dict[str, Any]:
    """Validate an XGBoost model document (from JSON or UBJ); raise RefusedModel if absurd."""
    try:
        return _check_xgboost_doc(doc, what)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise refuse(what, f"malformed model document ({type(exc).__name__})") from None


def _check_xgboost_doc(doc: Any, what: str) -> dict[str, Any]:
    if isinstance(doc, dict) and isinstance(doc.get("Model"), dict):  # a pickled Booster: {"Config", "Model"}
        doc = doc["Model"]
    learner = doc.get("learner") if isinstance(doc, dict) else None
    if not isinstance(learner, dict):
        raise refuse(what, "no 'learner' object")
    param = learner.get("learner_model_param")
    if not isinstance(param, dict):
        raise refuse(what, "no learner_model_param")
    num_class = _int(param.get("num_class", 0), "num_class", 0, MAX_CLASSES, what)
    num_target = _int(param.get("num_target", 1), "num_target", 0, MAX_CLASSES, what)
    n_features = _int(param.get("num_feature", 0), "num_feature", 0, MAX_FEATURES, what)
    outputs = max(1, num_class, num_target)
    if outputs * (n_features + 1) > MAX_OUTPUT_WIDTH:
        raise refuse(what, f"{outputs} outputs x {n_features} features is more than {MAX_OUTPUT_WIDTH}")
    for key in ("feature_names", "feature_types"):
        listed = learner.get(key)
        if listed is not None and len(listed) and len(listed) != n_features:
            raise refuse(what, f"{len(listed)} {key} but num_feature={n_features}")
    booster = learner.get("gradient_booster")
    kind = booster.get("name") if isinstance(booster, dict) else None
    if kind == "gblinear":
        weights = (booster.get("model") or {}).get("weights", [])
        if len(weights) > (n_features + 1) * outputs:
            raise refuse(what, "more linear weights than features x outputs")
        return {"checker": "workbench", "ok": True, "booster": kind, "num_class": num_class}
    if kind not in ("gbtree", "dart"):
        raise refuse(what, f"unknown booster {str(kind)[:40]!r}")
    model = (booster.get("gbtree") or {}).get("model") if kind == "dart" else booster.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("trees"), list):
        raise refuse(what, "no trees")
    trees = model["trees"]
    num_trees = _int((model.get("gbtree_model_param") or {}).get("num_trees"), "num_trees", 0, MAX_TREES, what)
    info = _idx(model.get("tree_info"), "tree_info", what)
    if len(trees) != num_trees or info.shape != (num_trees,):
        raise refuse(what, f"num_trees={num_trees} but {len(trees)} trees and {info.size} tree_info entries")
    if ((info < 0) | (info >= outputs)).any():
        raise refuse(what, "tree_info names an output the model does not have")
    indptr = _idx(model.get("iteration_indptr", [0, num_trees]), "iteration_indptr", what)
    if len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != num_trees or (np.diff(indptr) < 0).any():
        raise refuse(what, "iteration_indptr does not cover the trees")
    _xgb_cats(model.get("cats"), n_features, what)
    for i, tree in enumerate(trees):
        _xgb_tree(tree, i, n_features, what)
    return {"checker": "workbench", "ok": True, "booster": kind, "num_class": num_class, "trees": num_trees}


def check_xgboost_bytes(data: bytes, what: str = "XGBoost model") -> dict[str, Any]:
    """Decode (JSON or UBJ) and validate XGBoost model bytes."""
    head = bytes(data[:1])
    if head != b"{":
        raise refuse(what, "not a JSON/UBJ document (old binary XGBoost formats are not accepted)")
    if data[1:2] in (b"L", b"U", b"i", b"l", b"I", b"$", b"#", b"}"):
        doc = decode_ubjson(bytes(data), what)
    else:
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise refuse(what, f"JSON that does not parse ({str(exc)[:80]})") from None
    return check_xgboost_doc(doc, what)
