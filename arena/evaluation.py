"""The evaluation protocol in one call: `arena.evaluate(agent, env, train_seeds=3, eval_episodes=10)`.

N training runs (training seeds) x M evaluation episodes (evaluation seeds 1000, 1001, ...,
disjoint from the training seeds, both recorded), aggregated over runs as mean, median,
interquartile mean (IQM) and a 95% stratified bootstrap confidence interval
(arena/statistics.py), plus a success rate.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from agents.protocol import RunSpec
from arena.jobs import EVAL_SEED_BASE, Job, run_job
from arena.leaderboard import Result, text_summary
from arena.statistics import CONFIDENCE, Aggregate, aggregate

# --------------------------------------------------------------------------- the protocol in one call


@dataclass
class Evaluation:
    """N training runs x M evaluation episodes of one agent on one env, with every figure.

    `score` aggregates each run's normalised score (exact for grids, accuracy for sequence
    tasks, the generator score for images); `mean_return` each run's mean return;
    `success_rate` is over all evaluation episodes (None where the env has no goal);
    `runs` are the leaderboard rows, one per training seed."""

    agent: str
    env: str
    config: dict[str, Any]
    train_seeds: list[int]
    eval_seeds: list[int]
    runs: list[Result]  # leaderboard rows, one per training seed
    score: Aggregate | None
    mean_return: Aggregate | None
    success_rate: float | None
    flags: list[str] = field(default_factory=list)

    def _median_metric(self, key: str) -> float | None:
        values = [float(r.metrics[key]) for r in self.runs
                  if isinstance(r.metrics.get(key), (int, float)) and math.isfinite(r.metrics[key])]
        return float(statistics.median(values)) if values else None

    @property
    def fid(self) -> float | None:
        """Generators: the median over runs of the Frechet distance to held-out data (lower is better)."""
        return self._median_metric("fid")

    @property
    def inception_score(self) -> float | None:
        """Generators: the median over runs of the inception score in the classifier's features."""
        return self._median_metric("inception_score")

    @property
    def coverage(self) -> float | None:
        """Generators: the median over runs of the share of the data set's classes the images cover."""
        return self._median_metric("coverage")

    @property
    def image_figures(self) -> str:
        """'FID 41.2, IS 9.3, coverage 100%' for a generator; '' otherwise."""
        if self.fid is None:
            return ""
        parts = [f"FID {self.fid:.1f}"]
        if self.inception_score is not None:
            parts.append(f"IS {self.inception_score:.2f}")
        if self.coverage is not None:
            parts.append(f"coverage {self.coverage:.0%}")
        return ", ".join(parts)

    @property
    def gold(self) -> float | None:
        """Text: the median over runs of the mean gold score (the task's hidden rule)."""
        return self._median_metric("gold")

    @property
    def proxy(self) -> float | None:
        """Text: the median over runs of the mean reward-model score (the env's, else the agent's own)."""
        return self._median_metric("proxy")

    @property
    def kl(self) -> float | None:
        """Text: the median over runs of the mean KL (nats per response) from the agent's reference."""
        return self._median_metric("kl")

    @property
    def kl_bound(self) -> float | None:
        """Text: best-of-n's bound on its KL from the stage-1 model, log n - (n-1)/n (Beirami et al. 2024)."""
        return self._median_metric("kl_bound")

    @property
    def text_figures(self) -> str:
        """'gold 0.95, proxy +3.04, KL 0.76' for a writer; '' otherwise."""
        return text_summary(self.gold, self.proxy, self.kl, self.kl_bound)

    @property
    def returns(self) -> list[list[float]]:
        """Per run, per evaluation episode."""
        return [list(r.returns) for r in self.runs]

    @property
    def successes(self) -> list[list[bool]]:
        return [list(r.successes) for r in self.runs]

    def _repr_html_(self) -> str:
        """The result as a table in a notebook (Jupyter calls this; every text is escaped)."""
        import html

        def cell(x: float | None, digits: int = 3) -> str:
            return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"

        score = (f"{cell(self.score.iqm)} [{cell(self.score.ci[0])}, {cell(self.score.ci[1])}]" if self.score else "n/a")
        rows = [("agent", self.agent), ("env", self.env), ("runs", f"{len(self.runs)} (training seeds {self.train_seeds})"),
                ("score IQM [95% CI]", score),
                ("success", "n/a" if self.success_rate is None else f"{self.success_rate:.0%}"),
                ("mean return (IQM)", cell(self.mean_return.iqm if self.mean_return else None, 2))]
        figures = "; ".join(filter(None, [self.image_figures, self.text_figures, *self.flags]))
        if figures:
            rows.append(("notes", figures))
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                       f"{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<table class='arena-evaluation'>{body}</table>"

    @classmethod
    def of(cls, agent: str, env: str, runs: list[Result]) -> "Evaluation":
        """The evaluation of finished runs (leaderboard rows of one agent and env)."""
        scores = [r.score for r in runs if r.score is not None and math.isfinite(r.score)]
        means = [r.mean_return for r in runs if r.mean_return is not None and math.isfinite(r.mean_return)]
        flat = [s for r in runs for s in r.successes]
        rate = sum(flat) / len(flat) if flat and all(r.successes for r in runs) else None
        flags = []
        if rate == 0.0:
            flags.append("never succeeds")
        if any(r.metrics.get("mode_collapse") for r in runs):
            flags.append("mode collapse")
        return cls(agent, env, dict(runs[0].agent_config) if runs else {}, [r.train_seed for r in runs],
                   list(runs[0].eval_seeds) if runs else [], runs,
                   aggregate(scores) if len(scores) == len(runs) and scores else None,
                   aggregate(means) if len(means) == len(runs) and means else None, rate, flags)

    def __str__(self) -> str:
        score = str(self.score) if self.score else "no score"
        success = "" if self.success_rate is None else f"; success rate {self.success_rate:.0%}"
        flags = "".join(f" [{f}]" for f in self.flags)
        seeds = self.eval_seeds
        span = f"{seeds[0]}..{seeds[-1]}" if seeds else "none"
        return (f"{self.agent} on {self.env}: score {score}{success}{flags} "
                f"(train seeds {self.train_seeds}, eval seeds {span})")

    def as_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (non-finite numbers as null)."""
        from arena.leaderboard import json_ready

        def agg(a: Aggregate | None) -> Any:
            return None if a is None else {"values": list(a.values), "mean": a.mean, "median": a.median,
                                            "iqm": a.iqm, "ci": list(a.ci), "confidence": CONFIDENCE}

        runs = [{k: v for k, v in asdict(r).items() if k not in ("id", "created")} for r in self.runs]
        return json_ready({"agent": self.agent, "env": self.env, "config": self.config, "train_seeds": self.train_seeds,
                           "eval_seeds": self.eval_seeds, "score": agg(self.score), "mean_return": agg(self.mean_return),
                           "success_rate": self.success_rate, "flags": self.flags, "fid": self.fid,
                           "inception_score": self.inception_score, "coverage": self.coverage,
                           "gold": self.gold, "proxy": self.proxy, "kl": self.kl, "returns": self.returns, "successes": self.successes, "runs": runs})

    def record(self, db: str | Path | None = None) -> int:
        """Write each run to the leaderboard (skipping rows already there); returns rows added."""
        from arena.leaderboard import Leaderboard

        board = Leaderboard(db)
        return sum(board.add(r) for r in self.runs)


def seed_list(train_seeds: int | Sequence[int], eval_seeds: Sequence[int]) -> list[int]:
    """Training seeds from a count (0..N-1) or a list: distinct, in [0, 2^31), none an evaluation seed."""
    from arena.errors import SettingsError

    from arena.jobs import MAX_TRAIN_SEEDS

    if isinstance(train_seeds, bool) or not isinstance(train_seeds, (int, list, tuple, range)):
        raise SettingsError(f"train_seeds={train_seeds!r}; give a count (3) or a list of seeds ([0, 1, 2])")
    if (train_seeds if isinstance(train_seeds, int) else len(train_seeds)) > MAX_TRAIN_SEEDS:
        raise SettingsError(f"train_seeds: {train_seeds if isinstance(train_seeds, int) else len(train_seeds)} "
                            f"training runs; at most {MAX_TRAIN_SEEDS} (each trains the agent once)")
    seeds = list(range(train_seeds)) if isinstance(train_seeds, int) else list(train_seeds)
    if not seeds:
        raise SettingsError(f"train_seeds={train_seeds!r}; train at least one run")
    if not all(type(s) is int and 0 <= s < 2**31 for s in seeds) or len(set(seeds)) < len(seeds):
        raise SettingsError(f"train_seeds={train_seeds!r}; use distinct integers in [0, 2^31)")
    clash = sorted(set(seeds) & set(eval_seeds))
    if clash:
        raise SettingsError(f"training seed {clash[0]} is also an evaluation seed ({eval_seeds[0]}.."
                            f"{eval_seeds[-1]}); training and evaluation seeds must be disjoint: pick another")
    return seeds


def evaluate(agent: str, env: str, *, train_seeds: int | Sequence[int] = 3, eval_episodes: int = 10,
             budget: int | None = None, config: dict[str, Any] | None = None, record: bool = False,
             db: str | Path | None = None, replays: str | Path = "replays", runs: str | Path = "runs") -> Evaluation:
    """Train `agent` on `env` once per training seed, evaluate each run on `eval_episodes`
    fixed seeds, and aggregate (see `Evaluation`).

    `agent` and `env` are the CLI's names ("q-learning", "grid:cliff slip=0.1"), a user's own
    agent among them once registered (`arena.register_agent`); `budget` is the training
    budget in the agent's budget unit (episodes, batches, steps; None: its settings');
    `config` its settings.
    With `record=True` each run lands on the leaderboard (`db`, default $ARENA_DB or
    replays/leaderboard.sqlite) with its replays under `replays`; without, replays and
    checkpoints go to a temporary folder that is removed afterwards."""
    import tempfile

    from arena import registry
    from arena.errors import SettingsError

    from arena.jobs import check_episodes

    check_episodes(eval_episodes, "eval_episodes")
    if not isinstance(agent, str) or not agent:
        raise SettingsError(f"agent={agent!r}; name it as `arena agents` lists it, e.g. 'q-learning'")
    if not isinstance(env, str) or not env.strip():
        raise SettingsError(f"env={env!r}; name it as the command line does, e.g. 'grid:cliff slip=0.1'")
    for name, value in (("db", db), ("replays", replays), ("runs", runs)):
        if not (value is None and name == "db") and not isinstance(value, (str, Path)):
            raise SettingsError(f"{name}={value!r}; give a path (a str or pathlib.Path)")
    if type(record) is not bool:
        raise SettingsError(f"record={record!r}; give True or False")
    if budget is not None and (type(budget) is not int or budget < 1):
        raise SettingsError(f"budget={budget!r}; give a positive number in the agent's budget unit (`arena agents NAME` says which), or None for its default")
    if config is not None and (not isinstance(config, dict) or not all(isinstance(k, str) for k in config)):
        raise SettingsError(f"config={config!r}; give the agent's settings as a dict of names, e.g. {{'alpha': 0.5}}")
    eval_seeds = [EVAL_SEED_BASE + i for i in range(eval_episodes)]
    seeds = seed_list(train_seeds, eval_seeds)
    env_id, env_kwargs = registry.parse_env(env)
    registry.make_agent(agent, **(config or {}))  # a bad name or setting fails before any training
    registry.check_pairing(agent, env_id, kwargs=env_kwargs)
    if record:
        from arena.leaderboard import Leaderboard

        Leaderboard(db)  # a bad database fails before any training
    with tempfile.TemporaryDirectory(prefix="arena-eval-") as scratch:
        replay_dir, run_dir = (Path(replays), Path(runs)) if record else (Path(scratch) / "replays", Path(scratch) / "runs")
        results = []
        for seed in seeds:
            job = Job(agent, env_id, env_kwargs, dict(config or {}), RunSpec(seed=seed, budget=budget), eval_episodes)
            result, _ = run_job(job, replay_dir, run_dir)
            if not record:
                result.replay_paths = []  # removed with the scratch folder
            results.append(result)
    evaluation = Evaluation.of(agent, str(env), results)
    if record:
        evaluation.record(db)
    return evaluation


__all__ = ["Evaluation", "evaluate", "seed_list"]
