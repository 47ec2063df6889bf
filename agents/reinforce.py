"""REINFORCE with a learned baseline (Williams 1992; Sutton & Barto 13.4), any network, CPU or GPU.

One update:
  1. roll out a batch of B whole episodes on a batched env (one per copy), sampling
     A_t ~ pi(.|history) from the network;
  2. G_t = sum_k gamma^k R_{t+k+1}                      (reward-to-go, per episode)
  3. loss = -mean[ log pi(A_t|.) (G_t - v(S_t)) ]      (policy gradient with baseline)
           + c_v mean[ (G_t - v(S_t))^2 ]             (the baseline learns E[G_t])
           - c_H mean[ H(pi(.|S_t)) ]                  (entropy bonus keeps exploring)
  4. clip the gradient norm, Adam step.

Steps after an episode ends (a copy's autoreset, or its next episode) are masked out, so
no transition across an episode boundary reaches the loss. A non-finite loss or gradient
is caught before the optimiser step, so the one training loop (agents/training.py) can
save the last good state and name the agent, the component and the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.distributions import Normal

from agents.checkpoint import load_checkpoint, load_settings, save_checkpoint, started_from
from agents.generator import NeuralGenerator
from agents.networks import (BODIES, NetConfig, PolicyNet, check_memory, module_digest, resolve_device, restore_torch,
                             torch_arrays)
from envs.abilities import EpisodeLimit
from agents.training import AgentBase, Budget, NonFinite, TrainingLog, episode_seed, restore_progress
from arena import settings as typed
from arena.errors import AgentError, CheckpointError, TrainingError
from agents.neural_settings import ReinforceGeneratorSettings, ReinforceSettings

__all__ = ["Batch", "ReinforceAgent", "ReinforceGenerator", "ReinforceGeneratorSettings", "ReinforceSettings",
           "TrainingError", "reward_to_go"]


@dataclass
class Batch:
    """B episodes, padded to T steps: obs (T, B, ...), actions (T, B), rewards (T, B), mask (T, B)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor
    returns: np.ndarray  # (B,) each episode's return
    accuracy: np.ndarray | None  # (B,) for sequence tasks


def reward_to_go(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = R_{t+1} + gamma G_{t+1}, computed backwards over (T, B), zero past an episode's end."""
    G = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = (rewards[t] + gamma * running) * mask[t]
        G[t] = running
    return G


class ReinforceAgent(AgentBase):
    """REINFORCE on a batched copy of the env; its settings are `ReinforceSettings`.

    One unit of the training loop is one batch of `num_envs` episodes and one update; a
    budget counts episodes (rounded up to whole batches).
    """

    unit = "batch"
    budget_unit = "episode"
    Settings = ReinforceSettings

    def __init__(self, **settings: Any) -> None:
        self.settings: ReinforceSettings = typed.build(ReinforceSettings, settings, AgentError)
        s = self.settings
        self.net_cfg = NetConfig(body=s.network, hidden=s.hidden, layers=s.layers, heads=s.heads)
        self.device = resolve_device(s.device)
        self.name = f"reinforce-{s.network}"
        self.net: Any = None  # PolicyNet once built
        self.optim: Any = None  # torch.optim.Adam once built
        self.seed = 0
        self.budget: Budget | None = None
        self.started_from: dict[str, str] | None = None  # the checkpoint this run began from (fit(init=...))
        self.trained_on: dict[str, Any] | None = None
        self.log = TrainingLog(unit=self.unit)
        self.sampler = torch.Generator()
        self.spaces = ("", "")
        self.venv: gym.vector.VectorEnv | None = None
        self.max_steps = 1000

    @property
    def recurrent(self) -> bool:  # type: ignore[override]
        return self.net_cfg.body in ("rnn", "lstm", "transformer")

    @property
    def updates_done(self) -> int:
        return self.budget.done if self.budget else 0

    # ---------------------------------------------------------------- building

    def build(self, env: gym.Env) -> None:
        """The network and optimiser for this env's spaces (the network checks they fit), once
        an estimate says they and a batch of episodes fit in memory."""
        s, cfg = self.settings, self.net_cfg
        u = env.unwrapped
        T = min(u.max_steps, cfg.max_len) if isinstance(u, EpisodeLimit) else cfg.max_len  # steps kept for backprop
        per_step = s.num_envs * cfg.hidden * cfg.layers * 4 * (16 if cfg.body == "lstm" else 12)  # (rnn: fewer; an upper bound)
        if cfg.body == "transformer":
            per_step += s.num_envs * cfg.heads * T * cfg.layers * 4 * 2  # one row of attention weights per step
        check_memory(self.name, lambda: [PolicyNet(env.observation_space, env.action_space, cfg)], per_step * T,
                     self.device, "lower hidden, layers or num_envs (--set hidden=...)")
        self.net = PolicyNet(env.observation_space, env.action_space, self.net_cfg).to(self.device)
        self.optim = torch.optim.Adam(self.net.parameters(), lr=self.settings.lr)
        self.spaces = (repr(env.observation_space), repr(env.action_space))

    def batched(self, env: gym.Env) -> Any:
        """A batched copy of `env` (native where the env has one, else Gymnasium's SyncVectorEnv)."""
        import gymnasium as gym

        spec = env.spec
        if spec is None:
            raise AgentError(f"{self.name} trains on a batched copy of the env; make the env with gymnasium.make(id)")
        kwargs = {k: v for k, v in spec.kwargs.items() if k != "render_mode"}
        mode = "vector_entry_point" if spec.vector_entry_point else "sync"
        return gym.make_vec(spec.id, num_envs=self.settings.num_envs, vectorization_mode=mode, **kwargs)

    # ---------------------------------------------------------------- acting

    def reset(self, seed: int | None = None) -> Any:
        if seed is not None:
            self.sampler.manual_seed(int(seed))
        return self._net().initial_state(1)

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[Any, Any]:
        net = self._net()
        if state is None and net.recurrent:
            state = net.initial_state(1)
        x = torch.as_tensor(np.asarray(obs)[None], device=self.device)
        with torch.no_grad():
            dist, _, state = net.step(x, state)
            action = self._choose(dist, greedy)
        a = action[0].cpu().numpy()
        return (int(a) if a.ndim == 0 else a), state

    def _choose(self, dist: Any, greedy: bool) -> torch.Tensor:
        if greedy:
            return dist.mean if self._net().gaussian else dist.probs.argmax(dim=-1)
        if self._net().gaussian:
            mean, std = dist.base_dist.loc, dist.base_dist.scale
            noise = torch.randn(mean.shape, generator=self.sampler).to(mean.device)
            return mean + std * noise
        u = torch.rand(dist.probs.shape[0], 1, generator=self.sampler).to(dist.probs.device)
        return (dist.probs.cumsum(dim=-1) < u).sum(dim=-1).clamp(max=dist.probs.shape[-1] - 1)  # inverse CDF

    def overlay(self) -> dict[str, np.ndarray]:
        return {}

    def digest(self) -> str:
        return module_digest(self.net) if self.net is not None else ""

    def _net(self) -> PolicyNet:
        if self.net is None:
            raise AgentError(f"{self.name} has not been fitted; call fit(env) or load(path) first")
        return self.net

    # ---------------------------------------------------------------- learning

    def rollout(self, venv: gym.vector.VectorEnv, seed: int) -> Batch:
        """One episode per copy, from venv.reset(seed=seed); steps after an episode's end are masked."""
        net = self._net()
        obs, _ = venv.reset(seed=seed)
        state = net.initial_state(self.settings.num_envs)
        alive = np.ones(self.settings.num_envs, dtype=bool)
        obs_list, act_list, rew_list, mask_list = [], [], [], []
        returns = np.zeros(self.settings.num_envs)
        accuracy = np.full(self.settings.num_envs, np.nan)
        for _ in range(self.max_steps):
            x = torch.as_tensor(obs, device=self.device)
            with torch.no_grad():
                dist, _, state = net.step(x, state)
                action = self._choose(dist, greedy=False)
            a = action.cpu().numpy()
            next_obs, r, term, trunc, info = venv.step(a)
            obs_list.append(x)
            act_list.append(action)
            rew_list.append(np.where(alive, r, 0.0))
            mask_list.append(alive.copy())
            returns += np.where(alive, r, 0.0)
            ended = alive & (term | trunc)
            if "accuracy" in info:
                accuracy = np.where(ended & info["_accuracy"], info["accuracy"], accuracy)
            alive &= ~(term | trunc)
            obs = next_obs
            if not alive.any():
                break
        return Batch(
            obs=torch.stack(obs_list),
            actions=torch.stack(act_list),
            rewards=torch.as_tensor(np.array(rew_list), dtype=torch.float32, device=self.device),
            mask=torch.as_tensor(np.array(mask_list), dtype=torch.float32, device=self.device),
            returns=returns,
            accuracy=None if np.isnan(accuracy).all() else accuracy,
        )

    def update(self, batch: Batch) -> dict[str, float]:
        """One REINFORCE-with-baseline step on a batch of episodes (the module docstring's loss)."""
        net, mask = self._net(), batch.mask
        n = mask.sum().clamp(min=1.0)
        probe: list[torch.Tensor] | None = [] if self.settings.log_grad_norm and net.recurrent else None
        out, values = net.sequence(batch.obs, mask, probe)  # (T, B, A), (T, B)
        dist = net.distribution(out)
        log_prob = dist.log_prob(batch.actions)  # (T, B)
        G = reward_to_go(batch.rewards, mask, self.settings.gamma)
        advantage = (G - values).detach()
        if self.settings.normalize:  # A <- (A - mean) / std over the batch's live steps: a scale-free step size
            mean = (advantage * mask).sum() / n
            std = (((advantage - mean) ** 2 * mask).sum() / n).sqrt()
            advantage = (advantage - mean) / (std + 1e-8)
        policy_loss = -(log_prob * advantage * mask).sum() / n
        value_loss = ((G - values) ** 2 * mask).sum() / n
        entropy = (dist.entropy() * mask).sum() / n
        loss = policy_loss + self.settings.value_coef * value_loss - self.settings.entropy * entropy
        for component, value in (("policy loss", policy_loss), ("value loss", value_loss), ("entropy", entropy)):
            if not torch.isfinite(value):
                raise NonFinite(component, value.item())  # before any parameter changes
        flow: dict[str, float] = {}
        if probe:  # ||d log pi(A_last) / dx_t||: how much the episode's last decision depends on the input at step t
            last = (mask.sum(dim=0) - 1).clamp(min=0).long()
            (g,) = torch.autograd.grad(log_prob[last, torch.arange(mask.shape[1])].sum(), probe[0], retain_graph=True)
            norms = g.norm(dim=-1).mean(dim=1)
            flow = {f"grad_norm_t{t:03d}": float(v) for t, v in enumerate(norms.tolist())}
        self.optim.zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), self.settings.max_grad_norm)
        if not torch.isfinite(grad_norm):
            self.optim.zero_grad()
            raise NonFinite("gradient norm", grad_norm.item())
        self.optim.step()
        stats = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": entropy.item()}
        stats.update(flow)
        return stats

    def begin(self, env: gym.Env, seed: int) -> None:
        torch.manual_seed(seed)
        self.build(env)
        self.sampler.manual_seed(seed)
        self.seed = seed

    def default_budget(self) -> int:
        return int(self.settings.episodes)

    def units_for(self, budget: int) -> int:
        return -(-int(budget) // self.settings.num_envs)  # whole batches

    def trained(self) -> int:
        return self.updates_done * self.settings.num_envs

    def learn(self, env: gym.Env, index: int, progress: float) -> dict[str, Any]:
        """One batch of episodes (seeded by the batch's index) and one update."""
        if self.venv is None:  # the batched copies, made on the first unit (fresh or resumed)
            spec_steps = env.spec.max_episode_steps if env.spec else 0
            self.max_steps = int(getattr(env.unwrapped, "max_steps", 0) or spec_steps or 1000)
            self.venv = self.batched(env)
        batch = self.rollout(self.venv, episode_seed(self.seed, index))
        stats = self.update(batch)
        mean_return = float(batch.returns.mean())
        out: dict[str, Any] = {"return": mean_return, **stats, "env_steps": float(batch.mask.sum())}
        if batch.accuracy is not None:
            out["accuracy"] = float(np.nanmean(batch.accuracy))
        target = self.settings.target
        out["stop"] = target is not None and mean_return >= target
        return out

    def finish(self) -> dict[str, Any]:
        if self.venv is not None:
            self.venv.close()
            self.venv = None
        out: dict[str, Any] = {"updates": self.updates_done, "env_steps": int(self.log.totals.get("env_steps", 0)),
                               "device": str(self.device)}
        target = self.settings.target
        if target is not None and self.log.returns and self.log.returns[-1] >= target:
            out["reached_target"] = target
        if self.settings.log_grad_norm and self.log.run_dir is not None and any(
                k.startswith("grad_norm_t") for k in self.log.values):
            out["gradient_flow"] = str(gradient_flow_plot(self.log, self.log.run_dir / "gradient_flow.png", self.name))
        return out

    # ---------------------------------------------------------------- the one checkpoint format

    def save(self, path: str | Path) -> Path:
        """Weights, optimiser and sampler state as arrays; settings, env and budget in the header."""
        arrays, state = torch_arrays({"model": self._net()}, {"adam": self.optim}, self.sampler)
        state["spaces"] = list(self.spaces)
        if self.started_from:
            state["started_from"] = self.started_from
        arrays.update(self.log.arrays())
        return save_checkpoint(path, self.name, typed.as_dict(self.settings), arrays, env=self.trained_on,
                               budget=self.budget.as_dict() if self.budget else None, seed=self.seed, state=state)

    def load(self, path: str | Path, env: gym.Env | None = None) -> "ReinforceAgent":
        """Restore a checkpoint of this agent; its settings (sizes, lr, ...) come from the file."""
        arrays, meta = load_checkpoint(path, self.name)
        saved = load_settings(ReinforceSettings, meta, path, self.name)
        device = self.settings.device
        self.settings = typed.build(ReinforceSettings, {**typed.as_dict(saved), "device": device}, CheckpointError)
        s = self.settings
        self.net_cfg = NetConfig(body=s.network, hidden=s.hidden, layers=s.layers, heads=s.heads)
        if env is None:
            raise AgentError(f"{self.name}.load needs the env to rebuild the network: load(path, env=env)")
        self.build(env)
        state = meta["state"]
        if list(self.spaces) != state.get("spaces"):
            raise CheckpointError(f"{path} was trained on observations/actions {state.get('spaces')}; this env has "
                                  f"{list(self.spaces)}: use a checkpoint trained on this env")
        restore_torch(arrays, state, {"model": self.net}, {"adam": self.optim}, self.sampler, self.device, path)
        restore_progress(self, arrays, meta, path)
        return self

    def check_fits(self, env: gym.Env) -> None:
        return None

    def start_from(self, path: Path, env: gym.Env) -> None:
        """Take the network weights of the checkpoint at `path` (StartsFrom): the same network
        sizes; this run's own settings, seed, optimiser and budget."""
        source = ReinforceAgent(**typed.as_dict(self.settings)).load(path, env=env)
        try:
            self.net.load_state_dict(source.net.state_dict())
        except RuntimeError:
            raise CheckpointError(f"{path} holds a {source.net_cfg} network; this run builds a {self.net_cfg}: "
                                  "give the same network settings") from None
        self.started_from = started_from(path)


def gradient_flow_plot(log: TrainingLog, path: Path, title: str) -> Path:
    """The gradient of the episode's last decision, ||d log pi(A_last) / dx_t||, reaching each
    time step t, averaged over the last tenth of training, on a log scale: a plain RNN's falls
    with the distance from the last step (vanishing gradients, Bengio et al. 1994), an
    LSTM's much less."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agents.checkpoint import write_atomically

    names = sorted(k for k in log.values if k.startswith("grad_norm_t"))
    norms = [float(np.mean(log.values[k][-max(1, len(log.values[k]) // 10):])) for k in names]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.semilogy(range(len(norms)), norms, "o-")
    ax.set_xlabel("time step t of the episode")
    ax.set_ylabel("||d log pi(A_last) / dx_t||")
    ax.set_title(f"{title}: the last decision's gradient reaching step t", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- a black-box image generator





class PixelPolicy(torch.nn.Module):
    """pi(x | z) = N(mu(z), diag sigma^2): mu(z) = sigmoid(MLP(z)) per pixel, log sigma learned
    per pixel. `baseline` is the running mean reward b (a buffer: it travels in checkpoints)."""

    def __init__(self, in_dim: int, shape: tuple[int, ...], hidden: int, sigma: float) -> None:
        super().__init__()
        self.shape = shape
        n = int(np.prod(shape))
        self.mu = torch.nn.Sequential(torch.nn.Linear(in_dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n))
        self.log_sigma = torch.nn.Parameter(torch.full((n,), float(np.log(sigma))))
        self.register_buffer("baseline", torch.zeros(()))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:  # (B, in) -> mean images (B, *shape)
        return torch.sigmoid(self.mu(obs)).view(-1, *self.shape)

    def distribution(self, obs: torch.Tensor) -> Normal:
        return Normal(torch.sigmoid(self.mu(obs)), self.log_sigma.exp())


class ReinforceGenerator(NeuralGenerator):
    """A generator that sees only the env's rewards: each image is a one-step bandit, so

        G_t = R_{t+1}                                    (the judge's score of image t)
        loss = -mean_t[ (G_t - b) log pi(x_t | z_t) ]     (REINFORCE with baseline b)
        b <- b + beta (mean_t G_t - b)                   (running-mean baseline)

    One unit of the training loop is one episode (`batch` images) played through
    env.step, then one Adam step. The action sent is the sample clipped to [0, 1]; the
    log-probability is the unclipped sample's (as SB3 does for Box actions). Greedy play
    sends the mean mu(z). It will be weak: 256 pixels learned from one number each, the
    lesson the leaderboard shows next to the GAN, which reads the judge's gradient.
    """

    name = "reinforce-generator"
    Settings = ReinforceGeneratorSettings
    unit = "episode"
    budget_unit = "episode"
    decoder_name = "policy"

    def __init__(self, **settings: Any) -> None:
        super().__init__(typed.build(ReinforceGeneratorSettings, settings, AgentError))

    def build(self, env: gym.Env) -> None:
        spec = self._spec()
        in_dim = spec.latent + (spec.n_classes if spec.conditional else 0)
        policy = PixelPolicy(in_dim, spec.shape, self.settings.hidden, self.settings.sigma).to(self.device)
        self.modules = {"policy": policy}
        self.optims = {"adam": torch.optim.Adam(policy.parameters(), lr=self.settings.lr)}

    def decode(self, z: Any, y: Any) -> Any:
        return self.modules["policy"](z if y is None else torch.cat([z, y], dim=1))

    def update(self, index: int) -> dict[str, float]:
        policy, env = self.modules["policy"], self.env
        if env is None:
            raise AgentError(f"{self.name} has no env to play: fit it on the image env first")
        obs, _ = env.reset(seed=episode_seed(self.seed, index))
        observations, samples, rewards = [], [], []
        done = False
        while not done:
            o = torch.as_tensor(obs, device=self.device)[None]
            with torch.no_grad():
                dist = policy.distribution(o)
                x = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=self.sampler).to(self.device)
            image = x.clamp(0, 1).view(self._spec().shape).cpu().numpy()
            obs, r, terminated, truncated, _ = env.step(image)
            observations.append(o)
            samples.append(x)
            rewards.append(float(r))
            done = terminated or truncated
        G = torch.tensor(rewards, device=self.device)  # (T,)
        log_prob = policy.distribution(torch.cat(observations)).log_prob(torch.cat(samples)).sum(dim=1)  # (T,)
        b = policy.baseline
        loss = -((G - b) * log_prob).mean()
        self.check_finite(policy_loss=loss)
        self.optims["adam"].zero_grad()
        loss.backward()
        self.optims["adam"].step()
        policy.baseline += self.settings.baseline_rate * (G.mean() - b)
        return {"return": float(G.sum()), "policy_loss": loss.item(), "sigma": policy.log_sigma.exp().mean().item()}
