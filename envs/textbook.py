"""Small MDPs from the textbook, built to show one effect each.

`arena/MaximizationBias-v0` is Sutton & Barto's Example 6.7: from A, "left" (action 0)
leads to B with reward 0 and "right" (any other action) ends the episode with reward 0;
from B every action ends the episode with a reward drawn from N(-0.1, 1). Left is worse
in expectation, but Q-learning's max over noisy estimates of B's actions makes it look
better for a while; Double Q-learning does not fall for it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dataclasses import dataclass

from arena import settings as typed
from arena.settings import setting
from envs.errors import EnvError
from envs.vector import SeededDiscrete
from envs.grid import GridMDP

A, B, END = 0, 1, 2


@dataclass(frozen=True)
class MaximizationBiasSettings:
    """The maximisation-bias MDP's kwargs."""

    n_actions: int = setting(10, help="actions in B (and left/right in A)", low=2, high=10_000)
    mean: float = setting(-0.1, help="mean reward of B's actions", low=-1e6, high=1e6)
    std: float = setting(1.0, help="standard deviation of B's rewards", low=0.0, high=1e6)


class MaximizationBiasEnv(gym.Env):
    """States A=0, B=1, end=2; `n_actions` actions (left = 0 in A); rewards in B ~ N(mean, std)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    action_names = None

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        """kwargs: the fields of `MaximizationBiasSettings` (declared there once, checked here)."""
        self.settings = checked = typed.build(MaximizationBiasSettings, kwargs, EnvError)
        self.n_actions, self.mean, self.std = checked.n_actions, checked.mean, checked.std
        self.observation_space = spaces.Discrete(3)
        self.action_space = SeededDiscrete(self.n_actions)
        self.render_mode = render_mode
        self.max_steps = 2
        S, nA = 3, self.n_actions
        next_state = np.full((S, nA, 1), END, dtype=np.int64)
        next_state[A, 0, 0] = B
        next_state[END] = END
        R = np.zeros((S, nA))
        R[B] = self.mean
        self.mdp = GridMDP(
            next_state=next_state, prob=np.ones((S, nA, 1)), reward=R[:, :, None].copy(),
            terminal=np.array([False, False, True]), start=np.array([1.0, 0.0, 0.0]),
            cell=np.array([[0, 0], [0, 1], [0, 2]]), shape=(1, 3),
        )
        self.s = A

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.follow(seed)  # type: ignore[attr-defined]  # a SeededDiscrete
        self.s = A
        return self.s, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict]:
        a = int(action)
        if self.s == A:
            self.s, r = (B, 0.0) if a == 0 else (END, 0.0)
        else:
            self.s, r = END, float(self.np_random.normal(self.mean, self.std))
        return self.s, r, self.s == END, False, {}

    def render(self) -> str:
        return ["[A] B  end", " A [B] end", " A  B [end]"][self.s] + "\n"

    def snapshot(self) -> int:
        return self.s

    def restore(self, snapshot: int) -> None:
        self.s = snapshot
