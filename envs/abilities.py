"""What callers may need of an env beyond Gymnasium's API, as small Protocols checked with
`isinstance` (never a `hasattr` probe): the exact model, the image task's judge and data,
drawing for the viewer, named actions, and whether the env learns across episodes.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

MAX_EPISODE_STEPS = 10_000_000  # the longest episode an Arena env allows; a replay holds at most this many steps


@runtime_checkable
class EpisodeLimit(Protocol):
    """An env whose episodes end (truncate) after at most `max_steps` steps."""

    max_steps: int


@runtime_checkable
class HasModel(Protocol):
    """An env with an exact model (`mdp`: the arrays DP runs on), truncated after `max_steps`."""

    mdp: Any
    max_steps: int


@runtime_checkable
class MasksActions(Protocol):
    """An env whose states offer different actions: `action_mask` (S, A) bool, True where
    state s offers action a (MaximizationBias-v0 also puts the row in each step's info as
    "action_mask", Gymnasium's convention). Tabular learners explore and maximise over the
    offered actions only."""

    action_mask: np.ndarray


@runtime_checkable
class HasStepTables(Protocol):
    """An env whose dynamics are flat tables (envs/grid.py StepTables) that compiled loops may
    step with `grid_step` instead of `step`, then `sync` the env to where the episode ended."""

    obs_mode: str

    def step_tables(self) -> Any: ...

    def episode_start(self) -> tuple[int, int]:
        """(state, stream key) of the episode the last reset began."""
        ...

    def sync(self, s: int, t: int, last_action: int) -> None: ...


@runtime_checkable
class ObservesStates(Protocol):
    """An env that can say what an agent sees in any state (its observation mode applied)."""

    def observation_of(self, s: int) -> Any: ...


@runtime_checkable
class GridBoard(HasModel, Protocol):
    """A model drawn as a board of cells (`grid`: the map's characters) with an overlay of
    values and a policy (`overlay`): what the viewer's legend explains."""

    grid: np.ndarray
    overlay: dict[str, Any]


@runtime_checkable
class ImageTask(Protocol):
    """The image-generation task: real data, a judge, and the shapes a generator answers in."""

    image_shape: tuple[int, int, int]
    dataset: str
    size: int
    latent: int
    n_classes: int
    conditional: bool
    batch: int
    data: Any  # the data set: train and held-out splits

    def real_batch(self, n: int, seed: int, labels: bool = False) -> Any: ...

    def score(self, images: np.ndarray) -> np.ndarray: ...

    def classify(self, images: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class WritesText(Protocol):
    """The text-generation task: an agent writes a response to a prompt; `text` holds the
    task's rules (envs/text.py TextTask: prompts, the right answer, the gold score, labellers)."""

    text: Any
    prompt: np.ndarray
    response: list[int]


@runtime_checkable
class LearnsAcrossEpisodes(Protocol):
    """An env whose judge changes from one episode to the next (the adaptive image judge)."""

    learns_across_episodes: bool


@runtime_checkable
class Drawable(Protocol):
    """An env the viewer can step back and forth and draw (envs/rendering.py)."""

    def snapshot(self) -> Any: ...

    def restore(self, snapshot: Any) -> None: ...

    def draw(self, surface: Any, show_values: bool = True, show_policy: bool = True) -> None: ...

    def frame_size(self) -> tuple[int, int]: ...

    def window_title(self) -> str: ...


@runtime_checkable
class ShowsOverlay(Protocol):
    """An env that draws values (a heatmap) and a policy (arrows) over its board."""

    def set_overlay(self, V: np.ndarray | None = None, policy: np.ndarray | None = None, **extra: Any) -> None: ...


@runtime_checkable
class DrawsAction(Protocol):
    """An env that marks the move about to be made."""

    def draw_action(self, surface: Any, action: int, colour: tuple[int, int, int]) -> None: ...


@runtime_checkable
class DescribesActions(Protocol):
    """An env whose actions (arrays, e.g. images) describe themselves in words."""

    def describe_action(self, action: Any) -> str: ...


@runtime_checkable
class NamedActions(Protocol):
    """An env whose discrete actions have names (None: no names)."""

    action_names: Any


@runtime_checkable
class ShowsTokens(Protocol):
    """A sequence task whose observations carry a token (first), with its text ('_' for a blank)."""

    def token_text(self, token: int) -> str: ...


@runtime_checkable
class ReadsInput(Protocol):
    """A task with input steps, where the action is not scored (a sequence task shows its input)."""

    def reading(self) -> bool:
        """Whether the current step is an input step."""
        ...


def action_name(env: Any, action: Any) -> str:
    """An action in words: its own description, its name, or its number."""
    u = env.unwrapped
    if isinstance(u, DescribesActions):
        return str(u.describe_action(action))
    names = u.action_names if isinstance(u, NamedActions) else None
    return str(names[action]) if names else str(action)


__all__ = ["EpisodeLimit", "MAX_EPISODE_STEPS", "DescribesActions", "Drawable", "DrawsAction", "GridBoard", "HasModel", "HasStepTables", "ImageTask", "LearnsAcrossEpisodes",
           "NamedActions", "ObservesStates", "ReadsInput", "ShowsOverlay", "ShowsTokens", "WritesText", "action_name"]
