"""`workbench model assess PATH`: the supply-chain gate for a vendor or hub artifact, before `model add`.

It says what the file is and whether loading it can run code (pickle opcodes and imports, pickles inside zip
archives such as PyTorch files, safetensors header sanity, ONNX custom operator domains and external data,
skops' untrusted types), verifies a signature with the `model-signing` package (offline: a public key or a
certificate chain), matches the hash against a CycloneDX AI-BOM, and gives the registry's decision: accept
(a safe format that loads and nothing contradicts it), review (it may be fine but a person must decide) or
refuse. The assessment is kept in model_assessments (keyed by hash) and shown in the model's AI-BOM export.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.explain import registry
from workbench.explain.loaders import MAX_MODEL_BYTES, RefusedModel, load_bytes, sha256_bytes, sniff_format
from workbench.redteam import assess_formats as fm
from workbench.store import Workspace


def _format(data: bytes, name: str) -> str:
    head = data[:16]
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if name.lower().endswith(".safetensors") or (len(data) > 9 and data[8:9] == b"{" and
                                                   not name.lower().endswith((".json", ".txt"))):
        return "safetensors"
    if head.startswith(b"GGUF"):
        return "gguf"
    if name.lower().endswith(".onnx"):
        return "onnx"
    try:
        return sniff_format(data, name)
    except RefusedModel:
        return "unknown"


def inspect(data: bytes, name: str) -> dict[str, Any]:
    """Format, contents and whether loading can run code (no loading beyond the registry's safe loaders)."""
    fmt = _format(data, name)
    out: dict[str, Any] = {"format": fmt, "can_run_code": False, "problems": []}
    if fmt == "zip":
        z = fm.zip_contents(data)
        out["zip"] = z
        out["format"] = z.get("kind", "zip")
        if out["format"] == "skops":
            out["skops"] = fm.skops_contents(data)
            if out["skops"].get("untrusted_types"):
                out["problems"].append("skops file constructs untrusted types: "
                                       + ", ".join(out["skops"]["untrusted_types"][:5]))
        if z.get("pickles"):
            out["can_run_code"] = True
            bad = sorted({i for p in z["pickles"].values() for i in p["not_allowed"]})
            if bad:
                out["problems"].append("pickles inside the archive import " + ", ".join(bad[:8]))
        for key, what in (("zip_bomb", "expands like a zip bomb"), ("unsafe_paths", "members escape the folder"),
                          ("error", "unreadable archive")):
            if z.get(key):
                out["problems"].append(what)
    elif fmt in ("pickle", "joblib"):
        out["can_run_code"] = True
        out["pickle"] = fm.pickle_record(data)
        if out["pickle"]["not_allowed"] or out["pickle"]["dangerous"]:
            out["problems"].append("pickle imports " + ", ".join((out["pickle"]["dangerous"]
                                                                  or out["pickle"]["not_allowed"])[:8]))
    elif fmt == "safetensors":
        out["safetensors"] = fm.safetensors_header(data)
        out["problems"] += [f"safetensors: {p}" for p in out["safetensors"]["problems"]]
    elif fmt == "onnx":
        out["onnx"] = fm.onnx_contents(data)
        if out["onnx"].get("custom_domains"):
            out["can_run_code"] = True
            out["problems"].append("custom operator domains (native code): " + ", ".join(out["onnx"]["custom_domains"]))
        if out["onnx"].get("unsafe_external_paths") or out["onnx"].get("error"):
            out["problems"].append(out["onnx"].get("error") or "external data paths leave the model folder")
    return out


def verify_signature(path: Path, signature: Path, public_key: Path | None, certificate: list[Path] | None
                     ) -> dict[str, Any]:
    """Verify a model-signing signature offline (elliptic public key or certificate chain)."""
    import model_signing  # a core dependency, imported on use: it pulls in sigstore (slow to import)

    cfg = model_signing.verifying.Config()
    if public_key:
        cfg = cfg.use_elliptic_key_verifier(public_key=str(public_key))
    elif certificate:
        cfg = cfg.use_certificate_verifier(certificate_chain=[str(c) for c in certificate])
    else:
        return {"checked": False, "verified": None, "reason": "a signature needs --public-key or --certificate"}
    try:
        cfg.verify(str(path), str(signature))
    except Exception as exc:  # noqa: BLE001 - any verification failure is a refusal reason, on one line
        return {"checked": True, "verified": False, "reason": (str(exc).splitlines() or [type(exc).__name__])[0][:300]}
    return {"checked": True, "verified": True, "method": "public key" if public_key else "certificate"}


def bom_match(bom: Path, sha: str, name: str) -> dict[str, Any]:
    """Whether a CycloneDX AI-BOM lists this exact hash (or a same-named model with another hash)."""
    try:
        doc = json.loads(bom.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{bom}: not a readable JSON BOM ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise WorkbenchError(f"{bom}: not a CycloneDX BOM")
    stack, same_name = list(doc.get("components") or []), []
    while stack:
        c = stack.pop(0)
        if not isinstance(c, dict):
            continue
        stack += c.get("components") or []
        hashes = {str(h.get("alg", "")).upper().replace("_", "-"): str(h.get("content", "")).lower()
                  for h in c.get("hashes") or [] if isinstance(h, dict)}
        if hashes.get("SHA-256") == sha:
            return {"listed": True, "component": str(c.get("name"))[:200], "version": str(c.get("version"))[:60],
                    "supplier": str((c.get("supplier") or {}).get("name"))[:200]}
        if str(c.get("name")) in (name, Path(name).stem):
            same_name.append(str(c.get("version")))
    return {"listed": False, "mismatch": bool(same_name), "same_name_versions": same_name[:5]}


def assess(ws: Workspace, actor: Actor, path: str | Path, *, bom: str | Path | None = None,
           signature: str | Path | None = None, public_key: str | Path | None = None,
           certificate: list[str | Path] | None = None) -> dict[str, Any]:
    """Assess an artifact: format, code execution on load, signature, BOM hash, registry decision; stored."""
    require(actor, "write:models", ws)
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise WorkbenchError(f"{path.name} is {size >> 20} MiB, over the {MAX_MODEL_BYTES >> 20} MiB limit")
        data = path.read_bytes()
    except OSError as exc:
        raise WorkbenchError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    sha = sha256_bytes(data)
    out: dict[str, Any] = {"path": str(path.resolve()), "sha256": sha, "size": len(data)} | inspect(data, path.name)
    out["signature"] = verify_signature(path, Path(signature), Path(public_key) if public_key else None,
                                        [Path(c) for c in certificate or []]) if signature else {"checked": False}
    out["bom"] = bom_match(Path(bom), sha, path.name) if bom else None
    out["registered_as"] = [f"{r['system_id']}/{r['version']}" for r in ws.dicts(
        "SELECT system_id, version FROM models WHERE sha256 = ?", [sha])]
    try:
        model, _ = load_bytes(data, sniff_format(data, path.name))
        out["loads"] = {"ok": True, "kind": model.kind, "features": len(model.feature_names)}
    except RefusedModel as exc:
        out["loads"] = {"ok": False, "event": exc.event, "reason": str(exc)[:300]}
    except Exception as exc:  # noqa: BLE001 - a parse error of an unsupported file is a finding
        out["loads"] = {"ok": False, "reason": (str(exc).splitlines() or [type(exc).__name__])[0][:300]}
    out["decision"], out["reasons"] = _decide(out)
    now = datetime.now(UTC)
    with ws.transaction() as con:
        con.execute("INSERT INTO model_assessments VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [sha, now, actor.user, out["path"], out["format"], out["decision"], audit.canonical(out)])
        audit.record(ws, actor, "model.assess", out["path"],
                     {"sha256": sha, "format": out["format"], "decision": out["decision"], "reasons": out["reasons"]})
    out["assessed_at"] = now
    if out["decision"] == "refuse":
        registry.record_event(ws, actor, "refused.assess", "; ".join(out["reasons"])[:2000], sha256=sha,
                              path=out["path"])
    return out


def _decide(a: dict[str, Any]) -> tuple[str, list[str]]:
    refuse, review = list(a["problems"]), []
    sig, bom = a["signature"], a["bom"]
    if sig.get("checked") and not sig.get("verified"):
        refuse.append(f"signature does not verify: {sig.get('reason')}")
    elif sig.get("verified") is None and sig.get("reason"):
        review.append(f"signature not checked: {sig['reason']}")
    if bom is not None and not bom.get("listed"):
        (refuse if bom.get("mismatch") else review).append(
            "the AI-BOM lists this model with another hash" if bom.get("mismatch") else "hash not in the AI-BOM")
    if a["can_run_code"] and not refuse:
        review.append("loading it can run code (pickle or native operators); `model add` refuses it without "
                      "--allow-pickle")
    if not a["loads"]["ok"] and not refuse:
        review.append(f"the registry's safe loaders do not load it: {a['loads'].get('reason')}")
    if refuse:
        return "refuse", refuse
    return ("review", review) if review else ("accept", ["safe format, loads with the registry's loaders"
                                                         + (", signature verified" if sig.get("verified") else "")
                                                         + (", hash in the AI-BOM" if bom else "")])


def assessments(ws: Workspace, actor: Actor, sha256: str) -> list[dict[str, Any]]:
    """Stored assessments of an artifact hash, newest first."""
    require(actor, "read:aggregates", ws)
    rows = ws.dicts("SELECT sha256, assessed_at, actor, path, format, decision, result FROM model_assessments "
                    "WHERE sha256 = ? ORDER BY assessed_at DESC", [sha256])
    for r in rows:
        r["result"] = json.loads(r["result"]) if isinstance(r["result"], str) else r["result"]
    return rows
