"""Any finite MDP as an env: `gymnasium.make("arena/TabularMDP-v0", model="gambler")`, alias
`mdp:<model>`, with the textbook's instances built in and a student's own model given as
arrays, a Gymnasium toy-text dict, or a JSON file.

Named instances (Sutton & Barto):
- `random-walk`: Example 6.2's Markov reward process, `n` states between two ends (A..E for
  n = 5), one action ("walk": left or right with probability 1/2), +1 for leaving on the
  right and `left` (0; -1 in Figure 7.2's 19-state walk) on the left. True values i/(n+1).
- `gambler`: Example 4.3, capital 0..`goal`; action a stakes a + 1 (no more than the capital
  or what reaching the goal needs); heads (probability `p_h`) wins the stake; +1 on
  reaching the goal. Solve with gamma = 1: V(50) = 0.4 for p_h = 0.4 (Figure 4.3).
- `jacks-car-rental`: Example 4.2, two locations of at most `max_cars` cars (state: cars
  at each at the end of a day), action a moves a - 5 cars from the first to the second
  overnight ($2 each as asked; no more cars than are there move); rentals earn $10, requests and returns are
  Poisson (3, 4 and 3, 2). The reward of a day is its expected rental income less the
  costs (the dynamics are exact: no Poisson tail is cut). `variant=true` is Exercise 4.7:
  one car moves to the second location free, and over 10 cars kept at a location costs $4.
  A continuing task: solve with gamma = 0.9 (Figure 4.2).
- `maximization-bias`: Example 6.7 as a finite MDP: A offers `a_actions` (left, and ways
  right), B `b_actions`, each ending the episode with a reward from N(`mean`, `std`), here
  its 16 equally likely quantiles, spread to the same mean and variance. The env's
  `action_mask` says what each state offers (arena/MaximizationBias-v0 draws the reward
  from the normal itself).
- `short-corridor`: Example 13.1, three states before the goal, -1 a step, left (0) and
  right (1), reversed in the second state. With `observe=nothing` (its default) every state
  looks the same, so the best policy is stochastic: right with probability about 0.59
  (J = -11.6), which a policy gradient finds and no deterministic policy reaches.

A student's own model: kwargs `P` (S, A, S) probabilities with `R` (S, A) expected rewards,
or `transitions` in Gymnasium's toy-text form `P[s][a] = [(prob, next, reward, done), ...]`
(a done transition makes `next` terminal), each optionally with `terminal` (S,) and `start`
(a state or (S,) probabilities; default state 0); or `model=my_mdp.json`, a file holding
the same (`{"P": ..., "R": ...}`, `{"P": toy-text}` or compact `{"next_state", "prob",
"reward"}` tables), which `write_model` writes. A malformed model is one line naming what
is wrong.

The env is a GridWorld underneath (the same step, compiled paths, viewer and exact score):
its states are drawn as cells, a chain in rows, or Jack's two counts as a board.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arena import settings as typed
from arena.settings import Data, setting
from envs.abilities import MAX_EPISODE_STEPS
from envs.errors import EnvError
from envs.grid import GridMDP, GridWorldEnv, check_model, reachable_from_start

NAMES = ("random-walk", "gambler", "jacks-car-rental", "maximization-bias", "short-corridor")
REWARD_LEVELS = 16  # maximization-bias: B's Gaussian reward as this many equally likely quantiles
MAX_MODEL_ENTRIES = 50_000_000  # S * A * K successors: about 1.2 GB of tables
MODEL_FORMAT = 1  # what write_model writes ("format" in the file)


class MDPError(EnvError):
    """A tabular MDP cannot be built from what was given."""


@dataclass(frozen=True)
class TabularMDPSettings:
    """TabularMDP's kwargs; each named MDP reads only its own."""

    model: str | None = setting(None, help="a textbook MDP (random-walk, gambler, jacks-car-rental, maximization-bias, "
                                "short-corridor) or a .json file holding a model; null: P and R, or transitions, "
                                "else random-walk")
    P: Data | None = setting(None, help="your model: (S, A, S) transition probabilities p(s' | s, a), with R")
    R: Data | None = setting(None, help="your model: (S, A) expected rewards r(s, a), with P")
    transitions: Data | None = setting(None, help="your model in Gymnasium's toy-text form: P[s][a] = "
                                       "[(prob, next, reward, done), ...]")
    terminal: Data | None = setting(None, help="your model: (S,) booleans, the terminal states (with P and R)")
    start: Data | None = setting(None, help="your model: the start state, or (S,) start probabilities (default 0)")
    n: int = setting(5, help="random-walk: states between the two ends", low=1, high=1_000_000)
    left: float = setting(0.0, help="random-walk: reward for leaving on the left (Figure 7.2: -1)", low=-1e6, high=1e6)
    p_h: float = setting(0.4, help="gambler: probability of heads", low=0.0, high=1.0)
    goal: int = setting(100, help="gambler: the capital that wins", low=2, high=100_000)
    max_cars: int = setting(20, help="jacks-car-rental: cars a location holds", low=1, high=40)
    a_actions: int = setting(2, help="maximization-bias: actions in A (left, and ways right)", low=2, high=10_000)
    b_actions: int = setting(10, help="maximization-bias: actions in B", low=1, high=10_000)
    mean: float = setting(-0.1, help="maximization-bias: mean reward of B's actions", low=-1e6, high=1e6)
    std: float = setting(1.0, help="maximization-bias: standard deviation of B's rewards", low=0.0, high=1e6)
    variant: bool = setting(False, help="jacks-car-rental: Exercise 4.7 (a free shuttle, $4 parking over 10 cars)")
    observe: str | None = setting(None, help="what the agent sees: state (its index) or nothing (every state alike); "
                                  "null: the MDP's own (short-corridor: nothing, the others: state)",
                                  choices=("state", "nothing"))
    max_steps: int | None = setting(None, help="step limit per episode (null: the MDP's own)", low=1,
                                    high=MAX_EPISODE_STEPS)


@dataclass(frozen=True)
class Built:
    """A named or read model, ready for the env: tables, how to draw it, its action names."""

    mdp: GridMDP
    action_names: tuple[str, ...]
    max_steps: int
    goal: np.ndarray  # (S,) bool: terminal states that count as success


# --------------------------------------------------------------------------- from what a user writes


def compact_model(next_state: Any, prob: Any, reward: Any, terminal: Any = None, start: Any = None,
                  shape: tuple[int, int] | None = None, cell: np.ndarray | None = None) -> GridMDP:
    """A GridMDP from compact tables (reward (S, A, K) per successor, or (S, A) per action),
    checked: one MDPError line naming the array that is wrong."""
    try:
        ns = np.asarray(next_state)
        p = np.asarray(prob, dtype=float)
        r = np.asarray(reward, dtype=float)
    except (TypeError, ValueError) as exc:
        raise MDPError(f"the model's arrays must be numbers: {str(exc)[:120]}") from None
    if ns.ndim != 3 or ns.size == 0:
        raise MDPError(f"next_state must be a non-empty (S, A, K) array of state indices, got shape {ns.shape}")
    if ns.size > MAX_MODEL_ENTRIES:
        raise MDPError(f"the model has {ns.size:,} successor entries; the limit is {MAX_MODEL_ENTRIES:,}")
    if not (np.issubdtype(ns.dtype, np.integer) or (np.issubdtype(ns.dtype, np.floating) and np.all(ns == np.round(ns)))):
        raise MDPError(f"next_state must hold whole state indices, got {ns.dtype}")
    ns = ns.astype(np.int64)
    S, A, K = ns.shape
    if r.shape == (S, A):
        r = np.repeat(r[:, :, None], K, axis=2)
    if r.shape != (S, A, K):
        raise MDPError(f"reward has shape {r.shape}; give (S, A, K) = {(S, A, K)} per successor or R (S, A)")
    term = np.zeros(S, bool) if terminal is None else np.asarray(terminal)
    if term.shape != (S,) or not np.isin(term, (0, 1)).all():
        raise MDPError(f"terminal must be {S} booleans (one per state), got shape {term.shape}")
    term = term.astype(bool)
    probe = _Arrays(ns, p, (p * r).sum(axis=-1) if p.shape == r.shape else r[..., 0], term)
    check_model(probe, MDPError)
    if not np.isfinite(r).all():
        s, a, _ = np.argwhere(~np.isfinite(r))[0]
        raise MDPError(f"reward[{s}, {a}] is not finite; rewards must be numbers")
    start_p = _start(start, S, term)
    ns, p, r = ns.copy(), p.copy(), r.copy()
    ns[term], p[term], r[term] = np.arange(S)[term, None, None], 0.0, 0.0  # an ended episode stays ended
    p[term, :, 0] = 1.0
    if cell is None:
        width = S if S <= 16 else math.ceil(math.sqrt(S))
        cell = np.stack([np.arange(S) // width, np.arange(S) % width], axis=1)
        shape = (math.ceil(S / width), width)
    mdp = GridMDP(ns, p, r, term, start_p, cell, shape or (int(cell[:, 0].max()) + 1, int(cell[:, 1].max()) + 1))
    if term.any() and not reachable_from_start(mdp)[term].any():
        raise MDPError("no terminal state can be reached from the start, so no episode would end; "
                       "check next_state and prob (or declare no terminal state for a continuing task)")
    return mdp


class _Arrays:
    """What check_model reads, before the GridMDP exists."""

    def __init__(self, next_state: np.ndarray, prob: np.ndarray, R: np.ndarray, terminal: np.ndarray) -> None:
        self.next_state, self.prob, self.R, self.terminal = next_state, prob, R, terminal


def _start(start: Any, S: int, terminal: np.ndarray) -> np.ndarray:
    """The start distribution: a state, or (S,) probabilities; default state 0."""
    if start is None:
        start = 0
    if np.ndim(start) == 0:
        if not isinstance(start, (int, np.integer)) or not 0 <= int(start) < S or terminal[int(start)]:
            raise MDPError(f"start={start!r} must be a non-terminal state index in 0..{S - 1}")
        p = np.zeros(S)
        p[int(start)] = 1.0
        return p
    p = np.asarray(start, dtype=float)
    if p.shape != (S,) or not np.isfinite(p).all() or (p < 0).any() or abs(p.sum() - 1.0) > 1e-8:
        raise MDPError(f"start must be a state index or {S} probabilities summing to 1")
    if p[terminal].sum() > 0:
        raise MDPError(f"start gives probability to terminal state {int(np.flatnonzero(p * terminal)[0])}")
    return p


def model_from(obj: Any) -> GridMDP:
    """A GridMDP from what a user holds: toy-text `P[s][a] = [(prob, next, reward, done)]`
    (under "P", or the dict itself), dense {"P": (S, A, S), "R": (S, A)}, or compact tables."""
    return _guarded(lambda: _model_from(obj))


def _guarded(build: Any) -> GridMDP:
    """`build()`, with whatever a shape no check foresaw raises said in one MDPError line."""
    try:
        return build()
    except MDPError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        raise MDPError(f"the model is malformed ({type(exc).__name__}: {str(exc)[:120]}); see envs/mdp.py for "
                       "its forms") from None


def _model_from(obj: Any) -> GridMDP:
    if not isinstance(obj, dict):
        raise MDPError(f"a model is a dict (toy-text P, or named arrays), got {type(obj).__name__}")
    extra = {k: obj.get(k) for k in ("terminal", "start")}
    if "next_state" in obj:
        missing = [k for k in ("prob",) if k not in obj] + ([] if "reward" in obj or "R" in obj else ["reward or R"])
        if missing:
            raise MDPError(f"compact tables need next_state, prob and reward (or R); missing {', '.join(missing)}")
        return compact_model(obj["next_state"], obj["prob"], obj.get("reward", obj.get("R")), **extra)
    P = obj.get("P", obj)
    if isinstance(P, dict) or (isinstance(P, list) and P and isinstance(P[0], dict)):
        return _toy_text(P, extra["start"])
    if "R" not in obj:
        raise MDPError("a dense model needs P (S, A, S) and R (S, A); R is missing")
    try:
        dense = np.asarray(P, dtype=float)
    except (TypeError, ValueError):
        raise MDPError("P must be an (S, A, S) array of probabilities, or toy-text P[s][a] lists") from None
    if dense.ndim != 3 or dense.shape[0] != dense.shape[2]:
        raise MDPError(f"P has shape {dense.shape}; a dense model's P is (S, A, S)")
    S, A, _ = dense.shape
    return compact_model(np.broadcast_to(np.arange(S), dense.shape), dense, obj["R"], **extra)


def _toy_text(P: Any, start: Any) -> GridMDP:
    """Gymnasium's toy-text model (FrozenLake's env.unwrapped.P): P[s][a] = [(prob, next, reward, done), ...]."""
    def rows(x: Any) -> list[Any]:
        if isinstance(x, dict):
            try:
                keys = sorted(int(k) for k in x)
            except (TypeError, ValueError):
                raise MDPError("toy-text P is keyed by state and action numbers 0, 1, ...") from None
            if keys != list(range(len(keys))):
                raise MDPError(f"toy-text P must give states and actions 0..n-1 without gaps, got keys {keys[:8]}")
            return [x[k] if k in x else x[str(k)] for k in keys]
        if not isinstance(x, (list, tuple)):
            raise MDPError(f"toy-text P holds lists (or dicts) of states, actions and outcomes, not {type(x).__name__}")
        return list(x)

    states = rows(P)
    S = len(states)
    table = [rows(a) for a in states]
    A = len(table[0]) if S else 0
    if S == 0 or A == 0 or any(len(t) != A for t in table):
        raise MDPError("toy-text P needs at least one state, and the same number of actions in every state")
    K = max(len(outs) for t in table for outs in t)
    if K == 0:
        raise MDPError("toy-text P[s][a] lists (prob, next, reward, done) outcomes; some list is empty")
    ns, p, r = np.zeros((S, A, K), np.int64), np.zeros((S, A, K)), np.zeros((S, A, K))
    terminal = np.zeros(S, bool)
    for s, t in enumerate(table):
        for a, outs in enumerate(t):
            for k, out in enumerate(outs):
                try:
                    prob, nxt, rew, done = out
                    ns[s, a, k], p[s, a, k], r[s, a, k] = int(nxt), float(prob), float(rew)
                except (TypeError, ValueError):
                    raise MDPError(f"P[{s}][{a}][{k}] must be (prob, next, reward, done), got {out!r:.80}") from None
                if not 0 <= int(nxt) < S:
                    raise MDPError(f"P[{s}][{a}][{k}] goes to state {nxt}, outside 0..{S - 1}")
                terminal[int(nxt)] |= bool(done)
            ns[s, a, len(outs):] = s  # padding: probability 0
    return compact_model(ns, p, r, terminal, start)


def read_model(path: str | Path) -> GridMDP:
    """A model from a JSON file (see the module docstring); no pickle, no code."""
    path = Path(path)
    if path.suffix != ".json":
        raise MDPError(f"model={path}: give a .json file (write one with envs.mdp.write_model)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MDPError(f"model={path} cannot be read: {exc.strerror or exc}") from None
    if len(text) > 400_000_000:
        raise MDPError(f"model={path} is {len(text) / 1e6:.0f} MB; the limit is 400 MB")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MDPError(f"model={path} is not valid JSON: {str(exc)[:120]}") from None
    if isinstance(obj, dict) and obj.get("format", MODEL_FORMAT) != MODEL_FORMAT:
        raise MDPError(f"model={path} has format {obj.get('format')!r}; this Arena reads format {MODEL_FORMAT}")
    return model_from(obj)


def write_model(model: Any, path: str | Path) -> Path:
    """Check `model` (any form `model_from` takes) and write it as JSON compact tables, so
    `model=PATH` plays it."""
    from agents.checkpoint import new_file, write_atomically  # noqa: PLC0415  (envs do not import agents at load)

    mdp = model_from(model)
    data = {"format": MODEL_FORMAT, "next_state": mdp.next_state.tolist(), "prob": mdp.prob.tolist(),
            "reward": mdp.reward.tolist(), "terminal": mdp.terminal.tolist(), "start": mdp.start.tolist()}
    path = new_file(Path(path), "the model", (".json",))
    return write_atomically(path, lambda tmp: tmp.write_text(json.dumps(data), encoding="utf-8"))


# --------------------------------------------------------------------------- the textbook's MDPs


def random_walk(n: int, left: float) -> Built:
    """Example 6.2: ends 0 and n + 1, start in the middle, one action that walks either way."""
    S = n + 2
    s = np.arange(S)
    ns = np.stack([s - 1, s + 1], axis=1)[:, None, :].clip(0, S - 1)
    reward = np.zeros((S, 1, 2))
    reward[1, 0, 0], reward[n, 0, 1] = left, 1.0
    terminal = np.isin(s, (0, n + 1))
    cell = np.stack([np.zeros(S, np.int64), s], axis=1)
    mdp = compact_model(ns, np.full((S, 1, 2), 0.5), reward, terminal, (n + 1) // 2, shape=(1, S), cell=cell)
    return Built(mdp, ("walk",), 1000 + 10 * n * n, s == n + 1)


def gambler(goal: int, p_h: float) -> Built:
    """Example 4.3: stake a + 1 of capital s (at most min(s, goal - s)); +1 on reaching the goal."""
    S, A = goal + 1, goal // 2
    s, stake = np.arange(S)[:, None], np.arange(1, A + 1)[None, :]
    stake = np.minimum(stake, np.minimum(s, goal - s))
    ns = np.stack([s + stake, s - stake], axis=2)
    prob = np.broadcast_to(np.array([p_h, 1.0 - p_h]), (S, A, 2))
    reward = np.zeros((S, A, 2))
    reward[:, :, 0] = (s + stake == goal)
    terminal = np.isin(np.arange(S), (0, goal))
    start = np.where(terminal, 0.0, 1.0 / (S - 2))
    built = compact_model(ns, prob, reward, terminal, start)
    return Built(built, tuple(f"stake {a}" for a in range(1, A + 1)), 10 * goal, np.arange(S) == goal)


def _location(lam_rent: float, lam_return: float, max_cars: int) -> tuple[np.ndarray, np.ndarray]:
    """One location over a day, from n cars in the morning (0..max_cars): P(cars at night | n)
    (max_cars + 1, max_cars + 1) and the expected cars rented (max_cars + 1,), tails lumped, not cut."""
    from scipy.stats import poisson

    M = max_cars
    P, rented = np.zeros((M + 1, M + 1)), np.zeros(M + 1)
    for n in range(M + 1):
        req = poisson.pmf(np.arange(n + 1), lam_rent)
        req[n] = poisson.sf(n - 1, lam_rent)  # P(requests >= n): all n rented
        rented[n] = req @ np.arange(n + 1)
        for k, p_k in enumerate(req):  # k rented, then returns bring the count up (extra cars go back)
            left = n - k
            ret = poisson.pmf(np.arange(M - left + 1), lam_return)
            ret[-1] = poisson.sf(M - left - 1, lam_return)
            P[n, left:] += p_k * ret
    return P, rented


def jacks_car_rental(max_cars: int, variant: bool) -> Built:
    """Example 4.2 (Exercise 4.7 with variant): state (cars at 1, cars at 2) at the end of a day."""
    M = max_cars
    n1, n2 = np.divmod(np.arange((M + 1) ** 2), M + 1)
    P1, rent1 = _location(3, 3, M)
    P2, rent2 = _location(4, 2, M)
    moves = np.arange(-5, 6)
    S, A = (M + 1) ** 2, len(moves)
    asked = np.broadcast_to(moves[None, :], (S, A))
    m = np.clip(asked, -n2[:, None], n1[:, None])  # at most the cars that are there, paid for as asked
    m1, m2 = np.minimum(n1[:, None] - m, M), np.minimum(n2[:, None] + m, M)  # overnight; extra cars go back
    cost = 2.0 * (np.where(asked > 0, asked - 1, -asked) if variant else np.abs(asked))
    if variant:
        cost += 4.0 * (m1 > 10) + 4.0 * (m2 > 10)
    R = 10.0 * (rent1[m1] + rent2[m2]) - cost
    # next state (a, b) with probability P1[m1, a] P2[m2, b]: all (M + 1)^2 successors
    prob = (P1[m1][:, :, :, None] * P2[m2][:, :, None, :]).reshape(S, A, S)
    ns = np.broadcast_to(np.arange(S), (S, A, S))
    cell = np.stack([n1, n2], axis=1)
    mdp = compact_model(ns, prob, R, None, np.full(S, 1.0 / S), shape=(M + 1, M + 1), cell=cell)
    return Built(mdp, tuple(f"{x:+d}" for x in moves), 100, np.zeros(S, bool))


def maximization_bias(a_actions: int, b_actions: int, mean: float, std: float) -> Built:
    """Example 6.7: A (0) -> left to B (1) or right to the end (2); B -> the end, reward ~ mean + std z,
    z one of REWARD_LEVELS equally likely standard-normal quantiles (rescaled to variance 1)."""
    from scipy.stats import norm

    nA, K = max(a_actions, b_actions), REWARD_LEVELS
    z = norm.ppf((np.arange(K) + 0.5) / K)
    z /= np.sqrt(np.mean(z**2))  # spread to unit variance: the rewards keep N(mean, std)'s mean and variance
    ns = np.full((3, nA, K), 2, dtype=np.int64)
    ns[0, 0] = 1  # left
    reward = np.zeros((3, nA, K))
    reward[1] = mean + std * z
    allowed = np.ones((3, nA), dtype=bool)
    allowed[0, a_actions:] = allowed[1, b_actions:] = False
    mdp = compact_model(ns, np.full((3, nA, K), 1.0 / K), reward, np.array([False, False, True]), 0,
                        shape=(1, 3), cell=np.array([[0, 0], [0, 1], [0, 2]]))
    mdp = dataclasses.replace(mdp, allowed=allowed)
    return Built(mdp, tuple(str(k) for k in range(nA)), 2, np.zeros(3, bool))  # in A: 0 is left


def short_corridor() -> Built:
    """Example 13.1: states 0, 1, 2 and the goal 3; left (0) and right (1) move one cell (left
    of 0 stays), except in state 1, where they are swapped; -1 per step."""
    ns = np.array([[0, 1], [2, 0], [1, 3], [3, 3]], dtype=np.int64)[:, :, None]
    terminal = np.array([False, False, False, True])
    cell = np.stack([np.zeros(4, np.int64), np.arange(4)], axis=1)
    mdp = compact_model(ns, np.ones((4, 2, 1)), -np.ones((4, 2, 1)), terminal, 0, shape=(1, 4), cell=cell)
    return Built(mdp, ("left", "right"), 1000, terminal)


def build(settings: TabularMDPSettings) -> Built:
    """The MDP the settings name, or the one they hold."""
    own = {k: getattr(settings, k) for k in ("P", "R", "transitions", "terminal", "start")}
    given = [k for k in ("P", "R", "transitions") if own[k] is not None]
    if given and settings.model is not None:
        raise MDPError(f"give a model either by name or file (model={settings.model!r}) or as arrays ({', '.join(given)}), "
                       "not both")
    if given:
        if own["transitions"] is not None:
            if own["P"] is not None or own["R"] is not None:
                raise MDPError("give P and R, or transitions (toy-text), not both")
            mdp = _guarded(lambda: _toy_text(own["transitions"], own["start"]))
        else:
            if own["P"] is None or own["R"] is None:
                raise MDPError(f"a model given as arrays needs P (S, A, S) and R (S, A); {'R' if own['R'] is None else 'P'} "
                               "is missing")
            mdp = model_from({"P": own["P"], "R": own["R"], "terminal": own["terminal"], "start": own["start"]})
        return Built(mdp, tuple(str(a) for a in range(mdp.n_actions)), 1000, mdp.terminal.copy())
    if own["terminal"] is not None or own["start"] is not None:
        raise MDPError("terminal and start go with a model of your own (P and R, or transitions)")
    name = settings.model or "random-walk"
    if name == "random-walk":
        return random_walk(settings.n, settings.left)
    if name == "gambler":
        return gambler(settings.goal, settings.p_h)
    if name == "jacks-car-rental":
        return jacks_car_rental(settings.max_cars, settings.variant)
    if name == "maximization-bias":
        return maximization_bias(settings.a_actions, settings.b_actions, settings.mean, settings.std)
    if name == "short-corridor":
        return short_corridor()
    if not name.endswith(".json"):
        raise MDPError(f"model={name!r}: name a textbook MDP ({', '.join(NAMES)}) or a .json model file")
    mdp = read_model(name)
    return Built(mdp, tuple(str(a) for a in range(mdp.n_actions)), 1000, mdp.terminal.copy())


class TabularMDPEnv(GridWorldEnv):
    """A finite MDP as a Gymnasium env (see the module docstring); observations are state
    indices, `env.unwrapped.mdp` is the exact model."""

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        """kwargs: the fields of `TabularMDPSettings` (declared there once, checked here)."""
        self.settings = checked = typed.build(TabularMDPSettings, kwargs, MDPError)
        built = build(checked)
        own = checked.P is not None or checked.transitions is not None
        self.layout = "your model" if own else checked.model or "random-walk"
        mdp = built.mdp
        self.grid = np.full(mdp.shape, " ", dtype="U1")  # a board only to draw on: no walls, nothing to step into
        self.grid[mdp.cell[:, 0], mdp.cell[:, 1]] = "."
        term = mdp.cell[mdp.terminal]
        self.grid[term[:, 0], term[:, 1]] = "H"
        goal = mdp.cell[built.goal]
        self.grid[goal[:, 0], goal[:, 1]] = "G"
        self.max_steps = int(built.max_steps if checked.max_steps is None else checked.max_steps)
        observe = checked.observe or ("nothing" if self.layout == "short-corridor" else "state")
        self._begin(mdp, "index" if observe == "state" else "nothing", render_mode, built.action_names)
        if mdp.allowed is not None:  # the states offer different actions (envs.abilities.MasksActions)
            self.action_mask = mdp.allowed

    def draw(self, surface: Any, show_values: bool = True, show_policy: bool = True) -> None:
        """The grid's drawing, with the greedy action written in each cell instead of an arrow."""
        super().draw(surface, show_values, show_policy=False)
        policy = self.overlay.get("policy")
        px = self.cell_size()
        if not show_policy or policy is None or px < 14:
            return
        import pygame

        if self._font is None:
            pygame.font.init()
            self._font = pygame.font.Font(None, max(10, px // 2))
        font: Any = self._font
        pi = np.asarray(policy)
        greedy = pi if pi.ndim == 1 else pi.argmax(axis=1)
        for s in np.flatnonzero(~self.mdp.terminal):
            r, c = self.mdp.cell[s]
            label = font.render(self.action_names[int(greedy[s])].removeprefix("stake "), True, (30, 30, 30))
            surface.blit(label, label.get_rect(center=(c * px + px // 2, r * px + px // 2)))

    def draw_action(self, surface: Any, action: int, colour: tuple[int, int, int]) -> None:
        """No direction to point in: a ring round the agent's state."""
        import pygame

        px = self.cell_size()
        r, c = self.mdp.cell[self.s]
        pygame.draw.circle(surface, colour, (c * px + px // 2, r * px + px // 2), max(2, px // 2), max(1, px // 10))

    def window_title(self) -> str:
        return f"Arena TabularMDP: {self.layout}"


__all__ = ["MDPError", "TabularMDPEnv", "TabularMDPSettings", "compact_model", "model_from", "read_model",
           "write_model"]
