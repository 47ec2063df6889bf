"""SequencePrediction: tasks that ask an agent to remember, one token at a time.

An episode has an input phase (tokens are shown; actions are ignored) and an output
phase (the agent emits one token per step and earns 1/n_out for each correct one, so
the return is the episode's token accuracy). The observation is (token, phase) with
phase 0 = input, 1 = output. Tasks:

- copy:     show L tokens, then reproduce them in order (output phase shows a blank)
- reverse:  show L tokens, then reproduce them last to first
- parity:   show L bits, then say whether the number of ones is odd
- addition: show two L-digit numbers (base `vocab`, least significant digit first),
            then emit their L+1-digit sum, least significant digit first
- sine:     a noisy sine discretised into `vocab` levels; each step, predict the next level
- text:     a window of the shipped corpus; each step, predict the next character

copy, reverse, parity and addition need memory: a policy that sees only the current
observation is at chance in the output phase. `curriculum=True` starts at length 1 and
grows the length by one each time the last 20 episodes averaged >= 0.9 accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from arena import settings as typed
from arena.settings import setting
from envs.data import text_corpus, text_vocab
from envs.errors import EnvError
from envs.rendering import PygameRendering
from envs.vector import NativeVectorEnv, SeededDiscrete
from gymnasium.vector.utils import batch_space

TASKS = ("copy", "reverse", "parity", "addition", "sine", "text")
MEMORY_TASKS = ("copy", "reverse", "parity", "addition")
DEFAULT_VOCAB = {"copy": 4, "reverse": 4, "parity": 2, "addition": 10, "sine": 16}
MAX_LENGTH = 256
CURRICULUM_WINDOW, CURRICULUM_BAR = 20, 0.9


class SequenceError(EnvError):
    """A sequence task parameter is out of range."""


@dataclass(frozen=True)
class SequenceSettings:
    """SequencePrediction's kwargs, checked (type, range) before anything is built."""

    task: str = setting("copy", help="the task", choices=TASKS)
    length: int = setting(8, help="tokens to remember (or predict)", low=1, high=MAX_LENGTH)
    vocab: int | None = setting(None, help="answer tokens (null: the task's default)", low=2, high=64)
    curriculum: bool = setting(False, help="start at length 1 and grow when accuracy >= 0.9")


@dataclass(frozen=True)
class TaskSpec:
    """What a task's tokens are: `vocab` answers, `n_tokens` observable tokens (blank last)."""

    task: str
    length: int
    vocab: int

    @property
    def blank(self) -> int:
        return self.vocab

    @property
    def n_tokens(self) -> int:
        return self.vocab + 1

    def phases(self, length: int) -> tuple[int, int]:
        """(input steps, output steps) for an episode of this length."""
        if self.task in ("copy", "reverse"):
            return length, length
        if self.task == "parity":
            return length, 1
        if self.task == "addition":
            return 2 * length, length + 1
        return 0, length  # sine, text: predict at every step

    @property
    def max_steps(self) -> int:
        return sum(self.phases(self.length))


def task_spec(task: str, length: int, vocab: int | None) -> TaskSpec:
    """Check a task's parameters and fill in its vocabulary."""
    if task not in TASKS:
        raise SequenceError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    if not 1 <= int(length) <= MAX_LENGTH:
        raise SequenceError(f"length={length} is out of range; use 1..{MAX_LENGTH}")
    if task == "text":
        if vocab is not None and vocab != len(text_vocab()):
            raise SequenceError(f"task 'text' has the corpus's {len(text_vocab())} characters; leave vocab unset")
        return TaskSpec(task, int(length), len(text_vocab()))
    if task == "parity" and vocab not in (None, 2):
        raise SequenceError(f"task 'parity' works on bits; vocab={vocab} must be 2 or unset")
    v = DEFAULT_VOCAB[task] if vocab is None else int(vocab)
    high = 16 if task == "addition" else 64
    if not 2 <= v <= high:
        raise SequenceError(f"vocab={vocab} is out of range for {task!r}; use 2..{high}")
    return TaskSpec(task, int(length), v)


def make_episode(spec: TaskSpec, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One episode as (shown, targets): the token shown at each step, and the answer due
    at each output step. Both have n_in + n_out entries; targets are -1 in the input phase.
    """
    n_in, n_out = spec.phases(length)
    V = spec.vocab
    if spec.task in ("copy", "reverse", "parity"):
        x = rng.integers(V, size=length)
        answer = {"copy": x, "reverse": x[::-1], "parity": np.array([x.sum() % 2])}[spec.task]
        shown = np.concatenate([x, np.full(n_out, spec.blank)])
    elif spec.task == "addition":
        a, b = rng.integers(V, size=length), rng.integers(V, size=length)  # digits, least significant first
        total = sum(int(d) * V**i for i, d in enumerate(a)) + sum(int(d) * V**i for i, d in enumerate(b))
        answer = np.array([(total // V**i) % V for i in range(length + 1)])
        shown = np.concatenate([a, b, np.full(n_out, spec.blank)])
    elif spec.task == "sine":
        phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(8, 24)
        t = np.arange(length + 1)
        wave = np.sin(2 * np.pi * t / period + phase) + rng.normal(0, 0.1, size=length + 1)
        levels = np.clip(np.floor((wave + 1.2) / 2.4 * V), 0, V - 1).astype(np.int64)
        shown, answer = levels[:-1], levels[1:]
    else:  # text
        corpus = _corpus_tokens()
        start = int(rng.integers(len(corpus) - length - 1))
        window = corpus[start : start + length + 1]
        shown, answer = window[:-1], window[1:]
    targets = np.concatenate([np.full(n_in, -1), answer]).astype(np.int64)
    return shown.astype(np.int64), targets


_CORPUS: np.ndarray | None = None


def _corpus_tokens() -> np.ndarray:
    global _CORPUS
    if _CORPUS is None:
        index = {c: i for i, c in enumerate(text_vocab())}
        _CORPUS = np.array([index[c] for c in text_corpus()], dtype=np.int64)
    return _CORPUS


class Curriculum:
    """Grows the episode length by one whenever recent accuracy clears the bar."""

    def __init__(self, max_length: int, enabled: bool) -> None:
        self.max_length, self.enabled = max_length, enabled
        self.length = 1 if enabled else max_length
        self.recent: list[float] = []

    def record(self, accuracy: float) -> None:
        if not self.enabled or self.length >= self.max_length:
            return
        self.recent = (self.recent + [accuracy])[-CURRICULUM_WINDOW:]
        if len(self.recent) == CURRICULUM_WINDOW and np.mean(self.recent) >= CURRICULUM_BAR:
            self.length += 1
            self.recent = []


class SequencePredictionEnv(PygameRendering, gym.Env):
    """`gymnasium.make("arena/SequencePrediction-v0", task="copy", length=8)`.

    Observation: MultiDiscrete([vocab + 1, 2]) = (token, phase); the last token is the
    blank. Action: Discrete(vocab). Reward 1/n_out per correct output; the episode's
    return is its accuracy, also given as info["accuracy"] at the end.
    """

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        """kwargs: the fields of `SequenceSettings` (declared there once, checked here)."""
        self.settings = checked = typed.build(SequenceSettings, kwargs, SequenceError)
        task, length, vocab, curriculum = checked.task, checked.length, checked.vocab, checked.curriculum
        self.spec_ = task_spec(task, length, vocab)
        self.task, self.length, self.vocab = self.spec_.task, self.spec_.length, self.spec_.vocab
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise SequenceError(f"unknown render_mode {render_mode!r}; use one of {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.curriculum = Curriculum(self.length, bool(curriculum))
        self.observation_space = spaces.MultiDiscrete([self.spec_.n_tokens, 2])
        self.action_space = SeededDiscrete(self.vocab)
        self.max_steps = self.spec_.max_steps
        self.shown = np.zeros(0, dtype=np.int64)
        self.targets = np.zeros(0, dtype=np.int64)
        self.outputs: list[int] = []
        self.t = self.n_out = self.correct = 0
        self._font: Any = None

    @property
    def action_names(self) -> list[str]:
        return [self.token_text(i) for i in range(self.vocab)]

    def reading(self) -> bool:
        """Whether this step shows input (the action is not scored) rather than asks for output."""
        return self.t < len(self.targets) and self.targets[self.t] < 0

    def token_text(self, token: int) -> str:
        if token == self.spec_.blank:
            return "_"
        if self.task == "text":
            c = text_vocab()[token]
            return {"\n": "⏎", " ": "␣"}.get(c, c)
        return str(token) if self.vocab <= 10 else f"{token:x}" if self.vocab <= 16 else str(token)

    # ---------------------------------------------------------------- dynamics

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.follow(seed)  # type: ignore[attr-defined]  # a SeededDiscrete
        self.shown, self.targets = make_episode(self.spec_, self.curriculum.length, self.np_random)
        self.n_out = int((self.targets >= 0).sum())
        self.outputs, self.t, self.correct = [], 0, 0
        if self.render_mode == "human":
            self.render()
        return self._observe(), {"length": self.curriculum.length}

    def _observe(self) -> np.ndarray:
        t = min(self.t, len(self.shown) - 1)
        return np.array([self.shown[t], int(self.targets[t] >= 0)], dtype=np.int64)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = int(action)
        if not 0 <= a < self.vocab:
            raise SequenceError(f"action {action!r} is out of range; use a token in 0..{self.vocab - 1}")
        target = int(self.targets[self.t])
        reward = 0.0
        if target >= 0:
            self.outputs.append(a)
            if a == target:
                reward = 1.0 / self.n_out
                self.correct += 1
        self.t += 1
        terminated = self.t >= len(self.targets)
        info: dict[str, Any] = {}
        if terminated:
            info["accuracy"] = self.correct / self.n_out
            info["is_success"] = self.correct == self.n_out  # every output right (SB3's key)
            self.curriculum.record(info["accuracy"])
        if self.render_mode == "human":
            self.render()
        return self._observe(), reward, terminated, False, info

    def snapshot(self) -> tuple[int, tuple[int, ...], int]:
        return (self.t, tuple(self.outputs), self.correct)

    def restore(self, snapshot: tuple[int, tuple[int, ...], int]) -> None:
        self.t, outputs, self.correct = snapshot
        self.outputs = list(outputs)

    # ---------------------------------------------------------------- drawing

    def render_text(self) -> str:
        n_in = int((self.targets < 0).sum())
        inp = " ".join(self.token_text(int(x)) for x in self.shown[:n_in]) if n_in else "(none)"
        want = " ".join(self.token_text(int(x)) for x in self.targets[self.targets >= 0])
        got = " ".join(self.token_text(o) for o in self.outputs)
        return f"task {self.task}  step {self.t}/{len(self.targets)}\n in:   {inp}\n want: {want}\n out:  {got}\n"

    CELL = 34

    def frame_size(self) -> tuple[int, int]:
        return max(420, 70 + self.CELL * max(len(self.targets), 1)), 4 * self.CELL + 20

    def draw(self, surface: Any, show_values: bool = True, show_policy: bool = True) -> None:
        """The tape: shown tokens on top, the agent's outputs below, green right, red wrong.
        `show_values=False` hides the wanted outputs (a person playing must not see them)."""
        import pygame

        if self._font is None:
            pygame.font.init()
            self._font = pygame.font.Font(None, 24)
        font, px = self._font, self.CELL
        surface.fill((245, 244, 238))
        labels = ("shown", "want", "output")
        for row, label in enumerate(labels):
            surface.blit(font.render(label, True, (90, 90, 90)), (4, 12 + row * (px + 6)))
        out_index = 0
        for t in range(len(self.targets)):
            x = 66 + t * px
            output_step = self.targets[t] >= 0
            bg = (225, 232, 245) if output_step else (235, 235, 228)
            if t == self.t:
                pygame.draw.rect(surface, (250, 210, 120), (x, 4, px - 2, 3 * (px + 6)))
            pygame.draw.rect(surface, bg, (x + 1, 6, px - 4, px - 4))
            surface.blit(font.render(self.token_text(int(self.shown[t])), True, (30, 30, 30)), (x + 9, 12))
            if output_step:
                if show_values:
                    surface.blit(font.render(self.token_text(int(self.targets[t])), True, (120, 120, 120)),
                                 (x + 9, 12 + px + 6))
                if out_index < len(self.outputs) and t < self.t:
                    got = self.outputs[out_index]
                    ok = got == int(self.targets[t])
                    colour = (60, 160, 80) if ok else (200, 60, 50)
                    pygame.draw.rect(surface, colour, (x + 1, 6 + 2 * (px + 6), px - 4, px - 4))
                    surface.blit(font.render(self.token_text(got), True, (255, 255, 255)), (x + 9, 12 + 2 * (px + 6)))
                out_index += 1
        acc = f"correct {self.correct}/{self.n_out}" if self.n_out else ""
        surface.blit(font.render(acc, True, (60, 60, 60)), (4, 4 + 3 * (px + 6)))

    def window_title(self) -> str:
        return f"Arena SequencePrediction: {self.task}"


# --------------------------------------------------------------------------- batched


class SequenceVectorEnv(NativeVectorEnv):
    """N copies of a sequence task stepped together: `gymnasium.make_vec(
    "arena/SequencePrediction-v0", num_envs=N, vectorization_mode="vector_entry_point", task=...)`.

    Copy i reset with seed s + i matches SequencePredictionEnv reset with that seed, bit
    for bit (with the curriculum off; with it on, one curriculum serves all copies).
    info["accuracy"] (masked by info["_accuracy"]) reports each finished episode.
    """

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(num_envs)
        self.single = SequencePredictionEnv(**kwargs)
        self.spec_ = self.single.spec_
        self.curriculum = self.single.curriculum
        self.single_observation_space = self.single.observation_space
        self.single_action_space = self.single.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        T = self.spec_.max_steps
        self.shown = np.zeros((self.num_envs, T), dtype=np.int64)
        self.targets = np.full((self.num_envs, T), -1, dtype=np.int64)
        self.steps = np.ones(self.num_envs, dtype=np.int64)  # episode length per copy
        self.n_out = np.ones(self.num_envs, dtype=np.int64)
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        self.correct = np.zeros(self.num_envs, dtype=np.int64)
        self._rows = np.arange(self.num_envs)

    def _reset_copies(self, idx: np.ndarray, seeded: bool) -> None:
        length = self.curriculum.length
        for i in idx.tolist():  # each copy draws its episode from its own np_random
            shown, targets = make_episode(self.spec_, length, self.rng(i))
            n = len(targets)
            self.shown[i, :n], self.targets[i, :n], self.targets[i, n:] = shown, targets, -1
            self.steps[i], self.n_out[i] = n, int((targets >= 0).sum())
        self.t[idx] = 0
        self.correct[idx] = 0

    def _step_all(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        t = np.minimum(self.t, self.shown.shape[1] - 1)
        target = self.targets[self._rows, t]
        hit = (target >= 0) & (actions.astype(np.int64) == target)
        self.correct += hit
        rewards = hit / self.n_out
        self.t += 1
        terminated = self.t >= self.steps
        truncated = np.zeros(self.num_envs, dtype=bool)
        accuracy = self.correct / self.n_out
        for acc in accuracy[terminated].tolist():
            self.curriculum.record(acc)
        return rewards, terminated, truncated, {"accuracy": np.where(terminated, accuracy, 0.0), "_accuracy": terminated.copy(),
                                                "is_success": terminated & (self.correct == self.n_out),
                                                "_is_success": terminated.copy()}

    def _reset_info(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {"length": np.full(len(idx), self.curriculum.length, dtype=np.int64)}

    def _observe(self) -> np.ndarray:
        t = np.minimum(self.t, self.steps - 1)
        return np.stack([self.shown[self._rows, t], (self.targets[self._rows, t] >= 0).astype(np.int64)], axis=1)
