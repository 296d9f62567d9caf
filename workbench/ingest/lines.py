"""Physical lines of a text file by number, in one forward pass: blank-line numbers, a few quarantined lines' text.

A handful of quarantined rows must not cost a read of the whole file into the workspace: these read it block by
block (a gzip file decompressed once), count newlines in C (`bytes.count`), and stop after the last line wanted.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import zlib
from pathlib import Path

from workbench.ingest.files import BlankFinder, is_gzip

_BLOCK = 4 << 20


def _blocks(path: Path):
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            yield block


def blank_lines(path: Path) -> list[int]:
    """The 1-based numbers of the file's blank lines (empty, or a lone CR), in one pass."""
    offsets: list[int] = []
    finder = BlankFinder(offsets)
    try:
        for block in _blocks(path):
            finder.feed(block)
    except (OSError, EOFError, zlib.error):
        pass
    return line_numbers(path, offsets)


def line_numbers(path: Path, offsets: list[int]) -> list[int]:
    """The 1-based line number of each byte offset (offsets into the decompressed text), sorted."""
    wanted = sorted(set(offsets))
    out: list[int] = []
    if not wanted:
        return out
    at, newlines, k = 0, 0, 0
    try:
        for block in _blocks(path):
            end = at + len(block)
            while k < len(wanted) and wanted[k] < end:
                out.append(newlines + block.count(b"\n", 0, wanted[k] - at) + 1)
                k += 1
            if k == len(wanted):
                break
            newlines += block.count(b"\n")
            at = end
    except (OSError, EOFError, zlib.error):
        pass
    return out


def read_numbered(path: Path, numbers: list[int], keep: int) -> dict[int, tuple[str, int, str]]:
    """Lines by 1-based number: (text cut to `keep` characters, undecodable bytes as \\xNN; size in bytes;
    SHA-256), without the line end. One pass, up to the last number wanted."""
    wanted = sorted({int(n) for n in numbers if n is not None and n > 0})
    out: dict[int, tuple[str, int, str]] = {}
    line, k = 1, 0  # the number of the line the next byte belongs to; the next wanted line
    parts: list[bytes] | None = None  # the wanted line being read, when it runs across blocks
    try:
        for block in _blocks(path):
            i = 0
            while k < len(wanted):
                if parts is None:
                    skip = wanted[k] - line
                    if skip and block.count(b"\n", i) < skip:  # not in this block: count it in C, move on
                        line += block.count(b"\n", i)
                        break
                    for _ in range(skip):
                        i = block.index(b"\n", i) + 1
                    line += skip
                    parts = []
                j = block.find(b"\n", i)
                parts.append(block[i:] if j < 0 else block[i:j])
                if j < 0:
                    break
                out[wanted[k]] = _described(b"".join(parts), keep)
                parts, k, line, i = None, k + 1, line + 1, j + 1
            if k == len(wanted):
                break
        if parts is not None and k < len(wanted):  # the last line has no line end
            out[wanted[k]] = _described(b"".join(parts), keep)
    except (OSError, EOFError, zlib.error):
        pass
    return out


def _described(data: bytes, keep: int) -> tuple[str, int, str]:
    data = data.removesuffix(b"\r")
    return codecs.decode(data[: 4 * keep], "utf-8", errors="backslashreplace")[:keep], len(data), \
        hashlib.sha256(data).hexdigest()
