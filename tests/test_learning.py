"""Model-free tabular agents (MC and TD) against the exact answers DP gives.

Every test states its seeds and budget. Prediction targets: within 0.05 RMS, scaled by
the value range, of DP policy evaluation. Control targets: exact normalised score >= 0.95.
"""

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401
from agents import dp, monte_carlo as mc, td
from agents.training import TrainingInterrupted
from arena.errors import AgentError, ArenaError
from arena.scoring import exact_score
from arena.registry import make_agent

CONTROL = ["sarsa", "q-learning", "expected-sarsa", "n-step-sarsa", "double-q-learning",
           "mc-control", "mc-exploring-starts", "mc-off-policy"]


def grid(layout, **kwargs):
    return gym.make("arena/GridWorld-v0", layout=layout, **kwargs)


# --------------------------------------------------------------------------- prediction


def soft_optimal_policy(mdp, gamma):
    """Half greedy-optimal, half uniform: a policy that visits most states."""
    return 0.5 * dp.value_iteration(mdp, gamma).policy + 0.5 / mdp.n_actions


@pytest.mark.parametrize("layout", ["cliff", "frozenlake-4x4"])  # frozenlake-4x4 is slippery
@pytest.mark.parametrize(
    "method",
    [
        pytest.param(lambda env, pi, g: mc.mc_prediction(env, pi, 3000, g, first_visit=True), id="first-visit-mc"),
        pytest.param(lambda env, pi, g: mc.mc_prediction(env, pi, 3000, g, first_visit=False), id="every-visit-mc"),
        pytest.param(lambda env, pi, g: td.td0_prediction(env, pi, 10000, alpha=0.02, gamma=g), id="td0"),
    ],
)
def test_prediction_is_within_5_percent_rms_of_dp(layout, method):
    """Budget: 3000 episodes (MC) or 10000 (TD(0), alpha 0.02), seed 0, gamma 0.9."""
    env = grid(layout)
    mdp = env.unwrapped.mdp
    pi = soft_optimal_policy(mdp, 0.9)
    V_true = dp.policy_evaluation(mdp, pi, 0.9)
    V = method(env, pi, 0.9)
    live = ~mdp.terminal
    rms = np.sqrt(np.mean((V[live] - V_true[live]) ** 2))
    assert rms / np.ptp(V_true[live]) < 0.05


# --------------------------------------------------------------------------- control

# (layout, training episodes): deterministic rooms learn fast; the slippery lake needs many
BUDGETS = {"open-5x5": 2000, "cliff": 3000, "four-rooms": 3000, "frozenlake-4x4": 30000}


@pytest.mark.leaderboard
@pytest.mark.parametrize("layout", ["open-5x5", "cliff", "four-rooms"])
@pytest.mark.parametrize("agent_name", CONTROL)
def test_control_reaches_095_exact_score(arena_eval, agent_name, layout):
    """A leaderboard evaluation test (Arena's pytest plugin): training seed 0, 3 evaluation
    episodes; the exact score and every evaluation episode reaching the goal."""
    result = arena_eval(agent_name, f"grid:{layout}", train_seeds=[0], eval_episodes=3, budget=BUDGETS[layout])
    assert result.score.iqm >= 0.95 and result.success_rate == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("agent_name", CONTROL)
def test_control_reaches_095_exact_score_on_the_slippery_lake(agent_name):
    """Budget 30000 episodes; off-policy MC, which learns only from episode tails, 60000."""
    env = grid("frozenlake-4x4")
    agent = make_agent(agent_name, episodes=60000 if agent_name == "mc-off-policy" else BUDGETS["frozenlake-4x4"])
    agent.fit(env, seed=0)
    assert exact_score(agent, env).score >= 0.95


# --------------------------------------------------------------------------- textbook behaviours


@pytest.mark.slow
def test_cliff_sarsa_walks_safer_online_while_q_learning_learns_the_edge():
    """S&B Example 6.6: epsilon 0.1, alpha 0.5, 500 episodes, seeds 0..4. Online returns:
    SARSA about -25, Q-learning about -50; Q-learning's greedy path is the optimal one."""
    online = {}
    for name in ("sarsa", "q-learning"):
        runs = []
        for seed in range(5):
            env = grid("cliff")
            agent = make_agent(name, epsilon=0.1, epsilon_end=None, alpha=0.5, alpha_end=None, gamma=1.0, episodes=500)
            agent.fit(env, seed=seed)
            runs.append(np.mean(agent.log.returns[100:]))
            if name == "q-learning":
                assert exact_score(agent, env).score == pytest.approx(1.0)
                assert agent.act(36)[0] == 0  # up, then right along the edge
        online[name] = np.mean(runs)
    assert online["sarsa"] > online["q-learning"] + 10


def test_weighted_importance_sampling_beats_ordinary_at_equal_episodes():
    """Target: half optimal, half uniform on the slippery 4x4 lake; behaviour: uniform.
    300 episodes, seeds 0..19, gamma 0.9; mean squared error of V over the non-terminal
    states against DP (here about 0.013 weighted vs 0.019 ordinary)."""
    env = grid("frozenlake-4x4")
    mdp = env.unwrapped.mdp
    target = soft_optimal_policy(mdp, 0.9)
    behaviour = np.full_like(target, 0.25)
    V_true = dp.policy_evaluation(mdp, target, 0.9)
    live = ~mdp.terminal
    errors = {True: [], False: []}
    for weighted in (True, False):
        for seed in range(20):
            V = mc.off_policy_mc_prediction(env, target, behaviour, 300, gamma=0.9, weighted=weighted, seed=seed)
            errors[weighted].append(np.mean((V[live] - V_true[live]) ** 2))
    assert np.mean(errors[True]) < 0.8 * np.mean(errors[False])


def test_double_q_learning_falls_for_maximisation_bias_less_than_q_learning():
    """S&B Example 6.7, Figure 6.5 (A: left and right; B: 10 actions): share of 'left' from A
    over episodes 1..100, averaged over 100 runs, epsilon 0.1, alpha 0.1, gamma 1. Measured:
    Q-learning 0.78 (0.67 over episodes 1..10), Double Q-learning 0.18."""
    left, early = {}, {}
    for name in ("q-learning", "double-q-learning"):
        chosen = []
        for seed in range(100):
            env = gym.wrappers.RecordEpisodeStatistics(gym.make("arena/MaximizationBias-v0"), buffer_length=100)
            agent = make_agent(name, epsilon=0.1, epsilon_end=None, alpha=0.1, alpha_end=None, gamma=1.0, episodes=100)
            agent.fit(env, seed=seed)
            chosen.append([n == 2 for n in env.length_queue])  # left: A -> B -> end, two steps
        left[name], early[name] = np.mean(chosen), np.mean(np.array(chosen)[:, :10])
    assert left["double-q-learning"] < left["q-learning"] - 0.3 and early["q-learning"] > 0.5


def test_a_state_offers_its_own_actions_and_learners_explore_only_those():
    """A offers 2 actions (left, right), B 10: the action space holds 10 and `action_mask` says
    which each state offers; epsilon-greedy in A picks from A's two, the random agent too, and
    the exact score's 0 is uniform play over what each state offers."""
    from arena.scoring import EVAL_GAMMA, reference_values
    from envs.abilities import MasksActions

    env = gym.make("arena/MaximizationBias-v0")
    u = env.unwrapped
    assert isinstance(u, MasksActions) and env.action_space.n == 10
    assert u.action_mask.sum(axis=1).tolist() == [2, 10, 10]
    _, info = env.reset(seed=0)
    assert info["action_mask"].tolist() == [True, True] + [False] * 8
    agent = make_agent("q-learning", epsilon=1.0, epsilon_end=None, episodes=300)
    taken = []
    agent.explore = (lambda explore: lambda s: taken.append((s, explore(s))) or taken[-1][1])(agent.explore)
    agent.fit(env, seed=0)
    assert {a for s, a in taken if s == 0} == {0, 1} and {a for s, a in taken if s == 1} == set(range(10))
    assert np.isneginf(agent.Q[0, 2:]).all() and agent.act(0)[0] in (0, 1)  # never greedy, even after loading
    random = make_agent("random")
    random.fit(env, seed=0)
    assert {random.act(0)[0] for _ in range(200)} == {0, 1}
    J_random, J_optimal = reference_values(u.mdp)
    assert J_random == pytest.approx(0.5 * EVAL_GAMMA * -0.1) and J_optimal == 0.0  # left half the time, then B's mean
    four = gym.make("arena/MaximizationBias-v0", a_actions=4, n_actions=2).unwrapped
    assert four.action_space.n == 4 and four.action_mask.sum(axis=1).tolist() == [4, 2, 4]


# --------------------------------------------------------------------------- checkpoints, resume


def test_learner_checkpoint_round_trips_and_refuses_another_env(tmp_path):
    env = grid("cliff")
    agent = make_agent("q-learning", episodes=200)
    agent.fit(env, seed=1)
    path = agent.save(tmp_path / "q.npz")
    loaded = make_agent("q-learning").load(path)
    assert np.array_equal(loaded.Q, agent.Q) and loaded.digest() == agent.digest()
    with pytest.raises(AgentError, match="use a checkpoint trained on this env"):
        loaded.check_fits(grid("four-rooms"))


def test_ctrl_c_stops_at_the_next_episode_saves_and_resume_is_bit_identical(tmp_path, monkeypatch):
    """A real SIGINT during episode 120: the loop finishes that episode, saves, and stops."""
    import os
    import signal

    straight = make_agent("sarsa", episodes=300)
    straight.fit(grid("frozenlake-4x4"), seed=3)

    from agents.training import Callback

    class InterruptAt120(Callback):  # a callback due every unit: episodes one by one
        def before_unit(self, learner, index):
            if index == 120:
                os.kill(os.getpid(), signal.SIGINT)

    interrupted = make_agent("sarsa", episodes=300)
    with pytest.raises(TrainingInterrupted) as stop:
        interrupted.fit(grid("frozenlake-4x4"), seed=3, run_dir=tmp_path, callbacks=[InterruptAt120()])
    assert stop.value.done == 121 and stop.value.total == 300 and stop.value.checkpoint.exists()

    resumed = make_agent("sarsa")  # settings, seed and budget come from the checkpoint
    resumed.fit(grid("frozenlake-4x4"), seed=99, resume=stop.value.checkpoint, run_dir=tmp_path)
    assert resumed.episodes_done == 300
    assert np.array_equal(resumed.Q, straight.Q)
    assert resumed.log.returns == straight.log.returns


def test_ctrl_c_during_compiled_blocks_stops_at_a_block_boundary_and_resume_is_bit_identical(tmp_path):
    """Q-learning on a GridWorld learns blocks of episodes per call: a SIGINT from outside
    stops it between blocks, and --resume ends where the uninterrupted run ends."""
    import os
    import signal
    import threading

    from agents.protocol import LearnsInBlocks

    episodes = 60_000  # TensorBoard takes each episode's point: about 20k episodes/s with a run folder
    straight = make_agent("q-learning", episodes=episodes)
    assert isinstance(straight, LearnsInBlocks)
    straight.fit(grid("frozenlake-4x4"), seed=4)
    interrupted = make_agent("q-learning", episodes=episodes)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(TrainingInterrupted) as stop:
        interrupted.fit(grid("frozenlake-4x4"), seed=4, run_dir=tmp_path, checkpoint_every=10**6)
    assert 0 < stop.value.done < episodes
    resumed = make_agent("q-learning")
    resumed.fit(grid("frozenlake-4x4"), seed=99, resume=stop.value.checkpoint, run_dir=tmp_path)
    assert resumed.episodes_done == episodes and np.array_equal(resumed.Q, straight.Q)
    assert resumed.log.returns == straight.log.returns


def test_same_seed_same_learning_curve():
    a, b = make_agent("q-learning", episodes=200), make_agent("q-learning", episodes=200)
    a.fit(grid("frozenlake-4x4"), seed=9)
    b.fit(grid("frozenlake-4x4"), seed=9)
    assert a.log.returns == b.log.returns and np.array_equal(a.Q, b.Q)


def test_a_callback_returning_true_stops_training_after_that_unit():
    from agents.training import Callback

    class StopAt(Callback):
        def after_unit(self, learner, done, total):
            return done == 37

    agent = make_agent("q-learning", episodes=200)
    out = agent.fit(grid("frozenlake-4x4"), seed=9, callbacks=[StopAt()])
    assert out["episodes"] == 37 and agent.budget.done == 37 and len(agent.log.returns) == 37


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"alpha": 0.0}, r"^alpha must be a number in \(0, 1\], got 0.0$"),
        ({"alpha": 1.5}, r"^alpha must be a number in \(0, 1\], got 1.5$"),
        ({"epsilon": -0.1}, r"^epsilon must be a number in \[0, 1\], got -0.1$"),
        ({"epsilon": "abc"}, r"^epsilon must be a number in \[0, 1\], got 'abc'$"),
        ({"epsilon_end": 2}, r"^epsilon_end must be a number in \[0, 1\] or null, got 2$"),
        ({"gamma": 1.01}, r"^gamma must be a number in \[0, 1\], got 1.01$"),
        ({"gamma": float("nan")}, r"^gamma must be a number in \[0, 1\], got nan$"),
        ({"episodes": 0}, r"^episodes must be an integer in \[1, 1000000000\], got 0$"),
        ({"episodes": 2.5}, r"^episodes must be an integer in \[1, 1000000000\], got 2.5$"),
        ({"epsilonn": 0.1}, r"^epsilonn is not a setting; the settings are gamma, alpha, alpha_end, epsilon"),
    ],
)
def test_bad_settings_name_the_parameter_and_range(settings, message):
    with pytest.raises(AgentError, match=message):
        make_agent("q-learning", **settings)


def test_n_step_needs_at_least_one_step():
    with pytest.raises(AgentError, match="n must be an integer in"):
        make_agent("n-step-sarsa", n=0)


def test_prediction_refuses_a_policy_whose_rows_do_not_sum_to_one():
    env = grid("cliff")
    bad = np.full((38, 4), 0.2)
    with pytest.raises(AgentError, match="policy row 0 sums to 0.8"):
        mc.mc_prediction(env, bad, 10)
    with pytest.raises(AgentError, match="policy row 0 sums to 0.8"):
        td.td0_prediction(env, bad, 10)


def test_tabular_agent_refuses_continuous_observations():
    with pytest.raises(AgentError, match="needs Discrete observations and actions, got Box"):
        make_agent("q-learning").fit(gym.make("CartPole-v1"))


# --------------------------------------------------------------------------- the compiled path


FUSED = ["sarsa", "q-learning", "expected-sarsa", "double-q-learning"]


def _learn(agent_name, fused, episodes=300, seed=3, one_by_one=False, **env_kwargs):
    """Train; fused: compiled episodes (in blocks per call unless `one_by_one`, which a callback
    due every unit forces). Returns the agent and the env's final state and np_random state."""
    from agents.training import Callback

    env = gym.make("arena/GridWorld-v0", **env_kwargs)
    agent = make_agent(agent_name, episodes=episodes)
    agent.fused = fused
    agent.fit(env, seed=seed, progress=False, callbacks=[Callback()] if one_by_one else [])
    u = env.unwrapped
    return agent, (u.s, u.t, u.last_action, u.key, str(u.np_random.bit_generator.state))


@pytest.mark.parametrize("agent_name", FUSED)
@pytest.mark.parametrize("env_kwargs", [{"layout": "frozenlake-8x8"}, {"layout": "cliff"},
                                        {"layout": "four-rooms", "slip": 0.1, "max_steps": 30},
                                        {"layout": "windy"},
                                        {"layout": "windy", "moves": "king+stay", "wind_noise": True, "slip": 0.2}])
def test_compiled_episodes_learn_bit_for_bit_what_env_step_learns(agent_name, env_kwargs):
    """The fused episode (the env's tables inside the learner's loop) against the reference
    (every step through env.step): the same tables, returns, agent RNG state and final env state."""
    slow, slow_env = _learn(agent_name, False, **env_kwargs)
    for one_by_one in (True, False):  # a compiled call per episode; blocks of episodes per call
        fast, fast_env = _learn(agent_name, True, one_by_one=one_by_one, **env_kwargs)
        assert fast.tables.keys() == slow.tables.keys()
        for name in fast.tables:
            assert np.array_equal(fast.tables[name], slow.tables[name]), name
        assert fast.log.returns == slow.log.returns and fast.log.values == slow.log.values
        assert fast.rng.bit_generator.state == slow.rng.bit_generator.state and fast_env == slow_env
        assert fast.digest() == slow.digest()


def test_the_grid_step_is_written_once_and_every_path_takes_it():
    """envs.grid.grid_step is the dynamics: env.step, the batched kernel and the fused TD
    episodes call it; none of them writes a successor rule of its own."""
    import inspect

    import agents.td as td
    import envs.grid as grid

    rule = "row += u >= cum[j]"
    assert inspect.getsource(grid).count(rule) == 1 and rule in inspect.getsource(grid.grid_step)
    assert rule not in inspect.getsource(td)
    for caller in (grid.GridWorldEnv.step, grid.batched_step, td._td_episode.py_func):
        assert "_step(" in inspect.getsource(caller), caller
    env = gym.make("arena/GridWorld-v0", layout="frozenlake-8x8")
    env.reset(seed=5)
    tables, u = env.unwrapped.step_tables(), env.unwrapped
    s, key = u.s, np.uint64(u.key)
    for t, a in enumerate([1, 2, 2, 1, 0, 3, 2]):
        want = grid.compiled("grid_step")(s, a, key, t, tables.A, tables.K, tables.next_state, tables.reward,
                                          tables.cum, tables.terminal, tables.max_steps)
        obs, r, term, trunc, _ = env.step(a)
        assert (obs, r, term, trunc) == (want[0], want[1], want[2], want[3])
        s = obs
        if term or trunc:
            break


def test_the_compiled_path_steps_aside_for_a_wrapper_it_cannot_see_through():
    from agents.td import step_tables

    env = gym.make("arena/GridWorld-v0", layout="cliff")
    assert step_tables(env) is not None
    assert step_tables(gym.wrappers.RecordEpisodeStatistics(env)) is None  # a user's wrapper sees every step
    assert step_tables(gym.make("arena/GridWorld-v0", layout="cliff", obs="coords")) is None
    assert step_tables(gym.make("arena/MaximizationBias-v0")) is None


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(0, 10**6))
def test_the_compiled_stream_is_the_envs_stream(key, t):
    from envs.vector import counter_uniform, counter_uniforms, stream_kernels

    _uniform = stream_kernels()[1]  # what the compiled grid step draws with

    assert _uniform(np.uint64(key), t) == counter_uniform(key, t)
    assert counter_uniforms(np.array([key], np.uint64), np.array([t]))[0] == counter_uniform(key, t)


# --------------------------------------------------------------------------- Example 6.2 and Figure 6.2

WALK_TRUE = np.arange(1, 6) / 6  # S&B Example 6.2: V(A..E) = 1/6 .. 5/6
WALK_POLICY = np.ones((7, 1))  # a Markov reward process: its one action walks left or right


def random_walk():
    return gym.make("arena/TabularMDP-v0", model="random-walk")


def walk_rms(V):
    return np.sqrt(np.mean((np.asarray(V)[..., 1:6] - WALK_TRUE) ** 2, axis=-1))


def test_constant_alpha_mc_and_initial_values():
    """V0 is where estimates start (Example 6.2: 0.5); constant-alpha MC with alpha=1 keeps only the
    last return after each state; both MC and TD(0) get within 0.08 RMS of the true values after 1000 episodes."""
    env = random_walk()
    untouched = mc.mc_prediction(env, WALK_POLICY, 0, V0=0.5)
    assert np.all(untouched == 0.5)
    last = mc.mc_prediction(env, WALK_POLICY, 30, alpha=1.0, V0=0.5)
    assert set(np.unique(last[1:6])) <= {0.0, 1.0}  # a single return of 0 or 1
    for V in (mc.mc_prediction(env, WALK_POLICY, 1000, alpha=0.01, V0=0.5),
              td.td0_prediction(env, WALK_POLICY, 1000, alpha=0.02, V0=0.5)):
        assert walk_rms(V) < 0.08  # constant alpha keeps a noise floor (Example 6.2, right: about 0.05)
    with pytest.raises(AgentError, match="V0 must be one finite number or 7"):
        td.td0_prediction(env, WALK_POLICY, 1, V0=np.zeros(3))
    with pytest.raises(AgentError, match="alpha must be"):
        mc.mc_prediction(env, WALK_POLICY, 1, alpha=0.0)


def test_batch_methods_converge_to_their_textbook_fixed_points():
    """Batch MC: the mean return after each state; batch TD(0): the certainty-equivalence values.
    Both from the same episodes; a constant alpha converges where alpha=None does."""
    env = random_walk()
    V_mc, V_td = mc.batch_mc(env, WALK_POLICY, 10, V0=0.5), td.batch_td0(env, WALK_POLICY, 10, V0=0.5)
    returns: dict[int, list[float]] = {}
    model_counts = np.zeros((7, 7))
    for ep in mc.policy_episodes(env.unwrapped, WALK_POLICY, 10, 0):
        for s, G in mc.visit_returns(ep, 1.0, first_visit=False):
            returns.setdefault(s, []).append(G)
        states = [s for s, _, _ in ep] + [6 if ep[-1][2] == 1 else 0]
        for s, s2 in zip(states, states[1:]):
            model_counts[s, s2] += 1
    for s, G in returns.items():
        assert V_mc[-1, s] == pytest.approx(np.mean(G), abs=1e-8)
    seen = model_counts.sum(axis=1) > 0
    P = np.divide(model_counts, model_counts.sum(axis=1, keepdims=True), where=seen[:, None],
                  out=np.zeros_like(model_counts))
    live = np.flatnonzero(seen)
    V_ce = np.linalg.solve(np.eye(len(live)) - P[np.ix_(live, live)], P[live, 6])  # reward 1 only on entering G
    np.testing.assert_allclose(V_td[-1, live], V_ce, atol=1e-7)
    np.testing.assert_allclose(td.batch_td0(env, WALK_POLICY, 10, alpha=0.01, V0=0.5)[-1], V_td[-1], atol=1e-6)
    with pytest.raises(AgentError, match="diverged"):
        td.batch_td0(env, WALK_POLICY, 60, alpha=1.0)


@pytest.mark.slow
def test_figure_6_2_batch_td_is_below_batch_mc():
    """Figure 6.2: RMS error over the five states, averaged over 100 runs, batch training after each
    of 100 episodes; batch TD(0) lies below batch MC (both from V0 = 0.5, on the same episodes)."""
    env = random_walk()
    runs = 100
    rms_td, rms_mc = np.zeros(100), np.zeros(100)
    for run in range(runs):
        rms_td += walk_rms(td.batch_td0(env, WALK_POLICY, 100, V0=0.5, seed=run, tol=1e-8)) / runs
        rms_mc += walk_rms(mc.batch_mc(env, WALK_POLICY, 100, V0=0.5, seed=run, tol=1e-8)) / runs
    assert rms_td[-1] < rms_mc[-1]
    assert (rms_td[9:] < rms_mc[9:]).mean() >= 0.95  # below throughout, once a few episodes are in
    assert rms_td[-1] < 0.06 and rms_mc[-1] < 0.1  # the book's curves end near 0.04 and 0.06 (constant alpha)


# --------------------------------------------------------------------------- starting from given tables or weights


def test_a_run_starts_from_tables_saved_outside_training(tmp_path, workdir):
    """Q* written by hand into a Q-learning checkpoint (no training, no budget): it cannot be
    resumed, but fit(init=...) starts a new run from it, recorded in the header; 5 greedy
    episodes keep the optimal policy, which 5 episodes from scratch do not reach."""
    from agents.checkpoint import file_digest, read_arrays
    from arena.scoring import exact_score

    env = grid("cliff")
    mdp = env.unwrapped.mdp
    V, _ = dp.value_iteration(mdp, 0.99)
    by_hand = make_agent("q-learning", gamma=0.99)
    by_hand.tables = {"Q": dp.q_values(mdp, V, 0.99)}
    path = by_hand.save(tmp_path / "q-star.npz")
    with pytest.raises(ArenaError, match="saved outside training"):
        make_agent("q-learning").fit(env, seed=0, resume=path)
    settings = dict(gamma=0.99, epsilon=0.0, epsilon_end=None, alpha=0.01, alpha_end=None)
    started = make_agent("q-learning", **settings)
    started.fit(env, seed=0, budget=5, init=path, run_dir=tmp_path / "run")
    assert exact_score(started, env).score == pytest.approx(1.0)
    scratch = make_agent("q-learning", **settings)
    scratch.fit(env, seed=0, budget=5)
    assert exact_score(scratch, env).J < exact_score(started, env).J - 10  # from scratch it still wanders
    _, meta = read_arrays(tmp_path / "run" / "checkpoint.npz", "arena-checkpoint", (2,))
    assert meta["state"]["started_from"] == {"path": str(path), "sha256": file_digest(path)}
    assert make_agent("q-learning").load(tmp_path / "run" / "checkpoint.npz").started_from["sha256"] == file_digest(path)
    with pytest.raises(ArenaError, match="choose one"):
        make_agent("q-learning").fit(env, seed=0, init=path, resume=tmp_path / "run" / "checkpoint.npz")
    with pytest.raises(AgentError, match="table for this env"):
        make_agent("q-learning").fit(grid("open-5x5"), seed=0, budget=1, init=path)


def test_reinforce_starts_from_given_weights_and_refuses_another_network(tmp_path):
    from agents.reinforce import ReinforceAgent

    env = gym.make("arena/SequencePrediction-v0", task="copy", length=2)
    source = ReinforceAgent(network="mlp", episodes=64, device="cpu")
    source.fit(env, seed=1)
    path = source.save(tmp_path / "src.npz")
    agent = ReinforceAgent(network="mlp", episodes=64, lr=1e-12, device="cpu")
    agent.fit(env, seed=5, init=path)
    for (name, a), (_, b) in zip(agent.net.state_dict().items(), source.net.state_dict().items()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=name)  # lr ~ 0: the given weights
    with pytest.raises(AgentError, match="give the same network settings"):
        ReinforceAgent(network="mlp", hidden=32, episodes=64, device="cpu").fit(env, seed=0, init=path)
    with pytest.raises(ArenaError, match="cannot start from given weights|plans in one go"):
        make_agent("value-iteration").fit(grid("cliff"), seed=0, init=path)


def test_a_resumed_run_on_an_env_that_masks_actions_explores_as_the_uninterrupted_one(tmp_path):
    settings = dict(epsilon=0.5, epsilon_end=None, alpha=0.1, alpha_end=None, gamma=1.0)
    straight = make_agent("q-learning", **settings)
    straight.fit(gym.make("arena/MaximizationBias-v0"), seed=2, budget=100)
    first = make_agent("q-learning", **settings)
    first.fit(gym.make("arena/MaximizationBias-v0"), seed=2, budget=40, run_dir=tmp_path)
    resumed = make_agent("q-learning")
    resumed.fit(gym.make("arena/MaximizationBias-v0"), seed=0, budget=100, resume=tmp_path / "checkpoint.npz")
    assert np.array_equal(resumed.Q, straight.Q) and resumed.log.returns == straight.log.returns


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.integers(0, 2**32))
def test_a_block_of_units_logs_what_unit_by_unit_logs(blocks, seed):
    """TrainingLog.record_block (compiled blocks) against record per unit, across the halvings
    a long run goes through (MAX_POINTS made small)."""
    from agents.training import TrainingLog

    rng = np.random.default_rng(seed)
    one, block = TrainingLog(), TrainingLog()
    one.MAX_POINTS = block.MAX_POINTS = 8
    for n in blocks:
        columns = {"return": rng.normal(size=n).round(2), "epsilon": rng.random(n)}
        for i in range(n):
            one.record({name: float(col[i]) for name, col in columns.items()})
        assert block.record_block(columns) == {name: float(col[-1]) for name, col in columns.items()}
        assert (one.values, one.stride, one._pending, one.totals, one.units) == (
            block.values, block.stride, block._pending, block.totals, block.units)


def test_a_callback_that_does_not_subclass_callback_is_one_clear_error():
    class Duck:
        def after_unit(self, learner, done, total):
            return False

    with pytest.raises(AgentError, match="Duck does not subclass agents.training.Callback"):
        make_agent("q-learning", episodes=5).fit(grid("frozenlake-4x4"), seed=0, callbacks=[Duck()])
