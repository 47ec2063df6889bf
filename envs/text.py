"""TextGeneration: a prompt, a response written token by token, and a judge that scores it.

The env of ChatGPT's three training stages in miniature (agents/language.py trains them).
An episode shows a prompt of `prompt_len` digits; the agent writes a response one token
per step (a digit, or end-of-sequence) until it emits end-of-sequence or has written
`max_len` digits. The reward comes once, at the end, from the judge:

- `judge="gold"`: the task's hidden rule, standing in for the human whose preferences
  the reward model learns;
- `judge="reward-model"`: a learned reward model (the proxy): the one given as
  `reward_model=PATH` (a `reward-model` checkpoint), else one trained on first use from
  pairs the gold rule labelled, and cached (safetensors, checksummed, retrained when
  damaged) like the image env's judge.

Whatever the judge, the last step's info carries `gold`, `proxy` (None without a reward
model) and `length` (digits written). Tasks:

- `sort`:  answer with the prompt's digits in ascending order. The labels of preference
  pairs follow the gold rule: a reward model can learn exactly what is wanted.
- `evens`: answer with the prompt's even digits, in their order. The labellers favour
  the longer answer (`length_bias`, default 0.45 of the pairs whose lengths differ), as
  human raters of chatbots do: a reward model learns that longer is better, a shortcut
  the gold rule does not reward, and RL against it writes long wrong answers.

Gold score: the share of positions where the response has the right digit, over the
longer of response and right answer: 1 for the right answer exactly, less for a wrong
digit, a missing one or one too many.
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from arena import settings as typed
from envs.rendering import PygameRendering
from envs.text_task import JUDGES, TASKS, TextError, TextSettings, TextTask
from envs.vector import SeededDiscrete


class TextGenerationEnv(PygameRendering, gym.Env):
    """`gymnasium.make("arena/TextGeneration-v0", task="sort")`, alias `text:sort`.

    Observation: MultiDiscrete of prompt_len + max_len tokens: the prompt, the response
    so far, then `pad`. Action: Discrete(vocab + 1): a digit, or `vocab` = end-of-sequence.
    Reward 0 until the last step, then the judge's score of the response.
    """

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        """kwargs: the fields of `TextSettings` (declared there once, checked here)."""
        self.settings = s = typed.build(TextSettings, kwargs, TextError)
        self.text = TextTask.of(s)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise TextError(f"unknown render_mode {render_mode!r}; use one of {self.metadata['render_modes']}")
        self.render_mode = render_mode
        T = self.text
        self.observation_space = spaces.MultiDiscrete([T.n_tokens] * (T.prompt_len + T.max_len))
        self.action_space = SeededDiscrete(T.n_actions)
        self.max_steps = T.max_len
        self.prompt = np.zeros(T.prompt_len, dtype=np.int64)
        self.response: list[int] = []
        self.ended = False
        self.figures: dict[str, Any] = {}
        self.trace: dict[str, np.ndarray] = {}  # what the writer showed of its episode (replays): log_ratio, proxy
        self._scorer: Callable[[np.ndarray, list[np.ndarray]], np.ndarray] | None = None
        self._font: Any = None
        self._small_font: Any = None
        if s.reward_model is not None:
            self.scorer  # a bad checkpoint is refused now, not mid-episode

    @property
    def action_names(self) -> list[str]:
        return [f"{d:x}" for d in range(self.text.vocab)] + ["end"]

    @property
    def scorer(self) -> Callable[[np.ndarray, list[np.ndarray]], np.ndarray] | None:
        """The reward model's score of (prompts (B, P), responses): the proxy; None when the
        env has none (gold judge, no reward_model given)."""
        s = self.settings
        if self._scorer is None and (s.judge == "reward-model" or s.reward_model is not None):
            from agents.language import reward_model_for

            self._scorer = reward_model_for(self.text, s.reward_model).score
        return self._scorer

    # ---------------------------------------------------------------- dynamics

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.follow(seed)  # type: ignore[attr-defined]  # a SeededDiscrete
        self.prompt = self.text.prompts(1, self.np_random)[0]
        self.response, self.ended, self.figures = [], False, {}
        if self.render_mode == "human":
            self.render()
        return self._observe(), {}

    def _observe(self) -> np.ndarray:
        T = self.text
        obs = np.full(T.prompt_len + T.max_len, T.pad, dtype=np.int64)
        obs[: T.prompt_len] = self.prompt
        obs[T.prompt_len: T.prompt_len + len(self.response)] = self.response
        return obs

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        T = self.text
        try:
            a = int(action)
        except (TypeError, ValueError):
            raise TextError(f"action {action!r} is not a token; use 0..{T.eos} ({T.eos}: end of sequence)") from None
        if not 0 <= a <= T.eos or a != action:
            raise TextError(f"action {action!r} is out of range; use a digit 0..{T.vocab - 1} or {T.eos} (end of sequence)")
        if self.ended:
            raise TextError("the response has ended; call reset() before writing another")
        if a == T.eos:
            self.ended = True
        else:
            self.response.append(a)
            self.ended = len(self.response) >= T.max_len
        reward, info = 0.0, {}
        if self.ended:
            info = self.judge_response()
            reward = info["gold"] if self.settings.judge == "gold" else info["proxy"]
        if self.render_mode == "human":
            self.render()
        return self._observe(), float(reward), self.ended, False, info

    def judge_response(self) -> dict[str, Any]:
        """gold, proxy, length and is_success (gold perfect) of the response as it stands."""
        response = np.array(self.response, dtype=np.int64)
        gold = self.text.gold(self.prompt, response)
        scorer = self.scorer
        proxy = None if scorer is None else float(scorer(self.prompt[None], [response])[0])
        self.figures = {"gold": gold, "proxy": proxy, "length": len(response), "is_success": gold == 1.0}
        return dict(self.figures)

    def snapshot(self) -> tuple[tuple[int, ...], bool, tuple[tuple[str, Any], ...]]:
        return tuple(self.response), self.ended, tuple(self.figures.items())

    def restore(self, snapshot: tuple[tuple[int, ...], bool, tuple[tuple[str, Any], ...]]) -> None:
        response, self.ended, figures = snapshot
        self.response, self.figures = list(response), dict(figures)

    def set_overlay(self, V: np.ndarray | None = None, policy: np.ndarray | None = None, **extra: Any) -> None:
        """What a writer showed of its episode (a replay's overlay): per token `log_ratio`, its
        log pi(a) - log pi_ref(a) against its reference, and `proxy`, its reward model's score."""
        self.trace = {k: np.asarray(extra[k], dtype=np.float64) for k in ("log_ratio", "proxy") if k in extra}

    # ---------------------------------------------------------------- drawing

    def render_text(self) -> str:
        T = self.text
        lines = [f"task {T.task}  judge {self.settings.judge}",
                 f" prompt:   {T.text(self.prompt)}",
                 f" want:     {T.text(T.answer(self.prompt))}",
                 f" response: {T.text(self.response + ([T.eos] if self.ended and len(self.response) < T.max_len else []))}"]
        if self.figures:
            proxy = self.figures["proxy"]
            lines.append(f" gold {self.figures['gold']:.2f}" + ("" if proxy is None else f"  proxy {proxy:+.2f}"))
        return "\n".join(lines) + "\n"

    CELL = 34

    def frame_size(self) -> tuple[int, int]:
        return max(520, 120 + self.CELL * (self.text.max_len + 1)), 5 * self.CELL + 56

    def draw(self, surface: Any, show_values: bool = True, show_policy: bool = True) -> None:
        """The tape: the prompt, the right answer (`show_values`; hidden from a person playing),
        and the response, green where a digit is right, red where wrong; gold and proxy below."""
        import pygame

        if self._font is None:
            pygame.font.init()
            self._font = pygame.font.Font(None, 24)
        font, px, T = self._font, self.CELL, self.text
        surface.fill((245, 244, 238))
        want = T.answer(self.prompt)
        rows: list[tuple[str, list[int], np.ndarray | None]] = [("prompt", [int(t) for t in self.prompt], None)]
        if show_values:
            rows.append(("want", [int(t) for t in want] + [T.eos], None))
        written = self.response + ([T.eos] if self.ended and len(self.response) < T.max_len else [])
        rows.append(("response", written, want))
        left = 112
        for row, (label, tokens, check) in enumerate(rows):
            y = 6 + row * (px + 6)
            surface.blit(font.render(label, True, (90, 90, 90)), (4, y + 6))
            for i, tok in enumerate(tokens):
                x = left + i * px
                colour = (225, 232, 245)
                if check is not None:
                    right = (i < len(check) and tok == check[i]) or (tok == T.eos and i == len(check))
                    colour = (60, 160, 80) if right else (200, 60, 50)
                pygame.draw.rect(surface, colour, (x + 1, y, px - 4, px - 4))
                ink = (255, 255, 255) if check is not None else (30, 30, 30)
                surface.blit(font.render("end" if tok == T.eos else f"{tok:x}", True, ink), (x + 6, y + 8))
        y = 6 + len(rows) * (px + 6)
        ratios = self.trace.get("log_ratio")
        if ratios is not None:  # each written token's log pi/pi_ref: red where the policy likes it more, blue less
            surface.blit(font.render("log ratio", True, (90, 90, 90)), (4, y + 6))
            for i, value in enumerate(ratios[: len(written)]):
                strength = min(1.0, abs(float(value)) / 2.0)
                tint = (255, int(255 - 150 * strength), int(255 - 150 * strength)) if value > 0 else \
                    (int(255 - 150 * strength), int(255 - 110 * strength), 255)
                pygame.draw.rect(surface, tint, (left + i * px + 1, y, px - 4, px - 4))
                surface.blit(self._small().render(f"{value:+.1f}", True, (30, 30, 30)), (left + i * px + 2, y + 10))
            y += px + 6
        figures = []
        if self.figures:
            figures.append(f"gold {self.figures['gold']:.2f}")
            proxy = self.figures["proxy"]
            if proxy is None and self.ended and "proxy" in self.trace and len(self.trace["proxy"]):
                proxy = float(self.trace["proxy"][-1])  # the writer's own reward model
            if proxy is not None:
                figures.append(f"proxy {proxy:+.2f} (reward model)")
        surface.blit(font.render("    ".join(figures), True, (40, 40, 40)), (4, y + 6))
        if ratios is not None:
            legend = "log ratio: log pi(token) - log pi_ref(token); red: the policy likes it more than its reference"
            surface.blit(self._small().render(legend, True, (90, 90, 90)), (4, y + 30))

    def _small(self) -> Any:
        import pygame

        if self._small_font is None:
            self._small_font = pygame.font.Font(None, 18)
        return self._small_font

    def window_title(self) -> str:
        return f"Arena TextGeneration: {self.text.task}"


__all__ = ["JUDGES", "TASKS", "TextError", "TextGenerationEnv", "TextSettings", "TextTask"]
