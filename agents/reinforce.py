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
stops training with the agent, the component and the update named; the last good
checkpoint is kept.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.base import AgentError, TrainingInterrupted, TrainingLog, module_digest, read_safetensors, write_safetensors
from agents.networks import BODIES, NetConfig, PolicyNet, resolve_device
from agents.tabular import check_range, episode_seed

FORMAT = "arena-reinforce"
VERSION = 1


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss or gradient); the message says where."""


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


class ReinforceAgent:
    """REINFORCE on a batched copy of the env. Settings: network (mlp, cnn, lstm, transformer),
    hidden, layers, heads, lr, gamma, entropy, value_coef, max_grad_norm, num_envs,
    episodes (training budget), target (stop once the mean return reaches it), normalize
    (standardise advantages per batch), device."""

    checkpoint_suffix = ".safetensors"

    def __init__(
        self,
        network: str = "lstm",
        hidden: int = 64,
        layers: int = 1,
        heads: int = 2,
        lr: float = 3e-3,
        gamma: float = 0.9,
        entropy: float = 0.01,
        value_coef: float = 0.5,
        max_grad_norm: float = 1.0,
        num_envs: int = 64,
        episodes: int = 64 * 300,
        target: float | None = None,
        normalize: bool = False,
        device: str = "auto",
    ) -> None:
        if network not in BODIES:
            raise AgentError(f"unknown network {network!r}; use one of {', '.join(BODIES)}")
        self.net_cfg = NetConfig(body=network, hidden=int(hidden), layers=int(layers), heads=int(heads))
        self.lr = check_range("lr", lr, 0.0, 1.0, low_open=True)
        self.gamma = check_range("gamma", gamma, 0.0, 1.0)
        self.entropy = check_range("entropy", entropy, 0.0, 10.0)
        self.value_coef = check_range("value_coef", value_coef, 0.0, 10.0)
        self.max_grad_norm = check_range("max_grad_norm", max_grad_norm, 0.0, 1e6, low_open=True)
        self.num_envs = int(num_envs)
        if self.num_envs < 1:
            raise AgentError(f"num_envs={num_envs} is out of range; use at least 1")
        self.episodes = int(episodes)
        if self.episodes < 1:
            raise AgentError(f"episodes={episodes} is out of range; train for at least 1 episode")
        self.target = None if target is None else float(target)
        self.normalize = bool(normalize)
        self.device_name = device
        self.device = resolve_device(device)
        self.name = f"reinforce-{network}"
        self.net: PolicyNet | None = None
        self.optim: torch.optim.Optimizer | None = None
        self.updates_done = 0
        self.seed = 0
        self.log = TrainingLog()
        self.sampler = torch.Generator()

    def config(self) -> dict[str, Any]:
        return {
            "network": self.net_cfg.body, "hidden": self.net_cfg.hidden, "layers": self.net_cfg.layers,
            "heads": self.net_cfg.heads, "lr": self.lr, "gamma": self.gamma, "entropy": self.entropy,
            "value_coef": self.value_coef, "max_grad_norm": self.max_grad_norm, "num_envs": self.num_envs,
            "episodes": self.episodes, "target": self.target, "normalize": self.normalize,
        }

    @property
    def recurrent(self) -> bool:
        return self.net_cfg.body in ("lstm", "transformer")

    # ---------------------------------------------------------------- building

    def build(self, env: Any) -> None:
        """The network and optimiser for this env's spaces (the network checks they fit)."""
        self.net = PolicyNet(env.observation_space, env.action_space, self.net_cfg).to(self.device)
        self.optim = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        self.spaces = (repr(env.observation_space), repr(env.action_space))

    def batched(self, env: Any) -> Any:
        """A batched copy of `env` (native where the env has one, else Gymnasium's SyncVectorEnv)."""
        import gymnasium as gym

        spec = env.spec
        if spec is None:
            raise AgentError(f"{self.name} trains on a batched copy of the env; make the env with gymnasium.make(id)")
        kwargs = {k: v for k, v in spec.kwargs.items() if k != "render_mode"}
        mode = "vector_entry_point" if spec.vector_entry_point else "sync"
        return gym.make_vec(spec.id, num_envs=self.num_envs, vectorization_mode=mode, **kwargs)

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

    def rollout(self, venv: Any, seed: int) -> Batch:
        """One episode per copy, from venv.reset(seed=seed); steps after an episode's end are masked."""
        net = self._net()
        obs, _ = venv.reset(seed=seed)
        state = net.initial_state(self.num_envs)
        alive = np.ones(self.num_envs, dtype=bool)
        obs_list, act_list, rew_list, mask_list = [], [], [], []
        returns = np.zeros(self.num_envs)
        accuracy = np.full(self.num_envs, np.nan)
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
        out, values = net.sequence(batch.obs, mask)  # (T, B, A), (T, B)
        dist = net.distribution(out)
        log_prob = dist.log_prob(batch.actions)  # (T, B)
        G = reward_to_go(batch.rewards, mask, self.gamma)
        advantage = (G - values).detach()
        if self.normalize:  # A <- (A - mean) / std over the batch's live steps: a scale-free step size
            mean = (advantage * mask).sum() / n
            std = (((advantage - mean) ** 2 * mask).sum() / n).sqrt()
            advantage = (advantage - mean) / (std + 1e-8)
        policy_loss = -(log_prob * advantage * mask).sum() / n
        value_loss = ((G - values) ** 2 * mask).sum() / n
        entropy = (dist.entropy() * mask).sum() / n
        loss = policy_loss + self.value_coef * value_loss - self.entropy * entropy
        for component, value in (("policy loss", policy_loss), ("value loss", value_loss), ("entropy", entropy)):
            if not torch.isfinite(value):
                raise TrainingError(
                    f"{self.name}: the {component} became {value.item()} at update {self.updates_done + 1}; "
                    "training stopped and the last good checkpoint was kept: lower lr or max_grad_norm"
                )
        self.optim.zero_grad()
        loss.backward()
        try:
            torch.nn.utils.clip_grad_norm_(net.parameters(), self.max_grad_norm, error_if_nonfinite=True)
        except RuntimeError:
            raise TrainingError(
                f"{self.name}: a gradient became non-finite at update {self.updates_done + 1}; training stopped "
                "and the last good checkpoint was kept: lower lr or max_grad_norm"
            ) from None
        self.optim.step()
        return {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": entropy.item()}

    def fit(
        self,
        env: Any,
        seed: int = 0,
        episodes: int | None = None,
        run_dir: str | Path | None = None,
        resume: str | Path | None = None,
        progress: bool | None = None,
        save_every: int = 50,
    ) -> dict[str, Any]:
        """Train for `episodes` (rounded up to whole batches of num_envs); checkpoints to run_dir."""
        total_updates = -(-int(episodes or self.episodes) // self.num_envs)
        run_dir = Path(run_dir) if run_dir else None
        torch.manual_seed(seed)
        self.build(env)
        self.log = TrainingLog(run_dir)
        self.updates_done, self.seed = 0, seed
        self.sampler.manual_seed(seed)
        if resume:
            self.load(resume, env=env)
        self.max_steps = int(getattr(env.unwrapped, "max_steps", 0) or (env.spec.max_episode_steps if env.spec else 0) or 1000)
        venv = self.batched(env)
        checkpoint = run_dir / f"checkpoint{self.checkpoint_suffix}" if run_dir else None
        bar = _Progress(progress, total_updates, self.updates_done, self.name)
        t0 = time.perf_counter()
        stopped_early, env_steps = False, 0
        try:
            for update in range(self.updates_done, total_updates):
                batch = self.rollout(venv, episode_seed(self.seed, update))
                env_steps += int(batch.mask.sum())
                stats = self.update(batch)
                self.updates_done = update + 1
                mean_return = float(batch.returns.mean())
                acc = None if batch.accuracy is None else float(np.nanmean(batch.accuracy))
                self.log.episode(mean_return, **stats, **({"accuracy": acc} if acc is not None else {}))
                bar.update(mean_return, acc)
                if checkpoint and self.updates_done % save_every == 0:
                    self.save(checkpoint)
                if self.target is not None and mean_return >= self.target:
                    stopped_early = True
                    break
        except KeyboardInterrupt:
            if checkpoint:
                self.save(checkpoint)
            raise TrainingInterrupted(self.updates_done * self.num_envs, checkpoint) from None
        finally:
            bar.close()
            self.log.close()
            venv.close()
        out: dict[str, Any] = {
            "episodes": self.updates_done * self.num_envs, "updates": self.updates_done,
            "final_return": self.log.returns[-1] if self.log.returns else None,
            "env_steps": env_steps, "seconds": time.perf_counter() - t0, "device": str(self.device),
        }
        if stopped_early:
            out["reached_target"] = self.target
        if run_dir is not None and self.log.returns:
            out["curve"] = str(self.log.plot(run_dir / "learning_curve.png", f"{self.name}: learning curve",
                                             unit=f"batch of {self.num_envs} episodes"))
        return out

    # ---------------------------------------------------------------- checkpoints

    def save(self, path: str | Path) -> Path:
        """Weights, optimiser state and sampler state as safetensors; settings as JSON metadata."""
        net = self._net()
        tensors = {f"model.{k}": v for k, v in net.state_dict().items()}
        optim_state = self.optim.state_dict()
        scalars: dict[str, Any] = {"param_groups": optim_state["param_groups"], "state": {}}
        for idx, st in optim_state["state"].items():
            for key, value in st.items():
                if torch.is_tensor(value) and value.ndim > 0:
                    tensors[f"optim.{idx}.{key}"] = value
                else:
                    scalars["state"].setdefault(str(idx), {})[key] = float(value)
        tensors["sampler"] = self.sampler.get_state()
        meta = {
            "format": FORMAT, "version": str(VERSION), "agent": self.name,
            "config": json.dumps(self.config()), "updates_done": str(self.updates_done), "seed": str(self.seed),
            "optim": json.dumps(scalars), "spaces": json.dumps(list(getattr(self, "spaces", ("", "")))),
        }
        return write_safetensors(path, tensors, meta)

    def load(self, path: str | Path, env: Any = None) -> "ReinforceAgent":
        """Restore a checkpoint; its network must be this agent's (same body and sizes)."""
        tensors, meta = read_safetensors(path, FORMAT)
        if meta.get("version") != str(VERSION):
            raise AgentError(f"{path} is checkpoint version {meta.get('version')}; this Arena reads {VERSION}")
        saved = json.loads(meta["config"])
        mine = self.config()
        for key in ("network", "hidden", "layers", "heads"):
            if saved[key] != mine[key]:
                raise AgentError(
                    f"{path} holds a {saved['network']} network (hidden {saved['hidden']}, layers {saved['layers']}), "
                    f"not this {mine['network']} (hidden {mine['hidden']}, layers {mine['layers']}): load it with "
                    f"reinforce-{saved['network']} and the same settings"
                )
        if self.net is None:
            if env is None:
                raise AgentError(f"{self.name}.load needs the env to rebuild the network: load(path, env=env)")
            self.build(env)
        if json.dumps(list(self.spaces)) != meta.get("spaces") and env is not None:
            raise AgentError(f"{path} was trained on observations/actions {meta.get('spaces')}; this env differs")
        state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        try:
            self.net.load_state_dict(state)
        except RuntimeError as exc:
            raise AgentError(f"{path} does not fit this network: {str(exc).splitlines()[0]}") from None
        scalars = json.loads(meta["optim"])
        optim_state = {"param_groups": scalars["param_groups"], "state": {}}
        for idx, st in scalars["state"].items():
            optim_state["state"][int(idx)] = {k: torch.tensor(v) for k, v in st.items()}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                optim_state["state"].setdefault(int(idx), {})[name] = value.to(self.device)
        self.optim.load_state_dict(optim_state)
        self.sampler.set_state(tensors["sampler"])
        self.updates_done, self.seed = int(meta["updates_done"]), int(meta["seed"])
        return self

    def check_fits(self, env: Any) -> None:
        return None


class _Progress:
    """A rich progress bar over updates, showing the batch's mean return and token accuracy."""

    def __init__(self, show: bool | None, total: int, done: int, label: str) -> None:
        self.bar = None
        if sys.stderr.isatty() if show is None else show:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            from rich.console import Console

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=True,
                                console=Console(stderr=True))
            self.task = self.bar.add_task(f"training {label} (updates)", total=total, completed=done, info="")
            self.bar.start()

    def update(self, mean_return: float, accuracy: float | None) -> None:
        if self.bar is not None:
            acc = f"  accuracy {accuracy:.1%}" if accuracy is not None else ""
            self.bar.update(self.task, advance=1, info=f"return {mean_return:.3f}{acc}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


