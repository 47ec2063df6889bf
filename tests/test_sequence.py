"""SequencePrediction and the native batched envs: tasks, checkers, bit-identity, autoreset."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401
from envs.grid import GridError
from envs.sequence import TASKS, SequenceError

SEQ = "arena/SequencePrediction-v0"


@pytest.mark.parametrize("task", TASKS)
def test_every_task_passes_both_env_checkers(task):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings either
        gym_check_env(gym.make(SEQ, task=task, render_mode="rgb_array").unwrapped)
        sb3_check_env(gym.make(SEQ, task=task))


def play(env, policy):
    obs, _ = env.reset(seed=0)
    G, done, info = 0.0, False, {}
    while not done:
        obs, r, term, trunc, info = env.step(policy(env.unwrapped, obs))
        G += r
        done = term or trunc
    return G, info


def oracle(env, obs):
    """Answers from the env's own targets: what a perfect memory would say."""
    t = env.t
    return int(env.targets[t]) if env.targets[t] >= 0 else 0


@pytest.mark.parametrize("task", TASKS)
def test_a_perfect_answer_scores_return_1_and_accuracy_1(task):
    G, info = play(gym.make(SEQ, task=task, length=6), oracle)
    assert G == pytest.approx(1.0) and info["accuracy"] == 1.0


def test_tasks_ask_for_what_they_say():
    env = gym.make(SEQ, task="addition", length=3, vocab=10).unwrapped
    env.reset(seed=5)
    a, b = env.shown[:3], env.shown[3:6]
    value = lambda digits: sum(int(d) * 10**i for i, d in enumerate(digits))  # noqa: E731
    answer = env.targets[6:]
    assert value(answer) == value(a) + value(b) and len(answer) == 4
    env = gym.make(SEQ, task="reverse", length=5).unwrapped
    env.reset(seed=1)
    assert list(env.targets[5:]) == list(env.shown[:5][::-1])
    env = gym.make(SEQ, task="parity", length=7).unwrapped
    env.reset(seed=2)
    assert env.targets[-1] == env.shown[:7].sum() % 2


def test_memory_tasks_blank_the_output_phase():
    """In copy's output phase every observation is (blank, 1): nothing to read the answer from."""
    env = gym.make(SEQ, task="copy", length=4, vocab=4)
    obs, _ = env.reset(seed=0)
    seen = [tuple(obs)]
    for _ in range(7):
        obs, *_ = env.step(0)
        seen.append(tuple(obs))
    assert all(o[1] == 0 for o in seen[:4]) and all(o == (4, 1) for o in seen[4:])


def test_curriculum_grows_the_length_as_the_agent_succeeds():
    env = gym.make(SEQ, task="copy", length=5, curriculum=True)
    lengths = []
    for _ in range(200):
        _, info = env.reset()
        lengths.append(info["length"])
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(oracle(env.unwrapped, None))
            done = term or trunc
    assert lengths[0] == 1 and lengths[-1] == 5 and lengths == sorted(lengths)


def test_tape_renders_in_rgb_and_ansi():
    env = gym.make(SEQ, task="copy", length=3, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(0)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 0
    text = gym.make(SEQ, task="copy", length=3, render_mode="ansi")
    text.reset(seed=0)
    assert "want:" in text.render()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"task": "poetry"}, "task must be one of copy, reverse, parity, addition, sine, text, got 'poetry'"),
        ({"length": 0}, r"length must be an integer in \[1, 256\], got 0"),
        ({"vocab": 1}, r"vocab must be an integer in \[2, 64\] or null, got 1"),
        ({"task": "parity", "vocab": 3}, "must be 2 or unset"),
        ({"task": "addition", "vocab": 20}, r"use 2..16"),
        ({"task": "text", "vocab": 5}, "leave vocab unset"),
    ],
)
def test_bad_task_parameters_are_one_clear_error(kwargs, message):
    with pytest.raises(SequenceError, match=message):
        gym.make(SEQ, **kwargs)


# --------------------------------------------------------------------------- batched envs


def assert_bit_identical(env_id, n, steps, **kwargs):
    """Copy i of the batched env against the single env reset with seed 10 + i, with
    Gymnasium's next-step autoreset: after an episode ends, the next step resets."""
    venv = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    obs, _ = venv.reset(seed=10)
    actions = np.random.default_rng(0).integers(venv.single_action_space.n, size=(steps, n))
    batched = [venv.step(a)[:4] for a in actions]
    for i in range(n):
        env = gym.make(env_id, **kwargs)
        o, _ = env.reset(seed=10 + i)
        assert np.array_equal(o, obs[i])
        done = False
        for t, a in enumerate(actions):
            if done:
                (o, _), r, term, trunc, done = env.reset(), 0.0, False, False, False
            else:
                o, r, term, trunc, _ = env.step(a[i])
                done = term or trunc
            vo, vr, vterm, vtrunc = batched[t]
            assert np.array_equal(o, vo[i]) and r == vr[i] and term == vterm[i] and trunc == vtrunc[i], (i, t)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"layout": "frozenlake-8x8"},
        {"layout": "...\n.H.\n..G", "slip": 0.3, "obs": "coords"},  # several start cells
        {"layout": "four-rooms", "obs": "image", "max_steps": 30},
        {"layout": "cliff", "slip": 0.1},
    ],
)
def test_batched_gridworld_is_bit_identical_per_copy(kwargs):
    assert_bit_identical("arena/GridWorld-v0", 6, 300, **kwargs)


@pytest.mark.parametrize("task", TASKS)
def test_batched_sequences_are_bit_identical_per_copy(task):
    assert_bit_identical(SEQ, 5, 80, task=task, length=4)


def test_batched_env_declares_next_step_autoreset_and_reports_accuracy():
    from gymnasium.vector import AutoresetMode

    venv = gym.make_vec(SEQ, num_envs=3, vectorization_mode="vector_entry_point", task="copy", length=2)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    venv.reset(seed=0)
    for _ in range(4):  # copy with length 2: two tokens shown, two answered
        _, _, term, _, info = venv.step(np.zeros(3, dtype=int))
    assert term.all() and info["_accuracy"].all() and ((0 <= info["accuracy"]) & (info["accuracy"] <= 1)).all()
    _, r, term, trunc, info = venv.step(np.zeros(3, dtype=int))  # the reset step
    assert (r == 0).all() and not term.any() and not trunc.any() and not info["_accuracy"].any()


def test_tape_in_a_human_window_drains_events_and_closes():
    import pygame

    env = gym.make(SEQ, task="reverse", length=3, render_mode="human")
    env.reset(seed=0)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_a))
    env.step(1)
    assert pygame.event.peek(pygame.KEYDOWN) is False
    env.close()
    assert env.unwrapped._window is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=8))
def test_compiled_seeding_draws_what_numpys_generators_draw(seeds):
    """first_keys = the key a seeded reset draws from Generator(PCG64(SeedSequence(seed)))."""
    from gymnasium.utils import seeding

    from envs.vector import episode_key, first_keys

    assert first_keys(seeds).tolist() == [episode_key(seeding.np_random(s)[0]) for s in seeds]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 9))
def test_compiled_unit_seeds_are_episode_seed(seed, first):
    from agents.training import episode_seed
    from envs.vector import seeding_kernels

    got = seeding_kernels()[1](np.uint64(seed), np.uint64(first), 3).tolist()
    assert got == [episode_seed(seed, first + i) for i in range(3)]


def test_batched_grid_outputs_are_the_callers_and_a_bad_action_moves_no_copy():
    venv = gym.make_vec("arena/GridWorld-v0", num_envs=4, vectorization_mode="vector_entry_point",
                        layout="frozenlake-8x8", slip=0.3)
    venv.reset(seed=3)
    obs, r, term, trunc, info = venv.step(np.array([1, 2, 1, 2]))
    kept = [x.copy() for x in (obs, r, term, trunc, info["state"])]
    state = venv.unwrapped.s.copy(), venv.unwrapped.t.copy()
    with pytest.raises(GridError, match=r"integers in 0\.\.3 .*copy 2 got 7"):
        venv.step(np.array([1, 1, 7, 1], dtype=np.int32))
    with pytest.raises(GridError, match=r"copy 1 got 1\.5"):
        venv.step([0, 1.5, 0, 0])
    assert np.array_equal(venv.unwrapped.s, state[0]) and np.array_equal(venv.unwrapped.t, state[1])
    venv.step([True, False, True, 3.0])  # bools and integral floats are actions too
    for before, now in zip(kept, (obs, r, term, trunc, info["state"])):
        assert np.array_equal(before, now)  # a later step writes new arrays


def test_seeded_reset_of_many_copies_matches_single_envs():
    venv = gym.make_vec("arena/GridWorld-v0", num_envs=20_000, vectorization_mode="vector_entry_point",
                        layout="...\n.H.\n..G")  # several start cells: the key picks one
    obs, _ = venv.reset(seed=5)
    env = gym.make("arena/GridWorld-v0", layout="...\n.H.\n..G")
    for i in (0, 1, 777, 19_999):
        assert env.reset(seed=5 + i)[0] == obs[i]
        assert env.unwrapped.key == int(venv.unwrapped.keys[i])
