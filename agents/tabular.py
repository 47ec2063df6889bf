"""What tabular agents share: tables over states, epsilon-greedy acting, schedules, settings.

`TabularAgent` holds tables (V, Q, policy) and plays from them; DP fills them by
planning (agents/dp.py). `TabularLearner` fills Q from experience: an algorithm file
(td.py, monte_carlo.py) writes only `learn_episode`, one episode of the textbook
algorithm; budgets, progress, checkpoints, Ctrl-C and --resume are the one training
loop's (agents/training.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.checkpoint import arrays_digest, load_checkpoint, load_settings, require, save_checkpoint, started_from
from agents.training import AgentBase, Budget, TrainingLog, episode_seed
from arena import settings as typed
from arena.errors import AgentError, CheckpointError
from arena.settings import setting
from envs.abilities import MasksActions


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class GammaSettings:
    """Settings of agents that only discount: DP planners."""

    gamma: float = setting(0.99, help="discount factor gamma", low=0.0, high=1.0)


@dataclass(frozen=True)
class LearnerSettings:
    """Settings every tabular learner takes."""

    gamma: float = setting(0.99, help="discount factor gamma", low=0.0, high=1.0)
    alpha: float = setting(0.1, help="step size alpha at the start", low=0.0, high=1.0, low_open=True)
    alpha_end: float | None = setting(0.002, help="step size after the decay (null: alpha stays constant)",
                                      low=0.0, high=1.0, low_open=True)
    epsilon: float = setting(0.5, help="exploration probability epsilon at the start", low=0.0, high=1.0)
    epsilon_end: float | None = setting(0.01, help="epsilon after the decay (null: epsilon stays constant)",
                                        low=0.0, high=1.0)
    decay: float = setting(0.8, help="fraction of the budget over which alpha and epsilon decay linearly",
                           low=0.0, high=1.0, low_open=True)
    episodes: int = setting(2000, help="training budget in episodes", low=1, high=10**9)


# --------------------------------------------------------------------------- agents with tables


class TabularAgent:
    """An agent whose knowledge is tables over states: V (S,), Q (S, A), policy (S, A).

    Plays environments with a Discrete observation space (a state index). The greedy
    action is argmax_a policy(a|s) (ties to the lowest action).
    """

    name = "tabular"
    recurrent = False
    Settings: type = GammaSettings
    fit, config, run_spec = AgentBase.fit, AgentBase.config, AgentBase.run_spec  # shared without another base class
    table_names: tuple[str, ...] = ("V", "Q", "policy")
    unit = "episode"

    def __init__(self, **settings: Any) -> None:
        self.settings = typed.build(self.Settings, settings, AgentError)
        self.tables: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng(0)
        self.seed = 0
        self.trained_on: dict[str, Any] | None = None
        self.budget: Budget | None = None
        self.log = TrainingLog()

    def check_env(self, env: gym.Env) -> int:
        """The number of states, after checking the env is one a table can play."""
        from gymnasium import spaces

        obs_space, act_space = env.observation_space, env.action_space
        if not isinstance(obs_space, spaces.Discrete) or not isinstance(act_space, spaces.Discrete):
            raise AgentError(
                f"{self.name} is tabular: it needs Discrete observations and actions, got "
                f"{type(obs_space).__name__} observations; for a grid use obs=index"
            )
        return int(obs_space.n)

    def check_fits(self, env: gym.Env) -> None:
        """Fail if loaded tables were learned on an env of another size."""
        n_states, policy = self.check_env(env), self.policy_table()
        n_actions = int(env.action_space.n)  # type: ignore[attr-defined]  # Discrete: check_env made sure
        if policy.shape != (n_states, n_actions):
            raise AgentError(
                f"the checkpoint's tables cover {policy.shape[0]} states x {policy.shape[1]} actions; this env has "
                f"{n_states} x {n_actions}: use a checkpoint trained on this env"
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

    def digest(self) -> str:
        """Names what the agent has learned (SHA-256 of its tables)."""
        return arrays_digest(self.tables) if self.tables else ""

    def _fitted(self, table: str) -> np.ndarray:
        if table not in self.tables:
            raise AgentError(f"{self.name} has not been fitted; call fit(env) or load(path) first")
        return self.tables[table]

    # ---------------------------------------------------------------- the one checkpoint format

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps besides the tables (a learner adds its RNG state)."""
        return {}

    def save(self, path: str | Path) -> Path:
        """Tables, settings, env, budget, seed and state in Arena's checkpoint format."""
        self._fitted(self.table_names[0])
        return save_checkpoint(
            path, self.name, self.config(), {**self.tables, **self.log.arrays()}, env=self.trained_on,
            budget=self.budget.as_dict() if self.budget else None, seed=self.seed, state=self.state(),
        )

    def load(self, path: str | Path, env: gym.Env | None = None) -> "TabularAgent":
        arrays, meta = load_checkpoint(path, self.name)
        settings = load_settings(self.Settings, meta, path, self.name)
        tables = {k: v for k, v in arrays.items() if k in self.table_names}
        first = tables.get(self.table_names[0])
        shape = first.shape if first is not None and first.ndim >= 1 else (None, None)
        if first is None or first.size == 0 or (first.ndim == 2 and first.shape[1] == 0):
            raise CheckpointError(f"{path} lacks a valid {self.table_names[0]!r} table; it was not written by {self.name}")
        for name in self.table_names:
            want = (shape[0],) if name == "V" else (shape[0], None)
            require(tables, path, self.name, **{name: want})
        if any(t.shape[:1] != shape[:1] or (t.ndim == 2 and t.shape != tables.get("Q", t).shape) for t in tables.values()):
            raise CheckpointError(f"{path}: its tables disagree in size; it is damaged: write it again")
        self.settings, self.tables = settings, {k: v.astype(float) for k, v in tables.items()}
        self.trained_on, self.seed = meta["env"], int(meta["seed"] or 0)
        self.budget = Budget.from_dict(meta["budget"], path) if meta["budget"] else None
        self.log = TrainingLog()
        self.log.restore_arrays(arrays)
        self.restore_state(meta["state"], path)
        return self

    def restore_state(self, state: dict[str, Any], path: str | Path) -> None:
        """Restore what `state()` saved."""


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


# --------------------------------------------------------------------------- learners


class TabularLearner(TabularAgent):
    """Learns Q(s, a) from experience, episode by episode, acting epsilon-greedily.

    alpha and epsilon decay linearly to alpha_end / epsilon_end over the first `decay`
    fraction of the budget. Subclasses implement `learn_episode`.
    """

    name = "tabular-learner"
    Settings: type = LearnerSettings
    table_names: tuple[str, ...] = ("Q",)
    # compiled episodes (td.py) where the algorithm has one and the env allows it; they give the
    # same Q bit for bit. False: every step through env.step (the reference path).
    fused = True

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.alpha_now, self.epsilon_now = self.settings.alpha, self.settings.epsilon
        self.fused_on: tuple[Any, Any] | None = None  # (env, its step tables or None): agents/td.py
        self.allowed: np.ndarray | None = None  # (S, A) the actions each state offers, where the env masks some
        self.started_from: dict[str, str] | None = None  # the checkpoint a run began from (fit(init=...))

    @property
    def Q(self) -> np.ndarray:
        return self._fitted("Q")

    @property
    def episodes_done(self) -> int:
        return self.budget.done if self.budget else 0

    def init_tables(self, n_states: int, n_actions: int) -> None:
        """Fresh tables: Q = 0 everywhere (subclasses add their own, e.g. counts)."""
        self.tables = {"Q": np.zeros((n_states, n_actions))}

    # ---------------------------------------------------------------- acting

    def greedy(self, s: int) -> int:
        """argmax_a Q(s, a), ties broken at random: so an all-zero row does not always pick action 0."""
        row = self.tables["Q"][s].tolist()  # 4 Python floats: cheaper than NumPy calls per step
        top = max(row)
        best = [a for a, q in enumerate(row) if q == top]
        return best[0] if len(best) == 1 else best[int(self.rng.integers(len(best)))]

    def explore(self, s: int) -> int:
        """The epsilon-greedy behaviour: a random action (of those state s offers) with
        probability epsilon, else greedy."""
        if self.rng.random() < self.epsilon_now:
            if self.allowed is not None:
                offered = np.flatnonzero(self.allowed[s])
                return int(offered[self.rng.integers(len(offered))])
            return int(self.rng.integers(self.tables["Q"].shape[1]))
        return self.greedy(s)

    def epsilon_greedy_probs(self, s: int) -> np.ndarray:
        """pi(.|s) of the epsilon-greedy policy (greedy mass split among tied maxima; 0 for an
        action the state does not offer)."""
        q = self.tables["Q"][s]
        if self.allowed is None:
            best = q == q.max()
            return self.epsilon_now / len(q) + (1.0 - self.epsilon_now) * best / best.sum()
        offered = self.allowed[s]
        best = offered & (q == q[offered].max())
        return offered * (self.epsilon_now / offered.sum()) + (1.0 - self.epsilon_now) * best / best.sum()

    def expected_value(self, s: int) -> float:
        """sum_a pi(a|s) Q(s, a) under the epsilon-greedy policy (over the actions s offers)."""
        p, q = self.epsilon_greedy_probs(s), self.tables["Q"][s]
        if self.allowed is None:
            return float(p @ q)
        offered = self.allowed[s]
        return float(p[offered] @ q[offered])

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

    # ---------------------------------------------------------------- what the training loop calls

    def learn_episode(self, env: gym.Env, seed: int) -> float:
        """Play one episode from env.reset(seed=seed), learning as the algorithm says; return G."""
        raise NotImplementedError

    def begin(self, env: gym.Env, seed: int) -> None:
        self.init_tables(self.check_env(env), int(env.action_space.n))  # type: ignore[attr-defined]  # Discrete
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self._read_offers(env)
        if self.allowed is not None:  # an action a state does not offer is never greedy, even after loading
            for name in ("Q", "Q1", "Q2"):
                if name in self.tables:
                    self.tables[name][~self.allowed] = -np.inf

    def _read_offers(self, env: gym.Env) -> None:
        """The actions each state of `env` offers (MasksActions), or None where every state offers all."""
        u = env.unwrapped
        self.allowed = np.asarray(u.action_mask, dtype=bool) if isinstance(u, MasksActions) else None

    def load(self, path: str | Path, env: gym.Env | None = None) -> "TabularLearner":
        """TabularAgent.load, and with the env, the actions its states offer (so a resumed run explores as before)."""
        super().load(path, env)
        if env is not None:
            self._read_offers(env)
        return self

    def learn(self, env: gym.Env, index: int, progress: float) -> dict[str, float]:
        s = self.settings
        self.alpha_now = Schedule(s.alpha, s.alpha_end, s.decay).at(progress)
        self.epsilon_now = Schedule(s.epsilon, s.epsilon_end, s.decay).at(progress)
        G = self.learn_episode(env, episode_seed(self.seed, index))
        return {"return": G, "epsilon": self.epsilon_now, "alpha": self.alpha_now}

    def finish(self) -> dict[str, Any]:
        return {}

    # ---------------------------------------------------------------- the budget: one episode per unit

    budget_unit = "episode"

    def default_budget(self) -> int:
        return int(self.settings.episodes)

    def units_for(self, budget: int) -> int:
        return int(budget)

    def trained(self) -> int:
        return self.episodes_done

    # ---------------------------------------------------------------- checkpoints with training state

    def state(self) -> dict[str, Any]:
        """The RNG state at a unit boundary: with the tables, enough to --resume bit for bit
        (and, for a run begun from given tables, which ones)."""
        out: dict[str, Any] = {"rng": self.rng.bit_generator.state}
        if self.started_from:
            out["started_from"] = self.started_from
        return out

    def start_from(self, path: Path, env: gym.Env) -> None:
        """Take the tables of the checkpoint at `path` (StartsFrom); keep this run's settings and seed."""
        source = type(self)(**typed.as_dict(self.settings)).load(path, env=env)
        for name in self.tables:
            if name not in source.tables or source.tables[name].shape != self.tables[name].shape:
                raise CheckpointError(f"{path} holds no {self.tables[name].shape} {name!r} table for this env; "
                                      f"start from a checkpoint of {self.name} on it")
            self.tables[name] = source.tables[name].copy()
        self.started_from = started_from(path)

    def restore_state(self, state: dict[str, Any], path: str | Path) -> None:
        self.started_from = state.get("started_from")
        if "rng" not in state:
            return
        try:
            rng = np.random.default_rng()
            rng.bit_generator.state = state["rng"]
        except (TypeError, ValueError, KeyError):
            raise CheckpointError(f"{path}: its RNG state is damaged; it cannot be resumed") from None
        self.rng = rng


__all__ = ["GammaSettings", "LearnerSettings", "Schedule", "TabularAgent", "TabularLearner", "episode_seed"]
