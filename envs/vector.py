"""What Arena's native batched envs share: counter-based randomness and autoreset.

A native batched env steps N copies of an env with a handful of NumPy calls, and copy i
reproduces, bit for bit, the single env reset with the same seed. Two things make that
possible:

- Randomness comes from a counter-based generator: the t-th uniform of an episode is a
  hash of (episode key, t) (SplitMix64), which NumPy computes for all copies at once
  and the single env computes the same way. A seeded reset draws the first key from
  `np_random` (seeded as Gymnasium seeds it); each later episode's key is a hash of the
  one before, so autoresets need no per-copy Python work.
- Autoreset follows Gymnasium's vector API (`AutoresetMode.NEXT_STEP`): the step after a
  copy's episode ends resets that copy, ignoring its action, and reports reward 0 and
  terminated = truncated = False. A learner must not treat that step as a transition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv

MASK64 = (1 << 64) - 1
GOLDEN, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def counter_uniform(key: int, t: int) -> float:
    """The t-th uniform in [0, 1) of the stream `key` (SplitMix64 of key + t)."""
    return (counter_uniform_bits((key + t) & MASK64) >> 11) * 2.0**-53


def counter_uniforms(keys: np.ndarray, t: np.ndarray) -> np.ndarray:
    """counter_uniform for arrays of keys and counters (uint64 arithmetic wraps like the mask)."""
    return uniform_of(keys, t.astype(np.uint64))


def uniform_of(key: Any, t: Any) -> Any:
    """counter_uniform(key, t) in uint64 arithmetic: on arrays, and on scalars inside the
    compiled loops (see stream_kernels), where Python's integers are not to be had."""
    return (_mix(key + np.uint64(t)) >> np.uint64(11)) * 2.0**-53


def episode_key(rng: np.random.Generator) -> int:
    """The stream key of the first episode after a seeded reset, drawn from np_random."""
    return int(rng.integers(0, 2**63))


NEXT_KEY_SALT = 0x5DEECE66DD15EA5E
START_SALT = 0x2545F4914F6CDD1D


def next_key(key: int) -> int:
    """The key of the episode after the one with `key`: episodes chain without np_random."""
    return int(counter_uniform_bits(key ^ NEXT_KEY_SALT))


def next_keys(keys: np.ndarray) -> np.ndarray:
    return _mix_array(keys ^ np.uint64(NEXT_KEY_SALT))


def start_uniform(key: int) -> float:
    """The uniform an episode with `key` uses to pick its start state."""
    return counter_uniform(key ^ START_SALT, 0)


def start_uniforms(keys: np.ndarray) -> np.ndarray:
    return counter_uniforms(keys ^ np.uint64(START_SALT), np.zeros(len(keys), dtype=np.uint64))


# --------------------------------------------------------------------------- NumPy's seeding, compiled
#
# A seeded reset takes its first stream key from np_random, which Gymnasium seeds as
# Generator(PCG64(SeedSequence(seed))); a training unit's env seed is
# SeedSequence([run seed, unit]).generate_state(1)[0] (agents.training.episode_seed).
# Making those objects costs ~30 us each: for 65536 copies, or one short episode, it is
# most of the work. The functions below compute the same numbers without the objects:
# SeedSequence's hash (numpy/random/bit_generator.pyx) and PCG64's seeding and first
# output (XSL-RR 128/64), in uint64 arithmetic. Tests hold them equal to NumPy's.

_SS_INIT_A, _SS_MULT_A, _SS_INIT_B, _SS_MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_SS_MIX_L, _SS_MIX_R = 0xCA01F9DD, 0x4973F715
_PCG_MULT_HI, _PCG_MULT_LO = 0x2360ED051FC65DA4, 0x4385DF649FCCF645


def _hashmix(value, h):  # pragma: no cover - compiled
    """SeedSequence's hashmix on 32-bit words held in uint64: (mixed value, next hash constant)."""
    m = np.uint64(0xFFFFFFFF)
    value = (value ^ h) & m
    h = (h * np.uint64(_SS_MULT_A)) & m
    value = (value * h) & m
    return value ^ (value >> np.uint64(16)), h


def _entropy_mix(x, y):  # pragma: no cover - compiled
    m = np.uint64(0xFFFFFFFF)
    r = (np.uint64(_SS_MIX_L) * x - np.uint64(_SS_MIX_R) * y) & m
    return r ^ (r >> np.uint64(16))


def _put_words(x, out, n):  # pragma: no cover - compiled
    """Append x's 32-bit words, lowest first (0 is one word), as SeedSequence reads an int."""
    out[n] = x & np.uint64(0xFFFFFFFF)
    n += 1
    if x >> np.uint64(32):
        out[n] = x >> np.uint64(32)
        n += 1
    return n


def _seed_sequence(entropy, length, n_words):  # pragma: no cover - compiled
    """SeedSequence(entropy[:length] as one int sequence).generate_state(n_words) (uint32 words in uint64)."""
    m = np.uint64(0xFFFFFFFF)
    h = np.uint64(_SS_INIT_A)
    pool = np.zeros(4, dtype=np.uint64)
    for i in range(4):
        pool[i], h = _hashmix(entropy[i] if i < length else np.uint64(0), h)
    for src in range(4):
        for dst in range(4):
            if src != dst:
                mixed, h = _hashmix(pool[src], h)
                pool[dst] = _entropy_mix(pool[dst], mixed)
    for src in range(4, length):
        for dst in range(4):
            mixed, h = _hashmix(entropy[src], h)
            pool[dst] = _entropy_mix(pool[dst], mixed)
    out = np.empty(n_words, dtype=np.uint64)
    hb = np.uint64(_SS_INIT_B)
    for i in range(n_words):
        v = pool[i % 4] ^ hb
        hb = (hb * np.uint64(_SS_MULT_B)) & m
        v = (v * hb) & m
        out[i] = v ^ (v >> np.uint64(16))
    return out


def _mul_64x64(a, b):  # pragma: no cover - compiled
    """The 128-bit product of two uint64 as (high, low)."""
    m = np.uint64(0xFFFFFFFF)
    a_lo, a_hi, b_lo, b_hi = a & m, a >> np.uint64(32), b & m, b >> np.uint64(32)
    lo_lo, hi_lo, lo_hi, hi_hi = a_lo * b_lo, a_hi * b_lo, a_lo * b_hi, a_hi * b_hi
    cross = (lo_lo >> np.uint64(32)) + (hi_lo & m) + lo_hi
    return hi_hi + (hi_lo >> np.uint64(32)) + (cross >> np.uint64(32)), (cross << np.uint64(32)) | (lo_lo & m)


def _pcg_step(hi, lo, inc_hi, inc_lo):  # pragma: no cover - compiled
    """PCG64's state transition: state * MULT + inc (mod 2^128)."""
    p_hi, p_lo = _mul_64x64(lo, np.uint64(_PCG_MULT_LO))
    p_hi += hi * np.uint64(_PCG_MULT_LO) + lo * np.uint64(_PCG_MULT_HI)
    new_lo = p_lo + inc_lo
    return p_hi + inc_hi + np.uint64(new_lo < p_lo), new_lo


def seeded_keys(seeds):  # pragma: no cover - compiled
    """episode_key(Generator(PCG64(SeedSequence(seed)))) for each uint64 seed: the stream key
    a GridWorld's seeded reset draws (PCG64's first output; integers(0, 2**63) keeps its top 63 bits)."""
    out = np.empty(len(seeds), dtype=np.uint64)
    entropy = np.zeros(2, dtype=np.uint64)
    for i in range(len(seeds)):
        w = _seed_sequence(entropy, _put_words(seeds[i], entropy, 0), 8)
        v0, v1 = w[0] | (w[1] << np.uint64(32)), w[2] | (w[3] << np.uint64(32))  # initial state (high, low)
        v2, v3 = w[4] | (w[5] << np.uint64(32)), w[6] | (w[7] << np.uint64(32))  # stream
        inc_hi, inc_lo = (v2 << np.uint64(1)) | (v3 >> np.uint64(63)), (v3 << np.uint64(1)) | np.uint64(1)
        hi, lo = _pcg_step(np.uint64(0), np.uint64(0), inc_hi, inc_lo)
        lo2 = lo + v1
        hi, lo = _pcg_step(hi + v0 + np.uint64(lo2 < lo), lo2, inc_hi, inc_lo)
        hi, lo = _pcg_step(hi, lo, inc_hi, inc_lo)  # next64 steps, then outputs
        x, rot = hi ^ lo, hi >> np.uint64(58)
        out[i] = ((x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))) >> np.uint64(1)
    return out


def unit_seeds(seed, first, count):  # pragma: no cover - compiled
    """SeedSequence([seed, index]).generate_state(1)[0] for index = first .. first + count - 1:
    agents.training.episode_seed for a block of training units."""
    out = np.empty(count, dtype=np.uint64)
    entropy = np.zeros(4, dtype=np.uint64)
    for i in range(count):
        n = _put_words(seed, entropy, 0)
        n = _put_words(first + np.uint64(i), entropy, n)
        out[i] = _seed_sequence(entropy, n, 1)[0]
    return out


_SEEDING: dict[str, Any] = {}


def seeding_kernels() -> tuple[Any, Any]:
    """(seeded_keys, unit_seeds) compiled; the helpers they call are compiled with them."""
    if not _SEEDING:
        import numba

        module = globals()
        for name in ("_hashmix", "_entropy_mix", "_put_words", "_seed_sequence", "_mul_64x64", "_pcg_step"):
            module[name] = numba.njit(cache=True, inline="always")(module[name])
        _SEEDING.update(keys=numba.njit(cache=True)(seeded_keys), units=numba.njit(cache=True)(unit_seeds))
    return _SEEDING["keys"], _SEEDING["units"]


def first_keys(seeds: list[int]) -> np.ndarray:
    """The stream keys seeded resets with `seeds` draw (uint64), without making a Generator per seed."""
    if all(0 <= s < 2**64 for s in seeds):
        return seeding_kernels()[0](np.array(seeds, dtype=np.uint64))
    return np.array([episode_key(seeding.np_random(s)[0]) for s in seeds], dtype=np.uint64)  # NumPy's own


def counter_uniform_bits(z: int) -> int:
    """SplitMix64's output for state z (64 bits)."""
    z = (z + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def _mix_array(z: np.ndarray) -> np.ndarray:
    """counter_uniform_bits in uint64 arithmetic."""
    z = z + np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


_mix = _mix_array  # what uniform_of calls: replaced by its compiled form in stream_kernels
_KERNELS: dict[str, Any] = {}


def stream_kernels() -> tuple[Any, Any]:
    """(mix, uniform): _mix_array and uniform_of compiled by Numba, for compiled loops that
    must draw exactly what the envs draw. Numba is slow to import, so only they import it."""
    if not _KERNELS:
        import numba

        global _mix
        _mix = numba.njit(cache=True)(_mix_array)
        _KERNELS.update(mix=_mix, uniform=numba.njit(cache=True)(uniform_of))
    return _KERNELS["mix"], _KERNELS["uniform"]


class SeededDiscrete(spaces.Discrete):
    """Discrete actions whose sampling follows the env's reset seed: after reset(seed=s) the
    space samples from a generator seeded with SeedSequence(s), so one seed drives every
    stream. The generator is made when something first samples, not at each reset: seeding
    costs more than a few grid steps, and learners rarely sample the action space."""

    _pending: int | None = None

    def follow(self, seed: int) -> None:
        """Seed from the env's reset seed, on first use."""
        self._pending, self._np_random = seed, None  # type: ignore[assignment]  # made again on first use

    @property
    def np_random(self) -> np.random.Generator:
        if self._pending is not None:
            self.seed(int(np.random.SeedSequence(self._pending).generate_state(1)[0]))
            self._pending = None
        return super().np_random


def copy_seeds(seed: int | list[int | None] | None, n: int) -> list[int | None]:
    """Per-copy seeds as Gymnasium's vector envs derive them: seed, seed + 1, ..."""
    if seed is None:
        return [None] * n
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + i for i in range(n)]
    if len(seed) != n:
        raise ValueError(f"got {len(seed)} seeds for {n} copies; give one per copy or a single int")
    return list(seed)


class NativeVectorEnv(VectorEnv):
    """Bookkeeping for N copies: per-copy np_random, and which copies reset on this step.

    Subclasses implement `_reset_copies(idx)` (start new episodes for those copies) and
    `_step_all(actions)` (advance every copy; returns rewards, terminated, truncated).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs={num_envs}; use at least 1 copy")
        self.num_envs = int(num_envs)
        self.seeds: list[int | None] = [None] * self.num_envs  # each copy's last reset seed
        self._rngs: dict[int, np.random.Generator] = {}  # made on first use: 65536 Generators take seconds
        self.seed_array: np.ndarray | None = None  # the seeds as uint64 after reset(seed=int), for compiled seeding
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)

    def rng(self, i: int) -> np.random.Generator:
        """Copy i's np_random: seeded from its last reset seed as the single env's (Gymnasium's
        seeding), made when first asked for. Subclasses that compute a seeded reset's draws
        themselves (the grid's stream keys, `first_keys`) never ask."""
        if i not in self._rngs:
            self._rngs[i] = seeding.np_random(self.seeds[i])[0]
        return self._rngs[i]

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if isinstance(seed, (int, np.integer)):  # seed, seed + 1, ...: no Python loop over 65536 copies
            if seed < 0:
                raise ValueError(f"seed={seed}; seeds are non-negative integers")
            self.seeds, self._rngs = list(range(int(seed), int(seed) + self.num_envs)), {}
            last = int(seed) + self.num_envs
            self.seed_array = np.arange(int(seed), last, dtype=np.uint64) if last <= 2**64 else None
        elif seed is not None:
            for i, s in enumerate(copy_seeds(seed, self.num_envs)):
                if s is not None:
                    self.seeds[i] = s
                    self._rngs.pop(i, None)
            self.seed_array = None
        everyone = np.arange(self.num_envs)
        self._reset_copies(everyone, seeded=seed is not None)
        self._needs_reset[:] = False
        infos: dict[str, Any] = {}
        self._merge_info(infos, everyone, self._reset_info(everyone))
        return self._observe(), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions has shape {actions.shape}; give one action per copy: ({self.num_envs},)")
        resetting = np.flatnonzero(self._needs_reset)
        rewards, terminated, truncated, infos = self._step_all(actions)
        if len(resetting):  # NEXT_STEP autoreset: these copies start over, their actions ignored
            self._reset_copies(resetting, seeded=False)
            rewards[resetting] = 0.0
            terminated[resetting] = False
            truncated[resetting] = False
            for key in [k for k in infos if not k.startswith("_")]:
                infos["_" + key][resetting] = False
            self._merge_info(infos, resetting, self._reset_info(resetting))  # what the single env's reset reports
        self._needs_reset = terminated | truncated
        return self._observe(), rewards, terminated, truncated, infos

    def _merge_info(self, infos: dict[str, Any], idx: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """Set info[key] for copies idx, with Gymnasium's `_key` mask saying which copies have it."""
        for key, vals in values.items():
            if key not in infos:
                infos[key] = np.zeros(self.num_envs, dtype=np.asarray(vals).dtype)
                infos["_" + key] = np.zeros(self.num_envs, dtype=bool)
            infos[key][idx] = vals
            infos["_" + key][idx] = True

    # subclasses ---------------------------------------------------------------

    def _reset_copies(self, idx: np.ndarray, seeded: bool) -> None:
        """Start new episodes for copies idx: from their np_random if just seeded, else chained."""
        raise NotImplementedError

    def _step_all(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        raise NotImplementedError

    def _reset_info(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The info the single env's reset reports, for copies idx (one value per copy)."""
        return {}

    def _observe(self) -> Any:
        raise NotImplementedError
