"""The networks the image env judges with, trained inside the project.

- `Classifier`: a small CNN per data set. Its predictions count the classes a generator
  covers; its penultimate features are the space generators are scored in (Fréchet
  distance, Inception Score: arena/image_score.py). Held-out accuracy >= 97% (tested).
- `Judge`: a CNN discriminator, D(x) = P(x is real), trained on real images against
  easy fakes (noise, blurred blobs, blends of two digits, noisy or shuffled digits).
  The env's "frozen" judge is exactly this; the "adaptive" judge starts from it and
  keeps learning against what it is shown (envs/imagegen.py).

Both are trained once per (data set, size, seed), deterministically (seeded init and
data order; CPU), and cached as safetensors (no pickle) with a JSON header carrying a
format version and a SHA-256 of the weights: a damaged or foreign cache file is trained
again, never trusted. Cache folder: $ARENA_CACHE, else $XDG_CACHE_HOME/arena, else
~/.cache/arena.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from envs.data import ImageData, image_dataset

CACHE_FORMAT = "arena-vision"
CACHE_VERSION = 2  # 2: trained on one torch thread (1: on as many as the machine had)
FEATURES = 128  # width of the classifier's penultimate layer: the scoring feature space
TRAIN_STEPS = {"classifier": 1000, "judge": 400}
BATCH = 64


def cache_dir() -> Path:
    """Where trained judges and classifiers are kept between runs."""
    if os.environ.get("ARENA_CACHE"):
        return Path(os.environ["ARENA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "arena"


class ConvBody(nn.Module):
    """(B, 1, S, S) images in [0, 1] -> (B, FEATURES): two strided convolutions (each
    halves the side), then one dense layer. Small on purpose: it trains in seconds on a CPU.
    Images smaller than 16 x 16 are first upsampled to it (bilinear), as the data sets are."""

    MIN_SIDE = 16

    def __init__(self, size: int, slope: float = 0.0) -> None:
        super().__init__()
        act = nn.LeakyReLU(slope) if slope else nn.ReLU()
        self.side = max(size, self.MIN_SIDE)
        side = (self.side + 3) // 4
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 5, stride=2, padding=2), act,  # (B, 16, S/2, S/2)
            nn.Conv2d(16, 32, 3, stride=2, padding=1), act,  # (B, 32, S/4, S/4)
            nn.Flatten(),
            nn.Linear(32 * side * side, FEATURES), act,  # (B, FEATURES)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.side:
            x = nn.functional.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        return self.net(x)


class Classifier(nn.Module):
    """Class logits (B, n_classes); `features(x)` is the (B, FEATURES) layer before them."""

    def __init__(self, size: int, n_classes: int) -> None:
        super().__init__()
        self.body = ConvBody(size)
        self.head = nn.Linear(FEATURES, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class Judge(nn.Module):
    """The discriminator: `forward(x)` is D(x), the realness in [0, 1] per image (B,);
    `logits(x)` the same before the sigmoid (what a loss should use)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.body = ConvBody(size, slope=0.2)
        self.head = nn.Linear(FEATURES, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


# --------------------------------------------------------------------------- training


def easy_fakes(real: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """As many fakes as `real` images, a sixth of each kind: uniform noise, smooth blobs,
    blends of two real images, real plus noise, flat grey, real with shuffled pixels."""
    from scipy.ndimage import gaussian_filter

    n, _, S, _ = real.shape
    kind = np.arange(n) % 6
    x = real[:, 0].astype(np.float64)
    f = np.empty_like(x)
    f[kind == 0] = rng.uniform(0, 1, ((kind == 0).sum(), S, S))
    blobs = gaussian_filter(rng.standard_normal(((kind == 1).sum(), S, S)), sigma=(0, S / 8, S / 8))
    low, high = blobs.min(axis=(1, 2), keepdims=True), blobs.max(axis=(1, 2), keepdims=True)
    f[kind == 1] = (blobs - low) / (high - low + 1e-8)
    a = rng.uniform(0.35, 0.65, ((kind == 2).sum(), 1, 1))
    f[kind == 2] = a * x[kind == 2] + (1 - a) * x[rng.permutation(n)][kind == 2]
    f[kind == 3] = x[kind == 3] + rng.normal(0, 0.35, ((kind == 3).sum(), S, S))
    f[kind == 4] = rng.uniform(0, 1, ((kind == 4).sum(), 1, 1))
    flat = x[kind == 5].reshape(-1, S * S)
    f[kind == 5] = np.take_along_axis(flat, rng.random(flat.shape).argsort(axis=1), axis=1).reshape(-1, S, S)
    return np.clip(f, 0, 1).astype(real.dtype)[:, None]


def train_classifier(data: ImageData, seed: int = 0) -> tuple[Classifier, float]:
    """A classifier for `data`, trained from `seed`; returns it and its held-out accuracy."""
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Classifier(data.size, len(data.classes))
    optim = torch.optim.Adam(model.parameters(), lr=2e-3)
    x_all, y_all = torch.from_numpy(np.array(data.train)), torch.from_numpy(np.array(data.train_labels))
    for step in range(TRAIN_STEPS["classifier"]):
        idx = torch.from_numpy(rng.integers(len(x_all), size=BATCH))
        x = _shift(x_all[idx], rng)  # +-1 pixel shifts: held-out digits are not centred alike
        loss = nn.functional.cross_entropy(model(x), y_all[idx])
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    return model, accuracy(model, data.heldout, data.heldout_labels)


def _shift(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    dy, dx = (int(v) for v in rng.integers(-1, 2, size=2))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def accuracy(model: Classifier, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(np.array(images))).argmax(dim=1).numpy()
    return float((pred == labels).mean())


def train_judge(data: ImageData, seed: int = 0) -> Judge:
    """The frozen judge for `data`: D trained from `seed` on real training images (label 1)
    against `easy_fakes` (label 0) with binary cross-entropy."""
    rng = np.random.default_rng([seed, 1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        judge = Judge(data.size)
    optim = torch.optim.Adam(judge.parameters(), lr=1e-3, betas=(0.5, 0.999))
    target = torch.cat([torch.ones(BATCH), torch.zeros(BATCH)])
    for step in range(TRAIN_STEPS["judge"]):
        real = data.train[rng.integers(len(data.train), size=BATCH)]
        x = torch.from_numpy(np.concatenate([real, easy_fakes(real, rng)]).astype(np.float32))
        loss = nn.functional.binary_cross_entropy_with_logits(judge.logits(x), target)
        optim.zero_grad()
        loss.backward()
        optim.step()
    judge.eval()
    return judge


# --------------------------------------------------------------------------- the cache

_LOADED: dict[tuple[str, str], nn.Module] = {}


def classifier(dataset: str, size: int) -> Classifier:
    """The data set's classifier (seed 0), from the cache or trained now (a few seconds).
    Images below 16 x 16 are read by the 16 x 16 classifier (it upsamples them exactly as
    the data set does): a classifier trained on 8 x 8 digits stays under 97%."""
    return _cached("classifier", dataset, max(int(size), ConvBody.MIN_SIDE), 0)  # type: ignore[return-value]


def judge(dataset: str, size: int, seed: int = 0) -> Judge:
    """The frozen judge of (data set, size, seed), from the cache or trained now."""
    return _cached("judge", dataset, size, seed)  # type: ignore[return-value]


def _cached(kind: str, dataset: str, size: int, seed: int) -> nn.Module:
    data = image_dataset(dataset, size)

    def train() -> tuple[nn.Module, dict[str, str]]:
        if kind == "classifier":
            model, acc = train_classifier(data, seed)
            return model, {"heldout_accuracy": f"{acc:.4f}"}
        return train_judge(data, seed), {}

    return cached_module(kind, f"{kind}-{dataset}{size}-seed{seed}", {"dataset": dataset, "size": int(size), "seed": int(seed)},
                         lambda: _blank(kind, data), train, f"the {dataset} {size}x{size} {kind} (seed {seed})")


class one_thread:
    """Run a block with torch on one thread (a float sum's order depends on the thread count)."""

    def __enter__(self) -> None:
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: Any) -> None:
        torch.set_num_threads(self.before)


def cached_module(kind: str, stem: str, trained_for: dict[str, Any], blank: Callable[[], nn.Module],
                  train: Callable[[], tuple[nn.Module, dict[str, str]]], what: str) -> nn.Module:
    """A trained module from the cache file `<stem>-v<version>.safetensors`, or trained now by
    `train()` (returning the module and header extras) and cached. The header names `kind`
    and what it was `trained_for`; a file whose header or checksum disagrees is trained
    again. `blank()` makes an untrained module of the right shape to load weights into.
    The module comes back frozen (no gradients) and kept in memory for the next call.
    Training runs on one torch thread, so the cached weights, and every score they give, are
    the same bit for bit on any machine with the same torch build, whatever its core count."""
    key = (kind, stem)
    if key in _LOADED:
        return _LOADED[key]
    path = cache_dir() / f"{stem}-v{CACHE_VERSION}.safetensors"
    model = _read(path, kind, blank, trained_for)
    if model is None:
        t0 = time.perf_counter()
        print(f"arena: training {what} once; it is cached in {path.parent}", file=sys.stderr, flush=True)
        with torch.enable_grad(), one_thread():  # the first use may come from inside a caller's torch.no_grad()
            model, extra = train()
        _write(path, model, {"kind": kind, **trained_for, **extra})
        print(f"arena: trained in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _LOADED[key] = model
    return model


def _blank(kind: str, data: ImageData) -> nn.Module:
    return Classifier(data.size, len(data.classes)) if kind == "classifier" else Judge(data.size)


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode() + str(tuple(t.shape)).encode() + t.numpy().tobytes())
    return h.hexdigest()


def _write(path: Path, model: nn.Module, fields: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {"format": CACHE_FORMAT, "version": CACHE_VERSION, **fields, "sha256": weights_digest(tensors)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        save_file(tensors, tmp, metadata={"arena": json.dumps(header, sort_keys=True)})
        os.replace(tmp, path)  # atomic: concurrent trainers write identical files
    except OSError as exc:  # a read-only cache is not fatal: the model is in memory
        print(f"arena: cannot cache {path.name} ({exc.strerror or exc}); set ARENA_CACHE to a writable folder",
              file=sys.stderr)


def _read(path: Path, kind: str, blank: Callable[[], nn.Module], trained_for: dict[str, Any]) -> nn.Module | None:
    """The cached model, or None when there is none, it is damaged, or its header says it was
    trained for something else (a file copied over another): then it is retrained."""
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get("arena", "{}"))
        tensors = load_file(str(path))
        if header.get("format") != CACHE_FORMAT or header.get("version") != CACHE_VERSION or header.get("kind") != kind:
            raise ValueError("not this kind or version")
        other = {k: header.get(k) for k in trained_for if header.get(k) != trained_for[k]}
        if other:
            raise ValueError(f"trained for {other}, not {trained_for}")
        if header.get("sha256") != weights_digest(tensors):
            raise ValueError("checksum mismatch")
        model = blank()
        model.load_state_dict(tensors, strict=True)
        model.eval()
        return model
    except Exception as exc:  # noqa: BLE001 - any defect in a cache file means: train it again
        print(f"arena: the cached {path.name} is unusable ({type(exc).__name__}: {str(exc)[:100]}); training it again",
              file=sys.stderr)
        return None


__all__ = ["Classifier", "FEATURES", "cached_module", "Judge", "accuracy", "cache_dir", "classifier", "easy_fakes", "judge",
           "train_classifier", "train_judge", "weights_digest"]
