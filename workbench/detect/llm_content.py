"""LLM detectors on content signals: direct injection/jailbreak, indirect injection, system-prompt leakage,
sensitive data in answers. Signals are computed at ingest (workbench.traces.signals); here they are judged
against what the system's own traffic shows (base rates, public values, leak levels), per principal episode."""

from __future__ import annotations

from workbench.detect.alerts import Alert
from workbench.detect.common import binom_z
from workbench.detect.context import Ctx
from workbench.detect.llm_common import alert, episodes, has_traces, hit, scope
from workbench.timestamps import human_utc
from workbench.traces.systems import org_domains

PUBLIC_PRINCIPALS = 5  # a value shown to this many principals is the organisation's own (hotline, support e-mail)
_KEY_RE = "^([a-z]+:hmac:[0-9a-f]+)"  # a value's type and token, without the e-mail's domain
LEAK_FLOOR = 0.3  # share of the system prompt's shingles an answer must reproduce, at the least


def injection(ctx: Ctx) -> list[Alert]:
    """Direct prompt injection / jailbreak: a principal's turns trip two or more pattern families."""
    if not has_traces(ctx):
        return []
    where, params = scope(ctx)
    ws = ctx.ws
    base = dict(ws.rows(f"""SELECT system_id, count(DISTINCT trace_id) FILTER (len(sig_injection) > 0)::DOUBLE
                                   / greatest(count(DISTINCT trace_id), 1)
                            FROM trace_spans WHERE kind = 'llm' AND {where} GROUP BY 1""", params))
    ws.execute(f"""CREATE OR REPLACE TEMP TABLE _llm_inj AS SELECT system_id, principal, ts, span_id, trace_id,
                          conversation_id, sig_injection, sig_refusal
                   FROM trace_spans WHERE kind = 'llm' AND len(sig_injection) > 0 AND {where}""", params)
    episodes(ctx, "_llm_inj")
    rows = ws.dicts("""
        SELECT episode, system_id, principal, min(ts) AS t0, max(ts) AS t1, count(DISTINCT trace_id) AS turns,
               list_distinct(flatten(list(sig_injection))) AS fams,
               count(DISTINCT trace_id) FILTER (len(sig_injection) >= 2) AS strong,
               count(DISTINCT trace_id) - count(DISTINCT trace_id) FILTER (sig_refusal) AS complied,
               count(DISTINCT conversation_id) AS conversations, list(DISTINCT conversation_id) AS conv_ids
        FROM _llm_inj GROUP BY ALL ORDER BY t0""")
    out = []
    for r in rows:
        if len(r["fams"]) < 2 or not (r["turns"] >= 2 or r["complied"] >= 1):
            continue
        n = ws.scalar("SELECT count(DISTINCT trace_id) FROM trace_spans WHERE kind = 'llm' AND system_id = ? "
                      "AND principal = ? AND ts BETWEEN ? AND ?", [r["system_id"], r["principal"], r["t0"], r["t1"]])
        p = base.get(r["system_id"], 0.0)
        z = binom_z(r["turns"], n, p)
        sev = "critical" if r["complied"] >= 3 else "high" if r["complied"] else "medium"
        key = "inj|" + r["episode"]
        hit(ctx, "llm_injection", "SELECT ?, system_id, span_id FROM _llm_inj WHERE episode = ?", [key, r["episode"]])
        summary = (f"{r['principal']} sent {r['turns']} turns to {r['system_id']} between {human_utc(r['t0'])} and "
                   f"{human_utc(r['t1'])} that match {len(r['fams'])} injection/jailbreak pattern families "
                   f"({', '.join(sorted(r['fams']))}); the model did not refuse {r['complied']} of them.")
        out.append(alert("llm_injection", r["system_id"], sev, r["t0"], r["t1"], summary,
                         {"turns_flagged": r["turns"], "turns_in_window": n, "families": sorted(r["fams"]),
                          "strong_turns": r["strong"], "not_refused": r["complied"],
                          "conversations": r["conv_ids"][:20], "system_rate_of_flagged_turns": p,
                          "binomial_z_vs_system_rate": z, "principals": [r["principal"]],
                          "thresholds": {"families": 2, "turns": 2, "or_not_refused": 1}},
                         ["AML.T0051.000", "AML.T0054"], ["LLM01"], principal=r["principal"],
                         score=r["turns"] * len(r["fams"]), key=key))
    return out


def indirect(ctx: Ctx) -> list[Alert]:
    """Indirect injection: instructions in a retrieved document or tool result, then the agent acts on them."""
    if not has_traces(ctx):
        return []
    where, params = scope(ctx, "d")
    ws = ctx.ws
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _llm_ind AS
        SELECT d.system_id, d.principal, d.ts, d.span_id, d.trace_id, d.kind, d.sig_doc_injection,
               sha256(coalesce(d.tool_result, d.output_text, '')) AS doc,
               list(t.span_id) FILTER (t.span_id IS NOT NULL) AS acts,
               list(t.tool_name) FILTER (t.span_id IS NOT NULL) AS tools,
               flatten(list(t.destinations) FILTER (t.span_id IS NOT NULL)) AS dests
        FROM trace_spans d LEFT JOIN trace_spans t ON t.system_id = d.system_id AND t.trace_id = d.trace_id
             AND t.kind = 'tool' AND t.ts >= d.ts AND t.span_id <> d.span_id
        WHERE d.kind IN ('tool', 'retrieval') AND len(d.sig_doc_injection) >= 2 AND {where}
        GROUP BY ALL""", params)
    out = []
    for r in ws.dicts("""SELECT system_id, doc, min(ts) AS t0, max(ts) AS t1, count(*) AS n,
                                list_distinct(flatten(list(sig_doc_injection))) AS fams,
                                list(DISTINCT principal) AS principals, mode(principal) AS principal,
                                count(*) FILTER (len(acts) > 0) AS acted, list_distinct(flatten(list(tools))) AS tools,
                                list_distinct(flatten(list(dests))) AS dests
                         FROM _llm_ind GROUP BY ALL ORDER BY t0"""):
        domains = org_domains(ws).get(r["system_id"], [])
        outside = [d for d in r["dests"] or [] if not _inside(d, domains)]
        sev = "critical" if outside else "high" if r["acted"] else "medium"
        key = "ind|" + r["system_id"] + "|" + r["doc"][:16]
        hit(ctx, "llm_indirect", "SELECT ?, system_id, span_id FROM _llm_ind WHERE doc = ? AND system_id = ? UNION "
            "SELECT ?, system_id, unnest(acts) FROM _llm_ind WHERE doc = ? AND system_id = ? AND len(acts) > 0",
            [key, r["doc"], r["system_id"], key, r["doc"], r["system_id"]])
        summary = (f"A {'document' if r['n'] else 'tool result'} seen {r['n']} times in {r['system_id']} "
                   f"({human_utc(r['t0'])} to {human_utc(r['t1'])}) carries instructions to the model "
                   f"({', '.join(sorted(r['fams']))}); the agent then called tools in {r['acted']} of those turns"
                   + (f", sending data to {len(outside)} destination(s) outside the organisation." if outside
                      else "."))
        out.append(alert("llm_indirect", r["system_id"], sev, r["t0"], r["t1"], summary,
                         {"occurrences": r["n"], "families": sorted(r["fams"]), "turns_acted_on": r["acted"],
                          "tools_called_after": r["tools"], "destinations_outside": [_shown(d) for d in outside],
                          "org_domains": domains, "principals": r["principals"], "document_sha256": r["doc"],
                          "thresholds": {"families_in_document": 2}},
                         ["AML.T0051.001"], ["LLM01"], principal=r["principal"], score=r["n"] + 10 * r["acted"],
                         key=key, subject=r["doc"][:16]))
    return out


def leakage(ctx: Ctx) -> list[Alert]:
    """System-prompt leakage: answers that reproduce the system instructions, or carry the system's canary."""
    if not has_traces(ctx):
        return []
    where, params = scope(ctx, "s")
    ws = ctx.ws
    bar = {sid: max(LEAK_FLOOR, (q or 0.0) + 0.2) for sid, q in ws.rows(
        f"SELECT system_id, quantile_cont(sig_leak, 0.999) FROM trace_spans s WHERE kind = 'llm' "
        f"AND sig_leak IS NOT NULL AND {where} GROUP BY 1", params)}
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _llm_leak AS
        SELECT s.system_id, s.principal, s.ts, s.span_id, s.sig_leak,
               s.sig_canary OR coalesce(c.canary <> '' AND contains(s.output_text, c.canary), false) AS canary
        FROM trace_spans s LEFT JOIN trace_systems c USING (system_id)
        WHERE s.kind = 'llm' AND {where}
          AND (s.sig_canary OR coalesce(c.canary <> '' AND contains(s.output_text, c.canary), false)
               OR s.sig_leak >= greatest(coalesce(list_extract(map_extract(?::MAP(VARCHAR, DOUBLE), s.system_id), 1),
                                                  {LEAK_FLOOR}), {LEAK_FLOOR}))""", [*params, bar or {"": 1.0}])
    episodes(ctx, "_llm_leak")
    out = []
    for r in ws.dicts("""SELECT episode, system_id, principal, min(ts) AS t0, max(ts) AS t1, count(*) AS n,
                                max(sig_leak) AS leak, count(*) FILTER (canary) AS canary
                         FROM _llm_leak GROUP BY ALL ORDER BY t0"""):
        sev = "critical" if r["canary"] else "high" if (r["leak"] or 0) >= 0.8 else "medium"
        key = "leak|" + r["episode"]
        hit(ctx, "llm_leak", "SELECT ?, system_id, span_id FROM _llm_leak WHERE episode = ?", [key, r["episode"]])
        why = (f"{r['canary']} carried the system's canary string" if r["canary"] else
               f"up to {r['leak']:.0%} of the system prompt's 6-word phrases reproduced")
        summary = (f"{r['n']} answers of {r['system_id']} to {r['principal']} between {human_utc(r['t0'])} and "
                   f"{human_utc(r['t1'])} reproduce the system instructions: {why}.")
        out.append(alert("llm_leak", r["system_id"], sev, r["t0"], r["t1"], summary,
                         {"answers": r["n"], "max_share_of_prompt_reproduced": r["leak"], "canary_hits": r["canary"],
                          "principals": [r["principal"]],
                          "thresholds": {"share": bar.get(r["system_id"], LEAK_FLOOR),
                                         "learned_from": "the system's 99.9th percentile + 0.2, at least 0.3"}},
                         ["AML.T0056"], ["LLM07"], principal=r["principal"], score=r["n"] * (1 + r["canary"]),
                         key=key))
    return out


def sensitive(ctx: Ctx) -> list[Alert]:
    """Personal data of someone other than the caller, or secrets, in answers (values checked, never shown)."""
    if not has_traces(ctx):
        return []
    where, params = scope(ctx, "s")
    ws = ctx.ws
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _llm_val AS
        SELECT s.system_id, s.principal, s.ts, s.span_id, s.conversation_id, unnest(s.sig_sensitive) AS v
        FROM trace_spans s WHERE s.kind = 'llm' AND len(s.sig_sensitive) > 0 AND {where}""", params)
    ws.execute("""
        CREATE OR REPLACE TEMP TABLE _llm_sens AS
        WITH own AS (SELECT DISTINCT system_id, conversation_id, regexp_extract(unnest(sig_caller), ?, 1) AS k
                     FROM trace_spans WHERE len(sig_caller) > 0
                       AND conversation_id IN (SELECT conversation_id FROM _llm_val)),
             public AS (SELECT system_id, v FROM _llm_val GROUP BY ALL HAVING count(DISTINCT principal) >= ?)
        SELECT x.*, split_part(x.v, ':', 1) AS type, split_part(x.v, ':', 4) AS domain FROM _llm_val x
        WHERE NOT EXISTS (SELECT 1 FROM own o WHERE o.system_id = x.system_id AND o.conversation_id = x.conversation_id
                          AND o.k = regexp_extract(x.v, ?, 1))
          AND NOT EXISTS (SELECT 1 FROM public p WHERE p.system_id = x.system_id AND p.v = x.v)""",
               [_KEY_RE, PUBLIC_PRINCIPALS, _KEY_RE])
    domains = org_domains(ws)
    for sid, doms in domains.items():
        if doms:
            ws.execute("DELETE FROM _llm_sens WHERE system_id = ? AND type = 'email' AND list_contains(?, domain)",
                       [sid, doms])
    ws.execute("CREATE OR REPLACE TEMP TABLE _llm_sens AS SELECT system_id, principal, ts, span_id, "
               "list(DISTINCT type) AS types, count(DISTINCT v) AS n_values FROM _llm_sens GROUP BY ALL")
    episodes(ctx, "_llm_sens")
    out = []
    for r in ws.dicts("""SELECT episode, system_id, principal, min(ts) AS t0, max(ts) AS t1, count(*) AS n,
                                list_distinct(flatten(list(types))) AS types, sum(n_values) AS n_values
                         FROM _llm_sens GROUP BY ALL ORDER BY t0"""):
        types = sorted(r["types"])
        sev = "critical" if {"card", "nric", "secret"} & set(types) else "high"
        key = "sens|" + r["episode"]
        hit(ctx, "llm_sensitive", "SELECT ?, system_id, span_id FROM _llm_sens WHERE episode = ?",
            [key, r["episode"]])
        summary = (f"{r['n']} answers of {r['system_id']} to {r['principal']} between {human_utc(r['t0'])} and "
                   f"{human_utc(r['t1'])} contain {int(r['n_values'])} sensitive value(s) ({', '.join(types)}) that "
                   "the caller did not give and that are not the organisation's own.")
        out.append(alert("llm_sensitive", r["system_id"], sev, r["t0"], r["t1"], summary,
                         {"answers": r["n"], "value_types": types, "values": int(r["n_values"]),
                          "principals": [r["principal"]],
                          "checks": {"card": "Luhn", "nric": "NRIC/FIN check letter", "email": "not the caller's, "
                                     "not an organisation domain", "phone": "not the caller's",
                                     "secret": "API key / private key patterns"},
                          "thresholds": {"public_value_principals": PUBLIC_PRINCIPALS}},
                         ["AML.T0057", "AML.T0024"], ["LLM02"], principal=r["principal"], score=r["n_values"],
                         key=key))
    return out


def _inside(dest: str, domains: list[str]) -> bool:
    """Whether a destination ('email:token:domain' or 'host:name') is in one of the organisation's domains."""
    host = dest.split(":")[-1] if dest.startswith("email:") else dest.removeprefix("host:")
    return any(host == d or host.endswith("." + d) for d in domains)


def _shown(dest: str) -> str:
    """A destination as evidence: the domain of an address (its token stays), the host of a URL."""
    if dest.startswith("host:"):
        return dest
    parts = dest.split(":")
    return f"email at {parts[-1]} ({':'.join(parts[1:3])})"
