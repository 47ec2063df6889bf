"""Where an agent meets an env: play seeded episodes and record each one as a replay."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from agents.protocol import Agent, Player
from agents.training import Callback, plain_kwargs
from arena.registry import make_env
from arena.replay import Replay, obs_checksum, save_replay
from envs.abilities import LearnsAcrossEpisodes


@dataclass
class Episode:
    seed: int
    episode_return: float
    length: int
    terminated: bool
    replay_path: str | None
    actions: np.ndarray | None = None  # what the agent did: (T,) ints, or (T, ...) images
    last_info: dict[str, Any] | None = None  # the info of the episode's last step (e.g. diversity)
    rewards: np.ndarray | None = None  # per step
    overlay: dict[str, Any] | None = None  # what the agent showed of itself (its replay's overlay)


def stack_actions(actions: list[Any], space: Any) -> np.ndarray:
    """An episode's actions as one array: (T,) int64 for discrete spaces, else (T, *shape) float32."""
    if isinstance(space, gym.spaces.Discrete) or not actions or np.ndim(actions[0]) == 0:
        return np.array([int(a) for a in actions], dtype=np.int64)
    return np.stack([np.asarray(a, dtype=np.float32) for a in actions])


def record_episode(agent: Agent | Player, env: gym.Env, seed: int, greedy: bool = True, agent_name: str | None = None) -> Replay:
    """Play one episode from `env.reset(seed=seed)` and keep what re-simulating it needs
    (`Replay.last_info` holds the info of its last step)."""
    obs, info = env.reset(seed=seed)
    state = agent.reset(seed=seed)
    actions, rewards, crcs = [], [], [obs_checksum(obs)]
    terminated = truncated = False
    while not (terminated or truncated):
        action, state = agent.act(obs, state, greedy=greedy)
        obs, r, terminated, truncated, info = env.step(action)
        actions.append(action)
        rewards.append(float(r))
        crcs.append(obs_checksum(obs))
    spec = env.spec
    return Replay(
        env_id=spec.id if spec else type(env.unwrapped).__name__,
        env_kwargs=plain_kwargs(spec.kwargs if spec else {}),
        agent=agent_name or agent.name,
        seed=seed,
        actions=stack_actions(actions, env.action_space),
        rewards=np.array(rewards, dtype=np.float64),
        obs_crc=np.array(crcs, dtype=np.uint32),
        terminated=bool(terminated),
        truncated=bool(truncated),
        agent_config=agent.config(),
        checkpoint=agent.digest(),
        overlay={k: np.asarray(v) for k, v in agent.overlay().items()},
        last_info=dict(info),
    )


def play(
    agent: Agent | Player,
    env_id: str,
    env_kwargs: dict[str, Any],
    seeds: list[int],
    record_dir: str | Path | None = None,
    prefix: str = "episode",
    on_episode: Callable[[Episode], None] | None = None,
) -> list[Episode]:
    """Greedy evaluation episodes, one per seed, each saved as `<record_dir>/<prefix>-seed<k>.npz`.

    An env that learns across episodes (the adaptive image judge) is made afresh for each
    one, so every recorded episode re-simulates from its seed alone.
    """
    from arena.image_score import SCORE_IMAGES

    env = make_env(env_id, env_kwargs)
    episodes: list[Episode] = []
    images_kept = 0  # image actions are kept only as far as scoring reads them; the replays hold them all
    try:
        for seed in seeds:
            u = env.unwrapped
            if episodes and isinstance(u, LearnsAcrossEpisodes) and u.learns_across_episodes:
                env.close()
                env = make_env(env_id, env_kwargs)
            replay = record_episode(agent, env, seed)
            path = None
            if record_dir is not None:
                path = str(save_replay(Path(record_dir) / f"{prefix}-seed{seed}.npz", replay))
            actions = replay.actions
            if actions.ndim > 1:
                actions = actions[:max(0, SCORE_IMAGES - images_kept)].copy()
                images_kept += len(actions)
            ep = Episode(seed, replay.episode_return, replay.steps, replay.terminated, path, actions,
                         replay.last_info, replay.rewards, replay.overlay)
            episodes.append(ep)
            if on_episode:
                on_episode(ep)
    finally:
        env.close()
    return episodes


class RecordTraining(Callback):
    """A training-loop callback that records every `every`-th training episode as a replay.

    It wraps the env the learner trains on; each recorded step also stores the action
    the agent's greedy policy would have taken then, so the viewer can mark exploratory
    moves. The overlay (V, Q, greedy policy) is the agent's as the episode starts. The
    episode number is the loop's unit index, so a resumed run keeps the same numbering.
    Learners that train on batches of episodes refuse it (`records_episodes`).
    """

    records_episodes = True

    def __init__(self, every: int, out_dir: str | Path, agent_name: str) -> None:
        self.every, self.out_dir, self.agent_name = int(every), Path(out_dir), agent_name
        self.saved: list[str] = []
        self.recorder: _Recorder | None = None

    def wrap_env(self, env: gym.Env, learner: Any) -> gym.Env:
        self.recorder = _Recorder(env, learner, self)
        return self.recorder

    def before_unit(self, learner: Any, index: int) -> None:
        if self.recorder is not None:
            self.recorder.armed = index if index % self.every == 0 else None


class _Recorder(gym.Wrapper):
    """The env wrapper behind RecordTraining: keeps what re-simulating an armed episode needs."""

    def __init__(self, env: gym.Env, agent: Any, owner: RecordTraining) -> None:
        super().__init__(env)
        self.agent, self.owner = agent, owner
        self.armed: int | None = None
        self._active = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._active = seed is not None and self.armed is not None
        if self._active:
            self._episode, self._seed, self._options = int(self.armed or 0), int(seed or 0), dict(options or {})
            self._actions: list[int] = []
            self._rewards: list[float] = []
            self._greedy: list[int] = []
            self._crcs = [obs_checksum(obs)]
            self._overlay = {k: np.asarray(v).copy() for k, v in self.agent.overlay().items()}
            self._obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._active:
            self._greedy.append(int(self.agent.act(self._obs, None, greedy=True)[0]))
        obs, r, terminated, truncated, info = self.env.step(action)
        if self._active:
            self._actions.append(int(action))
            self._rewards.append(float(r))
            self._crcs.append(obs_checksum(obs))
            self._obs = obs
            if terminated or truncated:
                self._save(bool(terminated), bool(truncated))
        return obs, float(r), terminated, truncated, info

    def _save(self, terminated: bool, truncated: bool) -> None:
        spec = self.env.spec
        replay = Replay(
            env_id=spec.id if spec else type(self.env.unwrapped).__name__,
            env_kwargs=plain_kwargs(spec.kwargs if spec else {}),
            agent=self.owner.agent_name,
            seed=self._seed,
            actions=np.array(self._actions, dtype=np.int64),
            rewards=np.array(self._rewards, dtype=np.float64),
            obs_crc=np.array(self._crcs, dtype=np.uint32),
            terminated=terminated,
            truncated=truncated,
            agent_config=self.agent.config(),
            overlay={**self._overlay, "greedy_actions": np.array(self._greedy, dtype=np.int64)},
            label=f"training episode {self._episode}",
            reset_options=self._options,
        )
        path = self.owner.out_dir / f"train-episode{self._episode:06d}.npz"
        if not path.exists():
            self.owner.saved.append(str(save_replay(path, replay)))
        self._active = False
