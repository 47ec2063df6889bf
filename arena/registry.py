"""Names to things: agent names to factories, env strings (ids, aliases, kwargs) to envs.

`make_agent("value-iteration")` and `make_env("grid:cliff", slip=0.1)` are what the CLI,
matches and tournaments call, so every way in checks its input the same way.

A user's own agent joins the built-ins with `register_agent(name, factory)` (or, from an
installed package, an entry point in the group `arena.agents`: `name = "pkg.module:Class"`)
and then runs by name everywhere a built-in does: `arena run`, `arena.evaluate`, the
`arena_eval` fixture, suites and tournaments (worker processes and Ray tasks re-register
it from where it was defined).

Why one long file: every way a name becomes an agent or an env (built-ins, users' agents,
entry points, env strings and their checks) is here, so every way in checks the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym

import envs  # noqa: F401  (registers arena/* ids)
from agents import spaces as rules
from agents.protocol import Agent
from arena import settings as typed
from arena.errors import AgentError, ArenaError, EnvError, RegistryError
from envs.grid import GridSettings, GridWorldEnv
from envs.imagegen import ImageGenerationEnv, ImageGenSettings
from envs.mdp import TabularMDPEnv, TabularMDPSettings
from envs.sequence import SequencePredictionEnv, SequenceSettings
from envs.text import TextGenerationEnv, TextSettings
from envs.textbook import MaximizationBiasEnv, MaximizationBiasSettings


@dataclass(frozen=True)
class AgentSpec:
    name: str
    factory: Callable[..., Agent]
    accepts: Callable[[Any], "str | None"]  # agents/spaces.py: None if it can play the env, else why not
    summary: str
    neural: bool = False  # takes --device
    settings: Callable[[], type] | None = None  # the settings dataclass (imported on demand)
    source: tuple[str, str, str] | None = None  # a user's agent: (module, qualified name, sys.path root) to import it


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
    def factory(**kwargs: Any) -> Agent:
        from agents import dp

        return vars(dp)[cls_name](**kwargs)

    return factory


def _from(module: str, cls_name: str) -> Callable[..., Any]:
    def factory(**kwargs: Any) -> Agent:
        import importlib

        return vars(importlib.import_module(module))[cls_name](**kwargs)

    return factory


def _reinforce(network: str) -> Callable[..., Any]:
    def factory(**kwargs: Any) -> Agent:
        from agents.reinforce import ReinforceAgent

        return ReinforceAgent(network=network, **kwargs)

    return factory


def _neural(name: str) -> Callable[[], type]:
    """A neural agent's settings class, from the module that imports no torch."""
    def settings() -> type:
        from agents import neural_settings

        return vars(neural_settings)[name]  # type: ignore[no-any-return]

    return settings


def _sb3(algo: str) -> Callable[..., Any]:
    def factory(**kwargs: Any) -> Agent:
        from agents.sb3 import SB3Agent

        return SB3Agent(algo=algo, **kwargs)

    return factory


def _random(**kwargs: Any) -> Agent:
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
                  "REINFORCE with baseline, MLP policy: memoryless", neural=True, settings=_neural("ReinforceSettings")),
        AgentSpec("reinforce-cnn", _reinforce("cnn"), rules.network("cnn"),
                  "REINFORCE with baseline, CNN policy reading image observations (obs=image)", neural=True,
                  settings=_neural("ReinforceSettings")),
        AgentSpec("reinforce-rnn", _reinforce("rnn"), rules.network("rnn"),
                  "REINFORCE with baseline, plain (Elman, tanh) RNN policy: memory that fades", neural=True,
                  settings=_neural("ReinforceSettings")),
        AgentSpec("reinforce-lstm", _reinforce("lstm"), rules.network("lstm"),
                  "REINFORCE with baseline, LSTM policy: remembers the episode", neural=True,
                  settings=_neural("ReinforceSettings")),
        AgentSpec("reinforce-transformer", _reinforce("transformer"), rules.network("transformer"),
                  "REINFORCE with baseline, causal Transformer policy with a key/value cache", neural=True,
                  settings=_neural("ReinforceSettings")),
        AgentSpec("gan", _from("agents.gan", "GANAgent"), rules.generator,
                  "DCGAN generator + discriminator; loss bce | lsgan | wgan-gp; conditional", neural=True,
                  settings=_neural("GANSettings")),
        AgentSpec("vae", _from("agents.vae", "VAEAgent"), rules.generator,
                  "convolutional VAE (ELBO = reconstruction + KL); beta=0 is a plain autoencoder", neural=True,
                  settings=_neural("VAESettings")),
        AgentSpec("reinforce-generator", _from("agents.reinforce", "ReinforceGenerator"), rules.generator,
                  "black-box generator: Gaussian pixel policy trained by REINFORCE from the judge's rewards only",
                  neural=True, settings=_neural("ReinforceGeneratorSettings")),
        AgentSpec("real-data", _from("agents.baselines", "RealDataAgent"), rules.generator,
                  "held-out real images: the ceiling of the image scores"),
        AgentSpec("noise", _from("agents.baselines", "NoiseAgent"), rules.generator,
                  "uniform noise images: the floor of the image scores"),
        AgentSpec("lm", _from("agents.language", "LanguageModel"), rules.text_writer,
                  "stage 1 of ChatGPT's three: a Transformer language model trained on demonstrations", neural=True,
                  settings=_neural("LMSettings")),
        AgentSpec("reward-model", _from("agents.language", "RewardModel"), rules.text_writer,
                  "stage 2: a Transformer scoring responses, fitted to preference pairs (Bradley-Terry)", neural=True,
                  settings=_neural("RewardModelSettings")),
        AgentSpec("rlhf", _from("agents.language", "RLHF"), rules.text_writer,
                  "stage 3: RL against the reward model with a KL penalty (trains stages 1 and 2 if not given)",
                  neural=True, settings=_neural("RLHFSettings")),
        AgentSpec("best-of-n", _from("agents.language", "BestOfN"), rules.text_writer,
                  "n samples from the stage-1 model; the reward model picks one", neural=True,
                  settings=_neural("BestOfNSettings")),
        AgentSpec("gold-best", _from("agents.language", "GoldBest"), rules.text_writer,
                  "the right answer from the task's hidden rule: the ceiling of the text scores",
                  settings=_neural("GoldBestSettings")),
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
    "mdp": EnvFamily(
        "mdp", "arena/TabularMDP-v0", TabularMDPEnv, "model", TabularMDPSettings,
        "any finite MDP from arrays or a JSON model; the textbook's random-walk, gambler, jacks-car-rental, maximization-bias, short-corridor",
        ("mdp:random-walk", "mdp:gambler p_h=0.25", "mdp:jacks-car-rental variant=true", "mdp:short-corridor"),
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
    "text": EnvFamily(
        "text", "arena/TextGeneration-v0", TextGenerationEnv, "task", TextSettings,
        "text generation judged by a hidden rule or a learned reward model: sort, evens",
        ("text:sort", "text:evens judge=reward-model", "text:sort prompt_len=6"),
    ),
}
FAMILY_OF_ID = {f.env_id: f for f in FAMILIES.values()}


def agent_names() -> list[str]:
    return list(AGENTS)


def make_agent(name: str, **config: Any) -> Agent:
    """A fresh agent by registry name, with settings from `config` (each checked against its type and range)."""
    if not isinstance(name, str):
        raise RegistryError(f"the agent must be named by a string (`arena agents` lists them), got {type(name).__name__}")
    if name not in AGENTS:
        close = [n for n in AGENTS if name.split("-")[0] in n]
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise RegistryError(f"unknown agent {name!r}{hint}; `arena agents` lists them: {', '.join(AGENTS)}")
    spec = AGENTS[name]
    fixed = {"reinforce": "network", "sb3": "algo"}.get(name.split("-")[0]) if spec.source is None else None
    if fixed in config:
        raise AgentError(f"{name} fixes {fixed} by its name; pick the agent with the {fixed} you want (`arena agents`)")
    if spec.settings is not None:  # checked before the agent's module (and its network library) is imported
        typed.build(spec.settings(), config, AgentError)
    try:
        agent = spec.factory(**config)
    except ArenaError:
        raise
    except Exception as exc:  # a user's factory failing is their error, said in one line
        raise AgentError(f"making agent {name} failed: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(agent, Agent):
        missing = [m for m in ("name", "recurrent", "reset", "fit", "act", "save", "load", "config", "check_fits",
                               "digest", "overlay") if m not in dir(agent)]
        raise AgentError(f"{name}'s factory made a {type(agent).__name__}, which is not an Agent: it lacks "
                         f"{', '.join(missing)} (agents/protocol.py; subclassing agents.training.AgentBase helps)")
    return agent


def register_agent(name: str, factory: Callable[..., Agent], *, settings: type | None = None, summary: str = "",
                   accepts: Callable[[Any], "str | None"] | None = None, neural: bool = False,
                   replace: bool = False) -> None:
    """Make a user's agent playable by `name` everywhere a built-in is.

    `factory(**settings)` makes the agent (usually its class); `settings` is its settings
    dataclass (default: `factory.Settings`, as the built-ins declare it), checked on every
    `--set` and listed by `arena agents NAME`; `accepts(env)` says why it cannot play an env
    (None: it can; default: any env). Built-in names cannot be replaced; your own can with
    `replace=True`."""
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name):
        raise RegistryError(f"agent name {name!r}: use 1 to 64 lowercase letters, digits, '.', '_' or '-'")
    if not callable(factory):
        raise RegistryError(f"register_agent({name!r}, ...): the factory must be callable (a class or a function)")
    old = AGENTS.get(name)
    if old is not None and (old.source is None or not replace):
        what = "a built-in agent" if old.source is None else "already registered (pass replace=True)"
        raise RegistryError(f"agent name {name!r} is {what}; choose another name")
    if settings is None:
        settings = declared_settings(factory)
    if settings is not None and not dataclasses.is_dataclass(settings):
        raise RegistryError(f"register_agent({name!r}, ...): settings must be a dataclass of setting(...) fields")
    module = getattr(factory, "__module__", None) or ""
    qualname = getattr(factory, "__qualname__", "") or ""
    root = ""
    try:
        root = str(Path(inspect.getfile(factory)).resolve().parents[module.count(".")])
    except (TypeError, OSError, IndexError):
        pass
    fixed = settings
    AGENTS[name] = AgentSpec(name, factory, accepts or rules.any_env, summary or (factory.__doc__ or "").strip()
                             .split("\n")[0] or f"your agent {name}", neural,
                             (lambda: fixed) if fixed is not None else None, (module, qualname, root))


def declared_settings(factory: Any) -> type | None:
    """The `Settings` dataclass an agent class declares (or inherits), as the built-ins do; None otherwise."""
    if not isinstance(factory, type):
        return None
    return next((vars(c)["Settings"] for c in factory.__mro__ if "Settings" in vars(c)), None)


def user_agents() -> list[tuple[str, tuple[str, str, str]]]:
    """(name, where it is defined) of each agent a user registered: what worker processes re-register."""
    return [(spec.name, spec.source) for spec in AGENTS.values() if spec.source is not None]


def restore_user_agents(entries: list[tuple[str, tuple[str, str, str]]]) -> None:
    """In a worker process: import and register the user's agents the driver had (their classes
    and settings; the driver has already checked which envs they play)."""
    import importlib
    import sys

    for name, (module, qualname, root) in entries:
        if name in AGENTS:
            continue
        if root and root not in sys.path:
            sys.path.append(root)
        try:
            factory: Any = importlib.import_module(module)
            for part in qualname.split("."):
                factory = getattr(factory, part)
        except (ImportError, AttributeError) as exc:
            raise RegistryError(f"agent {name}: cannot import {module}.{qualname} in a worker ({exc}); define it at "
                                "the top level of an importable module") from None
        if name not in AGENTS:  # importing the module may have registered it already
            register_agent(name, factory)


def _entry_point_agents() -> None:
    """Agents installed packages declare in the entry-point group `arena.agents` (loaded on first use)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="arena.agents"):
        if ep.name in AGENTS:
            continue

        def factory(_ep: Any = ep, **config: Any) -> Any:
            return _ep.load()(**config)

        def settings(_ep: Any = ep) -> type:
            found = declared_settings(_ep.load())
            if found is None:
                raise RegistryError(f"agent {_ep.name} ({_ep.value}) declares no Settings dataclass")
            return found

        module, _, qualname = ep.value.partition(":")
        AGENTS[ep.name] = AgentSpec(ep.name, factory, rules.any_env, f"from the installed package {module}",
                                    settings=settings, source=(module, qualname, ""))


_entry_point_agents()


def settings_of(name: str) -> type:
    """The settings dataclass of agent `name` (for `arena agents NAME` and `--set` checks)."""
    spec = AGENTS[name]
    if spec.settings is None:
        return type(make_agent(name).settings)
    return spec.settings()


def parse_value(text: str) -> Any:
    """A kwarg value from the command line: JSON where it parses (0.1, [0,1], true), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_env(spec: str, extra: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    """'grid:cliff' plus ['slip=0.1'] -> ('arena/GridWorld-v0', {'layout': 'cliff', 'slip': 0.1}).
    The quoted form 'seq:copy length=4' (kwargs inside the env string) reads the same."""
    if not isinstance(spec, str) or not spec.strip():
        raise RegistryError(f"env {spec!r}: name an env, e.g. grid:cliff or 'seq:copy length=4' (`arena envs` lists them)")
    # kwargs follow the name after spaces; a multi-line text map keeps its line breaks
    spec, *inline = [part for part in re.split(r"[ \t]+", spec.strip(" \t")) if part]
    extra = [*inline, *(extra or [])]
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
    params = [f.name for f in typed.fields(family.settings)]  # the one declaration of the env's kwargs
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise RegistryError(f"{env_id} has no kwarg {str(unknown[0])[:40]!r}; it takes {', '.join(params)}")
    typed.build(family.settings, kwargs, EnvError)


def read_config(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(agent settings, env kwargs) from a TOML file with an [agent] and an [env] table, as rl-zoo3
    users keep hyperparameters in files; each value is checked later like `--set` and key=value."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"--config {path}: cannot read it ({exc}); give a UTF-8 TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"--config {path}: not valid TOML: {exc}; fix the syntax there") from None
    unknown = sorted(set(data) - {"agent", "env"})
    if unknown:
        raise RegistryError(f"--config {path}: unknown table [{unknown[0]}]; write agent settings under [agent] and "
                            "env kwargs under [env]")
    agent, env = data.get("agent", {}), data.get("env", {})
    if not isinstance(agent, dict) or not isinstance(env, dict):
        raise RegistryError(f"--config {path}: [agent] and [env] must be tables of key = value")
    return dict(agent), dict(env)


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
    "make_agent", "make_env", "parse_env", "playable_families", "register_agent", "restore_user_agents",
    "settings_of", "user_agents",
]
