"""LLM agent detectors on structure: excessive agency (unusual tools, data sent outside, tool storms in a turn)
and unbounded consumption (tokens per principal-day far above its own and its peers'). Both learn what is usual
from the system's own traffic: tool shares per agent, known destinations, tool calls per turn, token levels."""

from __future__ import annotations

import math

import numpy as np

from workbench.detect.alerts import Alert
from workbench.detect.context import Ctx
from workbench.detect.llm_common import alert, episodes, has_traces, hit, scope
from workbench.detect.robust import robust_center_scale
from workbench.timestamps import human_utc
from workbench.traces.systems import org_domains

RARE_SHARE = 0.002  # a tool taking less than this share of an agent's calls ...
RARE_PRINCIPALS = 2  # ... and used by at most this many principals is unusual for it
KNOWN_DEST_PRINCIPALS = 5  # a host or e-mail domain used for this many principals is a known destination
MIN_STORM = 6  # tool calls in one turn, at the least, to be a storm
TOKENS_Z, TOKENS_RATIO = 6.0, 5.0


def agency(ctx: Ctx) -> list[Alert]:
    """Excessive agency: a tool unusual for the agent, data sent outside the organisation, many calls in a turn."""
    if not has_traces(ctx):
        return []
    where, params = scope(ctx, "t")
    ws = ctx.ws
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _llm_tools AS
        SELECT t.system_id, t.agent, t.principal, t.ts, t.span_id, t.trace_id, t.conversation_id, t.tool_name,
               t.destinations, count(*) OVER (PARTITION BY t.system_id, t.trace_id) AS in_turn
        FROM trace_spans t WHERE t.kind = 'tool' AND {where}""", params)
    storm = {sid: max(MIN_STORM, int(math.ceil(2 * (q or 0)))) for sid, q in ws.rows(
        "SELECT system_id, quantile_cont(n, 0.999) FROM (SELECT system_id, trace_id, count(*) AS n FROM _llm_tools "
        "GROUP BY ALL) GROUP BY 1")}
    ws.execute("""
        CREATE OR REPLACE TEMP TABLE _llm_rare AS
        SELECT system_id, agent, tool_name FROM _llm_tools GROUP BY ALL
        HAVING count(*) < ? * (SELECT count(*) FROM _llm_tools x WHERE x.system_id = _llm_tools.system_id
                                AND x.agent IS NOT DISTINCT FROM _llm_tools.agent)
           AND count(DISTINCT principal) <= ?""", [RARE_SHARE, RARE_PRINCIPALS])
    # known destinations: the organisation's domains, values the caller gave, hosts/domains used for many principals
    ws.execute("""
        CREATE OR REPLACE TEMP TABLE _llm_dest AS
        WITH d AS (SELECT system_id, principal, conversation_id, span_id, unnest(destinations) AS dest FROM _llm_tools),
        own AS (SELECT DISTINCT system_id, conversation_id, regexp_extract(unnest(sig_caller),
            '^([a-z]+:hmac:[0-9a-f]+)', 1) AS k
                FROM trace_spans WHERE len(sig_caller) > 0 AND conversation_id IN (SELECT conversation_id FROM d)),
        known AS (SELECT system_id, CASE WHEN starts_with(dest, 'host:') THEN dest ELSE 'domain:' ||
                         split_part(dest, ':', 4) END AS place FROM d GROUP BY ALL
                  HAVING count(DISTINCT principal) >= ?)
        SELECT d.*, CASE WHEN starts_with(dest, 'host:') THEN substr(dest, 6) ELSE split_part(dest, ':', 4) END AS host
        FROM d WHERE NOT EXISTS (SELECT 1 FROM own o WHERE o.system_id = d.system_id
            AND o.conversation_id = d.conversation_id
                                 AND o.k = regexp_extract(d.dest, '^([a-z]+:hmac:[0-9a-f]+)', 1))
          AND NOT EXISTS (SELECT 1 FROM known k WHERE k.system_id = d.system_id AND k.place = CASE WHEN
                          starts_with(d.dest, 'host:') THEN d.dest ELSE 'domain:' || split_part(d.dest, ':', 4) END)""",
               [KNOWN_DEST_PRINCIPALS])
    for sid, doms in org_domains(ws).items():
        for dom in doms:
            ws.execute("DELETE FROM _llm_dest WHERE system_id = ? AND (host = ? OR ends_with(host, ?))",
                       [sid, dom, "." + dom])
    ws.execute("""
        CREATE OR REPLACE TEMP TABLE _llm_ag AS
        SELECT t.system_id, t.principal, t.ts, t.span_id, t.tool_name,
               r.tool_name IS NOT NULL AS rare, t.in_turn >= coalesce(map_extract(?::MAP(VARCHAR, INTEGER),
                   t.system_id)[1], ?) AS storm,
               (SELECT list(DISTINCT host) FROM _llm_dest d WHERE d.span_id = t.span_id
                   AND d.system_id = t.system_id) AS outside
        FROM _llm_tools t LEFT JOIN _llm_rare r ON r.system_id = t.system_id AND r.agent IS NOT DISTINCT FROM t.agent
             AND r.tool_name IS NOT DISTINCT FROM t.tool_name""", [storm or {"": MIN_STORM}, MIN_STORM])
    ws.execute("DELETE FROM _llm_ag WHERE NOT rare AND NOT storm AND coalesce(len(outside), 0) = 0")
    episodes(ctx, "_llm_ag")
    out = []
    for r in ws.dicts("""SELECT episode, system_id, principal, min(ts) AS t0, max(ts) AS t1, count(*) AS n,
                                list(DISTINCT tool_name) FILTER (rare) AS rare_tools, count(*) FILTER (storm)
                                    AS storm_calls,
                                list_distinct(flatten(list(outside))) AS outside
                         FROM _llm_ag GROUP BY ALL ORDER BY t0"""):
        outside = [h for h in (r["outside"] or []) if h]
        why = []
        if r["rare_tools"]:
            why.append(f"tool(s) this agent almost never calls ({', '.join(sorted(r['rare_tools']))})")
        if outside:
            why.append(f"data sent outside the organisation ({', '.join(sorted(outside)[:5])})")
        if r["storm_calls"]:
            bar = storm.get(r["system_id"], MIN_STORM)
            why.append(f"{r['storm_calls']} tool calls in turns of at least {bar} calls")
        sev = "critical" if outside and (r["rare_tools"] or r["storm_calls"]) else "high"
        key = "agency|" + r["episode"]
        hit(ctx, "llm_agency", "SELECT ?, system_id, span_id FROM _llm_ag WHERE episode = ?", [key, r["episode"]])
        summary = (f"The agent of {r['system_id']} acting for {r['principal']} between {human_utc(r['t0'])} and "
                   f"{human_utc(r['t1'])} made {r['n']} unusual tool calls: " + "; ".join(why) + ".")
        out.append(alert("llm_agency", r["system_id"], sev, r["t0"], r["t1"], summary,
                         {"tool_calls": r["n"], "rare_tools": sorted(r["rare_tools"] or []),
                          "storm_calls": r["storm_calls"], "destinations_outside": sorted(outside),
                          "principals": [r["principal"]],
                          "thresholds": {"rare_share": RARE_SHARE, "rare_principals": RARE_PRINCIPALS,
                                         "calls_per_turn": storm.get(r["system_id"], MIN_STORM),
                                         "known_destination_principals": KNOWN_DEST_PRINCIPALS}},
                         ["AML.T0053", "AML.T0086"], ["LLM06"], principal=r["principal"], score=r["n"], key=key))
    return out


def consumption(ctx: Ctx) -> list[Alert]:
    """Unbounded consumption: a principal-day's tokens far above its own other days and its peers' days."""
    if not has_traces(ctx):
        return []
    where, params = scope(ctx)
    ws = ctx.ws
    days = ws.dicts(f"""SELECT system_id, principal, ts::DATE AS day, sum(coalesce(input_tokens, 0)
                               + coalesce(output_tokens, 0)) AS tokens, min(ts) AS t0, max(ts) AS t1,
                               count(*) AS calls, sum(cost) AS cost
                        FROM trace_spans WHERE kind = 'llm' AND {where} GROUP BY ALL""", params)
    out = []
    for sid in sorted({d["system_id"] for d in days}):
        rows = [d for d in days if d["system_id"] == sid]
        logs = np.log1p([float(d["tokens"]) for d in rows])
        med, scale = robust_center_scale(logs, floor=0.05)
        peer_p99 = float(np.quantile([d["tokens"] for d in rows], 0.99))
        by_p: dict[str, list[float]] = {}
        for d in rows:
            by_p.setdefault(d["principal"], []).append(float(d["tokens"]))
        for d in rows:
            z = (math.log1p(float(d["tokens"])) - med) / scale
            others = sorted(by_p[d["principal"]])
            others.remove(float(d["tokens"]))
            own = float(np.median(others)) if others else None
            ratio = float(d["tokens"]) / max(math.expm1(med), 1.0)
            if z < TOKENS_Z or ratio < TOKENS_RATIO or (own is not None and d["tokens"] < TOKENS_RATIO * own):
                continue
            key = f"tok|{sid}|{d['principal']}|{d['day']}"
            hit(ctx, "llm_consumption", f"SELECT ?, system_id, span_id FROM trace_spans WHERE kind = 'llm' AND "
                f"system_id = ? AND principal = ? AND ts::DATE = ? AND {where}", [key, sid, d["principal"], d["day"],
                                                                                   *params])
            sev = "critical" if ratio >= 100 else "high"
            summary = (f"{d['principal']} used {int(d['tokens']):,} tokens of {sid} on {d['day']} "
                       f"({human_utc(d['t0'])} to {human_utc(d['t1'])}), {ratio:,.0f}x a typical principal-day"
                       + (f" and {d['tokens'] / max(own, 1):,.0f}x its own usual day." if own else
                          ", with no usual day of its own."))
            out.append(alert("llm_consumption", sid, sev, d["t0"], d["t1"], summary,
                             {"tokens": int(d["tokens"]), "model_calls": d["calls"], "cost": d["cost"],
                              "typical_principal_day_tokens": math.expm1(med), "peers_p99_tokens": peer_p99,
                              "own_median_tokens": own, "robust_z": z, "ratio_to_typical": ratio,
                              "principals": [d["principal"]],
                              "thresholds": {"robust_z": TOKENS_Z, "ratio": TOKENS_RATIO}},
                             ["AML.T0034"], ["LLM10"], principal=d["principal"], score=z, key=key))
    return out
