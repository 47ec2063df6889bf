"""Jobs: one (agent, env, seed) run from training to a leaderboard row, and many of them.

`run_job` trains, plays the fixed evaluation seeds with recording, scores, and returns a
`Result`; it never writes the database itself. The caller (the driver) adds the row, so
a job that is retried cannot land twice (rows are keyed by `Job.run_key`).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from arena import evaluate
from arena.errors import RegistryError
from arena.leaderboard import Result, code_version
from arena.match import Episode, RecordTraining, play
from arena.registry import check_pairing, make_agent, make_env

DEFAULT_EPISODES = 10
EVAL_SEED_BASE = 1000  # evaluation seeds 1000, 1001, ...: never the training seed


@dataclass
class Job:
    agent: str
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_config: dict[str, Any] = field(default_factory=dict)
    train_seed: int = 0
    episodes: int = DEFAULT_EPISODES
    checkpoint: str | None = None  # evaluate this checkpoint instead of training
    run_key: str = ""
    train_episodes: int | None = None  # None: the agent's own budget
    record_training: int = 0  # record every k-th training episode (0: none)
    resume: str | None = None  # continue training from this checkpoint
    checkpoint_every: float | None = None  # seconds between checkpoints while training (None: the loop's default)
    video: str | None = None  # generators: a video of fixed-latent samples, one frame per checkpoint

    def __post_init__(self) -> None:
        if not self.run_key:
            kw = self.env_kwargs
            self.run_key = new_run_key(self.agent, str(kw.get("layout") or kw.get("task") or self.env_id.split("/")[-1]))

    @property
    def eval_seeds(self) -> list[int]:
        return [EVAL_SEED_BASE + i for i in range(self.episodes)]


def new_run_key(agent: str, env: str) -> str:
    """A unique, readable key: time, agent, env and a random suffix."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    env_part = re.sub(r"[^A-Za-z0-9]+", "-", env.split("\n")[0] if "\n" not in env else "map")[:32].strip("-")
    return f"{stamp}-{agent}-{env_part}-{secrets.token_hex(3)}"


def run_job(
    job: Job,
    replays_dir: str | Path,
    runs_dir: str | Path = "runs",
    on_episode: Callable[[Episode], None] | None = None,
) -> tuple[Result, dict[str, Any]]:
    """Train (or load), evaluate with recording, score. Returns the row and the training log."""
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
            callbacks: list[Any] = []
            mdp = getattr(env.unwrapped, "mdp", None)
            if mdp is not None and hasattr(agent, "learn_episode"):  # tabular learners: exact J while learning
                callbacks.append(evaluate.ExactEvaluation(mdp))
            recorder = None
            if job.record_training > 0 and not hasattr(agent, "learn"):
                raise RegistryError(
                    f"--record-training: {job.agent} plans or plays without training episodes; nothing to record"
                )
            if job.record_training > 0:
                recorder = RecordTraining(job.record_training, Path(replays_dir) / job.run_key, job.agent)
                callbacks.append(recorder)
            if job.video:
                if not hasattr(agent, "sample"):
                    raise RegistryError(f"--video shows a generator's samples as it trains; {job.agent} makes no images")
                from arena.viewer import SampleVideo

                callbacks.append(SampleVideo(job.video))
            budget: dict[str, Any] = {"run_dir": run_dir}
            if job.train_episodes:
                budget["episodes"] = job.train_episodes
            if job.resume:
                budget["resume"] = job.resume
            if callbacks:
                budget["callbacks"] = callbacks
            if job.checkpoint_every is not None and hasattr(agent, "learn"):
                budget["checkpoint_every"] = job.checkpoint_every
            log = agent.fit(env, seed=job.train_seed, **budget)
            if recorder is not None:
                log["training_replays"] = len(recorder.saved)
            if job.video and Path(job.video).exists():
                log["video"] = job.video
            if "checkpoint" not in log:
                log["checkpoint"] = str(agent.save(run_dir / "checkpoint.npz"))
        train_seconds = time.perf_counter() - t0

        t1 = time.perf_counter()
        episodes = play(agent, job.env_id, job.env_kwargs, job.eval_seeds, Path(replays_dir) / job.run_key, on_episode=on_episode)
        exact = evaluate.exact_score(agent, env)
        image = evaluate.image_score(env, episodes)
    finally:
        env.close()
    summary = evaluate.summarise([e.episode_return for e in episodes])
    result = Result(
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
        score=exact.score if exact else image.normalised if image else None,
        exact_return=exact.expected_return if exact else None,
        eval_gamma=evaluate.EVAL_GAMMA if exact else None,
        replay_paths=[e.replay_path for e in episodes if e.replay_path],
        checkpoint=agent.digest(),
        train_seconds=train_seconds,
        eval_seconds=time.perf_counter() - t1,
        code_version=code_version(),
        note="; ".join(n for n in (summary.note, image.note if image else "") if n),
        metrics=evaluate.image_metrics(image) if image else {},
    )
    return result, log
