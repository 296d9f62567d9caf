"""What a model file may build: exact types for skops, exact (module, name) pairs for pickles, nothing by prefix.

skops and the restricted unpickler only construct what is listed here; anything else (a function such as
numpy.testing._private.utils.runstring or numpy.savetxt, a dotted name such as subprocess.Popen reached through
an allowed module) is refused before it is resolved. What the allowed types hold is checked after loading by
sklearn_checks (trees), and before the libraries parse it by artifact_checks / xgboost_checks (booster text).
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import pickle
import zipfile
from typing import Any

from workbench.explain.artifact_checks import RefusedModel, check_lightgbm_text
from workbench.explain.xgboost_checks import check_xgboost_bytes

# -- the exact list ------------------------------------------------------------------------------
TREE_ESTIMATORS = frozenset({
    "sklearn.tree._classes.DecisionTreeClassifier", "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier", "sklearn.tree._classes.ExtraTreeRegressor",
})
FORESTS = frozenset({
    "sklearn.ensemble._forest.RandomForestClassifier", "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._forest.ExtraTreesClassifier", "sklearn.ensemble._forest.ExtraTreesRegressor",
})
BOOSTING = frozenset({"sklearn.ensemble._gb.GradientBoostingClassifier",
                      "sklearn.ensemble._gb.GradientBoostingRegressor"})
MODELS = TREE_ESTIMATORS | FORESTS | BOOSTING  # what may be registered (alone or last in a Pipeline)
SKLEARN_TREE = "sklearn.tree._tree.Tree"        # untrusted by skops' defaults; checked below after loading
_LOSSES = ("AbsoluteError", "ExponentialLoss", "HalfBinomialLoss", "HalfMultinomialLoss", "HalfSquaredError",
           "HuberLoss", "PinballLoss")
SKLEARN_PARTS = frozenset({
    "sklearn.dummy.DummyClassifier", "sklearn.dummy.DummyRegressor",  # GradientBoosting's init_
    "sklearn.pipeline.Pipeline", "sklearn.preprocessing._data.StandardScaler",
    "sklearn._loss.link.HalfLogitLink", "sklearn._loss.link.IdentityLink", "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink", "sklearn._loss.link.MultinomialLogit",
    *(f"sklearn._loss.loss.{n}" for n in _LOSSES),
})
CY_LOSSES = frozenset(f"sklearn._loss._loss.Cy{n}" for n in _LOSSES)
NUMPY_SCALARS = frozenset(f"numpy.{n}" for n in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                                                 "uint32", "uint64", "float16", "float32", "float64", "str_"))
PRIMITIVES = frozenset({"builtins.str", "builtins.int", "builtins.float", "builtins.bool"})
RANDOM_STATE = "numpy.random.mtrand.RandomState"

# skops: which loader may build which exact types. Absent on purpose: FunctionNode, MethodNode, PartialNode,
# OperatorFuncNode, ConstructorFromReduceNode (calls any callable with arguments: runstring, savetxt),
# DefaultDictNode, SparseMatrixNode, RandomGeneratorNode, BytesNode.
SKOPS_ALLOWED: dict[str, frozenset[str]] = {
    "ObjectNode": MODELS | SKLEARN_PARTS,
    "TreeNode": frozenset({SKLEARN_TREE}),
    "LossNode": CY_LOSSES,
    "NdArrayNode": frozenset({"numpy.ndarray"}) | NUMPY_SCALARS,
    "DTypeNode": frozenset({"numpy.dtype"}),
    "RandomStateNode": frozenset({RANDOM_STATE}),
    "DictNode": frozenset({"builtins.dict", "collections.OrderedDict"}),
    "ListNode": frozenset({"builtins.list"}),
    "TupleNode": frozenset({"builtins.tuple"}),
    "JsonNode": PRIMITIVES | {"builtins.NoneType"},
    "TypeNode": PRIMITIVES | NUMPY_SCALARS,  # dict key types
}
SKOPS_TYPES = frozenset().union(*SKOPS_ALLOWED.values())

ALLOWED_CLASSES = MODELS | SKLEARN_PARTS | CY_LOSSES | {SKLEARN_TREE, RANDOM_STATE} | {
    "lightgbm.sklearn.LGBMClassifier", "lightgbm.sklearn.LGBMRegressor", "lightgbm.basic.Booster",
    "sklearn.preprocessing._label.LabelEncoder",  # LGBMClassifier._le
    "xgboost.sklearn.XGBClassifier", "xgboost.sklearn.XGBRegressor", "xgboost.core.Booster",
}
# pickle: exact (module, name) -> the object actually imported. Names never contain a dot.
PICKLE_ALLOWED: dict[tuple[str, str], str] = {tuple(c.rsplit(".", 1)): c for c in ALLOWED_CLASSES}  # type: ignore[misc]
PICKLE_ALLOWED.update({
    ("numpy", "ndarray"): "numpy.ndarray", ("numpy", "dtype"): "numpy.dtype",
    ("numpy._core.multiarray", "_reconstruct"): "numpy._core.multiarray._reconstruct",
    ("numpy.core.multiarray", "_reconstruct"): "numpy._core.multiarray._reconstruct",
    ("numpy._core.multiarray", "scalar"): "numpy._core.multiarray.scalar",
    ("numpy.core.multiarray", "scalar"): "numpy._core.multiarray.scalar",
    ("numpy._core.numeric", "_frombuffer"): "numpy._core.numeric._frombuffer",
    ("numpy.core.numeric", "_frombuffer"): "numpy._core.numeric._frombuffer",
    ("numpy.random._pickle", "__randomstate_ctor"): "numpy.random._pickle.__randomstate_ctor",
    ("numpy.random._pickle", "__bit_generator_ctor"): "numpy.random._pickle.__bit_generator_ctor",
    ("numpy.random._mt19937", "MT19937"): "numpy.random._mt19937.MT19937",
    ("numpy.random.bit_generator", "SeedSequence"): "numpy.random.bit_generator.SeedSequence",
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"):
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    ("sklearn._loss._loss", "__pyx_unpickle_CyHalfMultinomialLoss"):
        "sklearn._loss._loss.__pyx_unpickle_CyHalfMultinomialLoss",
    ("copyreg", "_reconstructor"): "copyreg._reconstructor", ("copy_reg", "_reconstructor"): "copyreg._reconstructor",
    ("collections", "OrderedDict"): "collections.OrderedDict",
    ("collections", "defaultdict"): "collections.defaultdict",
    ("_codecs", "encode"): "_codecs.encode",
})
for _name in ("object", "set", "frozenset", "slice", "complex"):
    PICKLE_ALLOWED[("builtins", _name)] = PICKLE_ALLOWED[("__builtin__", _name)] = f"builtins.{_name}"
for _name in ("bytes", "bytearray"):  # bytearray(10**10) would be a 10 GB allocation: a checked stand-in
    PICKLE_ALLOWED[("builtins", _name)] = PICKLE_ALLOWED[("__builtin__", _name)] = f"workbench.{_name}"


def _refused(event: str, message: str, scan: dict | None = None) -> RefusedModel:
    return RefusedModel(event, message, scan)


# -- skops ---------------------------------------------------------------------------------------
def _schema_nodes(state: Any, found: set[tuple[str, str]], depth: int = 0) -> None:
    if depth > 200:
        raise _refused("refused.skops_types", "skops file refused: schema nested too deeply")
    if isinstance(state, dict):
        if "__loader__" in state:
            found.add((str(state.get("__loader__")), f"{state.get('__module__')}.{state.get('__class__')}"))
        for value in state.values():
            _schema_nodes(value, found, depth + 1)
    elif isinstance(state, list):
        for value in state:
            _schema_nodes(value, found, depth + 1)


def skops_types(data: bytes, max_bytes: int) -> dict[str, Any]:
    """Every (loader, type) the skops schema would build, checked against SKOPS_ALLOWED, then skops' own view."""
    import skops.io as sio

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > 100_000 or sum(i.file_size for i in infos) > max_bytes:
                raise _refused("refused.skops_types", "skops file refused: it unpacks to more than the size limit")
            schema = json.loads(zf.read("schema.json"))
        found: set[tuple[str, str]] = set()
        _schema_nodes(schema, found)  # our own reading first: no skops code has seen the file yet
        refused = {t for loader, t in found if t not in SKOPS_ALLOWED.get(loader, ())}
        untrusted = [] if refused else sorted(sio.get_untrusted_types(data=data))
    except RefusedModel:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable archive is refused, not crashed on
        raise _refused("refused.skops_types", f"skops file refused: unreadable ({str(exc).splitlines()[0][:120]})",
                       {"checker": "skops", "ok": False}) from None
    refused |= {t for t in untrusted if t not in SKOPS_TYPES}  # skops' view must agree with ours
    check = {"checker": "skops", "ok": not refused, "untrusted": untrusted, "refused": sorted(refused),
             "nodes": sorted(f"{loader}:{t}" for loader, t in found if t not in SKOPS_ALLOWED.get(loader, ())),
             "reason": f"builds types outside the exact allow-list: {', '.join(sorted(refused))}" if refused else None}
    if refused:
        raise _refused("refused.skops_types", f"skops file refused: {check['reason']}", check)
    return check


def load_skops(data: bytes, max_bytes: int) -> tuple[Any, dict[str, Any]]:
    """Load a skops file that builds only allow-listed types; trust passed to skops is that exact list."""
    import skops.io as sio

    check = skops_types(data, max_bytes)
    return sio.loads(data, trusted=[t for t in check["untrusted"] if t in SKOPS_TYPES]), check


# -- pickle --------------------------------------------------------------------------------------
def _from_data(kind: type) -> Any:
    def build(*args: Any) -> Any:
        if args and not isinstance(args[0], (bytes, bytearray, str)) or len(args) > 3:
            raise _refused("refused.unsafe_pickle", f"pickle refused: {kind.__name__} built from "
                           f"{type(args[0]).__name__ if args else 'nothing'}, not from data")
        return kind(*args)

    return build


def _resolve(dotted: str) -> Any:
    module, name = dotted.rsplit(".", 1)
    if module == "workbench":
        return _from_data(bytes if name == "bytes" else bytearray)
    if dotted == "lightgbm.basic.Booster":
        return _checked_lightgbm_booster()
    if dotted == "xgboost.core.Booster":
        return _checked_xgboost_booster()
    return getattr(importlib.import_module(module), name)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves exact (module, name) pairs from PICKLE_ALLOWED only: no prefixes, no dotted attribute walks."""

    def find_class(self, module: str, name: str) -> Any:
        """The allow-listed object for an exact (module, name) pair; anything else is refused."""
        target = PICKLE_ALLOWED.get((module, name))
        if target is None:
            kind = "a dotted name" if "." in name else "an import"
            raise _refused("refused.unsafe_pickle", f"pickle refused: {kind} {module}.{name} is not on the "
                           "allow-list of exact (module, name) pairs")
        return _resolve(target)

    def persistent_load(self, pid: Any) -> Any:
        """Refused: model pickles have no persistent ids."""
        raise _refused("refused.unsafe_pickle", "pickle refused: persistent ids are not allowed")


def static_scan(data: bytes) -> dict[str, Any]:
    """Two static opinions (picklescan, fickling) and the allow-list applied to what they saw. A signal only."""
    record: dict[str, Any] = {"scanner": "picklescan", "gate": "exact (module, name) allow-list at load time"}
    try:
        from picklescan.scanner import SafetyLevel, scan_pickle_bytes

        result = scan_pickle_bytes(io.BytesIO(data), "artifact")
        seen = [(g.module, g.name, g.safety == SafetyLevel.Dangerous) for g in result.globals]
        record["picklescan"] = {"dangerous": sorted({f"{m}.{n}" for m, n, bad in seen if bad}),
                                "scan_error": bool(result.scan_err)}
        record["globals"] = sorted({f"{m}.{n}" for m, n, _ in seen})
        record["not_allowed"] = sorted({f"{m}.{n}" for m, n, bad in seen if (m, n) not in PICKLE_ALLOWED})
    except Exception as exc:  # noqa: BLE001 - a scanner failure is recorded, it is not "safe"
        record["picklescan"] = {"error": str(exc)[:200], "dangerous": [], "scan_error": True}
        record["globals"], record["not_allowed"] = [], []
    record["dangerous"] = record["picklescan"]["dangerous"]
    record["scan_error"] = record["picklescan"]["scan_error"]
    record["fickling"] = _fickling(data)
    return record


def _fickling(data: bytes) -> dict[str, Any]:
    try:
        from fickling.analysis import Analysis, Analyzer, NonStandardImports, check_safety
        from fickling.fickle import Pickled
        from fickling.ml import MLAllowlist

        allow = MLAllowlist()
        allow.allowlist = {}
        for module, name in PICKLE_ALLOWED:
            allow.allowlist.setdefault(module, {})[name] = "workbench exact allow-list"
        analyses = [a for a in Analysis.ALL if not isinstance(a, NonStandardImports)] + [allow]
        pickled = Pickled.load(io.BytesIO(data), fail_on_decode_error=False)
        results = check_safety(pickled, analyzer=Analyzer(analyses))
        findings = sorted({str(r)[:200] for r in results.results if r.severity.severity > 0})
        outside = sorted({str(r.trigger)[:200] for r in results.results if r.analysis_name == "MLAllowlist"})
        return {"severity": results.severity.name, "findings": findings[:20], "not_allowed": outside,
                "invalid_opcode": bool(pickled.has_invalid_opcode)}
    except Exception as exc:  # noqa: BLE001 - e.g. an opcode fickling does not model (BYTEARRAY8)
        return {"severity": None, "error": f"{type(exc).__name__}: {str(exc)[:160]}"}


def scan_verdict(record: dict[str, Any]) -> str | None:
    """Why the static opinions refuse the file (None: no objection; the allow-list still decides at load)."""
    if record["dangerous"]:
        return f"unsafe imports found: {', '.join(record['dangerous'])}"
    if record["not_allowed"]:
        return f"imports outside the exact allow-list: {', '.join(record['not_allowed'])}"
    if record["scan_error"]:
        return ("the scanner could not read the whole stream (joblib arrays or a compressed file), "
                "so it cannot be shown safe")
    # fickling rates every scikit-learn pickle "likely overtly malicious" (numpy.random._pickle, __new__ calls),
    # so only its reading of the imports against our list, and its top severity (exec/eval/open calls), refuse.
    fickling = record["fickling"]
    if fickling.get("not_allowed"):
        return f"fickling: imports outside the exact allow-list: {', '.join(fickling['not_allowed'][:5])}"
    if fickling.get("severity") == "OVERTLY_MALICIOUS":
        return f"fickling: {'; '.join(fickling['findings'][:3])}"
    return None


def load_pickle(data: bytes) -> Any:
    """Unpickle with RestrictedUnpickler (the gate), whatever the scanners said."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


@functools.cache
def _checked_lightgbm_booster() -> type:
    import lightgbm as lgb

    class CheckedLightGBMBooster(lgb.Booster):
        """lightgbm.basic.Booster whose pickled model text is checked before LightGBM parses it."""

        def __setstate__(self, state: dict[str, Any]) -> None:
            model = state.get("_handle", state.get("handle")) if isinstance(state, dict) else None
            if model is not None:
                if not isinstance(model, str):
                    raise _refused("refused.unsafe_pickle", "pickle refused: a LightGBM Booster without model text")
                check_lightgbm_text(model.encode("utf-8"), "the pickled LightGBM model")
            super().__setstate__(state)

    return CheckedLightGBMBooster


@functools.cache
def _checked_xgboost_booster() -> type:
    import xgboost as xgb

    class CheckedXGBoostBooster(xgb.Booster):
        """xgboost.core.Booster whose pickled buffer is checked before XGBoost parses it."""

        def __setstate__(self, state: dict[str, Any]) -> None:
            handle = state.get("handle") if isinstance(state, dict) else None
            if handle is not None:
                if not isinstance(handle, (bytes, bytearray)):
                    raise _refused("refused.unsafe_pickle", "pickle refused: an XGBoost Booster without a buffer")
                check_xgboost_bytes(bytes(handle), "the pickled XGBoost model")
            super().__setstate__(state)

    return CheckedXGBoostBooster
