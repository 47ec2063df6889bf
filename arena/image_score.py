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

Who fools whom (`cross_judge`): every generator's images are shown to every judge (the
env's, and each trained GAN's own discriminator). A judge's fooling rate is the chance it
scores a random generated image above a random held-out real one (0.5: it cannot tell
them apart; 0: it always can), and Bradley-Terry ratings of generators and judges on one
scale summarise the table.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

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


__all__ = ["CrossJudgement", "ImageScore", "SCORE_IMAGES", "cross_judge", "fid", "fooling_rate", "inception_score",
           "references", "score_images"]


# --------------------------------------------------------------------------- who fools whom


def fooling_rate(fake_scores: np.ndarray, real_scores: np.ndarray) -> float:
    """P(a judge scores a random fake above a random real image), ties counting half: the
    Mann-Whitney U of the fakes over n_fake n_real. Any judge whose higher number means
    "more real" can be read this way (a probability, a logit, a critic's value)."""
    from scipy.stats import mannwhitneyu

    fake, real = np.asarray(fake_scores, dtype=float), np.asarray(real_scores, dtype=float)
    if not (np.all(np.isfinite(fake)) and np.all(np.isfinite(real))):
        raise ValueError("a judge gave a non-finite score")
    return float(mannwhitneyu(fake, real).statistic / (len(fake) * len(real)))


@dataclass
class CrossJudgement:
    """Every generator judged by every judge: `fooled[g, j]` is judge j's fooling rate on
    generator g; `ratings` (filled by the caller: arena.statistics.bradley_terry over
    `games()`) are Bradley-Terry ratings (Elo scale) of both on one scale."""

    generators: list[str]
    judges: list[str]
    fooled: np.ndarray  # (generators, judges)
    images: int  # generated images per generator (and real images) each judge compared
    ratings: dict[str, float] = field(default_factory=dict)

    def games(self) -> list[tuple[str, str, float, float]]:
        """Each (generator, judge) pair as Bradley-Terry games: the generator "wins" a
        comparison when the judge prefers its image to a real one, out of `images`."""
        n = float(self.images)
        return [(f"G {gen}", f"D {jud}", self.fooled[g, j] * n, n)
                for g, gen in enumerate(self.generators) for j, jud in enumerate(self.judges)]

    def as_dict(self) -> dict[str, Any]:
        return {"generators": self.generators, "judges": self.judges, "fooled": self.fooled.tolist(),
                "images": self.images, "ratings": self.ratings}


def cross_judge(generators: dict[str, np.ndarray], judges: dict[str, Callable[[np.ndarray], np.ndarray]],
                real: np.ndarray) -> CrossJudgement:
    """Show each generator's images (N, 1, S, S) and the `real` images to each judge (a
    function: images -> scores, higher = more real) and tabulate the fooling rates."""
    if not generators or not judges:
        raise ValueError("cross-judging needs at least one generator and one judge")
    n = min(SCORE_IMAGES, len(real), *(len(x) for x in generators.values()))
    real = np.array(real[:n], dtype=np.float32)
    fooled = np.zeros((len(generators), len(judges)))
    for j, judge in enumerate(judges.values()):
        real_scores = judge(real)
        for g, images in enumerate(generators.values()):
            fooled[g, j] = fooling_rate(judge(np.array(images[:n], dtype=np.float32)), real_scores)
    return CrossJudgement(list(generators), list(judges), fooled, n)
