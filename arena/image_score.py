"""Scores for image generators that fooling one judge cannot buy.

Every measure is taken in the feature space of the data set's classifier (envs/vision.py,
>= 97% held-out accuracy), not by a discriminator a generator trained against:

- FID: the Fréchet distance between Gaussians fitted to the features of the generated
  images and of the held-out reference set (torchmetrics' FrechetInceptionDistance with
  the classifier as its feature extractor):
      FID = ||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 (S_g S_r)^(1/2))
- normalised score = (FID_noise - FID) / (FID_noise - FID_real): 1 is as close as a
  second held-out real set (FID_real), 0 as far as uniform noise (FID_noise), both
  measured on as many images as the generator is scored on (SCORE_IMAGES).
- Inception Score with the classifier: IS = exp(E_x KL(p(y | x) || p(y))); high when
  each image is clearly one class and the classes are spread (max: the class count).
- coverage: the share of classes the classifier reads among the images; mode collapse:
  mean pairwise distance below COLLAPSE_FRACTION of the real data's (as the env reports).
- judge: the mean realness the env's judge gave (a reward, not a score: it can be fooled).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from envs.data import image_dataset
from envs.imagegen import COLLAPSE_FRACTION, pairwise_distance

SCORE_IMAGES = 300  # images a generator is scored on (and each reference is measured with)
NOISE_SEED = 12345


@dataclass
class ImageScore:
    """One generator's scores on one data set (see the module docstring)."""

    normalised: float
    fid: float
    fid_real: float
    fid_noise: float
    inception_score: float
    coverage: float  # share of classes covered, in [0, 1]
    classes_covered: int
    n_classes: int
    pairwise_distance: float
    mode_collapse: bool
    judge: float | None
    images: int
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ClassifierFeatures:
    """The classifier's penultimate layer as torchmetrics' feature extractor (a torch module)."""

    def __new__(cls, dataset: str, size: int) -> Any:
        import torch

        from envs import vision

        class Features(torch.nn.Module):
            num_features = vision.FEATURES

            def __init__(self) -> None:
                super().__init__()
                self.classifier = vision.classifier(dataset, size)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.classifier.features(x.float())

        return Features()


def fid(images: np.ndarray, dataset: str, size: int) -> float:
    """FID between `images` (N, 1, S, S) in [0, 1] and the held-out reference set."""
    import torch

    metric = _metric(dataset, size)
    metric.reset()  # keeps the reference features (reset_real_features=False)
    with torch.no_grad():
        metric.update(torch.from_numpy(np.array(images, dtype=np.float32)), real=False)
        return float(metric.compute())


@functools.cache
def _metric(dataset: str, size: int) -> Any:
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=ClassifierFeatures(dataset, size), reset_real_features=False,
                                      input_img_size=(1, size, size))
    with torch.no_grad():
        metric.update(torch.from_numpy(np.array(image_dataset(dataset, size).heldout)), real=True)
    return metric


@functools.cache
def references(dataset: str, size: int, n: int) -> tuple[float, float]:
    """(FID_real, FID_noise) measured on `n` images: the second held-out set, and uniform noise."""
    data = image_dataset(dataset, size)
    real = data.heldout_b[np.arange(n) % len(data.heldout_b)]
    noise = np.random.default_rng(NOISE_SEED).uniform(0, 1, (n, *data.shape)).astype(np.float32)
    return fid(real, dataset, size), fid(noise, dataset, size)


def inception_score(probs: np.ndarray) -> float:
    """IS = exp(E_x KL(p(y|x) || p(y))) from class probabilities (N, K)."""
    p = np.clip(probs, 1e-12, 1.0)
    p_y = p.mean(axis=0, keepdims=True)
    return float(np.exp((p * (np.log(p) - np.log(p_y))).sum(axis=1).mean()))


def score_images(images: np.ndarray, dataset: str, size: int, judge: float | None = None) -> ImageScore:
    """Score a generator by its images (N, 1, S, S): the first SCORE_IMAGES of them
    (fewer are scored as they are, with a note: FID is biased upward on small samples)."""
    import torch

    from envs import vision

    images = np.array(images[:SCORE_IMAGES], dtype=np.float32)  # a writable copy, for torch
    n = len(images)
    note = "" if n == SCORE_IMAGES else f"scored on {n} images, fewer than {SCORE_IMAGES}: play more episodes"
    if n < 2:
        raise ValueError("a generator is scored on at least 2 images")
    fid_real, fid_noise = references(dataset, size, n)
    value = fid(images, dataset, size)
    with torch.no_grad():
        probs = torch.softmax(vision.classifier(dataset, size)(torch.from_numpy(images)), dim=1).numpy()
    n_classes = probs.shape[1]
    covered = len(np.unique(probs.argmax(axis=1)))
    spread = pairwise_distance(images)
    real_spread = pairwise_distance(image_dataset(dataset, size).heldout)
    return ImageScore(
        normalised=(fid_noise - value) / (fid_noise - fid_real),
        fid=value, fid_real=fid_real, fid_noise=fid_noise,
        inception_score=inception_score(probs),
        coverage=covered / n_classes, classes_covered=covered, n_classes=n_classes,
        pairwise_distance=spread, mode_collapse=spread < COLLAPSE_FRACTION * real_spread,
        judge=judge, images=n, note=note,
    )


__all__ = ["ImageScore", "SCORE_IMAGES", "fid", "inception_score", "references", "score_images"]
