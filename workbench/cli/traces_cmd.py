"""`workbench conversations list|show|freeze` and `workbench traces policy`: LLM and agent traces from the shell.

Trace text is attacker text: `show` prints it as plain, one-line-per-field text (control characters made visible),
with personal values masked for roles without read:personal, exactly as the library returns it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from workbench.cli import app
from workbench.cli.common import DbOpt, JsonOpt, UserOpt, emit, emit_json, emit_rows, workspace_actor
from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.traces import conversations
from workbench.traces.systems import POLICIES, configure

conv_app = typer.Typer(help="Conversations of LLM assistants and agents: list, show as a tree, freeze as evidence.",
                       no_args_is_help=True)
app.add_typer(conv_app, name="conversations")
traces_app = typer.Typer(help="Trace settings per system (content policy).", no_args_is_help=True)
app.add_typer(traces_app, name="traces")

ConvArg = Annotated[str, typer.Argument(metavar="CONV", help="Conversation id, as `conversations list` shows it.")]
ConvSystemOpt = Annotated[str | None, typer.Option("--system", help="System of the conversation (needed only when "
                                                                    "two systems use the same id).")]
TEXT_FIELDS = (("system", "system_prompt"), ("user", "input_text"), ("answer", "output_text"),
               ("tool arguments", "tool_args"), ("tool result", "tool_result"))
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u2028\u2029\u2060\u202a-\u202e]")


def _system_of(ws: Workspace, conv: str, system: str | None) -> str:
    """The system holding conversation `conv` (the one given, else the only one that has it)."""
    if system:
        return system
    found = [r[0] for r in ws.rows("SELECT DISTINCT system_id FROM trace_spans WHERE conversation_id = ? "
                                   "ORDER BY 1", [conv])]
    if not found:
        raise WorkbenchError(f"no conversation {conv!r} in this workspace (see `workbench conversations list`)")
    if len(found) > 1:
        raise WorkbenchError(f"conversation {conv!r} is in {', '.join(found)}: say which with --system")
    return found[0]


def plain(text: Any, limit: int = 600) -> str:
    """Trace text as one safe line: newlines shown as ⏎, other control and bidi characters as \\uXXXX, cut."""
    s = str(text).replace("\r\n", "\n").replace("\n", " ⏎ ")
    s = _CONTROL.sub(lambda m: f"\\u{ord(m.group(0)):04x}", s)
    return s if len(s) <= limit else s[:limit] + f"… (+{len(s) - limit} chars)"


def render_tree(conv: dict[str, Any], full: bool = False) -> list[str]:
    """The conversation as indented text lines: one header per span, its texts below, flagged spans marked '!'."""
    lines = [f"conversation {conv['conversation_id']} of {conv['system_id']}: {len(conv['spans'])} spans, "
             f"{conv['flagged_spans']} flagged" + (" (personal values masked for your role)" if conv["masked"]
                                                   else "")]
    for s in conv["spans"]:
        pad = "  " * s["depth"]
        what = s.get("tool_name") or s.get("model") or s.get("name") or s.get("kind")
        mark = "!" if s["flags"] else "-"
        tokens = "" if s.get("input_tokens") is None and s.get("output_tokens") is None else \
            f" tokens {s.get('input_tokens') or 0}/{s.get('output_tokens') or 0}"
        lines.append(f"{pad}{mark} {s.get('kind')}: {plain(what, 80)} [{s['span_id']}] "
                     f"{s['ts']:%Y-%m-%d %H:%M:%S} {plain(s.get('principal'), 60)}{tokens}")
        for f in s["flags"]:
            lines.append(f"{pad}    FLAGGED by {f['detector']} ({f['severity']}), alert {f['alert_id']}")
        for label, key in TEXT_FIELDS:
            if s.get(key) and (key != "system_prompt" or full):
                lines.append(f"{pad}    {label}: {plain(s[key], 100_000 if full else 600)}")
    return lines


@conv_app.command("list")
def list_cmd(
    system: Annotated[str | None, typer.Option("--system", help="Only this system.")] = None,
    flagged: Annotated[bool, typer.Option("--flagged", help="Only conversations an LLM detector flagged.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many conversations.")] = 500,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Conversations with principal, time span, turns, tokens and the LLM detectors that flagged them."""
    ws, who = workspace_actor(db, user)
    rows = conversations.list_conversations(ws, who, system=system, flagged_only=flagged, limit=limit)
    if json_:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no conversations" + (" flagged" if flagged else "") + (f" in {system}" if system else ""))
        return
    emit_rows([{**r, "flags": ", ".join(r["flags"] or [])} for r in rows],
              ["system_id", "conversation_id", "principal", "started", "turns", "spans", "tokens", "flags"], False)


@conv_app.command("show")
def show_cmd(
    conv: ConvArg,
    system: ConvSystemOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Print whole texts and the system prompt (default: cut "
                                                      "at 600 characters, system prompt left out).")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """One conversation as an indented tree (user turn, model calls, tool calls); flagged spans marked '!'."""
    ws, who = workspace_actor(db, user)
    data = conversations.conversation(ws, who, _system_of(ws, conv, system), conv)
    if json_:
        emit(data, True, "")
        return
    for line in render_tree(data, full):
        typer.echo(line)


@conv_app.command("freeze")
def freeze_cmd(
    conv: ConvArg,
    incident: Annotated[str, typer.Option("--incident", help="Incident to freeze it into, e.g. INC-0001.")],
    system: ConvSystemOpt = None,
    label: Annotated[str | None, typer.Option("--label", help="Evidence label (default: names the conversation).")]
    = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Freeze a conversation (spans, flags, masked as your role reads them) as evidence with its SHA-256."""
    ws, who = workspace_actor(db, user)
    ev = conversations.freeze(ws, who, incident, _system_of(ws, conv, system), conv, label)
    emit(ev, json_, f"{ev['incident_id']}: evidence {ev['evidence_id']} {ev['label']} (sha256 {ev['sha256']})")


@traces_app.command("policy")
def policy_cmd(
    system: Annotated[str, typer.Argument(metavar="SYSTEM", help="System id (the traces' service.name).")],
    policy: Annotated[str, typer.Argument(metavar="POLICY", help="keep, mask (HMAC tokens: equal texts still "
                                                                 "match) or drop the prompt and answer text.")],
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Set a system's content policy for spans ingested from now on (lead or admin)."""
    if policy not in POLICIES:
        raise WorkbenchError(f"unknown content policy {policy!r}; use keep, mask or drop")
    ws, who = workspace_actor(db, user)
    out = configure(ws, who, system, content_policy=policy)
    emit(out, json_, f"{system}: content policy {out['content_policy']} (applies to spans ingested from now on)")
