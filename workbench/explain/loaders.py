"""Safe model loaders: format sniffing, size and structure checks, exact allow-lists, hash-checked bytes only."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from workbench.explain.artifact_checks import RefusedModel, check_lightgbm_text, refuse
from workbench.explain.sklearn_checks import check_sklearn_model
from workbench.explain.sklearn_checks import type_name as _type_name
from workbench.explain.trusted_types import MODELS, load_skops, scan_verdict, static_scan
from workbench.explain.trusted_types import load_pickle as _restricted_load
from workbench.explain.xgboost_checks import check_xgboost_bytes

__all__ = ["MAX_MODEL_BYTES", "LoadedModel", "RefusedModel", "load_bytes", "load_pickle", "scan_pickle",
           "sha256_bytes", "sniff_format", "type_name"]

SAFE_FORMATS = ("lightgbm", "xgboost-json", "xgboost-ubj", "skops")
PICKLE_FORMATS = ("pickle", "joblib")
MAX_MODEL_BYTES = 512 << 20  # a model file larger than this is refused before it is read
PICKLE_ADVICE = ("save LightGBM models as text (booster.save_model('model.txt')), XGBoost as JSON/UBJ "
                 "(booster.save_model('model.json')), scikit-learn with skops "
                 "(skops.io.dump(model, 'model.skops'))")


@dataclass
class LoadedModel:
    """A model loaded from verified bytes, with what explaining it needs."""

    kind: str                      # lightgbm | xgboost | sklearn
    format: str
    obj: Any
    feature_names: list[str]
    sha256: str
    categories: dict[str, list[Any]] = field(default_factory=dict)  # categorical feature -> category list
    objective: str = ""
    system_id: str = ""
    version: str = ""


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sniff_format(data: bytes, name: str = "") -> str:
    """The artifact format from its bytes (and name for tie-breaks); raise for unknown formats."""
    lower = name.lower()
    head = data[:64]
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return "lightgbm"
    if head.startswith(b"PK\x03\x04"):
        if lower.endswith(".skops") or b"schema.json" in data[-4096:] or b"schema.json" in data[:4096]:
            return "skops"
        raise _format(f"{name}: a zip archive that is not a skops file (e.g. a PyTorch checkpoint); "
                      f"not supported: {PICKLE_ADVICE}")
    if head.startswith(b"{L") or head.startswith(b"{U") or head.startswith(b"{i") or head.startswith(b"{$"):
        return "xgboost-ubj"
    if head.lstrip().startswith(b"{"):
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise _format(f"{name}: JSON that does not parse ({str(exc)[:120]})") from None
        if isinstance(doc, dict) and "learner" in doc:
            return "xgboost-json"
        raise _format(f"{name}: JSON but not an XGBoost model (no 'learner'); supported: {PICKLE_ADVICE}")
    if lower.endswith((".joblib", ".jbl")) or head[:2] in (b"\x78\x9c", b"\x78\x01", b"\x78\xda") or \
            head.startswith((b"\x1f\x8b", b"\xfd7zXZ", b"BZh", b"ZF")):
        return "joblib"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") or \
            lower.endswith((".pkl", ".pickle", ".pck", ".sav")):
        return "pickle"
    raise _format(f"{name}: unrecognised model format; supported: LightGBM text, XGBoost JSON/UBJ, "
                  "scikit-learn saved with skops")


def _format(message: str) -> RefusedModel:
    return RefusedModel("refused.format", message, None)


# -- pickle: two static opinions, then the exact allow-list -----------------------------------------
def scan_pickle(data: bytes, name: str = "artifact") -> dict[str, Any]:
    """picklescan and fickling on the opcodes, the allow-list applied to what they saw; ok if none objects."""
    record = static_scan(data)
    record["reason"] = scan_verdict(record)
    record["ok"] = record["reason"] is None
    return record


def load_pickle(data: bytes) -> Any:
    """Unpickle, resolving only exact (module, name) pairs from the allow-list (the gate, scan or no scan)."""
    return _restricted_load(data)


# -- loading -------------------------------------------------------------------------------------
def _lightgbm(data: bytes, sha: str, fmt: str = "lightgbm") -> LoadedModel:
    import lightgbm as lgb

    check_lightgbm_text(data)  # before LightGBM parses a byte of it
    text = data.decode("utf-8")
    booster = lgb.Booster(model_str=text)
    names = list(booster.feature_name())
    cats: dict[str, list[Any]] = {}
    match = re.search(r"^\[categorical_feature: ([0-9,]*)\]", text, re.MULTILINE)
    stored = list(booster.pandas_categorical or [])
    if match and match.group(1) and stored:
        idx = [int(i) for i in match.group(1).split(",") if i]
        if any(i >= len(names) for i in idx):
            raise refuse("LightGBM model", "categorical_feature names a feature the model does not have")
        if len(idx) == len(stored):
            cats = {names[i]: list(c) for i, c in zip(idx, stored, strict=True)}
    objective = re.search(r"^objective=(\S+)", text, re.MULTILINE)
    return LoadedModel("lightgbm", fmt, booster, names, sha, cats, objective.group(1) if objective else "")


def _xgboost(data: bytes, sha: str, fmt: str) -> LoadedModel:
    import xgboost as xgb

    check_xgboost_bytes(data)  # before XGBoost parses a byte of it
    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    names = list(booster.feature_names or [])
    if not names:
        raise RefusedModel("refused.not_a_model", "the XGBoost model has no feature names; train it on a DataFrame "
                           "(or set booster.feature_names) and save it again as JSON/UBJ", None)
    cfg = json.loads(booster.save_config())
    objective = cfg.get("learner", {}).get("objective", {}).get("name", "")
    return LoadedModel("xgboost", fmt, booster, names, sha, {}, objective)


SUPPORTED_OBJECTS = ("a fitted scikit-learn estimator that is a tree model (DecisionTree*, RandomForest*, "
                     "ExtraTrees*, GradientBoosting*; alone or last in a Pipeline), a LightGBM Booster/LGBMModel "
                     "or an XGBoost Booster/XGBModel")


def type_name(obj: Any) -> str:
    """The dotted type name of an object, e.g. builtins.dict or sklearn.preprocessing.StandardScaler."""
    return _type_name(obj)


def _not_a_model(obj: Any, fmt: str) -> RefusedModel:
    return RefusedModel("refused.not_a_model", f"the {fmt} file holds a {type_name(obj)}, which is not a supported "
                        f"model object; supported: {SUPPORTED_OBJECTS}", None)


def _sklearn(obj: Any, sha: str, fmt: str) -> LoadedModel:
    final = obj.steps[-1][1] if type_name(obj) == "sklearn.pipeline.Pipeline" and getattr(obj, "steps", None) \
        else obj
    if isinstance(obj, type) or not callable(getattr(obj, "predict", None)) or type_name(final) not in MODELS:
        raise _not_a_model(obj, fmt)
    check_sklearn_model(obj)  # every tree's indices in range before anything predicts with it
    names = [str(n) for n in getattr(obj, "feature_names_in_", [])]
    if not names:
        raise RefusedModel("refused.not_a_model", "the scikit-learn model has no feature_names_in_; fit it on a "
                           "pandas DataFrame so the feature names are kept, then save it again", None)
    return LoadedModel("sklearn", fmt, obj, names, sha, {}, type(obj).__name__)


def _from_library(obj: Any, sha: str, fmt: str) -> LoadedModel | None:
    """A pickled LightGBM/XGBoost object, re-loaded from its native (checked) format; None for anything else."""
    modules = {c.__module__.split(".")[0] for c in type(obj).__mro__}
    try:
        if "lightgbm" in modules:
            booster = getattr(obj, "booster_", obj)
            return _lightgbm(booster.model_to_string(num_iteration=-1).encode("utf-8"), sha, fmt)
        if "xgboost" in modules:
            booster = obj.get_booster() if hasattr(obj, "get_booster") else obj
            return _xgboost(bytes(booster.save_raw("json")), sha, fmt)
    except RefusedModel:
        raise
    except Exception:  # noqa: BLE001 - e.g. an unfitted LGBMModel
        raise _not_a_model(obj, fmt) from None
    return None


def load_bytes(data: bytes, fmt: str, *, allow_pickle: bool = False) -> tuple[LoadedModel, dict | None]:
    """Load a model from bytes already hashed by the caller; returns (model, scan record)."""
    if len(data) > MAX_MODEL_BYTES:
        raise RefusedModel("refused.size", f"the model file is larger than {MAX_MODEL_BYTES >> 20} MiB", None)
    sha = sha256_bytes(data)
    if fmt == "lightgbm":
        return _lightgbm(data, sha), None
    if fmt in ("xgboost-json", "xgboost-ubj"):
        return _xgboost(data, sha, fmt), None
    if fmt == "skops":
        obj, check = load_skops(data, MAX_MODEL_BYTES)
        return _sklearn(obj, sha, fmt), check
    if fmt in PICKLE_FORMATS:
        if not allow_pickle:
            raise RefusedModel("refused.pickle",
                               f"{fmt} files are refused: loading one runs arbitrary code from the file; "
                               f"{PICKLE_ADVICE} (or pass --allow-pickle to have it scanned first)", None)
        scan = scan_pickle(data)
        if not scan["ok"]:
            raise RefusedModel("refused.unsafe_pickle", f"{fmt} refused even with --allow-pickle: "
                               f"{scan['reason']}; {PICKLE_ADVICE}", scan)
        try:
            obj = load_pickle(data)
        except RefusedModel as exc:
            raise RefusedModel(exc.event, f"{fmt} refused even with --allow-pickle: {exc}", scan) from None
        return _from_library(obj, sha, fmt) or _sklearn(obj, sha, fmt), scan
    raise RefusedModel("refused.format", f"unknown model format {fmt!r}", None)
