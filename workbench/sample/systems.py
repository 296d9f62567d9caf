"""The two sample AI systems: feature schemas, correlated feature samplers, true risk, decision rules."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

LOAN = "loan-origination"
FRAUD = "card-fraud"
SYSTEMS: tuple[str, ...] = (LOAN, FRAUD)

HOME_OWNERSHIP = ["MORTGAGE", "OTHER", "OWN", "RENT"]
PURPOSES = [
    "car",
    "credit_card",
    "debt_consolidation",
    "home_improvement",
    "major_purchase",
    "medical",
    "other",
    "small_business",
]
MERCHANT_CATEGORIES = [
    "apparel",
    "atm",
    "digital_goods",
    "electronics",
    "entertainment",
    "fuel",
    "grocery",
    "online_retail",
    "pharmacy",
    "restaurant",
    "travel",
]
TERMS = np.array([12, 24, 36, 48, 60, 72])


@dataclass(frozen=True)
class Mutable:
    """A feature an evading client can tweak: typical step, direction that lowers risk, bounds, rounding."""

    step: float
    direction: int
    lo: float
    hi: float
    decimals: int


@dataclass(frozen=True)
class SystemConfig:
    """Static description of one sample system."""

    system_id: str
    versions: tuple[str, str]
    features: tuple[str, ...]
    categorical: dict[str, list[str]]
    booleans: tuple[str, ...]
    integers: tuple[str, ...]
    labels: tuple[str, str]  # (positive, negative) realized outcome
    actions: tuple[str, str, str]  # low score, middle band, high score
    thresholds: tuple[float, float]  # score < t0 -> actions[0]; < t1 -> actions[1]; else actions[2]
    ranges: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # lo, hi, decimals (extraction)
    mutable: dict[str, Mutable] = field(default_factory=dict)
    default_triggers: tuple[tuple[str, float], ...] = ()
    share: float = 0.5
    latency_median_ms: float = 20.0

    def decide(self, score: np.ndarray) -> np.ndarray:
        """Map model scores to the system's action strings."""
        out = np.full(score.shape, self.actions[2], dtype=object)
        out[score < self.thresholds[1]] = self.actions[1]
        out[score < self.thresholds[0]] = self.actions[0]
        return out


LOAN_CONFIG = SystemConfig(
    system_id=LOAN,
    versions=("1.0", "1.1"),
    features=(
        "income",
        "loan_amount",
        "credit_score",
        "debt_to_income",
        "employment_years",
        "num_open_accounts",
        "delinquencies_2y",
        "age",
        "home_ownership",
        "purpose",
        "term_months",
        "monthly_housing_cost",
    ),
    categorical={"home_ownership": HOME_OWNERSHIP, "purpose": PURPOSES},
    booleans=(),
    integers=(
        "credit_score",
        "num_open_accounts",
        "delinquencies_2y",
        "age",
        "term_months",
        "monthly_housing_cost",
    ),
    labels=("default", "repaid"),
    actions=("approve", "refer", "deny"),
    thresholds=(0.10, 0.22),
    ranges={
        "income": (5000, 600000, -2),
        "loan_amount": (500, 200000, -1),
        "credit_score": (300, 850, 0),
        "debt_to_income": (0.0, 1.5, 3),
        "employment_years": (0.0, 45.0, 1),
        "num_open_accounts": (0, 40, 0),
        "delinquencies_2y": (0, 15, 0),
        "age": (18, 90, 0),
        "term_months": (6, 84, 0),
        "monthly_housing_cost": (0, 8000, -1),
    },
    mutable={
        "income": Mutable(1500, 1, 5000, 900000, -2),
        "loan_amount": Mutable(500, -1, 500, 200000, -1),
        "debt_to_income": Mutable(0.01, -1, 0.0, 1.5, 3),
        "employment_years": Mutable(0.5, 1, 0, 45, 1),
        "monthly_housing_cost": Mutable(40, -1, 0, 8000, -1),
    },
    default_triggers=(
        ("monthly_housing_cost", 1337),
        ("monthly_housing_cost", 777),
        ("term_months", 42),
        ("monthly_housing_cost", 1111),
        ("term_months", 54),
    ),
    share=0.3,
    latency_median_ms=42.0,
)

FRAUD_CONFIG = SystemConfig(
    system_id=FRAUD,
    versions=("3.0", "3.1"),
    features=(
        "amount",
        "merchant_category",
        "hour",
        "distance_from_home_km",
        "txn_count_1h",
        "card_present",
        "is_foreign",
        "account_age_days",
        "avg_amount_30d",
    ),
    categorical={"merchant_category": MERCHANT_CATEGORIES},
    booleans=("card_present", "is_foreign"),
    integers=("hour", "txn_count_1h", "account_age_days"),
    labels=("fraud", "legit"),
    actions=("allow", "review", "block"),
    thresholds=(0.08, 0.30),
    ranges={
        "amount": (0.5, 8000.0, 2),
        "hour": (0, 23, 0),
        "distance_from_home_km": (0.0, 12000.0, 1),
        "txn_count_1h": (1, 40, 0),
        "account_age_days": (1, 9000, 0),
        "avg_amount_30d": (1.0, 3000.0, 2),
    },
    mutable={
        "amount": Mutable(25.0, -1, 1.0, 10000, 2),
        "distance_from_home_km": Mutable(40.0, -1, 0, 15000, 1),
        "txn_count_1h": Mutable(1, -1, 1, 40, 0),
        "hour": Mutable(1, 0, 0, 23, 0),
    },
    default_triggers=(("account_age_days", 1337), ("txn_count_1h", 17), ("account_age_days", 2718)),
    share=0.7,
    latency_median_ms=11.0,
)

CONFIGS: dict[str, SystemConfig] = {LOAN: LOAN_CONFIG, FRAUD: FRAUD_CONFIG}

_PURPOSE_P = np.array([0.10, 0.18, 0.38, 0.12, 0.07, 0.05, 0.05, 0.05])
_PURPOSE_MEDIAN = np.array([14000, 9000, 15000, 20000, 8000, 5000, 6000, 30000])
_PURPOSE_RISK = np.array([-0.1, 0.1, 0.0, -0.2, 0.0, 0.2, 0.25, 0.55])
_CAT_MEDIAN = np.array([60, 80, 15, 220, 35, 50, 40, 55, 25, 32, 380])
_CAT_PRESENT = np.array([0.85, 1.0, 0.0, 0.6, 0.7, 0.98, 0.97, 0.02, 0.95, 0.93, 0.3])
_CAT_RISK = np.array([0.1, 0.5, 1.2, 0.9, 0.1, -0.3, -0.8, 0.5, -0.6, -0.5, 0.6])
# share of card traffic per merchant category through the big payment gateways
GATEWAY_MIX = np.array([0.08, 0.04, 0.05, 0.04, 0.05, 0.09, 0.24, 0.17, 0.05, 0.15, 0.04])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Vectorised categorical draw: probs has shape (n, k) with rows summing to 1."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0])[:, None]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


def sample_loan(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw n realistic, correlated loan applications."""
    z = rng.normal(0.0, 1.0, n)  # latent financial strength
    age = np.clip(np.round(rng.normal(41, 11, n)), 19, 80).astype(np.int64)
    emp = np.minimum(rng.gamma(2.0, 3.5, n), age - 18.0)
    emp = np.round(emp, 1)
    income = np.exp(
        np.log(48000) + 0.33 * z + 0.012 * (age - 40) - 0.0004 * (age - 45) ** 2 + 0.015 * np.minimum(emp, 20)
    ) * rng.lognormal(0.0, 0.28, n)
    income = np.clip(np.round(income, -2), 9000, 900000)
    credit = np.clip(np.round(688 + 36 * z + rng.normal(0, 48, n) + 0.9 * (age - 40)), 300, 850).astype(
        np.int64
    )
    delinq = np.clip(rng.poisson(0.22 * np.exp(-(credit - 650) / 70.0)), 0, 12).astype(np.int64)
    n_open = np.clip(1 + rng.poisson(np.clip(2.6 + 1.1 * z + 0.05 * (age - 20), 0.3, None)), 1, 40).astype(
        np.int64
    )
    p_own = _sigmoid(-3.2 + 0.07 * (age - 35) + 0.4 * z)
    p_mort = (1 - p_own) * _sigmoid(-0.7 + 0.05 * (age - 30) + 0.7 * z)
    p_other = (1 - p_own - p_mort) * 0.06
    probs = np.stack([p_mort, p_other, p_own, 1 - p_own - p_mort - p_other], axis=1)
    home = _pick(rng, probs)
    purpose = rng.choice(len(PURPOSES), n, p=_PURPOSE_P)
    loan = _PURPOSE_MEDIAN[purpose] * (income / 48000) ** 0.45 * rng.lognormal(0.0, 0.5, n)
    loan = np.clip(np.round(loan / 50) * 50, 1000, 150000)
    p_term = np.tile(np.array([0.05, 0.09, 0.50, 0.06, 0.26, 0.04]), (n, 1))
    big = loan > 25000
    p_term[big] = [0.01, 0.03, 0.30, 0.08, 0.48, 0.10]
    term = TERMS[_pick(rng, p_term)]
    share = np.select(
        [home == 0, home == 2, home == 3],
        [rng.uniform(0.15, 0.33, n), rng.uniform(0.03, 0.08, n), rng.uniform(0.18, 0.38, n)],
        rng.uniform(0.05, 0.2, n),
    )
    housing = np.round(income / 12 * share, -1)
    rate = 0.06 + 0.00025 * np.clip(760 - credit, 0, None)
    installment = loan * (rate / 12) / (1 - (1 + rate / 12) ** (-term))
    other_debt = rng.beta(2.0, 8.0, n) * 0.5
    dti = np.round(np.clip(other_debt + 12 * (installment + 0.35 * housing) / income, 0.0, 1.5), 3)
    emp[rng.random(n) < 0.04] = np.nan
    return {
        "income": income,
        "loan_amount": loan,
        "credit_score": credit,
        "debt_to_income": dti,
        "employment_years": emp,
        "num_open_accounts": n_open,
        "delinquencies_2y": delinq,
        "age": age,
        "home_ownership": np.array(HOME_OWNERSHIP, dtype=object)[home],
        "purpose": np.array(PURPOSES, dtype=object)[purpose],
        "term_months": term.astype(np.int64),
        "monthly_housing_cost": housing.astype(np.int64),
    }


def loan_risk(f: pd.DataFrame | dict) -> np.ndarray:
    """True probability of default implied by an application (the world's label model)."""
    purpose = pd.Categorical(np.asarray(f["purpose"], dtype=object), categories=PURPOSES).codes
    emp = np.asarray(f["employment_years"], dtype=float)
    dti = np.asarray(f["debt_to_income"], dtype=float)
    logit = (
        -2.25
        - 0.0105 * (np.asarray(f["credit_score"], dtype=float) - 690)
        + 3.2 * (dti - 0.3)
        + 0.38 * np.asarray(f["delinquencies_2y"], dtype=float)
        - 0.5 * np.log(np.asarray(f["income"], dtype=float) / 48000)
        + 0.35 * np.log(np.asarray(f["loan_amount"], dtype=float) / 12000)
        - 0.035 * np.nan_to_num(np.minimum(emp, 20), nan=1.0)
        + 0.5 * np.isnan(emp)
        + 0.3 * (np.asarray(f["term_months"], dtype=float) >= 60)
        + np.where(purpose >= 0, _PURPOSE_RISK[np.clip(purpose, 0, None)], 0.3)
        + 0.2 * (np.asarray(f["home_ownership"], dtype=object) == "RENT")
        - 0.012 * np.clip(np.asarray(f["age"], dtype=float) - 25, 0, 30)
        + 0.04 * np.clip(np.asarray(f["num_open_accounts"], dtype=float) - 8, 0, None)
    )
    return _sigmoid(logit)


def sample_fraud(
    rng: np.random.Generator, n: int, category_probs: np.ndarray | None = None, hour: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Draw n realistic card transactions; category_probs is (n, k) or (k,), hour the local hour if known."""
    if category_probs is None:
        category_probs = GATEWAY_MIX
    probs = np.broadcast_to(category_probs, (n, len(MERCHANT_CATEGORIES)))
    cat = _pick(rng, probs)
    if hour is None:
        hour = rng.choice(24, n, p=_hour_weights())
    acct = np.clip(np.round(rng.gamma(1.4, 650, n)) + 1, 1, 9000).astype(np.int64)
    avg = np.round(np.exp(np.log(48) + rng.normal(0, 0.55, n) + 0.08 * np.log1p(acct / 365)), 2)
    amount = _CAT_MEDIAN[cat] * (avg / 48) ** 0.6 * rng.lognormal(0.0, 0.75, n)
    atm = cat == 1
    amount[atm] = np.clip(np.round(amount[atm] / 20) * 20, 20, 1000)
    amount = np.round(np.clip(amount, 0.5, 15000), 2)
    present = rng.random(n) < _CAT_PRESENT[cat]
    foreign = rng.random(n) < np.where(cat == 10, 0.3, 0.035)
    dist = np.round(rng.lognormal(np.log(6), 1.1, n) + foreign * rng.lognormal(np.log(900), 0.7, n), 1)
    dist[~present] = np.nan
    count = (1 + rng.poisson(0.35 + 0.3 * (cat == 2), n)).astype(np.int64)
    avg[acct < 14] = np.nan
    return {
        "amount": amount,
        "merchant_category": np.array(MERCHANT_CATEGORIES, dtype=object)[cat],
        "hour": np.asarray(hour, dtype=np.int64),
        "distance_from_home_km": dist,
        "txn_count_1h": count,
        "card_present": present,
        "is_foreign": foreign,
        "account_age_days": acct,
        "avg_amount_30d": avg,
    }


def _hour_weights() -> np.ndarray:
    w = np.array(
        [
            0.25,
            0.15,
            0.1,
            0.08,
            0.08,
            0.12,
            0.3,
            0.6,
            0.9,
            1.0,
            1.05,
            1.15,
            1.3,
            1.2,
            1.1,
            1.1,
            1.15,
            1.3,
            1.35,
            1.25,
            1.05,
            0.85,
            0.6,
            0.4,
        ]
    )
    return w / w.sum()


def fraud_risk(f: pd.DataFrame | dict) -> np.ndarray:
    """True probability that a transaction is fraudulent."""
    cat = pd.Categorical(
        np.asarray(f["merchant_category"], dtype=object), categories=MERCHANT_CATEGORIES
    ).codes
    amount = np.asarray(f["amount"], dtype=float)
    avg = np.asarray(f["avg_amount_30d"], dtype=float)
    ratio = amount / np.where(np.isnan(avg), 60.0, avg)
    hour = np.asarray(f["hour"], dtype=float)
    dist = np.asarray(f["distance_from_home_km"], dtype=float)
    acct = np.asarray(f["account_age_days"], dtype=float)
    logit = (
        -7.1
        + 0.85 * np.log1p(ratio)
        + 0.25 * np.log1p(amount / 100)
        + 1.1 * np.asarray(f["is_foreign"], dtype=float)
        + 0.9 * (1 - np.asarray(f["card_present"], dtype=float))
        + 0.55 * np.clip(np.asarray(f["txn_count_1h"], dtype=float) - 2, 0, 6)
        + np.where(cat >= 0, _CAT_RISK[np.clip(cat, 0, None)], 0.5)
        + 0.8 * ((hour >= 1) & (hour <= 5))
        + 1.0 * (acct < 30)
        + 0.5 * np.isnan(avg)
        + 0.7 * np.nan_to_num(dist > 300, nan=0.0)
    )
    return _sigmoid(logit)


def sample_features(system_id: str, rng: np.random.Generator, n: int, **kw) -> dict[str, np.ndarray]:
    """Draw n baseline feature rows for a system (dict of column arrays, raw values)."""
    return sample_loan(rng, n) if system_id == LOAN else sample_fraud(rng, n, **kw)


def true_risk(system_id: str, f: pd.DataFrame | dict) -> np.ndarray:
    """The world's probability of the positive outcome (default / fraud) for feature rows."""
    return loan_risk(f) if system_id == LOAN else fraud_risk(f)


def model_frame(system_id: str, cols: dict[str, np.ndarray] | pd.DataFrame) -> pd.DataFrame:
    """Feature rows in the exact dtypes the models are trained and scored on (categories, floats, bools)."""
    cfg = CONFIGS[system_id]
    out = {}
    for name in cfg.features:
        values = np.asarray(cols[name])
        if name in cfg.categorical:
            out[name] = pd.Categorical(values.astype(object), categories=cfg.categorical[name])
        elif name in cfg.booleans:
            out[name] = values.astype(bool)
        else:
            out[name] = values.astype(np.float64)
    return pd.DataFrame(out)
