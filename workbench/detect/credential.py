"""Stolen or misused credentials: a principal acting unlike its own history.

Three signals, each learned from the principal's own other days (leave-one-day-out, so an episode inside
the reference window is still judged against the rest):
- new address: the source address is used by the principal on one day only, while it has many active days;
- off hours: on no other day was the principal active within an hour of that time of day;
- volume: the episode's hourly rate against the principal's busiest hours (95th percentile) on other days.
Unusual decisions (new address or off hours) are grouped into episodes; two signals make an alert.
Principals with little history (new keys) are left to the extraction and flood detectors.
"""

from __future__ import annotations

from workbench.detect.alerts import Alert
from workbench.detect.common import fmt_ts
from workbench.detect.context import Ctx, SystemScope

NAME = "credential"
ATLAS = ["AML.T0012", "AML.T0040"]
MIN_ACTIVE_DAYS = 3       # history needed to say what is usual for a principal
MIN_EPISODE = 10          # fewer unusual decisions than this are not judged
EPISODE_GAP_MINUTES = 60
VOLUME_RATIO = 2.0        # episode rate vs the principal's own p95 hourly rate
SHARE = 0.5               # a signal holds when it covers at least half of the episode


def detect(ctx: Ctx) -> list[Alert]:
    """Episodes where a known principal uses new addresses, odd hours and/or unusual volume."""
    out: list[Alert] = []
    for s in ctx.systems:
        out += _system(ctx, s)
    return out


def _system(ctx: Ctx, s: SystemScope) -> list[Alert]:
    ws = ctx.ws
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _cr AS
        WITH d AS (SELECT decision_id, principal, ts, ts::DATE AS day, hour(ts) AS h, source_ip, in_scope
                   FROM {s.table} d WHERE {ctx.unclaimed(s)}),
        act AS (SELECT principal, count(DISTINCT day) AS days FROM d GROUP BY principal
                HAVING count(DISTINCT day) >= {MIN_ACTIVE_DAYS}),
        ipd AS (SELECT principal, source_ip, count(DISTINCT day) AS ip_days FROM d
                WHERE source_ip IS NOT NULL GROUP BY ALL),
        ph AS (SELECT DISTINCT principal, day, h FROM d),
        near AS (SELECT principal, (h + dh + 24) % 24 AS hh, count(DISTINCT day) AS days_near
                 FROM ph, (VALUES (-1), (0), (1)) t(dh) GROUP BY ALL),
        hours AS (SELECT ph.principal, ph.day, ph.h, near.days_near - 1 AS other_days
                  FROM ph JOIN near ON near.principal = ph.principal AND near.hh = ph.h)
        SELECT d.decision_id, d.principal, d.ts, d.day, d.h, d.source_ip, d.in_scope, act.days AS active_days,
               coalesce(ipd.ip_days, 0) <= 1 AND d.source_ip IS NOT NULL AS new_ip,
               hours.other_days = 0 AS off_hours
        FROM d JOIN act USING (principal)
        LEFT JOIN ipd ON ipd.principal = d.principal AND ipd.source_ip = d.source_ip
        JOIN hours ON hours.principal = d.principal AND hours.day = d.day AND hours.h = d.h
    """)
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _cre AS
        WITH u AS (SELECT * FROM _cr WHERE new_ip OR off_hours),
        g AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY principal ORDER BY ts)
                             <= INTERVAL {EPISODE_GAP_MINUTES} MINUTE THEN 0 ELSE 1 END AS brk FROM u)
        SELECT *, principal || '|' || sum(brk) OVER (PARTITION BY principal ORDER BY ts, decision_id
                                                     ROWS UNBOUNDED PRECEDING) AS k FROM g
    """)
    eps = ws.dicts(f"""
        WITH e AS (
            SELECT k, any_value(principal) AS principal, count(*) AS n, min(ts) AS t0, max(ts) AS t1,
                   avg(new_ip::INT) AS new_ip_share, avg(off_hours::INT) AS off_share,
                   list(DISTINCT source_ip) FILTER (WHERE new_ip) AS new_ips, any_value(active_days) AS active_days,
                   bool_or(in_scope) AS in_scope, list(DISTINCT day) AS days
            FROM _cre GROUP BY k HAVING count(*) >= {MIN_EPISODE}),
        hourly AS (SELECT principal, day, h, count(*) AS c FROM _cr GROUP BY ALL)
        SELECT e.*,
               (SELECT quantile_cont(c, 0.95) FROM hourly WHERE hourly.principal = e.principal
                  AND NOT list_contains(e.days, hourly.day)) AS own_p95_hourly,
               (SELECT list(DISTINCT source_ip) FROM _cr WHERE _cr.principal = e.principal AND NOT new_ip)
                 AS usual_ips
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
        why = []
        if signals["new_address"]:
            why.append(f"from never-seen {', '.join((e['new_ips'] or [])[:2])}")
        if signals["off_hours"]:
            why.append("at hours it never works")
        if signals["volume"]:
            why.append(f"at {vol_ratio:.1f}x its usual peak hourly volume")
        summary = (f"The key of {e['principal']} made {e['n']} {s.system_id} requests between {fmt_ts(e['t0'])} "
                   f"and {fmt_ts(e['t1'])} {' and '.join(why)}, unlike its own {e['active_days']}-day history.")
        out.append(Alert(
            NAME, s.system_id, sev, e["t0"], e["t1"], summary,
            {"decisions": e["n"], "signals": signals, "new_address_share": e["new_ip_share"],
             "new_addresses": e["new_ips"] or [], "usual_addresses": (e["usual_ips"] or [])[:10],
             "off_hours_share": e["off_share"], "rate_per_hour": rate, "own_p95_hourly": own,
             "volume_ratio": vol_ratio, "active_days": e["active_days"],
             "thresholds": {"min_active_days": MIN_ACTIVE_DAYS, "signal_share": SHARE,
                            "volume_ratio": VOLUME_RATIO, "min_episode": MIN_EPISODE, "signals_needed": 2}},
            atlas=list(ATLAS), principal=e["principal"], score=float(k * 10 + vol_ratio), hits=e["k"]))
    if keys:
        ctx.hit(NAME, s, "SELECT k, decision_id FROM _cre WHERE list_contains(?, k)", [keys])
        ctx.claim(NAME, s, keys)
    return out
