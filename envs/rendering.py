"""How Arena's envs show themselves: one `render()` for every env that can draw itself.

An env provides `draw(surface)` (onto a pygame surface of `frame_size()`), `render_text()`
and `window_title()`; this mixin turns them into Gymnasium's render modes. pygame is
initialised lazily and only its display, and a "human" window drains its event queue
on every frame, so it never stops responding.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def surface_rgb(surface: Any) -> np.ndarray:
    """A pygame surface as a writable (H, W, 3) uint8 RGB array: SDL writes the rows out in
    order, four times faster than transposing surfarray's (W, H, 3) view."""
    import pygame

    width, height = surface.get_size()
    return np.frombuffer(bytearray(pygame.image.tobytes(surface, "RGB")), np.uint8).reshape(height, width, 3)


class PygameRendering:
    """Gymnasium's render modes "human", "rgb_array" and "ansi" from draw/frame_size/render_text."""

    render_mode: str | None
    metadata: dict[str, Any]
    _window: Any = None
    _clock: Any = None

    def render(self) -> Any:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode= to make()")
            return None
        if self.render_mode == "ansi":
            return self.render_text()
        import pygame

        if self.render_mode == "rgb_array":
            surface = pygame.Surface(self.frame_size())
            self.draw(surface)
            return surface_rgb(surface)
        if self._window is None:
            pygame.display.init()  # only the display: no audio probing
            pygame.display.set_caption(self.window_title())
            self._window = pygame.display.set_mode(self.frame_size())
            self._clock = pygame.time.Clock()
        for event in pygame.event.get():  # keep the window responsive
            if event.type == pygame.QUIT:
                self.close()
                return None
        self.draw(self._window)
        pygame.display.flip()
        self._clock.tick(self.metadata["render_fps"])
        return None

    def close(self) -> None:
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = None

    # provided by the env -------------------------------------------------------

    def draw(self, surface: Any, show_values: bool = True, show_policy: bool = True) -> None:
        raise NotImplementedError

    def frame_size(self) -> tuple[int, int]:
        raise NotImplementedError

    def render_text(self) -> str:
        raise NotImplementedError

    def window_title(self) -> str:
        return f"Arena: {type(self).__name__}"
