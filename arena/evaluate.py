"""The evaluation protocol: fixed seeds, sampled returns, and exact scores where a model exists.

For grids the normalised score is computed exactly, not sampled:

    score = (J(pi) - J(random)) / (J* - J(random)),   J(pi) = sum_s start(s) V_pi(s)

with V_pi from DP policy evaluation at EVAL_GAMMA and J* from value iteration, so 1.0
is optimal and 0.0 is no better than random. Beside it stands the exact expected
undiscounted return over the episode's step limit, which is what the sampled mean of
the recorded episodes estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents import dp
from agents.training import Callback

EVAL_GAMMA = 0.99
HORIZON_WORK_LIMIT = 50_000_000  # states x steps for the exact finite-horizon return


@dataclass
class ExactScore:
    score: float  # normalised: 1 = optimal, 0 = random
    J: float  # discounted value of the start distribution at EVAL_GAMMA
    J_optimal: float
    J_random: float
    expected_return: float | None  # undiscounted, over max_steps; None if too costly to compute


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


def policy_of(agent: Any, env: Any) -> np.ndarray:
    """(S, A) action probabilities of the agent's greedy play on a tabular env."""
    mdp = env.unwrapped.mdp
    if hasattr(agent, "policy_table"):
        try:
            return np.asarray(agent.policy_table())
        except TypeError:
            return np.asarray(agent.policy_table(mdp.n_states))
    pi = np.zeros((mdp.n_states, mdp.n_actions))
    for s in range(mdp.n_states):
        action, _ = agent.act(env.unwrapped.observation_of(s), None, greedy=True)
        pi[s, int(action)] = 1.0
    return pi


def exact_score(agent: Any, env: Any) -> ExactScore | None:
    """The exact normalised score on an env with a model (env.unwrapped.mdp); None otherwise."""
    mdp = getattr(env.unwrapped, "mdp", None)
    if mdp is None or getattr(agent, "recurrent", False):
        return None  # no model, or a policy that depends on history, not on the state alone
    pi = policy_of(agent, env)
    uniform = np.full_like(pi, 1.0 / pi.shape[1])
    J = float(mdp.start @ dp.policy_evaluation(mdp, pi, EVAL_GAMMA))
    J_random = float(mdp.start @ dp.policy_evaluation(mdp, uniform, EVAL_GAMMA))
    # J* as the exact value of value iteration's greedy policy: optimal, and free of VI's tolerance
    J_optimal = float(mdp.start @ dp.policy_evaluation(mdp, dp.value_iteration(mdp, EVAL_GAMMA).policy, EVAL_GAMMA))
    span = J_optimal - J_random
    score = (J - J_random) / span if abs(span) > 1e-12 else (1.0 if J >= J_optimal - 1e-12 else 0.0)
    return ExactScore(score, J, J_optimal, J_random, expected_return(mdp, pi, env.unwrapped.max_steps))


def expected_return(mdp: Any, pi: np.ndarray, horizon: int) -> float | None:
    """E[sum of rewards over at most `horizon` steps] from the start distribution (gamma = 1)."""
    if mdp.n_states * horizon > HORIZON_WORK_LIMIT:
        return None
    return float(mdp.start @ dp.finite_horizon_evaluation(mdp, pi, horizon))


def image_score(env: Any, episodes: list[Any]) -> Any:
    """For the image env: the generator's scores (arena/image_score.py) from the images it
    made in the evaluation episodes; None for other envs."""
    u = env.unwrapped
    if not hasattr(u, "image_shape") or not episodes:
        return None
    from arena.image_score import score_images

    images = np.concatenate([e.actions for e in episodes if e.actions is not None and len(e.actions)])
    judge = float(np.mean([e.episode_return / max(e.length, 1) for e in episodes]))
    return score_images(images, u.dataset, u.size, judge=judge)


def image_metrics(score: Any) -> dict[str, Any]:
    """The figures a leaderboard row keeps for a generator (FID, IS, coverage, ...)."""
    keep = ("fid", "fid_real", "fid_noise", "inception_score", "coverage", "classes_covered", "n_classes",
            "pairwise_distance", "mode_collapse", "judge", "images")
    return {k: v for k, v in score.as_dict().items() if k in keep}


class ExactEvaluation(Callback):
    """Evaluation during training, as a callback of the training loop: the exact J of the
    learner's current greedy policy (DP policy evaluation) against the optimum J*.

    J is computed at the learner's gamma when it is below 1, else at EVAL_GAMMA: with
    gamma = 1 a greedy policy that never reaches a terminal state has J = -inf, and
    evaluating it over the step limit instead can cost far more than learning (SARSA on
    `grid:windy max_steps=100000`: 17.9 s of evaluation against 0.1 s of learning). The
    curve's axis says which gamma was used. `evaluations` points are taken per run.
    """

    def __init__(self, mdp: Any, evaluations: int = 50) -> None:
        self.mdp, self.evaluations = mdp, max(1, int(evaluations))
        self.gamma = EVAL_GAMMA

    def on_start(self, learner: Any, env: Any) -> None:
        g = float(learner.settings.gamma)
        self.gamma = g if g < 1.0 else EVAL_GAMMA
        learner.log.optimum = float(self.mdp.start @ dp.value_iteration(self.mdp, self.gamma).V)
        note = "" if g < 1.0 else f" (learner's gamma is 1; J at {EVAL_GAMMA:g} stays finite)"
        learner.log.eval_label = f"exact J at gamma {self.gamma:g}{note}"

    def after_unit(self, learner: Any, done: int, total: int) -> None:
        every = max(1, total // self.evaluations)
        if done % every == 0 or done == total:
            pi = np.asarray(learner.policy_table())
            learner.log.evaluation(done, float(self.mdp.start @ dp.policy_evaluation(self.mdp, pi, self.gamma)))


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
