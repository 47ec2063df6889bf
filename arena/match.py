"""Where an agent meets an env: play seeded episodes and record each one as a replay."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from agents.base import obs_checksum
from arena.registry import make_env
from arena.replay import Replay, save_replay


@dataclass
class Episode:
    seed: int
    episode_return: float
    length: int
    terminated: bool
    replay_path: str | None


def record_episode(agent: Any, env: Any, seed: int, greedy: bool = True, agent_name: str | None = None) -> Replay:
    """Play one episode from `env.reset(seed=seed)` and keep what re-simulating it needs."""
    obs, _ = env.reset(seed=seed)
    state = agent.reset(seed=seed)
    actions, rewards, crcs = [], [], [obs_checksum(obs)]
    terminated = truncated = False
    while not (terminated or truncated):
        action, state = agent.act(obs, state, greedy=greedy)
        obs, r, terminated, truncated, _ = env.step(action)
        actions.append(int(action))
        rewards.append(float(r))
        crcs.append(obs_checksum(obs))
    spec = env.spec
    return Replay(
        env_id=spec.id if spec else type(env.unwrapped).__name__,
        env_kwargs={k: v for k, v in (spec.kwargs if spec else {}).items() if k != "render_mode"},
        agent=agent_name or agent.name,
        seed=seed,
        actions=np.array(actions, dtype=np.int64),
        rewards=np.array(rewards, dtype=np.float64),
        obs_crc=np.array(crcs, dtype=np.uint32),
        terminated=bool(terminated),
        truncated=bool(truncated),
        agent_config=agent.config(),
        checkpoint=agent.digest(),
        overlay={k: np.asarray(v) for k, v in agent.overlay().items()},
    )


def play(
    agent: Any,
    env_id: str,
    env_kwargs: dict[str, Any],
    seeds: list[int],
    record_dir: str | Path | None = None,
    prefix: str = "episode",
    on_episode: Callable[[Episode], None] | None = None,
) -> list[Episode]:
    """Greedy evaluation episodes, one per seed, each saved as `<record_dir>/<prefix>-seed<k>.npz`."""
    env = make_env(env_id, env_kwargs)
    episodes = []
    try:
        for seed in seeds:
            replay = record_episode(agent, env, seed)
            path = None
            if record_dir is not None:
                path = str(save_replay(Path(record_dir) / f"{prefix}-seed{seed}.npz", replay))
            ep = Episode(seed, replay.episode_return, replay.steps, replay.terminated, path)
            episodes.append(ep)
            if on_episode:
                on_episode(ep)
    finally:
        env.close()
    return episodes
