"""OpenTelemetry OTLP metrics (ExportMetricsServiceRequest) as JSON or protobuf -> metrics.

JSON: one document, or one per line as the collector's file exporter writes. Protobuf: one message, or a stream
of length-prefixed messages (see otlp_proto). Both are read as `resourceMetrics[] -> scopeMetrics[] -> metrics[]`:

- `gauge` and `sum` points load their `asDouble` / `asInt` under the metric's name;
- `histogram` points load as Prometheus does: cumulative `<name>_bucket` series with an `le` label per explicit
  bound and `le="+Inf"`, `<name>_count` and `<name>_sum` (when the point has a sum);
- `exponentialHistogram` points load the same way, one `le` per bucket boundary (negative buckets, the zero
  bucket up to its threshold, positive buckets);
- `summary` points load `<name>{quantile="q"}` per quantile, `<name>_count` and `<name>_sum`.

The system is a `system_id` attribute of the point, else --system, else the resource's `service.name`. Other
point attributes become labels. A point that cannot be read (no value, no time, bucket counts that do not add
up to the count, flagged as having no recorded value) goes to quarantine, one row per point; the quarantine's
line is the point's position in the file (1 = the first data point).
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.ingest.importers import otlp_proto
from workbench.ingest.importers.common import metrics_importer
from workbench.ingest.importers.exposition import MAX_US, MIN_US, go_float
from workbench.ingest.importers.metric_rows import MetricRows, number_text
from workbench.ingest.reading import Reader

KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
_NUM = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|NaN|-?Infinity")


class _Bad(ValueError):
    """A data point that cannot be loaded; the message is the quarantine reason."""


def _num(v: Any, what: str) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str) and _NUM.fullmatch(v):
        return float(v)
    raise _Bad(f"{what} is not a number: {str(v)[:40]}")


def _int(v: Any, what: str, unsigned: bool = True) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        out = v
    elif isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v):
        out = int(v)
    else:
        raise _Bad(f"{what} is not an integer: {str(v)[:40]}")
    if unsigned and out < 0:
        raise _Bad(f"{what} is negative: {out}")
    return out


def _text(v: Any) -> str:
    """An OTLP AnyValue as label text."""
    if not isinstance(v, dict) or not v:
        return ""
    for key in ("stringValue", "bytesValue"):
        if key in v:
            return str(v[key])
    if "intValue" in v:
        return str(_int(v["intValue"], "intValue", unsigned=False))
    if "doubleValue" in v:
        x = v["doubleValue"]
        return x if isinstance(x, str) else repr(float(x))
    if "boolValue" in v:
        return "true" if v["boolValue"] in (True, "true") else "false"
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def _attrs(items: Any, strict: bool = True) -> dict[str, str]:
    out: dict[str, str] = {}
    for a in items if isinstance(items, list) else []:
        if not isinstance(a, dict) or not isinstance(a.get("key"), str):
            if strict:
                raise _Bad("attribute without a key")
            continue
        if a["key"] in out and strict:
            raise _Bad(f"attribute {a['key']} appears twice")
        out[a["key"]] = _text(a.get("value"))
    return out


def _list(obj: Any, key: str) -> list:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _exp_bound(index: int, scale: int) -> float:
    """base**index for base = 2**(2**-scale): the boundary between exponential buckets index-1 and index."""
    try:
        return 2.0 ** (index * 2.0 ** -scale)
    except OverflowError:
        return float("inf")


def _series(name: str, kind: str, p: dict[str, Any]) -> list[tuple[str, tuple[str, str] | None, float]]:
    """The (metric, extra label, value) series of one data point."""
    if kind in ("gauge", "sum"):
        if "asDouble" in p:
            return [(name, None, _num(p["asDouble"], "asDouble"))]
        if "asInt" in p:
            return [(name, None, float(_int(p["asInt"], "asInt", unsigned=False)))]
        raise _Bad("data point has no asDouble or asInt value")
    count = _int(p.get("count", 0), "count")
    out: list[tuple[str, tuple[str, str] | None, float]] = []
    if kind == "summary":
        for q in p.get("quantileValues") or []:
            quantile = _num(q.get("quantile", 0), "quantile") if isinstance(q, dict) else -1.0
            if not 0 <= quantile <= 1:
                raise _Bad(f"quantile {quantile} is outside 0..1")
            out.append((name, ("quantile", go_float(quantile)), _num(q.get("value", 0), "quantile value")))
        out += [(f"{name}_count", None, float(count)), (f"{name}_sum", None, _num(p.get("sum", 0), "sum"))]
        return out
    cum = 0
    if kind == "histogram":
        bounds = [_num(b, "explicitBounds") for b in p.get("explicitBounds") or []]
        counts = [_int(c, "bucketCounts") for c in p.get("bucketCounts") or []]
        if counts and len(counts) != len(bounds) + 1:
            raise _Bad(f"histogram point has {len(counts)} bucket counts for {len(bounds)} bounds "
                       f"(expected {len(bounds) + 1})")
        if any(b >= a for a, b in zip(bounds[1:], bounds, strict=False)):
            raise _Bad("explicitBounds are not increasing")
        buckets = list(zip(bounds, counts, strict=False))
        total = sum(counts) if counts else count
    else:  # exponentialHistogram
        scale = _int(p.get("scale", 0), "scale", unsigned=False)
        pos, neg = p.get("positive") or {}, p.get("negative") or {}
        p_off, n_off = _int(pos.get("offset", 0), "offset", False), _int(neg.get("offset", 0), "offset", False)
        p_counts = [_int(c, "bucketCounts") for c in pos.get("bucketCounts") or []]
        n_counts = [_int(c, "bucketCounts") for c in neg.get("bucketCounts") or []]
        zero = _int(p.get("zeroCount", 0), "zeroCount")
        # negative bucket i holds [-base**(i+1), -base**i): from the most negative up to the zero bucket
        buckets = [(-_exp_bound(n_off + k, scale), c) for k, c in reversed(list(enumerate(n_counts)))]
        buckets.append((_num(p.get("zeroThreshold", 0), "zeroThreshold"), zero))
        buckets += [(_exp_bound(p_off + k + 1, scale), c) for k, c in enumerate(p_counts)]
        total = sum(c for _, c in buckets)
    if total != count:
        raise _Bad(f"bucket counts add up to {total} but count is {count}")
    for bound, c in buckets:
        cum += c
        out.append((f"{name}_bucket", ("le", go_float(bound)), float(cum)))
    out.append((f"{name}_bucket", ("le", "+Inf"), float(count)))
    out.append((f"{name}_count", None, float(count)))
    if "sum" in p:
        out.append((f"{name}_sum", None, _num(p["sum"], "sum")))
    return out


class _Walker:
    """Turns OTLP/JSON-shaped documents into metric rows, numbering data points from 1."""

    def __init__(self, rows: MetricRows, system: str | None) -> None:
        self.rows, self.system = rows, system
        self.point = 0
        self.documents = 0

    def bad(self, raw: Any, reason: str) -> None:
        """Quarantine one record (a data point, or a document that could not be read)."""
        self.point += 1
        text = raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"), default=str)
        self.rows.add(self.point, text, reason)

    def document(self, doc: Any, raw: str | None = None) -> None:
        """Walk one ExportMetricsServiceRequest."""
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceMetrics"), list):
            self.bad(raw if raw is not None else doc, "not an OTLP metrics document (no resourceMetrics list)")
            return
        self.documents += 1
        for rm in doc["resourceMetrics"]:
            resource = rm.get("resource") if isinstance(rm, dict) else None
            service = _attrs(_list(resource, "attributes"), strict=False).get("service.name")
            for sm in _list(rm, "scopeMetrics"):
                for m in _list(sm, "metrics"):
                    self.metric(m, service)

    def metric(self, m: Any, service: str | None) -> None:
        """Stage every data point of one metric."""
        kind = next((k for k in KINDS if isinstance(m, dict) and isinstance(m.get(k), dict)), None)
        name = m.get("name") if isinstance(m, dict) else None
        if kind is None:
            self.bad({"metric": name, "service": service},
                     "metric has no gauge, sum, histogram, exponentialHistogram or summary data")
            return
        for p in _list(m[kind], "dataPoints"):
            try:
                self.data_point(name, kind, p, service)
            except _Bad as exc:
                self.bad({"metric": name, "type": kind, "service": service, "point": p}, str(exc))

    def data_point(self, name: Any, kind: str, p: Any, service: str | None) -> None:
        """Stage the series of one data point (or raise _Bad)."""
        if not isinstance(name, str) or not name:
            raise _Bad("metric has no name")
        if not isinstance(p, dict):
            raise _Bad("data point is not an object")
        labels = _attrs(p.get("attributes"))
        system = labels.pop("system_id", None) or self.system or service
        if _int(p.get("flags", 0), "flags") & 1:
            raise _Bad("data point is flagged as having no recorded value")
        raw_time = p.get("timeUnixNano")
        try:
            ns = _int(raw_time, "timeUnixNano")
        except _Bad:
            ns = 0
        if not ns:
            raise _Bad("data point has no valid timeUnixNano")
        us = ns // 1000
        if not MIN_US <= us < MAX_US:
            raise _Bad(f"timeUnixNano {ns} is out of range (it must be nanoseconds since 1970)")
        series = _series(name, kind, p)
        self.point += 1
        names, vals = list(labels), list(labels.values())
        for metric, extra, value in series:
            n, v = (names + [extra[0]], vals + [extra[1]]) if extra else (names, vals)
            self.rows.add(self.point, None, None, system, metric, n, v, number_text(value), str(ns), us)


def _read(path: Path, compression: str) -> bytes:
    opener = gzip.open if compression == "gzip" else open
    with opener(path, "rb") as fh:
        return fh.read()


def _json_documents(walker: _Walker, path: Path, data: bytes) -> None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkbenchError(f"{path}: not OTLP metrics (neither protobuf nor UTF-8 JSON)") from exc
    try:
        walker.document(json.loads(text))
        return
    except json.JSONDecodeError:
        pass
    lines = text.split("\n")
    first = next((ln for ln in lines if ln.strip()), "")
    try:
        json.loads(first)
    except json.JSONDecodeError as exc:  # one document, broken: nothing can be read from it
        raise WorkbenchError(f"{path}: not valid OTLP JSON ({exc})") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            walker.bad(line, f"line {number} is not JSON")
            continue
        walker.document(doc, line)


def stage(reader: Reader, path: Path, system: str | None, _mapping: dict[str, Any] | None) -> None:
    """Fill `_mstage` from one OTLP JSON or protobuf file."""
    data = _read(path, reader.compression)
    rows = MetricRows(reader.con)
    walker = _Walker(rows, system)
    found = otlp_proto.frames(data) if data[:1] != b"{" else None
    if found:
        for k, (start, end) in enumerate(found, start=1):
            try:
                msg = otlp_proto.ExportMetricsServiceRequest.FromString(data[start:end])
            except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
                walker.bad(f"<{end - start} bytes at offset {start}>",
                           f"message {k} is not a valid ExportMetricsServiceRequest ({exc})")
                continue
            walker.document(otlp_proto.as_dict(msg))
    else:
        _json_documents(walker, path, data)
    if not walker.documents:
        raise WorkbenchError(f"{path}: not OTLP metrics (no resourceMetrics list)")
    rows.finish(system)


def sniff(path: Path, head: str) -> bool:
    """JSON with resourceMetrics, or protobuf bytes framed as OTLP metrics messages."""
    if head.lstrip().startswith("{"):
        return '"resourceMetrics"' in head[:8192]
    try:
        with path.open("rb") as fh:
            magic = fh.read(2)
        if magic == b"\x1f\x8b":
            with gzip.open(path, "rb") as fh:
                return otlp_proto.looks_like(fh.read(65536), None)
        with path.open("rb") as fh:
            return otlp_proto.looks_like(fh.read(65536), path.stat().st_size)
    except (OSError, EOFError):
        return False


IMPORTER = metrics_importer("otlp", stage, sniff, "OpenTelemetry OTLP metrics, JSON or protobuf")
