"""The contract between agents and the rest of Arena: the Agent protocol, the abilities
an agent may declare, and the run specification that travels from the CLI to the loop.

An agent learns with `fit(env, spec)` (`spec` a `RunSpec`), acts with `act(obs, state,
greedy)`, and is saved and restored with `save(path)` / `load(path, env)` in the one
checkpoint format (agents/checkpoint.py). Its settings are one typed dataclass
(`Settings`, built with arena/settings.py), so `--set` and `arena agents NAME` read the
same declaration.

Callers never probe an agent with `hasattr`: what they need beyond `Agent` is an ability,
a small Protocol checked with `isinstance`:

- `Learner`: trains unit by unit through the one training loop (agents/training.py);
- `EpisodeLearner`: a Learner whose unit is one env episode (training episodes can be
  recorded, the exact J can be followed while it learns);
- `Planner`: prepares itself from the env in one go (DP on the model, references reading
  the env's data, the random agent reading its action space);
- `HasPolicyTable`: a memoryless policy over state indices as an (S, A) table;
- `Generator`: makes images from latent noise (sample videos, cross-judging);
- `Discriminator`: judges images (the GAN's critic, used to cross-judge generators).

A user's agent implements `Agent` (usually by subclassing `agents.training.AgentBase`,
which writes `fit` and `config` once for everyone) and one of `Learner` or `Planner`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from arena.errors import CheckpointError


class Callback:
    """Hooks into the loop; override what you need. `records_episodes`: the callback reads
    single env episodes, so only an EpisodeLearner can take it."""

    records_episodes = False

    def wrap_env(self, env: gym.Env, learner: "Learner") -> Any:
        """The env the learner trains on (a recorder wraps it here)."""
        return env

    def on_start(self, learner: "Learner", env: gym.Env) -> None: ...

    def before_unit(self, learner: "Learner", index: int) -> None: ...

    def units_until_call(self, done: int, total: int) -> int:
        """After `done` units, how many more the loop may run before this callback's next
        `after_unit`: a block of units gets one `before_unit` (its first) and one `after_unit`
        (after its last), so the calls in between must be ones that would do nothing. 1, the
        default: every unit, so a learner cannot learn in blocks while this callback runs."""
        return 1

    def after_unit(self, learner: "Learner", done: int, total: int) -> bool | None:
        """Called after each unit; return True to stop training there (early stopping)."""

    def on_checkpoint(self, learner: "Learner", done: int) -> None:
        """Called after each checkpoint is written (periodic and final; only with a run folder)."""

    def on_end(self, learner: "Learner") -> None:
        """Called once when training finishes normally (after the final checkpoint)."""


@dataclass
class Budget:
    """Units done and planned, and what a unit is: travels in every checkpoint."""

    done: int
    total: int
    unit: str
    episodes_per_unit: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"done": self.done, "total": self.total, "unit": self.unit, "episodes_per_unit": self.episodes_per_unit}

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: Any) -> "Budget":
        try:
            budget = cls(int(d["done"]), int(d["total"]), str(d["unit"]), int(d.get("episodes_per_unit", 1)))
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: its budget record is damaged; it cannot be resumed") from None
        if not 0 <= budget.done <= budget.total or budget.episodes_per_unit < 1:
            raise CheckpointError(f"{path}: its budget ({budget.done} of {budget.total}) is damaged")
        return budget


@dataclass(frozen=True)
class RunSpec:
    """How one training run goes: made once (by the CLI, `arena.evaluate` or a suite) and
    passed unchanged through the job to the training loop.

    `budget` counts the agent's own budget unit (`agent.budget_unit`: episodes for tabular
    learners and REINFORCE, updates for generators, env steps for SB3); None takes the
    agent's default (its settings), or with `resume` the checkpoint's own budget.
    """

    seed: int = 0
    budget: int | None = None
    run_dir: Path | None = None  # checkpoints, learning curve, TensorBoard logs; None: nothing written
    resume: Path | None = None  # continue from this checkpoint
    init: Path | None = None  # start a new run from this checkpoint's weights or tables (saved anywhere)
    callbacks: tuple[Callback, ...] = field(default_factory=tuple)
    checkpoint_every: float | None = None  # seconds between periodic checkpoints (None: the loop's default)
    progress: bool | None = None  # None: a bar on a terminal, a line every few seconds elsewhere

    def __post_init__(self) -> None:
        # paths and callbacks as the loop wants them, whatever the caller passed
        object.__setattr__(self, "run_dir", Path(self.run_dir) if self.run_dir else None)
        object.__setattr__(self, "resume", Path(self.resume) if self.resume else None)
        object.__setattr__(self, "init", Path(self.init) if self.init else None)
        object.__setattr__(self, "callbacks", tuple(self.callbacks))

    def but(self, **changes: Any) -> "RunSpec":
        """A copy with some fields changed."""
        return replace(self, **changes)


@runtime_checkable
class Agent(Protocol):
    """The interface the arena plays against. `name` is the registry name; `recurrent` says
    whether its choices depend on the episode's history (then no exact score exists)."""

    name: str
    settings: Any  # an instance of the agent's settings dataclass (arena/settings.py)

    @property
    def recurrent(self) -> bool:
        """Whether its choices depend on the episode's history (then no exact score exists)."""
        ...

    def reset(self, seed: int | None = None) -> Any:
        """Start an episode: seeds any randomness in acting; returns the initial recurrent state."""
        ...

    def fit(self, env: gym.Env, spec: RunSpec | None = None, **fields: Any) -> dict[str, Any]:
        """Learn on `env` as `spec` says (or a RunSpec of `fields`); returns a training log."""
        ...

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[Any, Any]:
        """The action for `obs` and the agent's next recurrent state (None if it has none)."""
        ...

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint in Arena's one format."""
        ...

    def load(self, path: str | Path, env: gym.Env | None = None) -> Any:
        """Restore from a checkpoint; `env` lets a network rebuild itself for the env's spaces."""
        ...

    def config(self) -> dict[str, Any]:
        """Settings, JSON-serialisable, without where it ran (device): they go on the leaderboard."""
        ...

    def check_fits(self, env: gym.Env) -> None:
        """Fail with an AgentError if a loaded agent cannot play `env`."""
        ...

    def digest(self) -> str:
        """A SHA-256 naming what the agent has learned ('' if nothing)."""
        ...

    def overlay(self) -> dict[str, np.ndarray]:
        """What the viewer can draw (V, Q, policy), or {}."""
        ...


@runtime_checkable
class Learner(Protocol):
    """Trains through the one training loop: `begin` fresh state, then `learn` one unit at a
    time. `unit` names the loop's unit ("episode", "batch", "update", "chunk");
    `budget_unit` names what a budget counts (see `units_for`)."""

    name: str
    unit: str
    budget_unit: str
    log: Any  # agents.training.TrainingLog: what the loop records, restored on --resume
    budget: Budget | None
    trained_on: dict[str, Any] | None
    seed: int

    def default_budget(self) -> int:
        """The budget (in `budget_unit`) when none is given: the agent's settings."""
        ...

    def units_for(self, budget: int) -> int:
        """How many loop units train `budget` (in `budget_unit`), e.g. episodes -> whole batches."""
        ...

    def trained(self) -> int:
        """What the units done so far amount to, in `budget_unit` (what the leaderboard records)."""
        ...

    def begin(self, env: gym.Env, seed: int) -> None:
        """Fresh state for `env`, every random stream derived from `seed`."""
        ...

    def learn(self, env: gym.Env, index: int, progress: float) -> dict[str, Any]:
        """One unit of learning (`progress` = index / total); returns scalars, "return" among them."""
        ...

    def finish(self) -> dict[str, Any]:
        """Training stopped (done, interrupted or failed): release what `learn` holds; figures worth printing."""
        ...

    def save(self, path: str | Path) -> Path: ...

    def load(self, path: str | Path, env: gym.Env | None = None) -> Any: ...


@runtime_checkable
class LearnsInBlocks(Protocol):
    """A Learner that can learn several units in one call (compiled episodes, agents/td.py),
    with the same result as `learn` unit by unit. The loop hands it blocks that end where a
    callback is next due (`Callback.units_until_call`)."""

    def learn_block(self, env: gym.Env, index: int, count: int, total: int) -> dict[str, np.ndarray] | None:
        """Units index .. index + count - 1 of `total`; one array per scalar `learn` would report
        (one value per unit), or None where it cannot (then the loop calls `learn`)."""
        ...


@runtime_checkable
class StartsFrom(Protocol):
    """A Learner that can begin a new run from given weights or tables (`fit(env, init=PATH)`):
    after `begin`, it takes what it learns from the checkpoint at `path` (its own kind,
    written in training or outside it, e.g. by hand) and keeps its own settings, seed and budget."""

    def start_from(self, path: Path, env: gym.Env) -> None: ...


@runtime_checkable
class EpisodeLearner(Learner, Protocol):
    """A Learner whose unit is one episode played through `env.step` (so it can be recorded)."""

    def learn_episode(self, env: gym.Env, seed: int) -> float:
        """Play one episode from env.reset(seed=seed), learning as the algorithm says; return G."""
        ...


@runtime_checkable
class Planner(Protocol):
    """Gets ready in one go from the env (its model, its data or its spaces): no training units."""

    name: str

    def plan(self, env: gym.Env, seed: int) -> dict[str, Any]:
        """Prepare to play `env`; returns figures worth printing."""
        ...

    def save(self, path: str | Path) -> Path: ...


@runtime_checkable
class HasPolicyTable(Protocol):
    """A memoryless policy over state indices: (S, A) action probabilities of its greedy play."""

    def policy_table(self) -> np.ndarray: ...


@runtime_checkable
class Generator(Protocol):
    """Makes images: `sample(n, seed)` gives (n, C, H, W) in [0, 1]; `grid` tiles them."""

    name: str

    def sample(self, n: int, seed: int | None = None) -> np.ndarray: ...

    def grid(self, images: np.ndarray, cols: int = 8) -> np.ndarray: ...


@runtime_checkable
class Discriminator(Protocol):
    """Judges images: logits of 'real' for (n, C, H, W) images (and class labels when conditioned)."""

    conditioned: bool

    def discriminate(self, images: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray: ...


@runtime_checkable
class Discounted(Protocol):
    """Settings with a discount factor gamma (what exact evaluation during training uses)."""

    gamma: float


class Player:
    """Something that plays but has nothing to learn, save or show (a person at the keyboard,
    a benchmark's baseline): the rest of what recording an episode reads from an agent."""

    name = "player"
    recurrent = False  # a person at the keyboard remembers (KeyboardAgent says so)

    def reset(self, seed: int | None = None) -> Any:
        return None

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[Any, Any]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {}

    def digest(self) -> str:
        return ""

    def overlay(self) -> dict[str, np.ndarray]:
        return {}


__all__ = ["Agent", "Budget", "Callback", "Discounted", "Discriminator", "EpisodeLearner", "Generator", "HasPolicyTable", "Learner",
           "LearnsInBlocks", "Planner", "Player", "RunSpec"]
