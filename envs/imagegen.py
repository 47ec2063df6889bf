"""ImageGeneration: a generator is an agent, and a discriminator judges its images.

One image per step; an episode is `batch` images. At step t the observation is latent
noise z_t ~ N(0, I) clipped to [-5, 5] (`latent` numbers; when `conditional`, followed by the one-hot class
y_t the image should show). The action is an image: a float Box in [0, 1] of shape
(1, size, size). The reward is the judge's realness score D(x) in [0, 1]; when
conditional, D(x) p(y_t | x), with p from the data set's classifier, so an image is only
worth its realness when it shows the class asked for.

Judges (envs/vision.py):
- "frozen": a CNN discriminator trained once per `judge_seed` on real images against
  easy fakes, cached on disk: the same seed gives the same episode, bit for bit.
- "adaptive": starts as the frozen judge and, after each episode, takes one Adam step
  on binary cross-entropy with the episode's images as fakes and as many real training
  images as reals: the env itself is the adversary. It learns across the episodes of one
  env object, so an episode is reproducible from a fresh env (replays are recorded that way).

The last step's info carries the diversity measures a judge cannot see:
`classes_covered` (distinct classes the classifier reads in the episode),
`pairwise_distance` (mean RMS pixel distance over all pairs of its images) and
`mode_collapse` (that distance below COLLAPSE_FRACTION of the held-out data's own).
Differentiable agents may use `env.unwrapped.judge` (a torch module, D(x)) and
`env.unwrapped.real_batch(n, seed)`; black-box agents see only rewards.

torch is imported on first use, not with the module: listing envs stays fast.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from arena import settings as typed
from arena.settings import setting
from envs.data import DEFAULT_IMAGE_SIZE, IMAGE_SIZES, SHAPE_CLASSES, ImageData, image_dataset
from envs.errors import EnvError
from envs.rendering import PygameRendering

DATASETS = tuple(IMAGE_SIZES)
N_CLASSES = {"digits": 10, "shapes": len(SHAPE_CLASSES)}
JUDGES = ("frozen", "adaptive")
COLLAPSE_FRACTION = 0.3  # mode collapse: pairwise distance below this share of real data's
ADAPT_LR = 2e-4  # the adaptive judge's Adam step size
MAX_BATCH = 4096
LATENT_BOUND = 5.0  # z is clipped to [-5, 5]: a finite Box (P(|z| > 5) is 6e-7 per number)


def _one_thread_after_fork() -> None:
    """In a forked child (Gymnasium's AsyncVectorEnv forks by default) torch's thread pool
    is the parent's, copied without its threads: the judge's first parallel op would wait
    for them forever. One thread runs it inline. (Only when the parent had imported torch.)"""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


os.register_at_fork(after_in_child=_one_thread_after_fork)


class ImageError(EnvError):
    """An image-generation kwarg or an image (the action) is unusable."""


@dataclass(frozen=True)
class ImageGenSettings:
    """ImageGeneration's kwargs, checked (type, range) before anything is built."""

    dataset: str = setting("digits", help="the real images: digits (scikit-learn) or shapes (procedural)",
                           choices=DATASETS)
    judge: str = setting("frozen", help="frozen (trained once per judge_seed) or adaptive (keeps learning)",
                         choices=JUDGES)
    conditional: bool = setting(False, help="observations carry the class the image should show")
    batch: int = setting(64, help="images per episode", low=1, high=MAX_BATCH)
    size: int | None = setting(None, help="image side: digits 8 or 16, shapes 16 or 32 (null: 16)", low=1, high=64)
    latent: int = setting(16, help="latent noise dimensions", low=1, high=1024)
    judge_seed: int = setting(0, help="which trained judge (each seed is cached once)", low=0, high=2**31 - 1)


def check_image(action: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The action as a float32 image of `shape`, or an ImageError naming what is wrong with it."""
    want = f"a float array of shape {shape} (channels, height, width) in [0, 1]"
    try:
        x = np.asarray(action)
    except Exception:  # noqa: BLE001 - whatever the object is, it is not an image
        raise ImageError(f"the action must be an image, {want}; got {type(action).__name__}") from None
    if x.dtype.kind != "f":
        raise ImageError(f"image dtype {x.dtype} is not a float; give {want}")
    if x.shape != tuple(shape):
        raise ImageError(f"image of shape {x.shape}; this env wants {want}")
    nan = int(np.isnan(x).sum())
    if nan:
        raise ImageError(f"image has NaN pixels ({nan} of {x.size}): the generator's output is broken; "
                         "check its losses for NaN")
    inf = int(np.isinf(x).sum())
    if inf:
        raise ImageError(f"image has infinite pixels ({inf} of {x.size}); give {want}")
    if x.min() < 0.0 or x.max() > 1.0:
        raise ImageError(f"image pixels must lie in [0, 1], got {x.min():.3g}..{x.max():.3g}; "
                         "squash the output (sigmoid) or clip it")
    return x.astype(np.float32, copy=False)


def pairwise_distance(images: np.ndarray) -> float:
    """Mean over all pairs i < j of the RMS pixel difference sqrt(mean((x_i - x_j)^2)); 0 for < 2 images."""
    n = len(images)
    if n < 2:
        return 0.0
    x = images.reshape(n, -1).astype(np.float64)
    sq = (x**2).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0) / x.shape[1]
    return float(np.sqrt(d2[np.triu_indices(n, k=1)]).mean())


class ImageGenerationEnv(PygameRendering, gym.Env):
    """`arena/ImageGeneration-v0`, alias `img:<dataset>` (see the module docstring)."""

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 8}
    learns_across_episodes = False  # True with the adaptive judge (arena/match.py plays each episode on a fresh env)

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        """kwargs: the fields of `ImageGenSettings` (declared there once, checked here)."""
        s = typed.build(ImageGenSettings, kwargs, ImageError)
        self.size = DEFAULT_IMAGE_SIZE if s.size is None else s.size
        if self.size not in IMAGE_SIZES[s.dataset]:
            sides = " or ".join(map(str, IMAGE_SIZES[s.dataset]))
            raise ImageError(f"size={self.size} is not available for {s.dataset}; use {sides}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ImageError(f"unknown render_mode {render_mode!r}; use one of {self.metadata['render_modes']}")
        self.settings, self.render_mode = s, render_mode
        self.dataset, self.judge_kind, self.conditional = s.dataset, s.judge, s.conditional
        self.batch, self.latent, self.judge_seed = s.batch, s.latent, s.judge_seed
        self.n_classes = N_CLASSES[s.dataset]
        self.image_shape = (1, self.size, self.size)
        obs_dim = s.latent + (self.n_classes if s.conditional else 0)
        self.observation_space = spaces.Box(-LATENT_BOUND, LATENT_BOUND, shape=(obs_dim,), dtype=np.float32)
        self.action_space = spaces.Box(0.0, 1.0, shape=self.image_shape, dtype=np.float32)
        self.max_steps = s.batch
        self.learns_across_episodes = s.judge == "adaptive"
        self._data: ImageData | None = None
        self._judge: Any = None
        self._classifier: Any = None
        self._optim: Any = None
        self._real_spread: float | None = None
        self.z = np.zeros((s.batch, s.latent), dtype=np.float32)
        self.labels = np.zeros(s.batch, dtype=np.int64)
        self.images = np.zeros((s.batch, *self.image_shape), dtype=np.float32)
        self.scores = np.zeros(s.batch, dtype=np.float64)
        self.t = 0
        self._font: Any = None

    # ---------------------------------------------------------------- what agents may use

    @property
    def data(self) -> ImageData:
        """The data set (train and held-out splits), loaded on first use."""
        if self._data is None:
            self._data = image_dataset(self.dataset, self.size)
        return self._data

    @property
    def classes(self) -> tuple[str, ...]:
        return self.data.classes

    @property
    def judge(self) -> Any:
        """D: a torch module mapping images (B, 1, S, S) in [0, 1] to realness (B,) in [0, 1]."""
        if self._judge is None:
            import copy

            import torch

            from envs.vision import judge as trained_judge

            frozen = trained_judge(self.dataset, self.size, self.judge_seed)
            if self.judge_kind == "adaptive":  # its own copy, which learns
                self._judge = copy.deepcopy(frozen)
                for p in self._judge.parameters():
                    p.requires_grad_(True)
                self._optim = torch.optim.Adam(self._judge.parameters(), lr=ADAPT_LR, betas=(0.5, 0.999))
            else:
                self._judge = frozen
        return self._judge

    @property
    def classifier(self) -> Any:
        """The data set's classifier (envs/vision.py): class logits (B, n_classes)."""
        if self._classifier is None:
            from envs.vision import classifier

            self._classifier = classifier(self.dataset, self.size)
        return self._classifier

    def real_batch(self, n: int, seed: int, labels: bool = False) -> Any:
        """`n` real training images (n, 1, S, S) float32, drawn with `seed`; with `labels`,
        (images, labels). The same seed gives the same batch."""
        if not 1 <= int(n) <= 1_000_000:
            raise ImageError(f"real_batch(n={n}): ask for 1..1000000 images")
        idx = np.random.default_rng(int(seed)).integers(len(self.data.train), size=int(n))
        images = self.data.train[idx]
        return (images, self.data.train_labels[idx]) if labels else images

    def score(self, images: np.ndarray) -> np.ndarray:
        """The judge's realness (n,) for a batch of images (n, 1, S, S), without learning from them."""
        import torch

        with torch.no_grad():
            return self.judge(torch.from_numpy(np.array(images, dtype=np.float32))).double().numpy()

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes) from the data set's classifier."""
        import torch

        with torch.no_grad():
            return torch.softmax(self.classifier(torch.from_numpy(np.array(images, dtype=np.float32))), dim=1).double().numpy()

    def real_spread(self) -> float:
        """The held-out data's own pairwise distance (the yardstick of mode collapse)."""
        if self._real_spread is None:
            self._real_spread = pairwise_distance(self.data.heldout)
        return self._real_spread

    def diversity(self, images: np.ndarray) -> dict[str, Any]:
        """`classes_covered`, `pairwise_distance` and `mode_collapse` of a set of images."""
        covered = int(len(np.unique(self.classify(images).argmax(axis=1)))) if len(images) else 0
        spread = pairwise_distance(images)
        collapsed = len(images) >= 2 and spread < COLLAPSE_FRACTION * self.real_spread()
        return {"classes_covered": covered, "pairwise_distance": spread, "mode_collapse": bool(collapsed)}

    # ---------------------------------------------------------------- dynamics

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        z = self.np_random.standard_normal((self.batch, self.latent))
        self.z = np.clip(z, -LATENT_BOUND, LATENT_BOUND).astype(np.float32)
        self.labels = self.np_random.integers(self.n_classes, size=self.batch).astype(np.int64)
        self.images = np.zeros((self.batch, *self.image_shape), dtype=np.float32)
        self.scores = np.zeros(self.batch, dtype=np.float64)
        self.t = 0
        if self.render_mode == "human":
            self.render()
        return self._observe(), {}

    def _observe(self) -> np.ndarray:
        t = min(self.t, self.batch - 1)
        if not self.conditional:
            return self.z[t].copy()
        onehot = np.zeros(self.n_classes, dtype=np.float32)
        onehot[self.labels[t]] = 1.0
        return np.concatenate([self.z[t], onehot])

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.t >= self.batch:
            raise ImageError("the episode is over (all its images are made); call reset()")
        x = check_image(action, self.image_shape)
        realness = float(self.score(x[None])[0])
        info: dict[str, Any] = {"realness": realness}
        reward = realness
        if self.conditional:  # R = D(x) p(y | x): real, and of the class asked for
            p = float(self.classify(x[None])[0, self.labels[self.t]])
            info.update(label=int(self.labels[self.t]), class_prob=p)
            reward = realness * p
        self.images[self.t], self.scores[self.t] = x, reward
        self.t += 1
        terminated = self.t == self.batch
        if terminated:
            info.update(self.diversity(self.images))
            if self.judge_kind == "adaptive":
                self._adapt()
        if self.render_mode == "human":
            self.render()
        return self._observe(), reward, terminated, False, info

    def _adapt(self) -> None:
        """The adaptive judge's step: BCE with real training images (1) against the episode's (0)."""
        import torch

        real = self.data.train[self.np_random.integers(len(self.data.train), size=self.batch)]
        x = torch.from_numpy(np.concatenate([real, self.images]))
        target = torch.cat([torch.ones(self.batch), torch.zeros(self.batch)])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(self.judge.logits(x), target)
        self._optim.zero_grad()
        loss.backward()
        self._optim.step()

    def snapshot(self) -> tuple[int, np.ndarray, np.ndarray]:
        return (self.t, self.images.copy(), self.scores.copy())

    def restore(self, snapshot: tuple[int, np.ndarray, np.ndarray]) -> None:
        self.t, images, scores = snapshot
        self.images, self.scores = images.copy(), scores.copy()

    def describe_action(self, action: Any) -> str:
        """A short name for an image action (the viewer's status line)."""
        x = np.asarray(action, dtype=np.float64)
        return f"image (mean brightness {x.mean():.2f})"

    # ---------------------------------------------------------------- drawing

    def render_text(self) -> str:
        made = self.scores[: self.t]
        mean = f"  mean score {made.mean():.3f}" if self.t else ""
        return f"{self.dataset} {self.size}x{self.size}: image {self.t}/{self.batch}{mean}\n"

    REAL_SHOWN = 16

    def _layout(self) -> tuple[int, int, int, int]:
        """(cell side in pixels, columns of the generated grid, its rows, columns of the real grid)."""
        cell = self.size * max(1, 48 // self.size)
        cols = min(self.batch, 8)
        return cell, cols, -(-self.batch // cols), 4

    def frame_size(self) -> tuple[int, int]:
        cell, cols, rows, real_cols = self._layout()
        pitch_x, pitch_y = cell + 6, cell + 18
        width = 12 + cols * pitch_x + 24 + real_cols * pitch_x + 12
        real_rows = -(-self.REAL_SHOWN // real_cols)
        height = 30 + max(rows, real_rows) * pitch_y + 8
        return width, height

    def draw(self, surface: Any, show_values: bool = True, show_policy: bool = True) -> None:
        """The episode's images so far in a grid, each with its score (green real, red fake),
        and held-out real images beside them."""
        import pygame

        if self._font is None:
            pygame.font.init()
            self._font = pygame.font.Font(None, 18)
        font = self._font
        cell, cols, rows, real_cols = self._layout()
        pitch_x, pitch_y = cell + 6, cell + 18
        surface.fill((245, 244, 238))
        surface.blit(font.render(f"generated ({self.t}/{self.batch}), judge score below", True, (40, 40, 40)), (12, 8))
        for i in range(self.batch):
            x, y = 12 + (i % cols) * pitch_x, 30 + (i // cols) * pitch_y
            if i < self.t:
                self._blit_image(surface, self.images[i], x, y, cell)
                s = float(self.scores[i])
                colour = (int(200 * (1 - s)), int(150 * s), 40)
                surface.blit(font.render(f"{s:.2f}", True, colour), (x + 2, y + cell + 2))
                if i == self.t - 1:
                    pygame.draw.rect(surface, (240, 170, 30), (x - 2, y - 2, cell + 4, cell + 4), 2)
            else:
                pygame.draw.rect(surface, (215, 215, 208), (x, y, cell, cell))
        left = 12 + cols * pitch_x + 24
        surface.blit(font.render("real (held-out)", True, (40, 40, 40)), (left, 8))
        for i, image in enumerate(self.data.heldout[: self.REAL_SHOWN]):
            self._blit_image(surface, image, left + (i % real_cols) * pitch_x, 30 + (i // real_cols) * pitch_y, cell)

    @staticmethod
    def _blit_image(surface: Any, image: np.ndarray, x: int, y: int, cell: int) -> None:
        import pygame

        grey = (np.clip(image[0], 0, 1) * 255).astype(np.uint8)  # ink is white on black, as the data
        rgb = np.repeat(grey.T[:, :, None], 3, axis=2)  # pygame surfaces are (width, height)
        surface.blit(pygame.transform.scale(pygame.surfarray.make_surface(rgb), (cell, cell)), (x, y))

    def window_title(self) -> str:
        return f"Arena ImageGeneration: {self.dataset}"


__all__ = ["ImageError", "ImageGenSettings", "ImageGenerationEnv", "check_image", "pairwise_distance"]
