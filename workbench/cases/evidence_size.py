"""How big an evidence item is, in the unit that fits its kind: rows, bytes, features, decisions.

``evidence.item_count`` holds a different thing per kind (rows of a decision set or metric window,
bytes of a file, the decision ids of an alert or explanation), so it is never shown bare as "items".
"""

from __future__ import annotations

from typing import Any


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def human_bytes(n: int) -> str:
    """A byte count for people: 13 bytes, 2.4 KiB, 1.1 MiB."""
    if n < 1024:
        return _plural(n, "byte")
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    return _plural(n, "byte")  # pragma: no cover


def _explanation_features(content: Any) -> tuple[int, int]:
    """(distinct features, decisions) in an explanation payload."""
    if not isinstance(content, dict):
        return 0, 0
    decisions = content.get("decisions")
    if isinstance(decisions, list) and decisions and all(isinstance(d, dict) for d in decisions):
        names = {a.get("feature") for d in decisions for a in d.get("attributions") or [] if isinstance(a, dict)}
        return len(names - {None}), len(decisions)
    attrs = content.get("attributions")
    if isinstance(attrs, dict):
        return len(attrs), 1 if content.get("decision_id") else 0
    if isinstance(attrs, list):
        names = {a.get("feature") for a in attrs if isinstance(a, dict)}
        return len(names - {None}), 1 if content.get("decision_id") else 0
    return 0, 0


def size_text(item: dict[str, Any]) -> str:
    """The size of one evidence item (a row of list_evidence; content used for explanations), or ''."""
    kind = item.get("kind")
    raw = item.get("item_count")
    count = None if raw is None or raw != raw else int(raw)  # NaN from a DataFrame means none
    content = item.get("content")
    if kind == "decision_set":
        return _plural(count, "row") if count is not None else ""
    if kind == "metric_window":
        return _plural(count, "row") if count is not None else ""
    if kind == "file":
        size = content.get("bytes") if isinstance(content, dict) else None
        size = size if isinstance(size, int) else count
        return human_bytes(size) if size is not None else ""
    if kind == "alert":
        return _plural(count, "decision") if count else ""
    if kind == "explanation":
        features, decisions = _explanation_features(content)
        parts = [_plural(features, "feature")] if features else []
        n = decisions or count or 0
        if n > 1:
            parts.append(_plural(n, "decision"))
        return ", ".join(parts)
    return ""
