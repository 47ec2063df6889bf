"""The Agent protocol: what the arena plays against, whatever the family.

An agent learns with `fit(env, ...)` (learners through the one training loop in
agents/training.py), acts with `act(obs, state, greedy)`, and is saved and restored
with `save(path)` / `load(path, env)` in the one checkpoint format
(agents/checkpoint.py). Its settings are one typed dataclass (`Settings`, built with
arena/settings.py), so `--set` and `arena agents NAME` read the same declaration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Agent(Protocol):
    """The interface the arena plays against. `name` is the registry name."""

    name: str
    settings: Any  # an instance of the agent's settings dataclass

    def reset(self, seed: int | None = None) -> Any:
        """Start an episode: seeds any randomness in acting; returns the initial recurrent state."""
        ...

    def fit(self, env: Any, seed: int = 0, **budget: Any) -> dict[str, Any]:
        """Learn on `env`; returns a training log (figures worth printing)."""
        ...

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[Any, Any]:
        """The action for `obs` and the agent's next recurrent state (None if it has none)."""
        ...

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint in Arena's one format."""
        ...

    def load(self, path: str | Path, env: Any = None) -> "Agent":
        """Restore from a checkpoint; `env` lets a network rebuild itself for the env's spaces."""
        ...

    def config(self) -> dict[str, Any]:
        """Settings, JSON-serialisable: they go on the leaderboard."""
        ...

    def check_fits(self, env: Any) -> None:
        """Fail with an AgentError if a loaded agent cannot play `env`."""
        ...

    def digest(self) -> str:
        """A SHA-256 naming what the agent has learned ('' if nothing)."""
        ...

    def overlay(self) -> dict[str, np.ndarray]:
        """What the viewer can draw (V, Q, policy), or {}."""
        ...


class Player:
    """Something that plays but has nothing to learn, save or show (a person at the keyboard,
    a benchmark's baseline): the rest of what recording an episode reads from an agent."""

    def config(self) -> dict[str, Any]:
        return {}

    def digest(self) -> str:
        return ""

    def overlay(self) -> dict[str, np.ndarray]:
        return {}
