"""The `workbench` command line: parse arguments, call the library, print text or --json."""

from __future__ import annotations

import os
import sys

import typer

from workbench.errors import WorkbenchError

app = typer.Typer(
    name="workbench",
    help="Incident-response workbench for production AI systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module adds its commands to `app` (or a sub-app) when imported.
_COMMAND_MODULES = ("core", "audit_cmd", "models_cmd", "detect_cmd", "cases_cmd", "casework_cmd", "playbooks_cmd",
                    "report_cmd", "drills_cmd", "access_cmd", "integrations_cmd",
                    "redteam_cmd", "lake_cmd", "traces_cmd")


def _load_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(f"workbench.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"workbench.cli.{name}":
                raise


def main() -> None:
    """Entry point: run the CLI, turning every user error into one line on stderr and a non-zero exit."""
    _load_commands()
    try:
        # Outside standalone mode click returns (not raises) the code of a `typer.Exit(n)`.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except WorkbenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        import click

        # Typer >= 0.20 vendors its own click: its usage errors are not click.ClickException.
        if isinstance(exc, click.ClickException) or isinstance(exc, getattr(typer, "TyperException", ())) \
                and hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        typer.echo(f"error: {type(exc).__name__}: {first} (set WORKBENCH_DEBUG=1 for details)", err=True)
        sys.exit(1)
