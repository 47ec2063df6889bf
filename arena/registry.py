"""Names to things: agent names to factories, env strings (ids, aliases, kwargs) to envs.

`make_agent("value-iteration")` and `make_env("grid:cliff", slip=0.1)` are what the CLI,
matches and tournaments call, so every way in checks its input the same way.
"""

from __future__ import annotations

import functools
import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym

import envs  # noqa: F401  (registers arena/* ids)
from agents import spaces as rules
from arena import settings as typed
from arena.errors import AgentError, EnvError, RegistryError
from envs.grid import GridSettings, GridWorldEnv
from envs.imagegen import ImageGenerationEnv, ImageGenSettings
from envs.sequence import SequencePredictionEnv, SequenceSettings
from envs.textbook import MaximizationBiasEnv, MaximizationBiasSettings


@dataclass(frozen=True)
class AgentSpec:
    name: str
    factory: Callable[..., Any]
    accepts: Callable[[Any], "str | None"]  # agents/spaces.py: None if it can play the env, else why not
    summary: str
    neural: bool = False  # takes --device
    settings: Callable[[], type] | None = None  # the settings dataclass (imported on demand)


@dataclass(frozen=True)
class EnvFamily:
    name: str
    env_id: str
    entry: type
    default_kwarg: str  # what `family:value` sets, e.g. grid:cliff -> layout="cliff"
    settings: type  # the kwargs as a typed settings dataclass
    summary: str
    examples: tuple[str, ...] = field(default_factory=tuple)


def _dp(cls_name: str) -> Callable[..., Any]:
    def factory(**kwargs: Any) -> Any:
        from agents import dp

        return getattr(dp, cls_name)(**kwargs)

    return factory


def _from(module: str, cls_name: str) -> Callable[..., Any]:
    def factory(**kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), cls_name)(**kwargs)

    return factory


def _reinforce(network: str) -> Callable[..., Any]:
    def factory(**kwargs: Any) -> Any:
        from agents.reinforce import ReinforceAgent

        return ReinforceAgent(network=network, **kwargs)

    return factory


def _sb3(algo: str) -> Callable[..., Any]:
    def factory(**kwargs: Any) -> Any:
        from agents.sb3 import SB3Agent

        return SB3Agent(algo=algo, **kwargs)

    return factory


def _random(**kwargs: Any) -> Any:
    from agents.baselines import RandomAgent

    return RandomAgent(**kwargs)


AGENTS: dict[str, AgentSpec] = {
    spec.name: spec
    for spec in [
        AgentSpec("value-iteration", _dp("ValueIterationAgent"), rules.model,
                  "plans on the exact model: in-place value iteration (S&B 4.4)"),
        AgentSpec("policy-iteration", _dp("PolicyIterationAgent"), rules.model,
                  "plans on the exact model: exact evaluation + greedy improvement (S&B 4.3)"),
        AgentSpec("random", _random, rules.discrete_actions, "uniformly random actions: the baseline"),
        AgentSpec("sarsa", _from("agents.td", "SarsaAgent"), rules.tables, "on-policy TD control (S&B 6.4)"),
        AgentSpec("q-learning", _from("agents.td", "QLearningAgent"), rules.tables, "off-policy TD control (S&B 6.5)"),
        AgentSpec("expected-sarsa", _from("agents.td", "ExpectedSarsaAgent"), rules.tables,
                  "TD control on the expected next value (S&B 6.6)"),
        AgentSpec("n-step-sarsa", _from("agents.td", "NStepSarsaAgent"), rules.tables, "n-step SARSA, n=4 (S&B 7.2)"),
        AgentSpec("double-q-learning", _from("agents.td", "DoubleQLearningAgent"), rules.tables,
                  "two Q tables against maximisation bias (S&B 6.7)"),
        AgentSpec("mc-control", _from("agents.monte_carlo", "MCControlAgent"), rules.tables,
                  "on-policy first-visit MC control, epsilon-soft (S&B 5.4)"),
        AgentSpec("mc-exploring-starts", _from("agents.monte_carlo", "MCExploringStartsAgent"), rules.model,
                  "MC control with exploring starts (S&B 5.3)"),
        AgentSpec("mc-off-policy", _from("agents.monte_carlo", "OffPolicyMCControlAgent"), rules.tables,
                  "off-policy MC control, weighted importance sampling (S&B 5.7)"),
        AgentSpec("reinforce-mlp", _reinforce("mlp"), rules.network("mlp"),
                  "REINFORCE with baseline, MLP policy: memoryless", neural=True),
        AgentSpec("reinforce-cnn", _reinforce("cnn"), rules.network("cnn"),
                  "REINFORCE with baseline, CNN policy reading image observations (obs=image)", neural=True),
        AgentSpec("reinforce-lstm", _reinforce("lstm"), rules.network("lstm"),
                  "REINFORCE with baseline, LSTM policy: remembers the episode", neural=True),
        AgentSpec("reinforce-transformer", _reinforce("transformer"), rules.network("transformer"),
                  "REINFORCE with baseline, causal Transformer policy with a key/value cache", neural=True),
        AgentSpec("gan", _from("agents.gan", "GANAgent"), rules.generator,
                  "DCGAN generator + discriminator; loss bce | lsgan | wgan-gp; conditional", neural=True),
        AgentSpec("vae", _from("agents.vae", "VAEAgent"), rules.generator,
                  "convolutional VAE (ELBO = reconstruction + KL); beta=0 is a plain autoencoder", neural=True),
        AgentSpec("reinforce-generator", _from("agents.reinforce", "ReinforceGenerator"), rules.generator,
                  "black-box generator: Gaussian pixel policy trained by REINFORCE from the judge's rewards only",
                  neural=True),
        AgentSpec("real-data", _from("agents.baselines", "RealDataAgent"), rules.generator,
                  "held-out real images: the ceiling of the image scores"),
        AgentSpec("noise", _from("agents.baselines", "NoiseAgent"), rules.generator,
                  "uniform noise images: the floor of the image scores"),
        AgentSpec("sb3-ppo", _sb3("ppo"), rules.sb3("ppo"), "Stable-Baselines3 PPO (reference implementation)",
                  neural=True),
        AgentSpec("sb3-a2c", _sb3("a2c"), rules.sb3("a2c"), "Stable-Baselines3 A2C (reference implementation)",
                  neural=True),
        AgentSpec("sb3-dqn", _sb3("dqn"), rules.sb3("dqn"), "Stable-Baselines3 DQN (reference implementation)",
                  neural=True),
    ]
}

FAMILIES: dict[str, EnvFamily] = {
    "grid": EnvFamily(
        "grid", "arena/GridWorld-v0", GridWorldEnv, "layout", GridSettings,
        "grid-world MDPs with an exact model",
        ("grid:cliff", "grid:frozenlake-8x8 slip=0", "grid:maze-31x31 maze_seed=3"),
    ),
    "seq": EnvFamily(
        "seq", "arena/SequencePrediction-v0", SequencePredictionEnv, "task", SequenceSettings,
        "sequence tasks: copy, reverse, parity, addition, sine, text",
        ("seq:copy length=8", "seq:addition length=3", "seq:text"),
    ),
    "bias": EnvFamily(
        "bias", "arena/MaximizationBias-v0", MaximizationBiasEnv, "n_actions", MaximizationBiasSettings,
        "Sutton & Barto's maximisation-bias MDP (Example 6.7)", ("bias", "bias:4"),
    ),
    "img": EnvFamily(
        "img", "arena/ImageGeneration-v0", ImageGenerationEnv, "dataset", ImageGenSettings,
        "image generation judged by a discriminator: digits, shapes",
        ("img:digits", "img:shapes size=32", "img:digits conditional=true judge=adaptive"),
    ),
}
FAMILY_OF_ID = {f.env_id: f for f in FAMILIES.values()}


def agent_names() -> list[str]:
    return list(AGENTS)


def make_agent(name: str, **config: Any) -> Any:
    """A fresh agent by registry name, with settings from `config` (each checked against its type and range)."""
    if name not in AGENTS:
        close = [n for n in AGENTS if name.split("-")[0] in n]
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise RegistryError(f"unknown agent {name!r}{hint}; `arena agents` lists them: {', '.join(AGENTS)}")
    fixed = {"reinforce": "network", "sb3": "algo"}.get(name.split("-")[0])
    if fixed in config:
        raise AgentError(f"{name} fixes {fixed} by its name; pick the agent with the {fixed} you want (`arena agents`)")
    return AGENTS[name].factory(**config)


def settings_of(name: str) -> type:
    """The settings dataclass of agent `name` (for `arena agents NAME` and `--set` checks)."""
    spec = AGENTS[name]
    if spec.settings is None:
        return type(make_agent(name)).Settings  # type: ignore[no-any-return]
    return spec.settings()


def parse_value(text: str) -> Any:
    """A kwarg value from the command line: JSON where it parses (0.1, [0,1], true), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_env(spec: str, extra: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    """'grid:cliff' plus ['slip=0.1'] -> ('arena/GridWorld-v0', {'layout': 'cliff', 'slip': 0.1})."""
    kwargs: dict[str, Any] = {}
    for item in extra or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RegistryError(f"env kwarg {item!r} is not key=value; write e.g. slip=0.1")
        kwargs[key] = parse_value(value)
    family, sep, value = spec.partition(":")
    if family in FAMILIES:
        env_id = FAMILIES[family].env_id
        if sep:
            kwargs.setdefault(FAMILIES[family].default_kwarg, parse_value(value))
    elif spec in gym.registry:
        env_id = spec
    else:
        known = ", ".join(f"{f.name}:<{f.default_kwarg}>" for f in FAMILIES.values())
        raise RegistryError(f"unknown env {spec!r}; use a registered id (`arena envs`) or an alias such as {known}")
    check_env_kwargs(env_id, kwargs)
    return env_id, kwargs


def check_env_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """Check every kwarg against the env family's typed settings, before anything is built."""
    family = FAMILY_OF_ID.get(env_id)
    if family is None:
        return
    params = [p for p in inspect.signature(family.entry.__init__).parameters if p not in ("self", "render_mode")]
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise RegistryError(f"{env_id} has no kwarg {str(unknown[0])[:40]!r}; it takes {', '.join(params)}")
    typed.build(family.settings, kwargs, EnvError)


def family_of(env_id: str) -> str:
    family = FAMILY_OF_ID.get(env_id)
    return family.name if family else env_id


def make_env(env_id: str, kwargs: dict[str, Any], render_mode: str | None = None) -> gym.Env:
    """gymnasium.make with Arena's checks, so a bad kwarg is one clear line."""
    check_env_kwargs(env_id, kwargs)
    try:
        return gym.make(env_id, render_mode=render_mode, **kwargs)
    except gym.error.Error as exc:
        raise RegistryError(f"cannot make {env_id}: {exc}") from None
    except TypeError as exc:
        raise RegistryError(f"cannot make {env_id} with {kwargs}: {exc}") from None
    except MemoryError:
        raise EnvError(f"{env_id} with {kwargs} does not fit in memory; make it smaller") from None


# what `arena agents` probes to say which families an agent plays: each family's envs in every obs mode
PROBES: dict[str, tuple[dict[str, Any], ...]] = {
    "grid": ({"obs": "index"}, {"obs": "coords"}, {"obs": "image"}),
    "seq": ({},),
    "bias": ({},),
    "img": ({},),
}


@functools.cache
def _probe(family: str, index: int) -> gym.Env:
    return gym.make(FAMILIES[family].env_id, **PROBES[family][index])


def playable_families(agent_name: str) -> list[str]:
    """The env families (`grid (obs=index, coords)`, `seq`, ...) whose envs the agent's spaces rule accepts."""
    out = []
    for family, probes in PROBES.items():
        ok = [p for i, p in enumerate(probes) if AGENTS[agent_name].accepts(_probe(family, i)) is None]
        if ok and len(ok) < len(probes):
            out.append(f"{family} ({', '.join(f'{k}={v}' for p in ok for k, v in p.items())})")
        elif ok:
            out.append(family)
    return out


def check_pairing(agent_name: str, env_id: str, env: gym.Env | None = None, kwargs: dict[str, Any] | None = None) -> None:
    """Fail early, before any training, when the agent's spaces rule does not accept the env."""
    env = env if env is not None else make_env(env_id, kwargs or {})
    why = AGENTS[agent_name].accepts(env)
    if why is not None:
        raise RegistryError(f"{agent_name} cannot play {env_id}: {why}")


__all__ = [
    "AGENTS", "FAMILIES", "AgentError", "RegistryError", "agent_names", "check_pairing",
    "make_agent", "make_env", "parse_env", "playable_families", "settings_of",
]
