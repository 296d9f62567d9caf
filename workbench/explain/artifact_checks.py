"""Sanity checks on LightGBM text and XGBoost JSON/UBJ models, run BEFORE the bytes reach the library.

Both libraries parse model files in C++ and trust the sizes written in them: a tampered header makes LightGBM
abort (SIGABRT/SIGFPE/SIGSEGV) or allocate gigabytes, and an out-of-range child or feature index makes either
library read out of bounds at predict time. Everything such code indexes with is checked here, in Python, first.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

MAX_CLASSES = 1000               # outputs (classes) of one model
MAX_FEATURES = 50_000            # input features of one model
MAX_OUTPUT_WIDTH = 1_000_000     # classes x (features + 1): the SHAP values of one row
MAX_TREES = 200_000
MAX_LEAVES = 131_072             # LightGBM's own upper bound for num_leaves
MAX_NODES = 1 << 22              # nodes of one XGBoost tree
_MAX_DEPTH = 64                  # nesting of a UBJ document
_INT = re.compile(r"-?\d{1,18}")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_LGB_KEYS = ("num_class", "num_tree_per_iteration", "max_feature_idx", "feature_names", "feature_infos",
             "monotone_constraints", "tree_sizes", "objective", "label_index")


class RefusedModel(WorkbenchError):
    """A model the registry will not load; carries the event name and scan record for the log."""

    def __init__(self, event: str, message: str, scan: dict | None) -> None:
        super().__init__(message)
        self.event = event
        self.scan = scan


def refuse(what: str, reason: str) -> RefusedModel:
    """A one-line refusal of a malformed or absurd model (event refused.model_check)."""
    return RefusedModel("refused.model_check", f"{what} refused before loading: {reason}",
                        {"checker": "workbench", "ok": False, "reason": reason})


def _int(value: Any, name: str, lo: int, hi: int, what: str) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not _INT.fullmatch(text):
        raise refuse(what, f"{name}={text[:40]!r} is not an integer")
    number = int(text)
    if not lo <= number <= hi:
        raise refuse(what, f"{name}={number} is outside the sane range {lo}..{hi}")
    return number


def _tokens(text: str) -> list[str]:
    """Space-separated values the way LightGBM splits them (empty tokens dropped)."""
    return [t for t in text.split(" ") if t]


def _ints(text: str, n: int, name: str, what: str) -> np.ndarray:
    try:
        values = np.array(_tokens(text), dtype=np.int64)
    except (ValueError, OverflowError):
        raise refuse(what, f"{name} holds a value that is not an integer") from None
    if len(values) != n:
        raise refuse(what, f"{name} has {len(values)} values, expected {n}")
    return values


def _floats(text: str, n: int, name: str, what: str) -> np.ndarray:
    try:
        values = np.array(_tokens(text), dtype=np.float64)
    except (ValueError, OverflowError):
        raise refuse(what, f"{name} holds a value that is not a number") from None
    if len(values) != n:
        raise refuse(what, f"{name} has {len(values)} values, expected {n}")
    return values


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


# -- LightGBM text -------------------------------------------------------------------------------
_LGB_TREE_KEYS = 22  # LightGBM's parser reads at most 22 key=value lines per tree


def _lgb_objective(value: str, num_class: int, what: str) -> None:
    for token in _tokens(value)[1:]:
        key, sep, val = token.partition(":")
        if not sep:
            raise refuse(what, f"objective parameter {token[:40]!r} is not key:value")
        if key == "num_class" and _int(val, "objective num_class", 1, MAX_CLASSES, what) != num_class:
            raise refuse(what, f"objective says num_class:{val} but the header says num_class={num_class}")


def _lgb_tree(block: list[str], i: int, n_features: int, what: str) -> None:
    tree = f"tree {i}"
    if len(block) > _LGB_TREE_KEYS:
        raise refuse(what, f"{tree} has {len(block)} lines (at most {_LGB_TREE_KEYS})")
    kv: dict[str, str] = {}
    for line in block:
        key, sep, value = line.partition("=")
        if not sep or not key or key in kv:
            raise refuse(what, f"{tree}: malformed line {line[:40]!r}")
        kv[key] = value
    for key in ("num_leaves", "num_cat", "leaf_value"):
        if key not in kv:
            raise refuse(what, f"{tree} has no {key}")
    leaves = _int(kv["num_leaves"], f"{tree} num_leaves", 1, MAX_LEAVES, what)
    num_cat = _int(kv["num_cat"], f"{tree} num_cat", 0, leaves - 1, what)
    linear = _int(kv.get("is_linear", "0"), f"{tree} is_linear", 0, 1, what)
    _floats(kv["leaf_value"], leaves, f"{tree} leaf_value", what)
    if "leaf_count" in kv:
        _ints(kv["leaf_count"], leaves, f"{tree} leaf_count", what)
    if leaves == 1 and not linear:  # LightGBM reads nothing more of a one-leaf tree
        return
    for key in ("leaf_weight", "leaf_const"):
        if key in kv:
            _floats(kv[key], leaves, f"{tree} {key}", what)
    for key in ("left_child", "right_child", "split_feature", "threshold"):
        if key not in kv:
            raise refuse(what, f"{tree} has no {key}")
    if linear:
        counts = _ints(kv.get("num_features", ""), leaves, f"{tree} num_features", what)
        if (counts < 0).any() or (counts > n_features).any():
            raise refuse(what, f"{tree}: a linear leaf with an impossible feature count")
        total = int(counts.sum())
        feats = _ints(kv.get("leaf_features", ""), total, f"{tree} leaf_features", what)
        if ((feats < 0) | (feats >= n_features)).any():
            raise refuse(what, f"{tree}: a linear leaf feature index out of range")
        _floats(kv.get("leaf_coeff", ""), total, f"{tree} leaf_coeff", what)
    if leaves == 1:
        return
    inner = leaves - 1
    left = _ints(kv["left_child"], inner, f"{tree} left_child", what)
    right = _ints(kv["right_child"], inner, f"{tree} right_child", what)
    feature = _ints(kv["split_feature"], inner, f"{tree} split_feature", what)
    threshold = _floats(kv["threshold"], inner, f"{tree} threshold", what)
    for key in ("split_gain", "internal_value", "internal_weight"):
        if key in kv:
            _floats(kv[key], inner, f"{tree} {key}", what)
    if "internal_count" in kv:
        _ints(kv["internal_count"], inner, f"{tree} internal_count", what)
    decision = _ints(kv["decision_type"], inner, f"{tree} decision_type", what) if "decision_type" in kv \
        else np.zeros(inner, dtype=np.int64)
    if ((feature < 0) | (feature >= n_features)).any():
        raise refuse(what, f"{tree}: split_feature out of range (max_feature_idx={n_features - 1})")
    # LightGBM: child >= 0 is an internal node, child < 0 is leaf ~child; nodes are numbered parent first.
    idx = np.arange(inner)
    for side in (left, right):
        node = side >= 0
        if ((side[node] <= idx[node]) | (side[node] >= inner)).any() or (~side[~node] >= leaves).any():
            raise refuse(what, f"{tree}: a child index out of range")
    kids = np.concatenate([left, right])
    if len(np.unique(kids)) != len(kids) or (kids >= 0).sum() != inner - 1 or (kids < 0).sum() != leaves:
        raise refuse(what, f"{tree}: nodes shared or unreachable (not a tree)")
    if ((decision < 0) | (decision > 11) | (((decision >> 2) & 3) > 2)).any():
        raise refuse(what, f"{tree}: an unknown decision_type")
    categorical = (decision & 1) == 1
    if int(categorical.sum()) != num_cat:
        raise refuse(what, f"{tree}: num_cat={num_cat} but {int(categorical.sum())} categorical splits")
    if num_cat:
        cat_idx = threshold[categorical]
        if (cat_idx != np.floor(cat_idx)).any() or ((cat_idx < 0) | (cat_idx >= num_cat)).any():
            raise refuse(what, f"{tree}: a categorical split points outside cat_boundaries")
        bounds = _ints(kv.get("cat_boundaries", ""), num_cat + 1, f"{tree} cat_boundaries", what)
        if bounds[0] != 0 or (np.diff(bounds) < 0).any():
            raise refuse(what, f"{tree}: cat_boundaries are not increasing from 0")
        words = _ints(kv.get("cat_threshold", ""), int(bounds[-1]), f"{tree} cat_threshold", what)
        if ((words < 0) | (words >= 1 << 32)).any():
            raise refuse(what, f"{tree}: cat_threshold out of range")


def _lgb_trees(lines: list[str], what: str) -> list[tuple[int, list[str]]]:
    """(byte offset from the first 'Tree=' line, key=value lines) per tree, each closed by a blank line."""
    end = next((k for k, line in enumerate(lines) if line.removesuffix("\r") == "end of trees"), None)
    if end is None:
        raise refuse(what, "no 'end of trees' line (truncated file)")
    trees: list[tuple[int, list[str]]] = []
    offset, open_block = 0, False
    for raw in lines[:end]:
        line = raw.removesuffix("\r")
        if not _PRINTABLE.fullmatch(line):
            raise refuse(what, "control or non-ASCII characters inside the trees")
        if line.startswith("Tree="):
            if open_block or not line[5:].isdigit():
                raise refuse(what, f"malformed or unterminated tree before {line[:40]!r}")
            trees.append((offset, []))
            open_block = True
        elif not line:
            open_block = False
        elif open_block:
            trees[-1][1].append(line)
        else:
            raise refuse(what, f"text between trees: {line[:40]!r}")
        offset += len(raw) + 1
    if open_block:
        raise refuse(what, "the last tree is not terminated by a blank line")
    return trees


def check_lightgbm_text(data: bytes, what: str = "LightGBM model") -> dict[str, Any]:
    """Validate a LightGBM text model's header, tree sizes and every tree; raise RefusedModel if absurd."""
    if b"\x00" in data:
        raise refuse(what, "the file holds NUL bytes")
    if b"\r" in data.replace(b"\r\n", b""):
        raise refuse(what, "a bare carriage return (LightGBM would read a line this check does not see)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse(what, "the file is not UTF-8 text") from None
    lines = text.split("\n")  # a line may keep a trailing "\r" (counted in tree offsets, stripped for content)
    first = next((k for k, line in enumerate(lines) if line.startswith("Tree=")), len(lines))
    header: dict[str, str] = {}
    for line in lines[:first]:
        key, _, value = line.removesuffix("\r").partition("=")
        if key in header and key in _LGB_KEYS:
            raise refuse(what, f"{key} appears twice in the header")
        header[key] = value
    for key in ("num_class", "label_index", "max_feature_idx", "feature_names", "feature_infos"):
        if key not in header:
            raise refuse(what, f"the header has no {key}")
    num_class = _int(header["num_class"], "num_class", 1, MAX_CLASSES, what)
    per_iter = _int(header.get("num_tree_per_iteration", num_class), "num_tree_per_iteration", 1, MAX_CLASSES,
                    what)
    if per_iter not in (1, num_class):
        raise refuse(what, f"num_tree_per_iteration={per_iter} with num_class={num_class}")
    _int(header["label_index"], "label_index", 0, MAX_FEATURES, what)
    n_features = _int(header["max_feature_idx"], "max_feature_idx", 0, MAX_FEATURES - 1, what) + 1
    if num_class * (n_features + 1) > MAX_OUTPUT_WIDTH:
        raise refuse(what, f"{num_class} classes x {n_features} features is more than {MAX_OUTPUT_WIDTH} outputs")
    for key in ("feature_names", "feature_infos", "monotone_constraints"):
        if key in header and len(_tokens(header[key])) != n_features:
            raise refuse(what, f"{key} does not have max_feature_idx + 1 = {n_features} entries")
    if "objective" in header:
        _lgb_objective(header["objective"], num_class, what)
    trees = _lgb_trees(lines[first:], what) if first < len(lines) else []
    if len(trees) > MAX_TREES:
        raise refuse(what, f"{len(trees)} trees (at most {MAX_TREES})")
    if len(trees) % per_iter:
        raise refuse(what, f"{len(trees)} trees is not a multiple of num_tree_per_iteration={per_iter}")
    if "tree_sizes" in header:
        sizes = _ints(header["tree_sizes"], len(trees), "tree_sizes", what)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(sizes) else sizes
        if (sizes <= 0).any() or [int(s) for s in starts] != [t[0] for t in trees]:
            raise refuse(what, "tree_sizes do not match where the trees are in the file")
    for i, (_, block) in enumerate(trees):
        _lgb_tree(block, i, n_features, what)
    return {"checker": "workbench", "ok": True, "num_class": num_class, "features": n_features,
            "trees": len(trees)}


# -- XGBoost JSON / UBJ --------------------------------------------------------------------------
_UBJ_NUMBERS = {b"i": ">i1", b"U": ">u1", b"I": ">i2", b"l": ">i4", b"L": ">i8", b"d": ">f4", b"D": ">f8"}


class _Ubj:
    """A bounded UBJSON reader: every declared length is checked against the bytes that remain."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.i, self.what = memoryview(data), 0, what

    def take(self, n: int) -> memoryview:
        if n < 0 or self.i + n > len(self.data):
            raise refuse(self.what, "UBJ length beyond the end of the file")
        out = self.data[self.i:self.i + n]
        self.i += n
        return out

    def marker(self) -> bytes:
        m = bytes(self.take(1))
        while m == b"N":
            m = bytes(self.take(1))
        return m

    def count(self, m: bytes | None = None) -> int:
        m = m or self.marker()
        if m not in (b"i", b"U", b"I", b"l", b"L"):
            raise refuse(self.what, "UBJ length is not an integer")
        n = int(np.frombuffer(self.take(np.dtype(_UBJ_NUMBERS[m]).itemsize), _UBJ_NUMBERS[m])[0])
        if n < 0 or n > len(self.data) - self.i:
            raise refuse(self.what, f"UBJ count {n} is more than the bytes left in the file")
        return n

    def value(self, m: bytes, depth: int) -> Any:
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
