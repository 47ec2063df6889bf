"""Agents a user writes outside the package, as the README shows: registered by name, they
run wherever a built-in does. Imported by tests/test_user_agent.py (and, by name, by the
worker processes and Ray tasks of a tournament)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.checkpoint import load_checkpoint, load_settings, save_checkpoint
from agents.tabular import LearnerSettings, TabularLearner
from agents.training import AgentBase, env_ref
from arena import settings as typed
from arena.errors import AgentError
from arena.settings import setting


# --------------------------------------------------------------------------- the README's example


@dataclass(frozen=True)
class OptimisticSettings(LearnerSettings):
    """Q-learning's settings, plus the optimistic start."""

    q0: float = setting(1.0, help="initial value of every Q(s, a): optimism drives exploration (S&B 2.6)",
                        low=-1e6, high=1e6)


class OptimisticQ(TabularLearner):
    """Greedy Q-learning from optimistic initial values (Sutton & Barto 2.6): no epsilon needed."""

    name = "optimistic-q"
    Settings = OptimisticSettings

    def init_tables(self, n_states: int, n_actions: int) -> None:
        self.tables = {"Q": np.full((n_states, n_actions), self.settings.q0)}

    def learn_episode(self, env: Any, seed: int) -> float:
        gamma, alpha, Q = self.settings.gamma, self.alpha_now, self.tables["Q"]
        s, _ = env.reset(seed=seed)
        G, done = 0.0, False
        while not done:
            a = self.explore(s)
            s2, r, terminated, truncated, _ = env.step(a)
            # Q(S,A) <- Q(S,A) + alpha [R + gamma max_a Q(S',a) - Q(S,A)]
            target = r if terminated else r + gamma * Q[s2].max()
            Q[s, a] += alpha * (target - Q[s, a])
            G, s, done = G + r, s2, terminated or truncated
        return G


# --------------------------------------------------------------------------- the protocol alone, no built-in base


@dataclass(frozen=True)
class FixedSettings:
    """The fixed policy's one setting."""

    action: int = setting(1, help="the action it always takes", low=0, high=1000)


class FixedAction(AgentBase):
    """Always the same action: a Planner written against the protocol alone (agents/protocol.py)."""

    name = "fixed-action"
    Settings = FixedSettings

    def __init__(self, **settings: Any) -> None:
        self.settings = typed.build(FixedSettings, settings, AgentError)
        self.trained_on: dict[str, Any] | None = None

    def plan(self, env: Any, seed: int) -> dict[str, Any]:
        if self.settings.action >= env.action_space.n:
            raise AgentError(f"action {self.settings.action} does not exist in {env.action_space}")
        self.trained_on = env_ref(env)
        return {}

    def reset(self, seed: int | None = None) -> None:
        return None

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        return self.settings.action, None

    def save(self, path: str | Path) -> Path:
        return save_checkpoint(path, self.name, self.config(), {"action": np.array(self.settings.action)},
                               env=self.trained_on)

    def load(self, path: str | Path, env: Any = None) -> "FixedAction":
        _, meta = load_checkpoint(path, self.name)
        self.settings = load_settings(FixedSettings, meta, path, self.name)
        return self

    def check_fits(self, env: Any) -> None:
        return None

    def digest(self) -> str:
        return ""

    def overlay(self) -> dict[str, np.ndarray]:
        return {}


def register() -> None:
    """Register both under their names (idempotent)."""
    import arena

    arena.register_agent("optimistic-q", OptimisticQ, replace=True)
    arena.register_agent("fixed-action", FixedAction, replace=True)
