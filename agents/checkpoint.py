"""Arena's one file container, and the one checkpoint format built on it.

Every file Arena writes (checkpoints here, replays in arena/replay.py) is a versioned
.npz of plain numeric arrays plus a JSON header: kind, format version, a SHA-256 over
the header and the arrays, and the file's metadata. Reading never unpickles
(`allow_pickle=False`), checks kind, version and checksum before anything is used, and
turns every defect, from a flipped bit to a forged header, into one `FileFormatError`
line. Writes are atomic: a temporary file, fsync, then rename.

A checkpoint's metadata is the same for every agent (tabular, DP, random, REINFORCE,
SB3): `agent`, its `settings`, the `env` it was trained on (id and kwargs), the
`budget` done and planned, the training `seed`, and `state` (what the learner needs
besides arrays, e.g. its RNG state). Tensors travel as NumPy arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from arena import settings as typed
from arena.errors import CheckpointError, FileFormatError, one_line

HEADER_KEY = "__header__"
CHECKPOINT_KIND = "arena-checkpoint"
CHECKPOINT_VERSION = 2  # 1: tabular-only .npz, neural as safetensors without a checksum
MAX_HEADER_BYTES = 16 << 20


# --------------------------------------------------------------------------- new files, written atomically


def new_file(path: str | Path, what: str, suffixes: tuple[str, ...] = (), overwrite: bool = False) -> Path:
    """Where a new output file (`what`: "the report page", "the video") may go: a file path
    with one of `suffixes`, and no file there unless `overwrite`; else one line saying so."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise FileFormatError(f"cannot write {what} to {path.suffix or 'a file without suffix'}; use a path ending in "
                              f"{' or '.join(suffixes)}")
    if path.is_dir():
        raise FileFormatError(f"{path} is a folder; give {what} a file path, e.g. {path / ('out' + (suffixes or ('',))[0])}")
    if path.exists() and not overwrite:
        raise FileFormatError(f"{path} already exists; choose another name"
                              + (" or add --overwrite" if what == "the report page" else "") + " (nothing was overwritten)")
    return path


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it to `path`: readers
    see the old file or the whole new one, and a failed or killed write leaves nothing behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
        os.close(fd)
    except OSError as exc:
        raise FileFormatError(f"cannot write {path}: {one_line(exc.strerror or exc)}; choose a writable folder") from None
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)  # the mode a plain open() would give, not mkstemp's private 0600
        os.replace(tmp, path)
    except OSError as exc:
        raise FileFormatError(f"cannot write {path}: {one_line(exc.strerror or exc)}; choose a writable path") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()  # read once, at import: setting it back and forth later would race with other threads


# --------------------------------------------------------------------------- the container


def write_arrays(path: str | Path, kind: str, version: int, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    """Atomically write arrays + a JSON header to a .npz; returns the file's SHA-256.

    Refuses arrays of Python objects and non-finite floats in `meta` (JSON has no NaN).
    """
    path = Path(path)
    arrays = {k: np.asarray(v, order="C") for k, v in arrays.items()}  # (not ascontiguousarray: it makes 0-d 1-d)
    for k, v in arrays.items():
        if v.dtype == object:
            raise FileFormatError(f"array {k!r} holds Python objects; only numeric arrays are saved")
    try:
        header = {"kind": kind, "version": version, "sha256": _digest(arrays, meta), "meta": meta}
        blob = np.frombuffer(json.dumps(header, sort_keys=True, allow_nan=False).encode(), dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"cannot write {path}: its metadata is not plain JSON ({one_line(exc)})") from None
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **{HEADER_KEY: blob, **arrays})  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())

    write_atomically(path, write)
    return file_digest(path)


def read_arrays(path: str | Path, kind: str, versions: tuple[int, ...]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, meta) of a file written by `write_arrays`, after checking kind, version and checksum.

    Any damage is one FileFormatError line: the file is only data, and whatever the
    zip, zlib or NumPy layers raise on bad bytes is the same fact, "this file is damaged".
    """
    path = Path(path)
    what = kind.removeprefix("arena-").replace("-", " ")
    if not path.is_file():
        raise FileFormatError(f"{path} does not exist; check the path")
    try:
        with np.load(path, allow_pickle=False) as data:
            if HEADER_KEY not in data.files:
                raise FileFormatError(f"{path} is not an Arena {what} file (no header); record it again")
            raw = data[HEADER_KEY]
            if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > MAX_HEADER_BYTES:
                raise FileFormatError(f"{path} has a damaged header; it cannot be read as an Arena {what} file")
            header = json.loads(bytes(raw).decode())
            arrays = {k: data[k] for k in data.files if k != HEADER_KEY}
    except FileFormatError:
        raise
    except MemoryError:
        raise FileFormatError(f"{path} claims arrays too large to load; it is damaged or not an Arena {what} file") from None
    except Exception as exc:  # noqa: BLE001 - zipfile/zlib/NumPy/JSON errors all mean "damaged"
        raise FileFormatError(
            f"{path} is truncated or corrupt ({type(exc).__name__}); it cannot be read as an Arena {what} file"
        ) from None
    if not isinstance(header, dict):
        raise FileFormatError(f"{path} has a damaged header; it cannot be read as an Arena {what} file")
    if header.get("kind") != kind:
        other = str(header.get("kind")).removeprefix("arena-")[:40]
        raise FileFormatError(f"{path} is an Arena {other} file, not an Arena {what} file")
    if header.get("version") not in versions:
        raise FileFormatError(
            f"{path} is {what} format version {str(header.get('version'))[:20]}; this Arena reads version(s) "
            f"{', '.join(map(str, versions))}: upgrade Arena or write the file again"
        )
    meta = header.get("meta")
    if not isinstance(meta, dict) or header.get("sha256") != _digest(arrays, meta):
        raise FileFormatError(f"{path} failed its checksum: the file was altered or damaged; write it again")
    return arrays, meta


def _digest(arrays: dict[str, np.ndarray], meta: Any = None) -> str:
    """SHA-256 over the JSON metadata and the arrays (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    if meta is not None:
        h.update(json.dumps(meta, sort_keys=True).encode())
    for k in sorted(arrays):
        v = np.asarray(arrays[k], order="C")
        h.update(f"{k}:{v.dtype.str}:{v.shape}".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def started_from(path: str | Path) -> dict[str, str]:
    """What a checkpoint's header records of the checkpoint its run began from (fit(init=...))."""
    return {"path": str(path), "sha256": file_digest(path)}


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes: names a checkpoint in replays and on the leaderboard."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of named arrays: names what an agent has learned without writing a file."""
    return _digest(arrays)


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    path: str | Path,
    agent: str,
    settings: dict[str, Any],
    arrays: dict[str, np.ndarray],
    *,
    env: dict[str, Any] | None = None,
    budget: dict[str, Any] | None = None,
    seed: int | None = None,
    state: dict[str, Any] | None = None,
) -> Path:
    """Write an agent's checkpoint: its arrays and the common header (see the module docstring)."""
    for name, a in arrays.items():
        # -inf is allowed: it marks an untried action (off-policy MC control)
        if np.issubdtype(a.dtype, np.floating) and (np.isnan(a) | np.isposinf(a)).any():
            raise CheckpointError(f"{agent}: array {name!r} holds NaN or +inf; a non-finite checkpoint is never written")
    meta = {
        "agent": agent, "settings": settings, "env": env, "budget": budget or {}, "seed": seed, "state": state or {},
    }
    write_arrays(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, arrays, meta)
    return Path(path)


def load_checkpoint(path: str | Path, agent: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, header meta) of `agent`'s checkpoint; another agent's file is named as such."""
    try:
        arrays, meta = read_arrays(path, CHECKPOINT_KIND, (CHECKPOINT_VERSION,))
    except FileFormatError as exc:
        raise CheckpointError(str(exc)) from None
    owner = meta.get("agent")
    if not isinstance(owner, str):
        raise CheckpointError(f"{path} has no agent name in its header; it is damaged: write it again")
    if owner != agent:
        raise CheckpointError(f"{path} is a checkpoint of {owner[:60]}, not of {agent}: load it with {owner[:60]}")
    expect: dict[str, Any] = {"settings": dict, "budget": dict, "state": dict, "env": (dict, type(None)),
                              "seed": (int, type(None))}
    for key, kind in expect.items():
        if key not in meta or not isinstance(meta[key], kind):
            raise CheckpointError(f"{path}: header field {key!r} is missing or malformed; the file is damaged: write it again")
    if meta["seed"] is not None and (isinstance(meta["seed"], bool) or not 0 <= meta["seed"] < 2**63):
        raise CheckpointError(f"{path}: header seed {meta['seed']!r} is not a non-negative integer; the file is damaged")
    return arrays, meta


def require(arrays: dict[str, np.ndarray], path: str | Path, agent: str, **shapes: tuple[int | None, ...]) -> None:
    """Check a checkpoint holds the named arrays with the given ranks/sizes (None: any size)."""
    for name, shape in shapes.items():
        a = arrays.get(name)
        ok = a is not None and a.ndim == len(shape) and all(n is None or n == m for n, m in zip(shape, a.shape))
        if a is None or not ok or not np.issubdtype(a.dtype, np.number):
            raise CheckpointError(f"{path} lacks a valid {name!r} array; it was not written by {agent}")


def load_settings(cls: type, meta: dict[str, Any], path: str | Path, agent: str) -> Any:
    """The checkpoint's settings as `cls`, checked like any other settings."""
    try:
        return typed.build(cls, meta["settings"], CheckpointError, where=f"{path}: setting ")
    except CheckpointError as exc:
        raise CheckpointError(f"{one_line(exc)} (the checkpoint of {agent} is damaged or from another version)") from None


__all__ = [
    "CHECKPOINT_KIND", "CHECKPOINT_VERSION", "arrays_digest", "file_digest", "load_checkpoint", "load_settings",
    "read_arrays", "require", "save_checkpoint", "write_arrays",
]
