"""Find the files an analyst named, recognise their format, and hash them for the chain of custody."""

from __future__ import annotations

import codecs
import glob
import gzip
import hashlib
import json
import zlib
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.ingest.limits import MAX_HEADER

FORMATS = ("jsonl", "csv", "parquet", "prometheus")
_SUFFIXES = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
    ".prom": "openmetrics", ".txt": "text",
}


def expand(paths: list[str | Path], missing: list[str] | None = None) -> list[Path]:
    """Turn files, globs and directories (walked recursively, hidden files skipped) into a sorted file list.

    A name matching nothing raises, unless a `missing` list is given to collect it in.
    """
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and not _hidden(f.relative_to(p))))
        elif p.exists():
            out.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(str(raw), recursive=True) if Path(m).is_file())
            if not matches and missing is not None:
                missing.append(str(raw))
            elif not matches:
                raise WorkbenchError(f"{raw}: no such file, directory or matching glob")
            out.extend(matches)
    seen: set[Path] = set()
    unique = []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip magic bytes."""
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def sha256_file(path: Path, blanks: list[int] | None = None) -> str:
    """SHA-256 of the file's bytes, read in 4 MiB blocks; a gzip file is also checked for truncation.

    With `blanks`, the byte offsets (in the decompressed text) of the file's blank lines are appended to it: a CSV
    reader skips those lines without counting them, and the line numbers after one must still be right.
    """
    h = hashlib.sha256()
    gz = is_gzip(path)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gz else None
    finder = BlankFinder(blanks) if blanks is not None else None
    with path.open("rb") as fh:
        while block := fh.read(4 << 20):
            h.update(block)
            if inflater is not None:
                try:
                    text = inflater.decompress(block, 0)
                    while inflater.eof and inflater.unused_data:  # concatenated gzip members
                        rest = inflater.unused_data
                        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                        text += inflater.decompress(rest, 0)
                except zlib.error as exc:
                    raise WorkbenchError(f"{path}: corrupt gzip data ({exc})") from exc
                if finder is not None:
                    finder.feed(text)
            elif finder is not None:
                finder.feed(block)
    if inflater is not None and not inflater.eof:
        raise WorkbenchError(f"{path}: truncated gzip file (the compressed stream ends early)")
    return h.hexdigest()


class BlankFinder:
    """Collects the byte offsets of blank lines (empty, or a lone CR) in text fed block by block."""

    def __init__(self, out: list[int]) -> None:
        self.out, self.tail, self.at = out, b"", 0  # results, the last bytes fed, the offset of the next block

    def feed(self, block: bytes) -> None:
        """Scan the next block (the two bytes before it are kept, so a blank line across blocks is found)."""
        data, base = self.tail + block, self.at - len(self.tail)
        for pattern in (b"\n\n", b"\n\r\n"):
            i = data.find(pattern)
            while i >= 0:
                if i + len(pattern) > len(self.tail):  # not already found in the previous block
                    self.out.append(base + i + 1)
                i = data.find(pattern, i + 1)
        self.at += len(block)
        self.tail = data[-2:]


def head_text(path: Path, size: int = 65536) -> str:
    """The first bytes of the (decompressed) file as text, for sniffing."""
    try:
        if is_gzip(path):
            with gzip.open(path, "rb") as fh:
                data = fh.read(size)
        else:
            with path.open("rb") as fh:
                data = fh.read(size)
    except (OSError, EOFError) as exc:
        raise WorkbenchError(f"{path}: cannot read ({exc})") from exc
    return data.decode("utf-8", errors="replace")


def first_line(path: Path, limit: int = MAX_HEADER) -> bytes:
    """The first line of the (decompressed) file, read whole however long (up to `limit` bytes), without its end."""
    opener = gzip.open if is_gzip(path) else open
    parts: list[bytes] = []
    size = 0
    try:
        with opener(path, "rb") as fh:
            while block := fh.read(1 << 16):
                cut = block.find(b"\n")
                parts.append(block if cut < 0 else block[:cut])
                size += len(parts[-1])
                if cut >= 0:
                    break
                if size > limit:
                    raise WorkbenchError(f"{path}: the first line is longer than {limit >> 20} MiB")
    except (OSError, EOFError) as exc:
        raise WorkbenchError(f"{path}: cannot read ({exc})") from exc
    return b"".join(parts).removesuffix(b"\r")


def csv_header(path: Path, with_size: bool = False):
    """The column names of a CSV's header line and its delimiter (comma, semicolon, tab or pipe).

    The header is read whole, however long; with `with_size`, its length in bytes comes third.
    """
    import csv
    import io

    raw = first_line(path)
    first = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    delim = max(",;\t|", key=first.count) if first else ","
    names = next(csv.reader(io.StringIO(first), delimiter=delim), [])
    names = [n.strip() or f"column{i}" for i, n in enumerate(names, start=1)]
    if not first.strip():
        raise WorkbenchError(f"{path}: empty CSV (no header line)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise WorkbenchError(f"{path}: the header repeats column(s) {', '.join(dupes)}")
    return (names, delim, len(raw)) if with_size else (names, delim)


def read_lines_at(path: Path, positions: list[int], keep: int) -> dict[int, tuple[str, int, str, int | None]]:
    """The lines DuckDB reported at these positions (a line's start + 1), each as (its text cut to `keep` characters
    with undecodable bytes as \\xNN, its size in bytes, its SHA-256, the 1-based byte of its first invalid UTF-8 or
    None). A position where no line starts is left out.

    One forward pass (a gzip file is decompressed once), one block at a time: a line of any length costs no memory.
    """
    out: dict[int, tuple[str, int, str, int | None]] = {}
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rb") as fh:
            buf, at, i = b"", 0, 0  # the block in hand, the file offset of its first byte, the next unread byte
            for pos in sorted(set(positions)):
                lo = max(0, pos - 2)
                if pos < at + i:
                    continue  # inside a line already read: not a line start
                if lo < at or lo + 2 > at + len(buf):  # not in this block: read on from there
                    fh.seek(lo)  # forward (a block keeps the two bytes before it, so never far back)
                    buf, at, i = fh.read(1 << 20), lo, 0
                j = lo - at
                if pos < 2:
                    start = 0
                elif buf[j + 1:j + 2] == b"\n":  # the line starts at `pos`
                    start = pos
                elif buf[j:j + 1] == b"\n":  # ... or one byte before it
                    start = pos - 1
                else:
                    continue
                if start < at + i:
                    continue
                found, buf, at, i = _read_line(fh, buf, at, start - at, keep)
                out[pos] = found
    except (OSError, EOFError, zlib.error):
        pass
    return out


def _read_line(fh, buf: bytes, at: int, i: int, keep: int) -> tuple[tuple[str, int, str, int | None], bytes, int,
                                                                     int]:
    """Consume the line starting at buf[i] (reading on from fh): its description (see read_lines_at), and the
    block, its offset and the index where the next line starts."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    h = hashlib.sha256()
    head = bytearray()
    size, bad_byte = 0, None
    while True:
        cut = buf.find(b"\n", i)
        part = buf[i:] if cut < 0 else buf[i:cut].removesuffix(b"\r")
        if bad_byte is None:
            try:
                decoder.decode(part)
            except UnicodeDecodeError as exc:
                bad_byte = size + exc.start + 1
        h.update(part)
        if len(head) < 4 * keep:
            head += part[: 4 * keep - len(head)]
        size += len(part)
        if cut >= 0:
            i = cut + 1
            break
        more = fh.read(1 << 20)
        if not more:
            i = len(buf)
            break
        tail = buf[-2:]  # kept, so that the next line's start can still be checked against the byte before it
        at, buf, i = at + len(buf) - len(tail), tail + more, len(tail)
    if bad_byte is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            bad_byte = size
    text = bytes(head).decode("utf-8", errors="backslashreplace")[:keep]
    return (text, size, h.hexdigest(), bad_byte), buf, at, i


def detect_format(path: Path) -> str:
    """Recognise the file format from its name and first bytes: jsonl, csv, parquet or prometheus."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = Path(name).suffix
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        return "parquet"
    kind = _SUFFIXES.get(suffix)
    head = head_text(path)
    stripped = head.lstrip()
    if kind in (None, "json", "jsonl", "text") and stripped.startswith("{"):
        first = stripped.split("\n", 1)[0]
        if '"resultType"' in head[:4096] and '"data"' in head[:4096]:
            return "prometheus"
        try:
            json.loads(first)
            return "jsonl"
        except ValueError:
            return "json" if kind == "json" else "jsonl"
    if kind == "csv" or (kind is None and any(d in head.split("\n", 1)[0] for d in ",;\t")):
        return "csv"
    if kind in ("jsonl", "parquet"):
        return kind
    raise WorkbenchError(
        f"{path}: unsupported format (expected .jsonl, .csv, .parquet, optionally .gz, or Prometheus JSON)"
    )


def sniff_kind(path: Path, fmt: str) -> str:
    """Guess whether a file holds decisions or metrics from its columns or keys."""
    if fmt == "prometheus":
        return "metrics"
    if fmt == "parquet":
        import pyarrow.parquet as pq

        names = set(pq.read_schema(path).names)
    elif fmt == "csv":
        names = set(csv_header(path)[0])
    else:
        names = set()
        for line in head_text(path).splitlines()[:50]:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                names = set(obj)
                break
    if "decision_id" in names or any(n.startswith("features") for n in names):
        return "decisions"
    if {"metric", "value"} <= names:
        return "metrics"
    if fmt == "jsonl":
        # No parseable record to judge by (empty, or every line broken): take it as a decision log, so that
        # every line is accounted for in the quarantine rather than the file refused.
        return "decisions"
    raise WorkbenchError(
        f"{path}: cannot tell decisions from metrics (no decision_id or metric/value columns); pass --kind"
    )
