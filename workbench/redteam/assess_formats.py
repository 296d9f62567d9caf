"""What an artifact is, inspected without loading it: pickles (and pickles inside zip archives such as PyTorch
files), safetensors headers, ONNX graphs (a small protobuf reader, no onnx package), skops contents."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from typing import Any

from workbench.explain.loaders import scan_pickle

SAFETENSORS_DTYPES = {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "BF16", "F32", "F64",
                      "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"}
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2,
               "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}
ONNX_STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
MAX_ZIP_MEMBERS = 10_000


def pickle_record(data: bytes) -> dict[str, Any]:
    """picklescan + fickling opinions on one pickle stream, and the imports it would perform."""
    scan = scan_pickle(data)
    return {"imports": scan.get("globals", []), "dangerous": scan.get("dangerous", []),
            "not_allowed": scan.get("not_allowed", []), "scan_error": scan.get("scan_error"),
            "fickling": scan.get("fickling"), "allow_list_ok": bool(scan.get("ok"))}


def zip_contents(data: bytes) -> dict[str, Any]:
    """A zip archive: its members, whether it is a PyTorch or skops file, and every pickle inside scanned."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return {"error": f"not a readable zip archive ({exc})", "pickles": {}}
    if len(infos) > MAX_ZIP_MEMBERS:
        return {"error": f"{len(infos)} members: too many to inspect", "pickles": {}}
    names = [i.filename for i in infos]
    kind = "skops" if "schema.json" in names else "pytorch" if any(n.endswith("data.pkl") for n in names) else "zip"
    pickles = {}
    total = sum(i.file_size for i in infos)
    bomb = total > 50 * max(len(data), 1) and total > (256 << 20)
    for info in infos:
        if bomb or not info.filename.endswith((".pkl", ".pickle")) and not info.filename.endswith("data.pkl"):
            continue
        with zf.open(info) as fh:
            pickles[info.filename] = pickle_record(fh.read(64 << 20))
    unsafe_paths = [n for n in names if n.startswith("/") or ".." in n.split("/")]
    return {"kind": kind, "members": len(names), "uncompressed_bytes": total, "zip_bomb": bomb,
            "unsafe_paths": unsafe_paths[:20], "pickles": pickles}


def skops_contents(data: bytes) -> dict[str, Any]:
    """The types a skops file would construct that skops does not trust by default."""
    try:
        from skops.io import get_untrusted_types

        return {"untrusted_types": sorted(get_untrusted_types(data=data))}
    except Exception as exc:  # noqa: BLE001 - an unreadable skops file is a finding, not a crash
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def safetensors_header(data: bytes) -> dict[str, Any]:
    """Sanity of a safetensors header: length, JSON, dtypes, shapes and offsets inside the file, no overlap."""
    problems: list[str] = []
    if len(data) < 8:
        return {"ok": False, "problems": ["shorter than the 8-byte header length"]}
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(len(data) - 8, 100 << 20):
        return {"ok": False, "problems": [f"header length {n} runs past the file or over 100 MiB"]}
    try:
        head = json.loads(data[8:8 + n])
    except (ValueError, UnicodeDecodeError) as exc:
        return {"ok": False, "problems": [f"header is not JSON ({str(exc)[:120]})"]}
    if not isinstance(head, dict):
        return {"ok": False, "problems": ["header is not a JSON object"]}
    body = len(data) - 8 - n
    spans, tensors = [], 0
    meta = head.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        problems.append("__metadata__ is not a string-to-string map")
    for name, t in head.items():
        tensors += 1
        if not isinstance(t, dict) or t.get("dtype") not in SAFETENSORS_DTYPES:
            problems.append(f"tensor {str(name)[:60]}: unknown dtype")
            continue
        shape, off = t.get("shape"), t.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            problems.append(f"tensor {str(name)[:60]}: bad shape")
            continue
        if not (isinstance(off, list) and len(off) == 2 and all(isinstance(o, int) for o in off)
                and 0 <= off[0] <= off[1] <= body):
            problems.append(f"tensor {str(name)[:60]}: offsets outside the data")
            continue
        size = DTYPE_BYTES.get(t["dtype"])
        count = 1
        for d in shape:
            count *= d
        if size and count * size != off[1] - off[0]:
            problems.append(f"tensor {str(name)[:60]}: {off[1] - off[0]} bytes for {count} x {size}")
        spans.append(tuple(off))
    spans.sort()
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
        problems.append("tensors overlap")
    if spans and (spans[0][0] != 0 or spans[-1][1] != body):
        problems.append("data not fully covered by tensors (hidden bytes)")
    return {"ok": not problems, "problems": problems[:20], "tensors": tensors, "header_bytes": n,
            "metadata": {str(k)[:60]: str(v)[:200] for k, v in list((meta or {}).items())[:20]}
            if isinstance(meta, dict) else None}


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """Top-level protobuf fields (number, wire type, value): varints as ints, length-delimited as bytes."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _varint(buf, i)
        elif wt == 2:
            ln, i = _varint(buf, i)
            val, i = buf[i:i + ln], i + ln
        elif wt == 1:
            val, i = buf[i:i + 8], i + 8
        elif wt == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        out.append((num, wt, val))
    return out


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def onnx_contents(data: bytes) -> dict[str, Any]:
    """ONNX graph: operator domains (custom ones load native code), ops used, external data locations."""
    try:
        model = _fields(data)
        domains = {_text(dict(_pairs(v)).get(1, b"")) for n, _, v in model if n == 8}
        graph = next((v for n, _, v in model if n == 7), b"")
        ops, node_domains, external = set(), set(), []
        for n, _, v in _fields(graph):
            if n == 1:
                f = dict(_pairs(v))
                ops.add(_text(f.get(4, b"")))
                node_domains.add(_text(f.get(7, b"")))
            elif n == 5:
                for m, _, e in _fields(v):
                    if m == 13:
                        kv = dict(_pairs(e))
                        if _text(kv.get(1, b"")) == "location":
                            external.append(_text(kv.get(2, b"")))
    except (ValueError, IndexError) as exc:
        return {"error": f"not a parseable ONNX protobuf ({exc})"}
    custom = sorted((domains | node_domains) - ONNX_STANDARD_DOMAINS)
    unsafe = [p for p in external if p.startswith(("/", "\\")) or ".." in p.replace("\\", "/").split("/")]
    return {"opset_domains": sorted(domains), "ops": sorted(ops)[:100], "custom_domains": custom,
            "external_data": external[:20], "unsafe_external_paths": unsafe}


def _pairs(buf: bytes) -> list[tuple[int, Any]]:
    return [(n, v) for n, _, v in _fields(buf)]


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace")[:200] if isinstance(v, bytes) else str(v)
