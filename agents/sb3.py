"""Any Stable-Baselines3 algorithm as an Arena agent: the reference implementations, ranked
on the same envs, seeds and leaderboard as ours.

Training goes through Arena's one training loop: a unit is one chunk of env steps
(`chunk` steps of SB3's own `learn`), so SB3 runs get the same progress bar, log,
learning curve and periodic checkpoints. Checkpoints hold the policy's weights in
Arena's checkpoint format (SB3's own .zip unpickles on load, which Arena never does);
loading rebuilds the model for the env and loads the weights into it. SB3 keeps the rest
of its training state (replay buffers, rollout state) in Python objects, so an SB3 run
cannot be resumed; it says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.checkpoint import load_checkpoint, load_settings, save_checkpoint
from agents.training import Budget, Callback, TrainingLog, env_ref, train
from arena import settings as typed
from arena.errors import AgentError, CheckpointError
from arena.settings import setting

ALGORITHMS = ("ppo", "a2c", "dqn")
CHUNK_STEPS = 1000  # env steps per unit of the training loop


def sb3_view(env: Any) -> Any:
    """The env as SB3 should see it. Arena's image observations are uint8 planes (agent, wall,
    goal, hole, cliff), channels first, not RGB pictures: SB3's image heuristics would guess
    the channel order from the smallest axis and ask for 36x36 (its CnnPolicy's minimum).
    So they are shown flattened, as float32 in [0, 1]: a plain vector, as SB3 advises for
    observations that are not pictures, which its MlpPolicy reads as it is."""
    import gymnasium as gym
    from gymnasium import spaces

    space = env.observation_space
    if _is_image(space):
        scaled = spaces.Box(0.0, 1.0, (int(np.prod(space.shape)),), np.float32)
        return gym.wrappers.TransformObservation(env, _scale, scaled)
    return env


def _is_image(space: Any) -> bool:
    from gymnasium import spaces

    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def _scale(obs: Any) -> np.ndarray:
    """uint8 planes (C, H, W), or a batch of them, as flat float32 vectors in [0, 1]."""
    a = np.asarray(obs, dtype=np.float32) / np.float32(255.0)
    return a.reshape(-1) if a.ndim == 3 else a.reshape(len(a), -1)


def _algorithms() -> dict[str, Any]:
    from stable_baselines3 import A2C, DQN, PPO

    return {"ppo": PPO, "a2c": A2C, "dqn": DQN}


@dataclass(frozen=True)
class SB3Settings:
    """What Arena passes to the SB3 algorithm (null: SB3's own default)."""

    algo: str = setting("ppo", help="the SB3 algorithm", choices=ALGORITHMS)
    steps: int = setting(20_000, help="training budget in env steps", low=1, high=10**9)
    gamma: float = setting(0.99, help="discount factor gamma", low=0.0, high=1.0)
    learning_rate: float | None = setting(None, help="optimiser learning rate", low=0.0, high=1.0, low_open=True)
    n_steps: int | None = setting(None, help="PPO/A2C: steps per env per rollout", low=1, high=10**6)
    batch_size: int | None = setting(None, help="PPO/DQN: minibatch size", low=1, high=10**6)
    ent_coef: float | None = setting(None, help="PPO/A2C: entropy bonus weight", low=0.0, high=10.0)
    device: str = setting("auto", help="auto (CUDA when present), cpu or cuda", choices=("auto", "cpu", "cuda"))


class SB3Agent:
    """A Stable-Baselines3 model behind Arena's agent interface."""

    checkpoint_suffix = ".npz"
    recurrent = False
    unit = "chunk"
    Settings = SB3Settings

    def __init__(self, **settings: Any) -> None:
        self.settings: SB3Settings = typed.build(SB3Settings, settings, AgentError)
        from agents.networks import resolve_device

        self.device = str(resolve_device(self.settings.device))
        self.name = f"sb3-{self.settings.algo}"
        self.model: Any = None
        self.seed = 0
        self.budget: Budget | None = None
        self.trained_on: dict[str, Any] | None = None
        self.log = TrainingLog(unit=self.unit)
        self._steps_to_do = 0
        self._max_episodes: int | None = None
        self._scales = False  # observations are uint8 images that sb3_view scales

    def config(self) -> dict[str, Any]:
        out = typed.as_dict(self.settings)
        out.pop("device")
        return {k: v for k, v in out.items() if v is not None}

    def _build(self, env: Any, seed: int, tensorboard: str | None = None) -> Any:
        s = self.settings
        extra = {k: v for k, v in (("learning_rate", s.learning_rate), ("n_steps", s.n_steps),
                                   ("batch_size", s.batch_size), ("ent_coef", s.ent_coef)) if v is not None}
        try:
            return _algorithms()[s.algo](
                "MlpPolicy", env, gamma=s.gamma, seed=seed, device=self.device, verbose=0,
                tensorboard_log=tensorboard, **extra,
            )
        except (TypeError, AssertionError, ValueError) as exc:
            raise AgentError(f"{self.name} cannot be built for this env with {extra}: {str(exc).splitlines()[0]}") from None

    # ---------------------------------------------------------------- what the training loop calls

    def begin(self, env: Any, seed: int) -> None:
        self.model = self._build(env, seed)
        self._scales = _is_image(env.unwrapped.observation_space)
        self.seed = seed

    def learn(self, env: Any, index: int, progress: float) -> dict[str, Any]:
        """SB3's own learn for one chunk of env steps; the chunk's mean episode return is its return."""
        from stable_baselines3.common.callbacks import StopTrainingOnMaxEpisodes

        before = len(self._monitor.get_episode_rewards())
        if self._max_episodes is not None:  # an episode budget: one unit learns until it is spent
            left = self._max_episodes - before
            self.model.learn(total_timesteps=10**9, callback=StopTrainingOnMaxEpisodes(left), reset_num_timesteps=False)
        else:
            self.model.learn(total_timesteps=min(CHUNK_STEPS, self._steps_to_do - index * CHUNK_STEPS),
                             reset_num_timesteps=False)
        returns = self._monitor.get_episode_rewards()[before:]
        return {"return": float(np.mean(returns)) if returns else None, "episodes": float(len(returns))}

    def fit(self, env: Any, seed: int = 0, episodes: int | None = None, run_dir: str | Path | None = None,
            resume: str | Path | None = None, progress: bool | None = None,
            callbacks: tuple[Callback, ...] | list[Callback] = (), checkpoint_every: float | None = None,
            ) -> dict[str, Any]:
        """Train for `steps` env steps (or `episodes` whole episodes if given) through the one loop."""
        from stable_baselines3.common.monitor import Monitor

        if resume:
            raise AgentError(f"{self.name} cannot --resume (SB3 keeps its training state in pickles); start anew")
        if any(getattr(cb, "records_episodes", False) for cb in callbacks):
            raise AgentError(f"{self.name} trains inside Stable-Baselines3, which Arena cannot record; drop --record-training")
        self._monitor = Monitor(sb3_view(env))
        self._max_episodes = int(episodes) if episodes else None
        self._steps_to_do = self.settings.steps
        total = 1 if episodes else -(-self.settings.steps // CHUNK_STEPS)
        out = train(self, self._monitor, seed=seed, total=total, run_dir=run_dir, progress=progress,
                    callbacks=callbacks, checkpoint_every=checkpoint_every)
        self.trained_on = env_ref(env)
        if run_dir:  # the final checkpoint names the env, not the monitor around it
            out["checkpoint"] = str(self.save(Path(run_dir) / "checkpoint.npz"))
        out["steps"] = int(self.model.num_timesteps)
        return out

    # ---------------------------------------------------------------- acting

    def reset(self, seed: int | None = None) -> None:
        return None

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[Any, Any]:
        if self.model is None:
            raise AgentError(f"{self.name} has not been fitted; call fit(env) or load(path, env=env) first")
        if self._scales:
            obs = _scale(obs)
        action, _ = self.model.predict(obs, deterministic=greedy)
        a = np.asarray(action)
        return (int(a) if a.ndim == 0 else a), None

    def overlay(self) -> dict[str, np.ndarray]:
        return {}

    def digest(self) -> str:
        from agents.networks import module_digest

        return module_digest(self.model.policy) if self.model is not None else ""

    # ---------------------------------------------------------------- the one checkpoint format

    def save(self, path: str | Path) -> Path:
        if self.model is None:
            raise AgentError(f"{self.name} has not been fitted; nothing to save")
        arrays = {f"policy.{k}": v.detach().cpu().numpy() for k, v in self.model.policy.state_dict().items()}
        arrays.update(self.log.arrays())
        return save_checkpoint(path, self.name, typed.as_dict(self.settings), arrays, env=self.trained_on,
                               budget=self.budget.as_dict() if self.budget else None, seed=self.seed)

    def load(self, path: str | Path, env: Any = None) -> "SB3Agent":
        import torch

        if env is None:
            raise AgentError(f"{self.name}.load needs the env to rebuild the model: load(path, env=env)")
        arrays, meta = load_checkpoint(path, self.name)
        saved = load_settings(SB3Settings, meta, path, self.name)
        self.settings = typed.build(SB3Settings, {**typed.as_dict(saved), "device": self.settings.device}, CheckpointError)
        self.model = self._build(sb3_view(env), 0)
        self._scales = _is_image(env.observation_space)
        weights = {k[len("policy."):]: torch.from_numpy(v.copy()) for k, v in arrays.items() if k.startswith("policy.")}
        try:
            self.model.policy.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(f"{path} does not fit this env's policy: {str(exc).splitlines()[0][:200]}") from None
        self.trained_on, self.seed = meta["env"], int(meta["seed"] or 0)
        return self

    def check_fits(self, env: Any) -> None:
        return None
