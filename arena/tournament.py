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
from arena.errors import ArenaError, RegistryError, SuiteError, one_line
from arena.leaderboard import Result, code_version, env_label
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


# --------------------------------------------------------------------------- suites

SUITES_DIR = Path(__file__).parent / "suites"
SUITE_FORMAT = 1
SUITE_KEYS = {"format", "description", "envs", "train_seeds", "eval_episodes", "cross_judge", "agents"}
AGENT_KEYS = {"name", "label", "set", "budget"}


@dataclass(frozen=True)
class SuiteAgent:
    """One agent entry of a suite: a registry name, its settings and training budget."""

    name: str
    label: str  # how tables name it, e.g. "gan loss=lsgan"
    config: dict[str, Any]
    budget: int | None  # training units (episodes or batches); None: the agent's own


@dataclass
class Suite:
    """A declarative tournament (arena/suites/*.toml or any path): agents x envs x training
    seeds, each job trained, evaluated on `eval_episodes` fixed seeds and recorded."""

    name: str
    path: Path
    description: str
    agents: list[SuiteAgent]
    envs: list[tuple[str, str, dict[str, Any]]]  # (as written, env id, kwargs)
    train_seeds: list[int]
    eval_episodes: int
    cross_judge: bool  # image envs: judge every generator by every trained discriminator
    skipped: list[str] = field(default_factory=list)  # "agent on env": pairs the agent cannot play

    def jobs(self) -> list[tuple[SuiteAgent, Job]]:
        """Every (agent, env, seed) job the agents can play, env by env."""
        out = []
        for text, env_id, kwargs in self.envs:
            for agent in self.agents:
                if f"{agent.label} on {text}" in self.skipped:
                    continue
                for seed in self.train_seeds:
                    out.append((agent, Job(agent.name, env_id, dict(kwargs), dict(agent.config), seed,
                                           self.eval_episodes, train_episodes=agent.budget)))
        return out


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def load_suite(name_or_path: str | Path) -> Suite:
    """Read and check a suite before any job starts; every problem is one SuiteError line
    that starts with the file and line and says how to fix it."""
    import tomllib

    from arena import registry

    given = Path(name_or_path)
    path = given if given.suffix == ".toml" or given.exists() else SUITES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise SuiteError(f"no suite {str(name_or_path)!r}: name one of {', '.join(suite_names())} "
                         "(arena/suites) or the path of a .toml file")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read it ({exc}); pass a UTF-8 TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: not valid TOML: {exc}; fix the syntax there") from None

    def fail(needle: Any, problem: str) -> SuiteError:
        line = next((i for i, row in enumerate(text.splitlines(), 1) if str(needle) in row), None)
        return SuiteError(f"{path}:{line}: {problem}" if line else f"{path}: {problem}")

    unknown = sorted(set(data) - SUITE_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key {unknown[0]!r}; a suite takes {', '.join(sorted(SUITE_KEYS))}")
    if data.get("format", SUITE_FORMAT) != SUITE_FORMAT:
        raise fail("format", f"suite format {data.get('format')!r}; this Arena reads format {SUITE_FORMAT}")
    seeds = data.get("train_seeds", [0])
    if (not isinstance(seeds, list) or not seeds or len(set(map(repr, seeds))) < len(seeds)
            or not all(type(s) is int and 0 <= s < 2**31 for s in seeds)):
        raise fail("train_seeds", f"train_seeds = {seeds!r}; write a list of distinct integers in [0, 2^31), "
                   "e.g. train_seeds = [0, 1, 2]")
    episodes = data.get("eval_episodes", DEFAULT_EPISODES)
    if type(episodes) is not int or not 1 <= episodes <= 10_000:
        raise fail("eval_episodes", f"eval_episodes = {episodes!r}; write an integer from 1 to 10000")
    cross = data.get("cross_judge", False)
    if type(cross) is not bool:
        raise fail("cross_judge", f"cross_judge = {cross!r}; write true or false")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "description must be a string")

    env_texts = data.get("envs")
    if not isinstance(env_texts, list) or not env_texts or not all(isinstance(e, str) for e in env_texts):
        raise fail("envs", 'envs must be a non-empty list of env strings, e.g. envs = ["grid:cliff", "img:digits"]')
    envs_ = []
    for text_ in env_texts:
        spec, *kwargs = text_.split()
        try:
            env_id, env_kwargs = registry.parse_env(spec, kwargs)
        except ArenaError as exc:
            raise fail(text_, f"env {text_!r}: {one_line(exc)}") from None
        envs_.append((text_, env_id, env_kwargs))

    entries = data.get("agents")
    if not isinstance(entries, list) or not entries or not all(isinstance(a, dict) for a in entries):
        raise fail("agents", 'list the agents as [[agents]] tables, each with name = "..."')
    agents_, skipped = [], []
    for entry in entries:
        name = entry.get("name")
        where = f'"{name}"' if isinstance(name, str) else "[[agents]]"
        bad = sorted(set(entry) - AGENT_KEYS)
        if bad:
            raise fail(bad[0], f"agent key {bad[0]!r} is unknown; an [[agents]] table takes {', '.join(sorted(AGENT_KEYS))}")
        if not isinstance(name, str) or name not in registry.AGENTS:
            raise fail(where, f"unknown agent {name!r}; `arena agents` lists them")
        config = entry.get("set", {})
        if not isinstance(config, dict):
            raise fail(where, f"agent {name}: set must be a table, e.g. set = {{ gamma = 0.9 }}")
        try:
            registry.make_agent(name, **config)
        except ArenaError as exc:
            raise fail(where, f"agent {name}: {one_line(exc)}") from None
        budget = entry.get("budget")
        if budget is not None and (type(budget) is not int or not 1 <= budget <= 10**8):
            raise fail(where, f"agent {name}: budget = {budget!r}; write a positive integer (training units)")
        label = entry.get("label", " ".join([name, *(f"{k}={v}" for k, v in config.items())]))
        if not isinstance(label, str) or not label.strip():
            raise fail(where, f"agent {name}: label must be a non-empty string")
        if any(a.label == label for a in agents_):
            raise fail(where, f"two agents are labelled {label!r}; give one a label = \"...\"")
        agent = SuiteAgent(name, label, config, budget)
        plays = []
        for text_, env_id, env_kwargs in envs_:
            try:
                check_pairing(name, env_id, kwargs=env_kwargs)
                plays.append(text_)
            except RegistryError:
                skipped.append(f"{label} on {text_}")
        if not plays:
            raise fail(where, f"agent {label} can play none of the suite's envs; drop it or add an env it plays "
                       f"({', '.join(registry.playable_families(name))})")
        agents_.append(agent)
    return Suite(path.stem, path, description, agents_, envs_, list(seeds), episodes, cross, skipped)


def run_suite(suite: Suite, replays_dir: str | Path, runs_dir: str | Path = "runs",
              on_result: Callable[[SuiteAgent, Result, dict[str, Any]], None] | None = None,
              on_start: Callable[[int, int, SuiteAgent, Job], None] | None = None,
              ) -> list[tuple[SuiteAgent, Job, Result, dict[str, Any]]]:
    """Run every job of the suite, one after another; `on_result` (the driver) records each
    result as it lands, so an interrupted tournament keeps what finished."""
    jobs = suite.jobs()
    out = []
    for i, (agent, job) in enumerate(jobs):
        if on_start:
            on_start(i, len(jobs), agent, job)
        result, log = run_job(job, replays_dir, runs_dir)
        if on_result:
            on_result(agent, result, log)
        out.append((agent, job, result, log))
    return out


def judge_suite(finished: list[tuple[SuiteAgent, Job, Result, dict[str, Any]]]) -> list[tuple[str, Any]]:
    """Who fools whom, per image env of a finished suite: every generator's evaluation
    images (from its replays) judged by the env's judge and by every trained GAN
    discriminator (from its checkpoint). Returns (env label, CrossJudgement) pairs."""
    import json

    import numpy as np

    from arena.image_score import SCORE_IMAGES, cross_judge
    from arena.replay import load_replay

    groups: dict[str, list[tuple[SuiteAgent, Job, Result, dict[str, Any]]]] = {}
    for item in finished:
        job = item[1]
        if job.env_id.endswith("ImageGeneration-v0"):
            groups.setdefault(json.dumps([job.env_id, job.env_kwargs], sort_keys=True), []).append(item)
    out = []
    for items in groups.values():
        job0 = items[0][1]
        env = make_env(job0.env_id, job0.env_kwargs)
        u = env.unwrapped
        several_seeds = len({job.train_seed for _, job, _, _ in items}) > 1

        def name(agent: SuiteAgent, job: Job) -> str:
            return f"{agent.label} seed {job.train_seed}" if several_seeds else agent.label

        generators = {}
        for agent, job, result, _ in items:
            images = [load_replay(p).actions for p in result.replay_paths]
            generators[name(agent, job)] = np.concatenate(images)[:SCORE_IMAGES]

        def env_judge(images: np.ndarray) -> np.ndarray:
            import torch

            with torch.no_grad():
                return u.judge.logits(torch.from_numpy(images)).double().numpy()

        # an adaptive judge learns within each episode; here it judges as it starts (the frozen one)
        judges = {"env (frozen judge)" if u.judge_kind == "frozen" else "env (adaptive judge, at its start)": env_judge}
        for agent, job, _, log in items:
            trained = make_agent(agent.name, **agent.config)
            if not hasattr(trained, "discriminate") or "checkpoint" not in log:
                continue
            trained.load(log["checkpoint"], env=env)
            conditional = bool(getattr(trained.settings, "conditional", False))

            def judge(images: np.ndarray, D: Any = trained, conditional: bool = conditional) -> np.ndarray:
                labels = u.classify(images).argmax(axis=1) if conditional else None
                return D.discriminate(images, labels)

            judges[name(agent, job)] = judge
        out.append((env_label(job0), cross_judge(generators, judges, u.data.heldout)))
        env.close()
    return out
