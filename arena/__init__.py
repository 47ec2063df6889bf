"""Arena: where learning agents meet tasks. Matches, replays, the viewer and the leaderboard.

    import arena
    result = arena.evaluate("q-learning", "grid:cliff", train_seeds=3, budget=2000)
    print(result.score.iqm, result.score.ci, result.success_rate)
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`arena.evaluate` on first use (importing `arena` itself stays light: envs/ import arena.errors)."""
    if name == "evaluate":
        import importlib

        return importlib.import_module("arena.evaluate")
    raise AttributeError(f"module 'arena' has no attribute {name!r}")


__all__ = ["evaluate"]
