"""The rules of the text tasks (envs/text.py), as plain functions of token arrays: prompts,
the right answer, the gold score, candidate answers and the labellers' verdicts. A leaf
of envs/: the language-model agents (agents/language.py) read tasks from checkpoints
with it, without importing the env, whose reward-model judge imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from arena.settings import setting
from envs.errors import EnvError

TASKS = ("sort", "evens")
JUDGES = ("gold", "reward-model")
LENGTH_BIAS = {"sort": 0.0, "evens": 0.45}  # the labellers' default taste for longer answers
MAX_PROMPT = 16
MAX_RESPONSE = 32
EDITS = 3  # a candidate answer is the right one after 0..EDITS random edits


class TextError(EnvError):
    """A text-generation setting is out of range, or a response is malformed."""


@dataclass(frozen=True)
class TextSettings:
    """TextGeneration's kwargs, checked (type, range) before anything is built."""

    task: str = setting("sort", help="sort: digits ascending; evens: the even digits (its labellers like long answers)",
                        choices=TASKS)
    judge: str = setting("gold", help="who scores a response: the hidden gold rule, or a learned reward model",
                         choices=JUDGES)
    prompt_len: int = setting(4, help="digits in a prompt", low=1, high=MAX_PROMPT)
    max_len: int | None = setting(None, help="the most digits a response may have (null: prompt_len + 4)", low=1,
                                  high=MAX_RESPONSE)
    vocab: int = setting(10, help="digits 0..vocab-1", low=2, high=16)
    length_bias: float | None = setting(None, help="share of labelled pairs (of unequal lengths) where the labeller "
                                        "picked the longer answer (null: the task's default)", low=0.0, high=1.0)
    reward_model: str | None = setting(None, help="a reward-model checkpoint to judge with (null: the cached one, "
                                       "trained on first use)")


@dataclass(frozen=True)
class TextTask:
    """One task's rules as plain functions of token arrays: prompts, the right answer, the gold
    score, candidate answers and how a labeller compares two. Digits are 0..vocab-1;
    `eos` ends a response; `sep` separates prompt and response and `pad` fills, in the
    sequences language models read (agents/language.py)."""

    task: str
    prompt_len: int
    max_len: int
    vocab: int
    length_bias: float

    @classmethod
    def of(cls, s: TextSettings) -> "TextTask":
        max_len = s.prompt_len + 4 if s.max_len is None else s.max_len
        if max_len > MAX_RESPONSE:
            raise TextError(f"prompt_len={s.prompt_len} leaves max_len unset at {max_len}, above {MAX_RESPONSE}; "
                            f"set max_len=1..{MAX_RESPONSE}")
        if max_len < s.prompt_len:
            raise TextError(f"max_len={max_len} is shorter than the longest right answer ({s.prompt_len} digits); "
                            f"use max_len >= prompt_len")
        bias = LENGTH_BIAS[s.task] if s.length_bias is None else float(s.length_bias)
        return cls(s.task, s.prompt_len, max_len, s.vocab, bias)

    @property
    def eos(self) -> int:
        return self.vocab

    @property
    def sep(self) -> int:
        return self.vocab + 1

    @property
    def pad(self) -> int:
        return self.vocab + 2

    @property
    def n_tokens(self) -> int:
        """Every token a sequence may hold: digits, eos, sep, pad."""
        return self.vocab + 3

    @property
    def n_actions(self) -> int:
        """What a writer may emit: a digit or eos."""
        return self.vocab + 1

    def key(self) -> dict[str, Any]:
        """What a reward model for this task must have been trained for."""
        return {"task": self.task, "prompt_len": self.prompt_len, "max_len": self.max_len, "vocab": self.vocab,
                "length_bias": self.length_bias}

    def prompts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` prompts (n, prompt_len) of uniform digits."""
        return rng.integers(self.vocab, size=(n, self.prompt_len)).astype(np.int64)

    def answer(self, prompt: np.ndarray) -> np.ndarray:
        """The right response to one prompt (digits, no eos)."""
        p = np.asarray(prompt, dtype=np.int64)
        return np.sort(p) if self.task == "sort" else p[p % 2 == 0]

    def gold(self, prompt: np.ndarray, response: np.ndarray) -> float:
        """The share of positions holding the right digit, over the longer of response and answer."""
        want, got = self.answer(prompt), np.asarray(response, dtype=np.int64)
        n = min(len(want), len(got))
        longest = max(len(want), len(got))
        return 1.0 if longest == 0 else float((want[:n] == got[:n]).sum()) / longest

    def candidate(self, prompt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The right answer after 0..EDITS random edits (change, drop, insert or append a digit):
        answers of every quality and length, for preference pairs and the cached reward model."""
        r = list(self.answer(prompt))
        for _ in range(int(rng.integers(EDITS + 1))):
            kind = int(rng.integers(4))
            if kind == 0 and r:
                r[int(rng.integers(len(r)))] = int(rng.integers(self.vocab))
            elif kind == 1 and r:
                del r[int(rng.integers(len(r)))]
            elif kind == 2 and len(r) < self.max_len:
                r.insert(int(rng.integers(len(r) + 1)), int(rng.integers(self.vocab)))
            elif len(r) < self.max_len:
                r.append(int(rng.integers(self.vocab)))
        return np.array(r, dtype=np.int64)

    def prefers_first(self, prompt: np.ndarray, a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                      noise: float = 0.0) -> bool | None:
        """A labeller's verdict on (a, b): True when a is preferred, None when they cannot tell.
        With probability `length_bias` (lengths differing) the longer answer wins; otherwise
        the higher gold score does; then `noise` flips the verdict, as labellers disagree."""
        if len(a) != len(b) and rng.random() < self.length_bias:
            first = len(a) > len(b)
        else:
            ga, gb = self.gold(prompt, a), self.gold(prompt, b)
            if ga == gb:
                return None
            first = ga > gb
        return (not first) if rng.random() < noise else first

    def sequence(self, prompt: np.ndarray, response: np.ndarray, ended: bool) -> np.ndarray:
        """What a language model reads: prompt, sep, response (and eos when it ended)."""
        tail = [self.eos] if ended else []
        return np.concatenate([prompt, [self.sep], response, tail]).astype(np.int64)

    @property
    def longest_sequence(self) -> int:
        return self.prompt_len + 1 + self.max_len + 1

    def text(self, tokens: Any) -> str:
        """Tokens in words: digits as hex above 9, eos as '.'."""
        return " ".join("." if t == self.eos else f"{int(t):x}" for t in tokens)


__all__ = ["JUDGES", "LENGTH_BIAS", "MAX_PROMPT", "MAX_RESPONSE", "TASKS", "TextError", "TextSettings", "TextTask"]
