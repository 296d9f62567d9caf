"""Declarative validation helpers: pydantic errors as located, one-line problems.

A schema (a pydantic model) describes a document; `validate()` returns the model or every problem at once, each
with its field path (``references[2].url``) and, when the document came from YAML text, its line
(`yaml_lines()` maps field paths to lines). `problems_error()` turns the list into one SchemaError (a WorkbenchError).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from workbench.errors import WorkbenchError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (field path, line) and what."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        """``[line N: ]path: message``."""
        where = f"line {self.line}: " if self.line is not None else ""
        return where + (f"{self.path}: {self.message}" if self.path else self.message)


def field_path(loc: Loc) -> str:
    """A pydantic location as a readable path: ('references', 2, 'url') -> 'references[2].url'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(err: Mapping[str, Any]) -> str:
    """The error's message without pydantic's prefixes; 'missing' for an absent required field."""
    kind = err.get("type")
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "value_error" and "error" in (err.get("ctx") or {}):
        return str(err["ctx"]["error"])
    return str(err.get("msg", "invalid"))


def problems(exc: ValidationError, lines: Mapping[str, int] | None = None) -> list[Problem]:
    """Every error of a ValidationError as a Problem, located by field path and (with `lines`) by line."""
    out = []
    for err in exc.errors():
        path = field_path(tuple(err["loc"]))
        out.append(Problem(path, _message(err), line_of(path, lines) if lines is not None else None))
    return out


def line_of(path: str, lines: Mapping[str, int]) -> int | None:
    """The line of a field path, else of its nearest enclosing field that has one (a missing key: None)."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return lines.get("")


def validate(
    model: type[M], data: Any, lines: Mapping[str, int] | None = None, context: dict[str, Any] | None = None
) -> tuple[M | None, list[Problem]]:
    """Validate `data` against `model`: (the model, []) or (None, every problem)."""
    try:
        return model.model_validate(data, context=context), []
    except ValidationError as exc:
        return None, problems(exc, lines)


def yaml_lines(text: str, first_line: int = 1) -> dict[str, int]:
    """Field path -> 1-based line for every mapping key and list item of a YAML document ('' = the document)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[str, int] = {}

    def walk(node: yaml.Node, path: str) -> None:
        out.setdefault(path, node.start_mark.line + first_line)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = f"{path}.{key.value}" if path else str(key.value)
                out[name] = key.start_mark.line + first_line
                walk(value, name)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    if root is not None:
        walk(root, "")
    return out


class SchemaError(WorkbenchError):
    """A document failed its schema; `problems` holds every problem, the message names them all."""

    def __init__(self, message: str, found: Sequence[Problem]) -> None:
        super().__init__(message)
        self.problems = list(found)


def problems_error(subject: str, found: Sequence[Problem], suffix: str = "", one_line: bool = False) -> SchemaError:
    """One error naming every problem: a header, then one 'subject: problem' line each; or one line ('; ')."""
    texts = [str(p) for p in found]
    if one_line or len(texts) == 1:
        return SchemaError(f"{subject}: " + "; ".join(texts + ([suffix] if suffix else [])), found)
    head = f"{subject}: {len(texts)} problems" + (f" ({suffix})" if suffix else "") + ":"
    return SchemaError("\n".join([head, *(f"  {subject}: {t}" for t in texts)]), found)
