"""The house rules a newcomer relies on: the README's package table matches the tree, no import cycles, and only
the app's own modules import Streamlit."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "workbench"
UI = ("workbench.streamlit_app", "workbench.app_pages", "workbench.ui")


def _table_paths() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("| package | what it does |", 1)[1].split("\n\n", 1)[0]
    paths: list[str] = []
    for row in section.splitlines()[2:]:
        first = row.split("|")[1]
        names = re.findall(r"`([^`]+)`", first)
        base = ""
        for name in names:
            if name.startswith("workbench/"):
                base = name.rsplit("/", 2)[0] + "/" if not name.endswith("/") else "workbench/"
                paths.append(name)
            else:
                paths.append(base + name)
    return paths


def test_package_table_matches_the_tree() -> None:
    paths = _table_paths()
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"README package table names what does not exist: {missing}"
    packages = sorted(f"workbench/{d.name}/" for d in PKG.iterdir() if (d / "__init__.py").exists())
    unlisted = [p for p in packages if p not in paths]
    assert not unlisted, f"packages missing from the README package table: {unlisted}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _top_level_imports(path: Path, name: str) -> set[str]:
    """Modules of the package imported at module level (not inside functions, not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names if a.name.startswith("workbench")}
            elif isinstance(sub, ast.ImportFrom):
                module = sub.module or ""
                if sub.level:
                    module = ".".join(package.split(".")[: len(package.split(".")) - sub.level + 1] + [module])
                if module.startswith("workbench"):
                    found.add(module)
                    found |= {f"{module}.{a.name}" for a in sub.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in _top_level_imports(path, name) if m in modules and m != name}
    return graph


def test_no_import_cycles_between_modules() -> None:
    graph = _graph()
    # Importing a package's submodule runs the package's __init__ first; a module importing its own package's
    # __init__ is how the package exports its parts, not a cycle between two modules.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles[:10])


def test_only_the_app_imports_streamlit() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        name = _module_name(path)
        if name.startswith(UI):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(m == "streamlit" or m.startswith("streamlit.") for m in mods):
                offenders.append(name)
    assert not offenders, f"core modules importing streamlit: {sorted(set(offenders))}"
