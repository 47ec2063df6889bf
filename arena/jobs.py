"""One run, a job: train (or load) an agent, play the fixed evaluation seeds with recording,
and score it. `run_job` never writes the database: its caller adds the row, so a job that
is retried cannot land twice (rows are keyed by `Job.run_key`).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym

from agents.protocol import Agent, EpisodeLearner, Generator, HasPolicyTable, Learner, Player, RunSpec
from agents.training import Callback
from arena.errors import AgentError, RegistryError
from arena.leaderboard import Result, code_version
from arena.match import Episode, RecordTraining, play
from arena.registry import check_pairing, make_agent, make_env
from arena.scoring import (EVAL_GAMMA, ExactEvaluation, accuracy, exact_score, image_metrics, image_score,
                           sampled_score, successes)
from arena.statistics import summarise
from envs.abilities import HasModel

DEFAULT_EPISODES = 10
EVAL_SEED_BASE = 1000  # evaluation seeds 1000, 1001, ...: never the training seed


@dataclass
class Job:
    """One run: which agent (by registry name, with its settings) on which env, trained as
    `spec` says (seed, budget, resume, checkpoint interval, progress), then evaluated on
    `episodes` fixed seeds. With `checkpoint`, that checkpoint is evaluated instead."""

    agent: str
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_config: dict[str, Any] = field(default_factory=dict)
    spec: RunSpec = field(default_factory=RunSpec)
    episodes: int = DEFAULT_EPISODES
    checkpoint: str | None = None  # evaluate this checkpoint instead of training
    run_key: str = ""
    record_training: int = 0  # record every k-th training episode (0: none)
    video: str | None = None  # generators: a video of fixed-latent samples, one frame per checkpoint

    def __post_init__(self) -> None:
        if not isinstance(self.spec, RunSpec):
            raise TypeError(f"Job.spec must be a RunSpec (seed, budget, ...), got {self.spec!r}")
        if not self.run_key:
            kw = self.env_kwargs
            self.run_key = new_run_key(self.agent, str(kw.get("layout") or kw.get("task") or self.env_id.split("/")[-1]))

    @property
    def train_seed(self) -> int:
        return self.spec.seed

    @property
    def eval_seeds(self) -> list[int]:
        return [EVAL_SEED_BASE + i for i in range(self.episodes)]


def new_run_key(agent: str, env: str) -> str:
    """A unique, readable key: time, agent, env and a random suffix."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    env_part = re.sub(r"[^A-Za-z0-9]+", "-", env.split("\n")[0] if "\n" not in env else "map")[:32].strip("-")
    return f"{stamp}-{agent}-{env_part}-{secrets.token_hex(3)}"


def job_callbacks(job: Job, agent: Agent, env: gym.Env, replays_dir: str | Path) -> list[Callback]:
    """What a job adds to the training loop: the exact J while learning (learners with a policy
    table on an env with a model), training replays (--record-training), a sample video (--video)."""
    callbacks: list[Callback] = []
    if isinstance(env.unwrapped, HasModel) and isinstance(agent, EpisodeLearner) and isinstance(agent, HasPolicyTable):
        callbacks.append(ExactEvaluation(env.unwrapped.mdp))
    if job.record_training > 0:
        callbacks.append(RecordTraining(job.record_training, Path(replays_dir) / job.run_key, job.agent))
    if job.video:
        if not isinstance(agent, Generator):
            raise RegistryError(f"--video shows a generator's samples as it trains; {job.agent} makes no images")
        from arena.viewer import SampleVideo

        callbacks.append(SampleVideo(job.video))
    return callbacks


def run_job(
    job: Job,
    replays_dir: str | Path,
    runs_dir: str | Path = "runs",
    on_episode: Callable[[Episode], None] | None = None,
) -> tuple[Result, dict[str, Any]]:
    """Train (or load), evaluate with recording, score. Returns the row and the training log.

    The job's RunSpec reaches the loop as it is, plus what only the job knows: its run folder
    (runs_dir/run_key) and its callbacks."""
    if job.episodes < 1:
        raise RegistryError(f"episodes={job.episodes}; evaluate at least 1 episode")
    agent = make_agent(job.agent, **job.agent_config)
    env = make_env(job.env_id, job.env_kwargs)
    check_pairing(job.agent, job.env_id, env)
    t0 = time.perf_counter()
    try:
        if job.checkpoint:
            agent.load(job.checkpoint, env=env)
            agent.check_fits(env)
            log: dict[str, Any] = {"checkpoint": job.checkpoint}
        else:
            run_dir = Path(runs_dir) / job.run_key
            callbacks = job_callbacks(job, agent, env, replays_dir)
            log = agent.fit(env, job.spec.but(run_dir=run_dir, callbacks=(*job.spec.callbacks, *callbacks)))
            if not isinstance(log, dict):
                raise AgentError(f"{job.agent}.fit returned {type(log).__name__}; it must return a dict of figures")
            for cb in callbacks:
                if isinstance(cb, RecordTraining):
                    log["training_replays"] = len(cb.saved)
            if job.video and Path(job.video).exists():
                log["video"] = job.video
            if "checkpoint" not in log:
                log["checkpoint"] = str(agent.save(run_dir / "checkpoint.npz"))
        train_seconds = time.perf_counter() - t0

        t1 = time.perf_counter()
        episodes = play(agent, job.env_id, job.env_kwargs, job.eval_seeds, Path(replays_dir) / job.run_key, on_episode=on_episode)
        result = score_run(job, agent, env, episodes, train_seconds, time.perf_counter() - t1)
    finally:
        env.close()
    return result, log


def score_run(job: Job, agent: Agent | Player, env: gym.Env, episodes: list[Any], train_seconds: float,
              eval_seconds: float) -> Result:
    """The leaderboard row of a run's evaluation episodes: returns, success, and the normalised
    score (exact for grids, sampled from the episodes where the player's choices depend on
    history, the generator score for images, accuracy for sequence tasks)."""
    exact = exact_score(agent, env)
    sampled = None if exact else sampled_score(env, episodes)
    image = image_score(env, episodes)
    summary = summarise([e.episode_return for e in episodes])
    sampled_note = f"score sampled from {len(episodes)} episode(s): the player's choices depend on history"
    return Result(
        run_key=job.run_key,
        env_id=job.env_id,
        env_kwargs=job.env_kwargs,
        agent=job.agent,
        agent_config=agent.config(),
        train_seed=job.train_seed,
        eval_seeds=job.eval_seeds,
        returns=summary.returns,
        mean_return=summary.mean,
        std_return=summary.std,
        iqm_return=summary.iqm,
        score=exact.score if exact else sampled if sampled is not None else image.normalised if image else accuracy(
            episodes),
        exact_return=exact.expected_return if exact else None,
        eval_gamma=EVAL_GAMMA if exact else None,
        replay_paths=[e.replay_path for e in episodes if e.replay_path],
        checkpoint=agent.digest(),
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        code_version=code_version(),
        note="; ".join(n for n in (summary.note, image.note if image else "", sampled_note if sampled is not None else "")
                       if n),
        metrics=image_metrics(image) if image else {},
        successes=successes(episodes),
        budget=agent.trained() if isinstance(agent, Learner) and agent.budget is not None else None,
        budget_unit=agent.budget_unit if isinstance(agent, Learner) and agent.budget is not None else "",
    )


__all__ = ["DEFAULT_EPISODES", "EVAL_SEED_BASE", "Job", "job_callbacks", "new_run_key", "run_job", "score_run"]
