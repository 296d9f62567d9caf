"""Safe model loaders: format sniffing, pickle scanning, and loading from hash-checked bytes only."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import WorkbenchError

SAFE_FORMATS = ("lightgbm", "xgboost-json", "xgboost-ubj", "skops")
PICKLE_FORMATS = ("pickle", "joblib")
PICKLE_ADVICE = ("save LightGBM models as text (booster.save_model('model.txt')), XGBoost as JSON/UBJ "
                 "(booster.save_model('model.json')), scikit-learn with skops "
                 "(skops.io.dump(model, 'model.skops'))")

# skops types beyond its own defaults that we accept: scikit-learn, numpy and scipy containers only.
SKOPS_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "collections.OrderedDict", "builtins.")
SKOPS_REFUSED = ("builtins.eval", "builtins.exec", "builtins.getattr", "builtins.setattr", "builtins.open",
                 "builtins.__import__", "builtins.compile", "builtins.globals", "builtins.vars",
                 "builtins.input")

# What a scanned pickle may import: classes from model libraries, plus the numpy/stdlib reconstructors.
_PICKLE_CLASS_MODULES = ("sklearn.", "lightgbm.", "xgboost.")
_PICKLE_EXACT = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("numpy.random", "__RandomState_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._mt19937", "MT19937"), ("numpy.random.mtrand", "RandomState"),
    ("copyreg", "_reconstructor"), ("collections", "OrderedDict"), ("_codecs", "encode"),
    ("builtins", "object"), ("builtins", "slice"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "complex"), ("builtins", "bytearray"), ("builtins", "range"),
}


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
        raise WorkbenchError(f"{name}: a zip archive that is not a skops file (e.g. a PyTorch checkpoint); "
                             f"not supported: {PICKLE_ADVICE}")
    if head.startswith(b"{L") or head.startswith(b"{U") or head.startswith(b"{i") or head.startswith(b"{$"):
        return "xgboost-ubj"
    if head.lstrip().startswith(b"{"):
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise WorkbenchError(f"{name}: JSON that does not parse ({exc})") from exc
        if isinstance(doc, dict) and "learner" in doc:
            return "xgboost-json"
        raise WorkbenchError(f"{name}: JSON but not an XGBoost model (no 'learner'); "
                             f"supported: {PICKLE_ADVICE}")
    if lower.endswith((".joblib", ".jbl")) or head[:2] in (b"\x78\x9c", b"\x78\x01", b"\x78\xda") or \
            head.startswith((b"\x1f\x8b", b"\xfd7zXZ", b"BZh", b"ZF")):
        return "joblib"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") or \
            lower.endswith((".pkl", ".pickle", ".pck", ".sav")):
        return "pickle"
    raise WorkbenchError(f"{name}: unrecognised model format; supported: LightGBM text, XGBoost JSON/UBJ, "
                         "scikit-learn saved with skops")


# -- pickle: static scan, then a restricted unpickler -------------------------------------------
def _allowed_global(module: str, name: str) -> bool:
    if (module, name) in _PICKLE_EXACT:
        return True
    return module.startswith(_PICKLE_CLASS_MODULES) and not name.startswith("_")


def scan_pickle(data: bytes, name: str = "artifact") -> dict[str, Any]:
    """Scan a pickle's opcodes with picklescan; ok only if it read everything and every import is allowed."""
    from picklescan.scanner import SafetyLevel, scan_pickle_bytes

    try:
        result = scan_pickle_bytes(io.BytesIO(data), name)
    except Exception as exc:  # noqa: BLE001 - any scanner failure means "not shown safe"
        return {"scanner": "picklescan", "ok": False, "error": f"scanner failed: {exc}", "globals": []}
    found = sorted({f"{g.module}.{g.name}" for g in result.globals})
    dangerous = sorted({f"{g.module}.{g.name}" for g in result.globals if g.safety == SafetyLevel.Dangerous})
    not_allowed = sorted({f"{g.module}.{g.name}" for g in result.globals
                          if g.safety != SafetyLevel.Dangerous and not _allowed_global(g.module, g.name)})
    ok = not dangerous and not not_allowed and not result.scan_err
    reason = None
    if dangerous:
        reason = f"unsafe imports found: {', '.join(dangerous)}"
    elif result.scan_err:
        reason = ("the scanner could not read the whole stream (joblib arrays or a compressed file), "
                  "so it cannot be shown safe")
    elif not_allowed:
        reason = f"imports outside the model-library allow-list: {', '.join(not_allowed)}"
    return {"scanner": "picklescan", "ok": ok, "dangerous": dangerous, "not_allowed": not_allowed,
            "globals": found, "scan_error": bool(result.scan_err), "reason": reason}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals (defence in depth after the scan)."""

    def find_class(self, module: str, name: str) -> Any:
        if not _allowed_global(module, name):
            raise WorkbenchError(f"pickle refused: it imports {module}.{name}, which is not allowed")
        obj = super().find_class(module, name)
        if module.startswith(_PICKLE_CLASS_MODULES) and not isinstance(obj, type):
            raise WorkbenchError(f"pickle refused: {module}.{name} is not a class")
        return obj


def load_pickle(data: bytes) -> Any:
    """Unpickle bytes that already passed scan_pickle, resolving only allow-listed classes."""
    return _RestrictedUnpickler(io.BytesIO(data)).load()


# -- skops ---------------------------------------------------------------------------------------
def skops_types(data: bytes) -> dict[str, Any]:
    """Check a skops file's untrusted types against the allow-list."""
    import skops.io as sio

    try:
        untrusted = sorted(sio.get_untrusted_types(data=data))
    except Exception as exc:  # noqa: BLE001 - unreadable file
        return {"checker": "skops", "ok": False, "untrusted": [], "refused": [],
                "reason": f"unreadable: {exc}"}
    refused = [t for t in untrusted if t in SKOPS_REFUSED or not t.startswith(SKOPS_TRUSTED_PREFIXES)]
    return {"checker": "skops", "ok": not refused, "untrusted": untrusted, "refused": refused,
            "reason": f"types outside the allow-list: {', '.join(refused)}" if refused else None}


# -- loading -------------------------------------------------------------------------------------
def _lightgbm(data: bytes, sha: str) -> LoadedModel:
    import lightgbm as lgb

    text = data.decode("utf-8")
    booster = lgb.Booster(model_str=text)
    names = list(booster.feature_name())
    cats: dict[str, list[Any]] = {}
    match = re.search(r"^\[categorical_feature: ([0-9,]*)\]", text, re.MULTILINE)
    stored = list(booster.pandas_categorical or [])
    if match and match.group(1) and stored:
        idx = [int(i) for i in match.group(1).split(",")]
        if len(idx) == len(stored):
            cats = {names[i]: list(c) for i, c in zip(idx, stored, strict=True)}
    objective = re.search(r"^objective=(\S+)", text, re.MULTILINE)
    return LoadedModel("lightgbm", "lightgbm", booster, names, sha, cats,
                       objective.group(1) if objective else "")


def _xgboost(data: bytes, sha: str, fmt: str) -> LoadedModel:
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    names = list(booster.feature_names or [])
    if not names:
        raise WorkbenchError("the XGBoost model has no feature names; train it on a DataFrame (or set "
                             "booster.feature_names) and save it again as JSON/UBJ")
    cfg = json.loads(booster.save_config())
    objective = cfg.get("learner", {}).get("objective", {}).get("name", "")
    return LoadedModel("xgboost", fmt, booster, names, sha, {}, objective)


SUPPORTED_OBJECTS = ("a fitted scikit-learn estimator (a classifier or regressor with predict, e.g. "
                     "GradientBoostingClassifier or a Pipeline ending in one) or a LightGBM Booster/LGBMModel")


def type_name(obj: Any) -> str:
    """The dotted type name of an object, e.g. builtins.dict or sklearn.preprocessing.StandardScaler."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_model_object(obj: Any, fmt: str) -> None:
    """Refuse an unpickled/skops object that is not a model we can explain, naming what it is."""
    if callable(getattr(obj, "predict", None)) and not isinstance(obj, type):
        return
    raise WorkbenchError(f"the {fmt} file holds a {type_name(obj)}, which is not a supported model object; "
                         f"supported: {SUPPORTED_OBJECTS}")


def _sklearn(obj: Any, sha: str, fmt: str) -> LoadedModel:
    _check_model_object(obj, fmt)
    names = [str(n) for n in getattr(obj, "feature_names_in_", [])]
    if not names:
        raise WorkbenchError("the scikit-learn model has no feature_names_in_; fit it on a pandas DataFrame "
                             "so the feature names are kept, then save it again")
    return LoadedModel("sklearn", fmt, obj, names, sha, {}, type(obj).__name__)


def load_bytes(data: bytes, fmt: str, *, allow_pickle: bool = False) -> tuple[LoadedModel, dict | None]:
    """Load a model from bytes already hashed by the caller; returns (model, scan record)."""
    sha = sha256_bytes(data)
    if fmt == "lightgbm":
        return _lightgbm(data, sha), None
    if fmt in ("xgboost-json", "xgboost-ubj"):
        return _xgboost(data, sha, fmt), None
    if fmt == "skops":
        import skops.io as sio

        check = skops_types(data)
        if not check["ok"]:
            raise RefusedModel("refused.skops_types", f"skops file refused: {check['reason']}", check)
        return _sklearn(sio.loads(data, trusted=check["untrusted"]), sha, fmt), check
    if fmt in PICKLE_FORMATS:
        if not allow_pickle:
            raise RefusedModel("refused.pickle",
                               f"{fmt} files are refused: loading one runs arbitrary code from the file; "
                               f"{PICKLE_ADVICE} (or pass --allow-pickle to have it scanned first)", None)
        scan = scan_pickle(data)
        if not scan["ok"]:
            raise RefusedModel("refused.unsafe_pickle", f"{fmt} refused even with --allow-pickle: "
                               f"{scan['reason']}; {PICKLE_ADVICE}", scan)
        obj = load_pickle(data)
        if type(obj).__module__.startswith("lightgbm."):
            booster = getattr(obj, "booster_", obj)
            if not callable(getattr(booster, "model_to_string", None)):
                raise WorkbenchError(f"the {fmt} file holds a {type_name(obj)}, which is not a supported model "
                                     f"object (a fitted LightGBM Booster or LGBMModel is); supported: "
                                     f"{SUPPORTED_OBJECTS}")
            return _lightgbm(booster.model_to_string().encode(), sha), scan
        return _sklearn(obj, sha, fmt), scan
    raise WorkbenchError(f"unknown model format {fmt!r}")


class RefusedModel(WorkbenchError):
    """A model the registry will not load; carries the event name and scan record for the log."""

    def __init__(self, event: str, message: str, scan: dict | None) -> None:
        super().__init__(message)
        self.event = event
        self.scan = scan
