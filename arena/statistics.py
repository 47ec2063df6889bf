"""Statistics over episodes and runs: per-episode summaries, the interquartile mean (IQM)
with a stratified bootstrap confidence interval (Agarwal et al. 2021, "Deep RL at the
edge of the statistical precipice"), and Bradley-Terry ratings from games.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

@dataclass
class Summary:
    episodes: int
    mean: float | None
    std: float | None
    iqm: float | None
    returns: list[float] = field(default_factory=list)
    note: str = ""


def summarise(returns: list[float]) -> Summary:
    """Mean, std and interquartile mean of per-episode returns; NaNs are reported, not averaged."""
    x = np.asarray(returns, dtype=float)
    finite = x[np.isfinite(x)]
    note = f"{len(x) - len(finite)} non-finite return(s) excluded" if len(finite) < len(x) else ""
    if len(finite) == 0:
        return Summary(len(x), None, None, None, [float(v) for v in x], note or "no episodes")
    q = np.sort(finite)
    lo, hi = int(math.floor(0.25 * len(q))), int(math.ceil(0.75 * len(q)))
    iqm = float(q[lo:hi].mean()) if hi > lo else float(q.mean())
    return Summary(len(x), float(finite.mean()), float(finite.std()), iqm, [float(v) for v in x], note)

# --------------------------------------------------------------------------- ratings from games

ELO_BASE, ELO_SCALE = 1500.0, 400.0 / math.log(10.0)  # Elo: a 400-point gap is 10:1 odds


def bradley_terry(games: list[tuple[str, str, float, float]], prior: float = 0.1) -> dict[str, float]:
    """Ratings from games `(a, b, wins of a, games played)` under the Bradley-Terry model

        P(a beats b) = 1 / (1 + exp(theta_b - theta_a)),

    fitted by maximum likelihood with a Gaussian prior theta ~ N(0, 1 / prior), which keeps
    a player who never wins (or never loses) finite. Wins may be fractional (a tie is half
    a win). Returned on the Elo scale, 1500 + 400 theta / ln 10, so gaps read as odds."""
    from scipy.optimize import minimize
    from scipy.special import expit

    if not games:
        return {}
    players = sorted({p for a, b, _, _ in games for p in (a, b)})
    index = {p: i for i, p in enumerate(players)}
    A = np.array([index[g[0]] for g in games])
    B = np.array([index[g[1]] for g in games])
    W = np.array([float(g[2]) for g in games])
    N = np.array([float(g[3]) for g in games])
    if np.any(N <= 0) or np.any(W < 0) or np.any(W > N):
        raise ValueError("each game needs games played > 0 and 0 <= wins <= games played")

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[A] - theta[B]
        # -log L = -sum [w log sigma(d) + (n - w) log sigma(-d)], plus the prior's prior/2 |theta|^2
        nll = float((W * np.logaddexp(0.0, -d) + (N - W) * np.logaddexp(0.0, d)).sum() + 0.5 * prior * theta @ theta)
        g = N * expit(d) - W  # d(-log L)/d(d)
        grad = np.bincount(A, g, len(players)) - np.bincount(B, g, len(players)) + prior * theta
        return nll, grad

    theta = minimize(loss, np.zeros(len(players)), jac=True, method="L-BFGS-B", options={"gtol": 1e-10}).x
    return {p: float(ELO_BASE + ELO_SCALE * theta[index[p]]) for p in players}

# --------------------------------------------------------------------------- aggregates over runs

CONFIDENCE = 0.95
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def iqm(values: Any) -> float:
    """Interquartile mean: the mean of the middle 50% (SciPy's trim_mean, 25% cut at each end)."""
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(values, dtype=float).ravel(), 0.25))


@dataclass(frozen=True)
class Aggregate:
    """One figure over training runs: mean, median, IQM and the IQM's 95% confidence interval
    (`ci` is (nan, nan) when there is a single run: one run gives no interval)."""

    values: tuple[float, ...]
    mean: float
    median: float
    iqm: float
    ci: tuple[float, float]

    def __str__(self) -> str:
        lo, hi = self.ci
        interval = f" [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else " (one run: no interval)"
        return f"IQM {self.iqm:.3f}{interval}, mean {self.mean:.3f}, over {len(self.values)} runs"

    def clearly_above(self, other: "Aggregate") -> bool:
        """Whether this figure is clearly ahead of `other`: its interval lies entirely above the
        other's (overlapping intervals cannot be told apart: tied). Where either is a single
        run (no interval), the higher IQM is ahead."""
        if math.isfinite(self.ci[0]) and math.isfinite(other.ci[0]):
            return self.ci[0] > other.ci[1] + 1e-12
        return self.iqm > other.iqm


def aggregate(strata: Sequence[Sequence[float]] | Sequence[float], confidence: float = CONFIDENCE,
              resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Aggregate:
    """Aggregate scores over runs. `strata` is one list of per-run values, or one list per
    task; the bootstrap resamples runs within each task (stratified), as rliable does, with
    SciPy's percentile bootstrap of the IQM. Non-finite values are refused, not averaged."""
    from scipy.stats import bootstrap, trim_mean

    groups = [list(map(float, g)) for g in strata] if strata and isinstance(strata[0], Sequence) else [  # type: ignore[arg-type]
        list(map(float, strata))]  # type: ignore[arg-type]
    flat = np.array([v for g in groups for v in g])
    if flat.size == 0 or not np.all(np.isfinite(flat)):
        raise ValueError(f"aggregate needs finite values, got {flat.tolist()[:5]}")
    resampled = [np.array(g) for g in groups if len(g) >= 2]
    fixed = np.array([v for g in groups if len(g) < 2 for v in g])  # a task with one run cannot be resampled

    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        shape = samples[0].shape[:-1] if samples[0].ndim > 1 else ()
        constant = np.broadcast_to(fixed, (*shape, fixed.size))
        return trim_mean(np.concatenate([*samples, constant], axis=-1), 0.25, axis=-1)

    ci = (math.nan, math.nan)
    if resampled:
        res = bootstrap(resampled, statistic, n_resamples=resamples, confidence_level=confidence,
                        method="percentile", vectorized=True, rng=np.random.default_rng(seed))
        lo, hi = sorted((float(res.confidence_interval.low), float(res.confidence_interval.high)))
        lo_data, hi_data = float(flat.min()), float(flat.max())  # no rounding past the data (constant runs)
        ci = (min(max(lo, lo_data), hi_data), max(min(hi, hi_data), lo_data))
    return Aggregate(tuple(flat.tolist()), float(flat.mean()), float(np.median(flat)), iqm(flat), ci)


__all__ = ["Aggregate", "BOOTSTRAP_SEED", "CONFIDENCE", "ELO_BASE", "ELO_SCALE", "RESAMPLES", "Summary", "aggregate",
           "bradley_terry", "iqm", "summarise"]
