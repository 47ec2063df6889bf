"""Any Stable-Baselines3 algorithm as an Arena agent: the reference implementations, ranked
on the same envs, seeds and leaderboard as ours.

Checkpoints hold the SB3 policy's weights as safetensors plus the settings as JSON (SB3's
own .zip format unpickles on load, which Arena never does); loading rebuilds the model
for the env and loads the weights into it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import AgentError, module_digest, read_safetensors, write_safetensors

FORMAT = "arena-sb3"
VERSION = 1


def _algorithms() -> dict[str, Any]:
    from stable_baselines3 import A2C, DQN, PPO

    return {"ppo": PPO, "a2c": A2C, "dqn": DQN}


ALGORITHMS = ("ppo", "a2c", "dqn")


class SB3Agent:
    """Settings: algo (ppo, a2c, dqn), steps (training budget in env steps; --train-episodes
    counts episodes instead), gamma, learning_rate, device, and any other keyword the SB3
    algorithm takes (e.g. n_steps=64 for PPO)."""

    checkpoint_suffix = ".safetensors"
    recurrent = False

    def __init__(
        self,
        algo: str = "ppo",
        steps: int = 20_000,
        gamma: float = 0.99,
        learning_rate: float | None = None,
        device: str = "auto",
        **hyper: Any,
    ) -> None:
        if algo not in ALGORITHMS:
            raise AgentError(f"unknown SB3 algorithm {algo!r}; use one of {', '.join(ALGORITHMS)}")
        if int(steps) < 1:
            raise AgentError(f"steps={steps} is out of range; train for at least 1 step")
        if not 0.0 <= gamma <= 1.0:
            raise AgentError(f"gamma={gamma} is out of range; use a value in [0, 1]")
        from agents.networks import resolve_device

        self.algo, self.steps, self.gamma = algo, int(steps), float(gamma)
        self.learning_rate = learning_rate
        self.device = str(resolve_device(device))
        self.hyper = hyper
        self.name = f"sb3-{algo}"
        self.model: Any = None

    def config(self) -> dict[str, Any]:
        out = {"algo": self.algo, "steps": self.steps, "gamma": self.gamma, **self.hyper}
        if self.learning_rate is not None:
            out["learning_rate"] = self.learning_rate
        return out

    def _build(self, env: Any, seed: int, tensorboard: str | None = None) -> Any:
        kwargs = dict(self.hyper)
        if self.learning_rate is not None:
            kwargs["learning_rate"] = self.learning_rate
        try:
            return _algorithms()[self.algo](
                "MlpPolicy", env, gamma=self.gamma, seed=seed, device=self.device, verbose=0,
                tensorboard_log=tensorboard, **kwargs,
            )
        except (TypeError, AssertionError, ValueError) as exc:
            raise AgentError(f"{self.name} cannot be built for this env with {kwargs}: {str(exc).splitlines()[0]}") from None

    def fit(self, env: Any, seed: int = 0, episodes: int | None = None, run_dir: str | Path | None = None,
            progress: bool | None = None, **budget: Any) -> dict[str, Any]:
        """Train with SB3's own loop: `steps` env steps, or `episodes` whole episodes if given."""
        from stable_baselines3.common.callbacks import StopTrainingOnMaxEpisodes

        if budget.get("resume"):
            raise AgentError(f"{self.name} cannot --resume (SB3 keeps its training state in pickles); start anew")
        self.model = self._build(env, seed, str(Path(run_dir) / "tensorboard") if run_dir else None)
        if episodes:
            self.model.learn(total_timesteps=10**9, callback=StopTrainingOnMaxEpisodes(int(episodes)))
        else:
            self.model.learn(total_timesteps=self.steps)
        return {"steps": int(self.model.num_timesteps)}

    def reset(self, seed: int | None = None) -> None:
        return None

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[Any, Any]:
        if self.model is None:
            raise AgentError(f"{self.name} has not been fitted; call fit(env) or load(path, env=env) first")
        action, _ = self.model.predict(obs, deterministic=greedy)
        a = np.asarray(action)
        return (int(a) if a.ndim == 0 else a), None

    def overlay(self) -> dict[str, np.ndarray]:
        return {}

    def digest(self) -> str:
        return module_digest(self.model.policy) if self.model is not None else ""

    def save(self, path: str | Path) -> Path:
        if self.model is None:
            raise AgentError(f"{self.name} has not been fitted; nothing to save")
        meta = {"format": FORMAT, "version": str(VERSION), "agent": self.name, "config": json.dumps(self.config())}
        return write_safetensors(path, dict(self.model.policy.state_dict()), meta)

    def load(self, path: str | Path, env: Any = None) -> "SB3Agent":
        if env is None:
            raise AgentError(f"{self.name}.load needs the env to rebuild the model: load(path, env=env)")
        tensors, meta = read_safetensors(path, FORMAT)
        if meta.get("agent") != self.name:
            raise AgentError(f"{path} is a checkpoint of {meta.get('agent')!r}, not {self.name!r}")
        self.model = self._build(env, 0)
        try:
            self.model.policy.load_state_dict(tensors)
        except RuntimeError as exc:
            raise AgentError(f"{path} does not fit this env's policy: {str(exc).splitlines()[0]}") from None
        return self

    def check_fits(self, env: Any) -> None:
        return None
