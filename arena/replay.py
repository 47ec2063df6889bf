"""The replay file: one recorded episode, enough to re-simulate it bit for bit.

A replay is a versioned .npz (read with allow_pickle=False) holding the env id and
kwargs, the agent's name, config and checkpoint digest, the seed, and per step the
action, the reward and a CRC-32 of the observation. `verify` re-plays the actions from
the seed and names the first step where anything differs. Agents that have values or a
policy to show (V, Q, policy) ship them in the file for the viewer's overlays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from agents.base import FileFormatError, obs_checksum, read_arrays, write_arrays
from arena.registry import make_env

KIND = "arena-replay"
VERSION = 1


class ReplayError(ValueError):
    """A replay cannot be read, or re-simulating it does not give the recorded episode."""


@dataclass
class Replay:
    env_id: str
    env_kwargs: dict[str, Any]
    agent: str
    seed: int
    actions: np.ndarray  # (T,) int64
    rewards: np.ndarray  # (T,) float64
    obs_crc: np.ndarray  # (T + 1,) uint32: the reset observation, then one per step
    terminated: bool = False
    truncated: bool = False
    agent_config: dict[str, Any] = field(default_factory=dict)
    checkpoint: str = ""
    overlay: dict[str, np.ndarray] = field(default_factory=dict)
    label: str = ""  # e.g. "eval" or "training episode 40"
    reset_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"state": 7} for exploring starts

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def episode_return(self) -> float:
        return float(self.rewards.sum())


def save_replay(path: str | Path, replay: Replay) -> Path:
    """Write atomically; refuses to overwrite an existing replay (it may be on a leaderboard)."""
    path = Path(path)
    if path.exists():
        raise ReplayError(f"{path} already exists; replays are never overwritten: choose another path")
    arrays = {
        "actions": np.asarray(replay.actions, dtype=np.int64),
        "rewards": np.asarray(replay.rewards, dtype=np.float64),
        "obs_crc": np.asarray(replay.obs_crc, dtype=np.uint32),
        **{f"overlay_{k}": np.asarray(v) for k, v in replay.overlay.items()},
    }
    meta = {
        "env_id": replay.env_id,
        "env_kwargs": replay.env_kwargs,
        "agent": replay.agent,
        "agent_config": replay.agent_config,
        "checkpoint": replay.checkpoint,
        "seed": int(replay.seed),
        "steps": replay.steps,
        "return": replay.episode_return,
        "terminated": bool(replay.terminated),
        "truncated": bool(replay.truncated),
        "label": replay.label,
        "reset_options": replay.reset_options,
    }
    write_arrays(path, KIND, VERSION, arrays, meta)
    return path


def load_replay(path: str | Path) -> Replay:
    """Read and validate a replay file; any defect is a one-line ReplayError."""
    try:
        arrays, meta = read_arrays(path, KIND, (VERSION,))
    except FileFormatError as exc:
        raise ReplayError(str(exc)) from None
    try:
        replay = Replay(
            env_id=str(meta["env_id"]),
            env_kwargs=dict(meta["env_kwargs"]),
            agent=str(meta["agent"]),
            seed=int(meta["seed"]),
            actions=arrays["actions"],
            rewards=arrays["rewards"],
            obs_crc=arrays["obs_crc"],
            terminated=bool(meta["terminated"]),
            truncated=bool(meta["truncated"]),
            agent_config=dict(meta.get("agent_config", {})),
            checkpoint=str(meta.get("checkpoint", "")),
            overlay={k[len("overlay_"):]: v for k, v in arrays.items() if k.startswith("overlay_")},
            label=str(meta.get("label", "")),
            reset_options=dict(meta.get("reset_options", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplayError(f"{path} is missing replay field {exc}; re-record it") from None
    if len(replay.rewards) != replay.steps or len(replay.obs_crc) != replay.steps + 1:
        raise ReplayError(f"{path} has {replay.steps} actions but {len(replay.rewards)} rewards; re-record it")
    return replay


@dataclass
class Frame:
    """One moment of a re-simulated episode: after `step` actions (0 = just reset)."""

    step: int
    action: int | None
    reward: float
    episode_return: float
    obs: Any
    done: bool


def resimulate(replay: Replay, render_mode: str | None = None, env: Any = None) -> Iterator[tuple[Any, Frame]]:
    """Re-play the recorded actions from the seed; yields (env, frame) for step 0..T."""
    env = env if env is not None else make_env(replay.env_id, replay.env_kwargs, render_mode=render_mode)
    obs, _ = env.reset(seed=replay.seed, options=replay.reset_options or None)
    G = 0.0
    yield env, Frame(0, None, 0.0, 0.0, obs, replay.steps == 0)
    for t, action in enumerate(replay.actions.tolist(), start=1):
        obs, r, term, trunc, _ = env.step(action)
        G += r
        yield env, Frame(t, action, float(r), G, obs, bool(term or trunc))


@dataclass
class Verification:
    ok: bool
    steps: int
    message: str


def verify(replay: Replay) -> Verification:
    """Re-simulate and compare every reward and observation checksum bit for bit."""
    frames = resimulate(replay)
    env, first = next(frames)
    try:
        if obs_checksum(first.obs) != int(replay.obs_crc[0]):
            return Verification(False, 0, "step 0: the reset observation differs (seed or env version changed)")
        done = False
        for _, frame in frames:
            t = frame.step
            if done:
                return Verification(False, t, f"step {t}: the recording continues after the episode ended")
            want_r = float(replay.rewards[t - 1])
            if frame.reward != want_r and not (math.isnan(frame.reward) and math.isnan(want_r)):
                return Verification(
                    False, t, f"step {t}: reward {frame.reward!r} but the replay recorded {want_r!r}"
                )
            if obs_checksum(frame.obs) != int(replay.obs_crc[t]):
                return Verification(False, t, f"step {t}: the observation differs from the recorded one")
            done = frame.done
        if replay.steps and done != (replay.terminated or replay.truncated):
            return Verification(False, replay.steps, f"step {replay.steps}: the episode's end differs from the recorded one")
    finally:
        env.close()
    return Verification(True, replay.steps, f"all {replay.steps} steps identical (return {replay.episode_return:g})")
