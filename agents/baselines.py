"""Reference points every score is measured against: the uniformly random agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.base import CHECKPOINT_KIND, CHECKPOINT_VERSION, AgentError, read_arrays, write_arrays


class RandomAgent:
    """Picks each action uniformly at random: the 0 of every normalised score."""

    name = "random"

    def __init__(self) -> None:
        self.n_actions = 0
        self.rng = np.random.default_rng(0)

    def config(self) -> dict[str, Any]:
        return {}

    def fit(self, env: Any, seed: int = 0, **budget: Any) -> dict[str, Any]:
        from gymnasium import spaces

        if not isinstance(env.action_space, spaces.Discrete):
            raise AgentError(f"random plays Discrete actions; got {type(env.action_space).__name__}")
        self.n_actions = int(env.action_space.n)
        return {}

    def check_fits(self, env: Any) -> None:
        if env.action_space.n != self.n_actions:
            raise AgentError(f"the checkpoint plays {self.n_actions} actions; this env has {env.action_space.n}")

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        return None

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        if self.n_actions == 0:
            raise AgentError("random has not been fitted; call fit(env) first")
        return int(self.rng.integers(self.n_actions)), None

    def policy_table(self, n_states: int) -> np.ndarray:
        """(S, A) uniform action probabilities."""
        return np.full((n_states, self.n_actions), 1.0 / self.n_actions)

    def overlay(self) -> dict[str, np.ndarray]:
        return {}

    def digest(self) -> str:
        return ""

    def save(self, path: str | Path) -> Path:
        write_arrays(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, {"n_actions": np.array(self.n_actions)}, {"agent": self.name, "config": {}})
        return Path(path)

    def load(self, path: str | Path, env: Any = None) -> "RandomAgent":
        arrays, meta = read_arrays(path, CHECKPOINT_KIND, (CHECKPOINT_VERSION,))
        if meta.get("agent") != self.name:
            raise AgentError(f"{path} is a checkpoint of {meta.get('agent')!r}, not 'random'")
        self.n_actions = int(arrays["n_actions"])
        return self
