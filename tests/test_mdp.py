"""arena/TabularMDP-v0: the textbook's MDPs (random walk, gambler, Jack's car rental) and a
student's own model, played, solved, replayed and ranked like a grid."""

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs  # noqa: F401
from agents.dp import policy_iteration, value_iteration
from arena.errors import ArenaError
from envs.mdp import MDPError, model_from, write_model

MDP = "arena/TabularMDP-v0"


def mdp_of(**kwargs):
    return gym.make(MDP, **kwargs).unwrapped.mdp


@pytest.mark.parametrize("kwargs", [{"model": "random-walk"}, {"model": "random-walk", "n": 19, "left": -1.0},
                                    {"model": "gambler", "goal": 20}, {"model": "jacks-car-rental", "max_cars": 4},
                                    {"model": "short-corridor"}, {"model": "maximization-bias"}])
def test_both_env_checkers_pass_with_warnings_as_errors(kwargs):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(MDP, render_mode="rgb_array", **kwargs).unwrapped, skip_render_check=False)
        sb3_check_env(gym.make(MDP, **kwargs).unwrapped)


def test_random_walks_have_the_books_true_values():
    """Example 6.2: V(A..E) = 1/6..5/6; Figure 7.2's 19-state walk (-1 on the left): V(i) = i/10 - 1."""
    np.testing.assert_allclose(value_iteration(mdp_of(model="random-walk"), 1.0).V[1:6], np.arange(1, 6) / 6, atol=1e-9)
    V = value_iteration(mdp_of(model="random-walk", n=19, left=-1.0), 1.0).V
    np.testing.assert_allclose(V[1:20], np.arange(1, 20) / 10 - 1, atol=1e-9)
    env = gym.make(MDP, model="random-walk")
    assert env.reset(seed=0)[0] == 3  # C, the middle


@pytest.mark.parametrize("p_h", [0.25, 0.4])
def test_gamblers_problem_figure_4_3(p_h):
    """Below p_h = 0.5 bold play is optimal: from 50 stake everything, V(50) = p_h, V(25) = p_h^2,
    V(75) = p_h + (1 - p_h) p_h."""
    V, policy = value_iteration(mdp_of(model="gambler", p_h=p_h), 1.0)
    assert V[50] == pytest.approx(p_h, abs=1e-9) and V[25] == pytest.approx(p_h**2, abs=1e-9)
    assert V[75] == pytest.approx(p_h + (1 - p_h) * p_h, abs=1e-9)
    assert policy[50].argmax() + 1 == 50 and policy[25].argmax() + 1 == 25
    assert V[0] == V[100] == 0 and np.all(np.diff(V[:100]) >= -1e-12)  # more capital is never worse


def test_jacks_car_rental_figure_4_2():
    """The optimal policy of Figure 4.2 (pi_4), as cars moved from the first location to the
    second, read at named cells (first location's cars, second's): a full first location and an
    empty second move 5; equal counts move none; an empty first and a full second move 4 back, one car there 3.
    Value and policy iteration agree; V* spans about 420 to 640 (exact Poisson tails)."""
    mdp = mdp_of(model="jacks-car-rental")
    sol = value_iteration(mdp, 0.9)
    moved = (sol.policy.argmax(axis=1) - 5).reshape(21, 21)  # [cars at 1, cars at 2]
    assert moved[20, 0] == 5 and moved[20, 3] == 5 and moved[10, 10] == 0 and moved[0, 0] == 0
    assert moved[0, 20] == -4 and moved[1, 20] == -3 and moved[20, 20] == 0
    assert (moved[np.triu_indices(21, 1)] <= 0).all() and (moved[np.tril_indices(21, -1)] >= 0).all()
    assert 415 < sol.V.min() < 425 and 630 < sol.V.max() < 640
    pi = policy_iteration(mdp, 0.9)
    np.testing.assert_allclose(pi.V, sol.V, atol=1e-6)
    assert (pi.policy.argmax(axis=1) == sol.policy.argmax(axis=1)).all()
    # Exercise 4.7: the free shuttle moves one car where the original moves none
    variant = (value_iteration(mdp_of(model="jacks-car-rental", variant=True), 0.9).policy.argmax(axis=1) - 5).reshape(21, 21)
    assert ((variant == 1) & (moved == 0)).sum() > 20


def test_a_students_model_from_gymnasiums_frozenlake_matches_arenas_grid(tmp_path):
    """Gymnasium's FrozenLake model (P[s][a] = [(prob, next, reward, done)]) written as a JSON
    model and played with model=PATH has the same optimal values as grid:frozenlake-4x4; given
    directly (transitions=P) it is the same model."""
    P = gym.make("FrozenLake-v1").unwrapped.P
    path = write_model({"P": P}, tmp_path / "lake.json")
    env = gym.make(MDP, model=str(path))
    V = value_iteration(env.unwrapped.mdp, 0.99).V
    V_grid = value_iteration(gym.make("arena/GridWorld-v0", layout="frozenlake-4x4").unwrapped.mdp, 0.99).V
    np.testing.assert_allclose(V, V_grid, atol=1e-9)
    direct = gym.make(MDP, transitions=P)
    np.testing.assert_allclose(value_iteration(direct.unwrapped.mdp, 0.99).V, V_grid, atol=1e-9)
    m = direct.unwrapped.mdp
    dense = gym.make(MDP, P=np.einsum("sak,sakt->sat", m.prob, np.eye(16)[m.next_state]), R=m.R, terminal=m.terminal)
    np.testing.assert_allclose(value_iteration(dense.unwrapped.mdp, 0.99).V, V_grid, atol=1e-9)
    # arrays given in Python are recorded as JSON lists: checkpoints, replays and their verification take them
    from arena.match import record_episode
    from arena.registry import make_agent
    from arena.replay import verify

    learner = make_agent("q-learning", episodes=50)
    learner.fit(dense, seed=0, run_dir=tmp_path / "run")
    assert make_agent("q-learning").load(tmp_path / "run" / "checkpoint.npz").trained_on["kwargs"]["R"] == m.R.tolist()
    assert verify(record_episode(learner, dense, 1000)).ok
    with pytest.raises(ArenaError, match="already exists"):
        write_model({"P": P}, path)  # nothing is overwritten
    # the dense and the compact forms of the same model give the same tables
    m = env.unwrapped.mdp
    dense = np.zeros((16, 4, 16))
    for k in range(m.next_state.shape[-1]):
        np.add.at(dense, (np.arange(16)[:, None], np.arange(4)[None, :], m.next_state[:, :, k]), m.prob[:, :, k])
    again = model_from({"P": dense.tolist(), "R": m.R.tolist(), "terminal": m.terminal.tolist()})
    np.testing.assert_allclose(value_iteration(again, 0.99).V, V, atol=1e-9)


def test_learners_replays_and_the_leaderboard_take_it(workdir):
    """A student's chain (left or right, 10% the other way; +1 at the right end) written as a
    model: Q-learning learns it to the DP optimum's exact score, its replay verifies, and the
    run lands on the leaderboard like a grid's."""
    import arena
    from arena.leaderboard import Leaderboard
    from arena.replay import load_replay, verify

    P = {s: {a: [(0.9, s + (1 if a else -1), float(s + (1 if a else -1) == 5), s + (1 if a else -1) in (0, 5)),
                 (0.1, s - (1 if a else -1), float(s - (1 if a else -1) == 5), s - (1 if a else -1) in (0, 5))]
             for a in (0, 1)} for s in range(1, 5)}
    P[0] = P[5] = {a: [(1.0, 0, 0.0, True)] for a in (0, 1)}  # the ends (their outgoing moves are never used)
    write_model({"P": P, "start": 2}, workdir / "chain.json")
    env = "mdp:chain.json"
    result = arena.evaluate("q-learning", env, train_seeds=1, eval_episodes=3, budget=2000, record=True)
    assert result.score.median == pytest.approx(1.0, abs=1e-6)  # exact, against the DP optimum: always right
    replay = load_replay(result.runs[0].replay_paths[0])
    assert verify(replay).ok
    assert [r.env_id for r in Leaderboard().results()] == [MDP]
    assert arena.evaluate("random", env, train_seeds=1, eval_episodes=2).score.median == pytest.approx(0.0, abs=1e-6)


DAMAGES = [
    (lambda m: m.update(prob=[[[0.5, 0.4]] * 2] * 3), r"prob\[0, 0\] sums to 0.9"),
    (lambda m: m["prob"][1][0].__setitem__(0, float("nan")), r"prob\[1, 0\]"),
    (lambda m: m["prob"][1][1].__setitem__(0, -0.5), "finite and >= 0"),
    (lambda m: m.update(next_state=[[[0, 1]] * 2] * 2), "has shape"),
    (lambda m: m["next_state"][2][1].__setitem__(0, 7), "outside 0..2"),
    (lambda m: m.update(reward=[[1.0, 2.0]]), "reward has shape"),
    (lambda m: m.update(terminal=[False, True]), "terminal must be 3 booleans"),
    (lambda m: m.update(start=2), "start=2 must be a non-terminal state"),
    (lambda m: m.update(next_state=[[[0, 1]] * 2, [[1, 1]] * 2, [[2, 2]] * 2]), "no terminal state can be reached"),
    (lambda m: m.pop("prob"), "missing prob"),
    (lambda m: m.update(reward=[[[float("inf"), 0]] * 2] * 3), "must be finite"),
]


def small_model():
    """Three states, two actions: 0 -> 1 -> 2 (terminal), each step a coin flip between moving and staying."""
    model = {"next_state": [[[1, 0]] * 2, [[2, 1]] * 2, [[2, 2]] * 2], "prob": [[[0.5, 0.5]] * 2] * 3,
             "reward": [[[1.0, 0.0]] * 2] * 3, "terminal": [False, False, True]}
    return json.loads(json.dumps(model))  # no shared rows: a damage changes one entry


@pytest.mark.parametrize("damage, message", DAMAGES)
def test_a_malformed_model_is_one_line_naming_what_is_wrong(tmp_path, damage, message):
    assert value_iteration(model_from(small_model()), 1.0).V[0] == pytest.approx(2.0)
    model = small_model()
    damage(model)
    with pytest.raises(MDPError, match=message) as caught:
        model_from(model)
    assert "\n" not in str(caught.value)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model, allow_nan=True))
    with pytest.raises(MDPError, match=message):
        gym.make(MDP, model=str(path))


@pytest.mark.parametrize("kwargs, message", [
    ({"model": "gambler", "P": [[[1.0]]], "R": [[0.0]]}, "not both"),
    ({"P": [[[1.0]]]}, "R is missing"),
    ({"R": [[0.0]]}, "P is missing"),
    ({"transitions": {0: {0: [(1.0, 0, 0.0, True)]}}, "P": [[[1.0]]]}, "P and R, or transitions"),
    ({"model": "gambler", "terminal": [True]}, "go with a model of your own"),
    ({"model": "missing.json"}, "cannot be read"),
    ({"model": "model.npz"}, "a .json model file"),
    ({"model": "gambler", "p_h": 1.5}, "p_h"),
    ({"model": "random-walk", "n": 0}, "n"),
    ({"model": "nope"}, "name a textbook MDP"),
])
def test_bad_kwargs_are_one_line(workdir, kwargs, message):
    with pytest.raises(MDPError, match=message):
        gym.make(MDP, **kwargs)


def test_a_file_that_is_not_a_model_is_one_line(tmp_path):
    for text, message in [("{", "not valid JSON"), ("[1, 2]", "a model is a dict"), ('{"format": 9}', "format 9"),
                          ('{"P": [[[1.0]]]}', "R is missing"), ('{"P": {"0": {"0": [[1.0, 0]]}}}', r"P\[0\]\[0\]\[0\]")]:
        path = tmp_path / "bad.json"
        path.write_text(text)
        with pytest.raises(MDPError, match=message):
            gym.make(MDP, model=str(path))


json_values = st.recursive(st.none() | st.booleans() | st.integers(-3, 5) | st.floats(allow_nan=True) | st.text(max_size=3),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
                               ["P", "R", "next_state", "prob", "reward", "terminal", "start", "0", "1"]), inner,
                               max_size=4), max_leaves=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_is_a_model_or_one_mdp_error(obj):
    try:
        mdp = model_from(obj)
    except MDPError as exc:
        assert "\n" not in str(exc)
        return
    assert np.allclose(mdp.prob.sum(axis=-1), 1.0)


def test_maximization_bias_as_a_finite_mdp_figure_6_5():
    """mdp:maximization-bias: A offers left and right, B 10 actions whose reward is N(-0.1, 1) as
    16 equally likely quantiles. The states' own action counts hold (action_mask; the compiled
    episodes step aside), and over 100 runs of 100 episodes Q-learning goes left far more often
    than Double Q-learning (measured 0.73 against 0.22)."""
    from agents.td import step_tables
    from arena.registry import make_agent
    from envs.abilities import MasksActions

    env = gym.make(MDP, model="maximization-bias")
    u = env.unwrapped
    assert isinstance(u, MasksActions) and u.action_mask.sum(axis=1).tolist() == [2, 10, 10]
    assert step_tables(env) is None
    R = u.mdp.R
    np.testing.assert_allclose(R[1, :10], -0.1)
    assert np.var(u.mdp.reward[1, 0]) == pytest.approx(1.0)  # the normal's mean and variance, in 16 levels
    left = {}
    for name in ("q-learning", "double-q-learning"):
        chosen = []
        for seed in range(100):
            run = gym.wrappers.RecordEpisodeStatistics(gym.make(MDP, model="maximization-bias"), buffer_length=100)
            agent = make_agent(name, epsilon=0.1, epsilon_end=None, alpha=0.1, alpha_end=None, gamma=1.0, episodes=100)
            agent.fit(run, seed=seed)
            chosen.append(np.mean([n == 2 for n in run.length_queue]))
        left[name] = np.mean(chosen)
    assert left["double-q-learning"] < left["q-learning"] - 0.3


def test_short_corridor_example_13_1_reinforce_from_a_policy_set_by_hand(tmp_path):
    """Example 13.1: every state looks the same, so the best policy is stochastic, right with
    probability 0.59 (J = -11.6, Figure 13.1). REINFORCE starts, as in the book, from a policy
    that goes right with probability 0.05, set by hand and saved outside training, and
    fit(init=...) begins there: its first batch returns about J(0.05) = -82."""
    import torch

    from agents.dp import policy_evaluation
    from agents.reinforce import ReinforceAgent

    env = gym.make(MDP, model="short-corridor")
    mdp = env.unwrapped.mdp
    assert env.observation_space.n == 1  # aliased states
    J = {p: policy_evaluation(mdp, np.tile([1 - p, p], (4, 1)), 1.0)[0] for p in np.round(np.arange(1, 100) / 100, 2)}
    best = max(J, key=J.get)
    assert best == 0.59 and J[best] == pytest.approx(-11.6, abs=0.1) and J[0.05] == pytest.approx(-82.1, abs=0.1)
    by_hand = ReinforceAgent(network="mlp", gamma=1.0, device="cpu")
    by_hand.begin(env, 0)
    with torch.no_grad():
        by_hand.net.pi.weight.zero_()
        by_hand.net.pi.bias.copy_(torch.tensor([0.0, float(np.log(0.05 / 0.95))]))  # p(right) = 0.05
    start = by_hand.save(tmp_path / "right-5-percent.npz")
    agent = ReinforceAgent(network="mlp", gamma=1.0, lr=0.01, episodes=64 * 100, device="cpu")
    agent.fit(env, seed=0, init=start, progress=False)
    assert agent.log.returns[0] == pytest.approx(J[0.05], abs=15)
    assert np.mean(agent.log.returns[-10:]) > -14
    agent.reset(seed=0)
    right = np.mean([agent.act(0, greedy=False)[0] for _ in range(2000)])
    assert 0.45 < right < 0.75
