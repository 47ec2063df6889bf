"""`arena bench`: speed figures as ratios against a baseline measured in the same run.

Machines are shared and noisy, so each figure times ours and the baseline back to back,
best of a few repeats, and reports the ratio; the target is on the ratio (or, for the
256x256 solve, on seconds, with the plain NumPy sweep loop shown beside it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np

import envs  # noqa: F401
from agents import dp


@dataclass
class BenchRow:
    name: str
    baseline_label: str
    baseline: float
    ours: float
    unit: str
    ratio: float
    target: str
    met: bool
    detail: str = ""


def _best_time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _steps_per_second(env: gym.Env, actions: np.ndarray, repeats: int) -> float:
    def run() -> None:
        env.reset(seed=0)
        step, reset = env.step, env.reset
        for a in actions:
            _, _, term, trunc, _ = step(a)
            if term or trunc:
                reset()

    run()  # warm up (and pass the env checker's first-step wrapper)
    return len(actions) / _best_time(run, repeats)


def bench_grid_step(n_steps: int = 100_000, repeats: int = 3) -> BenchRow:
    """Single-env step throughput through gymnasium.make, same map, same slip, same actions."""
    actions = np.random.default_rng(0).integers(4, size=n_steps).tolist()
    theirs = gym.make("FrozenLake8x8-v1", is_slippery=True)
    ours = gym.make("arena/GridWorld-v0", layout="frozenlake-8x8")
    base = _steps_per_second(theirs, actions, repeats)
    mine = _steps_per_second(ours, actions, repeats)
    return BenchRow(
        "GridWorld step (frozenlake-8x8)", "Gymnasium FrozenLake8x8-v1", base, mine, "steps/s",
        mine / base, ">= 1.0x", mine / base >= 1.0,
    )


def numpy_sweeps(mdp: dp.TabularMDP, gamma: float, tol: float) -> tuple[np.ndarray, int]:
    """Synchronous value iteration as a plain NumPy loop: the baseline for large grids."""
    V = np.zeros(mdp.n_states)
    sweeps = 0
    while True:
        sweeps += 1
        V_new = np.where(mdp.terminal, 0.0, dp.q_values(mdp, V, gamma).max(axis=1))
        delta = np.abs(V_new - V).max()
        V = V_new
        if delta < tol:
            return V, sweeps


def bench_value_iteration_64(repeats: int = 3) -> BenchRow:
    """Value iteration on a 64x64 slippery maze vs the textbook per-state Python loop."""
    mdp = gym.make("arena/GridWorld-v0", layout="maze-64x64", slip=0.2).unwrapped.mdp
    dp.value_iteration(mdp, 0.99)  # JIT warm-up (cached on disk after the first run)
    base = _best_time(lambda: dp.value_iteration_python(mdp, 0.99, 1e-10), 1)
    mine = _best_time(lambda: dp.value_iteration(mdp, 0.99, 1e-10), repeats)
    return BenchRow(
        "value iteration, 64x64 slippery maze", "per-state Python loop", base, mine, "s",
        base / mine, ">= 50x", base / mine >= 50, f"{mdp.n_states} states",
    )


def bench_solve_256(with_baseline: bool = True) -> BenchRow:
    """Exact solve of a 256x256 slippery maze (gamma 0.99, Bellman residual < 1e-8)."""
    mdp = gym.make("arena/GridWorld-v0", layout="maze-256x256", slip=0.2).unwrapped.mdp
    dp.value_iteration(gym.make("arena/GridWorld-v0", layout="maze-9x9", slip=0.2).unwrapped.mdp, 0.99)
    sol = dp.value_iteration(mdp, 0.99, tol=1e-10)
    base, base_sweeps = float("nan"), 0
    if with_baseline:
        t0 = time.perf_counter()
        _, base_sweeps = numpy_sweeps(mdp, 0.99, 1e-10)
        base = time.perf_counter() - t0
    met = sol.seconds < 5.0 and sol.residual < 1e-8
    return BenchRow(
        "solve 256x256 slippery maze", f"NumPy synchronous sweeps ({base_sweeps} sweeps)", base, sol.seconds, "s",
        base / sol.seconds, "< 5 s, residual < 1e-8", met,
        f"{mdp.n_states} states, {sol.sweeps} sweeps, residual {sol.residual:.1e}",
    )


def run_all(quick: bool = False) -> list[BenchRow]:
    """Every benchmark; quick uses fewer steps and skips the slow NumPy baseline."""
    return [
        bench_grid_step(n_steps=20_000 if quick else 100_000),
        bench_value_iteration_64(),
        bench_solve_256(with_baseline=not quick),
    ]
