"""Hostile input, generated: random env configurations and damaged files of every kind.

Specification: whatever a user or a file throws at Arena, the outcome is a success or an
`ArenaError` whose message is one line, never a traceback from deep inside. Each
property runs 300 generated cases (derandomized, so CI sees the same cases every run).
"""

import json
import shutil
import sqlite3
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs  # noqa: F401
from agents.checkpoint import read_arrays, write_arrays
from agents.protocol import RunSpec
from arena.errors import ArenaError
from arena.registry import FAMILIES, check_env_kwargs, make_agent, make_env

CASES = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def assert_one_line(exc: ArenaError) -> None:
    message = str(exc)
    assert message and "\n" not in message, repr(message)


# --------------------------------------------------------------------------- values a user might type

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.integers(min_value=-3, max_value=300),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, 1, 2, 0.5, -1, 1e308, float("nan")]),
)
scalars = st.one_of(numbers, st.none(), st.booleans(), st.text(max_size=12))
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=12),
    st.dictionaries(st.sampled_from(["step", "goal", "hole", "cliff", "lava"]), scalars, max_size=4),
)
small_maps = st.builds(
    lambda rows: "\n".join(rows),
    st.integers(1, 6).flatmap(lambda w: st.lists(st.text("SGHC#.", min_size=w, max_size=w), min_size=1, max_size=6)),
)
layouts = st.one_of(
    st.sampled_from(["open-5x5", "cliff", "windy", "frozenlake-4x4", "four-rooms", "nowhere", "", "maze-0x9"]),
    st.builds(lambda r, c: f"maze-{r}x{c}", st.integers(0, 40), st.integers(0, 40)),
    st.builds(lambda r, c: f"maze-{r}x{c}", st.integers(10**4, 10**9), st.integers(10**4, 10**9)),
    small_maps,
)
KEYS = {
    "grid": ["slip", "wind", "rewards", "obs", "max_steps", "maze_seed", "colour"],
    "seq": ["length", "vocab", "curriculum", "speed"],
    "bias": ["n_actions", "a_actions", "mean", "std"],
}
CHOICES = {"obs": st.sampled_from(["index", "coords", "image", "pixels"]),
           "task": st.sampled_from(["copy", "reverse", "parity", "addition", "sine", "text", "poem"])}


@st.composite
def env_configs(draw):
    family = draw(st.sampled_from(sorted(KEYS)))
    kwargs = {}
    for key in draw(st.lists(st.sampled_from(KEYS[family]), unique=True, max_size=4)):
        kwargs[key] = draw(st.one_of(CHOICES[key], values) if key in CHOICES else values)
    if family == "grid" and draw(st.booleans()):
        kwargs["layout"] = draw(st.one_of(layouts, values))
    if family == "seq":
        kwargs["task"] = draw(st.one_of(CHOICES["task"], values))
    if family == "seq" and isinstance(kwargs.get("length"), int) and kwargs["length"] > 64:
        kwargs["length"] = 64  # long episodes are valid, only slow
    return FAMILIES[family].env_id, kwargs


@CASES
@given(config=env_configs(), actions=st.lists(st.integers(-2, 12), max_size=20))
def test_any_env_configuration_builds_and_steps_or_is_one_arena_error(config, actions):
    env_id, kwargs = config
    try:
        check_env_kwargs(env_id, kwargs)
        env = make_env(env_id, kwargs)
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        for a in actions:
            obs, r, term, trunc, _ = env.step(a)
            assert np.isfinite(r)
            if term or trunc:
                env.reset()
    except ArenaError as exc:
        assert_one_line(exc)


# --------------------------------------------------------------------------- damaged files


def damage_bytes(data: bytes, draw) -> bytes:
    """Truncate, flip bits or overwrite a run of bytes: what a bad disk or download does."""
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "append"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    buf = bytearray(data)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(buf)
    if kind == "overwrite":
        i = draw(st.integers(0, len(buf) - 1))
        junk = draw(st.binary(min_size=1, max_size=64))
        buf[i:i + len(junk)] = junk
        return bytes(buf)
    return data + draw(st.binary(min_size=1, max_size=64))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8,
)


def forge(path: Path, kind: str, version: int, draw, out: Path) -> None:
    """Rewrite a valid file with a changed header field or array and a recomputed checksum:
    what an attacker (or a buggy tool) can do, since a checksum is not a signature."""
    arrays, meta = read_arrays(path, kind, (version,))
    target = draw(st.sampled_from(["meta", "nested", "drop", "array"]))
    if target == "meta":
        meta[draw(st.sampled_from(sorted(meta)))] = draw(json_values)
    elif target == "nested":
        key = draw(st.sampled_from(sorted(meta)))
        if isinstance(meta[key], dict) and meta[key]:
            meta[key][draw(st.sampled_from(sorted(meta[key])))] = draw(json_values)
    elif target == "drop":
        meta.pop(draw(st.sampled_from(sorted(meta))))
    else:
        name = draw(st.sampled_from(sorted(arrays)))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.uint8, np.bool_]))
        fill = draw(st.sampled_from([0, 1, -1, 1e30, np.nan]))
        with np.errstate(invalid="ignore"):  # e.g. 1e30 cast to an integer dtype: any garbage will do
            arrays[name] = np.full(shape, fill).astype(dtype) if not (dtype != np.float64 and fill != fill) else np.zeros(shape, dtype)
    write_arrays(out, kind, version, arrays, meta)


@st.composite
def damaged(draw, original: Path, kind: str, version: int, out: Path) -> Path:
    if draw(st.booleans()):
        out.write_bytes(damage_bytes(original.read_bytes(), draw))
    else:
        forge(original, kind, version, draw, out)
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One valid file of every kind, written by the real code paths."""
    from arena.leaderboard import Leaderboard
    from arena.match import record_episode
    from arena.replay import save_replay
    from arena.tournament import Job, run_job

    folder = tmp_path_factory.mktemp("valid")
    grid = gym.make("arena/GridWorld-v0", layout="cliff")
    seq = gym.make("arena/SequencePrediction-v0", task="copy", length=2)
    images_env = gym.make("arena/ImageGeneration-v0", batch=2)
    out = {}
    for name, env, kwargs in [("q-learning", grid, {"episodes": 20}), ("value-iteration", grid, {}), ("random", grid, {}),
                              ("mc-off-policy", grid, {"episodes": 20}),
                              ("reinforce-mlp", seq, {"episodes": 64, "device": "cpu"}),
                              ("sb3-ppo", grid, {"steps": 64, "n_steps": 32, "batch_size": 32, "device": "cpu"}),
                              ("gan", images_env, {"updates": 1, "device": "cpu"})]:
        agent = make_agent(name, **kwargs)
        agent.fit(env, seed=0)
        out[name] = agent.save(folder / f"{name}.npz")
    vi = make_agent("value-iteration")
    vi.fit(grid)
    out["replay"] = save_replay(folder / "replay.npz", record_episode(vi, grid, 1000))
    painter = make_agent("real-data")
    painter.fit(images_env)
    out["image_replay"] = save_replay(folder / "image-replay.npz", record_episode(painter, images_env, 1000))
    db = folder / "board.sqlite"
    result, _ = run_job(Job("random", "arena/GridWorld-v0", {"layout": "cliff"}, {}, RunSpec(), 2), folder / "replays",
                        folder / "runs")
    Leaderboard(db).add(result)
    out["database"] = db
    return out


def load_replay_and_verify(path: Path) -> None:
    from arena.replay import load_replay, verify

    verify(load_replay(path))


def load_checkpoint_and_act(name: str, path: Path) -> None:
    env = gym.make("arena/SequencePrediction-v0", task="copy", length=2) if name.startswith("reinforce") \
        else gym.make("arena/ImageGeneration-v0", batch=2) if name == "gan" \
        else gym.make("arena/GridWorld-v0", layout="cliff")
    agent = make_agent(name, **({"device": "cpu"} if name.startswith(("reinforce", "sb3", "gan")) else {}))
    agent.load(path, env=env)
    agent.check_fits(env)
    obs, _ = env.reset(seed=0)
    agent.act(obs, agent.reset(seed=0))


def outcome(fn, *args) -> str:
    """'ok', 'refused' (an ArenaError with a one-line message); anything else escapes and fails the test."""
    try:
        fn(*args)
    except ArenaError as exc:
        assert_one_line(exc)
        return "refused"
    return "ok"


@CASES
@given(data=st.data())
def test_a_damaged_replay_loads_verifies_or_is_one_arena_error(files, tmp_path, data):
    path = data.draw(damaged(files["replay"], "arena-replay", 1, tmp_path / "replay.npz"))
    assert outcome(load_replay_and_verify, path) in ("ok", "refused")


@CASES
@given(data=st.data())
def test_a_damaged_image_replay_loads_verifies_or_is_one_arena_error(files, tmp_path, data):
    path = data.draw(damaged(files["image_replay"], "arena-replay", 1, tmp_path / "replay.npz"))
    assert outcome(load_replay_and_verify, path) in ("ok", "refused")


@pytest.mark.parametrize("name", ["q-learning", "value-iteration", "random", "mc-off-policy"])
@CASES
@given(data=st.data())
def test_a_damaged_tabular_checkpoint_loads_or_is_one_arena_error(files, tmp_path, name, data):
    path = data.draw(damaged(files[name], "arena-checkpoint", 2, tmp_path / "ckpt.npz"))
    assert outcome(load_checkpoint_and_act, name, path) in ("ok", "refused")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["reinforce-mlp", "sb3-ppo", "gan"])
@CASES
@given(data=st.data())
def test_a_damaged_neural_checkpoint_loads_or_is_one_arena_error(files, tmp_path, name, data):
    path = data.draw(damaged(files[name], "arena-checkpoint", 2, tmp_path / "ckpt.npz"))
    assert outcome(load_checkpoint_and_act, name, path) in ("ok", "refused")


COLUMNS = ["run_key", "created", "env_id", "env_kwargs", "agent", "agent_config", "checkpoint", "train_seed",
           "eval_seeds", "returns", "mean_return", "score", "replay_paths", "code_version", "note"]


@CASES
@given(data=st.data())
def test_a_damaged_database_reads_or_is_one_arena_error(files, tmp_path, data):
    from arena.leaderboard import Leaderboard

    db = tmp_path / "board.sqlite"
    shutil.copy(files["database"], db)
    if data.draw(st.booleans()):
        db.write_bytes(damage_bytes(db.read_bytes(), data.draw))
    else:  # a row edited by hand or by another tool
        column = data.draw(st.sampled_from(COLUMNS))
        value = data.draw(st.one_of(json_values.map(json.dumps), st.integers(), st.floats(allow_nan=True),
                                    st.binary(max_size=16), st.text(max_size=16)))
        with sqlite3.connect(db) as conn:
            try:
                conn.execute(f"UPDATE results SET {column} = ?", (value,))
            except (sqlite3.Error, OverflowError):  # the edit itself was refused: the file stays valid
                pass
    assert outcome(lambda: (Leaderboard(db, readonly=True).results(), Leaderboard(db).count())) in ("ok", "refused")


# --------------------------------------------------------------------------- images


image_kwargs = st.fixed_dictionaries({}, optional={
    "dataset": st.one_of(st.sampled_from(["digits", "shapes", "faces"]), values),
    "judge": st.one_of(st.sampled_from(["frozen", "adaptive", "oracle"]), values),
    "conditional": st.one_of(st.booleans(), values),
    "batch": st.one_of(st.integers(-2, 6), values),
    "size": st.one_of(st.sampled_from([None, 8, 16, 32, 12]), values),
    "latent": st.one_of(st.integers(-1, 20), values),
})
pixels = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32), st.sampled_from([0.0, 1.0, -0.0, 0.5, 1.0000001, -1e-9]),
)
images = st.one_of(
    st.builds(lambda v, shape, dtype: np.full(shape, v, dtype=dtype), pixels,
              st.sampled_from([(1, 16, 16), (16, 16), (1, 8, 8), (1, 16, 16, 1), (3, 16, 16), ()]),
              st.sampled_from([np.float32, np.float64, np.float16, np.int64, np.uint8, bool])),
    st.builds(lambda seed: np.random.default_rng(seed).uniform(0, 1, (1, 16, 16)).astype(np.float32), st.integers(0, 9)),
    scalars, st.lists(scalars, max_size=3),
)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # (numpy casting NaN to ints while the test builds images)
@CASES
@given(kwargs=image_kwargs, actions=st.lists(images, max_size=6))
def test_any_image_env_configuration_and_any_image_is_accepted_or_one_arena_error(kwargs, actions):
    try:
        env = make_env("arena/ImageGeneration-v0", kwargs)
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        for a in actions:
            obs, r, term, trunc, _ = env.step(a)
            assert 0.0 <= r <= 1.0
            if term or trunc:
                env.reset()
    except ArenaError as exc:
        assert_one_line(exc)
