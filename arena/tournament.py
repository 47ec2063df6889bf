"""Tournaments: suites of (agent, env, seed) jobs, run one after another, each landing on
the leaderboard as it finishes; image suites then cross-judge their generators.

One job is `arena.jobs.run_job` (train, play the fixed evaluation seeds with
recording, score); it never writes the database itself. The caller (the driver) adds the
row, so a job that is retried cannot land twice (rows are keyed by `Job.run_key`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from arena.errors import ArenaError, RegistryError, SuiteError, one_line
from agents.protocol import Discriminator, RunSpec
from arena.jobs import DEFAULT_EPISODES, EVAL_SEED_BASE, MAX_EPISODES, MAX_TRAIN_SEEDS, Driver, Job, new_run_key, run_job
from arena.jobs import land as jobs_land
from arena.leaderboard import Result, env_label
from arena.registry import check_pairing, make_agent, make_env

# --------------------------------------------------------------------------- suites

SUITES_DIR = Path(__file__).parent / "suites"
SUITE_FORMAT = 1
SUITE_KEYS = {"format", "description", "envs", "train_seeds", "eval_episodes", "cross_judge", "agents"}
AGENT_KEYS = {"name", "label", "set", "budget", "envs"}


@dataclass(frozen=True)
class SuiteAgent:
    """One agent entry of a suite: a registry name, its settings and training budget."""

    name: str
    label: str  # how tables name it, e.g. "gan loss=lsgan"
    config: dict[str, Any]
    budget: int | None  # in the agent's budget unit (episodes, batches, steps); None: its settings'


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
    skipped: list[str] = field(default_factory=list)  # "agent on env (why)": pairs not played

    def jobs(self) -> list[tuple[SuiteAgent, Job]]:
        """Every (agent, env, seed) job the agents can play, env by env, each keyed by what
        it runs (so a rerun finds the jobs already on the leaderboard)."""
        out = []
        for text, env_id, kwargs in self.envs:
            for agent in self.agents:
                if any(skip.startswith(f"{agent.label} on {text} (") for skip in self.skipped):
                    continue
                for seed in self.train_seeds:
                    job = Job(agent.name, env_id, dict(kwargs), dict(agent.config),
                              RunSpec(seed=seed, budget=agent.budget, progress=False), self.eval_episodes,
                              run_key="pending")
                    job.run_key = job_key(job)
                    out.append((agent, job))
        return out


def job_key(job: Job) -> str:
    """A run key from the job's content: agent, settings, env, seed, episodes and budget."""
    what = json.dumps([job.agent, job.agent_config, job.env_id, job.env_kwargs, job.train_seed, job.episodes,
                       job.spec.budget], sort_keys=True, default=str)
    env = str(job.env_kwargs.get("layout") or job.env_kwargs.get("task") or job.env_kwargs.get("dataset") or "env")
    readable = re.sub(r"[^A-Za-z0-9]+", "-", f"{job.agent}-{env}"[:40]).strip("-")
    return f"job-{readable}-s{job.train_seed}-{hashlib.sha256(what.encode()).hexdigest()[:12]}"


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
    if isinstance(seeds, list) and len(seeds) > MAX_TRAIN_SEEDS:
        raise fail("train_seeds", f"{len(seeds)} train_seeds; a suite trains at most {MAX_TRAIN_SEEDS} per agent and env")
    if (not isinstance(seeds, list) or not seeds or len(set(map(repr, seeds))) < len(seeds)
            or not all(type(s) is int and 0 <= s < 2**31 for s in seeds)):
        raise fail("train_seeds", f"train_seeds = {seeds!r}; write a list of distinct integers in [0, 2^31), "
                   "e.g. train_seeds = [0, 1, 2]")
    episodes = data.get("eval_episodes", DEFAULT_EPISODES)
    if type(episodes) is not int or not 1 <= episodes <= MAX_EPISODES:
        raise fail("eval_episodes", f"eval_episodes = {episodes!r}; write an integer from 1 to {MAX_EPISODES}")
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
        try:
            env_id, env_kwargs = registry.parse_env(text_)
        except ArenaError as exc:
            raise fail(text_, f"env {text_!r}: {one_line(exc)}") from None
        envs_.append((text_, env_id, env_kwargs))

    entries = data.get("agents")
    if not isinstance(entries, list) or not entries or not all(isinstance(a, dict) for a in entries):
        raise fail("agents", 'list the agents as [[agents]] tables, each with name = "..."')
    agents_: list[SuiteAgent] = []
    skipped: list[str] = []
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
            raise fail(where, f"agent {name}: budget = {budget!r}; write a positive integer (in the agent's budget unit: `arena agents NAME` says which)")
        label = entry.get("label", " ".join([name, *(f"{k}={v}" for k, v in config.items())]))
        if not isinstance(label, str) or not label.strip():
            raise fail(where, f"agent {name}: label must be a non-empty string")
        if any(a.label == label for a in agents_):
            raise fail(where, f"two agents are labelled {label!r}; give one a label = \"...\"")
        agent = SuiteAgent(name, label, config, budget)
        only = entry.get("envs")
        if only is not None and (not isinstance(only, list) or not only
                                 or not all(isinstance(e, str) and e in env_texts for e in only)):
            raise fail(where, f"agent {name}: envs = {only!r}; list some of the suite's envs ({', '.join(env_texts)})")
        plays = []
        for text_, env_id, env_kwargs in envs_:
            if only is not None and text_ not in only:
                skipped.append(f"{label} on {text_} (not in its envs)")
                continue
            try:
                check_pairing(name, env_id, kwargs=env_kwargs)
                plays.append(text_)
            except RegistryError:
                skipped.append(f"{label} on {text_} (it cannot play it)")
        if not plays:
            raise fail(where, f"agent {label} can play none of the suite's envs; drop it or add an env it plays "
                       f"({', '.join(registry.playable_families(name))})")
        agents_.append(agent)
    return Suite(path.stem, path, description, agents_, envs_, list(seeds), episodes, cross, skipped)


BACKENDS = ("local", "ray")
RAY_RETRIES = 2  # a task whose worker process dies is run again this many times


def run_suite(suite: Suite, board: Any, replays_dir: str | Path, runs_dir: str | Path = "runs", workers: int = 1,
              on_result: Callable[[SuiteAgent, Result], None] | None = None, backend: str = "local",
              address: str | None = None) -> list[tuple[SuiteAgent, Job, Result, dict[str, Any]]]:
    """Run the suite's jobs that are not on the leaderboard yet and add each result as it
    lands (here, in the driver), so a killed tournament keeps what finished and a rerun
    does the rest. Each try's files land with its row (`arena.jobs.land`), so a rerun, a
    Ray retry or a second driver running the same suite never trips over a killed try's
    files. Backends: "local" (`workers` processes; 1: in this process) or "ray" (Ray tasks
    with retries on the cluster at `address`, or on a local Ray instance started for the
    run). Returns every job of the suite with its result."""
    check_backend(backend, address)
    jobs = suite.jobs()
    keys = {job.run_key for _, job in jobs}
    results: dict[str, tuple[Result, dict[str, Any]]] = {}

    def known() -> None:
        for row in board.results() if keys & board.run_keys() else []:
            if row.run_key in keys and row.run_key not in results:
                results[row.run_key] = (row, {"checkpoint": str(Path(runs_dir) / row.run_key / "checkpoint.npz")})

    known()
    pending = [(agent, job) for agent, job in jobs if job.run_key not in results]

    def land(agent: SuiteAgent, result: Result, log: dict[str, Any]) -> None:
        if jobs_land(board, result, log, replays_dir, runs_dir):
            results[result.run_key] = (result, log)
            if on_result:
                on_result(agent, result)
        else:  # another driver landed this job first: its row counts
            known()

    with Driver(replays_dir, runs_dir) as driver:
        if backend == "ray":
            _run_on_ray(pending, replays_dir, runs_dir, workers, address, land, driver.id)
        elif workers <= 1:
            for agent, job in pending:
                land(agent, *run_job(job, replays_dir, runs_dir, driver=driver.id))
        else:
            _run_on_pool(pending, replays_dir, runs_dir, workers, land, driver.id)
    return [(agent, job, *results[job.run_key]) for agent, job in jobs]


def _run_on_pool(pending: list[tuple[SuiteAgent, Job]], replays_dir: str | Path, runs_dir: str | Path, workers: int,
                 land: Callable[..., None], driver: str) -> None:
    """Jobs on `workers` spawned processes, each landing as soon as it finishes; the workers
    exit when this process dies (they watch it), so a killed driver leaves nothing running."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from arena.registry import user_agents

    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_start, initargs=(threads, user_agents(), os.getpid()))
    try:
        futures = {pool.submit(run_job, job, replays_dir, runs_dir, None, driver): agent for agent, job in pending}
        for future in as_completed(futures):
            land(futures[future], *future.result())
    except BaseException:
        running = list(getattr(pool, "_processes", {}).values())
        for process in running:  # running jobs stop now, not at their end
            process.terminate()
        for process in running:
            process.join(5)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def check_backend(backend: str, address: str | None) -> None:
    """A known backend, and an address only for Ray, where something answers as Ray does."""
    if backend not in BACKENDS:
        raise RegistryError(f"unknown backend {backend!r}; use {' or '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise RegistryError("--address names a Ray cluster; add --backend ray")
    if address is not None:
        check_ray_address(address)


def _run_on_ray(pending: list[tuple[SuiteAgent, Job]], replays_dir: str | Path, runs_dir: str | Path, workers: int,
                address: str | None, land: Callable[..., None], driver: str) -> None:
    """Each job a Ray task (retried when its worker dies: each try stages its own files);
    results come back to the driver and land as they come. Paths are made absolute: Ray
    workers need not share the driver's working folder."""
    try:
        import ray
    except ImportError:
        raise RegistryError("--backend ray needs Ray: pip install 'arena-gym[ray]' (or pip install ray)") from None
    started = not ray.is_initialized()
    if started and not address:
        _reap_with_this_process()
    if started:
        try:
            ray.init(address=address, num_cpus=None if address else max(1, workers), include_dashboard=False,
                     log_to_driver=False, logging_level=40, configure_logging=False)  # 40: logging.ERROR
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ... for a bad address
            raise RegistryError(f"cannot start or reach Ray at {address or 'a local instance'}: "
                                f"{one_line(exc)[:160]}") from None
    refs: dict[Any, SuiteAgent] = {}
    try:
        from arena.registry import user_agents

        task = ray.remote(max_retries=RAY_RETRIES, num_cpus=1)(_ray_job)
        mine = user_agents()
        refs = {task.remote(job, str(Path(replays_dir).resolve()), str(Path(runs_dir).resolve()), mine, driver): agent
                for agent, job in pending}
        left = list(refs)
        while left:
            done, left = ray.wait(left, num_returns=1)
            land(refs[done[0]], *ray.get(done[0]))
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


REAPER = """
import os, sys, time, signal
driver, mark = int(sys.argv[1]), ("ARENA_RAY_OWNER=" + sys.argv[2]).encode()

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

while alive(driver):
    time.sleep(0.5)
start = time.monotonic()
quiet, deadline = 0, start + 30
# until nothing marked is seen three times running, and for at least 10 s: a helper that Ray
# was starting as the driver died appears a moment later
while (quiet < 3 or time.monotonic() < start + 10) and time.monotonic() < deadline:
    found = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and alive(entry):
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if mark in f.read().split(b"\\0"):
                        os.kill(int(entry), signal.SIGKILL)
                        found += 1
            except OSError:
                pass
    quiet = 0 if found else quiet + 1
    time.sleep(0.3)
"""


def _reap_with_this_process() -> None:
    """A local Ray started here dies with this process, even by SIGKILL: its processes
    inherit a mark in their environment, and a small watcher (outside this process group)
    kills the marked ones once this process is gone. Ray's own helper agents would otherwise
    linger for about a minute. (Linux: it reads /proc.)"""
    import os
    import secrets
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        return
    mark = f"{os.getpid()}-{secrets.token_hex(4)}"
    env = {k: v for k, v in os.environ.items() if k != "ARENA_RAY_OWNER"}
    subprocess.Popen([sys.executable, "-c", REAPER, str(os.getpid()), mark], env=env, start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["ARENA_RAY_OWNER"] = mark  # inherited by the Ray processes started from now on


def _ray_job(job: Job, replays_dir: str, runs_dir: str, user_agents: list[tuple[str, tuple[str, str, str]]],
             driver: str) -> tuple[Result, dict[str, Any]]:
    """One job on a Ray worker: one core's worth of torch threads, as the driver asked, and
    the user's registered agents."""
    _worker_start(1, user_agents)
    return run_job(job, replays_dir, runs_dir, None, driver)


RAY_ADDRESS_TIMEOUT_S = 3.0


def check_ray_address(address: str) -> None:
    """A Ray address is `auto`, `host:port` or `ray://host:port`, and something that speaks
    gRPC (HTTP/2, as Ray's GCS and client server do) answers there within a few seconds;
    anything else is refused in one line, not after Ray's minutes of retries."""
    import socket

    if address == "auto":
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    valid_host = re.fullmatch(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]+\]", host or "")
    if not sep or not valid_host or not port.isdigit() or not 1 <= int(port) <= 65535 or "://" in target:
        raise RegistryError(f"--address {address[:80]!r} is not a Ray address; write host:port (e.g. 10.0.0.5:6379), "
                            "ray://host:port or auto")
    fix = "start it (ray start --head) or check the address, or drop --address for a local Ray"
    try:
        conn = socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_ADDRESS_TIMEOUT_S)
    except (OSError, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc) or "timed out"
        raise RegistryError(f"cannot reach the Ray cluster at {address[:80]} ({why}); {fix}") from None
    head = b""
    with conn:
        try:
            # the HTTP/2 client preface and an empty SETTINGS frame; a gRPC server answers with its SETTINGS
            conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            while len(head) < 9:
                chunk = conn.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
        except OSError:
            pass
    if len(head) < 9 or head[3] != 0x04:
        raise RegistryError(f"{address[:80]} answers, but not as Ray does (no gRPC there); {fix}")


def _worker_start(threads: int, user_agents: list[tuple[str, tuple[str, str, str]]] = (),  # type: ignore[assignment]
                  driver_pid: int | None = None) -> None:
    """A pool worker: its share of the cores for torch, no second progress bar, the agents
    the user registered in the driver (imported from where they are defined), and a watch
    on the driver: when it dies (even by SIGKILL), the worker exits too."""
    import os

    from arena.registry import restore_user_agents

    restore_user_agents(list(user_agents))
    if driver_pid is not None:
        _exit_with(driver_pid)

    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover
        pass


def _exit_with(driver_pid: int) -> None:
    """End this process soon after `driver_pid` ends (its parent: it is re-parented then)."""
    import os
    import threading
    import time

    def watch() -> None:
        while os.getppid() == driver_pid:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="arena-driver-watch", daemon=True).start()


def judge_suite(finished: list[tuple[SuiteAgent, Job, Result, dict[str, Any]]]) -> list[tuple[str, Any]]:
    """Who fools whom, per image env of a finished suite: every generator's evaluation
    images (from its replays) judged by the env's judge and by every trained GAN
    discriminator (from its checkpoint). Returns (env label, CrossJudgement) pairs."""
    import numpy as np

    from arena.statistics import bradley_terry
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
        u: Any = env.unwrapped
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
        judges: dict[str, Callable[[np.ndarray], np.ndarray]] = {"env (frozen judge)" if u.judge_kind == "frozen" else "env (adaptive judge, at its start)": env_judge}
        for agent, job, _, log in items:
            trained = make_agent(agent.name, **agent.config)
            if not isinstance(trained, Discriminator) or "checkpoint" not in log:
                continue
            trained.load(log["checkpoint"], env=env)
            conditional = trained.conditioned

            def judge(images: np.ndarray, D: Any = trained, conditional: bool = conditional) -> np.ndarray:
                labels = u.classify(images).argmax(axis=1) if conditional else None
                return D.discriminate(images, labels)

            judges[name(agent, job)] = judge
        judged = cross_judge(generators, judges, u.data.heldout)
        judged.ratings = bradley_terry(judged.games())
        out.append((env_label(job0), judged))
        env.close()
    return out


__all__ = ["BACKENDS", "check_backend", "DEFAULT_EPISODES", "EVAL_SEED_BASE", "Job", "Suite", "SuiteAgent", "job_key", "judge_suite", "load_suite",
           "new_run_key", "run_job", "run_suite", "suite_names"]
