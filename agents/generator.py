"""What every image generator shares: it reads latent noise (and a class) and answers with an image.

`GeneratorAgent` binds an agent to the image env's shapes (`ImageSpec`: image shape,
latent size, classes, conditional or not), turns an observation into (z, y), and
checks that a saved generator fits the env it is asked to play. The references
(`real-data`, `noise`: agents/baselines.py) subclass it as they are; the neural
generators (`gan`, `vae`, `reinforce-generator`) add `NeuralGenerator`: the one training
loop's plumbing (begin / learn / fit) and the one checkpoint format for torch modules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from agents.training import AgentBase, CountsUpdates, check_finite
from arena import settings as typed
from arena.errors import AgentError, CheckpointError
from envs.abilities import ImageTask


@dataclass(frozen=True)
class ImageSpec:
    """The shapes a generator is built for, read from an image env."""

    dataset: str
    shape: tuple[int, int, int]  # (1, S, S)
    latent: int
    n_classes: int
    conditional: bool  # the env's observations carry the class

    @classmethod
    def of(cls, env: gym.Env) -> "ImageSpec":
        u = env.unwrapped
        if not isinstance(u, ImageTask):
            raise AgentError("generators play the image env (img:digits, img:shapes); this env does not ask for images")
        c, h, w = u.image_shape
        return cls(u.dataset, (int(c), int(h), int(w)), int(u.latent), int(u.n_classes), bool(u.conditional))

    @classmethod
    def from_dict(cls, d: Any, path: Any) -> "ImageSpec":
        try:
            c, h, w = (int(v) for v in d["shape"])
            spec = cls(str(d["dataset"]), (c, h, w), int(d["latent"]), int(d["n_classes"]), bool(d["conditional"]))
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: its image record is damaged; write the checkpoint again") from None
        if len(spec.shape) != 3 or not all(1 <= v <= 4096 for v in spec.shape) or not 1 <= spec.latent <= 1 << 16:
            raise CheckpointError(f"{path}: its image record {spec} is damaged")
        return spec

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def size(self) -> int:
        return self.shape[-1]

    def describe(self) -> str:
        cond = f" + {self.n_classes} classes" if self.conditional else ""
        return f"{self.dataset} {self.size}x{self.size} images from latent {self.latent}{cond}"


@runtime_checkable
class ConditionalSettings(Protocol):
    """Settings that say whether a generator reads the class (GAN, VAE)."""

    conditional: bool


@runtime_checkable
class DecayingSettings(Protocol):
    """Settings with a learning rate that decays to zero over the budget (GAN, VAE)."""

    lr: float
    lr_decay: bool


class GeneratorAgent:
    """The Agent protocol for generators; a subclass implements `generate(z, y)`."""

    name = "generator"
    recurrent = False
    settings: Any = None  # the settings dataclass instance (a subclass sets it; None: no settings)
    fit, config, run_spec = AgentBase.fit, AgentBase.config, AgentBase.run_spec  # shared without another base class

    def __init__(self) -> None:
        self.spec: ImageSpec | None = None
        self.rng = np.random.default_rng(0)
        self.trained_on: dict[str, Any] | None = None

    def bind(self, env: gym.Env) -> ImageSpec:
        """Read the env's shapes (and check a conditional generator meets a conditional env)."""
        self.spec = ImageSpec.of(env)
        if isinstance(self.settings, ConditionalSettings) and self.settings.conditional and not self.spec.conditional:
            raise AgentError(f"{self.name} is conditional and needs the class in each observation; "
                             "make the env with conditional=true (e.g. img:digits conditional=true)")
        return self.spec

    def check_fits(self, env: gym.Env) -> None:
        """A generator plays only the shapes it was built for: image size, latent size, classes."""
        have, want = self._spec(), ImageSpec.of(env)
        if have.shape != want.shape or have.latent != want.latent or (have.conditional and not want.conditional) \
                or (have.conditional and have.n_classes != want.n_classes):
            raise AgentError(f"{self.name} makes {have.describe()}; this env asks for {want.describe()}: "
                             "make the env to match (size=, latent=, conditional=) or train a new one")

    def _spec(self) -> ImageSpec:
        if self.spec is None:
            raise AgentError(f"{self.name} has not been fitted; call fit(env) or load(path, env) first")
        return self.spec

    # ---------------------------------------------------------------- acting

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        return None

    def split(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Observations (B, latent [+ classes]) -> latent z (B, latent) and one-hot class (B, K) or None."""
        spec = self._spec()
        obs = np.asarray(obs, dtype=np.float32)
        width = spec.latent + (spec.n_classes if spec.conditional else 0)
        if obs.ndim != 2 or obs.shape[1] != width:
            raise AgentError(f"{self.name} reads observations of {width} numbers ({spec.describe()}); "
                             f"got shape {obs.shape[1:] if obs.ndim == 2 else obs.shape}")
        return obs[:, : spec.latent], (obs[:, spec.latent:] if spec.conditional else None)

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[np.ndarray, Any]:
        z, y = self.split(np.asarray(obs)[None])
        return self.generate(z, y)[0], None

    def generate(self, z: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        """Images (B, 1, S, S) float32 in [0, 1] for latents z (B, latent) and one-hot classes y."""
        raise NotImplementedError

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """`n` images from latents z ~ N(0, I) (clipped as the env clips them) and uniform classes."""
        spec = self._spec()
        rng = np.random.default_rng(seed)
        z = np.clip(rng.standard_normal((n, spec.latent)), -5, 5).astype(np.float32)
        y = None
        if spec.conditional:
            y = np.eye(spec.n_classes, dtype=np.float32)[rng.integers(spec.n_classes, size=n)]
        return self.generate(z, y)

    def overlay(self) -> dict[str, np.ndarray]:
        return {}

    def digest(self) -> str:
        return ""


class NeuralGenerator(GeneratorAgent):
    """A generator with torch modules that trains through the one loop (agents/training.py).

    A subclass sets `modules` and `optims` (dicts of name -> module / optimiser) in
    `build(env)`, implements `update(index)` (one unit: a batch) and `generate`. This class
    gives it the budget, the device, the sampler RNG, TensorBoard sample grids and the
    checkpoint (weights, optimiser state and RNG state as arrays; settings, image spec,
    env and budget in the JSON header).
    """

    unit = "batch"
    budget_unit = "batch"
    GRID_EVERY = 10  # sample grids logged to TensorBoard over a run

    def __init__(self, settings: Any) -> None:
        super().__init__()
        import torch

        from agents.networks import resolve_device
        from agents.training import TrainingLog

        self.settings = settings
        self.device = resolve_device(settings.device)
        self.modules: dict[str, Any] = {}
        self.optims: dict[str, Any] = {}
        self.sampler = torch.Generator()
        self.seed = 0
        self.budget: Any = None
        self.trained_on = None
        self.log = TrainingLog(unit=self.unit)
        self.env: gym.Env | None = None

    # ---------------------------------------------------------------- the loop's side

    def build(self, env: gym.Env) -> None:
        raise NotImplementedError

    def update(self, index: int) -> dict[str, float]:
        raise NotImplementedError

    def begin(self, env: gym.Env, seed: int) -> None:
        import torch

        torch.manual_seed(seed)
        self.bind(env)
        self.build(env)
        self.sampler.manual_seed(seed)
        self.seed = seed

    def base_lr(self, optimizer: str) -> float:
        """The learning rate the optimizer named so starts from (before lr_decay)."""
        return float(self.settings.lr)

    def learn(self, env: gym.Env, index: int, progress: float) -> dict[str, Any]:
        """One batch; "return" is what an episode of this batch's images would earn from the env's judge."""
        self.env = env
        if isinstance(self.settings, DecayingSettings) and self.settings.lr_decay:
            # lr_t = lr (1 - t/T): small last steps settle the game
            for name, optim in self.optims.items():
                for group in optim.param_groups:
                    group["lr"] = self.base_lr(name) * (1.0 - progress)
        scalars = self.update(index)
        total = self.budget.total if self.budget else 1
        if self.log.writing and (index % max(1, total // self.GRID_EVERY) == 0 or index + 1 == total):
            self.log.image("samples", self.grid(self.sample(64, seed=0)), index + 1)
        return scalars

    def task(self) -> ImageTask:
        """The image task of the env being trained on (its data and judge)."""
        u = self.env.unwrapped if self.env is not None else None
        if not isinstance(u, ImageTask):
            raise AgentError(f"{self.name} trains on the image env (img:digits); fit it there first")
        return u

    def judge_return(self, fakes: Any, n: int = 16) -> float:
        """The env judge's mean realness of (the first `n` of) a batch of fakes, times the env's
        batch: what an episode of such images would earn. A progress figure, kept cheap."""
        task = self.task()
        scores = task.score(fakes[:n].detach().cpu().numpy())
        return float(scores.mean() * task.batch)

    def real(self, n: int, index: int, k: int = 0) -> tuple[Any, Any]:
        """Real training images (n, 1, S, S) and one-hot labels (n, K) for unit `index` (draw k)."""
        import torch

        from agents.training import episode_seed

        images, labels = self.task().real_batch(n, episode_seed(self.seed, index * 16 + k), labels=True)
        x = torch.from_numpy(images).to(self.device)
        y = torch.nn.functional.one_hot(torch.from_numpy(labels), self._spec().n_classes).float().to(self.device)
        return x, y

    def noise(self, n: int, y: Any = None) -> tuple[Any, Any]:
        """Latents z ~ N(0, I) (n, latent), and classes: those given, or uniform one-hots when conditional."""
        import torch

        spec = self._spec()
        z = torch.randn(n, spec.latent, generator=self.sampler).clamp(-5, 5).to(self.device)
        if y is None and self.conditioned:
            y = torch.nn.functional.one_hot(torch.randint(spec.n_classes, (n,), generator=self.sampler),
                                            spec.n_classes).float().to(self.device)
        return z, y

    check_finite = staticmethod(check_finite)
    default_budget, units_for, trained = CountsUpdates.default_budget, CountsUpdates.units_for, CountsUpdates.trained
    finish = CountsUpdates.finish

    # ---------------------------------------------------------------- acting

    def generate(self, z: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        import torch

        decoder = self.modules[self.decoder_name]
        decoder.eval()
        with torch.no_grad():
            zt = torch.from_numpy(np.ascontiguousarray(z)).to(self.device)
            yt = None if y is None or not self.conditioned else torch.from_numpy(np.ascontiguousarray(y)).to(self.device)
            x = self.decode(zt, yt)
        decoder.train()
        return x.clamp(0, 1).cpu().numpy().astype(np.float32)

    decoder_name = "generator"

    @property
    def conditioned(self) -> bool:
        """Whether the generator reads the class: its `conditional` setting, or (black-box
        policies, which read the whole observation) whether the env gives one (False before
        it has met an env). Never raises: ability checks (`isinstance(x, Discriminator)`)
        read it on unfitted agents."""
        if isinstance(self.settings, ConditionalSettings):
            return bool(self.settings.conditional)
        return bool(self.spec is not None and self.spec.conditional)

    def decode(self, z: Any, y: Any) -> Any:
        """Images from latents (and classes): the module named `decoder_name`, conditioned when asked."""
        import torch

        return self.modules[self.decoder_name](z if y is None else torch.cat([z, y], dim=1))

    def grid(self, images: np.ndarray, cols: int = 8) -> np.ndarray:
        """Images (B, 1, S, S) as one (1, rows*S, cols*S) grid (TensorBoard, videos)."""
        n, _, S, _ = images.shape
        rows = -(-n // cols)
        canvas = np.zeros((1, rows * (S + 1) + 1, cols * (S + 1) + 1), dtype=np.float32)
        for i, img in enumerate(images):
            r, c = divmod(i, cols)
            canvas[:, 1 + r * (S + 1): 1 + r * (S + 1) + S, 1 + c * (S + 1): 1 + c * (S + 1) + S] = img
        return canvas

    def digest(self) -> str:
        from agents.networks import module_digest

        return "".join(module_digest(m)[:16] for _, m in sorted(self.modules.items()))

    # ---------------------------------------------------------------- the one checkpoint format

    def save(self, path: str | Path) -> Path:
        from agents.checkpoint import save_checkpoint
        from agents.networks import torch_arrays

        spec = self._spec()
        arrays, state = torch_arrays(self.modules, self.optims, self.sampler)
        state["image"] = spec.as_dict()
        arrays.update(self.log.arrays())
        return save_checkpoint(path, self.name, typed.as_dict(self.settings), arrays, env=self.trained_on,
                               budget=self.budget.as_dict() if self.budget else None, seed=self.seed, state=state)

    def load(self, path: str | Path, env: gym.Env | None = None) -> "NeuralGenerator":
        """Restore a checkpoint of this generator; its settings come from the file, the device stays."""
        from agents.checkpoint import load_checkpoint, load_settings
        from agents.networks import restore_torch
        from agents.training import restore_progress

        arrays, meta = load_checkpoint(path, self.name)
        saved = load_settings(type(self.settings), meta, path, self.name)
        self.settings = typed.build(type(self.settings), {**typed.as_dict(saved), "device": self.settings.device},
                                    CheckpointError)
        if env is None:
            raise AgentError(f"{self.name}.load needs the env to rebuild its networks: load(path, env=env)")
        state = meta["state"] if isinstance(meta.get("state"), dict) else {}
        self.spec = ImageSpec.from_dict(state.get("image"), path)
        self.check_fits(env)
        self.build(env)
        restore_torch(arrays, state, self.modules, self.optims, self.sampler, self.device, path)
        restore_progress(self, arrays, meta, path)
        return self


__all__ = ["GeneratorAgent", "ImageSpec", "NeuralGenerator"]
