"""`arena bench`: every figure is Arena against what a user would pick instead, on the same work.

Machines are shared and noisy, so each figure runs the baseline and Arena in the same
process, interleaved (baseline, Arena, baseline, Arena, ...) after one warm-up of each,
and reports the median of the per-pair ratios with their spread (lowest, highest). A
ratio above 1 means Arena is ahead: faster, or more steps per second. Each figure has a
stable `id` (`arena bench --only ID`, `arena bench --json`) and its target; a target not
met is reported as such, never hidden.

Why one long file: each benchmark sits beside its baseline, so a reader checks in one place
that both sides do the same work.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Callable

import gymnasium as gym
import numpy as np

import envs  # noqa: F401
from agents import dp
from agents.protocol import Player
from agents.training import Callback
from envs.vector import NEXT_KEY_SALT, START_SALT

HEAVY = False  # `arena bench --heavy`: also the baselines that start hundreds of processes


class Stopped(Exception):
    """SIGTERM or SIGINT during `arena bench`: stop now and report what was measured."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass
class Figure:
    """One benchmark figure: Arena (`ours`) against `baseline`, in `unit`, measured alike,
    and where there is one, against `limit`: the ceiling for the same work on this machine
    (a plainly written compiled loop on the same arrays, or the memory-bandwidth bound)."""

    id: str
    name: str
    baseline: str
    unit: str
    baseline_value: float
    ours: float
    ratio: float  # median over interleaved pairs; > 1: Arena ahead
    spread: tuple[float, float]  # the lowest and highest pair's ratio
    target: str
    met: bool
    detail: str = ""
    limit: str = ""  # what the ceiling is ("" where none is measured)
    limit_value: float | None = None  # the ceiling, in `unit`
    fraction_of_limit: float | None = None  # Arena / ceiling (in rate terms: 1 is the limit), median of pairs
    limit_spread: tuple[float, float] | None = None
    inconclusive: bool = False  # the spread straddles the target: the figure neither meets nor misses it

    @property
    def verdict(self) -> str:
        return "inconclusive" if self.inconclusive else "met" if self.met else "not met"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["spread"] = list(self.spread)
        out["limit_spread"] = list(self.limit_spread) if self.limit_spread else None
        out["verdict"] = self.verdict
        return out


def load_figures(path: Any) -> list[Figure]:
    """The figures of a run saved with `arena bench --json` (a complete run, or a stopped one)."""
    import json
    from pathlib import Path

    from arena.errors import ArenaError

    try:
        report = json.loads(Path(path).read_text())
        figures = []
        for f in report["figures"]:
            f = {k: v for k, v in f.items() if k != "verdict"}
            f["spread"] = tuple(f["spread"])
            f["limit_spread"] = tuple(f["limit_spread"]) if f.get("limit_spread") else None
            figures.append(Figure(**f))
        return figures
    except OSError as exc:
        raise ArenaError(f"--from {path}: cannot read it ({exc.strerror}); give a file `arena bench --json` wrote") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ArenaError(f"--from {path}: not a run saved by `arena bench --json`; save one with "
                         "`arena bench --json > FILE`") from None


def markdown(figures: list[Figure]) -> str:
    """The figures as the README's performance table."""
    from arena.leaderboard import markdown_table

    return markdown_table(
        ("id", "what", "baseline", "baseline", "Arena", "unit", "ratio (spread)", "the limit", "of the limit",
         "target", "verdict"),
        [(f.id, f.name, f.baseline, f"{f.baseline_value:,.4g}", f"{f.ours:,.4g}", f.unit,
          f"{f.ratio:,.2f}x ({f.spread[0]:.2f}-{f.spread[1]:.2f})",
          f"{f.limit}: {f.limit_value:,.4g}" if f.limit_value is not None else "-",
          f"{f.fraction_of_limit:.2f}" if f.fraction_of_limit is not None else "-", f.target,
          f.verdict if f.met else f"**{f.verdict}**")
         for f in figures])


def _interleaved(runs: list[Callable[[], Any]], repeats: int,
                 warm_up: bool = True) -> list[list[tuple[float, Any]]]:
    """(seconds, result) of each run of each callable, measured in turn (baseline, ours,
    limit, baseline, ours, limit, ...) after one warm-up of each (JIT compilation, caches,
    the env checker's first call)."""
    if warm_up:
        for fn in runs:
            fn()
    out: list[list[tuple[float, Any]]] = [[] for _ in runs]
    for _ in range(repeats):
        for fn, times in zip(runs, out):
            t0 = time.perf_counter()
            result = fn()
            times.append((time.perf_counter() - t0, result))
    return out


def judge(values: list[float], target: float) -> tuple[bool, bool]:
    """(met, inconclusive) of per-pair figures against `target` (higher is better): met when
    their median reaches it; inconclusive when the spread reaches across it, so the margin
    to the target is smaller than the noise."""
    median = statistics.median(values)
    return median >= target, min(values) < target <= max(values)


def compare(id: str, name: str, baseline_label: str, baseline: Callable[[], Any], ours: Callable[[], Any], *,
            repeats: int, target: float, unit: str = "s", work: float | None = None, detail: str = "",
            warm_up: bool = True, target_text: str = "", limit_label: str = "",
            limit: Callable[[], Any] | None = None, target_on: str = "baseline",
            baseline_is_limit: bool = False) -> Figure:
    """Time `baseline`, `ours` and the optional `limit` interleaved. With `unit` "s" the
    figures are median seconds and a pair's ratio is t_baseline / t_ours; otherwise they are
    rates, units of work per second, where the work is `work` or, when None, what each call
    returns (e.g. the env steps a learner took), and a pair's ratio is rate_ours /
    rate_baseline. The fraction of the limit is likewise ours against the limit (1: at it).
    `target` applies to the ratio, or with target_on="limit" to the fraction of the limit.
    `baseline_is_limit`: the baseline is itself the limit (the same model as a plain PyTorch
    loop: nothing but the work), so the fraction of the limit is the ratio."""
    runs = _interleaved([baseline, ours] + ([limit] if limit else []), repeats, warm_up)

    def value(t: float, result: Any) -> float:
        return t if unit == "s" else float(work if work is not None else result) / t

    def ratios(theirs: list[tuple[float, Any]], mine: list[tuple[float, Any]]) -> list[float]:
        return [b / o if unit == "s" else o / b for b, o in zip((value(*r) for r in theirs), (value(*r) for r in mine))]

    against_baseline = ratios(runs[0], runs[1])
    against_limit = ratios(runs[2], runs[1]) if limit else None
    judged = against_limit if target_on == "limit" and against_limit else against_baseline
    met, inconclusive = judge(judged, target)
    figure = Figure(id, name, baseline_label, unit, statistics.median(value(*r) for r in runs[0]),
                    statistics.median(value(*r) for r in runs[1]), statistics.median(against_baseline),
                    (min(against_baseline), max(against_baseline)),
                    target_text or (f">= {target:g}x the limit" if target_on == "limit" else f">= {target:g}x"), met,
                    f"{detail}{'; ' if detail else ''}median of {repeats}", inconclusive=inconclusive)
    if baseline_is_limit:
        figure.limit, figure.limit_value = baseline_label, figure.baseline_value
        figure.fraction_of_limit, figure.limit_spread = figure.ratio, figure.spread
    if limit and against_limit:
        figure.limit = limit_label
        figure.limit_value = statistics.median(value(*r) for r in runs[2])
        figure.fraction_of_limit = statistics.median(against_limit)
        figure.limit_spread = (min(against_limit), max(against_limit))
    return figure


# --------------------------------------------------------------------------- envs


def _step_loop(env: gym.Env, actions: list[int]) -> int:
    """Step through `actions`, resetting at each episode's end, as any user loop does."""
    env.reset(seed=0)
    step, reset = env.step, env.reset
    for a in actions:
        _, _, term, trunc, _ = step(a)
        if term or trunc:
            reset()
    return len(actions)


def bench_env_step(quick: bool) -> list[Figure]:
    """Single-env steps/s through gymnasium.make: GridWorld against Gymnasium's own
    FrozenLake8x8-v1, same map, same slip, same actions."""
    n = 20_000 if quick else 100_000
    actions = np.random.default_rng(0).integers(4, size=n).tolist()
    theirs = gym.make("FrozenLake8x8-v1", is_slippery=True)
    ours = gym.make("arena/GridWorld-v0", layout="frozenlake-8x8")
    return [compare("env-step", "GridWorld step (frozenlake-8x8)", "Gymnasium FrozenLake8x8-v1",
                    lambda: _step_loop(theirs, actions), lambda: _step_loop(ours, actions),
                    repeats=3 if quick else 5, target=1.0, unit="steps/s", work=n, detail=f"{n} steps")]


def bench_render(quick: bool) -> list[Figure]:
    """rgb_array frames/s: GridWorld against FrozenLake8x8-v1, both rendering every step."""
    n = 100 if quick else 400
    actions = np.random.default_rng(0).integers(4, size=n).tolist()

    def frames(env: gym.Env) -> Callable[[], int]:
        def run() -> int:
            env.reset(seed=0)
            for a in actions:
                _, _, term, trunc, _ = env.step(a)
                env.render()
                if term or trunc:
                    env.reset()
            return n
        return run

    theirs = gym.make("FrozenLake8x8-v1", is_slippery=True, render_mode="rgb_array")
    ours = gym.make("arena/GridWorld-v0", layout="frozenlake-8x8", render_mode="rgb_array")
    board: Any = ours.unwrapped
    size = board.frame_size()
    return [compare("render-fps", "rgb_array render (frozenlake-8x8)", "Gymnasium FrozenLake8x8-v1", frames(theirs),
                    frames(ours), repeats=3, target=1.0, unit="frames/s", work=n,
                    detail=f"{n} frames; ours {size[0]}x{size[1]} px with legend-free board, theirs 512x512")]


# --------------------------------------------------------------------------- compiled ceilings
#
# The limit of a figure is a plainly written compiled loop doing Arena's work on the same
# arrays: the grid's own step (`grid_step`) and NumPy's seeding, compiled (envs/vector.py),
# so its episodes are Arena's, and nothing else: no env API, no checks, no log. Tests hold
# each ceiling's result equal to Arena's on a small case.

_CEILINGS: dict[str, Any] = {}
_grid_step: Any = None  # the compiled kernels the ceilings call, bound in `ceiling`
_mix: Any = None
_uniform: Any = None
_seeded_keys: Any = None
_unit_seeds: Any = None


def ceiling(name: str) -> Any:
    """A compiled ceiling of this file (Numba, cached on disk), compiled on first use."""
    if name not in _CEILINGS:
        import numba

        from envs.grid import compiled
        from envs.vector import seeding_kernels, stream_kernels

        module = globals()
        module["_grid_step"] = compiled("grid_step")
        module["_mix"], module["_uniform"] = stream_kernels()
        module["_seeded_keys"], module["_unit_seeds"] = seeding_kernels()
        _CEILINGS[name] = numba.njit(cache=True)(module[name])
    return _CEILINGS[name]


def walk_loop(pool, steps, s, t, keys, needs, next_state, reward, cum, A, K, terminal, starts, max_steps,
              rewards, terminated, truncated):  # pragma: no cover - compiled
    """The ceiling for batched grid stepping: `steps` steps of every copy, actions from
    `pool` (step j takes pool[j % len(pool)]), NEXT_STEP autoreset, each step's rewards and
    flags written for the caller as an env's are. Returns the sum of the rewards."""
    total = 0.0
    for j in range(steps):
        actions = pool[j % len(pool)]
        for i in range(len(s)):
            if needs[i]:
                key = _mix(keys[i] ^ np.uint64(NEXT_KEY_SALT))  # the next episode
                keys[i], t[i], needs[i] = key, 0, False
                s[i] = starts[int(_uniform(key ^ np.uint64(START_SALT), 0) * len(starts))]
                rewards[i], terminated[i], truncated[i] = 0.0, False, False
                continue
            ns, r, term, trunc = _grid_step(s[i], actions[i], keys[i], t[i], A, K, next_state, reward, cum, terminal,
                                            max_steps)
            s[i], t[i], rewards[i], terminated[i], truncated[i] = ns, t[i] + 1, r, term, trunc
            total += r
            needs[i] = term or trunc
    return total


def compiled_walk(tables: Any, n: int, pool: np.ndarray, steps: int, seed: int = 0) -> tuple[Any, ...]:
    """The ceiling's whole run: a seeded reset of n copies (seeds seed .. seed + n - 1, as
    Gymnasium's vector envs give them) and `steps` steps. Returns (s, t, keys, total reward)."""
    from envs.vector import seeding_kernels, start_uniforms

    keys = seeding_kernels()[0](np.arange(seed, seed + n, dtype=np.uint64))  # first_keys
    s = tables.starts[(start_uniforms(keys) * len(tables.starts)).astype(np.int64)]
    t, needs = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    rewards, terminated, truncated = np.empty(n), np.empty(n, dtype=bool), np.empty(n, dtype=bool)
    total = ceiling("walk_loop")(pool, steps, s, t, keys, needs, tables.next_state, tables.reward, tables.cum,
                                 tables.A, tables.K, tables.terminal, tables.starts, tables.max_steps,
                                 rewards, terminated, truncated)
    return s, t, keys, np.float64(total)


def arena_walk(venv: Any, pool: np.ndarray, steps: int, seed: int = 0, add: bool = False) -> tuple[Any, ...] | None:
    """Arena's side: Gymnasium's vector API on the native batched GridWorld, the same reset
    and actions. With `add`, returns (s, t, keys, total reward) as `compiled_walk` does."""
    venv.reset(seed=seed)
    step, total = venv.step, 0.0
    for j in range(steps):
        rewards = step(pool[j % len(pool)])[1]
        if add:
            total += float(rewards.sum())
    u = venv.unwrapped
    return (u.s.copy(), u.t.copy(), u.keys.copy(), total) if add else None


def numpy_walk(tables: Any, n: int, pool: np.ndarray, steps: int, seed: int = 0) -> tuple[Any, ...]:
    """A user's own vectorised loop instead of an env (not a ceiling): the same tables,
    draws, actions and autoreset as whole-array NumPy operations. Returns what compiled_walk does."""
    from envs.vector import counter_uniforms, next_keys, seeding_kernels, start_uniforms

    starts, A, K = tables.starts, tables.A, tables.K
    keys = seeding_kernels()[0](np.arange(seed, seed + n, dtype=np.uint64))  # first_keys
    s = starts[(start_uniforms(keys) * len(starts)).astype(np.int64)]
    t, needs = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    cum = tables.cum.reshape(-1, K - 1) if K > 1 else None
    total = 0.0
    for j in range(steps):
        go = ~needs
        sa = s * A + pool[j % len(pool)]
        row = sa * K
        if cum is not None:
            row = row + (counter_uniforms(keys, t)[:, None] >= cum[sa]).sum(axis=1)
        ns = tables.next_state[row]
        term = tables.terminal[ns] & go
        trunc = go & ~term & (t + 1 >= tables.max_steps)
        total += float(np.where(go, tables.reward[row], 0.0).sum())
        s, t = np.where(go, ns, s), np.where(go, t + 1, t)
        if needs.any():  # NEXT_STEP autoreset of the copies whose episode ended last step
            idx = np.flatnonzero(needs)
            keys[idx] = next_keys(keys[idx])
            s[idx], t[idx] = starts[(start_uniforms(keys[idx]) * len(starts)).astype(np.int64)], 0
        needs = term | trunc
    return s, t, keys, np.float64(total)


def bench_batched(quick: bool) -> list[Figure]:
    """Batched env steps/s on frozenlake-8x8 (slippery), the same actions for every side (a
    pool of 16 random action arrays): Arena's native batched GridWorld against a user's own
    vectorised NumPy loop and Gymnasium's SyncVectorEnv (and AsyncVectorEnv with --heavy),
    and against the ceiling, the same walk as a compiled loop. Each run begins with a
    seeded reset of every copy."""
    single: Any = gym.make("arena/GridWorld-v0", layout="frozenlake-8x8").unwrapped
    tables = single.step_tables()
    out = []
    work = 2_000_000 if quick else 8_000_000  # steps per run at each size
    for n in (1024, 4096, 65536):
        steps = work // n
        pool = np.random.default_rng(0).integers(4, size=(16, n))
        venv = gym.make_vec("arena/GridWorld-v0", num_envs=n, vectorization_mode="vector_entry_point",
                            layout="frozenlake-8x8")
        out.append(compare(
            f"batched-{n}", f"batched GridWorld, {n} copies", "a user's vectorised NumPy loop, same draws",
            partial(numpy_walk, tables, n, pool, steps), partial(arena_walk, venv, pool, steps),
            repeats=3 if quick else 5, target=0.6, target_on="limit", unit="steps/s", work=n * steps,
            limit_label="the same walk, compiled", limit=partial(compiled_walk, tables, n, pool, steps),
            detail=f"{steps} steps after a seeded reset"))
    few = 100  # Gymnasium's vector envs step each copy in Python: fewer steps

    def stepper(v: Any, n: int, count: int) -> Callable[[], int]:
        def run() -> int:
            pool = np.random.default_rng(0).integers(4, size=(16, n))
            v.reset(seed=0)
            for j in range(count):
                v.step(pool[j % 16])
            return n * count
        return run

    def lake() -> gym.Env:
        return gym.make("FrozenLake8x8-v1", is_slippery=True)

    vector_baselines: list[tuple[str, str, Any, int]] = [
        ("sync", "Gymnasium SyncVectorEnv (FrozenLake8x8-v1)", gym.vector.SyncVectorEnv, 1024)]
    if not quick:
        vector_baselines.append(("sync", "Gymnasium SyncVectorEnv (FrozenLake8x8-v1)", gym.vector.SyncVectorEnv, 4096))
    if HEAVY:  # one process per copy: 1024 of them take ~5 GB and ~12 s to start here
        vector_baselines.append(("async", "Gymnasium AsyncVectorEnv (FrozenLake8x8-v1, a process per copy)",
                                 gym.vector.AsyncVectorEnv, 1024))
    import importlib.util

    if importlib.util.find_spec("envpool") is not None:  # a bench extra: C++ envs stepped on threads
        for n in (1024,) if quick else (1024, 4096):
            out.append(envpool_figure(n, few))
    for key, label, kind, n in vector_baselines:
        theirs = kind([lake] * n)
        venv = gym.make_vec("arena/GridWorld-v0", num_envs=n, vectorization_mode="vector_entry_point",
                            layout="frozenlake-8x8")
        many = 20 if key == "async" else few  # AsyncVectorEnv: ~5k steps/s here
        try:
            out.append(compare(f"batched-{n}-{key}", f"batched GridWorld, {n} copies", label, stepper(theirs, n, many),
                               stepper(venv, n, many), repeats=3, target=50.0, unit="steps/s",
                               detail=f"{many} steps"))
        finally:
            theirs.close()
    return out


def envpool_figure(n: int, steps: int) -> Figure:
    """Arena's batched GridWorld against EnvPool's FrozenLake8x8-v1 (C++, stepped on as many
    threads as there are cores), the same actions; both start from a seeded reset."""
    import os

    import envpool

    theirs = envpool.make("FrozenLake8x8-v1", env_type="gymnasium", num_envs=n, seed=0,
                          num_threads=os.cpu_count() or 1)
    venv = gym.make_vec("arena/GridWorld-v0", num_envs=n, vectorization_mode="vector_entry_point",
                        layout="frozenlake-8x8")
    pool = np.random.default_rng(0).integers(4, size=(16, n))

    def run(env: Any, seeded: bool) -> int:
        if seeded:
            env.reset(seed=0)
        else:  # EnvPool takes its seed when made
            env.reset()
        for j in range(steps):
            env.step(pool[j % 16])
        return n * steps

    try:
        return compare(f"batched-{n}-envpool", f"batched GridWorld, {n} copies",
                       f"EnvPool FrozenLake8x8-v1 ({os.cpu_count()} threads)", partial(run, theirs, False),
                       partial(run, venv, True), repeats=3, target=1.0, unit="steps/s", work=n * steps,
                       detail=f"{steps} steps")
    finally:
        theirs.close()


# A fresh interpreter builds one env and prints its build time and peak memory (the
# resident high-water mark after the build, less the resident size just before it), so
# neither side pays for the other's garbage, and interpreter start-up is not in the figure.
# On Linux both come from /proc (VmHWM, VmRSS): ru_maxrss would also count the resident
# size of the process that started the interpreter, which it inherits across exec.
_BUILD = """
import json, os, resource, sys, time
import gymnasium as gym
import envs
from envs.grid import generate_maze
size, which = int(sys.argv[1]), sys.argv[2]
text = generate_maze(size, size) if which == "frozenlake" else None

def memory(field):
    if os.path.exists("/proc/self/status"):
        line = next(x for x in open("/proc/self/status") if x.startswith(field + ":"))
        return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)

before = memory("VmRSS")
t0 = time.perf_counter()
if which == "frozenlake":
    gym.make("FrozenLake-v1", desc=text.replace("#", "H").replace(".", "F").split(), is_slippery=True)
else:
    gym.make("arena/GridWorld-v0", layout=f"maze-{size}x{size}", slip=0.2)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "peak_mb": max(memory("VmHWM") - before, 0) / 1e6}))
"""


def bench_grid_build(quick: bool) -> list[Figure]:
    """Building a large maze env (`gym.make`, maze generation included) against Gymnasium's
    FrozenLake-v1 given the same map (walls as holes, slippery), which builds its model as
    per-(state, action) lists of Python tuples: seconds and peak memory, each in a fresh
    interpreter."""
    import json
    import subprocess
    import sys

    size = 512 if quick else 1024

    def build(which: str) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            done = subprocess.run([sys.executable, "-c", _BUILD, str(size), which], capture_output=True, text=True,
                                  check=True)
            return json.loads(done.stdout)
        return run

    # warm-up: a small maze first, so Numba's cache holds the compiled maze carving (the
    # first build after an install compiles it once, which takes longer and more memory)
    subprocess.run([sys.executable, "-c", _BUILD, "64", "arena"], capture_output=True, check=True)
    theirs, ours = _interleaved([build("frozenlake"), build("arena")], repeats=1 if size >= 1024 else 3, warm_up=False)
    out = []
    limits = {"seconds": 3.0, "peak_mb": 600.0} if size == 1024 else {}
    for key, unit, what in (("seconds", "s", "build time"), ("peak_mb", "MB", "peak memory")):
        base_values, our_values = [run[1][key] for run in theirs], [run[1][key] for run in ours]
        ratios = [b / max(o, 1e-3) for b, o in zip(base_values, our_values)]
        ratio, mine = statistics.median(ratios), statistics.median(our_values)
        target = f"ours <= {limits[key]:g} {unit}" if key in limits else ">= 1x"  # the targets: absolute
        out.append(Figure(f"grid-build-{size}" + ("-memory" if key == "peak_mb" else ""),
                          f"gym.make of a {size}x{size} maze, {what}", "Gymnasium FrozenLake-v1, same map", unit,
                          statistics.median(base_values), mine, ratio, (min(ratios), max(ratios)), target,
                          mine <= limits[key] if key in limits else ratio >= 1,
                          f"fresh interpreter each; median of {len(ratios)}"))
    return out


# --------------------------------------------------------------------------- dynamic programming


def numpy_sweeps(mdp: dp.TabularMDP, gamma: float, tol: float) -> tuple[np.ndarray, int]:
    """Synchronous value iteration as a plain NumPy loop: what a user writes first."""
    V = np.zeros(len(mdp.terminal))
    sweeps = 0
    while True:
        sweeps += 1
        V_new = np.where(mdp.terminal, 0.0, dp.q_values(mdp, V, gamma).max(axis=1))
        delta = np.abs(V_new - V).max()
        V = V_new
        if delta < tol:
            return V, sweeps


def scipy_sweeps(mdp: dp.TabularMDP, gamma: float, tol: float) -> tuple[np.ndarray, int]:
    """Synchronous value iteration with the model as one SciPy sparse matrix P (S*A, S):
    Q = R + gamma P V, V = max_a Q, what a user reaches for on a large sparse MDP."""
    from scipy import sparse

    S, A, K = mdp.next_state.shape
    P = sparse.csr_matrix((mdp.prob.ravel(), (np.repeat(np.arange(S * A), K), mdp.next_state.ravel())),
                          shape=(S * A, S))
    R = mdp.R.ravel()
    V, sweeps = np.zeros(S), 0
    while True:
        sweeps += 1
        V_new = np.where(mdp.terminal, 0.0, (R + gamma * (P @ V)).reshape(S, A).max(axis=1))
        delta = np.abs(V_new - V).max()
        V = V_new
        if delta < tol:
            return V, sweeps


def pymdptoolbox_sweeps(mdp: dp.TabularMDP, gamma: float, tol: float) -> tuple[np.ndarray, int]:
    """pymdptoolbox's ValueIteration (synchronous sweeps over per-action SciPy sparse
    matrices), stopping when the span of a sweep's change is below `tol`. Two of its
    set-up steps are bypassed, as they cannot finish on a large grid: the input check
    (`mdptoolbox.util.check`, dense per-row tests) and the iteration bound (`_boundIter`,
    a Python loop over every state's column); the sweeps themselves are its own."""
    import mdptoolbox.mdp
    import mdptoolbox.util
    from scipy import sparse

    class Unbounded(mdptoolbox.mdp.ValueIteration):
        def _boundIter(self, epsilon: float) -> None:
            self.max_iter = 10**7

    S, A, K = mdp.next_state.shape
    rows = np.repeat(np.arange(S), K)
    P = [sparse.csr_matrix((mdp.prob[:, a].ravel(), (rows, mdp.next_state[:, a].ravel())), shape=(S, S))
         for a in range(A)]
    check, mdptoolbox.util.check = mdptoolbox.util.check, lambda P, R: None
    try:
        vi = Unbounded(P, np.ascontiguousarray(mdp.R), gamma, epsilon=tol * gamma / (1 - gamma))
    finally:
        mdptoolbox.util.check = check
    vi.run()
    return np.array(vi.V), vi.iter


def memory_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """This machine's memory bandwidth in bytes/s, as STREAM's copy counts it (bytes read +
    bytes written by np.copyto of arrays far larger than the caches), best of `repeats`."""
    src = np.ones(megabytes * 2**20 // 8)
    dst = np.empty_like(src)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best


def vi_bytes(mdp: Any, backups: int) -> int:
    """The memory traffic value iteration cannot avoid: the model read once (next_state,
    prob, reward), the sweep tables written once (int32 successors, float64 coefficients,
    R and scale), and for each state backup its row of the tables read and its V written
    (the successors' values are left out: they are often in the caches)."""
    S, A, K = mdp.next_state.shape
    model = S * A * K * (mdp.next_state.itemsize + 8 + 8)
    row = A * K * (4 + 8) + A * 16
    return model + S * row + backups * (row + 8)


def absolute(id: str, name: str, values: list[float], target: float, detail: str, unit: str = "s") -> Figure:
    """A figure held to an absolute target (lower is better), e.g. seconds: the median of
    `values`, inconclusive when their spread reaches across the target."""
    median = statistics.median(values)
    return Figure(id, name, f"the target, {target:g} {unit}", unit, target, median, target / median,
                  (target / max(values), target / min(values)), f"<= {target:g} {unit}", median <= target, detail,
                  inconclusive=min(values) <= target < max(values))


def bench_value_iteration(quick: bool) -> list[Figure]:
    """Value iteration to a change below 1e-10 per sweep (gamma 0.99) on slippery mazes,
    end to end (table preparation included): Arena's compiled in-place sweeps against plain
    NumPy, SciPy sparse and pymdptoolbox (a bench extra: pip install 'arena-gym[bench]')
    synchronous sweeps, and against the limit, the memory bandwidth times the bytes it must
    touch (`vi_bytes`; at 1024x1024 and up, where the tables are far larger than the
    caches). The residual is max_s |max_a Q(s,a) - V(s)| of the returned V; the
    targets on seconds are this machine's; the exponent is how the cost grows with the states."""
    import importlib.util

    out = []
    bandwidth = memory_bandwidth(64 if quick else 256)
    baselines = [("numpy", "NumPy synchronous sweeps", numpy_sweeps),
                 ("scipy", "SciPy sparse synchronous sweeps", scipy_sweeps)]
    if importlib.util.find_spec("mdptoolbox") is not None:
        baselines.append(("pymdptoolbox", "pymdptoolbox ValueIteration", pymdptoolbox_sweeps))
    limits = {512: 0.4, 1024: 0.5, 2048: 2.5}  # seconds, ours
    seconds_at: dict[int, tuple[int, float]] = {}
    for size in (64, 256) if quick else (64, 256, 512, 1024, 2048):
        grid_env: Any = gym.make("arena/GridWorld-v0", layout=f"maze-{size}x{size}", slip=0.2).unwrapped
        mdp = grid_env.mdp
        sol = dp.value_iteration(mdp, 0.99, 1e-10)
        # the bandwidth bound where the tables are far larger than the caches (smaller mazes live in them)
        bound = vi_bytes(mdp, sol.backups) / bandwidth if size >= 1024 else None
        ours_note = f"{mdp.n_states} states; ours {sol.sweeps} sweeps, residual {sol.residual:.1e}"
        for key, label, fn in baselines:
            if size >= 1024 and key != "pymdptoolbox":
                continue  # NumPy and SciPy at 1024: minutes each, and pymdptoolbox runs the same sweeps
            if size == 2048:
                continue  # pymdptoolbox too: the figure at 2048 is ours against its target and the limit
            seen: dict[str, Any] = {}

            def baseline(fn: Callable[..., tuple[np.ndarray, int]] = fn, seen: dict[str, Any] = seen) -> None:
                V, seen["sweeps"] = fn(mdp, 0.99, 1e-10)
                seen["residual"] = dp.bellman_residual(mdp, V, 0.99)

            target = 20.0 if (size, key) == (1024, "pymdptoolbox") else 10.0
            figure = compare(f"vi-{size}-{key}", f"value iteration, {size}x{size} slippery maze", label, baseline,
                             lambda: dp.value_iteration(mdp, 0.99, 1e-10), repeats=1 if size >= 256 else 3,
                             target=target, warm_up=False, detail=ours_note)
            figure.baseline += f" ({seen['sweeps']} sweeps, residual {seen['residual']:.1e})"
            if bound is not None:
                figure.limit, figure.limit_value = f"memory bandwidth ({bandwidth / 1e9:.1f} GB/s) x bytes", bound
                figure.fraction_of_limit = bound / figure.ours
            out.append(figure)
        if size in limits:  # an absolute target: ours alone, 5 solves
            solves = [dp.value_iteration(mdp, 0.99, 1e-10).seconds for _ in range(5)]
            seconds_at[size] = (mdp.n_states, statistics.median(solves))
            figure = absolute(f"vi-{size}", f"value iteration end to end, {size}x{size} slippery maze", solves,
                              limits[size], f"{ours_note}; 5 solves")
            if bound is not None:
                figure.limit, figure.limit_value = f"memory bandwidth ({bandwidth / 1e9:.1f} GB/s) x bytes", bound
                figure.fraction_of_limit = bound / figure.ours
                figure.limit_spread = (bound / max(solves), bound / min(solves))
            out.append(figure)
    if 512 in seconds_at and 2048 in seconds_at:
        (s0, t0), (s1, t1) = seconds_at[512], seconds_at[2048]
        exponent = float(np.log(t1 / t0) / np.log(s1 / s0))
        out.append(Figure("vi-exponent", "value iteration: cost ~ states^k between 512x512 and 2048x2048",
                          "linear in the states (k = 1)", "k", 1.0, exponent, 1.0 / exponent, (1.0 / exponent, 1.0 / exponent),
                          "<= 1.15", exponent <= 1.15,
                          f"{s0} states {t0:.3f} s, {s1} states {t1:.3f} s (medians of 5)"))
    return out


# --------------------------------------------------------------------------- tabular learning


def textbook_q_learning(env: gym.Env, episodes: int, seed: int = 0, alpha: float = 0.1, gamma: float = 0.99,
                        epsilon: float = 0.1) -> tuple[np.ndarray, int]:
    """Q-learning as the Sutton & Barto companion code and CleanRL write it: the baseline.
    Q(S,A) <- Q(S,A) + alpha [R + gamma max_a Q(S',a) - Q(S,A)], epsilon-greedy.
    It plays Arena's episodes, so both sides do the same work: episode i from
    env.reset(seed=episode_seed(seed, i)), exploration from one Generator(seed) drawn in
    Arena's order (the epsilon coin, then a random action, or a draw among tied maxima).
    Returns Q and the env steps taken."""
    from agents.training import episode_seed

    n_actions = int(env.action_space.n)  # type: ignore[attr-defined]  # Discrete spaces
    Q = np.zeros((int(env.observation_space.n), n_actions))  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    steps = 0
    for i in range(episodes):
        s, _ = env.reset(seed=episode_seed(seed, i))
        done = False
        while not done:
            if rng.random() < epsilon:
                a = int(rng.integers(n_actions))
            else:
                best = np.flatnonzero(Q[s] == Q[s].max())
                a = int(best[0]) if len(best) == 1 else int(best[rng.integers(len(best))])
            s2, r, term, trunc, _ = env.step(a)
            target = r if term else r + gamma * Q[s2].max()
            Q[s, a] += alpha * (target - Q[s, a])
            s, done, steps = s2, term or trunc, steps + 1
    return Q, steps


def q_learning_loop(Q, rng, keys, alpha, gamma, epsilon, A, K, next_state, reward, cum, terminal, starts,
                    max_steps):  # pragma: no cover - compiled
    """The ceiling for tabular learning: Q-learning on the grid's tables as a plain compiled
    loop, the textbook loop above with the env's step inlined, one episode per stream key."""
    n_actions = Q.shape[1]
    steps = 0
    for key in keys:
        s = starts[int(_uniform(key ^ np.uint64(START_SALT), 0) * len(starts))]
        t = 0
        while True:
            if rng.random() < epsilon:
                a = rng.integers(0, n_actions)
            else:  # greedy: the maximum and how many share it in one pass, then the draw picks among them
                top, ties = -np.inf, 0
                for b in range(n_actions):
                    if Q[s, b] > top:
                        top, ties = Q[s, b], 1
                    elif Q[s, b] == top:
                        ties += 1
                pick = rng.integers(0, ties) if ties > 1 else 0
                a = 0
                while Q[s, a] != top or pick > 0:
                    pick -= Q[s, a] == top
                    a += 1
            s2, r, term, trunc = _grid_step(s, a, key, t, A, K, next_state, reward, cum, terminal, max_steps)
            target = r if term else r + gamma * Q[s2].max()
            Q[s, a] += alpha * (target - Q[s, a])
            s, t, steps = s2, t + 1, steps + 1
            if term or trunc:
                break
    return steps


def compiled_q_learning(env: gym.Env, episodes: int, seed: int = 0, alpha: float = 0.1, gamma: float = 0.99,
                        epsilon: float = 0.1) -> tuple[np.ndarray, int]:
    """The ceiling's whole run: Arena's episodes (env seeds episode_seed(seed, i), their
    seeded resets' stream keys, all compiled) learned by `q_learning_loop`. Returns Q and steps."""
    tables = env.unwrapped.step_tables()  # type: ignore[attr-defined]  # a GridWorld
    ceiling("q_learning_loop")  # binds the seeding kernels
    keys = _seeded_keys(_unit_seeds(np.uint64(seed), np.uint64(0), episodes))
    Q = np.zeros((len(tables.terminal), tables.A))
    steps = ceiling("q_learning_loop")(Q, np.random.default_rng(seed), keys, alpha, gamma, epsilon, tables.A, tables.K,
                                       tables.next_state, tables.reward, tables.cum, tables.terminal, tables.starts,
                                       tables.max_steps)
    return Q, int(steps)


def arena_q_learning(env: gym.Env, episodes: int, seed: int = 0) -> np.ndarray:
    """Arena's side: the q-learning agent through its training loop (schedules off: alpha 0.1,
    epsilon 0.1, gamma 0.99 as above; progress off). Returns Q."""
    from agents.td import QLearningAgent

    agent = QLearningAgent(alpha=0.1, alpha_end=None, epsilon=0.1, epsilon_end=None, gamma=0.99, episodes=episodes)
    agent.fit(env, seed=seed, progress=False)
    return agent.Q


def bench_q_learning(quick: bool) -> list[Figure]:
    """Q-learning training, env steps/s, on frozenlake-8x8 (slippery), the same episodes on
    every side: Arena's agent through its training loop against the textbook loop through
    env.step, and against the ceiling, the same learning as a compiled loop."""
    episodes = 2000 if quick else 20_000
    env = gym.make("arena/GridWorld-v0", layout="frozenlake-8x8")
    steps = compiled_q_learning(env, episodes)[1]  # the same on every side (a test holds them equal)
    textbook = episodes // 10  # the textbook loop runs ~100x slower: a tenth of the episodes, rated per step
    textbook_steps = textbook_q_learning(env, textbook)[1]

    def ours() -> int:
        arena_q_learning(env, episodes)
        return steps

    figure = compare("q-learning", "Q-learning training (frozenlake-8x8)", "textbook loop through env.step, same episodes",
                     lambda: textbook_q_learning(env, textbook)[1], ours, repeats=3 if quick else 5, target=0.5, target_on="limit", unit="steps/s",
                     limit_label="the same learning, compiled", limit=lambda: compiled_q_learning(env, episodes)[1],
                     detail=f"{episodes} episodes ({steps} steps; the textbook loop the first {textbook}, "
                            f"{textbook_steps} steps), alpha 0.1, epsilon 0.1")
    return [figure]


# --------------------------------------------------------------------------- neural agents


class _Race:
    """Training time (evaluations left out) until greedy play first reaches `goal` accuracy
    on the same 50 evaluation episodes, or until `cap` seconds of training."""

    def __init__(self, goal: float, cap: float) -> None:
        self.goal, self.cap = goal, cap
        self.env = gym.make("arena/SequencePrediction-v0", task="copy", length=8)
        self.trained, self.best = 0.0, 0.0
        self.reached_at: float | None = None
        self.mark = time.perf_counter()

    def start(self) -> None:
        self.trained, self.mark = 0.0, time.perf_counter()

    def check(self, policy: Any) -> bool:
        """Evaluate `policy` (reset/act as an Arena agent); True: stop training."""
        from arena.match import record_episode

        self.trained += time.perf_counter() - self.mark
        accuracy = float(np.mean([record_episode(policy, self.env, 10_000 + i, agent_name="bench").episode_return
                                  for i in range(50)]))
        self.best = max(self.best, accuracy)
        if accuracy >= self.goal and self.reached_at is None:
            self.reached_at = self.trained
        self.mark = time.perf_counter()
        return self.reached_at is not None or self.trained >= self.cap

    def over(self) -> bool:
        """Past the cap (checked between evaluations too, so a slow learner stops on time)."""
        return self.trained + time.perf_counter() - self.mark >= self.cap

    @property
    def seconds(self) -> float:
        """Seconds to the goal; the cap when it was not reached (then a ratio is a bound)."""
        return self.reached_at if self.reached_at is not None else self.trained


class _RaceCallback(Callback):
    """Arena's side of the race: greedy accuracy every `every` batches, stopping at the goal."""

    def __init__(self, race: _Race, every: int) -> None:
        self.race, self.every = race, every

    def on_start(self, learner: Any, env: gym.Env) -> None:
        self.race.start()

    def after_unit(self, learner: Any, done: int, total: int) -> bool:
        return (done % self.every == 0 or self.race.over()) and self.race.check(learner)


class _SB3Policy(Player):
    """A Stable-Baselines3 model as the race's evaluator plays it: greedy, carrying the LSTM
    state of a recurrent policy through the episode, observations one-hot as in training."""

    name = "sb3"

    def __init__(self, model: Any, space: Any) -> None:
        self.model, self.space = model, space

    def reset(self, seed: int | None = None) -> None:
        return None

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        obs = gym.spaces.flatten(self.space, obs)
        action, state = self.model.predict(obs, state=state, episode_start=np.array([state is None]),
                                           deterministic=greedy)
        return int(action), state


def sb3_race(algo: str, race: _Race, every: int = 10_000, n_envs: int = 8, seed: int = 0) -> None:
    """The baseline: SB3 PPO (MlpPolicy) or sb3-contrib RecurrentPPO (MlpLstmPolicy) with
    their default settings on `n_envs` copies, as a user trains them, checked every `every` steps.
    The (token, phase) observations are given one-hot (FlattenObservation): RecurrentPPO cannot
    build its LSTM over a MultiDiscrete space (its size comes out as a NumPy integer)."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env("arena/SequencePrediction-v0", n_envs=n_envs, seed=seed,
                        env_kwargs={"task": "copy", "length": 8}, wrapper_class=gym.wrappers.FlattenObservation)
    model: Any  # PPO or RecurrentPPO (sb3-contrib, a bench extra)
    if algo == "ppo":
        from stable_baselines3 import PPO

        model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0)
    else:
        from sb3_contrib import RecurrentPPO

        model = RecurrentPPO("MlpLstmPolicy", venv, seed=seed, device="cpu", verbose=0)

    class Check(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % every >= n_envs and not race.over():
                return True
            return not race.check(_SB3Policy(self.model, race.env.observation_space))

    race.start()
    model.learn(total_timesteps=10**9, callback=Check())


def bench_reinforce_copy(quick: bool) -> list[Figure]:
    """Time to 0.95 greedy accuracy on seq:copy length=8 (training time; the evaluations on
    50 fixed episodes are left out of it): Arena's REINFORCE with a Transformer and with an
    LSTM (the settings its tests use) against Stable-Baselines3 PPO (its MlpPolicy has no
    memory, so it cannot copy) and sb3-contrib RecurrentPPO (a bench extra), each capped."""
    import importlib.util

    from agents.reinforce import ReinforceAgent

    cap = 30.0 if quick else 120.0
    cap_theirs = 15.0 if quick else cap  # --quick: neither baseline reaches 0.95 in 30 s here; the ratio is a lower bound
    networks: dict[str, dict[str, Any]] = {"transformer": dict(network="transformer"),
                "lstm": dict(network="lstm", layers=2, lr=0.005, gamma=0.0)}
    baselines = [("ppo", "SB3 PPO (MlpPolicy, defaults, 8 envs)")]
    if importlib.util.find_spec("sb3_contrib") is not None and not quick:
        baselines.append(("recurrentppo", "sb3-contrib RecurrentPPO (MlpLstmPolicy, defaults, 8 envs)"))
    races: dict[str, _Race] = {}
    for key, _ in baselines:
        races[key] = _Race(0.95, cap_theirs)
        sb3_race(key, races[key])
    for name, settings in networks.items():
        races[name] = _Race(0.95, cap)
        agent = ReinforceAgent(**settings, episodes=64 * 10**6, device="cpu")
        agent.fit(gym.make("arena/SequencePrediction-v0", task="copy", length=8), seed=0, progress=False,
                  callbacks=[_RaceCallback(races[name], every=10)])
    out = []
    for name in networks:
        ours = races[name]
        for key, label in baselines:
            theirs = races[key]
            ratio = theirs.seconds / ours.seconds
            bound = "" if theirs.reached_at is not None else ", baseline capped: ratio is a lower bound"
            out.append(Figure(
                f"reinforce-copy-{name}-{key}", f"REINFORCE ({name}) time to 0.95 on seq:copy length=8", label, "s",
                theirs.seconds, ours.seconds, ratio, (ratio, ratio), f">= 1x, ours reaches 0.95 within {cap:g} s",
                ours.reached_at is not None and ratio >= 1.0,
                f"best greedy accuracy: ours {ours.best:.2f}, baseline {theirs.best:.2f}{bound}; one run each"))
    return out


def bench_rollout(quick: bool) -> list[Figure]:
    """REINFORCE rollout env steps/s: the agent's 64 batched copies against the same agent
    stepping one env at a time (what a user's first loop does)."""
    import torch

    from agents.reinforce import ReinforceAgent

    batches = 2 if quick else 5
    env = gym.make("arena/SequencePrediction-v0", task="copy", length=8)
    agent = ReinforceAgent(network="lstm", num_envs=64, device="cpu")
    agent.build(env)
    agent.max_steps = env.get_wrapper_attr("max_steps")
    venv = agent.batched(env)

    def batched() -> int:
        return sum(int(agent.rollout(venv, i).mask.sum()) for i in range(batches))

    def one_at_a_time() -> int:
        steps = 0
        for episode in range(batches * 2):
            obs, _ = env.reset(seed=episode)
            state, done = agent.reset(seed=episode), False
            while not done:
                with torch.no_grad():
                    action, state = agent.act(obs, state, greedy=False)
                obs, _, term, trunc, _ = env.step(action)
                steps += 1
                done = term or trunc
        return steps

    return [compare("reinforce-rollout", "REINFORCE rollout, LSTM on seq:copy length=8", "one env at a time",
                    one_at_a_time, batched, repeats=3, target=10.0, unit="steps/s", detail="64 batched copies")]


def bench_gpu(updates: int = 20) -> list[Figure]:
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
            agent.fit(env, seed=0, budget=256)  # warm up (CUDA context, kernels)
            t0 = time.perf_counter()
            log = agent.fit(env, seed=0)
            if device == "cuda":
                torch.cuda.synchronize()
            rates[device] = log["env_steps"] / (time.perf_counter() - t0)
            assert log["updates"] == updates
        ratio = rates["cuda"] / rates["cpu"]
        rows.append(Figure(
            f"gpu-reinforce-{network}", f"REINFORCE training, {network}", "the same on the CPU", "steps/s", rates["cpu"],
            rates["cuda"], ratio, (ratio, ratio), "report", True,
            f"256 envs, {updates} updates, {torch.cuda.get_device_name()}, one run each",
        ))
    from agents.gan import GANAgent

    image_env = gym.make("arena/ImageGeneration-v0")
    rates = {}
    for device in ("cpu", "cuda"):
        gan = GANAgent(device=device, batch_size=256)
        gan.fit(image_env, seed=0, budget=2, progress=False)  # warm up
        t0 = time.perf_counter()
        gan.fit(image_env, seed=0, budget=updates, progress=False)
        if device == "cuda":
            torch.cuda.synchronize()
        rates[device] = updates * 256 / (time.perf_counter() - t0)
    ratio = rates["cuda"] / rates["cpu"]
    rows.append(Figure("gpu-gan", "GAN training, img:digits", "the same on the CPU", "images/s", rates["cpu"],
                       rates["cuda"], ratio, (ratio, ratio), "report", True, f"batch 256, {updates} updates, one run each"))
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


def bench_gan_training(quick: bool) -> list[Figure]:
    """GAN training throughput (generated images/s): `gan` through Arena's training loop on
    img:digits against the same model as a plain PyTorch loop, at one and at two torch
    threads (the loop's own costs show most at one)."""
    import torch

    from agents.gan import GANAgent

    updates = 10 if quick else 40
    env = gym.make("arena/ImageGeneration-v0")
    threads = torch.get_num_threads()
    out = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out.append(compare(f"gan-training-{n}t", f"GAN training, img:digits, {n} thread{'s' * (n > 1)}",
                               "plain PyTorch loop, same model", lambda: plain_gan_loop(updates),
                               lambda: GANAgent(device="cpu").fit(env, seed=0, budget=updates, progress=False),
                               repeats=3 if quick else 5, target=0.9, unit="images/s", work=updates * 64,
                               detail=f"{updates} batches of 64", baseline_is_limit=True))
    finally:
        torch.set_num_threads(threads)
    return out


def bench_gan_sampling(quick: bool) -> list[Figure]:
    """Sampling rate (images/s): a `gan` agent's `sample(n)` against calling the same
    generator on torch.randn in a plain loop."""
    import torch

    from agents.gan import GANAgent

    n = 1024 if quick else 4096
    agent = GANAgent(device="cpu")
    agent.fit(gym.make("arena/ImageGeneration-v0"), seed=0, budget=1, progress=False)
    G = agent.modules["generator"].eval()

    def plain() -> None:
        with torch.no_grad():
            G(torch.randn(n, 16)).clamp(0, 1).numpy()

    return [compare("gan-sampling", "GAN sampling", "plain G(torch.randn)", plain, lambda: agent.sample(n, seed=0),
                    repeats=5, target=0.8, unit="images/s", work=n, detail=f"{n} images")]


def plain_rlhf_loop(lm_path: str, rm_path: str, updates: int, prompts: int = 16, k: int = 4, beta: float = 0.5,
                    lr: float = 3e-4, seed: int = 0) -> int:
    """The baseline: RLHF's stage 3 as a plain PyTorch loop, the way a user writes it from the
    paper: the same policy, reference and reward networks (from the stage checkpoints), the
    same sampling (temperature 1, one token at a time, re-reading the sequence), the same
    loss (leave-one-out REINFORCE on r - beta KL, exact per-token KL); no env, no Arena loop,
    no logs, no checkpoints. Returns the responses sampled."""
    import copy

    import torch

    from agents.language import LanguageModel, RewardModel

    lm, rm = LanguageModel(device="cpu").load(lm_path), RewardModel(device="cpu").load(rm_path)
    task = lm.task
    assert task is not None
    policy, reference, reward = copy.deepcopy(lm.writer()).requires_grad_(True), lm.writer(), rm.modules["reward"]
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    g, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    P, B = task.prompt_len, prompts * k
    rows = torch.arange(B)
    for _ in range(updates):
        x = torch.as_tensor(np.repeat(rng.integers(task.vocab, size=(prompts, P)), k, axis=0))
        seq = torch.cat([x, torch.full((B, 1), task.sep)], dim=1)
        done = torch.zeros(B, dtype=torch.bool)
        with torch.no_grad():
            for _ in range(task.max_len):
                token = torch.multinomial(torch.softmax(policy(seq)[:, -1], -1), 1, generator=g)[:, 0]
                seq = torch.cat([seq, token.masked_fill(done, task.pad)[:, None]], dim=1)
                done |= (token == task.eos) | ((seq[:, P + 1:] < task.vocab).sum(1) >= task.max_len)
                if done.all():
                    break
            digits = (seq[:, P + 1:] < task.vocab).sum(1)
            scored = torch.cat([seq, torch.full((B, 1), task.pad)], dim=1)  # room for an end after max_len digits
            end = P + 1 + digits
            scored[:, P + 1:] = torch.where(scored[:, P + 1:] < task.vocab, scored[:, P + 1:], task.pad)
            scored[rows, end] = task.eos
            r = reward(scored)[rows, end, 0]
            ref_logp = torch.log_softmax(reference(seq[:, :-1])[:, P:], -1)
        logp = torch.log_softmax(policy(seq[:, :-1])[:, P:], -1)
        actions = seq[:, P + 1:]
        mask = (actions != task.pad).float()
        taken = logp.gather(-1, actions.clamp(max=task.eos)[..., None])[..., 0] * mask
        kl = ((logp.exp() * (logp - ref_logp)).sum(-1).clamp(min=0) * mask).sum(1)
        R = (r - beta * kl.detach()).view(prompts, k)
        A = (R - (R.sum(1, keepdim=True) - R) / (k - 1)).view(-1)
        loss = -(A * taken.sum(1)).mean() + beta * kl.mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
    return updates * B


def bench_rlhf(quick: bool) -> list[Figure]:
    """ChatGPT's three stages on text:sort: the RL stage's responses per second through Arena's
    loop (`rlhf` with given stage checkpoints: logs every update, five figures) against the
    plain PyTorch loop doing the same sampling and update; and the wall time of the whole
    pipeline (`rlhf` training stages 1 and 2 itself) against its 5-minute target."""
    import tempfile
    from pathlib import Path

    import torch

    from agents.language import RLHF, LanguageModel, RewardModel

    env = gym.make("arena/TextGeneration-v0", task="sort")
    sizes = {"lm": 20, "rm": 50} if quick else {}
    with tempfile.TemporaryDirectory() as folder:
        lm_path, rm_path = str(Path(folder) / "lm.npz"), str(Path(folder) / "rm.npz")
        t0 = time.perf_counter()
        lm = LanguageModel(device="cpu", **({"updates": sizes["lm"]} if quick else {}))
        lm.fit(env, seed=0, progress=False)
        lm.save(lm_path)
        rm = RewardModel(device="cpu", sft=lm_path, **({"updates": sizes["rm"]} if quick else {}))
        rm.fit(env, seed=0, progress=False)
        rm.save(rm_path)
        rl = RLHF(device="cpu", sft=lm_path, reward_model=rm_path, **({"updates": 10} if quick else {}))
        rl.fit(env, seed=0, progress=False)
        pipeline = time.perf_counter() - t0
        updates = 10 if quick else 60
        responses = [compare("rlhf-responses", "RLHF stage 3, text:sort", "plain PyTorch loop, same nets and loss",
                             lambda: plain_rlhf_loop(lm_path, rm_path, updates),
                             lambda: RLHF(device="cpu", sft=lm_path, reward_model=rm_path).fit(
                                 env, seed=0, budget=updates, progress=False),
                             repeats=3, target=0.8, unit="responses/s", work=updates * 16 * 4,
                             detail=f"{updates} updates of 16 prompts x 4 responses, {torch.get_num_threads()} threads",
                             baseline_is_limit=True)]
    budget = "reduced budgets (--quick)" if quick else "default budgets"
    target_s = 300.0
    return responses + [Figure("rlhf-pipeline", "ChatGPT's three stages, text:sort, wall time", "the 5-minute target", "s",
                               target_s, pipeline, target_s / pipeline, (target_s / pipeline, target_s / pipeline),
                               "<= 300 s", pipeline <= target_s,
                               f"stage 1, stage 2 and stage 3 at {budget}, one run, {torch.get_num_threads()} threads")]


def bench_inside(quick: bool) -> list[Figure]:
    """`arena replay --inside`: extracting a network's inside for one episode (attention
    weights of a Transformer, gates of an LSTM) against the plain forward pass over the same
    observations, which is what the policy computes anyway (target: within 2x of it)."""
    import torch

    from agents.inside import attention_map, lstm_gates
    from agents.networks import NetConfig, PolicyNet

    env = gym.make("arena/SequencePrediction-v0", task="copy", length=8)
    obs = np.stack([env.observation_space.sample() for _ in range(16)])
    episodes = 20 if quick else 200
    figures = []
    for body, extract in (("transformer", attention_map), ("lstm", lstm_gates)):
        torch.manual_seed(0)
        net = PolicyNet(env.observation_space, env.action_space, NetConfig(body=body, hidden=64, layers=2, heads=2))

        def forward(net: Any = net) -> None:
            with torch.no_grad():
                for _ in range(episodes):
                    x = net.encoder(torch.as_tensor(obs)).reshape(len(obs), 1, -1)
                    net.body(x, net.body.initial_state(1, x.device))

        def inside(net: Any = net, extract: Any = extract) -> None:
            for _ in range(episodes):
                extract(net, obs)

        figures.append(compare(f"inside-{body}", f"--inside extraction, {body}", "the plain forward pass", forward, inside,
                               repeats=5, target=0.5, unit="episodes/s", work=episodes,
                               target_text=">= 0.5x (within 2x of the forward pass)",
                               detail=f"{episodes} episodes of 16 steps, 2 layers, hidden 64", baseline_is_limit=True))
    return figures


def bench_cli_startup(quick: bool) -> list[Figure]:
    """Wall time of `arena envs` in a fresh interpreter, against listing Gymnasium's registry
    (`gymnasium.pprint_registry()`, what a user runs to see the envs there)."""
    import subprocess
    import sys

    def command(cmd: list[str]) -> Callable[[], None]:
        def run() -> None:
            subprocess.run(cmd, capture_output=True, check=True)

        return run

    figure = compare("cli-startup", "CLI start-up: arena envs", "gymnasium.pprint_registry()",
                     command([sys.executable, "-c", "import gymnasium; gymnasium.pprint_registry()"]),
                     command([sys.executable, "-m", "arena", "envs"]), repeats=3 if quick else 5, target=0.0,
                     target_text="< 1 s", detail="torch is not imported")
    figure.met = figure.ours < 1.0  # the target is on seconds; the ratio is reported
    return [figure]


def _tournament(jobs: int, episodes: int, workers: int) -> None:
    """A tournament of `jobs` Q-learning jobs (grid:four-rooms, one per training seed) in a
    fresh folder, on `workers` processes."""
    import tempfile
    from pathlib import Path

    from arena.leaderboard import Leaderboard
    from arena.tournament import load_suite, run_suite

    with tempfile.TemporaryDirectory(prefix="arena-bench-") as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(f'envs = ["grid:four-rooms"]\ntrain_seeds = {list(range(jobs))}\neval_episodes = 2\n'
                        f'[[agents]]\nname = "q-learning"\nbudget = {episodes}\n')
        run_suite(load_suite(path), Leaderboard(Path(tmp) / "lb.sqlite"), Path(tmp) / "replays", Path(tmp) / "runs",
                  workers=workers)


def bench_tournament_workers(quick: bool) -> list[Figure]:
    """`arena tournament` wall time with 2 workers against 1, on a suite of independent CPU
    jobs (Q-learning on four-rooms, one job per training seed): the process pool's start-up
    and result traffic are in the figure, as a user would meet them."""
    jobs, episodes = 8, 10_000  # jobs of a second or two each, as short as a tournament's get

    def once(workers: int) -> Callable[[], None]:
        return partial(_tournament, jobs, episodes, workers)

    figure = compare("tournament-workers", "tournament, 2 workers", "the same suite, 1 worker", once(1), once(2),
                     repeats=1 if quick else 2, target=1 / 0.6, warm_up=False, target_text="<= 0.6x the time",
                     detail=f"{jobs} Q-learning jobs x {episodes} episodes; ratio = time of 1 worker / time of 2")
    return [figure]


# --------------------------------------------------------------------------- how costs grow (--scale)

# A fresh interpreter builds a maze env, then solves it by value iteration, and prints the
# seconds and peak memory of each (VmHWM is reset between them through /proc/self/clear_refs).
_SCALE = _BUILD.split("before = memory")[0] + """
from agents import dp

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass

before = memory("VmRSS")
t0 = time.perf_counter()
env = gym.make("arena/GridWorld-v0", layout=f"maze-{size}x{size}", slip=0.2)
build = time.perf_counter() - t0
build_mb = max(memory("VmHWM") - before, 0) / 1e6
mdp = env.unwrapped.mdp
reset_peak()
before = memory("VmRSS")
sol = dp.value_iteration(mdp, 0.99, 1e-10)
print(json.dumps({"states": mdp.n_states, "build_s": build, "build_mb": build_mb, "vi_s": sol.seconds,
                  "vi_mb": max(memory("VmHWM") - before, 0) / 1e6}))
"""


def exponent(sizes: list[float], costs: list[float]) -> float:
    """k in cost ~ size^k, by least squares on the logarithms."""
    return float(np.polyfit(np.log(sizes), np.log(costs), 1)[0])


def scale_rows(quick: bool) -> list[dict[str, Any]]:
    """`arena bench --scale`: how costs grow. gym.make of a slippery maze and value iteration
    on it at 256..2048 (seconds and peak memory, each size in a fresh interpreter), batched
    GridWorld steps/s at 1k..64k copies (and the fraction of the compiled walk), and a
    tournament of 8 Q-learning jobs at 1, 2 and 4 workers."""
    import json
    import subprocess
    import sys

    rows: list[dict[str, Any]] = []
    subprocess.run([sys.executable, "-c", _SCALE, "64", "arena"], capture_output=True, check=True)  # compile, cache
    sizes = (256, 512, 1024) if quick else (256, 512, 1024, 2048)
    for size in sizes:
        done = subprocess.run([sys.executable, "-c", _SCALE, str(size), "arena"], capture_output=True, text=True,
                              check=True)
        rows.append({"table": "maze", "size": size, **json.loads(done.stdout)})
    mazes = [r for r in rows if r["table"] == "maze" and r["size"] >= 512]
    for key in ("build_s", "vi_s", "build_mb", "vi_mb"):
        rows.append({"table": "exponent", "of": key, "from": mazes[0]["size"], "to": mazes[-1]["size"],
                     "k": exponent([r["states"] for r in mazes], [max(r[key], 1e-6) for r in mazes])})
    single: Any = gym.make("arena/GridWorld-v0", layout="frozenlake-8x8").unwrapped
    tables = single.step_tables()
    for n in (1024, 4096, 16384, 65536):
        steps = max(8_000_000 // n, 16)
        pool = np.random.default_rng(0).integers(4, size=(16, n))
        venv = gym.make_vec("arena/GridWorld-v0", num_envs=n, vectorization_mode="vector_entry_point",
                            layout="frozenlake-8x8")
        figure = compare(f"scale-batched-{n}", "", "", partial(compiled_walk, tables, n, pool, steps),
                         partial(arena_walk, venv, pool, steps), repeats=3, target=0.0, unit="steps/s",
                         work=n * steps)
        resets = []
        for _ in range(3):
            t0 = time.perf_counter()
            venv.reset(seed=0)
            resets.append(time.perf_counter() - t0)
        rows.append({"table": "batched", "copies": n, "steps_per_s": figure.ours,
                     "compiled_steps_per_s": figure.baseline_value, "fraction_of_limit": figure.ratio,
                     "seeded_reset_s": statistics.median(resets)})
    times = {}
    for workers in (1, 2, 4):
        t0 = time.perf_counter()
        _tournament(jobs=8, episodes=10_000, workers=workers)
        times[workers] = time.perf_counter() - t0
        rows.append({"table": "tournament", "workers": workers, "seconds": times[workers],
                     "of_one_worker": times[workers] / times[1]})
    return rows


def scale_markdown(rows: list[dict[str, Any]]) -> str:
    """The --scale rows as the README's tables."""
    from arena.leaderboard import markdown_table

    def of(table: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["table"] == table]

    k = {r["of"]: r["k"] for r in of("exponent")}
    span = f"{of('exponent')[0]['from']} to {of('exponent')[0]['to']}" if of("exponent") else ""
    parts = [
        markdown_table(("maze", "states", "gym.make s", "gym.make peak MB", "value iteration s", "value iteration peak MB"),
                       [(f"{r['size']}x{r['size']}", f"{r['states']:,}", f"{r['build_s']:.3f}", f"{r['build_mb']:.0f}",
                         f"{r['vi_s']:.3f}", f"{r['vi_mb']:.0f}") for r in of("maze")]
                       + [(f"exponent k ({span})", "cost ~ states^k", f"{k.get('build_s', 0):.2f}",
                           f"{k.get('build_mb', 0):.2f}", f"{k.get('vi_s', 0):.2f}", f"{k.get('vi_mb', 0):.2f}")]),
        markdown_table(("copies", "Arena steps/s", "compiled walk steps/s", "of the limit", "seeded reset s"),
                       [(f"{r['copies']:,}", f"{r['steps_per_s']:,.3g}", f"{r['compiled_steps_per_s']:,.3g}",
                         f"{r['fraction_of_limit']:.2f}", f"{r['seeded_reset_s']:.4f}") for r in of("batched")]),
        markdown_table(("workers", "tournament s (8 Q-learning jobs)", "of 1 worker"),
                       [(str(r["workers"]), f"{r['seconds']:.1f}", f"{r['of_one_worker']:.2f}") for r in of("tournament")]),
    ]
    return "\n".join(parts)


# In the order `arena bench` runs them; each takes `quick` (fewer steps and repeats) and
# returns its figures. A figure's id starts with its benchmark's key.
BENCHMARKS: dict[str, Callable[[bool], list[Figure]]] = {
    "env-step": bench_env_step,
    "render-fps": bench_render,
    "batched": bench_batched,
    "grid-build": bench_grid_build,
    "vi": bench_value_iteration,
    "q-learning": bench_q_learning,
    "reinforce-rollout": bench_rollout,
    "reinforce-copy": bench_reinforce_copy,
    "cli-startup": bench_cli_startup,
    "gan-training": bench_gan_training,
    "gan-sampling": bench_gan_sampling,
    "tournament-workers": bench_tournament_workers,
    "rlhf": bench_rlhf,
    "inside": bench_inside,
}


def run_all(quick: bool = False, only: list[str] | None = None) -> list[Figure]:
    """Every benchmark (or those whose key is in `only`), in order."""
    return [figure for key, bench in BENCHMARKS.items() if not only or key in only for figure in bench(quick)]
