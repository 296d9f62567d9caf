"""Stolen or misused credentials: a principal acting unlike its own history (or, when that is short, its peers').

Three signals, each learned from the principal's own other days (leave-one-day-out, so an episode inside
the reference window is still judged against the rest):
- new address: the source address is used by the principal on one day only;
- off hours: on no other day was the principal active within an hour of that time of day;
- volume: the episode's hourly rate against the principal's busiest hours (95th percentile) on other days.
A principal with fewer than MIN_ACTIVE_DAYS active days (a short window, a rarely used key) is judged against
a pooled history: its own days plus those of its peers, the principals that share a source address with it
(the same office, branch or egress). Signals then mean "new to the pool", "hours no peer works" and "above the
peers' busy hours". A key with neither history nor peers is left to the extraction and flood detectors.
Everything is computed on one aggregate per (principal, day, hour, address); only the decisions of unusual
keys are read back to form episodes. Unusual decisions (new address or off hours) are grouped into episodes;
two signals make an alert.
"""

from __future__ import annotations

from workbench.detect.alerts import Alert
from workbench.detect.context import Ctx, SystemScope
from workbench.detect.episodes import episodes_sql
from workbench.timestamps import human_utc

NAME = "credential"
ATLAS = ["AML.T0012", "AML.T0040"]
MIN_ACTIVE_DAYS = 3       # history needed to say what is usual for a principal (own, or pooled with peers)
MIN_EPISODE = 10          # fewer unusual decisions than this are not judged
EPISODE_GAP_MINUTES = 60
VOLUME_RATIO = 2.0        # episode rate vs the (own or pooled) p95 hourly rate
SHARE = 0.5               # a signal holds when it covers at least half of the episode
MAX_PEERS = 200           # an address shared by more principals than this (a big NAT) makes no peers


def detect(ctx: Ctx) -> list[Alert]:
    """Episodes where a known principal uses new addresses, odd hours and/or unusual volume."""
    out: list[Alert] = []
    for s in ctx.systems:
        out += _system(ctx, s)
    return out


def _flags(ctx: Ctx, s: SystemScope) -> None:
    """_cra: counts per (principal, day, hour, address); _crk: the same keys with their pooled history flags."""
    ws = ctx.ws
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _cra AS
        SELECT principal, ts::DATE AS day, hour(ts)::INT AS h, source_ip, count(*) AS c
        FROM {s.table} WHERE {ctx.unclaimed(s)} GROUP BY ALL
    """)
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _crp AS
        WITH act AS (SELECT principal, count(DISTINCT day) AS days FROM _cra GROUP BY 1),
        pip AS (SELECT DISTINCT principal, source_ip FROM _cra WHERE source_ip IS NOT NULL),
        shared AS (SELECT source_ip FROM pip GROUP BY 1 HAVING count(*) BETWEEN 2 AND {MAX_PEERS}),
        peers AS (SELECT DISTINCT a.principal AS p, b.principal AS m
                  FROM pip a JOIN shared USING (source_ip) JOIN pip b USING (source_ip)
                  JOIN act ON act.principal = a.principal
                  WHERE act.days < {MIN_ACTIVE_DAYS} AND a.principal <> b.principal)
        SELECT principal AS p, principal AS m, days AS own_days FROM act
        UNION ALL SELECT p, m, NULL FROM peers
    """)
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _crk AS
        WITH dh AS (SELECT DISTINCT principal, day, h FROM _cra),
        pdh AS (SELECT DISTINCT _crp.p AS principal, dh.day, dh.h FROM _crp JOIN dh ON dh.principal = _crp.m),
        pool AS (SELECT principal, count(DISTINCT day) AS pool_days FROM pdh GROUP BY 1
                 HAVING count(DISTINCT day) >= {MIN_ACTIVE_DAYS}),
        near AS (SELECT principal, (h + k + 24) % 24 AS hh, count(DISTINCT day) AS days_near
                 FROM pdh JOIN pool USING (principal), (VALUES (-1), (0), (1)) t(k) GROUP BY ALL),
        ipd AS (SELECT _crp.p AS principal, a.source_ip, count(DISTINCT a.day) AS ip_days
                FROM _crp JOIN (SELECT DISTINCT principal, source_ip, day FROM _cra WHERE source_ip IS NOT NULL) a
                  ON a.principal = _crp.m GROUP BY ALL),
        own AS (SELECT p AS principal, own_days, (SELECT count(*) FROM _crp x WHERE x.p = _crp.p) - 1 AS peers
                FROM _crp WHERE own_days IS NOT NULL)
        SELECT a.principal, a.day, a.h, a.source_ip, a.c, own.own_days AS active_days, pool.pool_days, own.peers,
               coalesce(ipd.ip_days, 0) <= 1 AND a.source_ip IS NOT NULL AS new_ip,
               near.days_near - 1 = 0 AS off_hours
        FROM _cra a JOIN pool USING (principal) JOIN own USING (principal)
        LEFT JOIN ipd ON ipd.principal = a.principal AND ipd.source_ip = a.source_ip
        JOIN near ON near.principal = a.principal AND near.hh = a.h
    """)


def _system(ctx: Ctx, s: SystemScope) -> list[Alert]:
    ws = ctx.ws
    _flags(ctx, s)
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _cre AS
        WITH k AS (SELECT * FROM _crk WHERE new_ip OR off_hours),
        u AS (SELECT d.decision_id, d.principal, d.ts, k.day, k.source_ip, d.in_scope, k.new_ip, k.off_hours,
                     k.active_days, k.pool_days, k.peers
              FROM {s.table} d JOIN k ON k.principal = d.principal AND k.day = d.ts::DATE AND k.h = hour(d.ts)
                AND k.source_ip IS NOT DISTINCT FROM d.source_ip
              WHERE {ctx.unclaimed(s, 'd')})
        {episodes_sql("u", ["principal"], EPISODE_GAP_MINUTES, "decision_id")}
    """)
    eps = ws.dicts(f"""
        WITH e AS (
            SELECT k, any_value(principal) AS principal, count(*) AS n, min(ts) AS t0, max(ts) AS t1,
                   avg(new_ip::INT) AS new_ip_share, avg(off_hours::INT) AS off_share,
                   list(DISTINCT source_ip ORDER BY source_ip) FILTER (WHERE new_ip) AS new_ips,
                   any_value(active_days) AS active_days,
                   any_value(pool_days) AS pool_days, any_value(peers) AS peers,
                   bool_or(in_scope) AS in_scope, list(DISTINCT day ORDER BY day) AS days
            FROM _cre GROUP BY k HAVING count(*) >= {MIN_EPISODE}),
        hourly AS (SELECT principal, day, h, sum(c) AS c FROM _cra GROUP BY ALL)
        SELECT e.*,
               (SELECT quantile_cont(c, 0.95) FROM hourly JOIN _crp ON _crp.m = hourly.principal
                 WHERE _crp.p = e.principal AND NOT (hourly.principal = e.principal
                                                     AND list_contains(e.days, hourly.day))) AS own_p95_hourly,
               (SELECT list(DISTINCT source_ip ORDER BY source_ip) FROM _crk
                 WHERE _crk.principal = e.principal AND NOT new_ip) AS usual_ips,
               (SELECT list(m ORDER BY m) FROM _crp WHERE _crp.p = e.principal AND m <> e.principal) AS peer_names
        FROM e WHERE in_scope ORDER BY t0
    """)
    out, keys = [], []
    for e in eps:
        hours = max((e["t1"] - e["t0"]).total_seconds() / 3600, 1.0)
        rate = e["n"] / hours
        own = e["own_p95_hourly"] or 1.0
        vol_ratio = rate / own
        signals = {"new_address": e["new_ip_share"] >= SHARE, "off_hours": e["off_share"] >= SHARE,
                   "volume": vol_ratio >= VOLUME_RATIO}
        k = sum(signals.values())
        if k < 2:
            continue
        keys.append(e["k"])
        sev = "critical" if k == 3 and vol_ratio >= 2 * VOLUME_RATIO else "high" if k == 3 else "medium"
        pooled = bool(e["peers"]) and (e["active_days"] or 0) < MIN_ACTIVE_DAYS
        why = []
        if signals["new_address"]:
            why.append(f"from never-seen {', '.join((e['new_ips'] or [])[:2])}")
        if signals["off_hours"]:
            why.append("at hours " + ("neither it nor its peers ever work" if pooled else "it never works"))
        if signals["volume"]:
            why.append(f"at {vol_ratio:.1f}x {'its peers' if pooled else 'its'} usual peak hourly volume")
        unlike = (f"unlike its own {e['active_days']}-day history and that of the {e['peers']} principals sharing "
                  f"its addresses" if pooled else f"unlike its own {e['active_days']}-day history")
        summary = (f"The key of {e['principal']} made {e['n']} {s.system_id} requests between {human_utc(e['t0'])} "
                   f"and {human_utc(e['t1'])} {' and '.join(why)}, {unlike}.")
        out.append(Alert(
            NAME, s.system_id, sev, e["t0"], e["t1"], summary,
            {"decisions": e["n"], "signals": signals, "new_address_share": e["new_ip_share"],
             "new_addresses": e["new_ips"] or [], "usual_addresses": (e["usual_ips"] or [])[:10],
             "off_hours_share": e["off_share"], "rate_per_hour": rate, "own_p95_hourly": own,
             "volume_ratio": vol_ratio, "active_days": e["active_days"],
             "history": "pooled with peers" if pooled else "own", "pool_active_days": e["pool_days"],
             "peers": (e["peer_names"] or [])[:20] if pooled else [],
             "thresholds": {"min_active_days": MIN_ACTIVE_DAYS, "signal_share": SHARE,
                            "volume_ratio": VOLUME_RATIO, "min_episode": MIN_EPISODE, "signals_needed": 2,
                            "peers": "principals sharing a source address (short own history only)",
                            "max_principals_per_shared_address": MAX_PEERS}},
            atlas=list(ATLAS), principal=e["principal"], score=float(k * 10 + vol_ratio), hits=e["k"]))
    if keys:
        ctx.hit(NAME, s, "SELECT k, decision_id FROM _cre WHERE list_contains(?, k)", [keys])
        ctx.claim(NAME, s, keys)
    return out
