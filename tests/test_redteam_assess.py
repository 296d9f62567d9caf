"""`model assess`: format, code execution on load, safetensors/ONNX/zip contents, signatures, AI-BOM hashes."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from workbench.access import local_admin
from workbench.redteam.assess import assess
from workbench.redteam.bom import export_bom


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def _lgb(tmp_path: Path) -> Path:
    import lightgbm as lgb
    import pandas as pd

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.random(300), "b": rng.random(300)})
    b = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1}, lgb.Dataset(X, (X["a"] > 0.5) * 1), 5)
    p = tmp_path / "m.txt"
    b.save_model(str(p))
    return p


def _safetensors(tensors: dict, bad_offsets: bool = False) -> bytes:
    head, body = {}, b""
    for name, arr in tensors.items():
        raw = np.asarray(arr, dtype=np.float32).tobytes()
        end = len(body) + len(raw) + (100 if bad_offsets else 0)
        head[name] = {"dtype": "F32", "shape": list(np.shape(arr)), "data_offsets": [len(body), end]}
        body += raw
    h = json.dumps(head).encode()
    return struct.pack("<Q", len(h)) + h + body


def _bom(tmp_path: Path, name: str, sha: str) -> Path:
    p = tmp_path / "bom.json"
    p.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [
        {"type": "machine-learning-model", "name": name, "version": "1", "hashes": [{"alg": "SHA-256",
                                                                                    "content": sha}]}]}))
    return p


def test_safe_lightgbm_is_accepted_and_bom_checked(ws, tmp_path):
    p = _lgb(tmp_path)
    sha = hashlib.sha256(p.read_bytes()).hexdigest()
    a = assess(ws, local_admin(), p, bom=_bom(tmp_path, "m", sha))
    assert a["format"] == "lightgbm" and not a["can_run_code"] and a["decision"] == "accept"
    assert a["bom"]["listed"]
    bad = assess(ws, local_admin(), p, bom=_bom(tmp_path, "m", "0" * 64))
    assert bad["decision"] == "refuse" and bad["bom"]["mismatch"]
    assert ws.scalar("SELECT count(*) FROM model_assessments WHERE sha256 = ?", [sha]) == 2


def test_malicious_pickle_and_pytorch_zip_are_refused(ws, tmp_path):
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps(_Evil()))
    a = assess(ws, local_admin(), p)
    assert a["can_run_code"] and a["decision"] == "refuse" and any("system" in i for i in a["pickle"]["imports"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(_Evil()))
        zf.writestr("archive/version", "3")
    z = tmp_path / "model.pt"
    z.write_bytes(buf.getvalue())
    a = assess(ws, local_admin(), z)
    assert a["format"] == "pytorch" and a["can_run_code"] and a["decision"] == "refuse"
    assert "archive/data.pkl" in a["zip"]["pickles"]


def test_safetensors_header_sanity(ws, tmp_path):
    good = tmp_path / "w.safetensors"
    good.write_bytes(_safetensors({"w": [[1.0, 2.0], [3.0, 4.0]]}))
    a = assess(ws, local_admin(), good)
    assert a["format"] == "safetensors" and a["safetensors"]["ok"] and not a["can_run_code"]
    assert a["decision"] == "review"  # data only, but not a model the registry can load
    bad = tmp_path / "b.safetensors"
    bad.write_bytes(_safetensors({"w": [1.0, 2.0]}, bad_offsets=True))
    a = assess(ws, local_admin(), bad)
    assert a["decision"] == "refuse" and a["safetensors"]["problems"]


def _pb(num: int, payload: bytes) -> bytes:
    return bytes([(num << 3) | 2, len(payload)]) + payload


def test_onnx_custom_domain_can_run_code(ws, tmp_path):
    node = _pb(4, b"EvilOp") + _pb(7, b"com.vendor.custom")
    model = _pb(8, _pb(1, b"")) + _pb(7, _pb(1, node))
    p = tmp_path / "m.onnx"
    p.write_bytes(model)
    a = assess(ws, local_admin(), p)
    assert a["onnx"]["custom_domains"] == ["com.vendor.custom"] and a["can_run_code"]
    assert a["decision"] == "refuse"


def test_model_signing_offline_key(ws, tmp_path):
    model_signing = pytest.importorskip("model_signing")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (tmp_path / "pub.pem").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    p = _lgb(tmp_path)
    model_signing.signing.Config().use_elliptic_key_signer(private_key=str(tmp_path / "k.pem")).sign(
        str(p), str(tmp_path / "m.sig"))
    ok = assess(ws, local_admin(), p, signature=tmp_path / "m.sig", public_key=tmp_path / "pub.pem")
    assert ok["signature"]["verified"] and ok["decision"] == "accept"
    p.write_bytes(p.read_bytes() + b"\n")
    bad = assess(ws, local_admin(), p, signature=tmp_path / "m.sig", public_key=tmp_path / "pub.pem")
    assert bad["signature"]["verified"] is False and bad["decision"] == "refuse"


def test_assessment_shows_in_the_ai_bom(ws, tmp_path):
    from workbench.explain import registry

    p = _lgb(tmp_path)
    assess(ws, local_admin(), p)
    registry.add_model(ws, local_admin(), "sys", "1", p)
    props = {x["name"]: x["value"] for x in export_bom(ws, local_admin(), "sys")["components"][0]["properties"]}
    assert props["workbench:assessment:decision"] == "accept"
    assert props["workbench:assessment:can_run_code"] == "false"
