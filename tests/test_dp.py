"""Dynamic programming: hand-derived values, agreement between methods, optimality, bad input."""

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401
from agents import dp
from arena.errors import AgentError
from agents.dp import DPError, PolicyIterationAgent, ValueIterationAgent, policy_evaluation, policy_iteration, value_iteration
from arena.scoring import EVAL_GAMMA, exact_score
from envs.grid import LAYOUTS

NAMED = [*LAYOUTS, "maze-15x15"]


def model(layout, **kwargs):
    return gym.make("arena/GridWorld-v0", layout=layout, **kwargs).unwrapped.mdp


@pytest.mark.parametrize("method", ["solve", "sweep"])
def test_policy_evaluation_of_random_walk_in_a_corridor_matches_hand_derivation(method):
    """'S.G', -1 per move, gamma 1, uniform policy. Up/down stay put, so
    V0 = -1 + 3/4 V0 + 1/4 V1 and V1 = -1 + 1/2 V1 + 1/4 V0: V0 = -12, V1 = -8."""
    mdp = model("S.G", rewards={"goal": -1.0})
    V = dp.policy_evaluation(mdp, np.full((3, 4), 0.25), gamma=1.0, method=method, tol=1e-12)
    np.testing.assert_allclose(V, [-12.0, -8.0, 0.0], atol=1e-9)


def test_policy_evaluation_of_always_right_with_discount_matches_hand_derivation():
    """'S..G', -1 per move, 0 for the move into the goal, gamma 0.9:
    V2 = 0, V1 = -1 + .9 * V2 = -1, V0 = -1 + .9 * V1 = -1.9, and the goal is worth 0."""
    mdp = model("S..G", rewards={"goal": 0.0})
    V = dp.policy_evaluation(mdp, np.array([1, 1, 1, 1]), gamma=0.9)
    np.testing.assert_allclose(V, [-1.9, -1.0, 0.0, 0.0])


def test_policy_evaluation_on_a_slippery_corridor_matches_hand_derivation():
    """'S.G' with slip 0.5, always right, +1 at the goal, no step cost. The perpendicular
    moves hit the border and stay, so V1 = 0.5 * 1 + 0.5 * gamma * V1 and
    V0 = 0.5 * gamma * V1 + 0.5 * gamma * V0. gamma 1: V = [1, 1, 0]; gamma 0.5: V1 = 2/3."""
    mdp = model("S.G", slip=0.5, rewards={"step": 0.0, "goal": 1.0})
    np.testing.assert_allclose(dp.policy_evaluation(mdp, np.array([1, 1, 1]), 1.0), [1, 1, 0], atol=1e-9)
    V = dp.policy_evaluation(mdp, np.array([1, 1, 1]), 0.5)
    assert V[1] == pytest.approx(2 / 3)
    assert V[0] == pytest.approx(0.5 * 0.5 * V[1] / (1 - 0.25))


@pytest.mark.parametrize("layout", NAMED)
@pytest.mark.parametrize("gamma", [0.9, EVAL_GAMMA])
def test_policy_and_value_iteration_agree_and_are_optimal(layout, gamma):
    mdp = model(layout)
    V_vi, pi_vi = dp.value_iteration(mdp, gamma)
    V_pi, pi_pi = dp.policy_iteration(mdp, gamma)
    np.testing.assert_allclose(V_vi, V_pi, atol=1e-7)
    # both greedy policies are worth V*, and V* satisfies the Bellman optimality equation
    for policy in (pi_vi, pi_pi):
        np.testing.assert_allclose(dp.policy_evaluation(mdp, policy, gamma), V_vi, atol=1e-7)
    assert dp.bellman_residual(mdp, V_vi, gamma) < 1e-8


@pytest.mark.parametrize("layout", ["cliff", "windy", "open-5x5", "maze-15x15", "frozenlake-4x4"])
def test_undiscounted_episodic_grids_solve_with_gamma_1(layout):
    mdp = model(layout)
    vi, pi = dp.value_iteration(mdp, 1.0), dp.policy_iteration(mdp, 1.0)
    np.testing.assert_allclose(vi.V, pi.V, atol=1e-7)
    shortest = {"cliff": -13, "windy": -15, "open-5x5": -8}
    if layout in shortest:  # Sutton & Barto: 13 moves along the cliff edge, 15 through the wind
        assert mdp.start @ vi.V == pytest.approx(shortest[layout])
    if layout == "frozenlake-4x4":  # the best achievable success probability on the slippery 4x4
        assert mdp.start @ vi.V == pytest.approx(0.8235, abs=1e-4)


@pytest.mark.parametrize("layout", NAMED)
def test_value_iteration_agent_scores_exactly_one(layout):
    env = gym.make("arena/GridWorld-v0", layout=layout)
    agent = ValueIterationAgent(gamma=EVAL_GAMMA)
    agent.fit(env)
    assert exact_score(agent, env).score == pytest.approx(1.0, abs=1e-9)


def test_solution_unpacks_as_V_policy_and_reports_its_sweeps():
    sol = dp.value_iteration(model("maze-31x31", slip=0.2), 0.99)
    V, policy = sol
    assert V.shape == (sol.V.shape[0],) and policy.shape == (V.shape[0], 4)
    assert sol.sweeps > 1 and sol.residual < 1e-8 and sol.seconds >= 0


def test_in_place_value_iteration_matches_the_plain_python_loop():
    mdp = model("maze-15x15", slip=0.2)
    np.testing.assert_allclose(dp.value_iteration(mdp, 0.95).V, dp.value_iteration_python(mdp, 0.95), atol=1e-8)


@pytest.mark.parametrize("block", [1, 7, 64, 10**9])
def test_value_iteration_passing_over_settled_blocks_still_stops_at_the_synchronous_rule(monkeypatch, block):
    """Blocks whose successors have not moved are passed over; the answer must not depend on it."""
    mdp = model("maze-31x31", slip=0.2)
    reference = dp.value_iteration(mdp, 0.99, tol=1e-12)
    monkeypatch.setattr(dp, "_BLOCK", block)
    sol = dp.value_iteration(mdp, 0.99, tol=1e-12)
    assert dp.bellman_residual(mdp, sol.V, 0.99) < 1e-11
    np.testing.assert_allclose(sol.V, reference.V, atol=1e-9)
    np.testing.assert_array_equal(sol.policy, reference.policy)


@pytest.mark.slow
def test_256x256_slippery_maze_solves_to_bellman_residual_below_1e_8():
    mdp = model("maze-256x256", slip=0.2)
    sol = dp.value_iteration(mdp, 0.99)
    assert sol.residual < 1e-8
    assert dp.bellman_residual(mdp, sol.V, 0.99) < 1e-8


def test_dp_agents_expose_V_Q_and_greedy_policy_for_the_viewer():
    env = gym.make("arena/GridWorld-v0", layout="cliff")
    for agent in (ValueIterationAgent(), PolicyIterationAgent()):
        log = agent.fit(env)
        overlay = agent.overlay()
        assert set(overlay) == {"V", "Q", "policy"} and overlay["Q"].shape == (38, 4)
        assert log["sweeps"] >= 1
        assert agent.act(36)[0] == 0  # from the start: up, off the cliff edge


def test_dp_agent_checkpoint_round_trips_without_pickle(tmp_path):
    env = gym.make("arena/GridWorld-v0", layout="four-rooms")
    agent = ValueIterationAgent(gamma=0.95)
    agent.fit(env)
    path = agent.save(tmp_path / "vi.npz")
    loaded = ValueIterationAgent().load(path)
    assert loaded.settings.gamma == 0.95 and loaded.digest() == agent.digest()
    with pytest.raises(AgentError, match="is a checkpoint of value-iteration, not of policy-iteration"):
        PolicyIterationAgent().load(path)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m: dp.value_iteration(m, 1.5), r"gamma=1.5 is out of range"),
        (lambda m: dp.policy_evaluation(m, np.full((38, 4), 0.3), 0.9), "row 0 sums to 1.2"),
        (lambda m: dp.policy_evaluation(m, np.zeros((5, 4)), 0.9), r"policy has shape \(5, 4\)"),
        (lambda m: dp.policy_evaluation(m, np.full(38, 7), 0.9), "integer actions in 0..3"),
        (lambda m: dp.policy_evaluation(m, np.zeros(38, dtype=int), 1.0), "never reaches a terminal state"),
    ],
)
def test_bad_dp_input_is_one_clear_error(call, message):
    with pytest.raises(DPError, match=message):
        call(model("cliff"))


def test_dp_agent_refuses_an_env_without_index_observations():
    with pytest.raises(AgentError, match="for a grid use obs=index"):
        ValueIterationAgent().fit(gym.make("arena/GridWorld-v0", layout="cliff", obs="coords"))


# --------------------------------------------------------------------------- any object with the named arrays


def gambler_arrays(p_h: float = 0.4, goal: int = 100) -> SimpleNamespace:
    """S&B Example 4.3 written by hand: capital 0..goal, stake a + 1 (at most what wins or is held)."""
    S, A = goal + 1, goal // 2
    next_state, prob, R = np.zeros((S, A, 2), np.int64), np.zeros((S, A, 2)), np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            if s in (0, goal):
                next_state[s, a], prob[s, a] = s, (1.0, 0.0)
                continue
            stake = min(a + 1, s, goal - s)
            next_state[s, a], prob[s, a] = (s + stake, s - stake), (p_h, 1.0 - p_h)
            R[s, a] = p_h * (s + stake == goal)  # +1 on reaching the goal
    terminal = np.isin(np.arange(S), (0, goal))
    return SimpleNamespace(next_state=next_state, prob=prob, R=R, terminal=terminal, start=np.full(S, 1.0 / S))


@pytest.mark.parametrize("solve", [value_iteration, policy_iteration])
def test_every_solver_takes_a_hand_built_model_gamblers_problem_figure_4_3(solve):
    """Figure 4.3 (p_h = 0.4): the probability of winning from capital 50 is exactly p_h = 0.4."""
    V, policy = solve(gambler_arrays(), 1.0)
    assert V[50] == pytest.approx(0.4, abs=1e-9)
    assert V[25] == pytest.approx(0.16, abs=1e-9)  # two heads in a row: 0.4^2
    assert policy[50].argmax() + 1 == 50  # at 50, stake everything
    np.testing.assert_allclose(policy_evaluation(gambler_arrays(), policy, 1.0), V, atol=1e-9)


@pytest.mark.parametrize("damage, message", [
    (lambda m: delattr(m, "R"), "no R array"),
    (lambda m: delattr(m, "next_state"), "no next_state array"),
    (lambda m: delattr(m, "terminal"), "no terminal array"),
    (lambda m: setattr(m, "prob", m.prob[:, :, :1]), "prob has shape"),
    (lambda m: setattr(m, "R", m.R[:5]), "R has shape"),
    (lambda m: setattr(m, "terminal", m.terminal[:3]), "terminal has shape"),
    (lambda m: setattr(m, "next_state", m.next_state.astype(float)), "integer array"),
    (lambda m: m.next_state.__setitem__((3, 1, 0), 1000), r"next_state\[3, 1\] names a state outside"),
    (lambda m: m.prob.__setitem__((4, 2, 0), np.nan), r"prob\[4, 2\]"),
    (lambda m: m.prob.__setitem__((4, 2, 0), -0.1), "finite and >= 0"),
    (lambda m: m.prob.__setitem__((7, 0, 1), 0.9), r"prob\[7, 0\] sums to 1.3"),
    (lambda m: m.R.__setitem__((2, 2), np.inf), r"R\[2, 2\] is inf"),
])
@pytest.mark.parametrize("solve", [value_iteration, policy_iteration,
                                   lambda m, g: policy_evaluation(m, np.zeros(101, np.int64), g)])
def test_a_damaged_model_is_one_line_naming_the_array(damage, message, solve):
    mdp = gambler_arrays()
    damage(mdp)
    with pytest.raises(DPError, match=message):
        solve(mdp, 1.0)


def test_example_4_1_random_policy_values_and_one_greedy_step_is_optimal():
    """Figure 4.1: the equiprobable random policy's values on the 4x4 gridworld, and the policy
    greedy with respect to them is already optimal."""
    mdp = model("gridworld-4x4")
    V = policy_evaluation(mdp, np.full((16, 4), 0.25), 1.0)
    figure = [[0, -14, -20, -22], [-14, -18, -20, -20], [-20, -20, -18, -14], [-22, -20, -14, 0]]
    np.testing.assert_allclose(V.reshape(4, 4), figure, atol=1e-9)
    greedy = dp.greedy_policy(mdp, V, 1.0)
    np.testing.assert_allclose(policy_evaluation(mdp, greedy, 1.0), value_iteration(mdp, 1.0).V, atol=1e-9)


def _distance_order(mdp):
    """The sweep order as SciPy computes it: breadth-first distances to a terminal state
    (Dijkstra, unit weights, on reversed edges), a stable argsort, terminal states first."""
    from scipy import sparse
    from scipy.sparse import csgraph

    S, A, K = mdp.next_state.shape
    if not mdp.terminal.any():
        return np.arange(S)
    src, dst = np.repeat(np.arange(S), A * K), mdp.next_state.reshape(-1)
    keep = (mdp.prob.reshape(-1) > 0) & (src != dst)
    reverse = sparse.csr_matrix((np.ones(keep.sum()), (dst[keep], src[keep])), shape=(S, S))
    dist = csgraph.dijkstra(reverse, indices=np.flatnonzero(mdp.terminal), unweighted=True, min_only=True)
    order = np.argsort(dist, kind="stable")
    return np.concatenate([order[mdp.terminal[order]], order[~mdp.terminal[order]]])


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 40), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2**32), st.floats(0.0, 0.5))
def test_the_compiled_sweep_order_is_scipys_breadth_first_order(S, A, K, seed, p_terminal):
    from agents.dp import _sweep_order

    rng = np.random.default_rng(seed)
    next_state = rng.integers(S, size=(S, A, K))
    prob = rng.random((S, A, K)) * (rng.random((S, A, K)) > 0.3)  # some zero-probability successors
    prob[..., 0] += 1e-3
    prob /= prob.sum(axis=-1, keepdims=True)
    terminal = rng.random(S) < p_terminal
    mdp = SimpleNamespace(next_state=next_state, prob=prob, terminal=terminal)
    assert _sweep_order(next_state, prob, terminal).tolist() == _distance_order(mdp).tolist()


def test_the_compiled_sweep_order_on_a_slippery_maze():
    from agents.dp import _sweep_order

    mdp = gym.make("arena/GridWorld-v0", layout="maze-65x65", slip=0.2).unwrapped.mdp
    assert _sweep_order(mdp.next_state, mdp.prob, mdp.terminal).tolist() == _distance_order(mdp).tolist()
