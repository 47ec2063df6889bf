"""Replay files: record, verify bit for bit, and refuse damaged or foreign files."""

import json
import zipfile

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from agents.baselines import RandomAgent
from agents.dp import ValueIterationAgent
from arena.match import play, record_episode
from arena.replay import ReplayError, load_replay, save_replay, verify


@pytest.fixture
def recorded(tmp_path):
    env = gym.make("arena/GridWorld-v0", layout="frozenlake-8x8")
    agent = ValueIterationAgent()
    agent.fit(env)
    episodes = play(agent, "arena/GridWorld-v0", {"layout": "frozenlake-8x8"}, [1000, 1001, 1002], tmp_path)
    return [load_replay(e.replay_path) for e in episodes], [e.replay_path for e in episodes]


def test_recorded_episodes_verify_bit_for_bit(recorded):
    replays, _ = recorded
    for rep in replays:
        check = verify(rep)
        assert check.ok, check.message
        assert rep.agent == "value-iteration" and len(rep.checkpoint) == 64
        assert rep.env_kwargs == {"layout": "frozenlake-8x8"}
        assert set(rep.overlay) == {"V", "Q", "policy"}


def test_same_seed_gives_the_same_episode():
    env = gym.make("arena/GridWorld-v0", layout="frozenlake-8x8")
    agent = RandomAgent()
    agent.fit(env)
    a, b = record_episode(agent, env, 5), record_episode(agent, env, 5)
    assert np.array_equal(a.actions, b.actions) and np.array_equal(a.rewards, b.rewards)
    assert np.array_equal(a.obs_crc, b.obs_crc)


def test_verify_names_the_first_step_that_differs(recorded):
    replays, _ = recorded
    rep = max(replays, key=lambda r: r.steps)
    rep.rewards = rep.rewards.copy()
    rep.rewards[4] += 1e-12
    check = verify(rep)
    assert not check.ok and check.steps == 5 and check.message.startswith("step 5: reward")


def test_verify_catches_a_changed_action_through_the_observation_checksum():
    env = gym.make("arena/GridWorld-v0", layout="cliff")
    agent = ValueIterationAgent()
    agent.fit(env)
    rep = record_episode(agent, env, 0)  # up, right x 11, down
    assert rep.actions[2] == 1
    rep.actions[2] = 3  # left instead of right: same reward, another cell
    check = verify(rep)
    assert not check.ok and check.steps == 3
    assert check.message == "step 3: the observation differs from the recorded one"


def test_verify_catches_another_env_setting(recorded):
    replays, _ = recorded
    rep = replays[0]
    rep.env_kwargs = {"layout": "frozenlake-8x8", "slip": 0.0}
    assert not verify(rep).ok


def test_truncated_replay_is_refused_with_one_line(recorded, tmp_path):
    _, paths = recorded
    data = open(paths[0], "rb").read()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReplayError, match="truncated or corrupt"):
        load_replay(cut)


def test_corrupt_replay_is_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive at all")
    with pytest.raises(ReplayError, match="truncated or corrupt"):
        load_replay(bad)


def _rewrite_header(src, dst, change):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "__header__.npy":
                import io

                arr = np.load(io.BytesIO(data), allow_pickle=False)
                header = json.loads(bytes(arr).decode())
                change(header)
                buf = io.BytesIO()
                np.save(buf, np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
                data = buf.getvalue()
            zout.writestr(item, data)


def test_wrong_version_replay_is_refused_with_the_fix(recorded, tmp_path):
    _, paths = recorded
    future = tmp_path / "future.npz"
    _rewrite_header(paths[0], future, lambda h: h.update(version=99))
    with pytest.raises(ReplayError, match="format version 99; this Arena reads version"):
        load_replay(future)


def test_altered_replay_fails_its_checksum(recorded, tmp_path):
    _, paths = recorded
    altered = tmp_path / "altered.npz"
    _rewrite_header(paths[0], altered, lambda h: h.update(sha256="0" * 64))
    with pytest.raises(ReplayError, match="failed its checksum"):
        load_replay(altered)


def test_a_checkpoint_is_not_a_replay(tmp_path):
    env = gym.make("arena/GridWorld-v0", layout="cliff")
    agent = ValueIterationAgent()
    agent.fit(env)
    path = agent.save(tmp_path / "ckpt.npz")
    with pytest.raises(ReplayError, match="not an Arena replay file"):
        load_replay(path)


def test_replays_are_never_overwritten(recorded):
    replays, paths = recorded
    before = open(paths[0], "rb").read()
    with pytest.raises(ReplayError, match="already exists"):
        save_replay(paths[0], replays[1])
    assert open(paths[0], "rb").read() == before


def test_edited_metadata_fails_the_checksum(recorded, tmp_path):
    _, paths = recorded
    edited = tmp_path / "edited.npz"
    _rewrite_header(paths[0], edited, lambda h: h["meta"].update(seed=7))
    with pytest.raises(ReplayError, match="failed its checksum"):
        load_replay(edited)
