"""Which envs an agent can play, read from the env's spaces (and, for planners, its model).

Each rule takes a built env and returns None when the agent can play it, else the reason
in words. The registry asks these rules instead of keeping a list of env families per
agent, so a new env, or a new obs mode of an old one, is playable by every agent whose
rule its spaces satisfy. No torch here: `arena agents` stays fast.
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
from gymnasium import spaces

from envs.abilities import HasModel, ImageTask, WritesText

Rule = Callable[[Any], "str | None"]


def _describe(space: Any) -> str:
    shape = getattr(space, "shape", None)
    return f"{type(space).__name__}{'' if not shape else ' ' + 'x'.join(map(str, shape))}"


def tables(env: gym.Env) -> str | None:
    """Tabular agents: a state index in, one of finitely many actions out."""
    obs, act = env.observation_space, env.action_space
    if not isinstance(obs, spaces.Discrete):
        hint = "; for a grid use obs=index" if isinstance(env.unwrapped, HasModel) else ""
        return f"it is tabular and needs Discrete observations, not {_describe(obs)}{hint}"
    if not isinstance(act, spaces.Discrete):
        return f"it is tabular and needs Discrete actions, not {_describe(act)}"
    return None


def model(env: gym.Env) -> str | None:
    """Planners (and exploring starts): tables, plus the exact model `env.unwrapped.mdp`."""
    if not isinstance(env.unwrapped, HasModel):
        return "it needs the env's exact model (env.unwrapped.mdp), which this env does not have"
    return tables(env)


def any_env(env: gym.Env) -> str | None:
    """A user's agent that says nothing of its spaces: tried on any env (its own checks speak)."""
    return None


def discrete_actions(env: gym.Env) -> str | None:
    """The random baseline: any observation, finitely many actions."""
    if not isinstance(env.action_space, spaces.Discrete):
        return f"it picks among Discrete actions, not {_describe(env.action_space)}"
    return None


def _image(space: Any) -> bool:
    return isinstance(space, spaces.Box) and len(space.shape) == 3


def network(body: str) -> Rule:
    """Neural policies: the cnn reads images (C x H x W); the others read Discrete,
    MultiDiscrete or flat Box observations. Actions: Discrete, or a 1-D Box (Gaussian)."""

    def rule(env: gym.Env) -> str | None:
        obs, act = env.observation_space, env.action_space
        if not isinstance(obs, (spaces.Discrete, spaces.MultiDiscrete, spaces.Box)):
            return f"networks read Discrete, MultiDiscrete or Box observations, not {_describe(obs)}"
        if body == "cnn" and not _image(obs):
            hint = "; for a grid use obs=image" if isinstance(env.unwrapped, HasModel) else ""
            return f"the cnn reads image observations (channels x height x width), not {_describe(obs)}{hint}"
        if body != "cnn" and _image(obs):
            return f"the {body} reads flat observations; for image observations use the cnn"
        if not (isinstance(act, spaces.Discrete) or (isinstance(act, spaces.Box) and len(act.shape) == 1)):
            return f"networks emit Discrete or 1-D Box actions, not {_describe(act)}"
        return None

    return rule


def generator(env: gym.Env) -> str | None:
    """Image generators: latent noise in (a flat Box), an image out (a Box C x H x W), and an
    env that serves real images (`real_batch`) and judges them."""
    obs, act = env.observation_space, env.action_space
    if not (isinstance(act, spaces.Box) and len(act.shape) == 3):
        return f"it answers with an image (a Box channels x height x width), not {_describe(act)} actions"
    if not (isinstance(obs, spaces.Box) and len(obs.shape) == 1):
        return f"it reads latent noise (a flat Box), not {_describe(obs)}"
    if not isinstance(env.unwrapped, ImageTask):
        return "it needs an env that serves real images (env.unwrapped.real_batch), like img:digits"
    return None


def text_writer(env: gym.Env) -> str | None:
    """Language-model agents: an env that shows a prompt and takes a response (text:sort)."""
    if not isinstance(env.unwrapped, WritesText):
        return "it writes responses to prompts; it plays the text env (text:sort, text:evens)"
    return None


def sb3(algo: str) -> Rule:
    """Stable-Baselines3 with an MlpPolicy: Discrete, MultiDiscrete or Box observations;
    DQN needs Discrete actions, PPO and A2C also take Box and MultiDiscrete ones."""

    def rule(env: gym.Env) -> str | None:
        obs, act = env.observation_space, env.action_space
        if not isinstance(obs, (spaces.Discrete, spaces.MultiDiscrete, spaces.Box)):
            return f"SB3's MlpPolicy reads Discrete, MultiDiscrete or Box observations, not {_describe(obs)}"
        allowed = (spaces.Discrete,) if algo == "dqn" else (spaces.Discrete, spaces.Box, spaces.MultiDiscrete)
        if not isinstance(act, allowed):
            return f"SB3 {algo.upper()} does not take {_describe(act)} actions"
        return None

    return rule


__all__ = ["Rule", "any_env", "discrete_actions", "generator", "model", "network", "sb3", "tables", "text_writer"]
