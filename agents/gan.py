"""Generative adversarial networks (Goodfellow et al. 2014) as an Arena agent: DCGAN-style
convolutional generator G and discriminator D (Radford et al. 2016), three losses, and
an optional class condition (Mirza & Osindero 2014).

The game, one unit of the training loop (a batch):
  1. D step(s) on real images x (the env's `real_batch`) against fakes G(z), z ~ N(0, I);
  2. one G step on the last D step's fakes (as pytorch/examples' DCGAN: G is run once per
     batch), scored by the D that step just updated.

Losses (`--set loss=...`), D's objective first, then G's:
- bce (the minimax game; G uses the non-saturating form):
      max_D  E[log D(x)] + E[log(1 - D(G(z)))]
      max_G  E[log D(G(z))]
- lsgan (least squares, Mao et al. 2017):
      min_D  1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]
      min_G  1/2 E[(D(G(z)) - 1)^2]
- wgan-gp (Wasserstein with gradient penalty, Gulrajani et al. 2017), D is a critic:
      min_D  E[D(G(z))] - E[D(x)] + lambda E[(||grad D(x_hat)|| - 1)^2],  x_hat between x and G(z)
      min_G  -E[D(G(z))]

Images play the env through the generator alone: act(obs) = G(z, y); with `ema` > 0,
through an exponential moving average of G's weights instead (Yazici et al. 2019; on
2-minute digit runs here it did not help: 0.938 against 0.944 normalised, so it is off).
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from agents.generator import NeuralGenerator
from agents.networks import ConvDecoder, ConvEncoder, check_memory, class_maps
from arena import settings as typed
from arena.errors import AgentError
from agents.neural_settings import LOSSES, GANSettings

class Discriminator(nn.Module):
    """D(x, y): image (and class maps) -> one number per image (a logit, or a critic's score)."""

    def __init__(self, size: int, hidden: int, n_classes: int, norm: str) -> None:
        super().__init__()
        self.size, self.n_classes = size, n_classes
        self.body = ConvEncoder(1 + n_classes, size, hidden, norm)
        self.head = nn.Linear(self.body.out_dim, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes:
            x = torch.cat([x, class_maps(y, self.n_classes, self.size)], dim=1)
        return self.head(self.body(x)).squeeze(-1)  # (B,)


class GANAgent(NeuralGenerator):
    """A GAN whose (averaged) generator plays the image env; `GANSettings` are its settings."""

    name = "gan"
    Settings = GANSettings

    @property
    def decoder_name(self) -> str:  # type: ignore[override]
        return "generator_avg" if self.settings.ema > 0 else "generator"

    def __init__(self, **settings: Any) -> None:
        super().__init__(typed.build(GANSettings, settings, AgentError))

    def build(self, env: gym.Env) -> None:
        s, spec = self.settings, self._spec()
        k = spec.n_classes if s.conditional else 0
        # per image: about 12 floats per pixel per first-layer channel through G and D, forward and back
        norm = "layer" if s.loss == "wgan-gp" else "batch" if s.batch_norm else "none"  # WGAN-GP: per-sample penalty
        check_memory(self.name, lambda: [ConvDecoder(spec.latent + k, spec.size, s.hidden, s.batch_norm),
                                         Discriminator(spec.size, s.hidden, k, norm)],
                     3 * s.batch_size * 48 * s.hidden * spec.size**2, self.device, "lower batch_size or hidden")
        G = ConvDecoder(spec.latent + k, spec.size, s.hidden, s.batch_norm).to(self.device)
        D = Discriminator(spec.size, s.hidden, k, norm).to(self.device)
        betas = (s.beta1, 0.9 if s.loss == "wgan-gp" else 0.999)
        G_avg = copy.deepcopy(G)
        for p in G_avg.parameters():
            p.requires_grad_(False)
        self.modules = {"generator": G, "discriminator": D, "generator_avg": G_avg}
        self.optims = {"generator": torch.optim.Adam(G.parameters(), lr=s.lr, betas=betas),
                       "discriminator": torch.optim.Adam(D.parameters(), lr=self.base_lr("discriminator"), betas=betas)}

    def base_lr(self, optimizer: str) -> float:
        s = self.settings
        return float(s.d_lr or s.lr) if optimizer == "discriminator" else float(s.lr)

    # ---------------------------------------------------------------- the losses

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """D's loss on real images and (detached) fakes: the module docstring's objectives, minimised."""
        D, loss = self.modules["discriminator"], self.settings.loss
        d_real, d_fake = D(real, y), D(fake, y)
        if loss == "bce":  # -(log D(x) + log(1 - D(G(z))))
            bce = nn.functional.binary_cross_entropy_with_logits
            return bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        if loss == "lsgan":  # 1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2
            return 0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake**2).mean()
        # wgan-gp: D(G(z)) - D(x) + lambda (||grad D(x_hat)|| - 1)^2
        return d_fake.mean() - d_real.mean() + self.settings.gp * self.gradient_penalty(real, fake, y)

    def g_loss(self, fake: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """G's loss on fakes it made (gradients flow through D into G)."""
        d_fake, loss = self.modules["discriminator"](fake, y), self.settings.loss
        if loss == "bce":  # -log D(G(z)), the non-saturating form
            return nn.functional.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        if loss == "lsgan":  # 1/2 (D(G(z)) - 1)^2
            return 0.5 * ((d_fake - 1) ** 2).mean()
        return -d_fake.mean()  # wgan-gp: -D(G(z))

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """E[(||grad_x D(x_hat)|| - 1)^2] at x_hat = eps x + (1 - eps) G(z), eps ~ U(0, 1) per image."""
        eps = torch.rand(real.shape[0], 1, 1, 1, generator=self.sampler).to(self.device)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        grad, = torch.autograd.grad(self.modules["discriminator"](x_hat, y).sum(), x_hat, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    # ---------------------------------------------------------------- one unit of training

    def update(self, index: int) -> dict[str, float]:
        s = self.settings
        G, optim_G, optim_D = self.modules["generator"], self.optims["generator"], self.optims["discriminator"]
        for k in range(s.n_critic):
            real, y_real = self.real(s.batch_size, index, k)
            y = y_real if s.conditional else None
            z, _ = self.noise(s.batch_size)
            if k < s.n_critic - 1:
                with torch.no_grad():
                    fake = self.train_decode(z, y)
            else:  # the last critic step's fakes are the generator step's too: one pass of G fewer per batch
                fake = self.train_decode(z, y)
            d_loss = self.d_loss(real, fake.detach(), y)
            self.check_finite(d_loss=d_loss)
            optim_D.zero_grad()
            d_loss.backward()
            optim_D.step()
        g_loss = self.g_loss(fake, y)  # against the D just updated
        self.check_finite(g_loss=g_loss)
        optim_G.zero_grad()
        g_loss.backward()
        optim_G.step()
        if s.ema > 0:
            self.average()
        return {"return": self.judge_return(fake), "d_loss": d_loss.item(), "g_loss": g_loss.item()}

    def discriminate(self, images: Any, labels: Any = None) -> Any:
        """The trained D as a judge of any images (N, 1, S, S): one number per image, higher
        is more real (a logit, or the critic's value). A conditional D reads `labels` (N,)
        class indices. Evaluation mode: batch-norm uses its running statistics."""
        import numpy as np

        D, spec = self.modules["discriminator"], self._spec()
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device)
        y = None
        if self.settings.conditional:
            if labels is None:
                raise AgentError("a conditional discriminator judges an image of a class: pass labels")
            y = nn.functional.one_hot(torch.as_tensor(np.asarray(labels), dtype=torch.int64),
                                      spec.n_classes).float().to(self.device)
        D.eval()
        try:
            with torch.no_grad():
                return D(x, y).double().cpu().numpy()
        finally:
            D.train()

    def train_decode(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """G(z, y) with the weights being trained (decode() uses the averaged ones)."""
        G = self.modules["generator"]
        return G(z if y is None else torch.cat([z, y], dim=1))

    def average(self) -> None:
        """G_avg <- ema G_avg + (1 - ema) G, weights and batch-norm statistics alike."""
        ema = self.settings.ema
        with torch.no_grad():
            avg, live = self.modules["generator_avg"].state_dict(), self.modules["generator"].state_dict()
            for name, value in live.items():
                if value.dtype.is_floating_point:
                    avg[name].mul_(ema).add_(value, alpha=1 - ema)
                else:
                    avg[name].copy_(value)


__all__ = ["GANAgent", "GANSettings", "LOSSES"]
