"""The memory report card: how long a sequence each network can hold, measured as bsuite
measures capabilities.

For each agent and memory task (copy, reverse, parity), the agent is trained at growing
lengths 1, 2, 4, 8, 16, 32, 64 with the same budget per length and several training seeds,
each run evaluated like any other (its accuracy on fixed evaluation seeds); an (agent,
task) pair stops after two lengths it fails (mean accuracy below 0.9 over its seeds). Its
mark is the longest length reached at >= 0.9 accuracy, per training seed, summarised over
seeds (IQM with a 95% bootstrap interval).

Every length is one round of the tournament machinery (arena/tournament.py): each run
lands on the leaderboard as it finishes, so an interrupted card resumes where it stopped,
on a local pool or Ray, and the runs are there to replay and rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from arena.errors import RegistryError
from arena.leaderboard import Result
from arena.tournament import Suite, SuiteAgent, run_suite

LENGTHS = (1, 2, 4, 8, 16, 32, 64)
TASKS = ("copy", "reverse", "parity")
PASS = 0.9  # the accuracy a length must reach
FAILURES = 2  # failed lengths after which a pair stops
NETWORKS = ("reinforce-mlp", "reinforce-rnn", "reinforce-lstm", "reinforce-transformer")  # `arena card --all`
SEQ = "arena/SequencePrediction-v0"


@dataclass
class Mark:
    """One agent on one task: accuracy per length and seed, and the longest length passed."""

    agent: str
    task: str
    seeds: list[int]
    accuracy: dict[int, list[float]] = field(default_factory=dict)  # length -> per seed, in `seeds` order

    def longest(self) -> list[int]:
        """Per seed: the longest length whose accuracy reached PASS (0: none)."""
        return [max([L for L, acc in self.accuracy.items() if acc[i] >= PASS], default=0) for i in range(len(self.seeds))]

    def failed(self) -> int:
        return sum(float(np.mean(acc)) < PASS for acc in self.accuracy.values())

    def summary(self) -> tuple[float, tuple[float, float]]:
        """IQM of the longest length over seeds, and its 95% interval (a single seed: itself)."""
        from arena.statistics import aggregate

        values = [float(v) for v in self.longest()]
        if len(values) < 2:
            return values[0], (values[0], values[0])
        agg = aggregate(values)
        return agg.iqm, (float(agg.ci[0]), float(agg.ci[1]))

    def as_dict(self) -> dict[str, Any]:
        iqm, ci = self.summary()
        return {"agent": self.agent, "task": self.task, "seeds": self.seeds, "longest": self.longest(), "iqm": iqm,
                "ci": list(ci), "accuracy": {str(L): acc for L, acc in sorted(self.accuracy.items())}}


def memory_card(agents: list[str], board: Any, replays: str | Path, runs: str | Path, *, tasks: tuple[str, ...] = TASKS,
                config: dict[str, Any] | None = None,
                seeds: tuple[int, ...] = (0, 1, 2), budget: int | None = None, eval_episodes: int = 20,
                lengths: tuple[int, ...] = LENGTHS, workers: int = 1, backend: str = "local", address: str | None = None,
                on_result: Callable[[SuiteAgent, Result], None] | None = None,
                on_length: Callable[[int, int], None] | None = None) -> list[Mark]:
    """Run the card (see the module docstring) for `agents` on `tasks` (each with the settings
    `config`, checked before anything runs); returns a Mark per pair."""
    from arena import registry

    for task in tasks:
        if task not in TASKS:
            raise RegistryError(f"the memory card's tasks are {', '.join(TASKS)}, not {task!r}")
    for name in agents:  # an unknown name, or one that cannot play sequence tasks, is one line before anything runs
        registry.make_agent(name, **(config or {}))
        registry.check_pairing(name, SEQ, kwargs={"task": tasks[0], "length": 1})
    marks = {(a, t): Mark(a, t, list(seeds)) for a in agents for t in tasks}
    for length in lengths:
        alive = [m for m in marks.values() if m.failed() < FAILURES]
        if not alive:
            break
        envs = [(f"seq:{t} length={length}", SEQ, {"task": t, "length": length}) for t in tasks]
        skipped = [f"{m.agent} on seq:{m.task} length={length} (failed {FAILURES} lengths)" for m in marks.values()
                   if m.failed() >= FAILURES]
        suite = Suite(f"card-length-{length}", Path("card"), f"memory card, length {length}",
                      [SuiteAgent(a, a, dict(config or {}), budget) for a in agents], envs, list(seeds), eval_episodes, False, skipped)
        if on_length:
            on_length(length, len(suite.jobs()))
        for agent, job, result, _ in run_suite(suite, board, replays, runs, workers=workers, on_result=on_result,
                                               backend=backend, address=address):
            mark = marks[(agent.name, job.env_kwargs["task"])]
            mark.accuracy.setdefault(length, [0.0] * len(seeds))[list(seeds).index(job.train_seed)] = float(result.score or 0.0)
    return list(marks.values())


def marks_from_results(results: list[Result]) -> list[Mark]:
    """The cards in leaderboard rows: an agent (one settings and budget) with runs on a memory
    task at two lengths or more. Lengths where some seed is missing are left out."""
    import json

    groups: dict[tuple[str, str, Any, str], dict[int, dict[int, float]]] = {}
    for r in results:
        task, length = r.env_kwargs.get("task"), r.env_kwargs.get("length")
        if r.env_id != SEQ or task not in TASKS or not isinstance(length, int) or r.score is None:
            continue
        key = (r.agent, json.dumps(r.agent_config, sort_keys=True, default=str), r.budget, str(task))
        groups.setdefault(key, {}).setdefault(length, {})[r.train_seed] = float(r.score)
    variants: dict[str, set[tuple[str, Any]]] = {}  # per agent, its (settings, budget): named apart when several
    for agent, config, budget, _ in groups:
        variants.setdefault(agent, set()).add((config, budget))
    marks = []
    for (agent, config, budget, task), by_length in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2] or 0, kv[0][3])):
        if len(by_length) < 2:
            continue
        seeds = sorted(by_length[min(by_length)])
        label = agent if len(variants[agent]) == 1 else f"{agent} budget={budget} {config}"
        mark = Mark(label, task, seeds)
        for length, per_seed in sorted(by_length.items()):
            if all(s in per_seed for s in seeds):
                mark.accuracy[length] = [per_seed[s] for s in seeds]
        marks.append(mark)
    return marks


def card_png(marks: list[Mark]) -> bytes:
    """Accuracy against length (log scale), one panel per task, a line per agent (mean over
    seeds, band: lowest to highest seed), the 0.9 bar dashed."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({m.task for m in marks}, key=TASKS.index)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False, sharey=True)
    for ax, task in zip(axes[0], tasks):
        for i, m in enumerate(m for m in marks if m.task == task):
            L = sorted(m.accuracy)
            acc = np.array([m.accuracy[x] for x in L])
            ax.plot(L, acc.mean(axis=1), "o-", color=f"C{i}", label=m.agent.removeprefix("reinforce-"))
            ax.fill_between(L, acc.min(axis=1), acc.max(axis=1), color=f"C{i}", alpha=0.15)
        ax.axhline(PASS, color="0.4", ls="--", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("length")
        ax.set_title(task)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy (mean over seeds)")
    axes[0, -1].legend(fontsize=8)
    fig.suptitle("memory card: accuracy at growing lengths (dashed: the 0.9 bar)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def card_plot(marks: list[Mark], path: Path) -> Path:
    """`card_png` written to `path` (atomically)."""
    from agents.checkpoint import write_atomically

    png = card_png(marks)
    return write_atomically(path, lambda tmp: tmp.write_bytes(png))


__all__ = ["FAILURES", "LENGTHS", "Mark", "NETWORKS", "PASS", "TASKS", "card_plot", "card_png", "marks_from_results",
           "memory_card"]
