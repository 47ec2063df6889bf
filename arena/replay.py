"""The replay file: one recorded episode, enough to re-simulate it bit for bit.

A replay is a versioned .npz (read with allow_pickle=False) holding the env id and
kwargs, the agent's name, config and checkpoint digest, the seed, and per step the
action, the reward and a CRC-32 of the observation. `verify` re-plays the actions from
the seed and names the first step where anything differs. Agents that have values or a
policy to show (V, Q, policy) ship them in the file for the viewer's overlays.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import gymnasium as gym
import numpy as np

from agents.checkpoint import read_arrays, write_arrays
from arena.errors import FileFormatError, ReplayError
from arena.registry import FAMILY_OF_ID, make_env
from envs.abilities import MAX_EPISODE_STEPS

KIND = "arena-replay"
VERSION = 1
MAX_STEPS = MAX_EPISODE_STEPS  # one limit, declared with the envs


def obs_checksum(obs: Any) -> int:
    """A 32-bit checksum of one observation, for per-step replay verification."""
    a = np.ascontiguousarray(np.asarray(obs))
    return zlib.crc32(a.dtype.str.encode() + a.tobytes())


@dataclass
class Replay:
    env_id: str
    env_kwargs: dict[str, Any]
    agent: str
    seed: int
    actions: np.ndarray  # (T,) int64, or (T, ...) float32 for array actions (images)
    rewards: np.ndarray  # (T,) float64
    obs_crc: np.ndarray  # (T + 1,) uint32: the reset observation, then one per step
    terminated: bool = False
    truncated: bool = False
    agent_config: dict[str, Any] = field(default_factory=dict)
    checkpoint: str = ""
    overlay: dict[str, np.ndarray] = field(default_factory=dict)
    label: str = ""  # e.g. "eval" or "training episode 40"
    reset_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"state": 7} for exploring starts
    last_info: dict[str, Any] = field(default_factory=dict)  # in memory only: the last step's info

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
    actions = np.asarray(replay.actions)
    arrays = {
        "actions": actions.astype(np.int64 if actions.ndim == 1 else np.float32),
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
    """Read and validate a replay file; any defect is a one-line ReplayError.

    A checksum is not a signature (anyone can rewrite a file and recompute it), so every
    header field is type-checked, and the env id must be one Arena registers: building an
    arbitrary id would import an arbitrary module (`gym.make("pkg:Env-v0")`).
    """
    try:
        arrays, meta = read_arrays(path, KIND, (VERSION,))
    except FileFormatError as exc:
        raise ReplayError(str(exc)) from None
    required = {"env_id": str, "env_kwargs": dict, "agent": str, "seed": int, "terminated": bool, "truncated": bool}
    optional = {"agent_config": dict, "checkpoint": str, "label": str, "reset_options": dict}
    for key, kind in {**required, **optional}.items():
        if key in optional:
            meta.setdefault(key, kind())
        value = meta.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ReplayError(f"{path}: replay field {key!r} is missing or malformed; the file is damaged: re-record it")
    if not 0 <= meta["seed"] < 2**63:
        raise ReplayError(f"{path}: seed {meta['seed']} is not a non-negative 64-bit integer; the file is damaged")
    if meta["env_id"] not in FAMILY_OF_ID:
        raise ReplayError(
            f"{path} names env {meta['env_id'][:60]!r}, which is not an Arena env; replays are only re-simulated "
            f"on Arena's own envs ({', '.join(FAMILY_OF_ID)})"
        )
    for name, dtype in (("actions", np.int64), ("rewards", np.float64), ("obs_crc", np.uint32)):
        a = arrays.get(name)
        image_actions = name == "actions" and a is not None and a.ndim in (3, 4) and a.dtype == np.float32
        if a is None or (a.ndim != 1 or a.dtype != dtype) and not image_actions or len(a) > MAX_STEPS + 1:
            raise ReplayError(f"{path}: replay array {name!r} is missing or malformed; the file is damaged: re-record it")
    replay = Replay(
        env_id=meta["env_id"],
        env_kwargs=meta["env_kwargs"],
        agent=meta["agent"],
        seed=meta["seed"],
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        obs_crc=arrays["obs_crc"],
        terminated=meta["terminated"],
        truncated=meta["truncated"],
        agent_config=meta.get("agent_config", {}),
        checkpoint=meta.get("checkpoint", ""),
        overlay={k[len("overlay_"):]: v for k, v in arrays.items() if k.startswith("overlay_")},
        label=meta.get("label", ""),
        reset_options=meta.get("reset_options", {}),
    )
    if len(replay.rewards) != replay.steps or len(replay.obs_crc) != replay.steps + 1:
        raise ReplayError(f"{path} has {replay.steps} actions but {len(replay.rewards)} rewards; re-record it")
    return replay


@dataclass
class Frame:
    """One moment of a re-simulated episode: after `step` actions (0 = just reset)."""

    step: int
    action: Any  # None at step 0; an int, or an array (an image)
    reward: float
    episode_return: float
    obs: Any
    done: bool


def resimulate(replay: Replay, render_mode: str | None = None, env: gym.Env | None = None) -> Iterator[tuple[Any, Frame]]:
    """Re-play the recorded actions from the seed; yields (env, frame) for step 0..T."""
    env = env if env is not None else make_env(replay.env_id, replay.env_kwargs, render_mode=render_mode)
    obs, _ = env.reset(seed=replay.seed, options=replay.reset_options or None)
    G = 0.0
    yield env, Frame(0, None, 0.0, 0.0, obs, replay.steps == 0)
    actions = replay.actions.tolist() if replay.actions.ndim == 1 else list(replay.actions)  # ints, or images
    for t, action in enumerate(actions, start=1):
        obs, r, term, trunc, _ = env.step(action)
        G += float(r)
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
