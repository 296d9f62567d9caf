"""Baseline traffic: principals with their own volume, hours and addresses; timestamps; latency and errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.sample.systems import CONFIGS, FRAUD, GATEWAY_MIX, LOAN, MERCHANT_CATEGORIES, sample_features

US = 1_000_000
HOUR_US = 3600 * US
MINUTE_US = 60 * US
_ISP_OCTETS = tuple(
    int(x)
    for x in "31 37 46 62 77 78 80 81 82 83 84 85 86 87 88 89 90 91 92 93 94 95 109 176 "
    "178 188 212 213 217".split()
)
_HOSTING_OCTETS = tuple(
    int(x) for x in "5 23 45 64 103 104 107 138 139 142 143 146 149 154 157 159 161 164 167 170".split()
)
_CITIES = tuple(
    "lyon porto leeds gent turin bremen lille malaga cork graz utrecht brno nantes seville basel krakow "
    "bilbao aarhus genoa dijon".split()
)
_WORDS = tuple(
    "atlas birch cobalt delta ember fjord granite harbor iris juniper kestrel lumen maple nimbus onyx "
    "pioneer quartz ridge summit tidal umber vantage willow zenith apex beacon cedar drift echo "
    "falcon".split()
)
_FIRST = tuple(
    "anna ben chloe david elena farid greta hugo ines jonas karin luca maria nils olga pedro rosa sven "
    "tara umar vera wim yara zoe".split()
)
# consumer demand by UTC hour (customers are on UTC+1)
CONSUMER = np.array(
    [
        float(x)
        for x in "0.30 0.18 0.11 0.08 0.07 0.08 0.14 0.32 0.62 0.88 1.0 1.05 1.15 1.25 1.15 "
        "1.1 1.1 1.18 1.3 1.35 1.25 1.05 0.8 0.52".split()
    ]
)


@dataclass
class Population:
    """All principals of one system, as arrays (one row per principal)."""

    system_id: str
    names: list[str]
    kinds: list[str]
    weight: np.ndarray  # relative volume
    profile: np.ndarray  # (P, 168) hour-of-week weights, Monday 00 UTC first
    ips: np.ndarray  # (P, 3) object
    ip_cum: np.ndarray  # (P, 3) cumulative choice probabilities
    lat_factor: np.ndarray
    err_factor: np.ndarray
    cat_probs: np.ndarray | None  # (P, K) merchant-category mix (card-fraud only)

    def index(self, name: str) -> int:
        """Row of a principal by name."""
        return self.names.index(name)


def random_ips(
    rng: np.random.Generator, n: int, hosting: bool = False, avoid: set[str] | None = None
) -> list[str]:
    """n distinct public-looking IPv4 strings (ISP ranges, or hosting ranges for attackers)."""
    firsts = _HOSTING_OCTETS if hosting else _ISP_OCTETS
    out: list[str] = []
    avoid = set(avoid or ())
    while len(out) < n:
        a, b, c = rng.integers(1, 255), rng.integers(0, 256), rng.integers(1, 255)
        ip = f"{firsts[rng.integers(len(firsts))]}.{a}.{b}.{c}"
        if ip not in avoid:
            avoid.add(ip)
            out.append(ip)
    return out


def _week(daily: np.ndarray, day_factor: tuple[float, ...]) -> np.ndarray:
    return np.concatenate([daily * f for f in day_factor])


def _office(rng: np.random.Generator, start: int, length: int, sat: float, lunch: float = 0.6) -> np.ndarray:
    day = np.zeros(24)
    day[start : start + length] = 1.0
    day[start] = 0.5
    day[11:13] *= lunch
    return _week(day, (1.0, 1.05, 1.0, 1.0, 0.9, sat, 0.0)) * rng.uniform(0.85, 1.15, 168)


def _merchant_profile(rng: np.random.Generator, cat: int) -> np.ndarray:
    name = MERCHANT_CATEGORIES[cat]
    if name in ("online_retail", "digital_goods", "travel", "atm"):
        return _week(CONSUMER, (0.95, 0.95, 1.0, 1.0, 1.05, 1.1, 1.0))
    open_h, close_h = {
        "restaurant": (9, 22),
        "grocery": (6, 20),
        "fuel": (5, 21),
        "pharmacy": (7, 18),
        "entertainment": (12, 23),
    }.get(name, (8, 19))
    open_h += int(rng.integers(-1, 2))
    day = np.where((np.arange(24) >= open_h) & (np.arange(24) < close_h), CONSUMER, 0.0)
    weekend = {"restaurant": 1.35, "entertainment": 1.5, "grocery": 1.15, "pharmacy": 0.4}.get(name, 0.9)
    return _week(day, (0.9, 0.95, 1.0, 1.0, 1.15, weekend, weekend * 0.6))


def _ips_for(rng: np.random.Generator, kind: str, shared: dict[str, list[str]], key: str) -> list[str]:
    if kind in ("service", "batch"):
        return [f"10.{rng.integers(10, 40)}.{rng.integers(0, 256)}.{rng.integers(2, 250)}" for _ in range(3)]
    if kind in ("branch", "analyst"):
        office = shared.setdefault(key, random_ips(rng, 1))
        return office + shared["vpn"][: int(rng.integers(1, 3))]
    return random_ips(rng, int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15])))


def build_population(system_id: str, rng: np.random.Generator) -> Population:
    """Create the principals of one system with heavy-tailed volumes, working hours and source addresses."""
    names: list[str] = []
    kinds: list[str] = []
    weights: list[float] = []
    profiles: list[np.ndarray] = []
    cats: list[np.ndarray] = []
    shared: dict[str, list[str]] = {"vpn": [f"193.30.115.{i}" for i in rng.choice(np.arange(2, 250), 4)]}
    k = len(MERCHANT_CATEGORIES)

    def add(name: str, kind: str, weight: float, profile: np.ndarray, cat: np.ndarray | None = None) -> None:
        names.append(name)
        kinds.append(kind)
        weights.append(weight)
        profiles.append(profile)
        cats.append(GATEWAY_MIX if cat is None else cat)

    consumer = _week(CONSUMER, (1.0, 1.0, 1.0, 1.0, 1.0, 0.85, 0.8))
    if system_id == LOAN:
        add("svc-loan-web", "service", 0.25, consumer)
        add(
            "svc-loan-mobile",
            "service",
            0.12,
            _week(np.roll(CONSUMER, 1), (1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.05)),
        )
        batch = np.zeros(24)
        batch[1:3] = 1.0
        add("svc-loan-rescore", "batch", 0.05, _week(batch, (1, 1, 1, 1, 1, 0, 0)))
        bw = rng.lognormal(0, 1.0, 22)
        for i, w in enumerate(bw / bw.sum() * 0.25):
            day = np.interp(np.arange(24), [6, 8, 12, 17, 20, 23], [0, 1, 1.1, 0.9, 0.25, 0.05])
            add(
                f"broker-{_WORDS[i % len(_WORDS)]}-{rng.integers(16**3, 16**4):04x}",
                "broker",
                w,
                _week(day, (1, 1, 1, 1, 0.9, rng.uniform(0.1, 0.5), rng.uniform(0, 0.1))),
            )
        uw = rng.lognormal(0, 0.8, 140)
        for i, w in enumerate(uw / uw.sum() * 0.33):
            city = _CITIES[i % len(_CITIES)]
            first = _FIRST[int(rng.integers(len(_FIRST)))]
            add(
                f"branch-{city}-{first}{i // len(_CITIES) + 1:02d}",
                "branch",
                w,
                _office(
                    rng, int(rng.integers(6, 9)), int(rng.integers(8, 11)), 0.6 if rng.random() < 0.3 else 0.0
                ),
            )
    else:
        gw = {"svc-pos-gateway-eu": 0.30, "svc-pos-gateway-intl": 0.08, "svc-ecom-gateway": 0.18}
        for name, w in gw.items():
            mix = GATEWAY_MIX.copy()
            if "ecom" in name:
                mix = np.where(
                    np.isin(MERCHANT_CATEGORIES, ["online_retail", "digital_goods", "travel"]), 1.0, 0.02
                )
            if "intl" in name:
                mix = mix * np.where(np.array(MERCHANT_CATEGORIES) == "travel", 6.0, 1.0)
            add(name, "service", w, _week(CONSUMER, (0.95, 0.95, 1.0, 1.0, 1.1, 1.15, 0.95)), mix / mix.sum())
        batch = np.zeros(24)
        batch[0:2] = 1.0
        add("svc-card-rescore", "batch", 0.02, _week(batch, (1,) * 7))
        mw = rng.pareto(1.3, 170) + 0.05
        mcat = rng.choice(k, 170, p=GATEWAY_MIX)
        ids = rng.choice(np.arange(10000, 99999), 170, replace=False)
        for i, (w, c) in enumerate(zip(mw / mw.sum() * 0.41, mcat, strict=True)):
            mix = np.full(k, 0.02 / (k - 1))
            mix[c] = 0.98
            add(f"merchant-{ids[i]}", "merchant", w, _merchant_profile(rng, c), mix)
        for i in range(8):
            add(
                f"analyst-{_FIRST[(i * 5) % len(_FIRST)]}",
                "analyst",
                0.0015,
                _office(rng, int(rng.integers(7, 9)), 9, 0.0),
                GATEWAY_MIX,
            )
    ips = np.empty((len(names), 3), dtype=object)
    cum = np.zeros((len(names), 3))
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        own = _ips_for(rng, kind, shared, name.split("-")[1] if kind == "branch" else kind)
        ips[i, : len(own)] = own
        ips[i, len(own) :] = own[-1]
        p = np.sort(rng.dirichlet(np.ones(len(own)) * 2.0))[::-1]
        cum[i, : len(own)] = np.cumsum(p)
        cum[i, len(own) :] = 1.0
    err = rng.lognormal(0, 0.5, len(names))
    err[rng.random(len(names)) < 0.03] *= 8  # a few flaky clients
    return Population(
        system_id,
        names,
        kinds,
        np.array(weights),
        np.array(profiles),
        ips,
        cum,
        rng.lognormal(0, 0.2, len(names)),
        err,
        np.array(cats) if system_id == FRAUD else None,
    )


def hour_of_week(ts_us: np.ndarray) -> np.ndarray:
    """Hour of week (Monday 00 UTC = 0) for epoch-microsecond timestamps."""
    hours = ts_us // HOUR_US
    return (((hours // 24) + 3) % 7) * 24 + hours % 24


def baseline(pop: Population, rng: np.random.Generator, start_us: int, end_us: int, total: float) -> dict:
    """Vectorised baseline decisions: Poisson counts per principal-hour, uniform times within the hour."""
    h0 = start_us // HOUR_US
    n_hours = int(-(-end_us // HOUR_US) - h0)
    hours_us = (h0 + np.arange(n_hours)) * HOUR_US
    how = hour_of_week(hours_us)
    n_days = n_hours // 24 + 1
    day_noise = rng.lognormal(0, 0.15, (len(pop.names), n_days))
    away = (
        rng.random((len(pop.names), n_days)) < np.where(np.array(pop.kinds) == "branch", 0.06, 0.0)[:, None]
    )
    day_noise[away] = 0.0
    lam = pop.weight[:, None] * pop.profile[:, how] * np.repeat(day_noise, 24, axis=1)[:, :n_hours]
    lam *= total / lam.sum()
    counts = rng.poisson(lam)
    p_idx, h_idx = np.nonzero(counts)
    reps = counts[p_idx, h_idx]
    principal = np.repeat(p_idx, reps)
    ts = np.repeat(hours_us[h_idx], reps) + rng.integers(0, HOUR_US, reps.sum())
    keep = (ts >= start_us) & (ts < end_us)
    principal, ts = principal[keep], ts[keep]
    return make_batch(pop, rng, ts, principal)


def make_batch(
    pop: Population,
    rng: np.random.Generator,
    ts: np.ndarray,
    principal: np.ndarray,
    features: dict | None = None,
    incident: int = -1,
) -> dict:
    """Rows for known principals: addresses picked per principal, features sampled unless given."""
    n = len(ts)
    slot = (rng.random(n)[:, None] > pop.ip_cum[principal]).sum(axis=1).clip(0, 2)
    ip = pop.ips[principal, slot]
    if features is None:
        if pop.system_id == FRAUD:
            hour = ((ts // HOUR_US) + 1) % 24
            features = sample_features(FRAUD, rng, n, category_probs=pop.cat_probs[principal], hour=hour)
        else:
            features = sample_features(LOAN, rng, n)
    return {
        "ts": ts,
        "principal": np.array(pop.names, dtype=object)[principal],
        "source_ip": ip,
        "lat_factor": pop.lat_factor[principal],
        "err_factor": pop.err_factor[principal],
        "extra_error": np.zeros(n),
        "incident": np.full(n, incident, dtype=np.int64),
        "features": features,
    }


def external_batch(
    ts: np.ndarray,
    principal: np.ndarray,
    ips: np.ndarray,
    features: dict,
    incident: int,
    lat_factor: float = 1.0,
    err_factor: float = 1.0,
    extra_error: float = 0.0,
) -> dict:
    """Rows from principals outside the baseline population (attackers, new keys)."""
    n = len(ts)
    return {
        "ts": np.asarray(ts, dtype=np.int64),
        "principal": np.asarray(principal, dtype=object),
        "source_ip": np.asarray(ips, dtype=object),
        "lat_factor": np.full(n, lat_factor),
        "err_factor": np.full(n, err_factor),
        "extra_error": np.full(n, extra_error),
        "incident": np.full(n, incident, dtype=np.int64),
        "features": features,
    }


def concat_batches(batches: list[dict], feature_names: tuple[str, ...]) -> dict:
    """Concatenate row batches and sort them by time (stable)."""
    out = {k: np.concatenate([b[k] for b in batches]) for k in batches[0] if k != "features"}
    out["features"] = {
        f: np.concatenate([np.asarray(b["features"][f]) for b in batches]) for f in feature_names
    }
    order = np.argsort(out["ts"], kind="stable")
    out = {k: v[order] for k, v in out.items() if k != "features"} | {
        "features": {f: v[order] for f, v in out["features"].items()}
    }
    return out


def apply_load(rows: dict, system_id: str, rng: np.random.Generator, mean_rate: float) -> None:
    """Latency and errors from per-minute load: saturation makes both rise (a flood shows in the metrics)."""
    ts = rows["ts"]
    n = len(ts)
    minute = ts // MINUTE_US
    _, inv, cnt = np.unique(minute, return_inverse=True, return_counts=True)
    capacity = 4.0 * mean_rate + 4.0
    util = cnt[inv] / capacity
    mult = 1.0 + 0.35 * util + 6.0 * np.clip(util - 0.75, 0, None) ** 2
    base = CONFIGS[system_id].latency_median_ms
    latency = base * rows["lat_factor"] * mult * rng.lognormal(0.0, 0.35, n) + rng.exponential(1.5, n)
    p_err = 0.0015 * rows["err_factor"] + 0.3 * np.clip(util - 0.9, 0, 1.5) + rows["extra_error"]
    error = rng.random(n) < np.clip(p_err, 0, 0.9)
    timeout = error & (rng.random(n) < 0.4)
    latency[timeout] = rng.uniform(2000, 5000, int(timeout.sum()))
    latency[error & ~timeout] = rng.uniform(2, 15, int((error & ~timeout).sum()))
    rows["latency_ms"] = np.round(latency, 1)
    rows["status"] = np.where(error, "error", "ok").astype(object)
