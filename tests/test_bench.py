"""`arena bench`: each pair of a figure does the same work, so its ratio means something.

No timing is asserted here (machines are shared and noisy); these tests hold the results
of both sides of each pair (and of the compiled ceiling) equal on small cases.
"""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from arena import bench


@pytest.mark.parametrize("kwargs", [{"layout": "frozenlake-4x4"}, {"layout": "cliff", "slip": 0.1},
                                    {"layout": "...\n.H.\n..G", "slip": 0.3, "max_steps": 7}])
def test_the_q_learning_baseline_ceiling_and_arena_learn_the_same_q(kwargs):
    env = gym.make("arena/GridWorld-v0", **kwargs)
    Q_textbook, steps_textbook = bench.textbook_q_learning(env, 400, seed=2)
    Q_compiled, steps_compiled = bench.compiled_q_learning(env, 400, seed=2)
    Q_arena = bench.arena_q_learning(env, 400, seed=2)
    assert steps_textbook == steps_compiled > 400
    assert np.array_equal(Q_textbook, Q_compiled) and np.array_equal(Q_textbook, Q_arena)
    assert np.abs(Q_arena).sum() > 0  # something was learned


@pytest.mark.parametrize("kwargs", [{"layout": "four-rooms", "slip": 0.2}, {"layout": "cliff"},
                                    {"layout": "...\n.H.\n..G", "slip": 0.3, "max_steps": 7},
                                    {"layout": "windy", "moves": "king+stay", "wind_noise": True}])
def test_the_batched_walks_take_the_same_steps(kwargs):
    """The NumPy loop, the compiled ceiling and Arena's batched env: same states, counters,
    stream keys and rewards after 300 steps of 40 copies from a seeded reset."""
    tables = gym.make("arena/GridWorld-v0", **kwargs).unwrapped.step_tables()
    venv = gym.make_vec("arena/GridWorld-v0", num_envs=40, vectorization_mode="vector_entry_point", **kwargs)
    pool = np.random.default_rng(1).integers(tables.A, size=(16, 40))
    arena = bench.arena_walk(venv, pool, 300, seed=5, add=True)
    for other in (bench.compiled_walk(tables, 40, pool, 300, seed=5), bench.numpy_walk(tables, 40, pool, 300, seed=5)):
        for mine, theirs in zip(arena[:3], other[:3]):
            assert np.array_equal(mine, theirs)
        assert arena[3] == pytest.approx(float(other[3]), rel=1e-12, abs=1e-9) and arena[3] != 0


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_bench_at_once_with_what_it_measured_marked_incomplete(tmp_path, signame):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "arena", "bench", "--only", "env-step", "--only", "vi", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    time.sleep(8)  # env-step is done by then (about 3 s), vi is under way
    process.send_signal(getattr(signal, signame))
    out, err = process.communicate(timeout=60)
    report = json.loads(out)
    assert report["complete"] is False and report["stopped_by"] == signame
    assert process.returncode == 128 + getattr(signal, signame)
    assert "Traceback" not in err and "the run is incomplete" in err
    assert all(f["verdict"] in ("met", "not met", "inconclusive") for f in report["figures"])
