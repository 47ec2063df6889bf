"""GridWorld: the contract in ARCHITECTURE.md, the env checkers, and the model matching step()."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401
from envs.grid import LAYOUTS, GridError, generate_maze

NAMED = [*LAYOUTS, "maze-9x11"]
OBS = ["index", "coords", "image"]


def make(**kwargs):
    return gym.make("arena/GridWorld-v0", **kwargs)


@pytest.mark.parametrize("layout", NAMED)
@pytest.mark.parametrize("obs", OBS)
def test_every_named_layout_and_obs_mode_passes_both_env_checkers(layout, obs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SB3 notes small images are below NatureCNN's 36x36
        gym_check_env(make(layout=layout, obs=obs, render_mode="rgb_array").unwrapped)
        sb3_check_env(make(layout=layout, obs=obs))
    env = make(layout=layout, obs=obs)
    obs0, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs0)


def test_contract_layout_sizes_and_rewards():
    shapes = {"open-5x5": (5, 5), "cliff": (4, 12), "windy": (7, 10), "frozenlake-4x4": (4, 4), "frozenlake-8x8": (8, 8)}
    for name, shape in shapes.items():
        assert make(layout=name).unwrapped.grid.shape == shape
    assert make(layout="maze-31x17").unwrapped.grid.shape == (31, 17)
    cliff = make(layout="cliff").unwrapped
    assert cliff.rewards["cliff"] == -100 and cliff.rewards["step"] == -1
    assert make(layout="windy").unwrapped.wind == (0, 0, 0, 1, 1, 1, 2, 2, 1, 0)


def test_cliff_sends_agent_back_to_start_with_minus_100():
    env = make(layout="cliff")
    obs, _ = env.reset(seed=0)
    start = obs
    obs, r, term, trunc, _ = env.step(1)  # right, into the cliff
    assert (obs, r, term) == (start, -100.0, False)


def test_windy_pushes_up_by_the_strength_of_the_column_moved_from():
    env = make(layout="windy").unwrapped
    mdp = env.mdp
    state_at = {tuple(c): s for s, c in enumerate(mdp.cell)}
    # from (3, 6), wind 2: right to (3, 7), then pushed up two rows
    assert mdp.next_state[state_at[(3, 6)], 1, 0] == state_at[(1, 7)]
    # from (0, 4): the push stops at the border
    assert mdp.next_state[state_at[(0, 4)], 1, 0] == state_at[(0, 5)]


def test_slip_splits_evenly_between_the_two_perpendicular_moves():
    mdp = make(layout="open-5x5", slip=0.3).unwrapped.mdp
    np.testing.assert_allclose(mdp.prob[0, 1], [0.7, 0.15, 0.15])
    assert make(layout="frozenlake-4x4").unwrapped.slip == pytest.approx(2 / 3)


@pytest.mark.parametrize("layout,kwargs", [("frozenlake-4x4", {}), ("windy", {"slip": 0.2}), ("cliff", {"slip": 0.1})])
def test_exact_model_agrees_with_sampled_steps(layout, kwargs):
    """Empirical next-state and reward frequencies over 4000 draws per (s, a) match mdp.prob."""
    env = make(layout=layout, **kwargs).unwrapped
    mdp = env.mdp
    env.reset(seed=123)
    n = 4000
    for s in np.flatnonzero(~mdp.terminal)[:6]:
        for a in range(4):
            counts = {}
            for _ in range(n):
                env.s = int(s)
                _, r, *_ = env.step(a)
                counts[(env.s, r)] = counts.get((env.s, r), 0) + 1
            expected = {}
            for k in range(mdp.next_state.shape[2]):
                key = (int(mdp.next_state[s, a, k]), float(mdp.reward[s, a, k]))
                expected[key] = expected.get(key, 0.0) + mdp.prob[s, a, k]
            assert set(counts) <= {k for k, p in expected.items() if p > 0}
            for key, p in expected.items():
                sigma = np.sqrt(n * p * (1 - p)) + 1e-9
                assert abs(counts.get(key, 0) - n * p) < 5 * sigma + 1, (s, a, key)


def test_dense_P_matches_compact_tables_and_sums_to_one():
    mdp = make(layout="frozenlake-8x8").unwrapped.mdp
    P = mdp.P
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    s, a = 9, 2
    for k in range(3):
        assert P[s, a, mdp.next_state[s, a, k]] >= mdp.prob[s, a, k]
    R = mdp.R
    assert R.shape == (64, 4) and mdp.start[0] == 1.0 and mdp.cell.shape == (64, 2)


def test_dense_P_refused_for_large_grids_with_a_pointer_to_the_compact_tables():
    mdp = make(layout="maze-128x128").unwrapped.mdp
    with pytest.raises(GridError, match="use the compact tables"):
        _ = mdp.P


def test_no_start_means_uniform_over_non_terminal_free_cells():
    mdp = make(layout="...\n.H.\n..G").unwrapped.mdp
    assert mdp.start.sum() == pytest.approx(1.0)
    assert np.count_nonzero(mdp.start) == 7


def test_maze_is_reproducible_from_its_seed_and_solvable():
    assert generate_maze(21, 21, 3) == generate_maze(21, 21, 3)
    assert generate_maze(21, 21, 3) != generate_maze(21, 21, 4)
    env = make(layout="maze-21x21", maze_seed=3).unwrapped
    assert env.grid[0, 0] == "S" and env.grid[20, 20] == "G"


def test_same_seed_same_episode_and_action_space_seeded_from_it():
    def rollout(seed):
        env = make(layout="frozenlake-8x8")
        obs, _ = env.reset(seed=seed)
        traj = [obs]
        for _ in range(50):
            obs, r, term, trunc, _ = env.step(env.action_space.sample())
            traj.append((obs, r))
            if term or trunc:
                obs, _ = env.reset()
                traj.append(obs)
        return traj

    assert rollout(7) == rollout(7)
    assert rollout(7) != rollout(8)


def test_max_steps_truncates():
    env = make(layout="open-5x5", max_steps=3)
    env.reset(seed=0)
    flags = [env.step(0)[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_image_observation_is_channels_first_planes():
    env = make(layout="cliff", obs="image")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5, 4, 12) and obs.dtype == np.uint8
    assert obs[0].sum() == 255 and obs[0, 3, 0] == 255  # agent plane: at the start
    assert obs[4, 3, 1:11].all()  # cliff plane


def test_rgb_array_frames_are_identical_across_instances():
    a, b = make(layout="four-rooms", render_mode="rgb_array"), make(layout="four-rooms", render_mode="rgb_array")
    a.reset(seed=1)
    b.reset(seed=1)
    fa, fb = a.render(), b.render()
    assert fa.shape == (13 * 49, 13 * 49, 3) and fa.dtype == np.uint8
    assert np.array_equal(fa, fb)


def test_ansi_render_marks_the_agent():
    env = make(layout="cliff", render_mode="ansi")
    env.reset(seed=0)
    assert env.render().splitlines()[3].startswith("A")


def test_human_render_opens_a_window_that_drains_its_events_and_closes():
    import pygame

    env = make(layout="open-5x5", render_mode="human")
    env.reset(seed=0)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_a))
    env.step(1)
    assert pygame.event.peek(pygame.KEYDOWN) is False  # render() pumped the queue
    env.close()
    assert env.unwrapped._window is None


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"layout": "S..\n..\n..G"}, "ragged: row 1 has 2 characters"),
        ({"layout": "S.x\n..G"}, "unknown map character 'x' at row 0, column 2"),
        ({"layout": "###\n###"}, "no free cell"),
        ({"layout": "S#.\n##G"}, "goal at row 1, column 2 cannot be reached"),
        ({"layout": "volcano"}, "unknown layout 'volcano'"),
        ({"layout": "maze-1x9"}, "too small"),
        ({"obs": "pixels"}, "obs must be one of index, coords, image, got 'pixels'"),
        ({"slip": 1.5}, r"slip must be a number in \[0, 1\] or null, got 1.5"),
        ({"layout": "cliff", "wind": [1, 2]}, "wind needs 12 non-negative integers"),
        ({"rewards": {"gold": 5}}, r"unknown reward key\(s\) \['gold'\]"),
        ({"max_steps": 0}, "max_steps must be an integer in \\[1, 10000000\\] or null, got 0"),
    ],
)
def test_bad_grid_input_is_one_clear_error(kwargs, message):
    with pytest.raises(GridError, match=message):
        make(**kwargs)


# --------------------------------------------------------------------------- king's moves and stochastic wind


@pytest.mark.parametrize("moves, steps", [("four", 15), ("king", 7), ("king+stay", 7)])
def test_windy_gridworld_shortest_paths_exercise_6_9(moves, steps):
    """Example 6.5 takes 15 moves; with king's moves (Exercise 6.9) the optimum is 7, and standing
    still does not shorten it. Checked on the model (value iteration) and by playing the greedy policy."""
    from agents.dp import value_iteration

    env = make(layout="windy", moves=moves)
    u = env.unwrapped
    assert env.action_space.n == {"four": 4, "king": 8, "king+stay": 9}[moves] == len(u.action_names)
    V, policy = value_iteration(u.mdp, 1.0)
    s, _ = env.reset(seed=0)
    assert V[s] == -steps  # -1 per move
    for t in range(1, 100):
        s, r, term, trunc, _ = env.step(int(policy[s].argmax()))
        if term:
            break
    assert t == steps


def test_stochastic_wind_varies_by_one_a_third_of_the_time_each_exercise_6_10():
    u = make(layout="windy", moves="king+stay", wind_noise=True).unwrapped
    stay = u.action_names.index("stay")
    s = int(np.flatnonzero((u.mdp.cell == (3, 3)).all(axis=1))[0])  # column 3 blows 1 up
    above = {int(np.flatnonzero((u.mdp.cell == (3 - k, 3)).all(axis=1))[0]): k for k in (0, 1, 2)}
    outcomes = dict(zip(u.mdp.next_state[s, stay].tolist(), u.mdp.prob[s, stay].tolist()))
    assert {above[ns]: p for ns, p in outcomes.items()} == pytest.approx({0: 1 / 3, 1: 1 / 3, 2: 1 / 3})
    calm = int(np.flatnonzero((u.mdp.cell == (3, 1)).all(axis=1))[0])  # no wind in column 1: no noise either
    assert set(u.mdp.next_state[calm, stay].tolist()) == {calm}
    # what env.step draws follows the model
    env = make(layout="windy", moves="king+stay", wind_noise=True)
    counts = {0: 0, 1: 0, 2: 0}
    for seed in range(600):
        env.reset(seed=seed)
        env.unwrapped.s = s
        ns = env.step(stay)[0]
        counts[above[ns]] += 1
    assert all(abs(n / 600 - 1 / 3) < 0.06 for n in counts.values())


def test_moves_and_wind_noise_refuse_what_cannot_be_in_one_line():
    with pytest.raises(GridError, match="moves"):
        make(layout="windy", moves="queen")
    with pytest.raises(GridError, match="wind_noise=true needs a wind"):
        make(layout="open-5x5", wind_noise=True)
    with pytest.raises(GridError, match=r"0\.\.7 \(up, right, down, left, up-right"):
        env = make(layout="windy", moves="king")
        env.reset(seed=0)
        env.step(8)
