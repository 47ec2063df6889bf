"""Small MDPs from the textbook, built to show one effect each.

`arena/MaximizationBias-v0` is Sutton & Barto's Example 6.7: from A, "left" (action 0)
leads to B with reward 0 and "right" (action 1) ends the episode with reward 0; from B
each of `n_actions` actions ends the episode with a reward drawn from N(-0.1, 1). Left is
worse in expectation, but Q-learning's max over noisy estimates of B's actions makes it
look better for a while; Double Q-learning does not fall for it.

A offers `a_actions` actions (the book's 2: left and right; more are more ways right) and
B `n_actions`; the action space holds the larger count and `action_mask` (envs.abilities.
MasksActions) says which each state offers, so epsilon-greedy explores as in the book. An
action a state does not offer, taken anyway, acts as right in A and as any action in B.
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

    n_actions: int = setting(10, help="actions in B", low=1, high=10_000)
    a_actions: int = setting(2, help="actions in A: left, and a_actions - 1 ways right (the book: 2)", low=2,
                             high=10_000)
    mean: float = setting(-0.1, help="mean reward of B's actions", low=-1e6, high=1e6)
    std: float = setting(1.0, help="standard deviation of B's rewards", low=0.0, high=1e6)


class MaximizationBiasEnv(gym.Env):
    """States A=0, B=1, end=2; A offers `a_actions` actions (left = 0), B `n_actions`;
    rewards in B ~ N(mean, std)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    action_names = None

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        """kwargs: the fields of `MaximizationBiasSettings` (declared there once, checked here)."""
        self.settings = checked = typed.build(MaximizationBiasSettings, kwargs, EnvError)
        self.n_actions, self.mean, self.std = checked.n_actions, checked.mean, checked.std
        nA = max(checked.a_actions, checked.n_actions)
        self.action_mask = np.ones((3, nA), dtype=bool)
        self.action_mask[A, checked.a_actions:] = False
        self.action_mask[B, checked.n_actions:] = False
        self.observation_space = spaces.Discrete(3)
        self.action_space = SeededDiscrete(nA)
        self.render_mode = render_mode
        self.max_steps = 2
        S = 3
        next_state = np.full((S, nA, 1), END, dtype=np.int64)
        next_state[A, 0, 0] = B
        next_state[END] = END
        R = np.zeros((S, nA))
        R[B] = self.mean
        self.mdp = GridMDP(
            next_state=next_state, prob=np.ones((S, nA, 1)), reward=R[:, :, None].copy(),
            terminal=np.array([False, False, True]), start=np.array([1.0, 0.0, 0.0]),
            cell=np.array([[0, 0], [0, 1], [0, 2]]), shape=(1, 3), allowed=self.action_mask,
        )
        self.s = A

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.follow(seed)  # type: ignore[attr-defined]  # a SeededDiscrete
        self.s = A
        return self.s, {"action_mask": self.action_mask[A].copy()}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict]:
        a = int(action)
        if self.s == A:
            self.s, r = (B, 0.0) if a == 0 else (END, 0.0)
        else:
            self.s, r = END, float(self.np_random.normal(self.mean, self.std))
        return self.s, r, self.s == END, False, {"action_mask": self.action_mask[self.s].copy()}

    def render(self) -> str:
        return ["[A] B  end", " A [B] end", " A  B [end]"][self.s] + "\n"

    def snapshot(self) -> int:
        return self.s

    def restore(self, snapshot: int) -> None:
        self.s = snapshot
