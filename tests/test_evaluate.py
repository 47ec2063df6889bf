"""The evaluation protocol: exact normalised scores and the exact expected return."""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from agents.baselines import RandomAgent
from agents.dp import ValueIterationAgent
from arena.scoring import exact_score
from arena.statistics import summarise
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


# --------------------------------------------------------------------------- the protocol: aggregates over runs

import math  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import arena  # noqa: E402
from arena.errors import ArenaError  # noqa: E402
from arena.evaluation import Evaluation  # noqa: E402
from arena.statistics import aggregate, iqm  # noqa: E402


def test_iqm_and_the_stratified_bootstrap_agree_with_rliable_on_fixed_inputs():
    """rliable (Agarwal et al. 2021) is the reference: IQM exactly, the 95% percentile
    bootstrap interval (runs resampled within each task) to Monte Carlo precision."""
    from rliable import library as rly
    from rliable import metrics

    scores = np.random.default_rng(7).uniform(0, 1, (5, 3))  # 5 runs x 3 tasks
    point, intervals = rly.get_interval_estimates({"a": scores}, lambda s: np.array([metrics.aggregate_iqm(s)]),
                                                  reps=20_000)
    ours = aggregate([list(scores[:, t]) for t in range(3)], resamples=20_000)
    assert ours.iqm == pytest.approx(point["a"][0], abs=1e-12)
    assert ours.ci == pytest.approx((intervals["a"][0, 0], intervals["a"][1, 0]), abs=0.01)


def test_one_run_has_no_interval_and_overlapping_intervals_are_ties():
    one = aggregate([0.9])
    assert one.iqm == 0.9 and all(math.isnan(x) for x in one.ci) and "no interval" in str(one)
    a, b, c = aggregate([0.90, 0.92, 0.95, 0.97]), aggregate([0.93, 0.96, 0.99, 1.0]), aggregate([0.1, 0.12, 0.15])
    assert not a.clearly_above(b) and not b.clearly_above(a)  # overlapping: tied either way
    assert a.clearly_above(c) and not c.clearly_above(a)
    assert one.clearly_above(c) and a.clearly_above(aggregate([0.5]))  # one run: the higher IQM is ahead


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=12))
def test_the_interval_holds_the_iqm_and_the_same_inputs_give_the_same_interval(values):
    agg = aggregate(values, resamples=500)
    lo, hi = agg.ci
    assert min(values) - 1e-9 <= lo <= hi <= max(values) + 1e-9
    assert agg.iqm == pytest.approx(iqm(values)) and aggregate(values, resamples=500).ci == agg.ci


def test_non_finite_scores_are_refused_not_averaged():
    with pytest.raises(ValueError, match="finite"):
        aggregate([0.5, float("nan")])


def test_arena_evaluate_is_n_runs_by_m_episodes_with_disjoint_recorded_seeds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = arena.evaluate("q-learning", "grid:cliff", train_seeds=3, eval_episodes=4, budget=2000)
    assert isinstance(result, Evaluation) and result.train_seeds == [0, 1, 2] and result.eval_seeds == [1000, 1001, 1002, 1003]
    assert len(result.runs) == 3 and [len(r) for r in result.returns] == [4, 4, 4]
    assert result.score.iqm >= 0.95 and result.success_rate == 1.0 and result.flags == []
    assert len(result.score.values) == 3 and result.score.ci[0] <= result.score.iqm <= result.score.ci[1]
    assert not (tmp_path / "replays").exists() and not (tmp_path / "runs").exists()  # nothing kept unless record=True
    assert arena.evaluate("q-learning", "grid:cliff", train_seeds=3, eval_episodes=4, budget=2000).as_dict()["score"] \
        == result.as_dict()["score"]  # seeded: the same figures again


def test_a_policy_that_never_reaches_the_goal_is_flagged_whatever_its_score(tmp_path, monkeypatch):
    """The README's old SARSA example: constant exploration learns to loop short of the goal."""
    monkeypatch.chdir(tmp_path)
    result = arena.evaluate("sarsa", "grid:cliff", train_seeds=[0], budget=500,
                            config={"epsilon": 0.1, "epsilon_end": None}, record=True, db=tmp_path / "lb.sqlite")
    assert result.score.iqm > 0.9 and result.success_rate == 0.0 and result.flags == ["never succeeds"]
    assert (tmp_path / "replays").is_dir()
    from arena.leaderboard import Leaderboard

    (row,) = Leaderboard(tmp_path / "lb.sqlite").results()
    assert row.successes == [False] * 10 and row.success_rate == 0.0


def test_sequence_tasks_score_by_accuracy_and_succeed_when_all_right(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = arena.evaluate("random", "seq:copy length=4", train_seeds=2, eval_episodes=20)
    run = result.runs[0]
    assert run.score == pytest.approx(run.mean_return) and 0.0 < run.score < 0.5
    assert len(run.successes) == 20 and result.success_rate is not None


@pytest.mark.parametrize("kwargs,fragment", [
    ({"train_seeds": 0}, "at least one run"),
    ({"train_seeds": [1, 1]}, "distinct"),
    ({"train_seeds": [1000]}, "also an evaluation seed"),
    ({"train_seeds": "3"}, "count"),
    ({"eval_episodes": 0}, "eval_episodes"),
    ({"budget": -5}, "budget"),
    ({"config": {"alpha": 7}}, "alpha"),
    ({"config": "alpha=1"}, "dict"),
])
def test_bad_arguments_are_one_line_before_any_training(kwargs, fragment):
    with pytest.raises(ArenaError, match=fragment):
        arena.evaluate("q-learning", "grid:cliff", **kwargs)


def test_unknown_names_and_impossible_pairs_are_one_line():
    with pytest.raises(ArenaError, match="unknown"):
        arena.evaluate("q-lerning", "grid:cliff")
    with pytest.raises(ArenaError, match="cannot play"):
        arena.evaluate("q-learning", "img:digits")


# --------------------------------------------------------------------------- standings


def row(agent, seed, score, env="cliff", successes=(True,), created="2026-01-01T00:00:00", **config):
    from arena.leaderboard import Result

    return Result(f"{agent}-{seed}-{score}-{created}", "arena/GridWorld-v0", {"layout": env}, agent, config, seed,
                  [1000], [score], score, 0.0, score, score=score, successes=list(successes), created=created)


def test_standings_group_runs_by_agent_and_settings_and_share_ranks_when_intervals_overlap():
    from arena.standings import standings

    rows = ([row("a", s, v) for s, v in enumerate([0.90, 0.92, 0.95, 0.97])]
            + [row("b", s, v) for s, v in enumerate([0.93, 0.96, 0.99, 1.00])]
            + [row("c", s, v, successes=(False,)) for s, v in enumerate([0.10, 0.12, 0.15])]
            + [row("q", 0, 0.5, alpha=0.1), row("q", 0, 0.6, alpha=0.5)]
            + [row("z", 0, 0.2, env="four-rooms")])
    rows += [row("d", s, v) for s, v in enumerate([0.70, 0.80, 0.85])]  # a and b clearly ahead
    table = {st.agent: st for st in standings(rows)}
    assert table["b"].rank == 1 and table["a"].rank == 1 and table["a"].tied and table["b"].tied
    assert table["d"].rank == 3 and not table["d"].tied
    assert table["q alpha=0.5"].rank == 4 and table["q alpha=0.1"].rank == 5 and table["c"].rank == 6
    assert table["c"].evaluation.flags == ["never succeeds"] and not table["c"].tied
    assert len(table["a"].evaluation.runs) == 4 and table["z"].rank == 1 and table["z"].env == "grid:four-rooms"


def test_a_seed_run_twice_counts_once_the_newest_row():
    from arena.standings import standings

    (entry,) = standings([row("a", 0, 0.5, created="2026-01-01T00:00:00"), row("a", 0, 0.7, created="2026-02-01T00:00:00"),
                          row("a", 1, 0.9)])
    assert sorted(entry.evaluation.score.values) == [0.7, 0.9]


def test_where_an_agent_ran_is_not_what_it_is_so_the_device_never_reaches_a_row():
    """`device` is declared once (recorded=False): config(), which the leaderboard stores, leaves it out."""
    from arena.registry import make_agent

    for name in ("reinforce-mlp", "gan", "vae", "sb3-ppo", "reinforce-generator"):
        assert "device" not in make_agent(name, device="cpu").config()
