"""The evaluation protocol: fixed seeds, sampled returns, and exact scores where a model exists.

`arena.evaluate(agent, env, train_seeds=3, eval_episodes=10)` is the protocol in one call:
N training runs (training seeds) x M evaluation episodes (evaluation seeds 1000, 1001, ...,
disjoint from the training seeds, both recorded), aggregated over runs as mean, median,
interquartile mean (IQM) and a 95% stratified bootstrap confidence interval (Agarwal et
al. 2021, "Deep RL at the edge of the statistical precipice"), plus a success rate.

For grids the normalised score is computed exactly, not sampled:

    score = (J(pi) - J(random)) / (J* - J(random)),   J(pi) = sum_s start(s) V_pi(s)

with V_pi from DP policy evaluation at EVAL_GAMMA and J* from value iteration, so 1.0
is optimal and 0.0 is no better than random. Beside it stands the exact expected
undiscounted return over the episode's step limit, which is what the sampled mean of
the recorded episodes estimates.
"""

from __future__ import annotations

import inspect
import math
import re
import secrets
import sys
import time
import types
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from agents import dp
from agents.training import Callback
from arena.errors import RegistryError
from arena.leaderboard import Result, code_version
from arena.match import Episode, RecordTraining, play
from arena.registry import check_pairing, make_agent, make_env

EVAL_GAMMA = 0.99
HORIZON_WORK_LIMIT = 50_000_000  # states x steps for the exact finite-horizon return


@dataclass
class ExactScore:
    score: float  # normalised: 1 = optimal, 0 = random
    J: float  # discounted value of the start distribution at EVAL_GAMMA
    J_optimal: float
    J_random: float
    expected_return: float | None  # undiscounted, over max_steps; None if too costly to compute


@dataclass
class Summary:
    episodes: int
    mean: float | None
    std: float | None
    iqm: float | None
    returns: list[float] = field(default_factory=list)
    note: str = ""


def summarise(returns: list[float]) -> Summary:
    """Mean, std and interquartile mean of per-episode returns; NaNs are reported, not averaged."""
    x = np.asarray(returns, dtype=float)
    finite = x[np.isfinite(x)]
    note = f"{len(x) - len(finite)} non-finite return(s) excluded" if len(finite) < len(x) else ""
    if len(finite) == 0:
        return Summary(len(x), None, None, None, [float(v) for v in x], note or "no episodes")
    q = np.sort(finite)
    lo, hi = int(math.floor(0.25 * len(q))), int(math.ceil(0.75 * len(q)))
    iqm = float(q[lo:hi].mean()) if hi > lo else float(q.mean())
    return Summary(len(x), float(finite.mean()), float(finite.std()), iqm, [float(v) for v in x], note)


def policy_of(agent: Any, env: Any) -> np.ndarray:
    """(S, A) action probabilities of the agent's greedy play on a tabular env."""
    mdp = env.unwrapped.mdp
    if hasattr(agent, "policy_table"):
        try:
            return np.asarray(agent.policy_table())
        except TypeError:
            return np.asarray(agent.policy_table(mdp.n_states))
    pi = np.zeros((mdp.n_states, mdp.n_actions))
    for s in range(mdp.n_states):
        action, _ = agent.act(env.unwrapped.observation_of(s), None, greedy=True)
        pi[s, int(action)] = 1.0
    return pi


def exact_score(agent: Any, env: Any) -> ExactScore | None:
    """The exact normalised score on an env with a model (env.unwrapped.mdp); None otherwise."""
    mdp = getattr(env.unwrapped, "mdp", None)
    if mdp is None or getattr(agent, "recurrent", False):
        return None  # no model, or a policy that depends on history, not on the state alone
    pi = policy_of(agent, env)
    J = float(mdp.start @ dp.policy_evaluation(mdp, pi, EVAL_GAMMA))
    J_random, J_optimal = reference_values(mdp)
    return ExactScore(normalised(J, J_random, J_optimal), J, J_optimal, J_random,
                      expected_return(mdp, pi, env.unwrapped.max_steps))


def reference_values(mdp: Any) -> tuple[float, float]:
    """(J of the uniform random policy, J*) from the start distribution, at EVAL_GAMMA: the 0 and 1
    of the normalised score. J* is the exact value of value iteration's greedy policy (optimal,
    and free of VI's tolerance)."""
    uniform = np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)
    J_random = float(mdp.start @ dp.policy_evaluation(mdp, uniform, EVAL_GAMMA))
    J_optimal = float(mdp.start @ dp.policy_evaluation(mdp, dp.value_iteration(mdp, EVAL_GAMMA).policy, EVAL_GAMMA))
    return J_random, J_optimal


def normalised(J: float, J_random: float, J_optimal: float) -> float:
    """(J - J_random) / (J* - J_random): 0 = random play, 1 = optimal."""
    span = J_optimal - J_random
    return (J - J_random) / span if abs(span) > 1e-12 else (1.0 if J >= J_optimal - 1e-12 else 0.0)


def sampled_score(env: Any, episodes: list[Any]) -> float | None:
    """The normalised score from the episodes played, on an env with a model, for a player whose
    choices depend on history (a recurrent network, a person), so no exact J exists: the mean
    discounted return G = sum_t gamma^t r_t (gamma = EVAL_GAMMA) in place of J. None elsewhere."""
    mdp = getattr(env.unwrapped, "mdp", None)
    if mdp is None or not episodes or any(e.rewards is None for e in episodes):
        return None
    G = [float(np.sum(EVAL_GAMMA ** np.arange(len(e.rewards)) * e.rewards)) for e in episodes]
    return normalised(float(np.mean(G)), *reference_values(mdp))


def expected_return(mdp: Any, pi: np.ndarray, horizon: int) -> float | None:
    """E[sum of rewards over at most `horizon` steps] from the start distribution (gamma = 1)."""
    if mdp.n_states * horizon > HORIZON_WORK_LIMIT:
        return None
    return float(mdp.start @ dp.finite_horizon_evaluation(mdp, pi, horizon))


def image_score(env: Any, episodes: list[Any]) -> Any:
    """For the image env: the generator's scores (arena/image_score.py) from the images it
    made in the evaluation episodes; None for other envs."""
    u = env.unwrapped
    if not hasattr(u, "image_shape") or not episodes:
        return None
    from arena.image_score import score_images

    images = np.concatenate([e.actions for e in episodes if e.actions is not None and len(e.actions)])
    judge = float(np.mean([e.episode_return / max(e.length, 1) for e in episodes]))
    return score_images(images, u.dataset, u.size, judge=judge)


def image_metrics(score: Any) -> dict[str, Any]:
    """The figures a leaderboard row keeps for a generator (FID, IS, coverage, ...)."""
    keep = ("fid", "fid_real", "fid_noise", "inception_score", "coverage", "classes_covered", "n_classes",
            "pairwise_distance", "mode_collapse", "judge", "images")
    return {k: v for k, v in score.as_dict().items() if k in keep}


class ExactEvaluation(Callback):
    """Evaluation during training, as a callback of the training loop: the exact J of the
    learner's current greedy policy (DP policy evaluation) against the optimum J*.

    J is computed at the learner's gamma when it is below 1, else at EVAL_GAMMA: with
    gamma = 1 a greedy policy that never reaches a terminal state has J = -inf, and
    evaluating it over the step limit instead can cost far more than learning (SARSA on
    `grid:windy max_steps=100000`: 17.9 s of evaluation against 0.1 s of learning). The
    curve's axis says which gamma was used. `evaluations` points are taken per run.
    """

    def __init__(self, mdp: Any, evaluations: int = 50) -> None:
        self.mdp, self.evaluations = mdp, max(1, int(evaluations))
        self.gamma = EVAL_GAMMA

    def on_start(self, learner: Any, env: Any) -> None:
        g = float(learner.settings.gamma)
        self.gamma = g if g < 1.0 else EVAL_GAMMA
        learner.log.optimum = float(self.mdp.start @ dp.value_iteration(self.mdp, self.gamma).V)
        note = "" if g < 1.0 else f" (learner's gamma is 1; J at {EVAL_GAMMA:g} stays finite)"
        learner.log.eval_label = f"exact J at gamma {self.gamma:g}{note}"

    def after_unit(self, learner: Any, done: int, total: int) -> None:
        every = max(1, total // self.evaluations)
        if done % every == 0 or done == total:
            pi = np.asarray(learner.policy_table())
            learner.log.evaluation(done, float(self.mdp.start @ dp.policy_evaluation(self.mdp, pi, self.gamma)))


# --------------------------------------------------------------------------- ratings from games

ELO_BASE, ELO_SCALE = 1500.0, 400.0 / math.log(10.0)  # Elo: a 400-point gap is 10:1 odds


def bradley_terry(games: list[tuple[str, str, float, float]], prior: float = 0.1) -> dict[str, float]:
    """Ratings from games `(a, b, wins of a, games played)` under the Bradley-Terry model

        P(a beats b) = 1 / (1 + exp(theta_b - theta_a)),

    fitted by maximum likelihood with a Gaussian prior theta ~ N(0, 1 / prior), which keeps
    a player who never wins (or never loses) finite. Wins may be fractional (a tie is half
    a win). Returned on the Elo scale, 1500 + 400 theta / ln 10, so gaps read as odds."""
    from scipy.optimize import minimize
    from scipy.special import expit

    if not games:
        return {}
    players = sorted({p for a, b, _, _ in games for p in (a, b)})
    index = {p: i for i, p in enumerate(players)}
    A = np.array([index[g[0]] for g in games])
    B = np.array([index[g[1]] for g in games])
    W = np.array([float(g[2]) for g in games])
    N = np.array([float(g[3]) for g in games])
    if np.any(N <= 0) or np.any(W < 0) or np.any(W > N):
        raise ValueError("each game needs games played > 0 and 0 <= wins <= games played")

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[A] - theta[B]
        # -log L = -sum [w log sigma(d) + (n - w) log sigma(-d)], plus the prior's prior/2 |theta|^2
        nll = float((W * np.logaddexp(0.0, -d) + (N - W) * np.logaddexp(0.0, d)).sum() + 0.5 * prior * theta @ theta)
        g = N * expit(d) - W  # d(-log L)/d(d)
        grad = np.bincount(A, g, len(players)) - np.bincount(B, g, len(players)) + prior * theta
        return nll, grad

    theta = minimize(loss, np.zeros(len(players)), jac=True, method="L-BFGS-B", options={"gtol": 1e-10}).x
    return {p: float(ELO_BASE + ELO_SCALE * theta[index[p]]) for p in players}


# --------------------------------------------------------------------------- per-episode figures


def successes(episodes: list[Any]) -> list[bool]:
    """Per episode: did it succeed (the env's `is_success` at the end: a grid's goal reached,
    a sequence answered all right)? Empty when the env has no such notion (images)."""
    flags = [(e.last_info or {}).get("is_success") for e in episodes]
    return [bool(f) for f in flags] if flags and all(f is not None for f in flags) else []


def accuracy(episodes: list[Any]) -> float | None:
    """The mean of the episodes' `accuracy` (sequence tasks: the share of outputs right); None elsewhere."""
    values = [(e.last_info or {}).get("accuracy") for e in episodes]
    return float(np.mean(values)) if values and all(v is not None for v in values) else None


# --------------------------------------------------------------------------- aggregates over runs

CONFIDENCE = 0.95
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def iqm(values: Any) -> float:
    """Interquartile mean: the mean of the middle 50% (SciPy's trim_mean, 25% cut at each end)."""
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(values, dtype=float).ravel(), 0.25))


@dataclass(frozen=True)
class Aggregate:
    """One figure over training runs: mean, median, IQM and the IQM's 95% confidence interval
    (`ci` is (nan, nan) when there is a single run: one run gives no interval)."""

    values: tuple[float, ...]
    mean: float
    median: float
    iqm: float
    ci: tuple[float, float]

    def __str__(self) -> str:
        lo, hi = self.ci
        interval = f" [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else " (one run: no interval)"
        return f"IQM {self.iqm:.3f}{interval}, mean {self.mean:.3f}, over {len(self.values)} runs"

    def clearly_above(self, other: "Aggregate") -> bool:
        """Whether this figure is clearly ahead of `other`: its interval lies entirely above the
        other's (overlapping intervals cannot be told apart: tied). Where either is a single
        run (no interval), the higher IQM is ahead."""
        if math.isfinite(self.ci[0]) and math.isfinite(other.ci[0]):
            return self.ci[0] > other.ci[1] + 1e-12
        return self.iqm > other.iqm


def aggregate(strata: Sequence[Sequence[float]] | Sequence[float], confidence: float = CONFIDENCE,
              resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Aggregate:
    """Aggregate scores over runs. `strata` is one list of per-run values, or one list per
    task; the bootstrap resamples runs within each task (stratified), as rliable does, with
    SciPy's percentile bootstrap of the IQM. Non-finite values are refused, not averaged."""
    from scipy.stats import bootstrap, trim_mean

    groups = [list(map(float, g)) for g in strata] if strata and isinstance(strata[0], Sequence) else [
        list(map(float, strata))]  # type: ignore[arg-type]
    flat = np.array([v for g in groups for v in g])
    if flat.size == 0 or not np.all(np.isfinite(flat)):
        raise ValueError(f"aggregate needs finite values, got {flat.tolist()[:5]}")
    resampled = [np.array(g) for g in groups if len(g) >= 2]
    fixed = np.array([v for g in groups if len(g) < 2 for v in g])  # a task with one run cannot be resampled

    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        shape = samples[0].shape[:-1] if samples[0].ndim > 1 else ()
        constant = np.broadcast_to(fixed, (*shape, fixed.size))
        return trim_mean(np.concatenate([*samples, constant], axis=-1), 0.25, axis=-1)

    ci = (math.nan, math.nan)
    if resampled:
        res = bootstrap(resampled, statistic, n_resamples=resamples, confidence_level=confidence,
                        method="percentile", vectorized=True, rng=np.random.default_rng(seed))
        lo, hi = sorted((float(res.confidence_interval.low), float(res.confidence_interval.high)))
        lo_data, hi_data = float(flat.min()), float(flat.max())  # no rounding past the data (constant runs)
        ci = (min(max(lo, lo_data), hi_data), max(min(hi, hi_data), lo_data))
    return Aggregate(tuple(flat.tolist()), float(flat.mean()), float(np.median(flat)), iqm(flat), ci)


# --------------------------------------------------------------------------- one run: a job

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
    quiet: bool = False  # no training progress bar (tournaments show one bar over their jobs)

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
                callbacks.append(ExactEvaluation(mdp))
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
            if job.quiet and "progress" in inspect.signature(agent.fit).parameters:
                budget["progress"] = False
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
        result = score_run(job, agent, env, episodes, train_seconds, time.perf_counter() - t1)
    finally:
        env.close()
    return result, log


def score_run(job: Job, agent: Any, env: Any, episodes: list[Any], train_seconds: float,
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
    )


def play_human(env_id: str, env_kwargs: dict[str, Any], episodes: int = 1, replays: str | Path = "replays",
               db: str | Path | None = None, max_seconds: float | None = None,
               on_frame: Callable[[Any, Any], None] | None = None) -> Result:
    """A person plays `episodes` evaluation episodes (the seeds every agent is evaluated on,
    1000, 1001, ...) from the keyboard; the run lands on the leaderboard as agent `human`,
    one run per sitting (its 'training seed' counts the sittings), with its replays."""
    from arena.errors import ViewerError
    from arena.leaderboard import Leaderboard, fmt
    from arena.viewer import KeyboardAgent  # pygame: only when a person plays

    agent = KeyboardAgent(env_id, env_kwargs, max_seconds, on_frame)
    try:
        board = Leaderboard(db)
        earlier = [r.train_seed for r in board.results(env_id=env_id, agent="human") if r.env_kwargs == env_kwargs]
        job = Job("human", env_id, env_kwargs, train_seed=max(earlier, default=-1) + 1, episodes=episodes)
        played = play(agent, env_id, env_kwargs, job.eval_seeds, Path(replays) / job.run_key)
        env = make_env(env_id, env_kwargs)
        try:
            result = score_run(job, agent, env, played, 0.0, 0.0)
        finally:
            env.close()
        board.add(result)
        try:
            agent.wait(f"saved: mean return {fmt(result.mean_return, 2)}, score {fmt(result.score)}. Any key closes the window")
        except ViewerError:  # closing the window here loses nothing: the run is on the leaderboard
            pass
    finally:
        agent.close()
    return result


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
    runs: list[Any]  # arena.leaderboard.Result, one per training seed
    score: Aggregate | None
    mean_return: Aggregate | None
    success_rate: float | None
    flags: list[str] = field(default_factory=list)

    @property
    def returns(self) -> list[list[float]]:
        """Per run, per evaluation episode."""
        return [list(r.returns) for r in self.runs]

    @property
    def successes(self) -> list[list[bool]]:
        return [list(r.successes) for r in self.runs]

    @classmethod
    def of(cls, agent: str, env: str, runs: list[Any]) -> "Evaluation":
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
        def clean(x: Any) -> Any:
            if isinstance(x, float):
                return x if math.isfinite(x) else None
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return [clean(v) for v in x]
            return x

        def agg(a: Aggregate | None) -> Any:
            return None if a is None else {"values": list(a.values), "mean": a.mean, "median": a.median,
                                            "iqm": a.iqm, "ci": list(a.ci), "confidence": CONFIDENCE}

        runs = [{k: v for k, v in asdict(r).items() if k not in ("id", "created")} for r in self.runs]
        return clean({"agent": self.agent, "env": self.env, "config": self.config, "train_seeds": self.train_seeds,
                      "eval_seeds": self.eval_seeds, "score": agg(self.score), "mean_return": agg(self.mean_return),
                      "success_rate": self.success_rate, "flags": self.flags, "returns": self.returns,
                      "successes": self.successes, "runs": runs})

    def record(self, db: str | Path | None = None) -> int:
        """Write each run to the leaderboard (skipping rows already there); returns rows added."""
        from arena.leaderboard import Leaderboard

        board = Leaderboard(db)
        return sum(board.add(r) for r in self.runs)


# --------------------------------------------------------------------------- standings: the leaderboard's view


@dataclass
class Standing:
    """One (env, agent, settings) entry of the leaderboard: its runs, evaluated together.
    `rank` is 1 + the entries clearly ahead of it; `tied` when another entry has its rank."""

    env: str
    agent: str  # the agent's name, plus the settings that tell it from others of that name on this env
    rank: int
    tied: bool
    evaluation: Evaluation


def standings(results: list[Any]) -> list[Standing]:
    """Leaderboard rows grouped into entries: same env, agent and settings (the device
    aside); one run per training seed (the newest row of a seed counts). Listed within each
    env by IQM score (then mean return); an entry's rank is 1 + the number of entries
    clearly ahead of it (their 95% interval entirely above its own), so entries whose
    intervals overlap share a rank (`tied`)."""
    import json

    from arena.leaderboard import env_label

    groups: dict[tuple[str, str, str], dict[int, Any]] = {}
    for r in sorted(results, key=lambda r: (r.created, r.id or 0)):
        config = json.dumps({k: v for k, v in r.agent_config.items() if k != "device"}, sort_keys=True, default=str)
        groups.setdefault((env_label(r), r.agent, config), {})[r.train_seed] = r
    names = _agent_labels([key for key in groups])
    by_env: dict[str, list[Standing]] = {}
    for key, runs in groups.items():
        evaluation = Evaluation.of(key[1], key[0], [runs[s] for s in sorted(runs)])
        by_env.setdefault(key[0], []).append(Standing(key[0], names[key], 0, False, evaluation))

    def order(st: Standing) -> tuple[float, float]:
        e = st.evaluation
        return (-(e.score.iqm if e.score else -math.inf), -(e.mean_return.iqm if e.mean_return else -math.inf))

    def better(x: Standing, y: Standing) -> bool:
        """x is clearly ahead of y: its interval lies above y's (without intervals: a higher score)."""
        a, b = x.evaluation.score, y.evaluation.score
        if a is None or b is None:
            return order(x) < order(y)
        return a.clearly_above(b)

    out = []
    for env in sorted(by_env):
        entries = sorted(by_env[env], key=order)
        for st in entries:  # rank: 1 + the entries clearly ahead of it, so entries that cannot be told apart tie
            st.rank = 1 + sum(better(other, st) for other in entries if other is not st)
        for st in entries:
            st.tied = sum(other.rank == st.rank for other in entries) > 1
        out.extend(entries)
    return out


STANDINGS_COLUMNS = ("rank", "env", "agent", "runs", "score IQM", "95% CI", "success", "mean return", "notes")


def standing_cells(st: Standing) -> tuple[str, ...]:
    """One entry as the plain strings every format shows (rank 'n=' when tied)."""
    e = st.evaluation
    ci = (f"[{e.score.ci[0]:.3f}, {e.score.ci[1]:.3f}]" if e.score and math.isfinite(e.score.ci[0])
          else "1 run" if len(e.runs) == 1 else "n/a")
    success = "n/a" if e.success_rate is None else f"{e.success_rate:.0%}"
    score = f"{e.score.iqm:.3f}" if e.score else "n/a"
    mean = f"{e.mean_return.iqm:.2f}" if e.mean_return else "n/a"
    return (f"{st.rank}{'=' if st.tied else ''}", st.env, st.agent, str(len(e.runs)), score, ci, success, mean,
            "; ".join(e.flags))


def standing_dict(st: Standing) -> dict[str, Any]:
    """One entry for JSON: rank, tie, env, agent, and the evaluation's figures (runs as run keys)."""
    figures = st.evaluation.as_dict()
    figures["runs"] = [r.run_key for r in st.evaluation.runs]
    return {"rank": st.rank, "tied": st.tied, "env": st.env, "agent": st.agent, **figures}


def _agent_labels(keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """Name entries by agent, adding the settings in which entries of one agent on one env differ."""
    import json

    out = {}
    for key in keys:
        peers = [json.loads(k[2]) for k in keys if k[:2] == key[:2]]
        mine = json.loads(key[2])
        differ = sorted({k for p in peers for k in set(p) | set(mine) if p.get(k) != mine.get(k)})
        out[key] = " ".join([key[1], *(f"{k}={mine.get(k)}" for k in differ)])
    return out


def seed_list(train_seeds: int | Sequence[int], eval_seeds: Sequence[int]) -> list[int]:
    """Training seeds from a count (0..N-1) or a list: distinct, in [0, 2^31), none an evaluation seed."""
    from arena.errors import SettingsError

    if isinstance(train_seeds, bool) or not isinstance(train_seeds, (int, list, tuple, range)):
        raise SettingsError(f"train_seeds={train_seeds!r}; give a count (3) or a list of seeds ([0, 1, 2])")
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

    `agent` and `env` are the CLI's names ("q-learning", "grid:cliff slip=0.1"); `budget`
    is the training budget in the agent's units (None: its default); `config` its settings.
    With `record=True` each run lands on the leaderboard (`db`, default $ARENA_DB or
    replays/leaderboard.sqlite) with its replays under `replays`; without, replays and
    checkpoints go to a temporary folder that is removed afterwards."""
    import tempfile

    from arena import registry
    from arena.errors import SettingsError

    if type(eval_episodes) is not int or not 1 <= eval_episodes <= 100_000:
        raise SettingsError(f"eval_episodes={eval_episodes!r}; evaluate on 1 to 100000 episodes")
    if budget is not None and (type(budget) is not int or budget < 1):
        raise SettingsError(f"budget={budget!r}; give a positive number of training units, or None for the default")
    if config is not None and not isinstance(config, dict):
        raise SettingsError(f"config={config!r}; give the agent's settings as a dict, e.g. {{'alpha': 0.5}}")
    eval_seeds = [EVAL_SEED_BASE + i for i in range(eval_episodes)]
    seeds = seed_list(train_seeds, eval_seeds)
    spec, *kwargs = str(env).split()
    env_id, env_kwargs = registry.parse_env(spec, kwargs)
    registry.make_agent(agent, **(config or {}))  # a bad name or setting fails before any training
    registry.check_pairing(agent, env_id, kwargs=env_kwargs)
    if record:
        from arena.leaderboard import Leaderboard

        Leaderboard(db)  # a bad database fails before any training
    with tempfile.TemporaryDirectory(prefix="arena-eval-") as scratch:
        replay_dir, run_dir = (Path(replays), Path(runs)) if record else (Path(scratch) / "replays", Path(scratch) / "runs")
        results = []
        for seed in seeds:
            job = Job(agent, env_id, env_kwargs, dict(config or {}), seed, eval_episodes, train_episodes=budget)
            result, _ = run_job(job, replay_dir, run_dir)
            if not record:
                result.replay_paths = []  # removed with the scratch folder
            results.append(result)
    evaluation = Evaluation.of(agent, str(env), results)
    if record:
        evaluation.record(db)
    return evaluation


class _CallableModule(types.ModuleType):
    """`arena.evaluate` is this module (the protocol's names live here) and, called, the
    `evaluate` function: `arena.evaluate("q-learning", "grid:cliff")` reads as the call it is."""

    def __call__(self, *args: Any, **kwargs: Any) -> Evaluation:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
