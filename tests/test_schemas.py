"""workbench.schemas: pydantic errors become located one-line problems; YAML field paths map to lines."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import AfterValidator, BaseModel

from workbench.errors import WorkbenchError
from workbench.schemas import Problem, field_path, line_of, problems_error, validate, yaml_lines


def _positive(value: int) -> int:
    if value <= 0:
        raise ValueError(f"{value} must be positive")
    return value


class Item(BaseModel):
    name: str
    size: Annotated[int, AfterValidator(_positive)]


class Doc(BaseModel, extra="forbid"):
    title: str
    items: list[Item]


YAML = "title: t\nitems:\n  - name: a\n    size: 1\n  - name: b\n    size: -2\n  - size: 3\ncolour: red\n"


def test_field_path_reads_like_the_document() -> None:
    assert field_path(("items", 1, "size")) == "items[1].size"
    assert field_path(("title",)) == "title" and field_path(()) == ""


def test_yaml_lines_and_nearest_enclosing_line() -> None:
    lines = yaml_lines(YAML, first_line=10)
    assert lines["title"] == 10 and lines["items[1].size"] == 15 and lines["colour"] == 17
    assert line_of("items[2].name", lines) == 16  # a missing key: the line of the item that lacks it
    assert yaml_lines("a: [unclosed") == {}


def test_validate_reports_every_problem_with_path_and_line() -> None:
    import yaml

    model, found = validate(Doc, yaml.safe_load(YAML), yaml_lines(YAML))
    assert model is None
    assert [str(p) for p in found] == [
        "line 6: items[1].size: -2 must be positive",
        "line 7: items[2].name: missing",
        "line 8: colour: unknown key",
    ]
    ok, none = validate(Doc, {"title": "t", "items": []})
    assert ok is not None and none == []


def test_problems_error_one_line_or_one_per_line() -> None:
    found = [Problem("a", "missing", 3), Problem("b", "bad")]
    multi = problems_error("f.md", found, "see check")
    assert isinstance(multi, WorkbenchError) and multi.problems == found
    assert str(multi).splitlines() == ["f.md: 2 problems (see check):", "  f.md: line 3: a: missing",
                                       "  f.md: b: bad"]
    assert str(problems_error("m", found, "example: x", one_line=True)) == "m: line 3: a: missing; b: bad; example: x"
    assert str(problems_error("m", found[1:])) == "m: b: bad"
    with pytest.raises(WorkbenchError, match="^m: b: bad$"):
        raise problems_error("m", found[1:])
