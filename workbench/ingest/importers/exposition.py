"""A line parser for the OpenMetrics 1.0 and Prometheus 0.0.4 text formats (no DuckDB here; see openmetrics.py).

`Exposition.line(text)` parses one line and returns a `Sample` (or None for a comment, metadata or blank line);
it raises `BadLine` with the reason for a line that does not follow the format. It tracks the `# TYPE` of each
metric family, so that histogram buckets carry `le`, summary quantiles carry `quantile` (both normalised to the
float text Prometheus uses, `1.0`, `+Inf`), and it records what marks a file as OpenMetrics (`# EOF`, `# UNIT`,
an exemplar, an OpenMetrics-only type). Exemplars are parsed and checked, then dropped: never the sample.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_QSTR = r'"((?:[^"\\\n]|\\.)*)"'
_LABEL = re.compile(r"[ \t]*(?:([a-zA-Z_][a-zA-Z0-9_]*)|" + _QSTR + r")[ \t]*=[ \t]*" + _QSTR + r"[ \t]*")
_QNAME = re.compile(r"[ \t]*" + _QSTR + r"[ \t]*(?=[,}])")  # a quoted metric name inside the braces
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.IGNORECASE | re.ASCII)
_REAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
# The common shape, strictly (single spaces, unquoted names): one match instead of a scan; anything else takes
# the general path, which also words the reasons.
_LV = r'"(?:[^"\\\n]|\\.)*"'
_LBL = r"[a-zA-Z_][a-zA-Z0-9_]*=" + _LV
_FAST = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:" + _LBL + r"(?:," + _LBL + r")*,?)?)\})? ([^\s#]+)"
                   r"(?: ([^\s#]+))?(?: #( \{.*))?")
_FAST_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')

OM_ONLY_TYPES = {"gaugehistogram", "stateset", "info", "unknown"}
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"} | OM_ONLY_TYPES
# The sample names a family of each type may have, as suffixes of the family name.
SUFFIXES = {
    "counter": ("_total", "_created", ""), "gauge": ("",), "untyped": ("",), "unknown": ("",), "stateset": ("",),
    "info": ("_info",), "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"), "summary": ("", "_count", "_sum", "_created"),
}
_ALL_SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info")

# Instants a timestamp may denote: from 1971 (a time in seconds misread as milliseconds lands in January 1970)
# to the year 9999 (milliseconds misread as seconds land tens of thousands of years ahead).
MIN_US = 31_536_000 * 10**6
MAX_US = 253_402_300_800 * 10**6


class BadLine(ValueError):
    """A line that does not follow the exposition format; the message is the quarantine reason."""


@dataclass
class Sample:
    """One sample line: metric name, labels (name, value) in file order, value, timestamp text or None."""

    name: str
    labels: list[tuple[str, str]]
    value: float
    timestamp: str | None


def go_float(x: float) -> str:
    """The float text Prometheus writes for `le` and `quantile`: Go's shortest %g, with `.0` on whole numbers."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0.0"
    _, digits, exp = Decimal(repr(abs(x))).normalize().as_tuple()  # repr: the shortest round-trip digits
    ds = "".join(map(str, digits))
    exp = len(ds) + int(exp) - 1  # x = d.ddd * 10**exp
    sign = "-" if x < 0 else ""
    if exp < -4 or exp >= 6:  # Go switches to the exponent form outside 1e-4 .. 1e6
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{sign}{mant}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if exp >= 0:
        return f"{sign}{ds[: exp + 1].ljust(exp + 1, '0')}.{ds[exp + 1:] or '0'}"
    return f"{sign}0.{'0' * (-exp - 1)}{ds}"


def parse_number(text: str, what: str = "value") -> float:
    """A sample value: a real number, +Inf, -Inf or NaN (any case); raises BadLine otherwise."""
    if not _NUMBER.fullmatch(text):
        if text.startswith("{"):
            raise BadLine("native histogram samples are not supported")
        raise BadLine(f"{what} is not a number: {text[:40]}")
    return float(text)


def seconds_us(text: str) -> tuple[int | None, str | None]:
    """An OpenMetrics timestamp (seconds, with fraction) as microseconds, or the reason it is not one."""
    if text.isascii() and text.isdigit():
        us = int(text) * 1_000_000
    elif _REAL.fullmatch(text):
        try:
            us = int((Decimal(text) * 1_000_000).to_integral_value(ROUND_HALF_EVEN))
        except InvalidOperation:
            return None, f"bad timestamp {text[:40]}"
    else:
        return None, f"bad timestamp {text[:40]}"
    if not MIN_US <= us < MAX_US:
        return None, (f"timestamp {text[:40]} as seconds (OpenMetrics, the file has # EOF) is out of range "
                      f"({_year(us)}); was it written in milliseconds?")
    return us, None


def millis_us(text: str) -> tuple[int | None, str | None]:
    """A Prometheus 0.0.4 timestamp (integer milliseconds) as microseconds, or the reason it is not one."""
    body = text[1:] if text[:1] in "+-" else text
    if not (body.isascii() and body.isdigit()):
        if _REAL.fullmatch(text):
            return None, (f"timestamp {text[:40]} is not whole milliseconds (Prometheus text format; an "
                          "OpenMetrics file, in seconds, ends with # EOF)")
        return None, f"bad timestamp {text[:40]}"
    us = int(text) * 1000
    if not MIN_US <= us < MAX_US:
        return None, (f"timestamp {text[:40]} as milliseconds (Prometheus text format, no # EOF line) is out "
                      f"of range ({_year(us)}); an OpenMetrics file, in seconds, ends with # EOF")
    return us, None


def _year(us: int) -> str:
    year = 1970 + us / (365.2425 * 86400e6)
    return f"year {int(year)}" if abs(year) < 1e9 else "far from any date"


def unescape(value: str) -> str:
    """Undo the label-value escapes `\\\\`, `\\"` and `\\n`; any other escape is an error."""
    if "\\" not in value:
        return value

    def one(m: re.Match) -> str:
        c = m.group(1)
        if c == "n":
            return "\n"
        if c in '\\"':
            return c
        raise BadLine(f"invalid escape \\{c} in a label value (only \\\\, \\\" and \\n)")

    return _ESCAPE.sub(one, value)


def parse_labels(line: str, pos: int, allow_name: bool) -> tuple[str | None, list[tuple[str, str]], int]:
    """Parse `{...}` starting at line[pos] == '{': (quoted metric name or None, labels, position after '}')."""
    labels: list[tuple[str, str]] = []
    name = None
    pos += 1
    first = True
    while True:
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos < len(line) and line[pos] == "}":
            return name, labels, pos + 1
        if first and allow_name and (m := _QNAME.match(line, pos)):
            name = unescape(m.group(1))
            pos = m.end()
        else:
            m = _LABEL.match(line, pos)
            if not m:
                raise BadLine(f"malformed label at column {pos + 1} (expected name=\"value\")")
            key = m.group(1) if m.group(1) is not None else unescape(m.group(2))
            labels.append((key, unescape(m.group(3))))
            pos = m.end()
        first = False
        if pos < len(line) and line[pos] == ",":
            pos += 1
        elif pos >= len(line) or line[pos] != "}":
            raise BadLine(f"expected , or }} at column {pos + 1} in the labels")


class Exposition:
    """Parser state for one file: the declared type of each metric family, and the OpenMetrics markers seen."""

    def __init__(self) -> None:
        self.types: dict[str, str] = {}
        self.openmetrics = False  # an # EOF, # UNIT, exemplar or OpenMetrics-only type was seen
        self.exemplars = 0
        self._families: dict[str, tuple[str, str | None, str]] = {}  # sample name -> _family(), until a # TYPE

    def line(self, text: str) -> Sample | None:
        """Parse one line (without its newline); None for blank, comment and metadata lines."""
        stripped = text.strip()
        if not stripped:
            return None
        if stripped.startswith("#"):
            self._comment(stripped)
            return None
        return self._sample(text.rstrip(" \t\r"))

    def _comment(self, text: str) -> None:
        parts = text.split(None, 3)
        kind = parts[1] if len(parts) > 1 else ""
        if kind == "EOF" and len(parts) == 2:
            self.openmetrics = True
            self.types = {}  # expositions written one after another: the next one starts afresh
            self._families = {}
        elif kind == "UNIT":
            self.openmetrics = True
        elif kind == "TYPE":
            if len(parts) != 4 or not _NAME.fullmatch(parts[2]):
                raise BadLine("malformed # TYPE line (expected # TYPE name type)")
            typ = parts[3].strip()
            if typ not in TYPES:
                raise BadLine(f"unknown metric type {typ[:40]} in # TYPE")
            self.openmetrics |= typ in OM_ONLY_TYPES
            self.types[parts[2]] = typ
            self._families = {}
        # HELP lines and any other comment are skipped

    def _sample(self, line: str) -> Sample:
        fast = _FAST.fullmatch(line)
        if fast is None:
            return self._sample_general(line)
        name, body, value, ts, exemplar = fast.groups()
        labels = []
        if body:
            for key, val in _FAST_LABEL.findall(body):
                labels.append((key, unescape(val) if "\\" in val else val))
            if len(labels) > 1 and len({k for k, _ in labels}) < len(labels):
                return self._sample_general(line)  # words the reason
        if exemplar is not None:
            self._exemplar(exemplar)
        return Sample(name, self._family_checks(name, labels), parse_number(value), ts)

    def _sample_general(self, line: str) -> Sample:
        m = _NAME.match(line)
        name = m.group() if m else None
        pos = m.end() if m else 0
        labels: list[tuple[str, str]] = []
        if pos < len(line) and line[pos] == "{":
            quoted, labels, pos = parse_labels(line, pos, allow_name=name is None)
            name = name or quoted
        if not name:
            raise BadLine("not an exposition sample (expected name{labels} value timestamp)")
        rest = line[pos:]
        if rest[:1] not in (" ", "\t"):
            raise BadLine("not an exposition sample (expected name{labels} value timestamp)")
        main, hash_, exemplar = rest.partition("#")
        tokens = main.split()
        if hash_:
            if main[-1:] not in (" ", "\t"):
                raise BadLine("an exemplar must follow the sample after ' # '")
            self._exemplar(exemplar)
        if not tokens or len(tokens) > 2:
            raise BadLine("expected a value and an optional timestamp after the labels"
                          if tokens else "sample has no value")
        value = parse_number(tokens[0])
        seen = set()
        for key, _ in labels:
            if key in seen:
                raise BadLine(f"label {key} appears twice")
            seen.add(key)
        labels = self._family_checks(name, labels)
        return Sample(name, labels, value, tokens[1] if len(tokens) == 2 else None)

    def _exemplar(self, text: str) -> None:
        """Check the exemplar after ' # ' (labels, value, optional timestamp); it is then dropped."""
        body = text.lstrip(" \t")
        if text[:1] not in (" ", "\t") or not body.startswith("{"):
            raise BadLine("malformed exemplar (expected # {labels} value [timestamp])")
        pos = len(text) - len(body)
        _, _, end = parse_labels(text, pos, allow_name=False)
        tokens = text[end:].split()
        if text[end:end + 1] not in (" ", "\t") or not 1 <= len(tokens) <= 2:
            raise BadLine("malformed exemplar (expected # {labels} value [timestamp])")
        parse_number(tokens[0], "exemplar value")
        if len(tokens) == 2 and not _REAL.fullmatch(tokens[1]):
            raise BadLine(f"exemplar timestamp is not a number: {tokens[1][:40]}")
        self.openmetrics = True
        self.exemplars += 1

    def _family(self, name: str) -> tuple[str, str | None, str]:
        """(family name, declared type or None, suffix) of a sample name."""
        found = self._families.get(name)
        if found is None:
            found = self._families[name] = self._find_family(name)
        return found

    def _find_family(self, name: str) -> tuple[str, str | None, str]:
        typ = self.types.get(name)
        if typ is not None:
            return name, typ, ""
        for suffix in _ALL_SUFFIXES:
            if name.endswith(suffix):
                base = name[: -len(suffix)]
                typ = self.types.get(base)
                if typ is not None and suffix in SUFFIXES[typ]:
                    return base, typ, suffix
        return name, None, ""

    def _family_checks(self, name: str, labels: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Check a sample against its family's type; normalise `le` (histogram buckets), `quantile` (summaries)."""
        family, typ, suffix = self._family(name)
        if typ is None:
            return labels
        if suffix not in SUFFIXES[typ]:
            raise BadLine(f"sample {name} does not fit {typ} {family} (expected "
                          + ", ".join(family + s for s in SUFFIXES[typ]) + ")")
        if typ in ("histogram", "gaugehistogram") and suffix == "_bucket":
            need, what = "le", "histogram bucket"
        elif typ == "summary" and suffix == "":
            need, what = "quantile", "summary quantile sample"
        else:
            return labels
        out = []
        for key, value in labels:
            if key == need:
                if not _NUMBER.fullmatch(value.strip()) or math.isnan(float(value)):
                    raise BadLine(f"{need} label of {name} is not a number: {value[:40]}")
                x = float(value)
                if need == "quantile" and not 0 <= x <= 1:
                    raise BadLine(f"quantile label of {name} is outside 0..1: {value[:40]}")
                value = go_float(x)
            out.append((key, value))
        if len(out) == len(labels) and need not in {k for k, _ in labels}:
            raise BadLine(f"{what} {name} has no {need} label ({typ} {family})")
        return out

