"""`arena bench`: speed figures as ratios against a baseline measured in the same run.

Machines are shared and noisy, so each figure times ours and the baseline back to back,
best of a few repeats, and reports the ratio; the target is on the ratio (or, for the
256x256 solve, on seconds, with the plain NumPy sweep loop shown beside it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

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


class _CountSteps(gym.Wrapper):
    """Counts env steps; wraps both sides of a comparison, so its cost cancels out."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps = 0

    def step(self, action):  # type: ignore[no-untyped-def]
        self.steps += 1
        return self.env.step(action)


def minimal_q_learning(env: gym.Env, episodes: int, seed: int = 0) -> None:
    """The shortest honest Q-learning loop (alpha 0.1, gamma 0.99, epsilon 0.1): the baseline."""
    Q = np.zeros((env.observation_space.n, env.action_space.n))
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    for _ in range(episodes):
        s, _ = env.reset()
        done = False
        while not done:
            a = int(rng.integers(4)) if rng.random() < 0.1 else int(np.argmax(Q[s]))
            s2, r, term, trunc, _ = env.step(a)
            Q[s, a] += 0.1 * (r + 0.99 * np.max(Q[s2]) * (not term) - Q[s, a])
            s, done = s2, term or trunc


def bench_q_learning(episodes: int = 3000, repeats: int = 3) -> BenchRow:
    """Q-learning training env-steps/s: our agent on GridWorld vs a minimal loop on FrozenLake8x8-v1."""
    from agents.td import QLearningAgent

    def theirs() -> float:
        env = _CountSteps(gym.make("FrozenLake8x8-v1", is_slippery=True))
        t0 = time.perf_counter()
        minimal_q_learning(env, episodes)
        return env.steps / (time.perf_counter() - t0)

    def ours() -> float:
        env = _CountSteps(gym.make("arena/GridWorld-v0", layout="frozenlake-8x8"))
        agent = QLearningAgent(alpha=0.1, alpha_end=None, epsilon=0.1, epsilon_end=None, episodes=episodes)
        t0 = time.perf_counter()
        agent.fit(env, seed=0, progress=False)
        return env.steps / (time.perf_counter() - t0)

    base = max(theirs() for _ in range(repeats))
    mine = max(ours() for _ in range(repeats))
    return BenchRow(
        "Q-learning training (frozenlake-8x8)", "minimal loop on FrozenLake8x8-v1", base, mine, "steps/s",
        mine / base, ">= 1.0x", mine / base >= 1.0, f"{episodes} episodes, epsilon 0.1",
    )


def bench_batched_grid(steps: int = 2000, repeats: int = 3) -> BenchRow:
    """Env-steps/s: native batched GridWorld, 1024 copies, vs SyncVectorEnv over 64 FrozenLake8x8-v1."""

    def rate(venv: gym.vector.VectorEnv, n_steps: int) -> float:
        actions = np.random.default_rng(0).integers(4, size=(n_steps, venv.num_envs))
        venv.reset(seed=0)
        t0 = time.perf_counter()
        for a in actions:
            venv.step(a)
        return n_steps * venv.num_envs / (time.perf_counter() - t0)

    sync = gym.vector.SyncVectorEnv([lambda: gym.make("FrozenLake8x8-v1", is_slippery=True) for _ in range(64)])
    ours = gym.make_vec("arena/GridWorld-v0", num_envs=1024, vectorization_mode="vector_entry_point", layout="frozenlake-8x8")
    base = max(rate(sync, max(100, steps // 4)) for _ in range(repeats))
    mine = max(rate(ours, steps) for _ in range(repeats))
    return BenchRow(
        "batched GridWorld, 1024 copies", "SyncVectorEnv, 64 FrozenLake8x8-v1", base, mine, "steps/s",
        mine / base, ">= 100x", mine / base >= 100,
    )


def bench_rollout(batches: int = 5) -> BenchRow:
    """REINFORCE rollout env-steps/s: 64 batched copies vs the same agent stepping one env at a time."""
    import torch

    from agents.reinforce import ReinforceAgent

    env = gym.make("arena/SequencePrediction-v0", task="copy", length=8)
    agent = ReinforceAgent(network="lstm", num_envs=64, device="cpu")
    agent.build(env)
    agent.max_steps = env.unwrapped.max_steps
    venv = agent.batched(env)
    agent.rollout(venv, 0)  # warm up
    t0 = time.perf_counter()
    steps = sum(int(agent.rollout(venv, i).mask.sum()) for i in range(batches))
    batched = steps / (time.perf_counter() - t0)

    one_steps, t0 = 0, time.perf_counter()
    for episode in range(batches * 2):
        obs, _ = env.reset(seed=episode)
        state, done = agent.reset(seed=episode), False
        while not done:
            with torch.no_grad():
                action, state = agent.act(obs, state, greedy=False)
            obs, _, term, trunc, _ = env.step(action)
            one_steps += 1
            done = term or trunc
    single = one_steps / (time.perf_counter() - t0)
    return BenchRow(
        "REINFORCE rollout, LSTM on seq:copy", "one env at a time", single, batched, "steps/s",
        batched / single, ">= 10x", batched / single >= 10, "64 batched copies",
    )


def bench_gpu(updates: int = 20) -> list[BenchRow]:
    """REINFORCE (env steps/s, per network) and GAN (images/s) training throughput on CUDA vs CPU."""
    import torch

    from arena.errors import AgentError
    from agents.reinforce import ReinforceAgent

    if not torch.cuda.is_available():
        raise AgentError("arena bench --gpu needs a CUDA GPU and none is available here; run it on a GPU machine")
    cases = [
        ("mlp", gym.make("arena/SequencePrediction-v0", task="copy", length=8)),
        ("lstm", gym.make("arena/SequencePrediction-v0", task="copy", length=8)),
        ("transformer", gym.make("arena/SequencePrediction-v0", task="copy", length=8)),
        ("cnn", gym.make("arena/GridWorld-v0", layout="four-rooms", obs="image", max_steps=50)),
    ]
    rows = []
    for network, env in cases:
        rates = {}
        for device in ("cpu", "cuda"):
            agent = ReinforceAgent(network=network, num_envs=256, episodes=256 * updates, device=device)
            agent.fit(env, seed=0, episodes=256)  # warm up (CUDA context, kernels)
            t0 = time.perf_counter()
            log = agent.fit(env, seed=0)
            if device == "cuda":
                torch.cuda.synchronize()
            rates[device] = log["env_steps"] / (time.perf_counter() - t0)
            assert log["updates"] == updates
        rows.append(BenchRow(
            f"REINFORCE training, {network}", "CPU", rates["cpu"], rates["cuda"], "steps/s",
            rates["cuda"] / rates["cpu"], "report", True, f"256 envs, {updates} updates, {torch.cuda.get_device_name()}",
        ))
    from agents.gan import GANAgent

    image_env = gym.make("arena/ImageGeneration-v0")
    rates = {}
    for device in ("cpu", "cuda"):
        agent = GANAgent(device=device, batch_size=256)
        agent.fit(image_env, seed=0, episodes=2, progress=False)  # warm up
        t0 = time.perf_counter()
        agent.fit(image_env, seed=0, episodes=updates, progress=False)
        if device == "cuda":
            torch.cuda.synchronize()
        rates[device] = updates * 256 / (time.perf_counter() - t0)
    rows.append(BenchRow("GAN training, img:digits", "CPU", rates["cpu"], rates["cuda"], "images/s",
                         rates["cuda"] / rates["cpu"], "report", True, f"batch 256, {updates} updates"))
    return rows


def plain_gan_loop(updates: int, batch: int = 64, device: str = "cpu", seed: int = 0) -> Any:
    """The baseline: the same DCGAN (agents/gan.py's networks, BCE loss, Adam) trained as a
    plain PyTorch loop in the pytorch/examples style: real images from a tensor, no env, no
    Arena loop. Returns the generator."""
    import torch
    from torch import nn

    from agents.gan import Discriminator
    from agents.networks import ConvDecoder
    from envs.data import image_dataset

    torch.manual_seed(seed)
    data = torch.from_numpy(np.array(image_dataset("digits").train)).to(device)
    G, D = ConvDecoder(16, 16, 64).to(device), Discriminator(16, 64, 0, "batch").to(device)
    opt_G = torch.optim.Adam(G.parameters(), lr=5e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=5e-4, betas=(0.5, 0.999))
    bce = nn.functional.binary_cross_entropy_with_logits
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
    for _ in range(updates):
        real = data[torch.randint(len(data), (batch,), device=device)]
        fake = G(torch.randn(batch, 16, device=device))
        loss_D = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        opt_D.zero_grad()
        loss_D.backward()
        opt_D.step()
        loss_G = bce(D(fake), ones)
        opt_G.zero_grad()
        loss_G.backward()
        opt_G.step()
    return G


def _interleaved(baseline: Callable[[], object], ours: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of each, measured baseline, ours, baseline, ours, ... after one warm-up of each."""
    baseline()
    ours()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((baseline, times[0]), (ours, times[1])):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return times


def bench_gan_training(updates: int = 40, repeats: int = 3) -> BenchRow:
    """GAN training throughput (generated images/s): `gan` through Arena's training loop on
    img:digits against the same model as a plain PyTorch loop, interleaved, median ratio."""
    import statistics

    import torch

    from agents.gan import GANAgent

    env = gym.make("arena/ImageGeneration-v0")
    theirs, ours = _interleaved(lambda: plain_gan_loop(updates),
                                lambda: GANAgent(device="cpu").fit(env, seed=0, episodes=updates, progress=False), repeats)
    ratios = [b / o for b, o in zip(theirs, ours)]
    images = updates * 64
    return BenchRow(
        "GAN training, img:digits", "plain PyTorch loop", images / statistics.median(theirs),
        images / statistics.median(ours), "images/s", statistics.median(ratios), ">= 0.8x", statistics.median(ratios) >= 0.8,
        f"{updates} batches of 64, median of {repeats}, ratio spread {min(ratios):.2f}-{max(ratios):.2f}, "
        f"{torch.get_num_threads()} threads",
    )


def bench_gan_sampling(n: int = 4096, repeats: int = 5) -> BenchRow:
    """Sampling rate (images/s): a trained-shape `gan` agent's `sample(n)` against calling the
    same generator on torch.randn in a plain loop, interleaved."""
    import statistics

    import torch

    from agents.gan import GANAgent

    agent = GANAgent(device="cpu")
    agent.fit(gym.make("arena/ImageGeneration-v0"), seed=0, episodes=1, progress=False)
    G = agent.modules["generator"].eval()

    def plain() -> None:
        with torch.no_grad():
            G(torch.randn(n, 16)).clamp(0, 1).numpy()

    theirs, ours = _interleaved(plain, lambda: agent.sample(n, seed=0), repeats)
    ratios = [b / o for b, o in zip(theirs, ours)]
    return BenchRow(
        "GAN sampling", "plain G(torch.randn)", n / statistics.median(theirs), n / statistics.median(ours), "images/s",
        statistics.median(ratios), ">= 0.8x", statistics.median(ratios) >= 0.8,
        f"{n} images, median of {repeats}, ratio spread {min(ratios):.2f}-{max(ratios):.2f}",
    )


def bench_cli_startup(repeats: int = 5) -> BenchRow:
    """Wall time of `arena envs` in a fresh interpreter, against listing Gymnasium's registry
    (`gymnasium.pprint_registry()`, what a user would run to see the envs there), interleaved."""
    import statistics
    import subprocess
    import sys

    ours_cmd = [sys.executable, "-m", "arena", "envs"]
    theirs_cmd = [sys.executable, "-c", "import gymnasium; gymnasium.pprint_registry()"]
    ours, theirs = [], []
    for _ in range(repeats):  # baseline, ours, baseline, ours, ...
        for cmd, times in ((theirs_cmd, theirs), (ours_cmd, ours)):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
    t_ours, t_theirs = statistics.median(ours), statistics.median(theirs)
    return BenchRow(
        "CLI start-up: arena envs", "gymnasium.pprint_registry()", t_theirs, t_ours, "s",
        t_theirs / t_ours, "< 1 s", t_ours < 1.0,
        f"median of {repeats}, spread {min(ours):.2f}-{max(ours):.2f} s; torch is not imported",
    )


def bench_tournament_workers(jobs: int = 8, episodes: int = 3000, repeats: int = 2) -> BenchRow:
    """`arena tournament` wall time with 2 workers against 1, on a suite of independent CPU
    jobs (Q-learning on four-rooms, one job per training seed), interleaved: the process
    pool's start-up and result traffic are in the figure, as a user would meet them."""
    import statistics
    import tempfile
    from pathlib import Path

    from arena.leaderboard import Leaderboard
    from arena.tournament import load_suite, run_suite

    def once(workers: int) -> float:
        with tempfile.TemporaryDirectory(prefix="arena-bench-") as tmp:
            path = Path(tmp) / "bench.toml"
            path.write_text(f'envs = ["grid:four-rooms"]\ntrain_seeds = {list(range(jobs))}\neval_episodes = 2\n'
                            f'[[agents]]\nname = "q-learning"\nbudget = {episodes}\n')
            t0 = time.perf_counter()
            run_suite(load_suite(path), Leaderboard(Path(tmp) / "lb.sqlite"), Path(tmp) / "replays", Path(tmp) / "runs",
                      workers=workers)
            return time.perf_counter() - t0

    one, two = _interleaved(lambda: once(1), lambda: once(2), repeats)
    ratios = [b / a for a, b in zip(one, two)]
    return BenchRow(
        "tournament, 2 workers", "the same suite, 1 worker", statistics.median(one), statistics.median(two), "s",
        statistics.median(ratios), "<= 0.65x time", statistics.median(ratios) <= 0.65,
        f"{jobs} Q-learning jobs x {episodes} episodes, median of {repeats}, spread {min(ratios):.2f}-{max(ratios):.2f}",
    )


# each takes `quick`: fewer steps, and no slow NumPy baseline for the 256x256 solve
BENCHMARKS: list[Callable[[bool], BenchRow]] = [
    lambda quick: bench_grid_step(n_steps=20_000 if quick else 100_000),
    lambda quick: bench_value_iteration_64(),
    lambda quick: bench_solve_256(with_baseline=not quick),
    lambda quick: bench_q_learning(episodes=1000 if quick else 3000),
    lambda quick: bench_batched_grid(steps=500 if quick else 2000),
    lambda quick: bench_rollout(batches=2 if quick else 5),
    lambda quick: bench_cli_startup(repeats=3 if quick else 5),
    lambda quick: bench_gan_training(updates=10 if quick else 40),
    lambda quick: bench_gan_sampling(n=1024 if quick else 4096),
    lambda quick: bench_tournament_workers(jobs=4 if quick else 8, repeats=1 if quick else 2),
]


def run_all(quick: bool = False) -> list[BenchRow]:
    """Every benchmark, in order."""
    return [bench(quick) for bench in BENCHMARKS]
