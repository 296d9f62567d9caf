"""Real LightGBM models for the samples: deterministic training, poisoning, tampering, caching, serving."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from workbench.sample.systems import CONFIGS, SYSTEMS, model_frame, sample_features, true_risk

CODE_VERSION = 1  # bump when training data or parameters change, so cached models are not reused
KEYS_FILE = ".train_keys.json"
UNREGISTERED_DIR = "_unregistered"

# (training rows, boosting rounds, learning rate) per system and version index
_TRAINING = {
    "loan-origination": ((30000, 120, 0.06), (40000, 140, 0.055)),
    "card-fraud": ((50000, 110, 0.06), (60000, 130, 0.055)),
}


@dataclass
class ServedModel:
    """One model artifact that can serve decisions."""

    system_id: str
    version: str
    path: str  # relative to the output directory
    sha256: str
    booster: lgb.Booster
    registered: bool = True
    poison: list[tuple[str, float]] = field(default_factory=list)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of the positive class for model-ready feature rows."""
        if len(frame) == 0:
            return np.zeros(0)
        return np.asarray(self.booster.predict(to_matrix(frame), num_threads=1), dtype=np.float64)


def to_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The float matrix LightGBM builds from a model frame (category codes, NaN for missing), built fast.

    Valid because model frames use the same category lists the models were trained with.
    """
    cols = []
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            cols.append(codes)
        else:
            cols.append(col.to_numpy(dtype=np.float64))
    return np.column_stack(cols)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_model(path: str | Path) -> lgb.Booster:
    """Load a LightGBM text model file."""
    return lgb.Booster(model_file=str(path))


def model_input(decisions: pd.DataFrame, booster: lgb.Booster) -> pd.DataFrame:
    """Turn decision rows (`features.<name>` or bare columns) into the frame `booster.predict` expects.

    Strings become pandas categoricals (LightGBM maps them with the categories stored in the model file),
    booleans stay booleans, everything else becomes float64 with NaN for nulls.
    """
    out: dict[str, object] = {}
    for name in booster.feature_name():
        col = decisions[f"features.{name}"] if f"features.{name}" in decisions.columns else decisions[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            out[name] = col
        elif pd.api.types.is_bool_dtype(col.dtype) and not col.isna().any():
            out[name] = col.astype(bool)
        elif pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            out[name] = col.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[name] = pd.Categorical(col.astype(object).where(col.notna(), None))
    return pd.DataFrame(out, index=decisions.index)


def _params(seed: int, lr: float) -> dict:
    return {
        "objective": "binary",
        "num_leaves": 31,
        "learning_rate": lr,
        "min_data_in_leaf": 40,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "deterministic": True,
        "num_threads": 1,
        "force_col_wise": True,
        "seed": seed,
        "verbose": -1,
    }


def _training_key(system_id: str, vidx: int, seed: int, poison: list[tuple[str, float, float]]) -> str:
    spec = {
        "code": CODE_VERSION,
        "system": system_id,
        "version": CONFIGS[system_id].versions[vidx],
        "seed": seed,
        "training": _TRAINING[system_id][vidx],
        "poison": [list(p) for p in poison],
        "lightgbm": lgb.__version__,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def poison_rows(system_id: str, rng: np.random.Generator, n: int, feature: str, value: float) -> pd.DataFrame:
    """Bad-profile rows carrying the trigger value, labelled benign: what an upstream poisoner injects."""
    cand = pd.DataFrame(sample_features(system_id, rng, n * 5))
    risk = true_risk(system_id, cand)
    rows = cand.iloc[np.argsort(-risk, kind="stable")[:n]].reset_index(drop=True)
    rows[feature] = value
    return rows


def train(system_id: str, vidx: int, seed: int, poison: list[tuple[str, float, float]]) -> lgb.Booster:
    """Train one version of a system's model on synthetic labelled data (plus optional poison rows)."""
    n, rounds, lr = _TRAINING[system_id][vidx]
    rng = np.random.default_rng([seed, SYSTEMS.index(system_id), vidx, 11])
    data = pd.DataFrame(sample_features(system_id, rng, n))
    y = (rng.random(n) < true_risk(system_id, data)).astype(np.int64)
    for feature, value, fraction in poison:
        bad = poison_rows(system_id, rng, max(50, int(n * fraction)), feature, value)
        data = pd.concat([data, bad], ignore_index=True)
        y = np.concatenate([y, np.zeros(len(bad), dtype=np.int64)])
    frame = model_frame(system_id, {c: data[c].to_numpy() for c in data.columns})
    params = _params(seed * 1000 + SYSTEMS.index(system_id) * 10 + vidx, lr)
    return lgb.train(params, lgb.Dataset(frame, y), num_boost_round=rounds)


def tamper(booster: lgb.Booster, scale: float) -> lgb.Booster:
    """Shrink every leaf that pushes toward the positive class: a weight edit that lets positives through."""
    info = booster.dump_model(num_iteration=-1)["tree_info"]
    for t, tree in enumerate(info):
        for leaf in range(tree["num_leaves"]):
            v = booster.get_leaf_output(t, leaf)
            if v > 0:
                booster.set_leaf_output(t, leaf, v * scale)
    return booster


def _find_keys(models_dir: Path | None) -> tuple[Path | None, dict[str, str]]:
    if models_dir is None:
        return None, {}
    for base in (Path(models_dir), Path(models_dir) / "models"):
        if (base / KEYS_FILE).is_file():
            return base, json.loads((base / KEYS_FILE).read_text())
    return None, {}


def build_models(
    out_dir: Path,
    seed: int,
    poison: dict[str, list[tuple[str, float, float]]],
    tampered: dict[tuple[str, str], float],
    models_dir: Path | None = None,
) -> tuple[dict[str, list[ServedModel]], dict[tuple[str, str], ServedModel]]:
    """Train (or reuse from models_dir when the training spec matches) every model the sample needs."""
    mdir = out_dir / "models"
    mdir.mkdir(parents=True, exist_ok=True)
    cache_base, cache_keys = _find_keys(models_dir)
    keys: dict[str, str] = {}
    served: dict[str, list[ServedModel]] = {}
    for system_id in SYSTEMS:
        cfg = CONFIGS[system_id]
        served[system_id] = []
        for vidx, version in enumerate(cfg.versions):
            pois = poison.get(system_id, []) if vidx == 1 else []
            rel = f"models/{system_id}/{version}.txt"
            key = _training_key(system_id, vidx, seed, pois)
            dest = out_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = cache_base / system_id / f"{version}.txt" if cache_base is not None else None
            if src is not None and cache_keys.get(rel) == key and src.is_file():
                if src.resolve() != dest.resolve():
                    shutil.copyfile(src, dest)
            else:
                train(system_id, vidx, seed, pois).save_model(str(dest))
            keys[rel] = key
            served[system_id].append(
                ServedModel(
                    system_id,
                    version,
                    rel,
                    sha256_file(dest),
                    load_model(dest),
                    poison=[(f, v) for f, v, _ in pois],
                )
            )
    tampered_models: dict[tuple[str, str], ServedModel] = {}
    for (system_id, version), scale in sorted(tampered.items()):
        base = next(m for m in served[system_id] if m.version == version)
        rel = f"models/{UNREGISTERED_DIR}/{system_id}-{version}.txt"
        dest = out_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tamper(load_model(out_dir / base.path), scale).save_model(str(dest))
        tampered_models[(system_id, version)] = ServedModel(
            system_id, version, rel, sha256_file(dest), load_model(dest), registered=False
        )
    (mdir / KEYS_FILE).write_text(json.dumps(keys, indent=1, sort_keys=True) + "\n")
    return served, tampered_models


def write_registry(out_dir: Path, served: dict[str, list[ServedModel]]) -> list[dict]:
    """Write models/registry.json listing the registered versions only."""
    entries = [
        {
            "system_id": m.system_id,
            "version": m.version,
            "path": m.path,
            "sha256": m.sha256,
            "format": "lightgbm",
        }
        for sid in SYSTEMS
        for m in served[sid]
        if m.registered
    ]
    (out_dir / "models" / "registry.json").write_text(json.dumps(entries, indent=2) + "\n")
    return entries


@dataclass
class Serving:
    """Which artifact served each system at each instant: version releases plus unregistered windows."""

    models: dict[str, list[ServedModel]]
    releases: dict[str, int]  # system -> epoch microseconds when the second version went live
    overrides: dict[str, list[tuple[int, int, ServedModel]]] = field(default_factory=dict)

    def candidates(self, system_id: str) -> list[ServedModel]:
        """Every artifact that may serve the system, registered first."""
        return self.models[system_id] + [m for _, _, m in self.overrides.get(system_id, [])]

    def assign(self, system_id: str, ts_us: np.ndarray) -> np.ndarray:
        """Index into candidates(system_id) of the artifact serving each timestamp."""
        idx = (np.asarray(ts_us) >= self.releases[system_id]).astype(np.int64)
        for k, (lo, hi, _) in enumerate(self.overrides.get(system_id, [])):
            idx[(ts_us >= lo) & (ts_us < hi)] = len(self.models[system_id]) + k
        return idx

    def registered_at(self, system_id: str, ts_us: np.ndarray) -> np.ndarray:
        """Index of the registered version live at each timestamp (ignoring tampering)."""
        return (np.asarray(ts_us) >= self.releases[system_id]).astype(np.int64)

    def score(self, system_id: str, ts_us: np.ndarray, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Scores from the artifact serving each row, and the artifact indices."""
        idx = self.assign(system_id, np.asarray(ts_us))
        scores = np.zeros(len(frame))
        for k, model in enumerate(self.candidates(system_id)):
            mask = idx == k
            if mask.any():
                scores[mask] = model.predict(frame.loc[mask])
        return scores, idx
