"""One run, a job: train (or load) an agent, play the fixed evaluation seeds with recording,
and score it. `run_job` never writes the database: its caller adds the row, so a job that
is retried cannot land twice (rows are keyed by `Job.run_key`).

A job whose key is fixed in advance (a tournament's) runs as an `Attempt`: its replays and
run folder are written under `<root>/.staging/` and renamed to `<root>/<run_key>` by `land`
in the transaction that adds the row. So a job's files exist exactly when its row does: a
try killed at any moment, a Ray retry or the same command run twice never meets another
try's files, and `sweep` removes what dead tries left.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import gymnasium as gym

from agents.protocol import Agent, EpisodeLearner, Generator, HasPolicyTable, Learner, Player, RunSpec
from agents.training import Callback
from arena.errors import AgentError, RegistryError
from arena.leaderboard import Result, code_version
from arena.match import Episode, RecordTraining, play
from arena.registry import check_pairing, make_agent, make_env
from arena.scoring import (EVAL_GAMMA, ExactEvaluation, accuracy, exact_score, image_metrics, image_score,
                           sampled_score, successes, text_metrics)
from arena.statistics import summarise
from envs.abilities import HasModel

DEFAULT_EPISODES = 10
EVAL_SEED_BASE = 1000  # evaluation seeds 1000, 1001, ...: never the training seed
MAX_EPISODES = 100_000  # evaluation episodes of one run: each is a replay file
MAX_TRAIN_SEEDS = 1_000  # training runs of one evaluation or suite entry


def check_episodes(episodes: Any, name: str = "episodes") -> int:
    """The one bound on evaluation episodes (CLI, suites, arena.evaluate, jobs): 1 to MAX_EPISODES."""
    if type(episodes) is not int or not 1 <= episodes <= MAX_EPISODES:
        raise RegistryError(f"{name}={episodes!r}; evaluate on 1 to {MAX_EPISODES} episodes")
    return episodes


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
        check_episodes(self.episodes)
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


def job_callbacks(job: Job, agent: Agent, env: gym.Env, replay_dir: str | Path) -> list[Callback]:
    """What a job adds to the training loop: the exact J while learning (learners with a policy
    table on an env with a model), training replays (--record-training), a sample video (--video)."""
    callbacks: list[Callback] = []
    if isinstance(env.unwrapped, HasModel) and isinstance(agent, EpisodeLearner) and isinstance(agent, HasPolicyTable):
        callbacks.append(ExactEvaluation(env.unwrapped.mdp))
    if job.record_training > 0:
        callbacks.append(RecordTraining(job.record_training, Path(replay_dir), job.agent))
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
    driver: str | None = None,
) -> tuple[Result, dict[str, Any]]:
    """Train (or load), evaluate with recording, score. Returns the row and the training log.

    The job's RunSpec reaches the loop as it is, plus what only the job knows: its run folder
    (runs_dir/run_key) and its callbacks. With `driver` (a `Driver.id`), the job runs as a
    fresh `Attempt` of that driver: its files are staged, and `log["attempt"]` names them
    for `land`."""
    if driver is None:
        return _run_job(job, Path(replays_dir) / job.run_key, Path(runs_dir) / job.run_key, on_episode)
    attempt = Attempt(job.run_key, driver, secrets.token_hex(4))
    with attempt.held(replays_dir):
        result, log = _run_job(job, attempt.staged(replays_dir), attempt.staged(runs_dir), on_episode)
    log["attempt"] = attempt.name
    return result, log


def _run_job(job: Job, replay_dir: Path, run_dir: Path,
             on_episode: Callable[[Episode], None] | None) -> tuple[Result, dict[str, Any]]:
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
            callbacks = job_callbacks(job, agent, env, replay_dir)
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
        episodes = play(agent, job.env_id, job.env_kwargs, job.eval_seeds, replay_dir, on_episode=on_episode)
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
    text = text_metrics(env, episodes)
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
        score=exact.score if exact else sampled if sampled is not None else image.normalised if image else
        text["normalised_gold"] if text else accuracy(episodes),
        exact_return=exact.expected_return if exact else None,
        eval_gamma=EVAL_GAMMA if exact else None,
        replay_paths=[e.replay_path for e in episodes if e.replay_path],
        checkpoint=agent.digest(),
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        code_version=code_version(),
        note="; ".join(n for n in (summary.note, image.note if image else "", sampled_note if sampled is not None else "")
                       if n),
        metrics=image_metrics(image) if image else text or {},
        successes=successes(episodes),
        budget=agent.trained() if isinstance(agent, Learner) and agent.budget is not None else None,
        budget_unit=agent.budget_unit if isinstance(agent, Learner) and agent.budget is not None else "",
    )


# --------------------------------------------------------------------------- attempts

STAGING = ".staging"  # under the replays and runs folders: the files of tries not landed yet


def _lock_is_free(path: Path) -> bool:
    """Whether no live process holds `path` locked (a process's flock ends with it, even on SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (not POSIX: treat every try as alive; nothing is swept)
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover
            pass
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Attempt:
    """One try at a job with a fixed run key, by one driver (the process that lands rows)."""

    run_key: str
    driver: str
    token: str

    @property
    def name(self) -> str:
        return f"{self.run_key}@{self.driver}@{self.token}"

    @classmethod
    def parse(cls, name: str) -> Attempt:
        run_key, driver, token = name.rsplit("@", 2)
        return cls(run_key, driver, token)

    def staged(self, root: str | Path) -> Path:
        return Path(root) / STAGING / self.name

    def final(self, root: str | Path) -> Path:
        return Path(root) / self.run_key

    def held(self, replays_dir: str | Path) -> Any:
        """The lock that marks this try alive while its process writes (see `sweep`)."""
        return _locked(Path(replays_dir) / STAGING / f"{self.name}.lock")


class Driver:
    """The process that runs a suite's tries and lands their rows. While it lives it holds a
    lock in the replays folder, so a sweep by another driver leaves its finished, not yet
    landed tries alone; on entry it sweeps what dead drivers left."""

    def __init__(self, replays_dir: str | Path, runs_dir: str | Path) -> None:
        self.replays_dir, self.runs_dir = Path(replays_dir), Path(runs_dir)
        self.id = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._lock = _locked(self.replays_dir / STAGING / f"driver-{self.id}.lock")

    def __enter__(self) -> Driver:
        self._lock.__enter__()
        sweep(self.replays_dir, self.runs_dir)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.__exit__(*exc)
        (self.replays_dir / STAGING / f"driver-{self.id}.lock").unlink(missing_ok=True)
        sweep(self.replays_dir, self.runs_dir)


def sweep(replays_dir: str | Path, runs_dir: str | Path) -> int:
    """Remove the staged files of tries that can never land (their driver and their own
    process are both gone); returns how many tries were removed."""
    locks = Path(replays_dir) / STAGING
    removed = 0
    for root in (Path(replays_dir), Path(runs_dir)):
        staging = root / STAGING
        if not staging.is_dir():
            continue
        for entry in sorted(staging.iterdir()):
            if entry.name.startswith("driver-") or entry.name.count("@") != 2:
                continue
            attempt = Attempt.parse(entry.name.removesuffix(".lock"))
            if _lock_is_free(locks / f"driver-{attempt.driver}.lock") and _lock_is_free(locks / f"{attempt.name}.lock"):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                    removed += 1
                else:
                    entry.unlink(missing_ok=True)
    for lock in locks.glob("driver-*.lock") if locks.is_dir() else ():
        if _lock_is_free(lock):
            lock.unlink(missing_ok=True)
    for root in (Path(replays_dir), Path(runs_dir)):
        try:
            (root / STAGING).rmdir()  # only when empty: nothing of a try left
        except OSError:
            pass
    return removed


def land(board: Any, result: Result, log: dict[str, Any], replays_dir: str | Path, runs_dir: str | Path) -> bool:
    """Add a try's row and move its staged files to their final folders in one transaction
    (the row commits only after the files are in place; final folders without a row were
    left by a try killed between the two, and are replaced). False, and the try's files
    removed, when the row was already there (another try landed first)."""
    attempt = Attempt.parse(log.pop("attempt"))
    moves = [(attempt.staged(root), attempt.final(root)) for root in (replays_dir, runs_dir)]

    def final(path: str) -> str:
        for src, dst in moves:
            try:
                return str(dst / Path(path).resolve().relative_to(src.resolve()))
            except ValueError:
                continue
        return path

    result.replay_paths = [final(p) for p in result.replay_paths]
    for key, value in log.items():
        if isinstance(value, str):
            log[key] = final(value)

    def move() -> None:
        for src, dst in moves:
            if dst.exists():
                shutil.rmtree(dst)
            if src.exists():
                os.replace(src, dst)

    added = bool(board.add(result, before_commit=move))
    (Path(replays_dir) / STAGING / f"{attempt.name}.lock").unlink(missing_ok=True)
    if not added:
        for src, _ in moves:
            shutil.rmtree(src, ignore_errors=True)
    return added


__all__ = ["Attempt", "check_episodes", "DEFAULT_EPISODES", "MAX_EPISODES", "MAX_TRAIN_SEEDS", "Driver", "EVAL_SEED_BASE", "Job", "job_callbacks", "land", "new_run_key",
           "run_job", "score_run", "sweep"]
