"""`arena.show(...)`: a replay or a result, displayed inline in a Jupyter notebook.

`arena.show("replays/<run>/episode-seed1000.npz")` shows the episode as the viewer draws
it, as an animated image (re-simulated from its seed and actions); with `inside=True` the
picture of the network inside it beside (arena/inside.py). `arena.show(result)` (an
`Evaluation`) shows its table. The returned object renders itself as HTML, so a notebook
displays it when it is a cell's last expression (or pass it to IPython's `display`).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from arena.errors import ViewerError

REPLAY_WIDTH = 420  # pixels of the animated episode in a notebook


class Shown:
    """HTML that Jupyter renders (its `_repr_html_`); `str()` gives the same HTML."""

    def __init__(self, markup: str) -> None:
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup


def show(what: Any, inside: bool = False, checkpoint: str | Path | None = None) -> Shown:
    """A replay file (path) or an `Evaluation`, as HTML a notebook displays inline."""
    from arena.evaluation import Evaluation

    if isinstance(what, Evaluation):
        return Shown(what._repr_html_())
    if not isinstance(what, (str, Path)):
        raise ViewerError(f"arena.show takes a replay path or a result of arena.evaluate, not {type(what).__name__}")
    from arena.leaderboard.report import frames_gif
    from arena.replay import load_replay
    from arena.viewer import render_frames

    path = Path(what)
    replay = load_replay(path)
    gif = base64.b64encode(frames_gif(render_frames(replay), REPLAY_WIDTH)).decode()
    caption = html.escape(f"{replay.agent} on {replay.env_id} {replay.env_kwargs}, seed {replay.seed}: "
                          f"return {replay.episode_return:.3g} in {replay.steps} steps")
    parts = [f"<figure style='display:inline-block;margin:4px'><img alt='episode' src='data:image/gif;base64,{gif}'>"
             f"<figcaption>{caption}</figcaption></figure>"]
    if inside:
        from arena.inside import inside_png

        png, drawn = inside_png(replay, path, Path(checkpoint) if checkpoint else None)
        parts.append(f"<figure style='display:inline-block;margin:4px'><img alt='inside' style='max-width:100%' "
                     f"src='data:image/png;base64,{base64.b64encode(png).decode()}'><figcaption>{html.escape(drawn)}"
                     "</figcaption></figure>")
    return Shown("<div class='arena-show'>" + "".join(parts) + "</div>")


__all__ = ["Shown", "show"]
