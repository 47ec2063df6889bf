"""The error type for env settings a user got wrong; the CLI prints it as one line.

It derives from Arena's one error root (arena/errors.py, a leaf module that imports
nothing, which envs/ may import without pulling in the rest of arena/).
"""

from arena.errors import EnvError

__all__ = ["EnvError"]
