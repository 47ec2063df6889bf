"""Arena: where learning agents meet tasks. Matches, replays, the viewer and the leaderboard."""

__version__ = "0.1.0"
