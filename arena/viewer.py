"""Watch a replay in a pygame window, or export it as MP4/GIF, drawn by the env's own renderer.

Keys: space play/pause, left/right step back/forward, +/- speed, r restart, v value
heatmap, p policy arrows, q or Esc quit. The heads-up line shows step, action, reward
and return. Every loop iteration drains pygame's event queue, so the window never
stops responding, and closing it ends the viewer cleanly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from arena.errors import ViewerError
from arena.replay import Frame, Replay, resimulate

HUD_HEIGHT = 30
SPEEDS = (0.5, 1, 2, 4, 8, 15, 30, 60)  # steps per second
VIDEO_SUFFIXES = (".mp4", ".gif")


@dataclass
class Timeline:
    """A replay re-simulated once: per step, the env snapshot and what happened."""

    env: Any
    snapshots: list[Any]
    frames: list[Frame]
    label: str = ""
    greedy_actions: np.ndarray | None = None  # training replays: what the greedy policy would have done

    @classmethod
    def build(cls, replay: Replay) -> "Timeline":
        snapshots, frames, env = [], [], None
        for env, frame in resimulate(replay):
            snapshots.append(env.unwrapped.snapshot())
            frames.append(frame)
        overlay = replay.overlay
        if hasattr(env.unwrapped, "set_overlay") and overlay:
            env.unwrapped.set_overlay(V=overlay.get("V"), policy=overlay.get("policy"))
        greedy = overlay.get("greedy_actions")
        return cls(env, snapshots, frames, replay.label, None if greedy is None else np.asarray(greedy))

    def explored(self, t: int) -> bool | None:
        """Whether action t (0-based) differed from the greedy choice; None if unknown."""
        if self.greedy_actions is None or t >= len(self.greedy_actions):
            return None
        return int(self.frames[t + 1].action) != int(self.greedy_actions[t])

    def __len__(self) -> int:
        return len(self.frames)


def _action_name(env: Any, action: int | None) -> str:
    if action is None:
        return "-"
    names = getattr(env.unwrapped, "action_names", None)
    return names[action] if names else str(action)


def hud_text(timeline: Timeline, t: int, extra: str = "") -> str:
    f = timeline.frames[t]
    end = "  (end)" if t == len(timeline) - 1 else ""
    explored = timeline.explored(t - 1) if t > 0 else None
    how = "" if explored is None else (" (explore)" if explored else " (greedy)")
    label = f"{timeline.label}: " if timeline.label else ""
    return (
        f"{label}step {f.step}/{len(timeline) - 1}  action {_action_name(timeline.env, f.action)}{how}  "
        f"reward {f.reward:g}  return {f.episode_return:g}{end}{extra}"
    )


def draw_frame(surface: Any, timeline: Timeline, t: int, show_values: bool, show_policy: bool, font: Any, extra: str = "") -> None:
    """The env at step t plus the heads-up line, onto `surface`."""
    import pygame

    env = timeline.env.unwrapped
    env.restore(timeline.snapshots[t])
    w, h = env.frame_size()
    board = surface.subsurface((0, 0, w, h))
    env.draw(board, show_values=show_values, show_policy=show_policy)
    if t < len(timeline) - 1 and hasattr(env, "draw_action"):
        # the move about to be made: red when it is exploration, blue when greedy
        explored = timeline.explored(t)
        env.draw_action(board, timeline.frames[t + 1].action, (210, 40, 40) if explored else (40, 90, 210))
    pygame.draw.rect(surface, (30, 30, 36), (0, h, surface.get_width(), HUD_HEIGHT))
    text = font.render(hud_text(timeline, t, extra), True, (235, 235, 235))
    surface.blit(text, (8, h + (HUD_HEIGHT - text.get_height()) // 2))


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
        env = self.timeline.env.unwrapped
        w, h = env.frame_size()
        try:
            window = pygame.display.set_mode((max(w, 420), h + HUD_HEIGHT))
        except pygame.error as exc:
            raise ViewerError(f"cannot open a window ({exc}); use --video out.mp4 on a machine without a display") from None
        pygame.display.set_caption("Arena replay: space pause, arrows step, +/- speed, r restart, v values, p policy, q quit")
        font, clock = _font(), pygame.time.Clock()
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


def watch(replay: Replay, speed: float | None = None, max_seconds: float | None = None, start: int | None = None) -> None:
    """Play a replay in a window (see the module docstring for the keys); `start` opens paused at that step."""
    Viewer(replay, speed, start).run(max_seconds=max_seconds)


def render_frames(replay: Replay, show_values: bool = True, show_policy: bool = True) -> list[np.ndarray]:
    """One RGB frame (H, W, 3) per step 0..T: the start position, then after each action."""
    import pygame

    timeline = Timeline.build(replay)
    try:
        w, h = timeline.env.unwrapped.frame_size()
        surface = pygame.Surface((max(w, 420), h + HUD_HEIGHT))
        font = _font()
        out = []
        for t in range(len(timeline)):
            surface.fill((30, 30, 36))
            draw_frame(surface, timeline, t, show_values, show_policy, font)
            out.append(np.transpose(pygame.surfarray.array3d(surface), (1, 0, 2)).copy())
        return out
    finally:
        timeline.env.close()


def export_video(replay: Replay, path: str | Path, fps: float | None = None, show_values: bool = True, show_policy: bool = True) -> int:
    """Write the replay to .mp4 (H.264 via imageio-ffmpeg) or .gif; returns frames written."""
    import imageio.v2 as imageio

    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ViewerError(f"cannot export {path.suffix or 'a file without suffix'}; use a path ending in .mp4 or .gif")
    if path.exists():
        raise ViewerError(f"{path} already exists; choose another name (nothing was overwritten)")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    frames = render_frames(replay, show_values, show_policy)
    fps = fps or 8
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    if path.suffix.lower() == ".gif":
        imageio.mimsave(tmp, frames, duration=1000.0 / fps, loop=0)
    else:
        h, w = frames[0].shape[:2]
        ph, pw = -h % 16, -w % 16  # H.264 wants dimensions in whole macroblocks
        with imageio.get_writer(tmp, fps=fps, codec="libx264", quality=8, pixelformat="yuv420p", macro_block_size=16) as writer:
            for frame in frames:
                writer.append_data(np.pad(frame, ((0, ph), (0, pw), (0, 0)), mode="edge"))
    os.replace(tmp, path)
    return len(frames)
