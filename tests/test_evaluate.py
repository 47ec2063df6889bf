"""The evaluation protocol: exact normalised scores and the exact expected return."""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from agents.baselines import RandomAgent
from agents.dp import ValueIterationAgent
from arena.evaluate import exact_score, summarise
from arena.match import record_episode


def test_random_scores_zero_and_value_iteration_one():
    env = gym.make("arena/GridWorld-v0", layout="four-rooms")
    rnd, vi = RandomAgent(), ValueIterationAgent()
    rnd.fit(env)
    vi.fit(env)
    assert exact_score(rnd, env).score == pytest.approx(0.0, abs=1e-12)
    assert exact_score(vi, env).score == pytest.approx(1.0, abs=1e-9)


def test_short_sighted_planning_scores_strictly_between_random_and_optimal():
    """On the slippery lake, planning with gamma 0.5 heads for the goal too greedily
    (score 0.627 at the evaluation gamma 0.99); on the cliff it still finds the edge path."""
    lake, cliff = (gym.make("arena/GridWorld-v0", layout=name) for name in ("frozenlake-4x4", "cliff"))
    for env, expected in ((lake, 0.6272), (cliff, 1.0)):
        agent = ValueIterationAgent(gamma=0.5)
        agent.fit(env)
        assert exact_score(agent, env).score == pytest.approx(expected, abs=1e-4)


def test_exact_expected_return_matches_the_sampled_mean():
    """Random play on the slippery 4x4 lake: 3000 episodes' mean within 4 standard errors."""
    env = gym.make("arena/GridWorld-v0", layout="frozenlake-4x4")
    agent = RandomAgent()
    agent.fit(env)
    exact = exact_score(agent, env).expected_return
    returns = [record_episode(agent, env, seed).episode_return for seed in range(3000)]
    se = np.std(returns) / np.sqrt(len(returns))
    assert abs(np.mean(returns) - exact) < 4 * se


def test_summary_reports_nan_instead_of_averaging_it():
    s = summarise([1.0, float("nan"), 3.0])
    assert s.mean == 2.0 and s.episodes == 3 and "1 non-finite" in s.note
    empty = summarise([])
    assert empty.mean is None and empty.note == "no episodes"
    assert summarise([0, 1, 2, 3, 4, 5, 6, 100]).iqm == pytest.approx(3.5)
