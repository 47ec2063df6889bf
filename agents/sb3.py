"""Any Stable-Baselines3 algorithm as an Arena agent: the reference implementations, ranked
on the same envs, seeds and leaderboard as ours.

Training goes through Arena's one training loop: a unit is one chunk of env steps
(SB3's own `learn` for whole rollouts), so SB3 runs get the same progress bar, log,
learning curve and periodic checkpoints. The budget counts env steps; PPO and A2C
collect whole rollouts (`n_steps` per env), so a budget that is not a multiple of the
rollout is rounded up to whole rollouts, and the log says how many steps were trained. Checkpoints hold the policy's weights in
Arena's checkpoint format (SB3's own .zip unpickles on load, which Arena never does);
loading rebuilds the model for the env and loads the weights into it. SB3 keeps the rest
of its training state (replay buffers, rollout state) in Python objects, so an SB3 run
cannot be resumed; it says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.checkpoint import load_checkpoint, load_settings, save_checkpoint
from agents.training import AgentBase, Budget, TrainingLog
from arena import settings as typed
from arena.errors import AgentError, CheckpointError
from arena.settings import device_setting, setting

ALGORITHMS = ("ppo", "a2c", "dqn")
CHUNK_STEPS = 1000  # about this many env steps per unit of the training loop (whole rollouts)


def sb3_view(env: gym.Env) -> Any:
    """The env as SB3 should see it. Arena's image observations are uint8 planes (agent, wall,
    goal, hole, cliff), channels first, not RGB pictures: SB3's image heuristics would guess
    the channel order from the smallest axis and ask for 36x36 (its CnnPolicy's minimum).
    So they are shown flattened, as float32 in [0, 1]: a plain vector, as SB3 advises for
    observations that are not pictures, which its MlpPolicy reads as it is.
    Continuous actions (the image env's pixels live in [0, 1]) are shown in [-1, 1], the
    range SB3's Gaussian policies assume; `act` maps them back (`_env_action`)."""
    import gymnasium as gym
    from gymnasium import spaces

    space = env.observation_space
    if _is_image(space):
        scaled = spaces.Box(0.0, 1.0, (int(np.prod(space.shape or ())),), np.float32)
        env = gym.wrappers.TransformObservation(env, _scale, scaled)
    if _rescales(env.action_space):
        box: Any = env.action_space
        one = np.ones_like(box.low)  # in the space's own dtype: Box warns when casting
        env = gym.wrappers.RescaleAction(env, -one, one)
    return env


def _rescales(space: Any) -> bool:
    """A bounded continuous action space that is not already [-1, 1]."""
    from gymnasium import spaces

    return (isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating) and space.is_bounded()
            and not (np.all(space.low == -1.0) and np.all(space.high == 1.0)))


def _env_action(space: Any, action: np.ndarray) -> np.ndarray:
    """An action SB3 chose in [-1, 1] as the env's own Box: low + (a + 1) / 2 (high - low)."""
    a = np.clip(action, -1.0, 1.0)
    return (space.low + (a + 1.0) * 0.5 * (space.high - space.low)).astype(space.dtype)


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
    device: str = device_setting()


class SB3Agent(AgentBase):
    """A Stable-Baselines3 model behind Arena's agent interface."""

    checkpoint_suffix = ".npz"
    unit = "chunk"
    budget_unit = "step"
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
        self._monitor: Any = None
        self._budget_steps = 0
        self._scales = False  # observations are uint8 images that sb3_view scales
        self._actions: Any = None  # the env's Box when sb3_view shows its actions in [-1, 1]

    def _build(self, env: gym.Env, seed: int, tensorboard: str | None = None) -> Any:
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

    def rollout(self) -> int:
        """Env steps SB3 collects at a time: a whole rollout (PPO, A2C), or DQN's training frequency."""
        model = self.model
        if self.settings.algo == "dqn":
            return int(model.train_freq.frequency)
        return int(model.n_steps) * int(model.n_envs)

    def chunk(self) -> int:
        """Env steps per unit of the loop: whole rollouts, at least CHUNK_STEPS of them."""
        r = self.rollout()
        return r * -(-CHUNK_STEPS // r)

    def default_budget(self) -> int:
        return int(self.settings.steps)

    def units_for(self, budget: int) -> int:
        """At most one unit per CHUNK_STEPS (a chunk is at least that long); `learn` stops when the steps are done."""
        self._budget_steps = int(budget)
        return -(-int(budget) // CHUNK_STEPS)

    def trained(self) -> int:
        return int(self.model.num_timesteps) if self.model is not None else 0

    def begin(self, env: gym.Env, seed: int) -> None:
        from stable_baselines3.common.monitor import Monitor

        self._monitor = Monitor(sb3_view(env))
        self.model = self._build(self._monitor, seed)
        self._see(env)
        self.seed = seed

    def learn(self, env: gym.Env, index: int, progress: float) -> dict[str, Any]:
        """SB3's own learn for one chunk of whole rollouts; the chunk's mean episode return is its return."""
        if self._monitor is None:  # loaded from a checkpoint, not begun: SB3's training state is not in the file
            raise AgentError(f"{self.name} cannot --resume (SB3 keeps its training state in pickles); start anew")
        before = len(self._monitor.get_episode_rewards())
        left = self._budget_steps - int(self.model.num_timesteps)
        self.model.learn(total_timesteps=max(1, min(self.chunk(), left)), reset_num_timesteps=False)
        returns = self._monitor.get_episode_rewards()[before:]
        out: dict[str, Any] = {"return": float(np.mean(returns)) if returns else None, "episodes": float(len(returns))}
        out["stop"] = self.model.num_timesteps >= self._budget_steps
        return out

    def finish(self) -> dict[str, Any]:
        steps = self.trained()
        out: dict[str, Any] = {"steps": steps}
        if steps > self._budget_steps:
            out["note"] = (f"{self._budget_steps} steps asked, {steps} trained: SB3 collects whole rollouts of "
                           f"{self.rollout()} steps")
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
        if self._actions is not None:
            a = _env_action(self._actions, a)
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

    def load(self, path: str | Path, env: gym.Env | None = None) -> "SB3Agent":
        import torch

        if env is None:
            raise AgentError(f"{self.name}.load needs the env to rebuild the model: load(path, env=env)")
        arrays, meta = load_checkpoint(path, self.name)
        saved = load_settings(SB3Settings, meta, path, self.name)
        self.settings = typed.build(SB3Settings, {**typed.as_dict(saved), "device": self.settings.device}, CheckpointError)
        self.model = self._build(sb3_view(env), 0)
        self._see(env)
        weights = {k[len("policy."):]: torch.from_numpy(v.copy()) for k, v in arrays.items() if k.startswith("policy.")}
        try:
            self.model.policy.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(f"{path} does not fit this env's policy: {str(exc).splitlines()[0][:200]}") from None
        self.trained_on, self.seed = meta["env"], int(meta["seed"] or 0)
        self.budget = Budget.from_dict(meta["budget"], path) if meta["budget"] else None
        return self

    def check_fits(self, env: gym.Env) -> None:
        return None

    def _see(self, env: gym.Env) -> None:
        """Remember how sb3_view changes what the model sees, so `act` answers in the env's own terms."""
        self._scales = _is_image(env.observation_space)
        self._actions = env.action_space if _rescales(env.action_space) else None
