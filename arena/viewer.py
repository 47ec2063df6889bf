"""Watch a replay in a pygame window, or export it as MP4/GIF, drawn by the env's own renderer.

Keys: space play/pause, left/right step back/forward, +/- speed, r restart, v value
heatmap, p policy arrows, q or Esc quit. The heads-up line shows step, action, reward
and return. Every loop iteration drains pygame's event queue, so the window never
stops responding, and closing it ends the viewer cleanly.

Why one long file: the window, the video export and the keyboard player draw the same frame
(board, status line, legend) and share that code.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from agents.protocol import Generator, Player
from agents.training import Callback
from arena.errors import FileFormatError, ViewerError
from arena.replay import Frame, Replay, resimulate
from envs.abilities import (
    Drawable,
    DrawsAction,
    GridBoard,
    ImageTask,
    NamedActions,
    ReadsInput,
    ShowsOverlay,
    action_name,
)
from envs.rendering import surface_rgb

HUD_HEIGHT = 30
SPEEDS = (0.5, 1, 2, 4, 8, 15, 30, 60)  # steps per second
VIDEO_SUFFIXES = (".mp4", ".gif")


@dataclass
class Timeline:
    """A replay re-simulated once: per step, the env snapshot and what happened."""

    env: gym.Env
    snapshots: list[Any]
    frames: list[Frame]
    label: str = ""
    greedy_actions: np.ndarray | None = None  # training replays: what the greedy policy would have done

    @classmethod
    def build(cls, replay: Replay, steps: int | None = None) -> "Timeline":
        """Re-simulate the replay (its first `steps` steps only, when given)."""
        snapshots: list[Any] = []
        frames: list[Frame] = []
        env: gym.Env | None = None
        for env, frame in resimulate(replay):
            snapshots.append(_board(env).snapshot())
            frames.append(frame)
            if steps is not None and frame.step >= steps:
                break
        assert env is not None  # resimulate yields step 0 at least
        overlay = replay.overlay
        if isinstance(env.unwrapped, ShowsOverlay) and overlay:
            env.unwrapped.set_overlay(V=overlay.get("V"), policy=overlay.get("policy"),
                                      **{k: v for k, v in overlay.items() if k not in ("V", "policy", "greedy_actions")})
        greedy = overlay.get("greedy_actions")
        return cls(env, snapshots, frames, replay.label, None if greedy is None else np.asarray(greedy))

    def explored(self, t: int) -> bool | None:
        """Whether action t (0-based) differed from the greedy choice; None if unknown."""
        if self.greedy_actions is None or t >= len(self.greedy_actions):
            return None
        return int(self.frames[t + 1].action) != int(self.greedy_actions[t])

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def board(self) -> Drawable:
        """The env as the viewer draws it."""
        return _board(self.env)


def _board(env: gym.Env) -> Drawable:
    u = env.unwrapped
    if not isinstance(u, Drawable):
        raise ViewerError(f"{type(u).__name__} cannot be drawn (it has no draw/frame_size/snapshot); replay an Arena env")
    return u


def _action_name(env: gym.Env, action: Any) -> str:
    return "-" if action is None else action_name(env, action)


def hud_text(timeline: Timeline, t: int, extra: str = "") -> str:
    """The status line at step t: the move that led here ('last'), its reward, the return so
    far, and the move about to be made ('next', the one the arrow on the board points to)."""
    f = timeline.frames[t]
    label = f"{timeline.label}: " if timeline.label else ""
    parts = [f"{label}step {f.step}/{len(timeline) - 1}"]
    if f.action is not None:
        parts.append(f"last {_action_name(timeline.env, f.action)}  reward {f.reward:.4g}")
    parts.append(f"return {f.episode_return:.4g}")
    if t < len(timeline) - 1:
        explored = timeline.explored(t)
        how = "" if explored is None else (" (explore)" if explored else " (greedy)")
        parts.append(f"next {_action_name(timeline.env, timeline.frames[t + 1].action)}{how}")
    else:
        parts.append("(end)")
    return "  ".join(parts) + extra


LEGEND_HEIGHT = 22
HEAT_LOW, HEAT_HIGH = (230, 120, 120), (110, 220, 100)  # the grid's heatmap ends (red low, green high)


def legend_items(timeline: Timeline, show_values: bool) -> list[tuple[str, str, tuple[int, int, int]]]:
    """(shape, text, colour) entries for the legend row: what the board's colours and marks mean."""
    env = timeline.env.unwrapped
    items: list[tuple[str, str, tuple[int, int, int]]] = []
    if isinstance(env, ImageTask):  # the number under each image, in its colour
        return [("square", "judge's score: 1.00 = looks real", (0, 150, 40)),
                ("square", "0.00 = looks fake", (200, 0, 40)),
                ("square", "reward = the new image's score", (90, 90, 90))]
    if not isinstance(env, GridBoard):  # tapes and other boards explain themselves
        return items
    V = env.overlay.get("V")
    if show_values and V is not None:
        v = np.asarray(V, dtype=float)[~env.mdp.terminal]
        v = v[np.isfinite(v)]
        if len(v):
            items.append(("gradient", f"V {v.min():.3g} .. {v.max():.3g}", (0, 0, 0)))
    items += [("agent", "agent", (240, 170, 30)), ("start", "start", (90, 140, 220)), ("goal", "goal", (60, 170, 90))]
    if (env.grid == "H").any():
        items.append(("square", "hole", (30, 40, 110)))
    if (env.grid == "C").any():
        items.append(("square", "cliff", (170, 60, 50)))
    if timeline.greedy_actions is not None:
        items += [("line", "greedy move", (40, 90, 210)), ("line", "exploring move", (210, 40, 40))]
    elif len(timeline) > 1:
        items.append(("line", "next move", (40, 90, 210)))
    return items


def draw_legend(surface: Any, y: int, items: list[tuple[str, str, tuple[int, int, int]]], font: Any) -> int:
    """Draw the legend row at height y; returns its width in pixels."""
    import pygame

    x = 8
    mid = y + LEGEND_HEIGHT // 2
    for shape, text, colour in items:
        if shape == "gradient":
            for i in range(40):
                a = i / 39
                c = tuple(int(lo + a * (hi - lo)) for lo, hi in zip(HEAT_LOW, HEAT_HIGH))
                pygame.draw.line(surface, c, (x + i, mid - 6), (x + i, mid + 6))
            x += 44
        elif shape == "agent":
            pygame.draw.circle(surface, colour, (x + 6, mid), 6)
            x += 16
        elif shape == "start":
            pygame.draw.rect(surface, colour, (x, mid - 6, 12, 12), 2)
            x += 16
        elif shape == "line":
            pygame.draw.line(surface, colour, (x, mid), (x + 14, mid), 3)
            x += 18
        else:
            pygame.draw.rect(surface, colour, (x, mid - 6, 12, 12))
            x += 16
        label = font.render(text, True, (220, 220, 220))
        surface.blit(label, (x, mid - label.get_height() // 2))
        x += label.get_width() + 14
    return x


def canvas_size(timeline: Timeline, font: Any, show_values: bool = True) -> tuple[int, int]:
    """The window (or video frame) that fits the board, the longest status line and the legend."""
    w, h = timeline.board.frame_size()
    text_w = max(font.size(hud_text(timeline, t, "  [paused]"))[0] for t in range(len(timeline))) + 16
    items = legend_items(timeline, show_values)
    legend_w = 8 + sum(font.size(text)[0] + (58 if shape == "gradient" else 30) for shape, text, _ in items)
    height = h + HUD_HEIGHT + (LEGEND_HEIGHT if items else 0)
    return max(w, text_w, legend_w), height


def draw_frame(surface: Any, timeline: Timeline, t: int, show_values: bool, show_policy: bool, font: Any, extra: str = "") -> None:
    """The env at step t, the status line and the legend, onto `surface`."""
    import pygame

    env = timeline.board
    env.restore(timeline.snapshots[t])
    w, h = env.frame_size()
    board = surface.subsurface((0, 0, w, h))
    env.draw(board, show_values=show_values, show_policy=show_policy)
    if t < len(timeline) - 1 and isinstance(env, DrawsAction):
        # the move about to be made: red when it is exploration, blue when greedy
        explored = timeline.explored(t)
        env.draw_action(board, timeline.frames[t + 1].action, (210, 40, 40) if explored else (40, 90, 210))
    pygame.draw.rect(surface, (30, 30, 36), (0, h, surface.get_width(), surface.get_height() - h))
    text = font.render(hud_text(timeline, t, extra), True, (235, 235, 235))
    surface.blit(text, (8, h + (HUD_HEIGHT - text.get_height()) // 2))
    items = legend_items(timeline, show_values)
    if items:
        draw_legend(surface, h + HUD_HEIGHT, items, font)


def _font(size: int = 18) -> Any:
    import pygame

    pygame.font.init()
    return pygame.font.Font(None, size)


class Viewer:
    """The interactive player's state; `handle` takes one pygame event, `advance` one tick."""

    def __init__(self, replay: Replay, speed: float | None = None, start: int | None = None) -> None:
        self.timeline = Timeline.build(replay)
        fps = self.timeline.env.unwrapped.metadata.get("render_fps", 8)
        self.speed_index = int(np.argmin([abs(s - (speed or fps)) for s in SPEEDS]))
        self.t = 0 if start is None else int(np.clip(start, 0, len(self.timeline) - 1))
        self.paused = start is not None
        self.show_values = True
        self.show_policy = True
        self.running = True

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]

    def handle(self, event: Any) -> None:
        import pygame

        if event.type == pygame.QUIT:
            self.running = False
        elif event.type == pygame.KEYDOWN:
            last = len(self.timeline) - 1
            key, char = event.key, getattr(event, "unicode", "")
            if key in (pygame.K_q, pygame.K_ESCAPE):
                self.running = False
            elif key == pygame.K_SPACE:
                self.paused = not self.paused
                if not self.paused and self.t == last:
                    self.t = 0
            elif key == pygame.K_RIGHT:
                self.paused, self.t = True, min(self.t + 1, last)
            elif key == pygame.K_LEFT:
                self.paused, self.t = True, max(self.t - 1, 0)
            elif key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS) or char == "+":
                self.speed_index = min(self.speed_index + 1, len(SPEEDS) - 1)
            elif key in (pygame.K_MINUS, pygame.K_KP_MINUS) or char == "-":
                self.speed_index = max(self.speed_index - 1, 0)
            elif key == pygame.K_r:
                self.t, self.paused = 0, False
            elif key == pygame.K_v:
                self.show_values = not self.show_values
            elif key == pygame.K_p:
                self.show_policy = not self.show_policy

    def advance(self) -> None:
        """One tick of play: the next step, or pause at the end."""
        if not self.paused:
            if self.t < len(self.timeline) - 1:
                self.t += 1
            else:
                self.paused = True

    def status(self) -> str:
        state = "paused" if self.paused else f"{self.speed:g} steps/s"
        return f"  [{state}]"

    def run(self, max_seconds: float | None = None, on_frame: Callable[["Viewer", Any], None] | None = None) -> None:
        """Open the window and play until the user quits (or max_seconds pass)."""
        import pygame

        pygame.display.init()  # display only: no audio device probing
        font, clock = _font(), pygame.time.Clock()
        try:
            window = pygame.display.set_mode(canvas_size(self.timeline, font))
        except pygame.error as exc:
            raise ViewerError(f"cannot open a window ({exc}); use --video out.mp4 on a machine without a display") from None
        pygame.display.set_caption("Arena replay: space pause, arrows step, +/- speed, r restart, v values, p policy, q quit")
        elapsed, next_step = 0.0, 0.0
        try:
            while self.running:
                for event in pygame.event.get():
                    self.handle(event)
                dt = clock.tick(60) / 1000.0
                elapsed += dt
                next_step += dt
                if next_step >= 1.0 / self.speed:
                    next_step = 0.0
                    self.advance()
                window.fill((30, 30, 36))
                draw_frame(window, self.timeline, self.t, self.show_values, self.show_policy, font, self.status())
                pygame.display.flip()
                if on_frame:
                    on_frame(self, window)
                if max_seconds is not None and elapsed >= max_seconds:
                    break
        finally:
            pygame.display.quit()
            self.timeline.env.close()


def check_display(seconds: float | None, instead: str) -> None:
    """A window needs a display. Without one SDL quietly draws to nowhere and waits for keys
    that never come, so say so, unless an invisible window was asked for (SDL_VIDEODRIVER=
    dummy or offscreen) with a time limit."""
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    if driver in ("dummy", "offscreen"):
        if seconds is None:
            raise ViewerError(f"SDL_VIDEODRIVER={driver}: the window would be invisible and wait forever; add "
                              f"--seconds N, or {instead}")
        return
    if sys.platform.startswith("linux") and not driver and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ViewerError(f"no display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so no window can open; {instead}")


def watch(replay: Replay, speed: float | None = None, max_seconds: float | None = None, start: int | None = None) -> None:
    """Play a replay in a window (see the module docstring for the keys); `start` opens paused at that step."""
    Viewer(replay, speed, start).run(max_seconds=max_seconds)


def render_frames(replay: Replay, show_values: bool = True, show_policy: bool = True,
                  steps: int | None = None) -> list[np.ndarray]:
    """One RGB frame (H, W, 3) per step 0..T (or 0..steps): the start position, then after each action."""
    import pygame

    timeline = Timeline.build(replay, steps)
    try:
        font = _font()
        surface = pygame.Surface(canvas_size(timeline, font, show_values))
        out = []
        for t in range(len(timeline)):
            surface.fill((30, 30, 36))
            draw_frame(surface, timeline, t, show_values, show_policy, font)
            out.append(surface_rgb(surface))
        return out
    finally:
        timeline.env.close()


def export_video(replay: Replay, path: str | Path, fps: float | None = None, show_values: bool = True, show_policy: bool = True) -> int:
    """Write the replay to .mp4 (H.264 via imageio-ffmpeg) or .gif; returns the distinct frames
    (the start and one per step). The last frame is held for about a second."""
    path = _video_path(path)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    if fps is not None and not (np.isfinite(fps) and 0 < fps <= 1000):
        raise ViewerError(f"--fps {fps}: use a number of frames per second in (0, 1000]")
    frames = render_frames(replay, show_values, show_policy)
    fps = fps or 8
    _write_video(path, frames, fps)
    return len(frames)


def _write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """Frames to .gif or .mp4 (H.264), atomically; the last frame held about a second so the end can be seen."""
    import imageio.v2 as imageio

    from agents.checkpoint import write_atomically

    hold = max(1, round(fps))

    def write(tmp: Path) -> None:
        if path.suffix.lower() == ".gif":
            durations = [1000.0 / fps] * (len(frames) - 1) + [1000.0 * hold / fps]
            imageio.mimsave(tmp, frames, duration=durations, loop=0)  # type: ignore[arg-type]
        else:
            h, w = frames[0].shape[:2]
            ph, pw = -h % 16, -w % 16  # H.264 wants dimensions in whole macroblocks
            with imageio.get_writer(tmp, fps=fps, codec="libx264", quality=8, pixelformat="yuv420p",
                                    macro_block_size=16) as writer:
                for frame in frames + [frames[-1]] * hold:
                    writer.append_data(  # type: ignore[attr-defined]
                        np.pad(frame, ((0, ph), (0, pw), (0, 0)), mode="edge"))

    write_atomically(path, write)


def _video_path(path: str | Path) -> Path:
    """A new .mp4 or .gif path, or one ViewerError line."""
    from agents.checkpoint import new_file

    try:
        return new_file(path, "the video", VIDEO_SUFFIXES)
    except FileFormatError as exc:
        raise ViewerError(str(exc)) from None


class SampleVideo(Callback):
    """A training-loop callback for generators: one frame per checkpoint, the images the
    generator makes from one fixed batch of latents (so the frames show the same z learning
    to become digits), written to .mp4 or .gif when training ends."""

    def __init__(self, path: str | Path, n: int = 64, fps: float = 4.0) -> None:
        path = _video_path(path)
        self.path, self.n, self.fps = path, n, fps
        self.frames: list[np.ndarray] = []

    def on_start(self, learner: Any, env: gym.Env) -> None:
        if not isinstance(learner, Generator):
            raise ViewerError(f"--video shows a generator's samples as it trains; {learner.name} makes no images")

    def on_checkpoint(self, learner: Any, done: int) -> None:
        grid = learner.grid(learner.sample(self.n, seed=0))[0]  # (H, W) in [0, 1]
        scale = max(1, 384 // grid.shape[1])
        big = np.kron((grid * 255).astype(np.uint8), np.ones((scale, scale), dtype=np.uint8))
        self.frames.append(np.repeat(big[:, :, None], 3, axis=2))

    def on_end(self, learner: Any) -> None:
        if not self.frames:
            return
        _write_video(self.path, self.frames, self.fps)


# --------------------------------------------------------------------------- keyboard play

GRID_KEYS = {"up": ("K_UP", "K_w"), "right": ("K_RIGHT", "K_d"), "down": ("K_DOWN", "K_s"), "left": ("K_LEFT", "K_a"),
             "up-right": ("K_e", "K_KP9"), "down-right": ("K_c", "K_KP3"), "down-left": ("K_z", "K_KP1"),
             "up-left": ("K_q", "K_KP7"), "stay": ("K_x", "K_KP5")}  # king's moves: q e z c (and x) around w a s d
SPECIAL_TOKENS = {"⏎": "K_RETURN", "␣": "K_SPACE"}  # the text task's newline and space


class KeyboardAgent(Player):
    """A person at the keyboard, playing through the Agent interface, so their episodes are
    recorded, replayed and scored exactly like any agent's.

    `act` draws the env in a window and waits for a key: on a grid the arrow keys (or w a s
    d) move, with king's moves q e z c the diagonals and x stays; on a sequence task the key of a token (0-9, a-f, a letter; Enter and space in
    the text task) outputs it. Esc gives up. The window shows a mirror of the env, stepped
    with the same seed and actions, so it is the env the episode is played on, bit for bit.
    A sequence task's wanted outputs are hidden. `recurrent` is true: a person's choices
    depend on the whole episode, so the score is sampled from the episodes, never exact.
    """

    name = "human"
    recurrent = True

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], max_seconds: float | None = None,
                 on_frame: Callable[["KeyboardAgent", Any], None] | None = None) -> None:
        from arena.registry import make_env

        self.mirror = make_env(env_id, env_kwargs)
        u = self.mirror.unwrapped
        names = u.action_names if isinstance(u, NamedActions) else None
        if names is None or not isinstance(u, Drawable) or isinstance(u, ImageTask):
            self.mirror.close()
            raise ViewerError(f"{env_id} cannot be played from the keyboard; play a grid (grid:cliff) or a sequence task "
                              "(seq:copy length=4)")
        try:
            check_display(max_seconds, "play on a machine with a screen")
        except ViewerError:
            self.mirror.close()
            raise
        self.board: Drawable = u
        self.names: list[str] = list(names)
        self.keys = self._key_map(self.names)
        self.max_seconds, self.on_frame = max_seconds, on_frame
        self.episode, self.steps, self.G = 0, 0, 0.0
        self.window: Any = None
        self.settings = None

    @staticmethod
    def _key_map(names: list[str]) -> dict[Any, int]:
        """pygame key code or typed character -> action."""
        import pygame

        out: dict[Any, int] = {}
        for a, name in enumerate(names):
            for attr in GRID_KEYS.get(name, ()):
                out[getattr(pygame, attr)] = a
            if name in SPECIAL_TOKENS:
                out[getattr(pygame, SPECIAL_TOKENS[name])] = a
            elif name not in GRID_KEYS and len(name) == 1:
                out[name] = a
        return out

    def help(self) -> str:
        if "up" in list(self.names):
            king = ", q e z c the diagonals" if "up-left" in self.names else ""
            stay = ", x stays" if "stay" in self.names else ""
            return f"arrows (or w a s d) move{king}{stay}, Esc gives up"
        return "type a token to output it, Esc gives up"

    def reset(self, seed: int | None = None) -> None:
        if self.episode:
            self.wait(f"episode {self.episode} over, return {self.G:g}: any key for the next one")
        self.mirror.reset(seed=seed)
        self.episode, self.steps, self.G = self.episode + 1, 0, 0.0
        return None

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        u = self.mirror.unwrapped
        reading = isinstance(u, ReadsInput) and u.reading()  # a sequence's input step: the key is not scored
        what = "reading the input: any token key goes on" if reading else self.help()
        action = self._key(f"episode {self.episode}, step {self.steps}, return {self.G:g}: {what}", any_key=False)
        _, reward, *_ = self.mirror.step(action)
        self.steps, self.G = self.steps + 1, self.G + float(reward)
        return action, None

    def wait(self, text: str) -> None:
        """Show the env with `text` until any key (or the time limit)."""
        self._key(text, any_key=True)

    def close(self) -> None:
        import pygame

        if self.window is not None:
            pygame.display.quit()
            self.window = None
        self.mirror.close()

    def _key(self, text: str, any_key: bool) -> Any:
        import time

        import pygame

        font = _font()
        w, h = self.board.frame_size()
        size = (max(w, font.size(text)[0] + 16), h + HUD_HEIGHT)
        if self.window is None or self.window.get_size() != size:
            pygame.display.init()
            try:
                self.window = pygame.display.set_mode(size)
            except pygame.error as exc:
                raise ViewerError(f"cannot open a window ({exc}); arena play needs a display") from None
            pygame.display.set_caption(f"Arena: you play {self.board.window_title()}")
        start, clock = time.monotonic(), pygame.time.Clock()
        while True:
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                    raise ViewerError("you stopped before the last episode ended; no result was recorded")
                if event.type == pygame.KEYDOWN:
                    if any_key:
                        return None
                    action = self.keys.get(event.key, self.keys.get(getattr(event, "unicode", "")))
                    if action is not None:
                        return action
            self.window.fill((30, 30, 36))
            self.board.draw(self.window.subsurface((0, 0, w, h)), show_values=False, show_policy=False)
            self.window.blit(font.render(text, True, (235, 235, 235)), (8, h + (HUD_HEIGHT - font.get_height()) // 2))
            pygame.display.flip()
            if self.on_frame:
                self.on_frame(self, self.window)
            if self.max_seconds is not None and time.monotonic() - start > self.max_seconds:
                raise ViewerError(f"no key pressed in {self.max_seconds:g} s; no result was recorded")
            clock.tick(30)
