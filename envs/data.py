"""Data the envs ship or build themselves: nothing is downloaded.

`image_dataset(name, size)` gives the image-generation data sets (handwritten digits,
procedural shapes) with fixed train and held-out splits.

`text_corpus()` is a few paragraphs written for Arena about the ideas it teaches, used by
the sequence task "text" (predict the next character).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

TEXT = """\
an agent lives in a world of states. at each step it looks at the state, picks an action,
and the world answers with a reward and a new state. the agent wants the sum of its
rewards to be large, not just the next one, so it must learn which states are good to be
in and which actions lead there. the value of a state is the reward it can expect from
there on, if it keeps acting as it does. the bellman equation says that this value is the
reward of one step plus the discounted value of the state that follows, averaged over
what the world may do. dynamic programming turns this equation into an update and sweeps
it over every state until nothing changes. it needs the model of the world: every
transition and every reward. when the model is not known, the agent has to learn from
experience. monte carlo methods wait until an episode ends and average the returns they
saw. temporal difference methods do not wait: they move the value of a state towards the
reward they just got plus the value they now guess for the next state. sarsa learns the
value of the policy it follows, exploration and all, while q learning learns the value of
the greedy policy even as it explores. when the states are too many to list, a network
takes the place of the table. it reads the observation and outputs a distribution over
actions, and the policy gradient pushes up the probability of actions that were followed
by more reward than expected. a recurrent network or a transformer can remember what it
saw before, which a task that asks it to copy a sequence or to reverse it requires.
"""


def text_corpus() -> str:
    """The shipped corpus: lower-case letters, spaces, punctuation and newlines."""
    return TEXT


def text_vocab() -> str:
    """The corpus's characters, sorted: token i is text_vocab()[i]."""
    return "".join(sorted(set(TEXT)))


# --------------------------------------------------------------------------- image data sets
#
# Two data sets that need no download, each with fixed splits: `train` (what generators
# and judges learn from), and two disjoint held-out sets: `heldout` (the reference every
# generator is scored against) and `heldout_b` (a second real sample: FID(heldout_b,
# heldout) is the real data's own score, the ceiling, and the `real-data` agent plays it).

DATA_SEED = 20261123  # the one seed the splits and the procedural shapes come from: fixed, so every run agrees
IMAGE_SIZES = {"digits": (8, 16), "shapes": (16, 32)}  # the sides each data set comes in (the first is native)
DEFAULT_IMAGE_SIZE = 16
SHAPE_CLASSES = ("circle", "square", "triangle", "cross")
SHAPES_PER_SPLIT = {"train": 4000, "heldout": 600, "heldout_b": 600}
DIGITS_HELDOUT = 300  # per held-out set; the other 1,197 of scikit-learn's 1,797 digits train


@dataclass(frozen=True)
class ImageData:
    """One image data set at one size. Images are (N, 1, size, size) float32 in [0, 1]
    (ink is 1); labels are (N,) int64 indices into `classes`."""

    name: str
    size: int
    classes: tuple[str, ...]
    train: np.ndarray
    train_labels: np.ndarray
    heldout: np.ndarray
    heldout_labels: np.ndarray
    heldout_b: np.ndarray
    heldout_b_labels: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1, self.size, self.size)


def image_dataset(name: str, size: int | None = None) -> ImageData:
    """The data set `name` ("digits" or "shapes") at `size` (None: 16); built once per process."""
    size = DEFAULT_IMAGE_SIZE if size is None else int(size)
    if name not in IMAGE_SIZES:
        raise ValueError(f"unknown data set {name!r}; use one of {', '.join(IMAGE_SIZES)}")
    if size not in IMAGE_SIZES[name]:
        raise ValueError(f"{name} comes in sizes {' and '.join(map(str, IMAGE_SIZES[name]))}, not {size}")
    return _image_dataset(name, size)


@functools.cache
def _image_dataset(name: str, size: int) -> ImageData:
    if name == "digits":
        images, labels, classes = _digits(size)
        order = np.random.default_rng(DATA_SEED).permutation(len(images))
        a, b = order[:DIGITS_HELDOUT], order[DIGITS_HELDOUT:2 * DIGITS_HELDOUT]
        splits = {"train": order[2 * DIGITS_HELDOUT:], "heldout": a, "heldout_b": b}
        parts = {k: (images[idx], labels[idx]) for k, idx in splits.items()}
    else:
        classes = SHAPE_CLASSES
        streams = np.random.SeedSequence(DATA_SEED).spawn(len(SHAPES_PER_SPLIT))
        parts = {split: shapes(n, size, np.random.default_rng(stream))
                 for (split, n), stream in zip(SHAPES_PER_SPLIT.items(), streams)}
    for images, labels in parts.values():
        images.setflags(write=False)
        labels.setflags(write=False)
    return ImageData(name, size, tuple(classes), *parts["train"], *parts["heldout"], *parts["heldout_b"])


def _digits(size: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """scikit-learn's 1,797 handwritten digits (8x8, 17 grey levels, shipped inside the
    package), scaled to [0, 1] and, for size 16, upsampled bilinearly."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.images.astype(np.float64) / 16.0  # (1797, 8, 8)
    if size != 8:
        x = zoom(x, (1, size / 8, size / 8), order=1, mode="nearest", grid_mode=True)
    x = np.clip(x, 0.0, 1.0).astype(np.float32)[:, None]
    return np.ascontiguousarray(x), digits.target.astype(np.int64), tuple(str(d) for d in range(10))


def shapes(n: int, size: int, rng: np.random.Generator, supersample: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """`n` filled shapes (circle, square, triangle, cross: labels 0..3) at random positions
    and sizes on a `size` x `size` canvas, anti-aliased by drawing at `supersample` times
    the resolution and averaging. Returns images (n, 1, size, size) float32 in [0, 1]."""
    labels = rng.integers(len(SHAPE_CLASSES), size=n)
    r = rng.uniform(0.22, 0.4, size=n) * size  # half-extent in pixels
    cx = rng.uniform(r, size - r)
    cy = rng.uniform(r, size - r)
    fine = size * supersample
    grid = ((np.arange(fine) + 0.5) / supersample).astype(np.float32)  # pixel centres on the fine grid
    img = np.zeros((n, size, size), dtype=np.float32)
    for k in range(len(SHAPE_CLASSES)):
        idx = np.flatnonzero(labels == k)
        dx = grid[None, None, :] - cx[idx, None, None].astype(np.float32)
        dy = grid[None, :, None] - cy[idx, None, None].astype(np.float32)
        R = r[idx, None, None].astype(np.float32)
        if k == 0:  # circle
            inside = dx**2 + dy**2 <= R**2
        elif k == 1:  # square
            inside = (np.abs(dx) <= 0.85 * R) & (np.abs(dy) <= 0.85 * R)
        elif k == 2:  # triangle, apex up
            inside = (dy <= R) & (np.abs(dx) <= (dy + R) / 2)
        else:  # cross
            inside = ((np.abs(dx) <= R / 3) & (np.abs(dy) <= R)) | ((np.abs(dy) <= R / 3) & (np.abs(dx) <= R))
        img[idx] = inside.reshape(len(idx), size, supersample, size, supersample).mean(axis=(2, 4), dtype=np.float32)
    return np.ascontiguousarray(img[:, None]), labels.astype(np.int64)
