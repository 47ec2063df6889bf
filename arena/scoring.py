"""Scoring one run: its evaluation episodes into a leaderboard row, with exact scores where a model exists.

For envs with a model (`env.unwrapped.mdp`) the normalised score is computed exactly, not sampled:

    score = (J(pi) - J(random)) / (J* - J(random)),   J(pi) = sum_s start(s) V_pi(s)

with V_pi from DP policy evaluation at EVAL_GAMMA and J* from value iteration, so 1.0
is optimal and 0.0 is no better than random. Beside it stands the exact expected
undiscounted return over the episode's step limit, which is what the sampled mean of
the recorded episodes estimates. Sequence tasks score by accuracy, image generators by
their FID-based score (arena/image_score.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from agents import dp
from agents.protocol import Agent, Discounted, HasPolicyTable, Learner, Player
from agents.training import AgentBase, Callback
from envs.abilities import HasModel, ImageTask, ObservesStates, WritesText

EVAL_GAMMA = 0.99
HORIZON_WORK_LIMIT = 50_000_000  # states x steps for the exact finite-horizon return


@dataclass
class ExactScore:
    score: float  # normalised: 1 = optimal, 0 = random
    J: float  # discounted value of the start distribution at EVAL_GAMMA
    J_optimal: float
    J_random: float
    expected_return: float | None  # undiscounted, over max_steps; None if too costly to compute

def policy_of(agent: Agent | Player, env: gym.Env) -> np.ndarray:
    """(S, A) action probabilities of the agent's greedy play on an env with a model: its
    policy table where it has one, else its greedy action in each state's observation."""
    u = env.unwrapped
    if not isinstance(u, HasModel):
        raise TypeError(f"{type(u).__name__} has no model: no policy table over its states")
    mdp = u.mdp
    if isinstance(agent, HasPolicyTable):
        table = np.asarray(agent.policy_table())
        if table.shape == (mdp.n_states, mdp.n_actions):
            return table  # else its rows are observations, not states (an env that hides its states)
    pi = np.zeros((mdp.n_states, mdp.n_actions))
    for s in range(mdp.n_states):  # an env that cannot say what state s looks like shows its index
        action, _ = agent.act(u.observation_of(s) if isinstance(u, ObservesStates) else s, None, greedy=True)
        pi[s, int(action)] = 1.0
    return pi


def exact_score(agent: Agent | Player, env: gym.Env) -> ExactScore | None:
    """The exact normalised score on an env with a model (env.unwrapped.mdp); None otherwise."""
    if not isinstance(env.unwrapped, HasModel) or agent.recurrent:
        return None  # no model, or a policy that depends on history, not on the state alone
    mdp = env.unwrapped.mdp
    pi = policy_of(agent, env)
    J = float(mdp.start @ dp.policy_evaluation(mdp, pi, EVAL_GAMMA))
    J_random, J_optimal = reference_values(mdp)
    return ExactScore(normalised(J, J_random, J_optimal), J, J_optimal, J_random,
                      expected_return(mdp, pi, env.unwrapped.max_steps))


def reference_values(mdp: Any) -> tuple[float, float]:
    """(J of the uniform random policy (over the actions each state offers), J*) from the start distribution, at EVAL_GAMMA: the 0 and 1
    of the normalised score. J* is the exact value of value iteration's greedy policy (optimal,
    and free of VI's tolerance)."""
    offered = getattr(mdp, "allowed", None)  # a model whose states offer fewer actions (envs.abilities.MasksActions)
    uniform = (np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions) if offered is None
               else offered / offered.sum(axis=1, keepdims=True))
    J_random = float(mdp.start @ dp.policy_evaluation(mdp, uniform, EVAL_GAMMA))
    J_optimal = float(mdp.start @ dp.policy_evaluation(mdp, dp.value_iteration(mdp, EVAL_GAMMA).policy, EVAL_GAMMA))
    return J_random, J_optimal


def normalised(J: float, J_random: float, J_optimal: float) -> float:
    """(J - J_random) / (J* - J_random): 0 = random play, 1 = optimal."""
    span = J_optimal - J_random
    return (J - J_random) / span if abs(span) > 1e-12 else (1.0 if J >= J_optimal - 1e-12 else 0.0)


def sampled_score(env: gym.Env, episodes: list[Any]) -> float | None:
    """The normalised score from the episodes played, on an env with a model, for a player whose
    choices depend on history (a recurrent network, a person), so no exact J exists: the mean
    discounted return G = sum_t gamma^t r_t (gamma = EVAL_GAMMA) in place of J. None elsewhere."""
    if not isinstance(env.unwrapped, HasModel) or not episodes or any(e.rewards is None for e in episodes):
        return None
    mdp = env.unwrapped.mdp
    G = [float(np.sum(EVAL_GAMMA ** np.arange(len(e.rewards)) * e.rewards)) for e in episodes]
    return normalised(float(np.mean(G)), *reference_values(mdp))


def expected_return(mdp: Any, pi: np.ndarray, horizon: int) -> float | None:
    """E[sum of rewards over at most `horizon` steps] from the start distribution (gamma = 1)."""
    if mdp.n_states * horizon > HORIZON_WORK_LIMIT:
        return None
    return float(mdp.start @ dp.finite_horizon_evaluation(mdp, pi, horizon))


def image_score(env: gym.Env, episodes: list[Any]) -> Any:
    """For the image env: the generator's scores (arena/image_score.py) from the images it
    made in the evaluation episodes; None for other envs."""
    u = env.unwrapped
    if not isinstance(u, ImageTask) or not episodes:
        return None
    from arena.image_score import score_images

    images = np.concatenate([e.actions for e in episodes if e.actions is not None and len(e.actions)])
    judge = float(np.mean([e.episode_return / max(e.length, 1) for e in episodes]))
    return score_images(images, u.dataset, u.size, judge=judge)


def text_metrics(env: gym.Env, episodes: list[Any]) -> dict[str, Any] | None:
    """For the text env: the mean gold score (the hidden rule's), its normalised form (0: the
    default stage-1 model's gold, 1: gold-best's; what the leaderboard ranks by), the mean
    proxy (the reward model's score: the env's, else the agent's own), the mean KL from the
    agent's reference (agents that have one; best-of-n gives its bound, `kl_bound`) and the
    mean response length; None elsewhere."""
    u = env.unwrapped
    if not isinstance(u, WritesText) or not episodes:
        return None
    from agents.language import stage1_gold

    infos = [e.last_info or {} for e in episodes]
    traces = [e.overlay or {} for e in episodes]
    gold = float(np.mean([float(i.get("gold", 0.0)) for i in infos]))
    proxies = [float(i["proxy"]) for i in infos if i.get("proxy") is not None]
    if not proxies:
        proxies = [float(t["proxy"][-1]) for t in traces if len(t.get("proxy", ())) > 0]
    kls = [float(np.sum(t["kl"])) for t in traces if "kl" in t]
    bounds = [float(t["kl_bound"][0]) for t in traces if len(t.get("kl_bound", ())) > 0]
    floor = stage1_gold(u.text)
    return {"gold": gold, "normalised_gold": (gold - floor) / (1.0 - floor) if floor < 1.0 else gold,
            "stage1_gold": floor, "proxy": float(np.mean(proxies)) if proxies else None,
            "kl": float(np.mean(kls)) if len(kls) == len(episodes) else None,
            "kl_bound": float(np.mean(bounds)) if bounds else None,
            "length": float(np.mean([float(i.get("length", 0)) for i in infos]))}


def image_metrics(score: Any) -> dict[str, Any]:
    """The figures a leaderboard row keeps for a generator (FID, IS, coverage, ...)."""
    keep = ("fid", "fid_real", "fid_noise", "inception_score", "coverage", "classes_covered", "n_classes",
            "pairwise_distance", "mode_collapse", "judge", "images")
    return {k: v for k, v in score.as_dict().items() if k in keep}


class ExactEvaluation(Callback):
    """Evaluation during training, as a callback of the training loop: the exact J of the
    learner's current greedy policy (DP policy evaluation) against the optimum J*.

    It follows learners that have a policy table (`HasPolicyTable`). J is computed at the
    learner's gamma (its settings' `gamma`, a `Discounted` setting) when it is below 1, else at EVAL_GAMMA: with
    gamma = 1 a greedy policy that never reaches a terminal state has J = -inf, and
    evaluating it over the step limit instead can cost far more than learning (SARSA on
    `grid:windy max_steps=100000`: 17.9 s of evaluation against 0.1 s of learning). The
    curve's axis says which gamma was used. `evaluations` points are taken per run.
    """

    def __init__(self, mdp: Any, evaluations: int = 50) -> None:
        self.mdp, self.evaluations = mdp, max(1, int(evaluations))
        self.gamma = EVAL_GAMMA

    def on_start(self, learner: Any, env: gym.Env) -> None:
        settings = learner.settings if isinstance(learner, AgentBase) else None
        g = float(settings.gamma) if isinstance(settings, Discounted) else EVAL_GAMMA
        self.gamma = g if g < 1.0 else EVAL_GAMMA
        learner.log.optimum = float(self.mdp.start @ dp.value_iteration(self.mdp, self.gamma).V)
        note = "" if g < 1.0 else f" (learner's gamma is 1; J at {EVAL_GAMMA:g} stays finite)"
        learner.log.eval_label = f"exact J at gamma {self.gamma:g}{note}"

    def units_until_call(self, done: int, total: int) -> int:
        every = max(1, total // self.evaluations)
        return min(every - done % every, total - done)  # to the next evaluation

    def after_unit(self, learner: Any, done: int, total: int) -> None:
        every = max(1, total // self.evaluations)
        if done % every == 0 or done == total:
            if not isinstance(learner, HasPolicyTable) or not isinstance(learner, Learner):
                return
            pi = np.asarray(learner.policy_table())
            learner.log.evaluation(done, float(self.mdp.start @ dp.policy_evaluation(self.mdp, pi, self.gamma)))


# --------------------------------------------------------------------------- per-episode figures


def successes(episodes: list[Any]) -> list[bool]:
    """Per episode: did it succeed (the env's `is_success` at the end: a grid's goal reached,
    a sequence answered all right)? Empty when the env has no such notion (images)."""
    flags = [(e.last_info or {}).get("is_success") for e in episodes]
    return [bool(f) for f in flags] if flags and all(f is not None for f in flags) else []


def accuracy(episodes: list[Any]) -> float | None:
    """The mean of the episodes' `accuracy` (sequence tasks: the share of outputs right); None elsewhere."""
    values = [(e.last_info or {}).get("accuracy") for e in episodes]
    if not values or any(v is None for v in values):
        return None
    return float(np.mean([float(v) for v in values if v is not None]))


__all__ = ["EVAL_GAMMA", "ExactEvaluation", "ExactScore", "accuracy", "exact_score", "expected_return", "image_metrics",
           "image_score", "normalised", "policy_of", "reference_values", "sampled_score", "successes"]
