"""Documentation keeps up with the code: settings, CLI help, links, the two commands."""

from __future__ import annotations

import re
from pathlib import Path

import click
import typer.main

from workbench import settings
from workbench.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    for s in settings.SETTINGS.values():
        assert f"`{s.env}`" in README, f"setting {s.name} ({s.env}) is missing from the README's settings table"


def test_readme_has_the_two_commands() -> None:
    assert "pip install -e . && streamlit run workbench" in README
    assert 'pip install -e ".[test]" && pytest' in README
    assert 'pip install -e ".[test]" && pytest' in (ROOT / ".ci" / "run").read_text()


def test_every_command_and_option_has_help() -> None:
    root = typer.main.get_command(app)

    seen: list[str] = []

    # Duck-typed: Typer >= 0.20 vendors its own click, so its groups and options are not click.Group/click.Option.
    def walk(cmd: click.Command, path: str) -> None:
        if isinstance(getattr(cmd, "commands", None), dict):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")
            return
        seen.append(path)
        assert (cmd.help or "").strip(), f"`{path}` has no help text"
        for p in cmd.params:
            if getattr(p, "param_type_name", "") == "option" and p.name not in ("help",):
                assert (p.help or "").strip(), f"`{path}` option {p.opts} has no help text"

    walk(root, "workbench")
    assert len(seen) > 20, f"walked only {seen}"


def test_relative_links_in_docs_resolve() -> None:
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
