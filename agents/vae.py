"""The variational autoencoder (Kingma & Welling 2014) as an Arena agent, and the plain
autoencoder it becomes with beta = 0.

Encoder q(z | x) = N(mu(x), diag sigma^2(x)), decoder p(x | z) (Bernoulli pixels), prior
p(z) = N(0, I). One unit of the training loop is one batch and one Adam step on

    ELBO(x) = E_q[log p(x | z)] - beta KL(q(z | x) || p(z))
    loss    = reconstruction + beta KL
              reconstruction = BCE(decoder(z), x) summed over pixels, z = mu + sigma eps
              KL = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)

beta = 1 is the VAE; beta = 0 drops the KL term, so nothing pulls q(z | x) towards the
prior: a plain autoencoder, which reconstructs well but whose decoder, fed the env's
z ~ N(0, I), draws from a space it never organised (the lesson the leaderboard shows).
Conditional (`--set conditional=true`): encoder and decoder also read the class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.generator import NeuralGenerator
from agents.networks import ConvDecoder, ConvEncoder, check_memory, class_maps
from arena import settings as typed
from arena.errors import AgentError
from agents.neural_settings import VAESettings


class Encoder(nn.Module):
    """q(z | x, y): image (and class maps) -> (mu, log sigma^2), each (B, latent)."""

    def __init__(self, size: int, hidden: int, latent: int, n_classes: int) -> None:
        super().__init__()
        self.size, self.n_classes = size, n_classes
        self.body = ConvEncoder(1 + n_classes, size, hidden, "batch")
        self.mu = nn.Linear(self.body.out_dim, latent)
        self.log_var = nn.Linear(self.body.out_dim, latent)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.n_classes:
            x = torch.cat([x, class_maps(y, self.n_classes, self.size)], dim=1)
        h = self.body(x)
        return self.mu(h), self.log_var(h).clamp(-12, 12)


class VAEAgent(NeuralGenerator):
    """A VAE (or, with beta = 0, an autoencoder) whose decoder plays the image env."""

    name = "vae"
    Settings = VAESettings
    decoder_name = "decoder"

    def __init__(self, **settings: Any) -> None:
        super().__init__(typed.build(VAESettings, settings, AgentError))

    def build(self, env: gym.Env) -> None:
        s, spec = self.settings, self._spec()
        k = spec.n_classes if s.conditional else 0
        check_memory(self.name, lambda: [Encoder(spec.size, s.hidden, spec.latent, k),
                                         ConvDecoder(spec.latent + k, spec.size, s.hidden)],
                     2 * s.batch_size * 48 * s.hidden * spec.size**2, self.device, "lower batch_size or hidden")
        encoder = Encoder(spec.size, s.hidden, spec.latent, k).to(self.device)
        decoder = ConvDecoder(spec.latent + k, spec.size, s.hidden).to(self.device)
        self.modules = {"encoder": encoder, "decoder": decoder}
        params = list(encoder.parameters()) + list(decoder.parameters())
        self.optims = {"adam": torch.optim.Adam(params, lr=s.lr)}

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction, KL), each averaged over the batch (the module docstring's loss)."""
        mu, log_var = self.modules["encoder"](x, y)
        eps = torch.randn(mu.shape, generator=self.sampler).to(self.device)
        z = mu + (0.5 * log_var).exp() * eps  # the reparameterisation trick
        reconstruction = nn.functional.binary_cross_entropy(self.decode(z, y), x, reduction="sum") / len(x)
        kl = -0.5 * (1 + log_var - mu**2 - log_var.exp()).sum() / len(x)
        return reconstruction, kl

    def update(self, index: int) -> dict[str, float]:
        s = self.settings
        x, y_real = self.real(s.batch_size, index)
        y = y_real if s.conditional else None
        reconstruction, kl = self.elbo_terms(x, y)
        loss = reconstruction + s.beta * kl  # -ELBO
        self.check_finite(reconstruction=reconstruction, kl=kl)
        self.optims["adam"].zero_grad()
        loss.backward()
        self.optims["adam"].step()
        with torch.no_grad():
            z, yz = self.noise(s.batch_size)
            fake = self.decode(z, yz)
        return {"return": self.judge_return(fake), "reconstruction": reconstruction.item(), "kl": kl.item()}

    def finish(self) -> dict[str, Any]:
        """With a run folder, also write runs/<run>/interpolation.png."""
        out = super().finish()
        if self.log.run_dir and self.spec is not None and self.modules:
            out["interpolation"] = str(self.interpolate(self.log.run_dir / "interpolation.png"))
        return out

    def interpolation_rows(self, steps: int = 10, seed: int = 0, pairs: int = 4) -> dict[str, np.ndarray]:
        """Decoded straight lines in z, each (pairs, steps, 1, S, S): `prior` between z0, z1 ~
        N(0, I) (where the env samples, and where the KL term pulls the codes), `encoded`
        between mu(x0) and mu(x1) of two real training images (where the decoder was trained);
        `real`: those images (pairs, 2, 1, S, S)."""
        spec = self._spec()
        rng = np.random.default_rng(seed)
        t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
        classes = np.eye(spec.n_classes, dtype=np.float32)
        prior, encoded = [], []
        for _ in range(pairs):
            z0, z1 = rng.standard_normal((2, spec.latent)).astype(np.float32)
            y = classes[np.full(steps, rng.integers(spec.n_classes))] if self.conditioned else None
            prior.append(self.generate((1 - t) * z0 + t * z1, y))  # z_t = (1 - t) z0 + t z1
        x, y_real = self.real(2 * pairs, 10**6 + seed)  # a draw training never made
        encoder = self.modules["encoder"]
        encoder.eval()
        with torch.no_grad():
            mu, _ = encoder(x, y_real if self.conditioned else None)
        encoder.train()
        mu, labels = mu.cpu().numpy(), y_real.cpu().numpy()
        for k in range(pairs):
            m0, m1 = mu[2 * k], mu[2 * k + 1]
            y = np.repeat(labels[2 * k][None], steps, axis=0) if self.conditioned else None
            encoded.append(self.generate((1 - t) * m0 + t * m1, y))
        return {"prior": np.stack(prior), "encoded": np.stack(encoded),
                "real": x.cpu().numpy().reshape(pairs, 2, *x.shape[1:])}

    def interpolate(self, path: str | Path, steps: int = 10, seed: int = 0) -> Path:
        """The PNG of `interpolation_rows`: two pictures, each captioned with what it shows.
        Between encoded real digits both a VAE and a plain autoencoder decode smoothly; only
        the VAE also makes digits along lines between prior samples, which is what the env asks."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.interpolation_rows(steps, seed)
        beta = self.settings.beta
        what = "plain autoencoder (beta = 0)" if beta == 0 else f"VAE (beta = {beta:g})"
        fig, axes = plt.subplots(2, 1, figsize=(steps * 0.6, 2 * (4 * 0.6 + 0.6)))
        captions = {"prior": "between z0, z1 ~ N(0, I): the prior, where the env samples\n"
                             "(digits only if the KL term organised this space: the VAE's lesson)",
                    "encoded": "between the codes mu(x0), mu(x1) of two real digits: near the data\n"
                               "(smooth for both: an autoencoder's decoder works where it was trained)"}
        for ax, key in zip(axes, ("prior", "encoded")):
            images = rows[key]
            ax.imshow(self.grid(images.reshape(-1, *images.shape[2:]), cols=steps)[0], cmap="gray", vmin=0, vmax=1)
            ax.set_axis_off()
            ax.set_title(captions[key], fontsize=7)
        fig.suptitle(f"{what}: decoding straight lines in z, {steps} steps", fontsize=8)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        return path


__all__ = ["VAEAgent", "VAESettings"]
