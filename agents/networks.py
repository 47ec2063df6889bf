"""Policy networks: MLP, CNN, plain RNN, LSTM and Transformer bodies behind one interface.

Every network maps observations (and a recurrent state) to an action distribution, a
value estimate and the next state:

    dist, value, state = net.step(obs, state)          # acting: one step, batch B
    logits, values = net.sequence(obs_seq)             # learning: a whole episode, (T, B, ...)

`step` with the state carried between calls and `sequence` on the same observations give
the same outputs: the Transformer's step keeps a cache of past keys and values, so acting
costs one step of attention, not a re-read of the episode. Shapes are noted as
B (batch), T (time), F (features), H (hidden), A (actions).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from arena.errors import AgentError

from agents.neural_settings import BODIES  # (declared beside the settings, which import no torch)


@dataclass
class NetConfig:
    """Everything needed to rebuild a network: stored beside its weights as JSON."""

    body: str = "mlp"
    hidden: int = 64
    layers: int = 2  # MLP layers, LSTM layers or Transformer blocks
    heads: int = 2  # Transformer attention heads
    max_len: int = 512  # Transformer positions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- observations


class ObsEncoder(nn.Module):
    """Observations as float features: one-hot for Discrete and MultiDiscrete, scaled Box.

    Output (B, F) for flat spaces; images (Box with 3 dims, channels first) stay (B, C, H, W).
    """

    def __init__(self, space: spaces.Space) -> None:
        super().__init__()
        self.space = space
        if isinstance(space, spaces.Discrete):
            self.sizes = [int(space.n)]
        elif isinstance(space, spaces.MultiDiscrete):
            self.sizes = [int(n) for n in np.asarray(space.nvec).ravel()]
        elif isinstance(space, spaces.Box):
            self.sizes = []
        else:
            raise AgentError(f"networks read Discrete, MultiDiscrete or Box observations, not {type(space).__name__}")
        self.is_image = isinstance(space, spaces.Box) and len(space.shape) == 3
        if isinstance(space, spaces.Box):
            high = np.asarray(space.high, dtype=np.float64)
            self.scale = 255.0 if space.dtype == np.uint8 else float(np.abs(high[np.isfinite(high)]).max(initial=1.0))
        self.out_dim = sum(self.sizes) if self.sizes else int(np.prod(space.shape or ()))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.sizes:
            obs = obs.long().reshape(obs.shape[0], -1)  # (B, n_parts)
            parts = [nn.functional.one_hot(obs[:, i], n).float() for i, n in enumerate(self.sizes)]
            return torch.cat(parts, dim=-1)  # (B, sum of sizes)
        x = obs.float() / self.scale
        return x if self.is_image else x.reshape(x.shape[0], -1)


# --------------------------------------------------------------------------- bodies


class MLPBody(nn.Module):
    """Memoryless: features of the current observation only."""

    recurrent = False

    def __init__(self, in_dim: int, cfg: NetConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(cfg.layers):
            layers += [nn.Linear(in_dim if i == 0 else cfg.hidden, cfg.hidden), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F) -> (B, H)
        return self.net(x)


class CNNBody(nn.Module):
    """Convolutions over channels-first planes (small grids: 3x3 kernels, no pooling)."""

    recurrent = False

    def __init__(self, in_shape: tuple[int, ...], cfg: NetConfig) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise AgentError(f"the cnn reads images (channels, height, width); this env's observations have shape {in_shape}")
        c, h, w = in_shape
        self.conv = nn.Sequential(
            nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * h * w, cfg.hidden), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, H)
        return self.head(self.conv(x))


class RNNBody(nn.Module):
    """The plain (Elman) recurrent network: h_t = tanh(W_x x_t + W_h h_{t-1} + b). Its
    gradient through time is a product of Jacobians that shrinks with distance (Bengio et
    al. 1994), which the LSTM's gated cell was built to avoid. State: h, (layers, B, H)."""

    recurrent = True

    def __init__(self, in_dim: int, cfg: NetConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, cfg.hidden)
        self.rnn = nn.RNN(cfg.hidden, cfg.hidden, num_layers=cfg.layers, nonlinearity="tanh")
        self.cfg = cfg

    def initial_state(self, batch: int, device: torch.device) -> torch.Tensor:
        return torch.zeros(self.cfg.layers, batch, self.cfg.hidden, device=device)

    def forward(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:  # (T, B, F) -> (T, B, H)
        return self.rnn(torch.tanh(self.embed(x)), state)  # type: ignore[no-any-return]


class LSTMBody(nn.Module):
    """Recurrent memory: the state (h, c), each (layers, B, H), carries the episode so far."""

    recurrent = True

    def __init__(self, in_dim: int, cfg: NetConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, cfg.hidden)
        self.lstm = nn.LSTM(cfg.hidden, cfg.hidden, num_layers=cfg.layers)
        self.cfg = cfg
        H = cfg.hidden
        with torch.no_grad():  # forget gates start open, b_f = 1 (Gers et al. 2000; Jozefowicz et al. 2015):
            for layer in range(cfg.layers):  # memory is kept until learned otherwise, so gradients reach far back
                getattr(self.lstm, f"bias_ih_l{layer}")[H:2 * H] = 1.0
                getattr(self.lstm, f"bias_hh_l{layer}")[H:2 * H] = 0.0

    def initial_state(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(self.cfg.layers, batch, self.cfg.hidden, device=device)
        return zeros, zeros.clone()

    def forward(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:  # (T, B, F) -> (T, B, H)
        out, state = self.lstm(torch.tanh(self.embed(x)), state)
        return out, state


class CausalSelfAttention(nn.Module):
    """Multi-head attention where step t sees steps <= t; past keys/values can be cached."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        if cfg.hidden % cfg.heads:
            raise AgentError(f"hidden={cfg.hidden} must be divisible by heads={cfg.heads}")
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.heads = cfg.heads
        self.record: list[torch.Tensor] | None = None  # agents/inside.py: keep each call's weights here

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, Any]:
        B, T, H = x.shape  # batch, new steps, hidden
        q, k, v = self.qkv(x).split(H, dim=2)
        q, k, v = (z.view(B, T, self.heads, H // self.heads).transpose(1, 2) for z in (q, k, v))  # (B, nh, T, hd)
        if cache is not None:  # prepend the keys and values of earlier steps
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        past = k.shape[2] - T
        # step i of the new ones (absolute position past + i) sees positions <= past + i
        mask = torch.ones(T, k.shape[2], dtype=torch.bool, device=x.device).tril(diagonal=past)
        y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, nh, T, hd)
        if self.record is not None:  # the same weights, written out: softmax(q k^T / sqrt(hd)), masked
            scores = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
            self.record.append(torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).detach())
        y = y.transpose(1, 2).reshape(B, T, H)
        return self.proj(y), (k, v)


class Block(nn.Module):
    """Pre-norm Transformer block: x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.hidden), nn.LayerNorm(cfg.hidden)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.hidden, 4 * cfg.hidden), nn.GELU(), nn.Linear(4 * cfg.hidden, cfg.hidden))

    def forward(self, x: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        a, cache = self.attn(self.ln1(x), cache)
        x = x + a
        return x + self.mlp(self.ln2(x)), cache


class TransformerBody(nn.Module):
    """Causal self-attention over the episode so far, with learned positional embeddings.

    State: (position, [per-block (keys, values)]); keys/values are (B, heads, t, H/heads).
    """

    recurrent = True

    def __init__(self, in_dim: int, cfg: NetConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, cfg.hidden)
        self.pos = nn.Embedding(cfg.max_len, cfg.hidden)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln = nn.LayerNorm(cfg.hidden)
        self.cfg = cfg

    def initial_state(self, batch: int, device: torch.device) -> tuple[int, list[Any]]:
        return 0, [None] * len(self.blocks)

    def forward(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:  # (T, B, F) -> (T, B, H)
        start, caches = state
        T = x.shape[0]
        if start + T > self.cfg.max_len:
            raise AgentError(f"the transformer holds {self.cfg.max_len} positions; this episode is longer (set max_len)")
        positions = torch.arange(start, start + T, device=x.device)
        h = (self.embed(x) + self.pos(positions)[:, None, :]).transpose(0, 1)  # (B, T, H)
        new_caches = []
        for block, cache in zip(self.blocks, caches):
            h, cache = block(h, cache)
            new_caches.append(cache)
        return self.ln(h).transpose(0, 1), (start + T, new_caches)


class TokenTransformer(nn.Module):
    """A causal Transformer over token sequences: tokens (B, T) -> outputs (B, T, out).

    The language models' network (agents/language.py): with `out` = the tokens a writer
    may emit it gives next-token logits (a language model, trained by teacher forcing);
    with `out` = 1, read at a sequence's last token, a reward model's scalar score. The
    body is `TransformerBody`, the one the Transformer policies use; tokens enter as one-hot
    vectors (its input layer is then an embedding table).
    """

    def __init__(self, n_tokens: int, out: int, cfg: NetConfig) -> None:
        super().__init__()
        self.n_tokens, self.cfg = n_tokens, cfg
        self.body = TransformerBody(n_tokens, cfg)
        self.head = nn.Linear(cfg.hidden, out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = nn.functional.one_hot(tokens.long(), self.n_tokens).float().transpose(0, 1)  # (T, B, n_tokens)
        h, _ = self.body(x, self.body.initial_state(tokens.shape[0], tokens.device))  # (T, B, H)
        return self.head(h).transpose(0, 1)  # (B, T, out)


# --------------------------------------------------------------------------- policy


class PolicyNet(nn.Module):
    """A body, a policy head (Categorical or diagonal Gaussian) and a value head."""

    def __init__(self, obs_space: spaces.Space, action_space: spaces.Space, cfg: NetConfig) -> None:
        super().__init__()
        if cfg.body not in BODIES:
            raise AgentError(f"unknown network {cfg.body!r}; use one of {', '.join(BODIES)}")
        self.cfg = cfg
        self.encoder = ObsEncoder(obs_space)
        if cfg.body == "cnn":
            if not self.encoder.is_image:
                raise AgentError(
                    f"the cnn reads image observations (Box of shape channels x height x width); this env gives "
                    f"{type(obs_space).__name__} {getattr(obs_space, 'shape', '')}: for a grid use obs=image"
                )
            self.body: Any = CNNBody(tuple(obs_space.shape or ()), cfg)
        elif self.encoder.is_image:
            raise AgentError(f"the {cfg.body} reads flat observations; for image observations use the cnn")
        else:
            body_cls = {"mlp": MLPBody, "rnn": RNNBody, "lstm": LSTMBody, "transformer": TransformerBody}[cfg.body]
            self.body = body_cls(self.encoder.out_dim, cfg)
        if isinstance(action_space, spaces.Discrete):
            self.n_actions, self.gaussian = int(action_space.n), False
            self.pi = nn.Linear(cfg.hidden, self.n_actions)
        elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
            self.n_actions, self.gaussian = int(action_space.shape[0]), True
            self.pi = nn.Linear(cfg.hidden, self.n_actions)
            self.log_std = nn.Parameter(torch.zeros(self.n_actions))
        else:
            raise AgentError(f"networks emit Discrete or 1-D Box actions, not {type(action_space).__name__}")
        self.v = nn.Linear(cfg.hidden, 1)

    @property
    def recurrent(self) -> bool:
        return bool(getattr(self.body, "recurrent", False))

    def initial_state(self, batch: int) -> Any:
        device = next(self.parameters()).device
        return self.body.initial_state(batch, device) if self.recurrent else None

    def distribution(self, out: torch.Tensor) -> Distribution:
        """pi(.|s) from head outputs: Categorical(logits) or Normal(mean, exp(log_std))."""
        if self.gaussian:
            return Independent(Normal(out, self.log_std.exp().expand_as(out)), 1)
        return Categorical(logits=out)

    def sequence(self, obs: torch.Tensor, mask: torch.Tensor | None = None,
                 probe: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Head outputs (T, B, A) and values (T, B) for whole episodes obs (T, B, ...).

        A memoryless body only computes the steps where `mask` (T, B) is set; the rest
        are zeros (padding after an episode's end). `probe` (recurrent bodies): the body's
        input (T, B, F) is appended to it, in the graph, so a caller can ask how much of a
        gradient reaches each time step.
        """
        T, B = obs.shape[:2]
        flat = obs.reshape(T * B, *obs.shape[2:])
        if self.recurrent:
            x = self.encoder(flat).reshape(T, B, -1)
            if probe is not None:
                x.requires_grad_(True)
                probe.append(x)
            h, _ = self.body(x, self.body.initial_state(B, x.device))  # (T, B, H)
            return self.pi(h), self.v(h).squeeze(-1)
        live = torch.ones(T * B, dtype=torch.bool, device=obs.device) if mask is None else mask.reshape(-1) > 0
        h = self.body(self.encoder(flat[live]))  # (live steps, H)
        out = torch.zeros(T * B, self.n_actions, device=obs.device, dtype=h.dtype)
        values = torch.zeros(T * B, device=obs.device, dtype=h.dtype)
        out[live], values[live] = self.pi(h), self.v(h).squeeze(-1)
        return out.reshape(T, B, -1), values.reshape(T, B)

    def step(self, obs: torch.Tensor, state: Any) -> tuple[Distribution, torch.Tensor, Any]:
        """One step for a batch: obs (B, ...) -> (pi(.|obs), value (B,), next state)."""
        x = self.encoder(obs)
        if self.recurrent:
            h, state = self.body(x[None], state)  # a sequence of length 1
            h = h[0]
        else:
            h = self.body(x)
        return self.distribution(self.pi(h)), self.v(h).squeeze(-1), state


def resolve_device(device: str) -> torch.device:
    """'auto' (CUDA when present), 'cpu' or 'cuda', with a clear error when CUDA is asked for and absent."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise AgentError("--device cuda, but no CUDA GPU is available here; use --device auto or --device cpu")
    if device not in ("cpu", "cuda"):
        raise AgentError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


MEMORY_SHARE = 0.8  # of the device's memory a training run may plan to take
OPTIMISER_COPIES = 4  # float32 weights, their gradients and Adam's two moments


def memory_budget(device: torch.device) -> tuple[float, str]:
    """How many bytes a run may plan on `device`, and how to name that memory."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return props.total_memory * MEMORY_SHARE, f"{props.total_memory / 1e9:.0f} GB on {props.name}"
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return total * MEMORY_SHARE, f"{total / 1e9:.0f} GB of RAM"


def check_memory(name: str, build: Any, activation_bytes: float, device: torch.device, fix: str) -> None:
    """Refuse, before anything is allocated, a network whose weights, gradients, optimiser
    state and one batch's activations would not fit in `MEMORY_SHARE` of the device's
    memory. `build()` makes the modules; here they are made on PyTorch's meta device,
    which counts parameters without storing them."""
    with torch.device("meta"):
        modules = build()
    params = sum(p.numel() for m in modules for p in m.parameters())
    weights = params * 4 * OPTIMISER_COPIES
    need = weights + activation_bytes
    budget, memory = memory_budget(device)
    if need > budget:
        raise AgentError(
            f"{name} would need about {need / 1e9:,.1f} GB ({params / 1e6:,.0f}M parameters with gradients and Adam "
            f"state: {weights / 1e9:,.1f} GB; one batch's activations: {activation_bytes / 1e9:,.1f} GB), more than "
            f"{MEMORY_SHARE:.0%} of this machine's {memory}; {fix}")


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())




def module_digest(module: Any) -> str:
    """SHA-256 over a torch module's weights: names what a network has learned."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- image networks (DCGAN style)


class ConvDecoder(nn.Module):
    """Latent (B, Z) -> image (B, 1, S, S) in [0, 1]: the GAN's generator and the VAE's decoder.

    DCGAN (Radford et al. 2016): a dense layer to (2H, S/4, S/4), then two transposed
    convolutions that each double the side, batch norm (unless `batch_norm` is off) and ReLU
    between, sigmoid out.
    """

    def __init__(self, latent: int, size: int, hidden: int, batch_norm: bool = True) -> None:
        super().__init__()
        self.side, self.hidden = (size + 3) // 4, hidden
        width = 2 * hidden * self.side**2
        self.project = nn.Sequential(nn.Linear(latent, width), nn.BatchNorm1d(width) if batch_norm else nn.Identity(),
                                     nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * hidden, hidden, 4, stride=2, padding=1),
            nn.BatchNorm2d(hidden) if batch_norm else nn.Identity(), nn.ReLU(),  # (B, H, S/2, S/2)
            nn.ConvTranspose2d(hidden, 1, 4, stride=2, padding=1), nn.Sigmoid(),  # (B, 1, S, S)
        )
        self.size = size

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(-1, 2 * self.hidden, self.side, self.side)
        return self.up(x)[..., : self.size, : self.size]


class ConvEncoder(nn.Module):
    """Image (B, C, S, S) -> features (B, F): the GAN's discriminator body and the VAE's encoder.

    Two strided 4x4 convolutions with leaky ReLU (DCGAN's discriminator); `norm` picks batch
    norm (GAN with BCE or least squares), layer norm (WGAN-GP: the gradient penalty is per
    sample, so no batch statistics) or none.
    """

    def __init__(self, channels: int, size: int, hidden: int, norm: str = "batch") -> None:
        super().__init__()
        quarter = (size + 3) // 4
        norms = {"batch": lambda c, s: nn.BatchNorm2d(c), "layer": lambda c, s: nn.LayerNorm([c, s, s]),
                 "none": lambda c, s: nn.Identity()}[norm]
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (B, H, S/2, S/2)
            nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1), norms(2 * hidden, quarter), nn.LeakyReLU(0.2),
            nn.Flatten(),  # (B, 2H * S/4 * S/4)
        )
        self.out_dim = 2 * hidden * quarter * quarter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def class_maps(y: torch.Tensor | None, n_classes: int, size: int) -> Any:
    """One-hot classes (B, K) as constant image channels (B, K, S, S): how a conditional
    network reads the class beside the image (Mirza & Osindero 2014)."""
    if y is None:
        return None
    return y[:, :, None, None].expand(-1, n_classes, size, size)


# --------------------------------------------------------------------------- torch state <-> checkpoint arrays


def torch_arrays(modules: dict[str, nn.Module], optims: dict[str, torch.optim.Optimizer],
                 generator: torch.Generator | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Modules' weights, optimisers' state and a sampler's RNG state as NumPy arrays, plus
    the JSON-able rest (param groups): what agents/checkpoint.py stores. Restore with
    `restore_torch`."""
    arrays: dict[str, np.ndarray] = {}
    state: dict[str, Any] = {"param_groups": {}}
    for name, module in modules.items():
        arrays.update({f"{name}.{k}": v.detach().cpu().numpy() for k, v in module.state_dict().items()})
    for name, optim in optims.items():
        saved = optim.state_dict()
        state["param_groups"][name] = saved["param_groups"]
        for idx, st in saved["state"].items():
            for key, value in st.items():
                if torch.is_tensor(value):
                    arrays[f"optim-{name}.{idx}.{key}"] = value.detach().cpu().numpy()
    if generator is not None:
        arrays["sampler"] = generator.get_state().numpy()
    return arrays, state


def restore_torch(arrays: dict[str, np.ndarray], state: dict[str, Any], modules: dict[str, nn.Module],
                  optims: dict[str, torch.optim.Optimizer], generator: torch.Generator | None, device: torch.device,
                  path: Any) -> None:
    """The inverse of `torch_arrays`; whatever does not fit is a CheckpointError naming `path`."""
    from arena.errors import CheckpointError

    try:
        _restore_torch(arrays, state, modules, optims, generator, device)
    except Exception as exc:  # noqa: BLE001 - whatever torch raises on a forged file, the file is the problem
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} does not fit these networks ({msg}); it is damaged or from another version") from None


def _restore_torch(arrays: dict[str, np.ndarray], state: dict[str, Any], modules: dict[str, nn.Module],
                   optims: dict[str, torch.optim.Optimizer], generator: torch.Generator | None, device: torch.device) -> None:
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: torch.from_numpy(v.copy()) for k, v in arrays.items()
                                if k.startswith(prefix)})
    for name, optim in optims.items():
        optim_state: dict[str, Any] = {"param_groups": state["param_groups"][name], "state": {}}
        prefix = f"optim-{name}."
        for key, value in arrays.items():
            if key.startswith(prefix):
                idx, what = key[len(prefix):].split(".", 1)
                tensor = torch.from_numpy(value.copy())
                optim_state["state"].setdefault(int(idx), {})[what] = tensor.to(device) if tensor.ndim else tensor
        optim.load_state_dict(optim_state)
    if generator is not None:
        generator.set_state(torch.from_numpy(arrays["sampler"].astype(np.uint8)))
