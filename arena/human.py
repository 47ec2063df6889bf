"""A person plays: evaluation episodes from the keyboard, landing on the leaderboard as `human`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from agents.protocol import RunSpec
from arena.jobs import Job, score_run
from arena.leaderboard import Result
from arena.match import play
from arena.registry import make_env


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
        job = Job("human", env_id, env_kwargs, spec=RunSpec(seed=max(earlier, default=-1) + 1), episodes=episodes)
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
