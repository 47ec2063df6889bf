"""Every error a user can cause, under one root: `ArenaError`.

The CLI catches `ArenaError` alone, prints its message on one line and exits 2; scripts
can do the same. Each area has its own subclass so a caller can tell them apart, and
each message names the problem and the fix.

This module is a leaf: it imports nothing, so envs/ and agents/ may import it (it and
arena/settings.py are the only parts of arena/ they import) without pulling in the
rest of arena/ or creating a cycle.
"""

from __future__ import annotations


class ArenaError(Exception):
    """The root of every error a user can cause: bad input, a bad file, an impossible request."""


class SettingsError(ArenaError, ValueError):
    """A setting or kwarg has the wrong type, is out of range, or is unknown."""


class EnvError(SettingsError):
    """An env cannot be built as asked (bad kwarg value, map or layout)."""


class AgentError(SettingsError):
    """An agent was asked something it cannot do (wrong env, bad setting, not fitted)."""


class RegistryError(SettingsError):
    """An unknown agent or env name, or an agent paired with an env it cannot play."""


class SuiteError(RegistryError):
    """A suite file cannot be run: malformed TOML, an unknown agent or env, a bad seed list.
    The message starts with the file and line."""


class FileFormatError(ArenaError, ValueError):
    """A file is not what it claims to be: truncated, corrupt, forged, or another format or version."""


class CheckpointError(FileFormatError, AgentError):
    """A checkpoint cannot be used: damaged, another agent's, or for another env."""


class ReplayError(FileFormatError):
    """A replay cannot be read, or re-simulating it does not give the recorded episode."""


class LeaderboardError(ArenaError, RuntimeError):
    """The database cannot be used: missing, locked, corrupt, not Arena's, or a newer schema."""


class TrainingError(ArenaError, RuntimeError):
    """Training cannot go on (a non-finite loss or gradient); the message says where."""


class ViewerError(ArenaError, RuntimeError):
    """The viewer cannot show or export what was asked (no display, bad speed or file type)."""


def one_line(message: object) -> str:
    """A message folded onto one line, so a terminal shows it whole and a log keeps it whole."""
    return " ".join(str(message).split())


__all__ = [
    "AgentError", "ArenaError", "CheckpointError", "EnvError", "FileFormatError", "LeaderboardError",
    "RegistryError", "ReplayError", "SettingsError", "TrainingError", "ViewerError", "one_line",
]
