"""Ceilings for one untrusted read: wall time, rows returned and memory, on a cursor of its own.

Time: a timer thread calls the cursor's `interrupt()`; DuckDB stops at the next chunk boundary.

Memory: DuckDB's `memory_limit` is one value for the whole database instance and governs only its buffer manager
(hash tables, sorts, cached blocks). A scalar function such as `repeat('x', 2000000000)` allocates its result
outside it, so `memory_limit` and `operator_memory_limit` never see it (measured: 2 GB strings pass a 256 MB
limit, 3.9 GB RSS, 8 s past a 2 s time limit because one function call cannot be interrupted). What does stop
it is the operating system: while the query runs, the process's address-space ceiling (`RLIMIT_AS`, Linux) is
set to what the process has mapped now plus the allowance, so an allocation beyond it fails at once and DuckDB
reports "Out of Memory", whatever the function. On top of that the cursor's `operator_memory_limit` (a
per-connection DuckDB setting) is half the allowance, so large joins, sorts and aggregates spill to disk before
they reach the ceiling instead of failing.

The ceiling is process-wide while the query runs: concurrent limited queries each add their allowance, and
another thread of the same process (another app session) that allocates a lot in that window shares it.
Memory the allocator kept from earlier queries is reused without counting against the ceiling, so a query may
touch more than its allowance: a little in a fresh process (measured: +160 MB once after a 256 MB failure, then
stable), and in a long-lived process that once held gigabytes (a test run, a busy app) possibly all of it, so the
ceiling is exact for the CLI and only a backstop in the app.
Where RLIMIT_AS is unavailable (not Linux) only the DuckDB-level limit applies.

What no in-process limit can do is interrupt one long function call: DuckDB checks for an interrupt between
chunks. Calls that only allocate (repeat, printf widths, range lists) fail at the memory ceiling at once;
`lpad`/`rpad` build their result a character at a time (~20 MB/s here) and run until the ceiling, and the
quadratic string distances (levenshtein, damerau_levenshtein, editdist3) on megabyte-long strings run for
minutes within a few MB. Stopping those needs the query in a separate process.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb

from workbench.errors import WorkbenchError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str | int) -> int:
    """Bytes in '2GB', '512 MiB', '1.5G', '1048576' (binary units); ValueError on anything else."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 512MB or 2GB)")
    unit = (m.group(2) or "").upper().replace("I", "").rstrip("B") or ""
    return int(float(m.group(1)) * _UNITS[unit])


def format_size(n: int) -> str:
    """'2 GiB', '512 MiB', '640 KiB'."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def _mapped_bytes() -> int | None:
    """The process's current address-space size (Linux /proc), or None where unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    import resource

    return pages * resource.getpagesize()


class _Ceiling:
    """The process's address-space ceiling while limited queries run: the first one in sets it, each concurrent
    one adds its allowance, the last one out restores the limit that was there before."""

    lock = threading.Lock()
    active = 0
    saved: tuple[int, int] | None = None


@contextmanager
def address_space_ceiling(extra: int) -> Iterator[bool]:
    """While inside, the process may map at most `extra` more bytes (RLIMIT_AS); yields whether it is enforced."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        yield False
        return
    extra = max(int(extra), 0)
    with _Ceiling.lock:
        mapped = _mapped_bytes()
        if mapped is None:
            enforced = False
        else:
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            saved = (soft, hard) if _Ceiling.active == 0 else _Ceiling.saved
            want = (mapped if _Ceiling.active == 0 else max(soft, mapped)) + extra
            for bound in saved:
                if bound != resource.RLIM_INFINITY:
                    want = min(want, bound)
            try:
                resource.setrlimit(resource.RLIMIT_AS, (want, hard))
                enforced = True
            except (ValueError, OSError):
                enforced = False
            if enforced:
                _Ceiling.active += 1
                _Ceiling.saved = saved
    try:
        yield enforced
    finally:
        if enforced:
            with _Ceiling.lock:
                _Ceiling.active -= 1
                if _Ceiling.active == 0:
                    resource.setrlimit(resource.RLIMIT_AS, _Ceiling.saved)
                else:  # the others keep their allowances
                    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
                    resource.setrlimit(resource.RLIMIT_AS, (max(soft - extra, _mapped_bytes() or 0), hard))


def run_limited(
    cur: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any] | dict | None = None,
    *,
    timeout: float,
    max_rows: int,
    memory: int | None = None,
) -> tuple[list[str], list[tuple], bool]:
    """Run one read on `cur` (a cursor of its own) inside a transaction that is rolled back, stopped after
    `timeout` seconds, cut after `max_rows`, and with at most `memory` more bytes: (columns, rows, truncated)."""
    if memory:
        cur.execute(f"SET operator_memory_limit = '{max(memory // 2, 16 << 20)}B'")
    timer = threading.Timer(float(timeout), cur.interrupt)
    timer.daemon = True
    cur.execute("BEGIN TRANSACTION")
    timer.start()  # the timer's thread exists before the ceiling is set
    try:
        with address_space_ceiling(memory) if memory else _nothing():
            res = cur.execute(sql, params) if params is not None else cur.execute(sql)
            rows = res.fetchmany(max_rows + 1)
            cols = [d[0] for d in res.description] if res.description else []
    except duckdb.InterruptException as exc:
        raise WorkbenchError(f"query stopped after the {timeout:g} s time limit") from exc
    except (duckdb.OutOfMemoryException, MemoryError) as exc:
        limit = format_size(memory) if memory else "available"
        raise WorkbenchError(f"query stopped: it needs more than the {limit} of memory ad-hoc SQL may use"
                             ) from exc
    finally:
        timer.cancel()
        try:
            cur.execute("ROLLBACK")
        except duckdb.Error:
            pass
    return cols, rows[:max_rows], len(rows) > max_rows


@contextmanager
def _nothing() -> Iterator[bool]:
    yield False
