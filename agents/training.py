"""The one `fit` and the one training loop every learner uses: tabular (an episode per
unit), REINFORCE (a batch of episodes per unit), generators (a batch of images), SB3 (a
chunk of env steps).

`fit(agent, env, spec)` takes the run as one `RunSpec` (agents/protocol.py): a `Learner`
trains through `train`, a `Planner` plans in one go. `AgentBase` gives agents the `fit`
method that calls it. A learner supplies its unit of learning and its state; the loop
owns everything else:

- the budget: `total` units, `done` so far (a resumed run starts where it stopped);
- the progress bar on stderr (a plain line every few seconds when stderr is no terminal);
- the log: per-unit scalars to TensorBoard, and the learning-curve PNG at the end;
- checkpoints: every `checkpoint_every` seconds of wall time and at the end, each one
  holding the learner's state and RNG state at a unit boundary, so a killed run loses at
  most that interval and `--resume` finishes it bit for bit as an uninterrupted run;
- Ctrl-C: the first press stops at the next unit boundary, saves, and raises
  `TrainingInterrupted` carrying the command that resumes; a second press stops at once
  (the last periodic checkpoint stays);
- non-finite values: a learner raises `NonFinite` before it changes its state, so the
  loop saves that last good state, or says truthfully that there is no run folder to
  save it in, and raises `TrainingError` naming agent, component and unit;
- callbacks: evaluation during training and recording training episodes are callbacks
  (`Callback`), not code inside learners.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.protocol import (Agent, Budget, Callback, EpisodeLearner, Learner, LearnsInBlocks, Planner, RunSpec,
                             StartsFrom)
from arena.errors import AgentError, CheckpointError, TrainingError
from arena.settings import identity

CHECKPOINT_EVERY_S = 5.0  # wall-clock seconds between periodic checkpoints
PLAIN_PROGRESS_EVERY_S = 5.0  # seconds between progress lines when stderr is not a terminal


def plural(unit: str) -> str:
    """'episode' -> 'episodes', 'batch' -> 'batches', 'entry' -> 'entries': for messages that count units."""
    if unit.endswith("y") and unit[-2:-1] not in ("a", "e", "i", "o", "u"):
        return unit[:-1] + "ies"
    return unit + ("es" if unit.endswith(("s", "ch", "sh", "x")) else "s")


def plural_count(n: int, unit: str) -> str:
    """'1 run', '3 runs'."""
    return f"{n} {unit if n == 1 else plural(unit)}"


def episode_seed(seed: int, index: int) -> int:
    """The env seed of training unit `index`: one independent stream per (run seed, unit)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def env_ref(env: gym.Env) -> dict[str, Any] | None:
    """{'id', 'kwargs'} of a registered env: what a checkpoint records it was trained on."""
    spec = getattr(env, "spec", None)
    if spec is None:
        return None
    return {"id": spec.id, "kwargs": plain_kwargs(spec.kwargs)}


def plain_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """An env's kwargs as JSON holds them (NumPy arrays as nested lists, mapping keys as
    strings), without render_mode: what checkpoints, replays and the leaderboard record."""
    import json

    def plain(value: Any) -> Any:
        return json.loads(json.dumps(value, default=lambda x: x.tolist() if isinstance(x, (np.ndarray, np.generic)) else str(x)))

    return {k: plain(v) for k, v in kwargs.items() if k != "render_mode"}


def restore_progress(learner: Any, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: Any) -> None:
    """What a checkpoint carries of training itself: the seed, the env, the budget done and the log."""
    learner.seed = int(meta["seed"] or 0)
    learner.trained_on = meta["env"]
    learner.budget = Budget.from_dict(meta["budget"], path) if meta["budget"] else None
    learner.log = TrainingLog(unit=learner.unit)
    learner.log.restore_arrays(arrays)
    learner.started_from = meta["state"].get("started_from")


class NonFinite(Exception):
    """Raised by a learner, before it changes its state, when `component` became NaN or inf."""

    def __init__(self, component: str, value: float) -> None:
        super().__init__(component)
        self.component, self.value = component, value


def check_finite(**losses: Any) -> None:
    """Raise NonFinite (before any parameter changes) when a loss (a 0-d tensor) is NaN or infinite."""
    import torch

    for component, value in losses.items():
        x = float(torch.as_tensor(value).detach())
        if not math.isfinite(x):
            raise NonFinite(component.replace("_", " "), x)


class CountsUpdates:
    """The methods of a learner whose budget is its `updates` setting, one update per unit of
    the loop, and that reports the device it trained on: its classes take them as they are
    (`default_budget = CountsUpdates.default_budget`, ...), not as a further base class."""

    def default_budget(self: Any) -> int:
        return int(self.settings.updates)

    def units_for(self: Any, budget: int) -> int:
        return int(budget)

    def trained(self: Any) -> int:
        return int(self.budget.done) if self.budget else 0

    def finish(self: Any) -> dict[str, Any]:
        return {"device": str(self.device)}


class TrainingInterrupted(Exception):
    """Training stopped on Ctrl-C at a unit boundary; `checkpoint` resumes it (None: not saved)."""

    def __init__(self, agent: str, done: int, total: int, unit: str, checkpoint: Path | None) -> None:
        self.agent, self.done, self.total, self.unit, self.checkpoint = agent, done, total, unit, checkpoint
        # kept for callers that count episodes
        self.episode = done
        where = f"; checkpoint saved to {checkpoint}" if checkpoint else " (no run folder, nothing saved)"
        super().__init__(f"training of {agent} interrupted after {done} of {total} {plural(unit)}{where}")


def fit(agent: Agent, env: gym.Env, spec: RunSpec) -> dict[str, Any]:
    """The one `fit`: a Learner trains through the loop (`train`), a Planner plans in one go;
    with a run folder the result is checkpointed either way. Returns figures worth printing."""
    if not isinstance(spec, RunSpec):
        raise TrainingError(f"{agent.name}.fit(env, spec): spec must be a RunSpec, got {spec!r}; or write the fields, "
                            "e.g. fit(env, seed=0, budget=500)")
    if spec.budget is not None and (type(spec.budget) is not int or spec.budget < 1):
        raise TrainingError(f"{agent.name}: a budget of {spec.budget!r} is not a positive whole number; train for at least 1")
    if isinstance(agent, Learner):
        return train(agent, env, spec)
    if not isinstance(agent, Planner):
        raise AgentError(f"{agent.name} neither learns (Learner) nor plans (Planner): implement one of them "
                         "(agents/protocol.py)")
    if spec.resume or spec.init:
        raise TrainingError(f"{agent.name} plans in one go: there is no training to resume or begin from given weights; "
                            "run it without --resume / --init")
    if any(cb.records_episodes for cb in spec.callbacks):
        raise AgentError(f"{agent.name} plans or plays without training episodes; nothing to record: drop --record-training")
    out = agent.plan(env, spec.seed)
    if spec.run_dir:
        out["checkpoint"] = str(agent.save(spec.run_dir / "checkpoint.npz"))
    return out


class AgentBase:
    """What every built-in agent shares, written once: `fit` (through `agents.training.fit`)
    and `config` (the settings as stored, without where the agent ran). A user's agent may
    subclass it too and write only its Learner or Planner part. (`self: Any`: families that
    already have a base class take these two methods as they are, without a third level.)"""

    name = "agent"
    recurrent = False
    settings: Any

    def fit(self: Any, env: gym.Env, spec: RunSpec | None = None, **fields: Any) -> dict[str, Any]:
        """Learn on `env` as `spec` says (or `fit(env, seed=0, budget=100, run_dir=...)`)."""
        return fit(self, env, self.run_spec(spec, fields))

    def run_spec(self: Any, spec: Any, fields: dict[str, Any]) -> Any:
        """The RunSpec that `fit(env, spec, **fields)` asks for (a spec that is not one is
        passed on, for `fit`'s one message about it)."""
        if spec is not None and not isinstance(spec, RunSpec):
            return spec
        known = [f.name for f in dataclasses.fields(RunSpec)]
        unknown = sorted(set(fields) - set(known))
        if unknown:
            hint = " (the budget is `budget`, in the agent's unit)" if "episodes" in unknown else ""
            raise TrainingError(f"{self.name}.fit: {unknown[0]!r} is not part of a run{hint}; give {', '.join(known)}")
        return spec.but(**fields) if spec is not None else RunSpec(**fields)

    def config(self: Any) -> dict[str, Any]:
        return identity(self.settings)


def train(learner: Learner, env: gym.Env, spec: RunSpec) -> dict[str, Any]:
    """Train `learner` on `env` for `spec.budget` (see the module docstring). Returns the log's figures.

    With `spec.resume`, the learner continues from that checkpoint: its seed, settings, RNG
    state and budget done come from the file; `spec.budget` (None: the file's) may extend it.
    """
    checkpoint_every = CHECKPOINT_EVERY_S if spec.checkpoint_every is None else spec.checkpoint_every
    for cb in spec.callbacks:
        if not isinstance(cb, Callback):  # its hooks are the base class's unless overridden: none may be missing
            raise AgentError(f"callback {type(cb).__name__} does not subclass agents.training.Callback; "
                             "subclass it and override the hooks you need")
    if any(cb.records_episodes for cb in spec.callbacks) and not isinstance(learner, EpisodeLearner):
        raise AgentError(f"{learner.name} trains on {plural(learner.unit)}, not single env episodes, so its training "
                         "cannot be recorded; drop --record-training (evaluation episodes are always recorded)")
    run_dir = spec.run_dir
    checkpoint = run_dir / "checkpoint.npz" if run_dir else None
    log = TrainingLog(run_dir, unit=learner.unit)
    resume = spec.resume
    if resume and spec.init:
        raise TrainingError(f"{learner.name}: --resume continues a run and --init starts a new one from given weights; "
                            "choose one")
    if resume:
        learner.load(resume, env=env)
        if learner.budget is None:
            raise CheckpointError(f"{resume} holds no training budget (it was saved outside training); it cannot be resumed")
        if learner.trained_on is not None and _plain(learner.trained_on) != _plain(env_ref(env)):
            raise CheckpointError(f"{resume} was trained on {_describe(learner.trained_on)}; resume it on that env")
        total = learner.units_for(spec.budget) if spec.budget is not None else learner.budget.total
        budget = Budget(learner.budget.done, total, learner.unit, learner.budget.episodes_per_unit)
        if budget.done >= budget.total:
            raise TrainingError(
                f"{resume} already holds {budget.done} {plural(learner.unit)} of training; ask for a larger budget "
                "to train on, or evaluate it with `arena eval --checkpoint`"
            )
        log.restore(learner.log)
    else:
        total = learner.units_for(spec.budget if spec.budget is not None else learner.default_budget())
        if total < 1:
            raise TrainingError(f"{learner.name}: a budget of {total} {plural(learner.unit)} is empty; train for at least 1")
        learner.begin(env, spec.seed)
        if spec.init:
            if not isinstance(learner, StartsFrom):
                raise AgentError(f"{learner.name} cannot start from given weights (init=); train it from scratch")
            learner.start_from(spec.init, env)
        budget = Budget(0, total, learner.unit)
    learner.log, learner.budget = log, budget
    learner.trained_on = env_ref(env)
    callbacks = spec.callbacks
    for cb in callbacks:
        env = cb.wrap_env(env, learner)
    for cb in callbacks:
        cb.on_start(learner, env)

    bar = ProgressBar(spec.progress, budget.total, budget.done, f"training {learner.name}", learner.unit)
    ctrl_c = CtrlC()
    last_save = time.monotonic()
    t0 = time.perf_counter()
    figures: dict[str, Any] = {}
    blocks = BlockSize() if isinstance(learner, LearnsInBlocks) else None
    try:
        while budget.done < budget.total:
            index = budget.done
            if ctrl_c.pressed:
                saved = learner.save(checkpoint) if checkpoint else None
                raise TrainingInterrupted(learner.name, budget.done, budget.total, learner.unit, saved)
            for cb in callbacks:
                cb.before_unit(learner, index)
            count = min([budget.total - index, *(cb.units_until_call(index, budget.total) for cb in callbacks)])
            columns = blocks.learn(learner, env, index, count, budget.total) if blocks and count > 1 else None
            if columns is not None:  # a block of units in one call
                budget.done = index + len(columns["return"])
                scalars = log.record_block(columns)
                bar.update_block(columns["return"], scalars)
            else:
                try:
                    scalars = learner.learn(env, index, index / budget.total)
                except NonFinite as bad:
                    raise _non_finite(learner, bad, index + 1, checkpoint) from None
                budget.done = index + 1
                log.record(scalars)
                bar.update(scalars)
            stop = [cb.after_unit(learner, budget.done, budget.total) for cb in callbacks]
            if checkpoint and time.monotonic() - last_save >= checkpoint_every:
                learner.save(checkpoint)
                last_save = time.monotonic()
                for cb in callbacks:
                    cb.on_checkpoint(learner, budget.done)
            if scalars.get("stop") or any(stop):
                break
    finally:
        ctrl_c.restore()
        bar.close()
        log.close()
        figures = learner.finish()
    out: dict[str, Any] = {plural(learner.unit): budget.done, "seconds": time.perf_counter() - t0}
    out[plural(learner.budget_unit)] = learner.trained()
    out.update(log.summary())
    out.update(figures)
    if checkpoint:
        out["checkpoint"] = str(learner.save(checkpoint))
        for cb in callbacks:
            cb.on_checkpoint(learner, budget.done)
        if log.values:
            out["curve"] = str(log.plot(run_dir / "learning_curve.png", f"{learner.name}: learning curve"))  # type: ignore[operator]
    for cb in callbacks:
        cb.on_end(learner)
    return out


class BlockSize:
    """How many units a `LearnsInBlocks` learner gets per call: as many as fit in about
    BLOCK_SECONDS (starting from 16, doubling or halving after each block), so a short unit
    costs no Python per unit and Ctrl-C and checkpoints still come at most that late."""

    BLOCK_SECONDS = 0.1

    def __init__(self) -> None:
        self.size = 16

    def learn(self, learner: Any, env: gym.Env, index: int, count: int, total: int) -> dict[str, np.ndarray] | None:
        t0 = time.perf_counter()
        columns = learner.learn_block(env, index, min(count, self.size), total)
        seconds = time.perf_counter() - t0
        if seconds < self.BLOCK_SECONDS / 2:
            self.size = min(2 * self.size, 1 << 20)
        elif seconds > 2 * self.BLOCK_SECONDS:
            self.size = max(self.size // 2, 2)
        return columns


def _plain(ref: Any) -> Any:
    """An env record as it reads back from JSON (tuples become lists), for comparing."""
    import json

    return json.loads(json.dumps(ref, sort_keys=True, default=str))


def _describe(ref: dict[str, Any]) -> str:
    kwargs = " ".join(f"{k}={v}" for k, v in sorted((ref.get("kwargs") or {}).items()))
    return f"{ref.get('id')} {kwargs}".strip()[:200]


def _non_finite(learner: Any, bad: NonFinite, unit: int, checkpoint: Path | None) -> TrainingError:
    """The error for a non-finite value, after saving the last good state where there is a run folder."""
    if checkpoint is not None:
        saved = learner.save(checkpoint)
        kept = f"the last good state (after {learner.budget.done} {plural(learner.unit)}) is saved in {saved}"
    else:
        kept = "nothing was saved (no run folder)"
    return TrainingError(
        f"{learner.name}: the {bad.component} became {bad.value} in {learner.unit} {unit}; training stopped and "
        f"{kept}: lower the learning rate or the gradient clip"
    )


# --------------------------------------------------------------------------- the log


class TrainingLog:
    """Per-unit scalars ("return" first among them) and evaluations during training.

    `values[name]` is one float per unit, until a run is so long that a scalar would hold
    more than MAX_POINTS of them: then neighbouring points are averaged in pairs (the
    curve keeps its shape at half the resolution, `stride[name]` units per point), so a
    run of 10^9 episodes keeps a bounded log, checkpoint and TensorBoard file. `totals`
    are exact sums (env steps done). `evals` holds (unit, J of the greedy policy) from an
    evaluation callback, `optimum` the best achievable J and `eval_label` how J was
    computed (its discount). Goes to TensorBoard as it comes, and to a PNG at the end.
    """

    MAX_POINTS = 1 << 17  # per scalar

    def __init__(self, run_dir: str | Path | None = None, unit: str = "episode") -> None:
        self.run_dir = Path(run_dir) if run_dir else None
        self.unit = unit
        self.values: dict[str, list[float]] = {}
        self.stride: dict[str, int] = {}
        self.totals: dict[str, float] = {}
        self.units = 0
        self._pending: dict[str, tuple[float, int]] = {}  # (sum, count) of the point being filled
        self.evals: list[tuple[int, float]] = []
        self.optimum: float | None = None
        self.eval_label = "J = E[discounted return]"
        self._writer: Any = None

    @property
    def returns(self) -> list[float]:
        """The return of each unit as experienced (exploration included; a batch's mean)."""
        return self.values.get("return", [])

    def _tb(self) -> Any:
        if self._writer is None and self.run_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        return self._writer

    def record(self, scalars: dict[str, float]) -> None:
        self.units += 1
        writer = self._tb()
        for name, value in scalars.items():
            if name == "stop" or value is None:
                continue
            value = float(value)
            self.totals[name] = self.totals.get(name, 0.0) + value
            total, count = self._pending.get(name, (0.0, 0))
            total, count = total + value, count + 1
            stride = self.stride.setdefault(name, 1)
            if count < stride:
                self._pending[name] = (total, count)
                continue
            self._pending[name] = (0.0, 0)
            points = self.values.setdefault(name, [])
            points.append(total / count)
            if writer is not None:
                writer.add_scalar(f"train/{name}", total / count, self.units)
            if len(points) >= self.MAX_POINTS:  # half the resolution: neighbours averaged
                self.values[name] = [(a + b) / 2 for a, b in zip(points[0::2], points[1::2])]
                self.stride[name] = 2 * stride

    def record_block(self, columns: dict[str, np.ndarray]) -> dict[str, float]:
        """`record` for each unit of a block (one array per scalar, as `learn_block` returns
        them), so the log is the one unit-by-unit training writes; returns the last unit's scalars."""
        names = list(columns)
        last = {name: float(columns[name][-1]) for name in names}
        if self.writing:  # TensorBoard takes each point: unit by unit
            for row in zip(*(columns[name].tolist() for name in names)):
                self.record(dict(zip(names, row)))
            return last
        self.units += len(columns[names[0]])
        for name in names:  # what `record` does for each value, without a call per value
            values = columns[name].tolist()
            total = self.totals.get(name, 0.0)
            for v in values:
                total += v
            self.totals[name] = total
            points, stride = self.values.setdefault(name, []), self.stride.setdefault(name, 1)
            pending, count = self._pending.get(name, (0.0, 0))
            i = 0
            while i < len(values):
                if stride == 1 and count == 0:  # a point per value: (0.0 + v) / 1, as `record` computes it
                    take = values[i:i + self.MAX_POINTS - len(points)]
                    points.extend([0.0 + v for v in take])
                    i += len(take)
                else:
                    pending, count, i = pending + values[i], count + 1, i + 1
                    if count < stride:
                        continue
                    points.append(pending / count)
                    pending, count = 0.0, 0
                if len(points) >= self.MAX_POINTS:  # half the resolution: neighbours averaged
                    points = self.values[name] = [(a + b) / 2 for a, b in zip(points[0::2], points[1::2])]
                    stride = self.stride[name] = 2 * stride
            self._pending[name] = (pending, count)
        return last

    def evaluation(self, done: int, J: float) -> None:
        self.evals.append((done, float(J)))
        writer = self._tb()
        if writer is not None:
            writer.add_scalar("eval/greedy_J", J, done)
            if self.optimum is not None:
                writer.add_scalar("eval/optimal_J", self.optimum, done)

    @property
    def writing(self) -> bool:
        """Whether records reach TensorBoard (a run folder): what is only drawn for it can be skipped otherwise."""
        return self._tb() is not None

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An image (C, H, W) in [0, 1] to TensorBoard (e.g. a generator's sample grid)."""
        writer = self._tb()
        if writer is not None:
            writer.add_image(tag, image, step)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.returns:
            out["final_return"] = self.returns[-1]
        if self.evals:
            out["greedy_J"] = self.evals[-1][1]
        if self.optimum is not None:
            out["optimal_J"] = self.optimum
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The log as arrays, to travel inside a checkpoint (so --resume continues the curve
        exactly as the uninterrupted run would: its points, strides, partial points and totals)."""
        out = {f"log_{name}": np.array(v, dtype=float) for name, v in self.values.items()}
        out["log_evals"] = np.array(self.evals, dtype=float).reshape(-1, 2)
        for name in set(self.values) | set(self._pending):
            total, count = self._pending.get(name, (0.0, 0))
            out[f"logstate_{name}"] = np.array([self.stride.get(name, 1), total, count, self.totals.get(name, 0.0)])
        out["logunits"] = np.array([self.units], dtype=np.int64)
        return out

    def restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """The log as a checkpoint carried it; a malformed one is a damaged checkpoint."""
        try:
            values = {k[4:]: np.asarray(v, dtype=float) for k, v in arrays.items()
                      if k.startswith("log_") and k != "log_evals"}
            evals = np.asarray(arrays.get("log_evals", np.zeros((0, 2))), dtype=float)
            if any(v.ndim != 1 for v in values.values()) or evals.ndim != 2 or evals.shape[1] != 2:
                raise ValueError("shape")
            if not np.isfinite(evals[:, 0]).all() or (evals[:, 0] < 0).any():
                raise ValueError("units")
            states = {k[len("logstate_"):]: np.asarray(v, dtype=float) for k, v in arrays.items()
                      if k.startswith("logstate_")}
            if any(v.shape != (4,) or not np.isfinite(v).all() or v[0] < 1 or v[2] < 0 for v in states.values()):
                raise ValueError("state")
            units = int(np.asarray(arrays.get("logunits", [len(values.get("return", []))])).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            raise CheckpointError("the training log inside the checkpoint is damaged; write it again") from None
        self.values = {k: v.tolist() for k, v in values.items()}
        self.evals = [(int(e), float(j)) for e, j in evals]
        self.units = units  # (a checkpoint from before strides: one point per unit, totals summed)
        self.stride = {k: int(states[k][0]) if k in states else 1 for k in set(values) | set(states)}
        self._pending = {k: (float(v[1]), int(v[2])) for k, v in states.items() if v[2] > 0}
        self.totals = {k: float(states[k][3]) if k in states else float(sum(values.get(k, [])))
                       for k in set(values) | set(states)}

    def restore(self, other: "TrainingLog") -> None:
        self.values, self.evals = {k: list(v) for k, v in other.values.items()}, list(other.evals)
        self.stride, self.totals = dict(other.stride), dict(other.totals)
        self._pending, self.units = dict(other._pending), other.units

    def plot(self, path: str | Path, title: str) -> Path:
        """Learning curve PNG: experienced returns (smoothed), and below them the greedy
        policy's exact J against the optimum when an evaluation callback ran."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        exact = bool(self.evals) or self.optimum is not None
        fig, axes = plt.subplots(2 if exact else 1, 1, figsize=(8, 6 if exact else 3.5), sharex=True, squeeze=False)
        top = axes[0, 0]
        G = np.array(self.returns)
        x = np.arange(1, len(G) + 1) * self.stride.get("return", 1)  # the unit each point ends at
        w = max(1, len(G) // 50)
        top.plot(x, G, color="0.8" if w > 1 else "C0", lw=0.6 if w > 1 else 1.2, label=f"return per {self.unit}")
        if w > 1:
            top.plot(x[w - 1:], np.convolve(G, np.ones(w) / w, mode="valid"), color="C0", label=f"moving mean ({w})")
        top.set_ylabel("return (while exploring)")
        top.legend(loc="lower right")
        if exact:
            bottom = axes[1, 0]
            if self.evals:
                ev = np.array(self.evals)
                bottom.plot(ev[:, 0], ev[:, 1], "o-", color="C1", ms=3, label="greedy policy, exact J")
            if self.optimum is not None:
                bottom.axhline(self.optimum, color="C2", ls="--", label="optimum J* (DP)")
            bottom.set_ylabel(self.eval_label)
            bottom.legend(loc="lower right")
        axes[-1, 0].set_xlabel(f"training {self.unit}")
        fig.suptitle(title)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# --------------------------------------------------------------------------- progress and Ctrl-C


class ProgressBar:
    """Training progress on stderr: a rich bar on a terminal, else a plain line every few seconds.

    Shows the mean return of the last 100 units and any of epsilon / accuracy the learner reports.
    """

    def __init__(self, show: bool | None, total: int, done: int, label: str, unit: str) -> None:
        self.total, self.done, self.label, self.unit = total, done, label, unit
        self.recent: deque[float] = deque(maxlen=100)
        self.info = ""
        self.bar: Any = None
        self.plain = show is None and not sys.stderr.isatty()
        self.last_line = time.monotonic()
        self.shared = bool(LIVE)
        if self.shared and show is not False:  # a row of the display that is live (a tournament's, a demo's)
            self.plain = False
            self.bar = LIVE[-1]
            self.task = self.bar.add_task(f"{label} ({plural(unit)})", total=total, completed=done)
        elif show or (show is None and sys.stderr.isatty()):
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

            self.bar = progress_display(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeRemainingColumn())
            self.task = self.bar.add_task(f"{label} ({plural(unit)})", total=total, completed=done, info="")
            self.bar.start()

    def update(self, scalars: dict[str, float]) -> None:
        self.done += 1
        if scalars.get("return") is not None:
            self.recent.append(float(scalars["return"]))  # a deque of the last 100
        line_due = self.plain and time.monotonic() - self.last_line >= PLAIN_PROGRESS_EVERY_S
        if self.bar is None and not line_due:
            return  # nothing is shown this unit: the text is not worth making
        parts = [f"return {sum(self.recent) / len(self.recent):8.3f}"] if self.recent else []
        if scalars.get("epsilon") is not None:
            parts.append(f"eps {scalars['epsilon']:.3f}")
        if scalars.get("accuracy") is not None:
            parts.append(f"accuracy {scalars['accuracy']:.1%}")
        self.info = "  ".join(parts)
        if self.shared:
            self.bar.update(self.task, advance=1, description=f"{self.label} ({plural(self.unit)})  {self.info}")
        elif self.bar is not None:
            self.bar.update(self.task, advance=1, info=self.info)
        else:
            self.last_line = time.monotonic()
            print(f"{self.label}: {self.done}/{self.total} {plural(self.unit)}  {self.info}", file=sys.stderr, flush=True)

    def update_block(self, returns: np.ndarray, last: dict[str, float]) -> None:
        """`update` for a block of units: their returns, and the last unit's scalars shown."""
        self.recent.extend(returns[-100:].tolist())
        self.done += len(returns) - 1
        if self.bar is not None:
            self.bar.update(self.task, advance=len(returns) - 1)
        self.update({k: v for k, v in last.items() if k != "return"})

    def close(self) -> None:
        if self.shared:
            self.bar.remove_task(self.task)
        elif self.bar is not None:
            self.bar.stop()


LIVE: list[Any] = []  # the live progress display on stderr, if any (at most one: a second would draw over it)


def progress_display(*columns: Any, disable: bool = False) -> Any:
    """The one kind of live progress display on stderr (rich): while one is live, every bar
    opened under it (a job's training inside a tournament or a demo) is added as a row of
    it instead of starting a second display that would overwrite the first's line."""
    from rich.console import Console
    from rich.progress import Progress

    class Display(Progress):
        def start(self) -> None:
            super().start()
            if not self.disable and self not in LIVE:
                LIVE.append(self)

        def stop(self) -> None:
            if self in LIVE:
                LIVE.remove(self)
            super().stop()

    return Display(*columns, transient=True, console=Console(stderr=True), disable=disable)


class CtrlC:
    """While training, the first Ctrl-C asks to stop at the next unit boundary (so the
    checkpoint holds whole units and --resume is exact); a second one stops at once."""

    def __init__(self) -> None:
        self.pressed = False
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


__all__ = [
    "AgentBase", "Budget", "CHECKPOINT_EVERY_S", "Callback", "CtrlC", "fit", "NonFinite", "ProgressBar", "TrainingInterrupted",
    "TrainingLog", "env_ref", "episode_seed", "plural", "plural_count", "progress_display", "restore_progress", "train",
]
