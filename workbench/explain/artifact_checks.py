"""Sanity checks on model files, run BEFORE the bytes reach the library (LightGBM text here).

Both libraries parse model files in C++ and trust the sizes written in them: a tampered header makes LightGBM
abort (SIGABRT/SIGFPE/SIGSEGV) or allocate gigabytes, and an out-of-range child or feature index makes either
library read out of bounds at predict time. Everything such code indexes with is checked here, in Python, first.
"""

from __future__ import annotations

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
_INT = re.compile(r"-?\d{1,18}")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_PARAMETER = re.compile(r'\[[A-Za-z0-9_]+: [^"\\\x00-\x1f\x7f]*\]')  # LightGBM re-parses these lines in C++
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


# -- LightGBM text -------------------------------------------------------------------------------
_LGB_TREE_KEYS = 22  # LightGBM's parser reads at most 22 key=value lines per tree


def _lgb_objective(value: str, num_class: int, what: str) -> None:
    for token in _tokens(value)[1:]:
        key, sep, val = token.partition(":")
        if not re.fullmatch(r"[A-Za-z_]+:[^:]+", token):
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


def _lgb_parameters(lines: list[str], what: str) -> None:
    """The parameters section: LightGBM splits each line on ':' and indexes the parts without checking."""
    bare = [line.removesuffix("\r") for line in lines]
    if "parameters:" not in bare:
        return
    for line in bare[bare.index("parameters:") + 1:]:
        if line == "end of parameters":
            return
        if line and line != "parameters:" and not _PARAMETER.fullmatch(line):
            raise refuse(what, f"malformed parameter line {line[:40]!r}")


def check_lightgbm_text(data: bytes, what: str = "LightGBM model") -> dict[str, Any]:
    """Validate a LightGBM text model's header, tree sizes and every tree; raise RefusedModel if absurd."""
    try:
        return _check_lightgbm_text(data, what)
    except (TypeError, ValueError, KeyError, IndexError, OverflowError) as exc:
        raise refuse(what, f"malformed model text ({type(exc).__name__})") from None


def _check_lightgbm_text(data: bytes, what: str) -> dict[str, Any]:
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
    if trees:
        _lgb_parameters(lines[first:], what)
    return {"checker": "workbench", "ok": True, "num_class": num_class, "features": n_features,
            "trees": len(trees)}
