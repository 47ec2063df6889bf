"""What tabular agents share: tables over states, epsilon-greedy acting, schedules, and the
training loop (budget, progress bar, learning curve, checkpoint, Ctrl-C and --resume).

An algorithm file (td.py, monte_carlo.py) only writes `learn_episode`: one episode of
experience and its updates, in textbook form. Everything around it lives here, once.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import (
    CHECKPOINT_KIND,
    CHECKPOINT_VERSION,
    AgentError,
    TrainingInterrupted,
    TrainingLog,
    arrays_digest,
    read_arrays,
    write_arrays,
)


def check_range(name: str, value: float, low: float, high: float, low_open: bool = False) -> float:
    """`value` as a float, or an AgentError naming the parameter and its allowed range."""
    ok = (low < value if low_open else low <= value) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise AgentError(f"{name}={value} is out of range; use a value in {bracket}{low:g}, {high:g}]")
    return float(value)


class TabularAgent:
    """An agent whose knowledge is tables over states: V (S,), Q (S, A), policy (S, A).

    Plays environments with a Discrete observation space (a state index). The greedy
    action is argmax_a policy(a|s) (ties to the lowest action). Subclasses fill the
    tables in `fit`.
    """

    name = "tabular"
    table_names: tuple[str, ...] = ("V", "Q", "policy")

    def __init__(self, gamma: float = 0.99) -> None:
        self.gamma = check_range("gamma", gamma, 0.0, 1.0)
        self.tables: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng(0)

    def config(self) -> dict[str, Any]:
        return {"gamma": self.gamma}

    def check_env(self, env: Any) -> int:
        """The number of states, after checking the env is one a table can play."""
        from gymnasium import spaces

        obs_space, act_space = env.observation_space, env.action_space
        if not isinstance(obs_space, spaces.Discrete) or not isinstance(act_space, spaces.Discrete):
            raise AgentError(
                f"{self.name} is tabular: it needs Discrete observations and actions, got "
                f"{type(obs_space).__name__} observations; for a grid use obs=index"
            )
        return int(obs_space.n)

    def check_fits(self, env: Any) -> None:
        """Fail if loaded tables were learned on an env of another size."""
        n_states, policy = self.check_env(env), self.policy_table()
        if policy.shape != (n_states, env.action_space.n):
            raise AgentError(
                f"the checkpoint's tables cover {policy.shape[0]} states x {policy.shape[1]} actions; this env has "
                f"{n_states} x {env.action_space.n}: use a checkpoint trained on this env"
            )

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        return None

    def state_index(self, obs: Any, n_states: int) -> int:
        if np.ndim(obs) != 0 or not 0 <= int(obs) < n_states:
            raise AgentError(f"{self.name} got observation {obs!r}; it plays state indices 0..{n_states - 1} (obs=index)")
        return int(obs)

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        policy = self._fitted("policy")
        row = policy[self.state_index(obs, len(policy))]
        if greedy:
            return int(np.argmax(row)), None
        return int(self.rng.choice(len(row), p=row)), None

    def policy_table(self) -> np.ndarray:
        """(S, A) action probabilities of the policy `act` follows when greedy."""
        policy = self._fitted("policy")
        return np.eye(policy.shape[1])[policy.argmax(axis=1)]

    def overlay(self) -> dict[str, np.ndarray]:
        """What the viewer can draw: value heatmap, greedy arrows, Q."""
        return {k: v for k, v in self.tables.items() if k in ("V", "Q", "policy")}

    def save(self, path: str | Path) -> Path:
        self._fitted(self.table_names[0])
        write_arrays(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, self.tables, {"agent": self.name, "config": self.config()})
        return Path(path)

    def load(self, path: str | Path, env: Any = None) -> "TabularAgent":
        arrays, meta = read_arrays(path, CHECKPOINT_KIND, (CHECKPOINT_VERSION,))
        if meta.get("agent") != self.name:
            raise AgentError(f"{path} is a checkpoint of {meta.get('agent')!r}, not {self.name!r}; load it with that agent")
        missing = set(self.table_names) - set(arrays)
        if missing:
            raise AgentError(f"{path} lacks table(s) {sorted(missing)}; it was not written by {self.name}")
        self.tables = {k: v for k, v in arrays.items() if not k.startswith("log_")}
        for key, value in meta.get("config", {}).items():
            setattr(self, key, value)
        return self

    def digest(self) -> str:
        """Names what the agent has learned (SHA-256 of its tables)."""
        return arrays_digest(self.tables) if self.tables else ""

    def _fitted(self, table: str) -> np.ndarray:
        if table not in self.tables:
            raise AgentError(f"{self.name} has not been fitted; call fit(env) or load(path) first")
        return self.tables[table]


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class Schedule:
    """A value that moves linearly from `start` to `end` over the first `fraction` of training."""

    start: float
    end: float | None = None  # None: constant
    fraction: float = 0.8

    def at(self, progress: float) -> float:
        """The value after `progress` (0..1) of the training budget."""
        if self.end is None:
            return self.start
        x = min(progress / self.fraction, 1.0)
        return self.start + x * (self.end - self.start)


def episode_seed(seed: int, episode: int) -> int:
    """The env seed of training episode `episode`: one stream per (run seed, episode)."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


# --------------------------------------------------------------------------- learners


class TabularLearner(TabularAgent):
    """Learns Q(s, a) from experience, episode by episode, acting epsilon-greedily.

    Settings: gamma, alpha (step size, (0, 1]), epsilon (exploration, [0, 1]); with
    alpha_end / epsilon_end they decay linearly to those values over the first `decay`
    fraction of the `episodes` budget. Subclasses implement `learn_episode`.
    """

    name = "tabular-learner"
    table_names: tuple[str, ...] = ("Q",)
    default_episodes = 2000

    def __init__(
        self,
        gamma: float = 0.99,
        alpha: float = 0.1,
        alpha_end: float | None = 0.002,
        epsilon: float = 0.5,
        epsilon_end: float | None = 0.01,
        decay: float = 0.8,
        episodes: int | None = None,
        eval_every: int | None = None,
    ) -> None:
        super().__init__(gamma)
        self.alpha = check_range("alpha", alpha, 0.0, 1.0, low_open=True)
        self.alpha_end = None if alpha_end is None else check_range("alpha_end", alpha_end, 0.0, 1.0, low_open=True)
        self.epsilon = check_range("epsilon", epsilon, 0.0, 1.0)
        self.epsilon_end = None if epsilon_end is None else check_range("epsilon_end", epsilon_end, 0.0, 1.0)
        self.decay = check_range("decay", decay, 0.0, 1.0, low_open=True)
        self.episodes = self.default_episodes if episodes is None else int(episodes)
        if self.episodes < 1:
            raise AgentError(f"episodes={self.episodes} is out of range; train for at least 1 episode")
        self.eval_every = int(eval_every) if eval_every else max(1, self.episodes // 50)
        self.alpha_now, self.epsilon_now = self.alpha, self.epsilon
        self.episodes_done = 0
        self.seed = 0
        self.log = TrainingLog()

    def config(self) -> dict[str, Any]:
        return {
            "gamma": self.gamma, "alpha": self.alpha, "alpha_end": self.alpha_end, "epsilon": self.epsilon,
            "epsilon_end": self.epsilon_end, "decay": self.decay, "episodes": self.episodes,
        }

    # ---------------------------------------------------------------- tables and acting

    @property
    def Q(self) -> np.ndarray:
        return self._fitted("Q")

    def init_tables(self, n_states: int, n_actions: int) -> None:
        """Fresh tables: Q = 0 everywhere (subclasses add their own, e.g. counts)."""
        self.tables = {"Q": np.zeros((n_states, n_actions))}

    def greedy(self, s: int) -> int:
        """argmax_a Q(s, a), ties broken at random: so an all-zero row does not always pick action 0."""
        row = self.tables["Q"][s].tolist()  # 4 Python floats: cheaper than NumPy calls per step
        top = max(row)
        best = [a for a, q in enumerate(row) if q == top]
        return best[0] if len(best) == 1 else best[int(self.rng.integers(len(best)))]

    def explore(self, s: int) -> int:
        """The epsilon-greedy behaviour: a random action with probability epsilon, else greedy."""
        if self.rng.random() < self.epsilon_now:
            return int(self.rng.integers(self.tables["Q"].shape[1]))
        return self.greedy(s)

    def epsilon_greedy_probs(self, s: int) -> np.ndarray:
        """pi(.|s) of the epsilon-greedy policy (greedy mass split among tied maxima)."""
        q = self.tables["Q"][s]
        A = len(q)
        best = q == q.max()
        return self.epsilon_now / A + (1.0 - self.epsilon_now) * best / best.sum()

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        Q = self.Q
        s = self.state_index(obs, len(Q))
        if greedy:
            return int(np.argmax(Q[s])), None
        return self.explore(s), None

    def policy_table(self) -> np.ndarray:
        Q = self.Q
        return np.eye(Q.shape[1])[Q.argmax(axis=1)]

    def overlay(self) -> dict[str, np.ndarray]:
        Q = self.Q
        return {"V": Q.max(axis=1), "Q": Q.copy(), "policy": self.policy_table()}

    # ---------------------------------------------------------------- the training loop

    def learn_episode(self, env: Any, seed: int) -> float:
        """Play one episode from env.reset(seed=seed), learning as the algorithm says; return G."""
        raise NotImplementedError

    def fit(
        self,
        env: Any,
        seed: int = 0,
        episodes: int | None = None,
        run_dir: str | Path | None = None,
        resume: str | Path | None = None,
        progress: bool | None = None,
    ) -> dict[str, Any]:
        """Train for `episodes` (default: the agent's budget), logging and checkpointing to run_dir."""
        n_states = self.check_env(env)
        total = self.episodes if episodes is None else int(episodes)
        if total < 1:
            raise AgentError(f"episodes={total} is out of range; train for at least 1 episode")
        run_dir = Path(run_dir) if run_dir else None
        self.log = TrainingLog(run_dir)
        if resume:
            self.load(resume)
            self.check_fits(env)
        else:
            self.init_tables(n_states, int(env.action_space.n))
            self.rng = np.random.default_rng(seed)
            self.episodes_done, self.seed = 0, seed
        mdp = getattr(env.unwrapped, "mdp", None)
        self.horizon = int(getattr(env.unwrapped, "max_steps", 1000))
        optimum = None
        if mdp is not None:
            from agents import dp

            optimum = float(mdp.start @ dp.value_iteration(mdp, self.gamma).V)
            self.log.optimum = optimum

        bar = _progress_bar(progress, total, self.episodes_done, f"{self.name}")
        ctrl_c = _CtrlC()
        try:
            for episode in range(self.episodes_done, total):
                if ctrl_c.pressed:
                    raise KeyboardInterrupt
                self.alpha_now = Schedule(self.alpha, self.alpha_end, self.decay).at(episode / total)
                self.epsilon_now = Schedule(self.epsilon, self.epsilon_end, self.decay).at(episode / total)
                G = self.learn_episode(env, episode_seed(self.seed, episode))
                self.episodes_done = episode + 1
                self.log.episode(G, epsilon=self.epsilon_now, alpha=self.alpha_now)
                if mdp is not None and (self.episodes_done % self.eval_every == 0 or self.episodes_done == total):
                    self.log.evaluation(self.episodes_done, self.exact_J(mdp))
                if bar is not None:
                    bar.update(1, G, self.epsilon_now)
        except KeyboardInterrupt:
            checkpoint = self.save(run_dir / "checkpoint.npz") if run_dir else None
            raise TrainingInterrupted(self.episodes_done, checkpoint) from None
        finally:
            ctrl_c.restore()
            if bar is not None:
                bar.close()
            self.log.close()
        out: dict[str, Any] = {"episodes": self.episodes_done}
        if self.log.evals:
            out["greedy_J"] = self.log.evals[-1][1]
        if optimum is not None:
            out["optimal_J"] = optimum
        if run_dir is not None:
            out["curve"] = str(self.log.plot(run_dir / "learning_curve.png", f"{self.name}: learning curve"))
        return out

    def exact_J(self, mdp: Any) -> float:
        """J of the current greedy policy, by DP policy evaluation (exact, cheap on grids).

        With gamma = 1 a greedy policy that loops forever has J = -inf; then the curve
        shows what an episode cut off at the step limit would return instead.
        """
        from agents import dp

        try:
            return float(mdp.start @ dp.policy_evaluation(mdp, self.policy_table(), self.gamma))
        except dp.DPError:
            return float(mdp.start @ dp.finite_horizon_evaluation(mdp, self.policy_table(), self.horizon, self.gamma))

    # ---------------------------------------------------------------- checkpoints with training state

    def save(self, path: str | Path) -> Path:
        """Tables, the learning curve so far and the RNG state: enough to --resume bit for bit."""
        self._fitted("Q")
        meta = {
            "agent": self.name, "config": self.config(), "episodes_done": self.episodes_done,
            "seed": self.seed, "rng": self.rng.bit_generator.state,
        }
        write_arrays(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, {**self.tables, **self.log.arrays()}, meta)
        return Path(path)

    def load(self, path: str | Path, env: Any = None) -> "TabularLearner":
        super().load(path, env)
        arrays, meta = read_arrays(path, CHECKPOINT_KIND, (CHECKPOINT_VERSION,))
        self.episodes_done = int(meta.get("episodes_done", 0))
        self.seed = int(meta.get("seed", 0))
        if "rng" in meta:
            self.rng = np.random.default_rng()
            self.rng.bit_generator.state = meta["rng"]
        self.log.restore(arrays)
        return self


class _CtrlC:
    """While training, the first Ctrl-C asks to stop after the current episode (so the
    checkpoint holds whole episodes and --resume is exact); a second one stops at once."""

    def __init__(self) -> None:
        import signal
        import threading

        self.pressed = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def restore(self) -> None:
        if self._previous is not None:
            import signal

            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


class _Bar:
    """A rich progress bar showing the recent mean return and epsilon."""

    def __init__(self, total: int, done: int, label: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from rich.console import Console

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(), transient=True, console=Console(stderr=True),
        )
        self.task = self.progress.add_task(f"training {label}", total=total, completed=done, info="")
        self.recent: list[float] = []
        self.progress.start()

    def update(self, n: int, G: float, epsilon: float) -> None:
        self.recent = (self.recent + [G])[-100:]
        self.progress.update(
            self.task, advance=n, info=f"return {np.mean(self.recent):8.2f}  eps {epsilon:.3f}"
        )

    def close(self) -> None:
        self.progress.stop()


def _progress_bar(progress: bool | None, total: int, done: int, label: str) -> _Bar | None:
    show = sys.stderr.isatty() if progress is None else progress
    return _Bar(total, done, label) if show else None
