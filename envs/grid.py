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
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from arena import settings as typed
from arena.settings import setting
from envs.abilities import MAX_EPISODE_STEPS
from envs.errors import EnvError
from envs.rendering import PygameRendering
from envs.vector import (
    NEXT_KEY_SALT,
    START_SALT,
    NativeVectorEnv,
    SeededDiscrete,
    episode_key,
    first_keys,
    seeding_kernels,
    next_key,
    next_keys,
    start_uniform,
    start_uniforms,
    stream_kernels,
    uniform_of,
    _mix_array,
)

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
ACTION_NAMES = ("up", "right", "down", "left", "up-right", "down-right", "down-left", "up-left", "stay")
MOVES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1), (0, 0)])  # (drow, dcol)
MOVE_SETS = {"four": 4, "king": 8, "king+stay": 9}  # the first n of MOVES (S&B Exercise 6.9: king's moves)
MAP_CHARS = "SGHC#."
DENSE_P_LIMIT = 4096  # states; P[s, a, s'] beyond this would take S*S*4*8 bytes (> 0.5 GB)
# Building a grid holds, per cell, its successor tables and the reachability graph: a peak
# of about 450 bytes per cell on a 1024x1024 maze (arena bench --only grid-build), rounded
# up to leave room for solving it. The limit keeps that to 8 GB.
BYTES_PER_CELL = 700
MEMORY_LIMIT_BYTES = 8 * 10**9
MAX_CELLS = MEMORY_LIMIT_BYTES // BYTES_PER_CELL
DEFAULT_REWARDS = {"step": -1.0, "goal": 0.0, "hole": -100.0, "cliff": -100.0}
OBS_MODES = ("index", "coords", "image")
IMAGE_PLANES = ("agent", "wall", "goal", "hole", "cliff")


class GridError(EnvError):
    """A grid the user asked for cannot be built (bad map, layout or kwarg)."""


MAX_REWARD = 1e6  # per step: over MAX_EPISODE_STEPS steps a return stays finite (at most 1e13)


@dataclass(frozen=True)
class GridSettings:
    """GridWorld's kwargs, checked (type, finiteness, range) before anything is built."""

    layout: str = setting("open-5x5", help="a named layout, maze-<rows>x<cols>, or a multi-line text map")
    slip: float | None = setting(None, help="probability of moving perpendicular instead (null: the layout's)",
                                 low=0.0, high=1.0)
    wind: list[int] | None = setting(None, help="upward push per column (null: the layout's)", low=0, high=1000)
    rewards: dict[str, float] | None = setting(None, help="overrides of the step/goal/hole/cliff rewards",
                                               low=-MAX_REWARD, high=MAX_REWARD)
    obs: str = setting("index", help="what the agent sees", choices=("index", "coords", "image"))
    max_steps: int | None = setting(None, help="step limit per episode (null: the layout's)", low=1,
                                    high=MAX_EPISODE_STEPS)
    maze_seed: int = setting(0, help="which maze maze-<rows>x<cols> generates", low=0, high=2**63 - 1)
    moves: str = setting("four", help="the moves: four (up, right, down, left), king (and the four diagonals, "
                         "Exercise 6.9) or king+stay (and standing still)", choices=tuple(MOVE_SETS))
    wind_noise: bool = setting(False, help="stochastic wind (Exercise 6.10): where it blows, a third of the time "
                               "one cell stronger, a third one weaker")


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
    "gridworld-4x4": Layout(
        "G...\n....\n....\n...G",
        rewards={"step": -1.0, "goal": -1.0},
        about="Sutton & Barto Example 4.1: two terminal corners, -1 per move, start anywhere else",
    ),
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
    wall = compiled("carve_maze")(rows, cols, np.random.default_rng(seed))
    chars = np.where(wall, ord("#"), ord(".")).astype(np.uint8)
    chars[0, 0] = ord("S")
    chars[(rows - 1) // 2 * 2, (cols - 1) // 2 * 2] = ord("G")
    lines = np.concatenate([chars, np.full((rows, 1), ord("\n"), np.uint8)], axis=1)
    return lines.tobytes().decode("ascii")[:-1]


_COMPILED: dict[str, Any] = {}


def compiled(name: str) -> Any:
    """This module's plain-Python kernel `name`, compiled by Numba on first use (Numba is slow
    to import, so an env that needs no kernel never imports it). The plain function stays
    the readable reference; compiled, it takes the same random draws and gives the same result."""
    if not _COMPILED:
        import numba

        global _mix, _uniform, _grid_step
        _mix, _uniform = stream_kernels()  # the counter-based stream, for the kernels below
        _grid_step = numba.njit(cache=True, inline="always")(grid_step)  # before the kernels that call it (inlined there)
        _COMPILED.update({fn.__name__: numba.njit(cache=True)(fn) for fn in (carve_maze, batched_step)})
        _COMPILED["grid_step"] = _grid_step
    return _COMPILED[name]


def carve_maze(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """The depth-first search of `generate_maze` on a (rows, cols) wall mask: from the top of
    the stack, pick an unvisited cell two steps away (up, right, down, left order, one draw
    from rng among those), open it and the wall between, push it; with none, pop. Plain
    Python that Numba compiles: the same draws, so the same maze, in a fraction of the time."""
    wall = np.ones((rows, cols), np.uint8)
    wall[0, 0] = 0
    stack = np.zeros(((rows + 1) // 2 * ((cols + 1) // 2), 2), np.int64)
    options = np.zeros((4, 4), np.int64)
    depth = 1
    while depth > 0:
        r, c = stack[depth - 1, 0], stack[depth - 1, 1]
        n = 0
        for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):  # MOVES
            nr, nc = r + 2 * dr, c + 2 * dc
            if 0 <= nr < rows and 0 <= nc < cols and wall[nr, nc] == 1:
                options[n, 0], options[n, 1], options[n, 2], options[n, 3] = nr, nc, r + dr, c + dc
                n += 1
        if n == 0:
            depth -= 1
            continue
        k = rng.integers(0, n)
        wall[options[k, 2], options[k, 3]] = 0
        wall[options[k, 0], options[k, 1]] = 0
        stack[depth, 0], stack[depth, 1] = options[k, 0], options[k, 1]
        depth += 1
    return wall


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
    grid: np.ndarray
    try:  # a large ASCII map (a generated maze) is read as bytes, not one Python string per cell
        grid = np.frombuffer("".join(lines).encode("ascii"), dtype="S1").reshape(len(lines), -1).astype("U1")
    except UnicodeEncodeError:
        grid = np.array([list(line) for line in lines])
    wrong = np.argwhere(~np.isin(grid, list(MAP_CHARS)))
    if len(wrong):
        r, c = wrong[0]
        raise GridError(
            f"unknown map character {str(grid[r, c])!r} at row {r}, column {c}; use only {' '.join(MAP_CHARS)}"
        )
    return grid


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
    allowed: np.ndarray | None = None  # (S, A) bool: the actions each state offers (None: every action)

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


def check_model(mdp: Any, error: type[Exception] = GridError) -> None:
    """A model as DP and the envs read it, or one `error` line naming the array that is missing or wrong:
    `next_state` (S, A, K) successor indices, `prob` (S, A, K) probabilities summing to 1
    over k, `R` (S, A) expected rewards, `terminal` (S,) booleans. Models Arena built
    (GridMDP) are checked by construction."""
    if isinstance(mdp, GridMDP):  # built whole (its R is computed on request: not here)
        return
    wanted = {"next_state": "(S, A, K) successor state indices", "prob": "(S, A, K) their probabilities",
              "R": "(S, A) expected rewards", "terminal": "(S,) booleans"}
    arrays = {}
    for name, what in wanted.items():
        try:
            arrays[name] = getattr(mdp, name)
        except Exception:  # a missing attribute, or a property (R) that fails
            raise error(f"the model has no {name} array ({what}); DP reads next_state, prob, R and terminal") from None
    ns, prob, R, terminal = (np.asarray(arrays[n]) for n in wanted)
    if ns.ndim != 3 or not np.issubdtype(ns.dtype, np.integer):
        raise error(f"next_state must be an (S, A, K) integer array, got shape {ns.shape} of {ns.dtype}")
    S, A, K = ns.shape
    if prob.shape != ns.shape:
        raise error(f"prob has shape {prob.shape}; it must match next_state's {ns.shape}")
    if R.shape != (S, A):
        raise error(f"R has shape {R.shape}; it must be (S, A) = ({S}, {A})")
    if terminal.shape != (S,):
        raise error(f"terminal has shape {terminal.shape}; it must be (S,) = ({S},)")
    if S == 0 or A == 0 or K == 0:
        raise error(f"the model is empty: next_state has shape {ns.shape}")
    if ns.min() < 0 or ns.max() >= S:
        s, a, _ = np.argwhere((ns < 0) | (ns >= S))[0]
        raise error(f"next_state[{s}, {a}] names a state outside 0..{S - 1}")
    if not np.isfinite(prob).all() or (prob < 0).any():
        s, a, _ = np.argwhere(~np.isfinite(prob) | (prob < 0))[0]
        raise error(f"prob[{s}, {a}] holds {prob[s, a].tolist()}: probabilities must be finite and >= 0")
    sums = prob.sum(axis=-1)
    if not np.allclose(sums, 1.0, rtol=0.0, atol=1e-8):
        s, a = np.unravel_index(int(np.argmax(np.abs(sums - 1.0))), sums.shape)
        raise error(f"prob[{s}, {a}] sums to {sums[s, a]:.6g}; the successors of each (s, a) must sum to 1")
    if not np.isfinite(R).all():
        s, a = np.argwhere(~np.isfinite(R))[0]
        raise error(f"R[{s}, {a}] is {R[s, a]}; rewards must be finite")


def build_mdp(
    grid: np.ndarray, rewards: dict[str, float], slip: float, wind: tuple[int, ...] | None, moves: int = 4,
    wind_noise: bool = False,
) -> GridMDP:
    """Compile a character grid into successor tables (vectorised over all states): `moves`
    actions (the first of MOVES); with slip, the move turns 90 degrees either way with
    probability slip / 2 each; with wind_noise, a column's wind blows one cell stronger or
    weaker a third of the time each. Successor k of (s, a) is one (slip, wind) outcome."""
    rows, cols = grid.shape
    code = np.ascontiguousarray(grid, dtype="U1").view(np.uint32)  # one code point per cell: fast to compare
    WALL, GOAL, HOLE, CLIFF, START = (ord(ch) for ch in "#GHC" "S")
    open_cells = (code != WALL) & (code != CLIFF)
    state_of = np.full((rows, cols), -1, dtype=np.int64)
    cell = np.argwhere(open_cells)
    S = len(cell)
    if S == 0:
        raise GridError("the map has no free cell; add at least one '.' or 'S'")
    state_of[cell[:, 0], cell[:, 1]] = np.arange(S)
    chars = code[cell[:, 0], cell[:, 1]]
    terminal = (chars == GOAL) | (chars == HOLE)

    starts = chars == START
    if not starts.any():
        starts = ~terminal
    if not starts.any():
        raise GridError("every free cell is terminal; add a start 'S' or a free '.' cell")
    if (code == CLIFF).any() and starts.sum() != 1:
        raise GridError("a map with cliffs 'C' needs exactly one start 'S' to send the agent back to")
    start = starts / starts.sum()

    w = np.zeros(cols, dtype=np.int64) if wind is None else np.asarray(wind, dtype=np.int64)
    blocked = np.pad(code == WALL, 1, constant_values=True)  # border counts as wall

    def move(r: np.ndarray, c: np.ndarray, dr: int, dc: int, gust: int) -> tuple[np.ndarray, np.ndarray]:
        nr, nc = r + dr, c + dc
        stay = blocked[nr + 1, nc + 1]
        nr, nc = np.where(stay, r, nr), np.where(stay, c, nc)
        # wind: pushed up one cell at a time by the strength of the column moved from (+ gust where it blows)
        strength = np.where(w[c] > 0, w[c] + gust, 0)
        for push in range(1, int(strength.max(initial=0)) + 1):
            up = (strength >= push) & ~blocked[nr, nc + 1]  # row nr-1 in padded coords
            nr = np.where(up, nr - 1, nr)
        return nr, nc

    if not 0.0 <= slip <= 1.0:
        raise GridError(f"slip={slip} is out of range; use a probability in [0, 1]")
    if wind_noise and not w.any():
        raise GridError("wind_noise=true needs a wind to vary: use layout=windy or give wind=[...] per column")
    # slip: turn (dr, dc) by 0, +90 or -90 degrees; wind_noise: gust -1, 0, +1
    turns = [(0, 1.0 - slip)] if slip == 0 else [(0, 1.0 - slip), (1, slip / 2), (3, slip / 2)]
    gusts = [(0, 1.0)] if not wind_noise else [(-1, 1 / 3), (0, 1 / 3), (1, 1 / 3)]
    branches = [(turn, gust, p * q) for turn, p in turns for gust, q in gusts]
    K, A = len(branches), moves
    next_state = np.zeros((S, A, K), dtype=np.int64)
    prob = np.zeros((S, A, K))
    reward = np.zeros((S, A, K))
    r, c = cell[:, 0], cell[:, 1]
    start_state = int(np.argmax(start))
    for a in range(A):
        for k, (turn, gust, p) in enumerate(branches):
            dr, dc = MOVES[a]
            for _ in range(turn):  # a quarter turn clockwise: up -> right -> down -> left
                dr, dc = dc, -dr
            nr, nc = move(r, c, int(dr), int(dc), gust)
            ch = code[nr, nc]
            ns = np.where(ch == CLIFF, start_state, state_of[nr, nc])
            rew = np.select(
                [ch == GOAL, ch == HOLE, ch == CLIFF],
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


def reachable_from_start(mdp: GridMDP) -> np.ndarray:
    """(S,) bool: the states some start state reaches by moves of positive probability."""
    # breadth-first search from the start states over the edges s -> s' with p > 0 (a terminal
    # state's only successor is itself, so the search stops there)
    from scipy import sparse
    from scipy.sparse.csgraph import breadth_first_order

    S, A, K = mdp.next_state.shape
    starts = np.flatnonzero(mdp.start > 0)
    root = S  # one extra node leading to every start state
    # row s of the graph: its A*K successors, a move of probability 0 read as staying put;
    # built as CSR in place, with 32-bit indices (a million-state maze has 12 million edges)
    n = S * A * K
    indices = np.empty(n + len(starts), dtype=np.int32)
    successors = indices[:n].reshape(S, A, K)
    successors[:] = mdp.next_state
    np.copyto(successors, np.arange(S, dtype=np.int32)[:, None, None], where=mdp.prob <= 0)
    indices[n:] = starts
    indptr = np.append(np.arange(0, n + 1, A * K, dtype=np.int32), np.int32(n + len(starts)))
    graph = sparse.csr_matrix((np.ones(len(indices), dtype=np.int8), indices, indptr), shape=(S + 1, S + 1))
    seen = np.zeros(S + 1, dtype=bool)
    seen[breadth_first_order(graph, root, directed=True, return_predecessors=False)] = True
    return seen[:S]


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
    seen = reachable_from_start(mdp)
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
    action_names: tuple[str, ...] = ACTION_NAMES[:4]

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        """kwargs: the fields of `GridSettings` (declared there once, checked here)."""
        self.settings = checked = typed.build(GridSettings, kwargs, GridError)
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
        if wind is not None and len(wind) != cols:  # (the settings check keeps each push in range)
            raise GridError(
                f"wind needs {cols} non-negative integers (one per column); got {list(wind)}"
            )
        self.wind = wind
        self.max_steps = int(spec.max_steps if max_steps is None else max_steps)
        moves = MOVE_SETS[checked.moves]
        self._begin(build_mdp(self.grid, self.rewards, self.slip, self.wind, moves, checked.wind_noise), obs,
                    render_mode, ACTION_NAMES[:moves])

    def _begin(self, mdp: GridMDP, obs: str, render_mode: str | None, action_names: tuple[str, ...]) -> None:
        """Everything after the model is built (`self.grid` and `self.max_steps` set): spaces,
        where an episode starts, and the state of the one in progress. Shared with envs/mdp.py."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise GridError(
                f"unknown render_mode {render_mode!r}; use one of {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        self.obs_mode = obs
        self.mdp = mdp
        self.moves = mdp.n_actions
        self.action_names = action_names
        rows, cols = self.grid.shape
        self.action_space = SeededDiscrete(self.moves)
        if obs == "index":
            self.observation_space = spaces.Discrete(mdp.n_states)
        elif obs == "nothing":  # every state looks the same (envs/mdp.py: Example 13.1's aliased states)
            self.observation_space = spaces.Discrete(1)
        elif obs == "coords":
            self.observation_space = spaces.MultiDiscrete([rows, cols])
        else:
            self.observation_space = spaces.Box(0, 255, (len(IMAGE_PLANES), rows, cols), np.uint8)
            self._static_planes = np.zeros((len(IMAGE_PLANES), rows, cols), np.uint8)
            for i, ch in enumerate("#GHC", start=1):
                self._static_planes[i] = (self.grid == ch) * 255

        self._goal = self.grid[mdp.cell[:, 0], mdp.cell[:, 1]] == "G"  # success: reaching G
        self._start_states = np.flatnonzero(mdp.start > 0)
        self.s = int(self._start_states[0])
        self.t = 0
        self.key: int | None = None
        self.last_action: int | None = None
        self.overlay: dict[str, Any] = {}
        self._font: Any = None
        self._tables: StepTables | None = None
        self._step: Any = None  # grid_step compiled, bound on the first step (Numba is slow to import)

    # ---------------------------------------------------------------- dynamics

    def step_tables(self) -> "StepTables":
        """The dynamics as flat arrays, for code that steps many times without the Gymnasium
        API (the batched env, fused tabular learners); stepping with them draws exactly what
        `step` draws (see StepTables)."""
        if self._tables is None:
            mdp = self.mdp
            S, A, K = mdp.next_state.shape
            cum = np.cumsum(mdp.prob, axis=-1)[:, :, :-1]  # the last successor takes what is left
            self._tables = StepTables(
                A, K, np.ascontiguousarray(mdp.next_state.reshape(-1)), np.ascontiguousarray(mdp.reward.reshape(-1)),
                np.ascontiguousarray(cum.reshape(-1)), np.ascontiguousarray(mdp.terminal), self.max_steps,
                np.ascontiguousarray(self._start_states, dtype=np.int64))
        return self._tables

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            # one seed drives every stream: the env's and the action space's
            self.action_space.follow(seed)  # type: ignore[attr-defined]  # a SeededDiscrete
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
        if not 0 <= a < self.moves:
            raise GridError(f"action {action!r} is out of range; use 0..{self.moves - 1} ({', '.join(self.action_names)})")
        tb = self._tables or self.step_tables()
        if self._step is None:
            self._step = compiled("grid_step")
        ns, r, term, truncated = self._step(self.s, a, np.uint64(self.key or 0), self.t, tb.A, tb.K, tb.next_state,
                                            tb.reward, tb.cum, tb.terminal, tb.max_steps)  # grid_step, compiled
        self.s, self.t, self.last_action = int(ns), self.t + 1, a
        if self.render_mode == "human":
            self.render()
        if term or truncated:  # Stable-Baselines3's key: did the episode reach a goal?
            return self._observe(), float(r), bool(term), bool(truncated), {"state": self.s,
                                                                            "is_success": bool(term and self._goal[ns])}
        return self._observe(), float(r), False, False, {"state": self.s}

    def episode_start(self) -> tuple[int, int]:
        """(state, stream key) of the episode the last reset began: where a fused learner starts."""
        if self.t != 0 or self.key is None:
            raise GridError("episode_start() is where an episode begins: call reset() first")
        return self.s, self.key

    def sync(self, s: int, t: int, last_action: int) -> None:
        """Where an episode stepped outside `step` with `step_tables()` (a fused learner, agents/td.py)
        ended: the env is left as `step` would have left it."""
        self.s, self.t, self.last_action = int(s), int(t), int(last_action)

    def snapshot(self) -> tuple[int, int, int | None, int | None]:
        """The env's position in an episode, for the viewer to step back and forth."""
        return (self.s, self.t, self.last_action, self.key)

    def restore(self, snapshot: tuple[int, int, int | None, int | None]) -> None:
        self.s, self.t, self.last_action, self.key = snapshot

    def _observe(self) -> Any:
        return self.observation_of(self.s)

    def observation_of(self, s: int) -> Any:
        """The observation an agent sees in state s, in this env's obs mode."""
        if self.obs_mode == "index":
            return s
        if self.obs_mode == "nothing":
            return 0
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


@dataclass(frozen=True)
class StepTables:
    """A GridWorld's dynamics as flat arrays. Row (s * A + a) * K + k of `next_state` and
    `reward` is successor k of (s, a); with K > 1, step t of an episode with stream key `key`
    takes successor k = the number of the cumulative probabilities cum[(s*A+a)*(K-1) + j],
    j < K - 1, that u = counter_uniform(key, t) reaches; with K = 1 there is no draw."""

    A: int
    K: int
    next_state: np.ndarray  # (S * A * K,) int64
    reward: np.ndarray  # (S * A * K,) float64
    cum: np.ndarray  # (S * A * (K - 1),) cumulative probabilities of successors 0..K-2
    terminal: np.ndarray  # (S,) bool
    max_steps: int
    starts: np.ndarray  # the start states; an episode with key `key` begins at starts[int(start_uniform(key) * len)]


_mix, _uniform = _mix_array, uniform_of  # replaced by their compiled forms in `compiled` (kernels call these names)


def grid_step(s, a, key, t, A, K, next_state, reward, cum, terminal, max_steps):  # pragma: no cover - compiled
    """The grid's dynamics, the one place they are written: step t of an episode whose stream
    key is `key`, from state s with action a, on the StepTables arrays. Successor k of (s, a)
    is the number of cumulative probabilities the episode's t-th uniform draw has passed (no
    draw with one successor). Returns (s', r, terminated, truncated). `GridWorldEnv.step`,
    the batched kernel and the fused TD episodes (agents/td.py) all call this, compiled."""
    sa = s * A + a
    row = sa * K
    if K > 1:
        u = _uniform(key, t)  # counter_uniform(key, t)
        for j in range(sa * (K - 1), (sa + 1) * (K - 1)):
            row += u >= cum[j]  # successor k: u has passed the cumulative probabilities of 0..k-1
    ns = next_state[row]
    term = terminal[ns]
    return ns, reward[row], term, t + 1 >= max_steps and not term


_grid_step = grid_step  # the compiled form after `compiled` (the kernels call this name)


def batched_step(actions, s, t, keys, needs_reset, next_state, reward, cum, A, K, terminal, goal, starts,
                 max_steps, states, rewards, flags):  # pragma: no cover - compiled
    """One step of every copy in one pass, the autoreset included: a copy whose episode ended
    last step starts its next episode instead (NEXT_STEP autoreset: its action is ignored, its
    reward 0); every other copy takes the grid's step (`grid_step`), drawn from its episode's
    stream as GridWorldEnv.step draws it. One hash per copy and step (two for a reset).
    Writes the copies' states and rewards, and where an episode ends, its row of `flags`
    (given all False): terminated, truncated, is_success, ended. Returns -1, or the first
    copy whose action is not in 0..A-1 (then nothing has moved)."""
    bad = False
    for i in range(len(actions)):  # no early exit: the check vectorises
        bad |= np.uint64(actions[i]) >= np.uint64(A)  # a negative action wraps to a huge one
    if bad:
        for i in range(len(actions)):
            if not 0 <= actions[i] < A:
                return i
    for i in range(len(actions)):
        if needs_reset[i]:
            key = _mix(keys[i] ^ np.uint64(NEXT_KEY_SALT))  # next_key
            u = _uniform(key ^ np.uint64(START_SALT), 0)  # start_uniform
            keys[i], s[i], t[i] = key, starts[int(u * len(starts))], 0
            states[i], rewards[i], needs_reset[i] = s[i], 0.0, False
            continue
        ns, r, term, trunc = _grid_step(s[i], actions[i], keys[i], t[i], A, K, next_state, reward, cum, terminal,
                                        max_steps)
        s[i], t[i], states[i], rewards[i] = ns, t[i] + 1, ns, r
        if term or trunc:  # rare: the flags of the other copies stay False
            flags[0, i], flags[1, i], flags[2, i], flags[3, i] = term, trunc, term and goal[ns], True
            needs_reset[i] = True
    return -1


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
        self.tables = self.single.step_tables()
        self.goal = np.array(self.single._goal, dtype=bool)
        self.max_steps = self.single.max_steps
        self._kernel = compiled("batched_step")
        self._everyone = np.ones(self.num_envs, dtype=bool)
        self._everyone.flags.writeable = False  # info["_state"]: shared by every step, so read-only
        self.s = np.zeros(self.num_envs, dtype=np.int64)
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        self.keys = np.zeros(self.num_envs, dtype=np.uint64)
        self._copy_index = np.arange(self.num_envs)
        self._reset_copies(self._copy_index, seeded=True)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """NativeVectorEnv.step, the autoreset included, as one compiled pass (`batched_step`) that
        also checks the actions. The only allocations are the arrays returned (kept by the
        caller, so each step's are new, as Gymnasium's vector envs copy theirs); with index
        observations, info["state"] is the observation array itself."""
        if type(actions) is not np.ndarray or actions.dtype.kind not in "iu":
            actions = self._integer_actions(actions)
        n = self.num_envs
        if actions.shape != (n,):
            raise ValueError(f"actions has shape {actions.shape}; give one action per copy: ({n},)")
        states, rewards, flags = np.empty(n, dtype=np.int64), np.empty(n), np.zeros((4, n), dtype=bool)
        tb = self.tables
        bad = self._kernel(actions, self.s, self.t, self.keys, self._needs_reset, tb.next_state, tb.reward, tb.cum, tb.A,
                           tb.K, tb.terminal, self.goal, tb.starts, tb.max_steps, states, rewards, flags)
        if bad >= 0:
            raise GridError(f"actions must be integers in 0..{tb.A - 1} ({', '.join(self.single.action_names)}); "
                            f"copy {bad} got {actions[bad].item()!r}")
        infos = {"state": states, "_state": self._everyone, "is_success": flags[2],
                 "_is_success": flags[3]}  # is_success, as the single env reports it: at an episode's end
        obs = states if self.single.obs_mode == "index" else self._observe()  # index: info["state"] is obs
        return obs, rewards, flags[0], flags[1], infos

    def _integer_actions(self, actions: Any) -> np.ndarray:
        """Actions given as a list, floats or bools, as int64 (integral values only)."""
        given = np.asarray(actions)
        a = given.astype(np.int64) if given.dtype.kind in "iufb" else np.full(given.shape, -1)
        if (given.dtype.kind not in "iub" and (a != given).any()) or given.dtype.kind not in "iufb":
            bad = int(np.flatnonzero((a != given).ravel())[0]) if given.dtype.kind == "f" else 0
            raise GridError(f"actions must be integers in 0..{self.tables.A - 1} "
                            f"({', '.join(self.single.action_names)}); copy {bad} got {given.ravel()[bad].item()!r}")
        return a

    def _reset_copies(self, idx: np.ndarray, seeded: bool) -> None:
        if seeded and self.seed_array is not None:  # first keys as the single env draws them from np_random
            self.keys[idx] = seeding_kernels()[0](self.seed_array[idx])
        elif seeded:
            seeds = [self.seeds[i] for i in idx.tolist()]
            given = [i for i, seed in enumerate(seeds) if seed is not None]
            self.keys[idx] = np.random.default_rng().integers(0, 2**63, size=len(idx))  # copies without a seed
            if given:
                self.keys[idx[given]] = first_keys([seeds[i] for i in given])  # type: ignore[misc]  # ints
        else:
            self.keys[idx] = next_keys(self.keys[idx])
        starts = self.single._start_states
        self.s[idx] = starts[(start_uniforms(self.keys[idx]) * len(starts)).astype(np.int64)]
        self.t[idx] = 0

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

