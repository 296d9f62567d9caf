"""OpenMetrics 1.0 / Prometheus 0.0.4 text exposition with sample timestamps -> metrics.

Each line is parsed by workbench.ingest.importers.exposition (label escapes, exemplars, histogram and summary
families, `_created`, NaN and +-Inf); the rows are staged in bulk. Which format a file is decides the unit of
its timestamps: a file with `# EOF` (or `# UNIT`, an exemplar, an OpenMetrics-only type) is OpenMetrics, whose
timestamps are seconds with an optional fraction; otherwise it is the Prometheus text format, whose timestamps
are whole milliseconds. A `system_id` label names the system (else --system); the other labels are kept, sorted
by name. A sample without a timestamp (a live scrape) cannot be placed in time and goes to quarantine, as does
every line that does not follow the format, with its line number and the reason.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

from workbench.ingest.importers.common import metrics_importer
from workbench.ingest.importers.exposition import BadLine, Exposition, millis_us, seconds_us
from workbench.ingest.importers.metric_rows import MetricRows, number_text
from workbench.ingest.reading import Reader

# Used by the CloudWatch importer for labels written into a series label, `name{k="v"}`.
LABEL_RE = r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"'
_SNIFF = re.compile(r"^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?(\{.*\})?\s+[-+0-9.eEInfNa]+(\s+[-+0-9.eE]+)?(\s+#\s+\{.*)?\s*$")


def stage(reader: Reader, path: Path, system: str | None, _mapping: dict[str, Any] | None) -> None:
    """Fill `_mstage` from one text exposition file."""
    parser = Exposition()
    rows = MetricRows(reader.con)
    seen: dict[str | None, tuple] = {}
    opener = gzip.open if reader.compression == "gzip" else open
    with opener(path, "rb") as fh:
        for number, data in enumerate(fh, start=1):
            try:
                text = data.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                rows.add(number, data.decode("utf-8", errors="replace").rstrip("\r\n"), "line is not valid UTF-8")
                continue
            try:
                sample = parser.line(text)
            except BadLine as exc:
                rows.add(number, text, str(exc))
                continue
            if sample is None:
                continue
            sys_id = None
            names, vals = [], []
            for key, value in sample.labels:
                if key == "system_id":
                    sys_id = value
                else:
                    names.append(key)
                    vals.append(value)
            ts = sample.timestamp
            times = seen.get(ts)
            if times is None:  # the samples of one scrape share their timestamp: convert it once
                if len(seen) > 4096:
                    seen.clear()
                times = seen[ts] = (*seconds_us(ts), *millis_us(ts)) if ts is not None else (None,) * 4
            rows.append((number, text, None, sys_id, sample.name, names, vals, number_text(sample.value), ts,
                         *times))
    # The time unit is the file's: seconds in OpenMetrics, milliseconds in the Prometheus text format.
    rows.finish(system, use_alt=not parser.openmetrics)


def sniff(path: Path, head: str) -> bool:
    """Text whose first non-comment lines are exposition samples, or that carries # TYPE / # HELP / # EOF lines."""
    text = head.lstrip().lstrip("\ufeff").lstrip()
    if not text or not (text[0] == "#" or text[0].isascii() and (text[0].isalpha() or text[0] in "_:")) \
            or "\x00" in head[:4096] or head.startswith("PAR1"):
        return False  # JSON, Parquet, protobuf and other binary files
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if any(ln.startswith(("# TYPE ", "# HELP ", "# UNIT ")) or ln.strip() == "# EOF" for ln in lines):
        return True
    samples = [ln for ln in lines if not ln.startswith("#")]
    return bool(samples) and all(_SNIFF.match(ln.strip()) for ln in samples[:5])


IMPORTER = metrics_importer("openmetrics", stage, sniff, "OpenMetrics / Prometheus text exposition with timestamps")
