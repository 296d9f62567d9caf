"""OTLP metrics in protobuf: recognise the framings exporters write, and read each message as OTLP/JSON-shaped dicts.

A file holds one `ExportMetricsServiceRequest` (the body of an OTLP/HTTP request, or `MetricsData`, which has the
same wire form), or a stream of them, each preceded by its length: 4 bytes big-endian (the collector's file
exporter with `format: proto`) or a varint (protobuf's delimited form, as Java's `writeDelimitedTo` writes).
The framing is recognised from the bytes: every message must be a run of field-1 records (ResourceMetrics) that
ends exactly where the message ends.
"""

from __future__ import annotations

import base64
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

__all__ = ["ExportMetricsServiceRequest", "as_dict", "frames", "looks_like"]

_RESOURCE_METRICS_TAG = 0x0A  # field 1, length-delimited
_INNER_TAGS = (0x0A, 0x12, 0x1A)  # ResourceMetrics: resource, scope_metrics, schema_url


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < end and shift < 64:
        b = data[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return value, pos
        shift += 7
    return None


def _message(data: bytes, start: int, avail: int, end: int) -> bool:
    """Whether data[start:end] is a run of ResourceMetrics records, checked as far as the bytes at hand go."""
    pos = start
    if start >= end:
        return False
    first = True
    while pos < min(avail, end):
        if data[pos] != _RESOURCE_METRICS_TAG:
            return False
        got = _varint(data, pos + 1, avail)
        if got is None:
            return avail < end  # the head ends inside the length
        length, body = got
        if body + length > end:
            return False
        if first and length and body < avail and data[body] not in _INNER_TAGS:
            return False
        first = False
        pos = body + length
    return pos == end or pos >= avail


def _framed(data: bytes, avail: int, total: int, prefix: str) -> list[tuple[int, int]] | None:
    """Messages each preceded by its length (4 bytes big-endian, or a varint), checked as far as the head goes."""
    out: list[tuple[int, int]] = []
    pos = 0
    while pos < total and pos < avail:
        if prefix == "be32":
            got = (int.from_bytes(data[pos:pos + 4], "big"), pos + 4) if pos + 4 <= avail else None
        else:
            got = _varint(data, pos, avail)
        if got is None:
            if avail < total:
                break  # the head ends inside a length prefix
            return None
        length, body = got
        end = body + length
        if end > total or (length and not _message(data, body, avail, end)):
            return None
        out.append((body, end))
        pos = end
    return out if any(e > s for s, e in out) else None  # empty messages are fine, but not only those


def frames(data: bytes, total: int | None = None) -> list[tuple[int, int]] | None:
    """(start, end) of each message in data (a whole file, or its head when `total` is the file's size)."""
    avail = len(data)
    total = avail if total is None else total
    if not avail:
        return None
    if _message(data, 0, avail, total):
        return [(0, total)]
    for prefix in ("be32", "varint"):
        found = _framed(data, avail, total, prefix)
        if found:
            return found
    return None


def looks_like(head: bytes, size: int | None) -> bool:
    """Whether the first bytes of a file (of `size` bytes, None when unknown) are OTLP metrics in protobuf."""
    return frames(head, size if size is not None else 1 << 62) is not None


# ---- protobuf messages -> the OTLP/JSON shape the importer walks ------------------------------------------------

def _any(v: Any) -> dict[str, Any]:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return {"stringValue": v.string_value}
    if kind == "int_value":
        return {"intValue": v.int_value}
    if kind == "double_value":
        return {"doubleValue": v.double_value}
    if kind == "bool_value":
        return {"boolValue": v.bool_value}
    if kind == "array_value":
        return {"arrayValue": {"values": [_any(x) for x in v.array_value.values]}}
    if kind == "kvlist_value":
        return {"kvlistValue": {"values": _kvs(v.kvlist_value.values)}}
    if kind == "bytes_value":
        return {"bytesValue": base64.b64encode(v.bytes_value).decode()}
    return {}


def _kvs(attrs: Any) -> list[dict[str, Any]]:
    return [{"key": a.key, "value": _any(a.value)} for a in attrs]


def _point(p: Any, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {"attributes": _kvs(p.attributes), "timeUnixNano": p.time_unix_nano, "flags": p.flags}
    if kind in ("gauge", "sum"):
        which = p.WhichOneof("value")
        if which == "as_double":
            d["asDouble"] = p.as_double
        elif which == "as_int":
            d["asInt"] = p.as_int
    elif kind == "histogram":
        d.update(count=p.count, bucketCounts=list(p.bucket_counts), explicitBounds=list(p.explicit_bounds))
        if p.HasField("sum"):
            d["sum"] = p.sum
    elif kind == "exponentialHistogram":
        d.update(count=p.count, scale=p.scale, zeroCount=p.zero_count, zeroThreshold=p.zero_threshold,
                 positive={"offset": p.positive.offset, "bucketCounts": list(p.positive.bucket_counts)},
                 negative={"offset": p.negative.offset, "bucketCounts": list(p.negative.bucket_counts)})
        if p.HasField("sum"):
            d["sum"] = p.sum
    else:  # summary
        d.update(count=p.count, sum=p.sum,
                 quantileValues=[{"quantile": q.quantile, "value": q.value} for q in p.quantile_values])
    return d


_KINDS = {"gauge": "gauge", "sum": "sum", "histogram": "histogram",
          "exponential_histogram": "exponentialHistogram", "summary": "summary"}


def as_dict(msg: Any) -> dict[str, Any]:
    """An ExportMetricsServiceRequest as the dict OTLP/JSON would give (only the fields the importer reads)."""
    out = []
    for rm in msg.resource_metrics:
        scopes = []
        for sm in rm.scope_metrics:
            metrics = []
            for m in sm.metrics:
                which = m.WhichOneof("data")
                entry: dict[str, Any] = {"name": m.name}
                if which in _KINDS:
                    kind = _KINDS[which]
                    entry[kind] = {"dataPoints": [_point(p, kind) for p in getattr(m, which).data_points]}
                metrics.append(entry)
            scopes.append({"metrics": metrics})
        out.append({"resource": {"attributes": _kvs(rm.resource.attributes)}, "scopeMetrics": scopes})
    return {"resourceMetrics": out}
