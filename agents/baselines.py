"""Reference points every score is measured against: the uniformly random agent, and for
images the held-out real data (the ceiling) and uniform noise (the floor)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.checkpoint import load_checkpoint, load_settings, require, save_checkpoint
from agents.generator import GeneratorAgent, ImageSpec
from agents.training import AgentBase
from arena import settings as typed
from arena.errors import AgentError, CheckpointError
from envs.abilities import ImageTask, MasksActions


@dataclass(frozen=True)
class RandomSettings:
    """The random agent takes no settings."""


class RandomAgent(AgentBase):
    """Picks each action uniformly at random: the 0 of every normalised score."""

    name = "random"
    Settings = RandomSettings

    def __init__(self, **settings: Any) -> None:
        self.settings = typed.build(RandomSettings, settings, AgentError)
        self.n_actions = 0
        self.n_states = 0  # where observations are state indices: for its policy table
        self.rng = np.random.default_rng(0)
        self.trained_on: dict[str, Any] | None = None
        self.offered: np.ndarray | None = None  # (S, A) where the env's states offer different actions

    def plan(self, env: gym.Env, seed: int) -> dict[str, Any]:
        """Nothing to learn: read how many actions there are (and states, where they are indices)."""
        from gymnasium import spaces

        from agents.training import env_ref

        if not isinstance(env.action_space, spaces.Discrete):
            raise AgentError(f"random plays Discrete actions; got {type(env.action_space).__name__}")
        self.n_actions = int(env.action_space.n)
        self.n_states = int(env.observation_space.n) if isinstance(env.observation_space, spaces.Discrete) else 0
        u = env.unwrapped
        self.offered = np.asarray(u.action_mask, dtype=bool) if isinstance(u, MasksActions) and self.n_states else None
        self.trained_on = env_ref(env)
        return {}

    def check_fits(self, env: gym.Env) -> None:
        from gymnasium import spaces

        if not isinstance(env.action_space, spaces.Discrete) or int(env.action_space.n) != self.n_actions:
            raise AgentError(f"the checkpoint plays {self.n_actions} actions; this env has {env.action_space}")
        if isinstance(env.observation_space, spaces.Discrete):
            self.n_states = int(env.observation_space.n)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        return None

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        if self.n_actions == 0:
            raise AgentError("random has not been fitted; call fit(env) first")
        if self.offered is not None:  # uniform over what this state offers
            offered = np.flatnonzero(self.offered[int(obs)])
            return int(offered[self.rng.integers(len(offered))]), None
        return int(self.rng.integers(self.n_actions)), None

    def policy_table(self) -> np.ndarray:
        """(S, A) uniform action probabilities over the state indices of the env it was fitted to."""
        if self.n_actions == 0 or self.n_states == 0:
            raise AgentError("random has no policy table: fit it to an env whose observations are state indices")
        if self.offered is not None:
            return self.offered / self.offered.sum(axis=1, keepdims=True)
        return np.full((self.n_states, self.n_actions), 1.0 / self.n_actions)

    def overlay(self) -> dict[str, np.ndarray]:
        return {}

    def digest(self) -> str:
        return ""

    def save(self, path: str | Path) -> Path:
        if self.n_actions == 0:
            raise AgentError("random has not been fitted; nothing to save")
        arrays = {"n_actions": np.array(self.n_actions, dtype=np.int64)}
        if self.offered is not None:
            arrays["offered"] = self.offered
        return save_checkpoint(path, self.name, self.config(), arrays, env=self.trained_on)

    def load(self, path: str | Path, env: gym.Env | None = None) -> "RandomAgent":
        arrays, meta = load_checkpoint(path, self.name)
        self.settings = load_settings(RandomSettings, meta, path, self.name)
        require(arrays, path, self.name, n_actions=())
        stored = arrays["n_actions"]
        if not np.issubdtype(stored.dtype, np.integer) or not 1 <= int(stored) <= 1 << 20:
            raise CheckpointError(f"{path}: n_actions={stored} is not a number of actions; the checkpoint is damaged")
        self.n_actions, self.trained_on = int(stored), meta["env"]
        offered = arrays.get("offered")
        if offered is not None and (offered.dtype != bool or offered.ndim != 2 or offered.shape[1] != self.n_actions
                                    or not offered.any(axis=1).all()):
            raise CheckpointError(f"{path}: its 'offered' actions are not an (S, {self.n_actions}) mask; the checkpoint "
                                  "is damaged")
        self.offered = offered
        if offered is not None:
            self.n_states = len(offered)
        return self


# --------------------------------------------------------------------------- image references


@dataclass(frozen=True)
class ImageReferenceSettings:
    """The image references take no settings."""


class ImageReference(GeneratorAgent):
    """A reference point that learns nothing: it reads the env's shapes (and data) and plays."""

    def plan(self, env: gym.Env, seed: int) -> dict[str, Any]:
        from agents.training import env_ref

        self.bind(env)
        self.trained_on = env_ref(env)
        return {}


class RealDataAgent(ImageReference):
    """Answers with held-out real images (the env's second held-out set, never trained on):
    the ceiling of every generator score. Conditional envs get an image of the class asked for."""

    name = "real-data"
    Settings = ImageReferenceSettings

    def __init__(self, **settings: Any) -> None:
        super().__init__()
        self.settings = typed.build(ImageReferenceSettings, settings, AgentError)
        self.images = np.zeros((0, 1, 1, 1), dtype=np.float32)
        self.labels = np.zeros(0, dtype=np.int64)

    def bind(self, env: gym.Env) -> ImageSpec:
        spec = super().bind(env)
        u = env.unwrapped
        assert isinstance(u, ImageTask)  # bind checked it
        data = u.data
        self.images, self.labels = np.asarray(data.heldout_b), np.asarray(data.heldout_b_labels)
        return spec

    def generate(self, z: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        if y is None:
            idx = self.rng.integers(len(self.images), size=len(z))
        else:
            idx = np.array([self.rng.choice(np.flatnonzero(self.labels == k)) for k in y.argmax(axis=1)])
        return self.images[idx].copy()

    def save(self, path: str | Path) -> Path:
        state = {"image": self._spec().as_dict()}
        return save_checkpoint(path, self.name, {}, {}, env=self.trained_on, state=state)

    def load(self, path: str | Path, env: gym.Env | None = None) -> "RealDataAgent":
        arrays, meta = load_checkpoint(path, self.name)
        if env is None:
            raise AgentError("real-data.load needs the env whose held-out images it plays: load(path, env=env)")
        self.spec = ImageSpec.from_dict((meta.get("state") or {}).get("image"), path)
        self.check_fits(env)
        self.bind(env)
        self.trained_on = meta["env"]
        return self


class NoiseAgent(ImageReference):
    """Answers with uniform noise pixels: the floor of every generator score."""

    name = "noise"
    Settings = ImageReferenceSettings

    def __init__(self, **settings: Any) -> None:
        super().__init__()
        self.settings = typed.build(ImageReferenceSettings, settings, AgentError)

    def generate(self, z: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        return self.rng.uniform(0.0, 1.0, (len(z), *self._spec().shape)).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        return save_checkpoint(path, self.name, {}, {}, env=self.trained_on, state={"image": self._spec().as_dict()})

    def load(self, path: str | Path, env: gym.Env | None = None) -> "NoiseAgent":
        arrays, meta = load_checkpoint(path, self.name)
        self.spec = ImageSpec.from_dict((meta.get("state") or {}).get("image"), path)
        if env is not None:
            self.check_fits(env)
        self.trained_on = meta["env"]
        return self
