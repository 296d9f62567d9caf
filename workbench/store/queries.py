"""Named, reusable SQL: one `.sql` file per query in workbench/store/sql/, with a metadata header.

Header lines: `-- name: NAME`, `-- description: ONE LINE`, `-- params: $a, $b` (or `(none)`).
Run one with `ws.named(NAME, {"a": ..., "b": ...})`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_HEADER = re.compile(r"^--\s*(name|description|params):\s*(.*)$")


@dataclass(frozen=True)
class NamedQuery:
    """A query file: its name, what it answers, the parameters it takes, and the SQL."""

    name: str
    description: str
    params: tuple[str, ...]
    sql: str


def _parse(text: str) -> NamedQuery:
    meta: dict[str, str] = {}
    for line in text.splitlines():
        m = _HEADER.match(line.strip())
        if m:
            meta[m.group(1)] = m.group(2).strip()
    params = () if meta.get("params", "(none)") == "(none)" else tuple(
        p.strip().lstrip("$") for p in meta["params"].split(",") if p.strip())
    return NamedQuery(meta.get("name", ""), meta.get("description", ""), params, text)


@cache
def all_queries() -> dict[str, NamedQuery]:
    """Every named query shipped with the package, by name."""
    out = {}
    for entry in resources.files("workbench.store").joinpath("sql").iterdir():
        if entry.name.endswith(".sql"):
            q = _parse(entry.read_text(encoding="utf-8"))
            out[q.name or entry.name[:-4]] = q
    return out


def get(name: str) -> NamedQuery:
    """One named query; KeyError names the known ones."""
    queries = all_queries()
    if name not in queries:
        raise KeyError(f"no named query {name!r}; known: {', '.join(sorted(queries))}")
    return queries[name]
