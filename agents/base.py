"""What every Arena agent is: the Agent protocol, and the file format for its checkpoints.

An agent learns with `fit(env, ...)`, acts with `act(obs, state, greedy)`, and is saved
and restored with `save(path)` / `load(path)`. Checkpoints are a versioned .npz of plain
arrays plus a JSON header with a SHA-256 over the arrays: loading never unpickles, and a
truncated or altered file is refused before anything is read from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

HEADER_KEY = "__header__"


class AgentError(ValueError):
    """An agent was asked something it cannot do (wrong env, bad parameter, bad checkpoint)."""


class FileFormatError(ValueError):
    """A file is not what it claims to be: truncated, corrupt, or another format or version."""


@runtime_checkable
class Agent(Protocol):
    """The interface the arena plays against. `name` is the registry name."""

    name: str

    def reset(self, seed: int | None = None) -> Any:
        """Start an episode: seeds any randomness in acting; returns the initial recurrent state."""
        ...

    def fit(self, env: Any, seed: int = 0, **budget: Any) -> dict[str, Any]:
        """Learn on `env`; returns a training log (figures worth printing)."""
        ...

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        """The action for `obs` and the agent's next recurrent state (None if it has none)."""
        ...

    def save(self, path: str | Path) -> Path: ...

    def load(self, path: str | Path) -> "Agent": ...

    def config(self) -> dict[str, Any]:
        """Hyperparameters, JSON-serialisable: they go on the leaderboard."""
        ...


# --------------------------------------------------------------------------- versioned array files


def write_arrays(path: str | Path, kind: str, version: int, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    """Atomically write arrays + a JSON header to a .npz; returns the file's SHA-256.

    The header records `kind`, `version`, the array checksum and `meta`. The file appears
    under its name only once complete (written to a temporary file, then renamed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise FileFormatError(f"array {k!r} holds Python objects; only numeric arrays are saved")
    header = {"kind": kind, "version": version, "sha256": _digest(arrays), "meta": meta}
    blob = np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **{HEADER_KEY: blob}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return file_digest(path)


def read_arrays(path: str | Path, kind: str, versions: tuple[int, ...]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by `write_arrays`, checking kind, version and checksum first."""
    path = Path(path)
    what = kind.removeprefix("arena-").replace("-", " ")
    if not path.is_file():
        raise FileFormatError(f"{path} does not exist; check the path")
    try:
        with np.load(path, allow_pickle=False) as data:
            if HEADER_KEY not in data.files:
                raise FileFormatError(f"{path} is not an Arena {what} file (no header); record it again")
            header = json.loads(bytes(data[HEADER_KEY]).decode())
            arrays = {k: data[k] for k in data.files if k != HEADER_KEY}
    except FileFormatError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, UnicodeDecodeError) as exc:
        raise FileFormatError(
            f"{path} is truncated or corrupt ({type(exc).__name__}); it cannot be read as an Arena {what} file"
        ) from None
    if header.get("kind") != kind:
        other = str(header.get("kind")).removeprefix("arena-")
        raise FileFormatError(f"{path} is an Arena {other} file, not an Arena {what} file")
    if header.get("version") not in versions:
        raise FileFormatError(
            f"{path} is {what} format version {header.get('version')}; this Arena reads version(s) "
            f"{', '.join(map(str, versions))}: upgrade Arena or re-record the file"
        )
    if header.get("sha256") != _digest(arrays):
        raise FileFormatError(f"{path} failed its checksum: the file was altered or damaged; re-record it")
    return arrays, header["meta"]


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        v = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{v.dtype.str}:{v.shape}".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes: names a checkpoint in replays and on the leaderboard."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of named arrays: names an agent's learned state without writing a file."""
    return _digest(arrays)


def obs_checksum(obs: Any) -> int:
    """A 32-bit checksum of one observation, for per-step replay verification."""
    a = np.ascontiguousarray(np.asarray(obs))
    return zlib.crc32(a.dtype.str.encode() + a.tobytes())



# --------------------------------------------------------------------------- tabular agents

CHECKPOINT_KIND = "arena-checkpoint"
CHECKPOINT_VERSION = 1


class TabularAgent:
    """An agent whose knowledge is tables over states: V (S,), Q (S, A) and policy (S, A).

    Plays environments with a Discrete observation space (a state index). The greedy
    action is argmax_a policy(a|s); a non-greedy action is sampled from policy(.|s).
    Subclasses fill the tables in `fit`.
    """

    name = "tabular"
    table_names: tuple[str, ...] = ("V", "Q", "policy")

    def __init__(self, gamma: float = 0.99) -> None:
        if not 0.0 <= gamma <= 1.0:
            raise AgentError(f"gamma={gamma} is out of range; use a discount in [0, 1]")
        self.gamma = float(gamma)
        self.tables: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng(0)

    def config(self) -> dict[str, Any]:
        return {"gamma": self.gamma}

    def check_env(self, env: Any) -> int:
        """The number of states, after checking the env is one a table can play."""
        from gymnasium import spaces

        obs_space, act_space = env.observation_space, env.action_space
        if not isinstance(obs_space, spaces.Discrete) or not isinstance(act_space, spaces.Discrete):
            raise AgentError(
                f"{self.name} is tabular: it needs Discrete observations and actions, got "
                f"{type(obs_space).__name__} observations; for a grid use obs=index"
            )
        return int(obs_space.n)

    def check_fits(self, env: Any) -> None:
        """Fail if loaded tables were learned on an env of another size."""
        n_states, policy = self.check_env(env), self._fitted("policy")
        if policy.shape != (n_states, env.action_space.n):
            raise AgentError(
                f"the checkpoint's tables cover {policy.shape[0]} states x {policy.shape[1]} actions; this env has "
                f"{n_states} x {env.action_space.n}: use a checkpoint trained on this env"
            )

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        return None

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        policy = self._fitted("policy")
        if np.ndim(obs) != 0 or not 0 <= int(obs) < len(policy):
            raise AgentError(
                f"{self.name} got observation {obs!r}; it plays state indices 0..{len(policy) - 1} (obs=index)"
            )
        row = policy[int(obs)]
        if greedy:
            return int(np.argmax(row)), None
        return int(self.rng.choice(len(row), p=row)), None

    def policy_table(self) -> np.ndarray:
        """(S, A) action probabilities of the policy `act` follows when greedy."""
        policy = self._fitted("policy")
        return np.eye(policy.shape[1])[policy.argmax(axis=1)]

    def overlay(self) -> dict[str, np.ndarray]:
        """What the viewer can draw: value heatmap, greedy arrows, Q."""
        return {k: v for k, v in self.tables.items() if k in ("V", "Q", "policy")}

    def save(self, path: str | Path) -> Path:
        self._fitted("policy")
        write_arrays(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, self.tables, {"agent": self.name, "config": self.config()})
        return Path(path)

    def load(self, path: str | Path) -> "TabularAgent":
        arrays, meta = read_arrays(path, CHECKPOINT_KIND, (CHECKPOINT_VERSION,))
        if meta.get("agent") != self.name:
            raise AgentError(f"{path} is a checkpoint of {meta.get('agent')!r}, not {self.name!r}; load it with that agent")
        missing = set(self.table_names) - set(arrays)
        if missing:
            raise AgentError(f"{path} lacks table(s) {sorted(missing)}; it was not written by {self.name}")
        self.tables = dict(arrays)
        for key, value in meta.get("config", {}).items():
            setattr(self, key, value)
        return self

    def digest(self) -> str:
        """Names what the agent has learned (SHA-256 of its tables)."""
        return arrays_digest(self.tables) if self.tables else ""

    def _fitted(self, table: str) -> np.ndarray:
        if table not in self.tables:
            raise AgentError(f"{self.name} has not been fitted; call fit(env) or load(path) first")
        return self.tables[table]
