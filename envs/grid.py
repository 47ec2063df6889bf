"""GridWorld: the textbook grid MDP, with its exact model as NumPy arrays.

One file owns the environment: the text maps and named layouts, the transition model
(`mdp`), `step`/`reset`, and the pygame drawing. The model is built once as compact
successor tables, so dynamic programming and sampling read the same numbers:
`step()` draws successor k of (s, a) with probability `prob[s, a, k]`.

Map characters: `S` start, `G` goal (terminal), `H` hole (terminal), `C` cliff (reward,
then back to start), `#` wall, `.` free. Actions 0..3 = up, right, down, left.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from arena import settings as typed
from arena.settings import setting
from envs.errors import EnvError
from envs.rendering import PygameRendering
from envs.vector import (
    NativeVectorEnv,
    counter_uniform,
    counter_uniforms,
    episode_key,
    next_key,
    next_keys,
    start_uniform,
    start_uniforms,
)

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
ACTION_NAMES = ("up", "right", "down", "left")
MOVES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)])  # (drow, dcol) per action
MAP_CHARS = "SGHC#."
DENSE_P_LIMIT = 4096  # states; P[s, a, s'] beyond this would take S*S*4*8 bytes (> 0.5 GB)
# Building a grid holds, per cell, its successor tables and per-(state, action) outcome
# lists: measured about 1.8 kB per cell on a 1024x1024 maze. The limit keeps that to 8 GB.
BYTES_PER_CELL = 1800
MEMORY_LIMIT_BYTES = 8 * 10**9
MAX_CELLS = MEMORY_LIMIT_BYTES // BYTES_PER_CELL
DEFAULT_REWARDS = {"step": -1.0, "goal": 0.0, "hole": -100.0, "cliff": -100.0}
OBS_MODES = ("index", "coords", "image")
IMAGE_PLANES = ("agent", "wall", "goal", "hole", "cliff")


class GridError(EnvError):
    """A grid the user asked for cannot be built (bad map, layout or kwarg)."""


@dataclass(frozen=True)
class GridSettings:
    """GridWorld's kwargs, checked (type, finiteness, range) before anything is built."""

    layout: str = setting("open-5x5", help="a named layout, maze-<rows>x<cols>, or a multi-line text map")
    slip: float | None = setting(None, help="probability of moving perpendicular instead (null: the layout's)",
                                 low=0.0, high=1.0)
    wind: list[int] | None = setting(None, help="upward push per column (null: the layout's)", low=0, high=1000)
    rewards: dict[str, float] | None = setting(None, help="overrides of the step/goal/hole/cliff rewards")
    obs: str = setting("index", help="what the agent sees", choices=("index", "coords", "image"))
    max_steps: int | None = setting(None, help="step limit per episode (null: the layout's)", low=1, high=10**9)
    maze_seed: int = setting(0, help="which maze maze-<rows>x<cols> generates", low=0, high=2**63 - 1)


def check_size(rows: int, cols: int, what: str) -> None:
    """Refuse a grid whose model would not fit in memory, saying how much it would need."""
    cells = rows * cols
    if cells > MAX_CELLS:
        side = int(MAX_CELLS**0.5)
        raise GridError(
            f"{what} has {cells:,} cells and would need about {cells * BYTES_PER_CELL / 1e9:,.0f} GB to build; "
            f"the limit is {MAX_CELLS:,} cells ({MEMORY_LIMIT_BYTES / 1e9:.0f} GB), e.g. maze-{side}x{side}"
        )


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Layout:
    """A named map with the rewards, slip and wind it is known by."""

    text: str
    rewards: dict[str, float] = field(default_factory=dict)
    slip: float = 0.0
    wind: tuple[int, ...] | None = None
    max_steps: int = 100
    about: str = ""


LAYOUTS: dict[str, Layout] = {
    "open-5x5": Layout(
        "S....\n.....\n.....\n.....\n....G",
        rewards={"step": -1.0, "goal": -1.0},
        about="an open room; -1 per move, so the return is minus the path length",
    ),
    "cliff": Layout(
        "............\n............\n............\nSCCCCCCCCCCG",
        rewards={"step": -1.0, "goal": -1.0, "cliff": -100.0},
        about="Sutton & Barto Example 6.6: -1 per move, -100 and back to start at the cliff",
    ),
    "windy": Layout(
        "..........\n..........\n..........\nS......G..\n..........\n..........\n..........",
        rewards={"step": -1.0, "goal": -1.0},
        wind=(0, 0, 0, 1, 1, 1, 2, 2, 1, 0),
        max_steps=200,
        about="Sutton & Barto Example 6.5: upward wind per column, -1 per move",
    ),
    "frozenlake-4x4": Layout(
        "SFFF\nFHFH\nFFFH\nHFFG".replace("F", "."),
        rewards={"step": 0.0, "goal": 1.0, "hole": 0.0},
        slip=2 / 3,
        about="Gymnasium's FrozenLake 4x4: slippery ice, +1 at the goal",
    ),
    "frozenlake-8x8": Layout(
        "\n".join(
            [
                "SFFFFFFF",
                "FFFFFFFF",
                "FFFHFFFF",
                "FFFFFHFF",
                "FFFHFFFF",
                "FHHFFFHF",
                "FHFFHFHF",
                "FFFHFFFG",
            ]
        ).replace("F", "."),
        rewards={"step": 0.0, "goal": 1.0, "hole": 0.0},
        slip=2 / 3,
        max_steps=200,
        about="Gymnasium's FrozenLake 8x8: slippery ice, +1 at the goal",
    ),
    "four-rooms": Layout(
        "\n".join(
            [
                "#############",
                "#S....#.....#",
                "#.....#.....#",
                "#...........#",
                "#.....#.....#",
                "#.....#.....#",
                "##.####.....#",
                "#.....###.###",
                "#.....#.....#",
                "#.....#.....#",
                "#...........#",
                "#.....#....G#",
                "#############",
            ]
        ),
        rewards={"step": 0.0, "goal": 1.0},
        max_steps=200,
        about="Sutton, Precup & Singh (1999): four rooms joined by doorways, +1 at the goal",
    ),
}

MAZE_NAME = re.compile(r"^maze-(\d+)x(\d+)$")


def layout_names() -> list[str]:
    """Named layouts, with the maze family shown by its pattern."""
    return [*LAYOUTS, "maze-<rows>x<cols>"]


def generate_maze(rows: int, cols: int, seed: int = 0) -> str:
    """A perfect maze (one path between any two cells) as a text map, S top-left, G far corner.

    Cells sit at even (row, col); the randomised depth-first search knocks out the wall
    between a cell and an unvisited neighbour. Same (rows, cols, seed), same maze.
    """
    if rows < 2 or cols < 2:
        raise GridError(f"maze-{rows}x{cols} is too small; use at least maze-2x2")
    check_size(rows, cols, f"maze-{rows}x{cols}")
    rng = np.random.default_rng(seed)
    grid = np.full((rows, cols), "#")
    grid[0, 0] = "."
    stack = [(0, 0)]
    while stack:
        r, c = stack[-1]
        options = [
            (r + 2 * dr, c + 2 * dc, r + dr, c + dc)
            for dr, dc in MOVES
            if 0 <= r + 2 * dr < rows and 0 <= c + 2 * dc < cols and grid[r + 2 * dr, c + 2 * dc] == "#"
        ]
        if not options:
            stack.pop()
            continue
        nr, nc, wr, wc = options[rng.integers(len(options))]
        grid[wr, wc] = grid[nr, nc] = "."
        stack.append((nr, nc))
    grid[0, 0] = "S"
    grid[(rows - 1) // 2 * 2, (cols - 1) // 2 * 2] = "G"
    return "\n".join("".join(row) for row in grid)


def resolve_layout(layout: str, maze_seed: int = 0) -> Layout:
    """A named layout, a generated maze, or a multi-line text map, as a Layout."""
    if layout in LAYOUTS:
        return LAYOUTS[layout]
    m = MAZE_NAME.match(layout)
    if m:
        rows, cols = int(m.group(1)), int(m.group(2))
        return Layout(generate_maze(rows, cols, maze_seed), max_steps=4 * rows * cols)
    if "\n" in layout.strip() or set(layout) <= set(MAP_CHARS + "\n "):
        return Layout(layout)
    raise GridError(
        f"unknown layout {layout!r}; use one of {', '.join(layout_names())} or a multi-line text map"
    )


def parse_map(text: str) -> np.ndarray:
    """A text map as a (rows, cols) array of characters, after checking it is a grid."""
    lines = [line.strip() for line in text.strip("\n").splitlines()]
    lines = [line for line in lines if line]
    check_size(len(lines), max((len(line) for line in lines), default=0), "the map")
    if not lines:
        raise GridError("the map is empty; give at least one row of S G H C # . characters")
    widths = {len(line) for line in lines}
    if len(widths) > 1:
        bad = next(i for i, line in enumerate(lines) if len(line) != len(lines[0]))
        raise GridError(
            f"the map is ragged: row {bad} has {len(lines[bad])} characters, row 0 has "
            f"{len(lines[0])}; make every row the same width"
        )
    for r, line in enumerate(lines):
        for c, ch in enumerate(line):
            if ch not in MAP_CHARS:
                raise GridError(
                    f"unknown map character {ch!r} at row {r}, column {c}; use only {' '.join(MAP_CHARS)}"
                )
    return np.array([list(line) for line in lines])


# --------------------------------------------------------------------------- model


@dataclass
class GridMDP:
    """The exact model of a grid, as arrays indexed by state s and action a.

    Successor k of (s, a) is `next_state[s, a, k]`, reached with probability
    `prob[s, a, k]` and paying `reward[s, a, k]`; `R[s, a]` is the expected reward.
    Terminal states have one successor, themselves, with reward 0.
    """

    next_state: np.ndarray  # (S, A, K) int64
    prob: np.ndarray  # (S, A, K) float64, rows sum to 1
    reward: np.ndarray  # (S, A, K) float64
    terminal: np.ndarray  # (S,) bool
    start: np.ndarray  # (S,) float64, sums to 1
    cell: np.ndarray  # (S, 2) int64: (row, col) of state s
    shape: tuple[int, int]

    @property
    def n_states(self) -> int:
        return int(self.next_state.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.next_state.shape[1])

    @property
    def R(self) -> np.ndarray:
        """(S, A) expected one-step reward."""
        return (self.prob * self.reward).sum(axis=-1)

    @property
    def P(self) -> np.ndarray:
        """(S, A, S) dense transition probabilities, for grids of up to DENSE_P_LIMIT states."""
        S, A, K = self.next_state.shape
        if S > DENSE_P_LIMIT:
            raise GridError(
                f"a dense P for {S} states would need {S * S * A * 8 / 1e9:.1f} GB; "
                "use the compact tables mdp.next_state and mdp.prob instead"
            )
        P = np.zeros((S, A, S))
        s_idx, a_idx = np.meshgrid(np.arange(S), np.arange(A), indexing="ij")
        for k in range(K):
            np.add.at(P, (s_idx, a_idx, self.next_state[:, :, k]), self.prob[:, :, k])
        return P


def build_mdp(
    grid: np.ndarray, rewards: dict[str, float], slip: float, wind: tuple[int, ...] | None
) -> GridMDP:
    """Compile a character grid into successor tables (vectorised over all states)."""
    rows, cols = grid.shape
    open_cells = (grid != "#") & (grid != "C")
    state_of = np.full((rows, cols), -1, dtype=np.int64)
    cell = np.argwhere(open_cells)
    S = len(cell)
    if S == 0:
        raise GridError("the map has no free cell; add at least one '.' or 'S'")
    state_of[cell[:, 0], cell[:, 1]] = np.arange(S)
    chars = grid[cell[:, 0], cell[:, 1]]
    terminal = (chars == "G") | (chars == "H")

    starts = chars == "S"
    if not starts.any():
        starts = ~terminal
    if not starts.any():
        raise GridError("every free cell is terminal; add a start 'S' or a free '.' cell")
    if (grid == "C").any() and starts.sum() != 1:
        raise GridError("a map with cliffs 'C' needs exactly one start 'S' to send the agent back to")
    start = starts / starts.sum()

    w = np.zeros(cols, dtype=np.int64) if wind is None else np.asarray(wind, dtype=np.int64)
    blocked = np.pad(grid == "#", 1, constant_values=True)  # border counts as wall

    def move(r: np.ndarray, c: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nr, nc = r + MOVES[direction, 0], c + MOVES[direction, 1]
        stay = blocked[nr + 1, nc + 1]
        nr, nc = np.where(stay, r, nr), np.where(stay, c, nc)
        # wind: pushed up one cell at a time by the strength of the column moved from
        for push in range(1, int(w.max(initial=0)) + 1):
            up = (w[c] >= push) & ~blocked[nr, nc + 1]  # row nr-1 in padded coords
            nr = np.where(up, nr - 1, nr)
        return nr, nc

    if not 0.0 <= slip <= 1.0:
        raise GridError(f"slip={slip} is out of range; use a probability in [0, 1]")
    branches = [(0, 1.0 - slip)] if slip == 0 else [(0, 1.0 - slip), (1, slip / 2), (3, slip / 2)]
    K, A = len(branches), 4
    next_state = np.zeros((S, A, K), dtype=np.int64)
    prob = np.zeros((S, A, K))
    reward = np.zeros((S, A, K))
    r, c = cell[:, 0], cell[:, 1]
    start_state = int(np.argmax(start))
    for a in range(A):
        for k, (turn, p) in enumerate(branches):
            nr, nc = move(r, c, np.full(S, (a + turn) % 4))
            ch = grid[nr, nc]
            ns = np.where(ch == "C", start_state, state_of[nr, nc])
            rew = np.select(
                [ch == "G", ch == "H", ch == "C"],
                [rewards["goal"], rewards["hole"], rewards["cliff"]],
                rewards["step"],
            )
            next_state[:, a, k], prob[:, a, k], reward[:, a, k] = ns, p, rew
    next_state[terminal] = np.arange(S)[terminal, None, None]
    prob[terminal] = 0.0
    prob[terminal, :, 0] = 1.0
    reward[terminal] = 0.0

    mdp = GridMDP(next_state, prob, reward, terminal, start, cell, (rows, cols))
    _check_goal_reachable(mdp, grid)
    return mdp


def _check_goal_reachable(mdp: GridMDP, grid: np.ndarray) -> None:
    """Fail unless some terminal state (a goal, else a hole) can be reached from a start state.

    A map with none has no episode that ends: every policy scores the same, and a
    normalised score of it would be meaningless.
    """
    goals = np.flatnonzero(grid[mdp.cell[:, 0], mdp.cell[:, 1]] == "G")
    if len(goals) == 0:
        goals = np.flatnonzero(mdp.terminal)
    if len(goals) == 0:
        raise GridError("the map has no goal 'G' or hole 'H', so no episode could ever end; add a G")
    seen = np.zeros(mdp.n_states, dtype=bool)
    queue = deque(np.flatnonzero(mdp.start > 0).tolist())
    seen[list(queue)] = True
    while queue:
        s = queue.popleft()
        if mdp.terminal[s]:
            continue
        for s2 in np.unique(mdp.next_state[s][mdp.prob[s] > 0]):
            if not seen[s2]:
                seen[s2] = True
                queue.append(int(s2))
    if not seen[goals].any():
        r, c = mdp.cell[goals[0]]
        what = "goal" if grid[r, c] == "G" else "terminal cell"
        raise GridError(
            f"the {what} at row {r}, column {c} cannot be reached from the start; open a path to it"
        )


# --------------------------------------------------------------------------- environment


class GridWorldEnv(PygameRendering, gym.Env):
    """A grid MDP as a Gymnasium env: `gymnasium.make("arena/GridWorld-v0", layout="cliff")`.

    kwargs: layout (named or a text map), slip (probability of moving to one of the two
    perpendicular directions, split evenly), wind (per-column upward push), rewards
    (overrides for step/goal/hole/cliff), obs ("index", "coords", "image"), max_steps
    (truncation), maze_seed (for maze-<rows>x<cols>). `env.unwrapped.mdp` is the model.
    """

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 8}
    action_names = ACTION_NAMES

    def __init__(
        self,
        layout: str = "open-5x5",
        slip: float | None = None,
        wind: list[int] | tuple[int, ...] | None = None,
        rewards: dict[str, float] | None = None,
        obs: str = "index",
        max_steps: int | None = None,
        maze_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        checked = typed.build(GridSettings, dict(layout=layout, slip=slip, wind=wind, rewards=rewards, obs=obs,
                                                 max_steps=max_steps, maze_seed=maze_seed), GridError)
        layout, slip, wind, rewards = checked.layout, checked.slip, checked.wind, checked.rewards
        obs, max_steps, maze_seed = checked.obs, checked.max_steps, checked.maze_seed
        spec = resolve_layout(layout, maze_seed)
        self.layout = layout
        self.grid = parse_map(spec.text)
        rows, cols = self.grid.shape

        unknown = set(rewards or {}) - set(DEFAULT_REWARDS)
        if unknown:
            raise GridError(
                f"unknown reward key(s) {sorted(unknown)}; use {sorted(DEFAULT_REWARDS)}"
            )
        self.rewards = {**DEFAULT_REWARDS, **spec.rewards, **(rewards or {})}
        self.slip = float(spec.slip if slip is None else slip)
        wind = spec.wind if wind is None else tuple(int(x) for x in wind)
        if wind is not None and (len(wind) != cols or min(wind) < 0):
            raise GridError(
                f"wind needs {cols} non-negative integers (one per column); got {list(wind)}"
            )
        self.wind = wind
        if obs not in OBS_MODES:
            raise GridError(f"unknown obs mode {obs!r}; use one of {', '.join(OBS_MODES)}")
        self.obs_mode = obs
        self.max_steps = int(spec.max_steps if max_steps is None else max_steps)
        if self.max_steps < 1:
            raise GridError(f"max_steps={self.max_steps} must be at least 1")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise GridError(
                f"unknown render_mode {render_mode!r}; use one of {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode

        self.mdp = build_mdp(self.grid, self.rewards, self.slip, self.wind)
        S = self.mdp.n_states
        self.action_space = spaces.Discrete(4)
        if obs == "index":
            self.observation_space = spaces.Discrete(S)
        elif obs == "coords":
            self.observation_space = spaces.MultiDiscrete([rows, cols])
        else:
            self.observation_space = spaces.Box(0, 255, (len(IMAGE_PLANES), rows, cols), np.uint8)
            self._static_planes = np.zeros((len(IMAGE_PLANES), rows, cols), np.uint8)
            for i, ch in enumerate("#GHC", start=1):
                self._static_planes[i] = (self.grid == ch) * 255

        # Per-(s, a) successor lists as plain Python tuples: a step is one random draw and
        # a short scan, not a round of NumPy calls (see `arena bench`).
        self._outcomes = [
            [
                tuple(
                    (float(cp), int(ns), float(rw), bool(self.mdp.terminal[ns]))
                    for cp, ns, rw in zip(np.cumsum(self.mdp.prob[s, a]), self.mdp.next_state[s, a], self.mdp.reward[s, a])
                )
                for a in range(4)
            ]
            for s in range(S)
        ]
        self._goal = (self.grid[self.mdp.cell[:, 0], self.mdp.cell[:, 1]] == "G").tolist()  # success: reaching G
        self._start_states = np.flatnonzero(self.mdp.start > 0)
        self.s = int(self._start_states[0])
        self.t = 0
        self.key: int | None = None
        self.last_action: int | None = None
        self.overlay: dict[str, Any] = {}
        self._font = None

    # ---------------------------------------------------------------- dynamics

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            # one seed drives every stream: the env's and the action space's
            self.action_space.seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        # this episode's stream of draws (see envs/vector.py): from np_random after a seeded
        # (or first) reset, else chained from the last episode's key
        self.key = episode_key(self.np_random) if seed is not None or self.key is None else next_key(self.key)
        starts = self._start_states
        if options and "state" in options:  # exploring starts: begin anywhere that is not terminal
            s = options["state"]
            if not (isinstance(s, (int, np.integer)) and 0 <= s < self.mdp.n_states and not self.mdp.terminal[s]):
                raise GridError(f"reset option state={s!r} must be a non-terminal state index in 0..{self.mdp.n_states - 1}")
            self.s = int(s)
        else:
            self.s = int(starts[int(start_uniform(self.key) * len(starts))])
        self.t = 0
        self.last_action = None
        if self.render_mode == "human":
            self.render()
        return self._observe(), {"state": self.s}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not 0 <= a < 4:
            raise GridError(f"action {action!r} is out of range; use 0..3 (up, right, down, left)")
        outcomes = self._outcomes[self.s][a]
        if len(outcomes) == 1:
            _, ns, r, term = outcomes[0]
        else:
            u = counter_uniform(self.key, self.t)  # the t-th draw of this episode (see envs/vector.py)
            for cp, ns, r, term in outcomes:
                if u < cp:
                    break
        self.s, self.t, self.last_action = ns, self.t + 1, a
        truncated = self.t >= self.max_steps and not term
        if self.render_mode == "human":
            self.render()
        if term or truncated:  # Stable-Baselines3's key: did the episode reach a goal?
            return self._observe(), r, term, truncated, {"state": ns, "is_success": term and self._goal[ns]}
        return self._observe(), r, term, truncated, {"state": ns}

    def snapshot(self) -> tuple[int, int, int | None, int]:
        """The env's position in an episode, for the viewer to step back and forth."""
        return (self.s, self.t, self.last_action, self.key)

    def restore(self, snapshot: tuple[int, int, int | None, int]) -> None:
        self.s, self.t, self.last_action, self.key = snapshot

    def _observe(self) -> Any:
        return self.observation_of(self.s)

    def observation_of(self, s: int) -> Any:
        """The observation an agent sees in state s, in this env's obs mode."""
        if self.obs_mode == "index":
            return s
        r, c = self.mdp.cell[s]
        if self.obs_mode == "coords":
            return np.array([r, c], dtype=np.int64)
        planes = self._static_planes.copy()
        planes[0, r, c] = 255
        return planes

    # ---------------------------------------------------------------- drawing

    def set_overlay(
        self, V: np.ndarray | None = None, policy: np.ndarray | None = None, **extra: Any
    ) -> None:
        """Values (S,) drawn as a heatmap and a policy ((S,) or (S, A)) drawn as arrows."""
        self.overlay = {"V": V, "policy": policy, **extra}

    def cell_size(self) -> int:
        rows, cols = self.grid.shape
        return int(np.clip(640 // max(rows, cols), 2, 64))

    def draw(self, surface: Any, show_values: bool = True, show_policy: bool = True) -> None:
        """Draw the grid, overlays and agent onto a pygame surface of size `frame_size()`."""
        import pygame

        px = self.cell_size()
        colours = {"#": (60, 60, 70), "G": (60, 170, 90), "H": (30, 40, 110), "C": (170, 60, 50)}
        surface.fill((235, 235, 228))
        for ch, colour in colours.items():
            for r, c in np.argwhere(self.grid == ch):
                pygame.draw.rect(surface, colour, (c * px, r * px, px, px))
        V, policy = self.overlay.get("V"), self.overlay.get("policy")
        if show_values and V is not None:
            v = np.asarray(V, dtype=float)
            free = ~self.mdp.terminal & np.isfinite(v)
            lo, hi = (v[free].min(), v[free].max()) if free.any() else (0.0, 1.0)
            span = hi - lo if hi > lo else 1.0
            for s in np.flatnonzero(free):
                x = (v[s] - lo) / span  # 0 = worst (red) .. 1 = best (green)
                r, c = self.mdp.cell[s]
                colour = (int(230 - 120 * x), int(120 + 100 * x), int(120 - 20 * x))
                pygame.draw.rect(surface, colour, (c * px, r * px, px, px))
        for ch, colour in (("G", (60, 170, 90)), ("H", (30, 40, 110))):  # terminals on top of the heatmap
            for r, c in np.argwhere(self.grid == ch):
                pygame.draw.rect(surface, colour, (c * px, r * px, px, px))
                if px >= 8:
                    pygame.draw.circle(surface, (245, 245, 245), (c * px + px // 2, r * px + px // 2), px // 3, max(1, px // 14))
        for r, c in np.argwhere(self.grid == "S"):
            pygame.draw.rect(surface, (90, 140, 220), (c * px, r * px, px, px), max(1, px // 12))
        if px >= 6:
            for x in range(0, self.grid.shape[1] * px + 1, px):
                pygame.draw.line(surface, (200, 200, 195), (x, 0), (x, self.grid.shape[0] * px))
            for y in range(0, self.grid.shape[0] * px + 1, px):
                pygame.draw.line(surface, (200, 200, 195), (0, y), (self.grid.shape[1] * px, y))
        if show_policy and policy is not None and px >= 10:
            pi = np.asarray(policy)
            greedy = pi if pi.ndim == 1 else pi.argmax(axis=1)
            for s in np.flatnonzero(~self.mdp.terminal):
                r, c = self.mdp.cell[s]
                cx, cy = c * px + px / 2, r * px + px / 2
                dy, dx = MOVES[int(greedy[s])] * (px * 0.3)
                tip = (cx + dx, cy + dy)
                side = (-dx * 0.45 - dy * 0.45, -dy * 0.45 + dx * 0.45)
                side2 = (-dx * 0.45 + dy * 0.45, -dy * 0.45 - dx * 0.45)
                pygame.draw.line(surface, (40, 40, 40), (cx - dx, cy - dy), tip, max(1, px // 16))
                pygame.draw.polygon(
                    surface, (40, 40, 40),
                    [tip, (tip[0] + side[0], tip[1] + side[1]), (tip[0] + side2[0], tip[1] + side2[1])],
                )
        r, c = self.mdp.cell[self.s]
        pygame.draw.circle(surface, (240, 170, 30), (c * px + px // 2, r * px + px // 2), max(1, px * 3 // 8))

    def draw_action(self, surface: Any, action: int, colour: tuple[int, int, int]) -> None:
        """A thick arrow from the agent towards `action`: the move about to be made."""
        import pygame

        px = self.cell_size()
        r, c = self.mdp.cell[self.s]
        cx, cy = c * px + px / 2, r * px + px / 2
        dy, dx = MOVES[int(action)] * (px * 0.55)
        pygame.draw.line(surface, colour, (cx, cy), (cx + dx, cy + dy), max(2, px // 8))
        pygame.draw.circle(surface, colour, (int(cx + dx), int(cy + dy)), max(2, px // 9))

    def frame_size(self) -> tuple[int, int]:
        rows, cols = self.grid.shape
        return cols * self.cell_size(), rows * self.cell_size()

    def window_title(self) -> str:
        return f"Arena GridWorld: {self.layout.splitlines()[0]}"

    def render_text(self) -> str:
        chars = self.grid.copy()
        r, c = self.mdp.cell[self.s]
        chars[r, c] = "A"
        text = "\n".join("".join(row) for row in chars)
        if self.last_action is not None:
            text += f"\n({ACTION_NAMES[self.last_action]})"
        return text + "\n"


# --------------------------------------------------------------------------- batched


class GridWorldVectorEnv(NativeVectorEnv):
    """N copies of a GridWorld stepped together: `gymnasium.make_vec("arena/GridWorld-v0",
    num_envs=N, vectorization_mode="vector_entry_point", layout=...)`.

    Copy i reset with seed s + i behaves bit for bit like GridWorldEnv reset with that seed.
    """

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(num_envs)
        self.single = GridWorldEnv(**kwargs)
        self.single_observation_space = self.single.observation_space
        self.single_action_space = self.single.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        mdp = self.single.mdp
        self.K = mdp.next_state.shape[-1]  # 1 without slip, else 3
        self.ns_flat, self.r_flat = mdp.next_state.reshape(-1), mdp.reward.reshape(-1)
        cumprob = np.cumsum(mdp.prob, axis=-1).reshape(-1, self.K)
        self.cum0, self.cum1 = (cumprob[:, 0], cumprob[:, 1]) if self.K == 3 else (None, None)
        self.terminal = mdp.terminal
        self.goal = np.array(self.single._goal, dtype=bool)
        self.max_steps = self.single.max_steps
        self.s = np.zeros(self.num_envs, dtype=np.int64)
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        self.keys = np.zeros(self.num_envs, dtype=np.uint64)
        self._reset_copies(np.arange(self.num_envs), seeded=True)
        self._copy_index = np.arange(self.num_envs)

    def _reset_copies(self, idx: np.ndarray, seeded: bool) -> None:
        if seeded:  # first keys from each copy's np_random, as the single env draws them
            self.keys[idx] = [episode_key(self.rngs[i]) for i in idx.tolist()]
        else:
            self.keys[idx] = next_keys(self.keys[idx])
        starts = self.single._start_states
        self.s[idx] = starts[(start_uniforms(self.keys[idx]) * len(starts)).astype(np.int64)]
        self.t[idx] = 0

    def _step_all(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        sa = self.s * 4 + actions.astype(np.int64)  # row of (s, a) in the flattened tables
        if self.K == 1:
            row = sa
        else:  # successor k: how many cumulative probabilities the uniform draw has passed
            u = counter_uniforms(self.keys, self.t)
            row = sa * self.K + (u >= self.cum0[sa]) + (u >= self.cum1[sa])
        ns = self.ns_flat[row]
        rewards = self.r_flat[row]
        self.s = ns
        self.t += 1
        terminated = self.terminal[ns]
        truncated = (self.t >= self.max_steps) & ~terminated
        done = terminated | truncated  # is_success, as the single env reports it: at an episode's end
        return rewards, terminated, truncated, {"state": ns.copy(), "_state": np.ones(self.num_envs, dtype=bool),
                                                "is_success": terminated & self.goal[ns], "_is_success": done}

    def _reset_info(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {"state": self.s[idx]}

    def _observe(self) -> Any:
        mode = self.single.obs_mode
        if mode == "index":
            return self.s.copy()
        cells = self.single.mdp.cell[self.s]
        if mode == "coords":
            return cells.astype(np.int64)
        planes = np.broadcast_to(self.single._static_planes, (self.num_envs, *self.single._static_planes.shape)).copy()
        planes[self._copy_index, 0, cells[:, 0], cells[:, 1]] = 255
        return planes

