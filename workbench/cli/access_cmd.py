"""`workbench user|personal|sql|decisions`: accounts, personal-data marks, ad-hoc SQL, decision search.

Passwords never travel as arguments: a new password comes from --password-stdin or a prompt; the sign-in
password from WORKBENCH_PASSWORD, the root option `workbench --password-stdin ...` (first line), or a prompt.
"""

from __future__ import annotations

import getpass
import re
import sys
from typing import Annotated, Any

import typer

from workbench.cli import app
from workbench.cli.common import (
    SIGN_IN,
    DbOpt,
    JsonOpt,
    PasswordStdinOpt,
    UserOpt,
    actor,
    dumps,
    emit_json,
    read_password_stdin,
    table,
    workspace,
)
from workbench.errors import WorkbenchError


@app.callback()
def _root(password_stdin: PasswordStdinOpt = False) -> None:
    """Incident-response workbench for production AI systems."""
    SIGN_IN["password_stdin"] = password_stdin
    SIGN_IN["password"] = None


user_app = typer.Typer(help="Local accounts and roles (admin).", no_args_is_help=True)
personal_app = typer.Typer(
    help="Feature columns that hold personal data (masked for some roles).", no_args_is_help=True
)
decisions_app = typer.Typer(
    help="Decision-level search (needs read:decisions; audited).", no_args_is_help=True
)
app.add_typer(user_app, name="user")
app.add_typer(personal_app, name="personal")
app.add_typer(decisions_app, name="decisions")

IdentityOpt = Annotated[
    str | None,
    typer.Option(help="OIDC identity for the app's st.login sign-in: the e-mail (or `sub` claim) it signs in with."),
]

_USER_COLUMNS = [
    "user",
    "role",
    "identity",
    "disabled",
    "locked",
    "locked_until",
    "failed_count",
    "last_login",
    "created_at",
    "created_by",
]


def _new_password(from_stdin: bool, who: str) -> str:
    if from_stdin:
        return read_password_stdin()
    if not sys.stdin.isatty():
        raise WorkbenchError("no terminal to prompt for the password: use --password-stdin")
    first = getpass.getpass(f"new password for {who}: ")
    if getpass.getpass("again: ") != first:
        raise WorkbenchError("the two passwords differ")
    return first


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Account name.")],
    role: Annotated[
        str, typer.Option(help="viewer, analyst, lead, auditor or admin (the first account: admin).")
    ],
    password_stdin: PasswordStdinOpt = False,
    identity: IdentityOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Create an account; the first one (an admin) switches the workspace to sign-in.

    With --identity the account signs in through the app's OIDC provider and needs no local password
    (give --password-stdin to set one as well)."""
    from workbench.access import accounts

    ws = workspace(db)
    who = actor(ws, user)
    password = None if identity and not password_stdin else _new_password(password_stdin, name)
    row = accounts.add_user(ws, who, name, role, password, identity=identity)
    linked = f", OIDC identity {row['identity']}" if row.get("identity") else ""
    typer.echo(dumps(row) if json_ else f"account {name} ({role}) created{linked}")


@user_app.command("link")
def user_link(
    name: Annotated[str, typer.Argument(help="Account name.")],
    identity: IdentityOpt = None,
    unlink: Annotated[bool, typer.Option("--unlink", help="Remove the account's OIDC identity.")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Link an account to the OIDC identity (e-mail or `sub` claim) it signs in with through the app."""
    from workbench.access import accounts

    if bool(identity) == unlink:
        raise WorkbenchError("give either --identity EMAIL or --unlink")
    ws = workspace(db, create=False)
    row = accounts.link_identity(ws, actor(ws, user), name, None if unlink else identity)
    text = f"account {name} linked to {row['identity']}" if row.get("identity") else f"account {name} unlinked"
    typer.echo(dumps(row) if json_ else text)


@user_app.command("list")
def user_list(db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """List accounts: role, disabled, locked, last sign-in."""
    from workbench.access import accounts

    ws = workspace(db, create=False)
    rows = accounts.list_users(ws, actor(ws, user))
    if json_:
        emit_json(rows)
    else:
        table(rows, _USER_COLUMNS)


@user_app.command("role")
def user_role(
    name: Annotated[str, typer.Argument(help="Account name.")],
    role: Annotated[str, typer.Argument(help="New role.")],
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Change an account's role."""
    from workbench.access import accounts

    ws = workspace(db, create=False)
    row = accounts.set_role(ws, actor(ws, user), name, role)
    typer.echo(dumps(row) if json_ else f"account {name} is now {role}")


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="Account name.")],
    enable: Annotated[bool, typer.Option("--enable", help="Re-enable instead.")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Disable an account (or re-enable it with --enable)."""
    from workbench.access import accounts

    ws = workspace(db, create=False)
    row = accounts.disable_user(ws, actor(ws, user), name, disabled=not enable)
    typer.echo(dumps(row) if json_ else f"account {name} {'enabled' if enable else 'disabled'}")


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str, typer.Argument(help="Account name.")],
    password_stdin: PasswordStdinOpt = False,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Set a new password (admins for anyone, users for themselves); clears a lockout."""
    from workbench.access import accounts

    ws = workspace(db, create=False)
    who = actor(ws, user)
    accounts.reset_password(ws, who, name, _new_password(password_stdin, name))
    typer.echo(dumps({"user": name, "password": "changed"}) if json_ else f"password of {name} changed")


@user_app.command("unlock")
def user_unlock(
    name: Annotated[str, typer.Argument(help="Account name.")],
    local_recovery: Annotated[
        bool,
        typer.Option(
            "--local-recovery",
            help="No sign-in: only for a locked admin when no other enabled admin can sign in; needs write "
            "access to the workspace file on this machine; audited as account.unlock (local-recovery).",
        ),
    ] = False,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Clear a sign-in lockout (the password stays as it is).

    An admin signs in and unlocks any account. If the locked account is the last enabled admin, nobody can
    sign in to unlock it: wait for the lock to expire (setting login_lockout_minutes), or run this on the
    machine that holds the workspace with --local-recovery, which needs write access to the workspace file
    and is recorded in the audit chain under your OS user name. The app offers no such path, so the lockout
    still holds against password guessing over the network."""
    from workbench.access import accounts

    ws = workspace(db, create=False)
    if local_recovery:
        row = accounts.local_unlock(ws, name)
    else:
        row = accounts.unlock(ws, actor(ws, user), name)
    how = " (local recovery, audited)" if local_recovery else ""
    typer.echo(dumps({"user": name, "unlocked": True, "local_recovery": local_recovery}) if json_
               else f"account {name} unlocked{how}; its password is unchanged")
    del row


@personal_app.command("mark")
def personal_mark(
    system: Annotated[str, typer.Argument(help="System id.")],
    features: Annotated[list[str], typer.Argument(help="Feature names.")],
    unmark: Annotated[bool, typer.Option("--unmark", help="Remove the mark instead.")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Mark features of a system as personal data (masked for roles without read:personal)."""
    from workbench.access import masking

    ws = workspace(db, create=False)
    marked = masking.mark_personal(ws, actor(ws, user), system, features, personal=not unmark)
    typer.echo(
        dumps({"system_id": system, "personal": marked})
        if json_
        else f"{system}: personal features: {', '.join(marked) or 'none'}"
    )


@personal_app.command("list")
def personal_list(
    system: Annotated[str | None, typer.Argument(help="Only this system.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List the features marked personal, per system."""
    from workbench.access import masking

    ws = workspace(db, create=False)
    actor(ws, user)
    marks = masking.all_personal(ws)
    rows = [{"system_id": s, "feature": f} for s, fs in marks.items() if system in (None, s) for f in fs]
    if json_:
        emit_json(rows)
    else:
        table(rows, ["system_id", "feature"])


@app.command("sql")
def sql_cmd(
    statement: Annotated[str, typer.Argument(help="One read-only SELECT over workspace tables.")],
    max_rows: Annotated[int | None, typer.Option(help="Row cap (default: setting query_max_rows).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds (default: setting query_timeout).")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Run ad-hoc SQL: one SELECT, no file or network access, time- and row-limited, audited."""
    from workbench.explore.sandbox import run_sql

    ws = workspace(db, create=False)
    result = run_sql(ws, actor(ws, user), statement, timeout=timeout, max_rows=max_rows)
    if json_:
        emit_json(result.dicts())
    else:
        table(result.dicts(), result.columns)
        typer.echo(
            f"{len(result.rows)} rows in {result.seconds:.2f} s" + "".join(f"; {n}" for n in result.notes)
        )
    if result.truncated:
        typer.echo(f"note: result cut at {len(result.rows)} rows", err=True)


_WHERE = re.compile(
    r"^\s*([^\s<>=!]+)\s*(<=|>=|!=|=|<|>|\s+not\s+in\s+|\s+in\s+|\s+like\s+|\s+is\s+not\s+null|"
    r"\s+is\s+null)\s*(.*)$",
    re.IGNORECASE,
)


def parse_where(text: str) -> tuple[str, str, Any]:
    """'age>=30', 'purpose in car,home', 'email like %@x.org', 'x is null' -> (feature, op, value)."""
    m = _WHERE.match(text)
    if not m:
        raise WorkbenchError(f"cannot read filter {text!r}: use FEATURE OP VALUE, e.g. 'income>=5000'")
    feature, op, value = m.group(1), " ".join(m.group(2).lower().split()), m.group(3).strip()
    if op in ("in", "not in"):
        return feature, op, [v.strip() for v in value.split(",") if v.strip()]
    return feature, op, None if op.startswith("is") else value


@decisions_app.command("search")
def decisions_search(
    system: Annotated[str | None, typer.Option(help="System id.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO-8601, UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time.")] = None,
    principal: Annotated[list[str] | None, typer.Option(help="Principal (repeatable).")] = None,
    prediction: Annotated[list[str] | None, typer.Option(help="Prediction (repeatable).")] = None,
    score_min: Annotated[float | None, typer.Option(help="Minimum score.")] = None,
    score_max: Annotated[float | None, typer.Option(help="Maximum score.")] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="Feature filter, e.g. 'income>=5000' (repeatable).")
    ] = None,
    decision_id: Annotated[list[str] | None, typer.Option("--id", help="Decision id (repeatable).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 500,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Search decisions; features as f.<name>, personal ones masked for your role; the read is audited."""
    from workbench.explore import search_decisions

    ws = workspace(db, create=False)
    df = search_decisions(
        ws,
        actor(ws, user),
        system_id=system,
        since=since,
        until=until,
        principal=principal,
        prediction=prediction,
        score_min=score_min,
        score_max=score_max,
        feature_filters=[parse_where(w) for w in where or []],
        decision_ids=decision_id,
        limit=limit,
    )
    rows = [_clean(r) for r in df.to_dict("records")]
    if json_:
        emit_json(rows)
    else:
        cols = [
            "system_id",
            "decision_id",
            "ts",
            "principal",
            "prediction",
            "score",
            *[c for c in df.columns if c.startswith("f.")][:8],
        ]
        table(rows, cols)
        typer.echo(f"{len(rows)} decisions")
