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


def main() -> None:
    """Entry point: run the CLI, turning every user error into one line on stderr and a non-zero exit."""
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


# Each module adds its commands to `app` (or a sub-app) when imported, in this order (the order of `--help`);
# `app` exists above, so they can import it. An import error in any of them fails here, loudly.
# isort: off
from workbench.cli import core  # noqa: E402, F401
from workbench.cli import audit_cmd  # noqa: E402, F401
from workbench.cli import models_cmd  # noqa: E402, F401
from workbench.cli import detect_cmd  # noqa: E402, F401
from workbench.cli import cases_cmd  # noqa: E402, F401
from workbench.cli import casework_cmd  # noqa: E402, F401
from workbench.cli import playbooks_cmd  # noqa: E402, F401
from workbench.cli import report_cmd  # noqa: E402, F401
from workbench.cli import drills_cmd  # noqa: E402, F401
from workbench.cli import access_cmd  # noqa: E402, F401
from workbench.cli import integrations_cmd  # noqa: E402, F401
from workbench.cli import redteam_cmd  # noqa: E402, F401
from workbench.cli import lake_cmd  # noqa: E402, F401
from workbench.cli import traces_cmd  # noqa: E402, F401
# isort: on
