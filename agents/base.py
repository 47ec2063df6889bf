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

    def load(self, path: str | Path, env: Any = None) -> "Agent":
        """Restore from a checkpoint; `env` lets a network rebuild itself for the env's spaces."""
        ...

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
    header = {"kind": kind, "version": version, "sha256": _digest(arrays, meta), "meta": meta}
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
    if header.get("sha256") != _digest(arrays, header.get("meta")):
        raise FileFormatError(f"{path} failed its checksum: the file was altered or damaged; re-record it")
    return arrays, header["meta"]


def _digest(arrays: dict[str, np.ndarray], meta: Any = None) -> str:
    """SHA-256 over the arrays (names, dtypes, shapes, bytes) and, when given, the JSON metadata."""
    h = hashlib.sha256()
    if meta is not None:
        h.update(json.dumps(meta, sort_keys=True).encode())
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


CHECKPOINT_KIND = "arena-checkpoint"
CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------------- training logs


class TrainingInterrupted(Exception):
    """Training was stopped (Ctrl-C); a checkpoint to resume from was saved."""

    def __init__(self, episode: int, checkpoint: Path | None) -> None:
        self.episode, self.checkpoint = episode, checkpoint
        where = f"; checkpoint saved to {checkpoint}" if checkpoint else " (no run folder, nothing saved)"
        super().__init__(f"training interrupted at episode {episode}{where}")


class TrainingLog:
    """Per-episode returns and periodic exact evaluations, to TensorBoard and a PNG curve.

    `returns[i]` is the return of training episode i as experienced (exploration
    included); `evals` holds (episode, J of the current greedy policy), and `optimum` the
    best achievable J, drawn as a line.
    """

    def __init__(self, run_dir: str | Path | None = None, optimum: float | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir else None
        self.returns: list[float] = []
        self.evals: list[tuple[int, float]] = []
        self.optimum = optimum
        self._writer = None

    def _tb(self) -> Any:
        if self._writer is None and self.run_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        return self._writer

    def episode(self, G: float, **scalars: float) -> None:
        self.returns.append(float(G))
        writer = self._tb()
        if writer is not None:
            step = len(self.returns)
            writer.add_scalar("train/return", G, step)
            for name, value in scalars.items():
                writer.add_scalar(f"train/{name}", value, step)

    def evaluation(self, episode: int, J: float) -> None:
        self.evals.append((episode, float(J)))
        writer = self._tb()
        if writer is not None:
            writer.add_scalar("eval/greedy_J", J, episode)
            if self.optimum is not None:
                writer.add_scalar("eval/optimal_J", self.optimum, episode)

    def arrays(self) -> dict[str, np.ndarray]:
        """The log as arrays, to travel inside a checkpoint (so --resume continues the curve)."""
        ev = np.array(self.evals, dtype=float).reshape(-1, 2)
        return {"log_returns": np.array(self.returns, dtype=float), "log_evals": ev}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.returns = arrays["log_returns"].tolist() if "log_returns" in arrays else []
        self.evals = [(int(e), float(j)) for e, j in arrays.get("log_evals", np.zeros((0, 2)))]

    def plot(self, path: str | Path, title: str, unit: str = "episode") -> Path:
        """Learning curve PNG: experienced returns (smoothed), and below them the greedy
        policy's exact J against the optimum when the env has a model. `unit` names what
        one point is (an episode, or a batch of episodes)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        exact = bool(self.evals) or self.optimum is not None
        fig, axes = plt.subplots(2 if exact else 1, 1, figsize=(8, 6 if exact else 3.5), sharex=True, squeeze=False)
        top = axes[0, 0]
        G = np.array(self.returns)
        x = np.arange(1, len(G) + 1)
        w = max(1, len(G) // 50)
        top.plot(x, G, color="0.8" if w > 1 else "C0", lw=0.6 if w > 1 else 1.2, label=f"return per {unit}")
        if w > 1:
            top.plot(x[w - 1:], np.convolve(G, np.ones(w) / w, mode="valid"), color="C0", label=f"moving mean ({w})")
        top.set_ylabel("return (while exploring)")
        top.legend(loc="lower right")
        if exact:
            bottom = axes[1, 0]
            if self.evals:
                ev = np.array(self.evals)
                bottom.plot(ev[:, 0], ev[:, 1], "o-", color="C1", ms=3, label="greedy policy, exact J")
            if self.optimum is not None:
                bottom.axhline(self.optimum, color="C2", ls="--", label="optimum J* (DP)")
            bottom.set_ylabel("J = E[discounted return]")
            bottom.legend(loc="lower right")
        axes[-1, 0].set_xlabel(f"training {unit}")
        fig.suptitle(title)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# --------------------------------------------------------------------------- network weights


def write_safetensors(path: str | Path, tensors: dict[str, Any], meta: dict[str, str]) -> Path:
    """Atomically write torch tensors and string metadata as a .safetensors file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_safetensors(path: str | Path, fmt: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(tensors, metadata) of a .safetensors file whose metadata says format `fmt`; never unpickles."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise AgentError(f"{path} does not exist; check the path")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise AgentError(f"{path} is not a readable checkpoint ({exc}); it is truncated or corrupt") from None
    if meta.get("format") != fmt:
        raise AgentError(f"{path} is not a {fmt} checkpoint (its format is {meta.get('format')!r})")
    return tensors, meta


def module_digest(module: Any) -> str:
    """SHA-256 over a torch module's weights: names what a network has learned."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()
