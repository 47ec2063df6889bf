"""Arena: where learning agents meet tasks. Matches, replays, the viewer and the leaderboard.

    import arena
    result = arena.evaluate("q-learning", "grid:cliff", train_seeds=3, budget=2000)
    print(result.score.iqm, result.score.ci, result.success_rate)

    arena.register_agent("my-agent", MyAgent)   # then "my-agent" runs wherever a built-in does
    arena.show("replays/<run>/episode-seed1000.npz")   # in Jupyter: the episode, inline
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The public API on first use. Importing `arena` itself imports nothing more (envs/ and
    agents/ import its leaves, arena.errors and arena.settings), so the facade names its
    modules by string: `arena.evaluate` is arena.evaluation's function, not a module."""
    import importlib

    where = {"evaluate": "arena.evaluation", "register_agent": "arena.registry", "show": "arena.notebook"}
    if name in where:
        return getattr(importlib.import_module(where[name]), name)
    raise AttributeError(f"module 'arena' has no attribute {name!r}")


__all__ = ["evaluate", "register_agent", "show"]
