"""The image-generation env and its data: a generator's action is an image, a judge scores it.

Specification (issue 8): fixed train / held-out splits of scikit-learn's digits and of
procedural shapes; classifiers >= 97% on held-out data; both env checkers pass; the same
seed gives the same episode bit for bit; the last step reports diversity; a constant
image is flagged as mode collapse; bad images are refused with one line naming the fault.
"""

import warnings

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from arena.errors import ArenaError
from envs import vision
from envs.data import IMAGE_SIZES, image_dataset, shapes
from envs.imagegen import COLLAPSE_FRACTION, ImageError, pairwise_distance

ID = "arena/ImageGeneration-v0"


def play(env, images, seed=0):
    obs, _ = env.reset(seed=seed)
    rewards, infos = [], []
    for x in images:
        obs, r, term, trunc, info = env.step(x)
        rewards.append(r)
        infos.append(info)
    return rewards, infos, term


# --------------------------------------------------------------------------- data


@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_splits_are_fixed_disjoint_and_in_range(name):
    d = image_dataset(name)
    assert d.train.shape[1:] == d.heldout.shape[1:] == (1, 16, 16)
    for x in (d.train, d.heldout, d.heldout_b):
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    if name == "digits":  # scikit-learn's 1,797 digits: 1,197 train, 300 + 300 held out
        assert (len(d.train), len(d.heldout), len(d.heldout_b)) == (1197, 300, 300)
    every_class = set(range(len(d.classes)))
    assert set(d.heldout_labels) == set(d.heldout_b_labels) == every_class
    train = {x.tobytes() for x in d.train}
    repeats = sum(x.tobytes() in train for x in d.heldout)
    # digits are distinct scans; a small shape can land on the same pixels twice (13 of 600 here)
    assert repeats == 0 if name == "digits" else repeats < 0.05 * len(d.heldout)


def test_shapes_are_generated_deterministically_from_a_seed():
    a, la = shapes(50, 32, np.random.default_rng(7))
    b, lb = shapes(50, 32, np.random.default_rng(7))
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, shapes(50, 32, np.random.default_rng(8))[0])


@pytest.mark.slow
@pytest.mark.parametrize("name,size", [(n, s) for n, sizes in IMAGE_SIZES.items() for s in sizes])
def test_the_classifiers_reach_97_percent_on_both_held_out_sets(name, size):
    d = image_dataset(name, size)
    model = vision.classifier(name, size)
    assert vision.accuracy(model, d.heldout, d.heldout_labels) >= 0.97
    assert vision.accuracy(model, d.heldout_b, d.heldout_b_labels) >= 0.97


@pytest.mark.slow
def test_judge_training_is_deterministic_and_the_cache_never_trusts_a_damaged_file(tmp_path, monkeypatch):
    data = image_dataset("digits", 8)
    with vision.one_thread():  # as the cache trains it
        a, b = vision.train_judge(data, seed=3), vision.train_judge(data, seed=3)
    assert vision.weights_digest(a.state_dict()) == vision.weights_digest(b.state_dict())
    monkeypatch.setenv("ARENA_CACHE", str(tmp_path))
    monkeypatch.setattr(vision, "_LOADED", {})
    import torch

    with torch.no_grad():  # the env's first score() asks for the judge from inside no_grad
        first = vision.judge("digits", 8, seed=3)
    assert vision.weights_digest(first.state_dict()) == vision.weights_digest(a.state_dict())
    path = next(tmp_path.glob("judge-digits8-seed3-*.safetensors"))
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 0xFF  # one flipped bit in the weights
    path.write_bytes(bytes(raw))
    monkeypatch.setattr(vision, "_LOADED", {})
    again = vision.judge("digits", 8, seed=3)  # retrained, not trusted
    assert vision.weights_digest(again.state_dict()) == vision.weights_digest(a.state_dict())
    # a sound judge of another data set or seed, copied over a judge's file: its header says so
    for (dataset, size, seed), other in ((("digits", 8, 3), ("digits", 8, 4)), (("digits", 16, 0), ("shapes", 16, 0))):
        own = vision.weights_digest(vision.judge(dataset, size, seed=seed).state_dict())
        vision.judge(*other[:2], seed=other[2])
        target = next(tmp_path.glob(f"judge-{dataset}{size}-seed{seed}-*.safetensors"))
        target.write_bytes(next(tmp_path.glob(f"judge-{other[0]}{other[1]}-seed{other[2]}-*.safetensors")).read_bytes())
        monkeypatch.setattr(vision, "_LOADED", {})
        again = vision.judge(dataset, size, seed=seed)
        assert vision.weights_digest(again.state_dict()) == own


@pytest.mark.slow
def test_the_cached_judge_and_classifier_are_the_same_whatever_the_thread_count(tmp_path, monkeypatch):
    """Trained with torch on 1 thread or 2 (the cache trains on one either way), the weights
    and so every score are bit for bit the same."""
    import torch

    before = torch.get_num_threads()
    digests = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            monkeypatch.setenv("ARENA_CACHE", str(tmp_path / f"threads{threads}"))
            monkeypatch.setattr(vision, "_LOADED", {})
            digests.append((vision.weights_digest(vision.judge("digits", 8, seed=3).state_dict()),
                            vision.weights_digest(vision.classifier("digits", 16).state_dict())))
            assert torch.get_num_threads() == threads  # the caller's setting is given back
    finally:
        torch.set_num_threads(before)
    assert digests[0] == digests[1]


# --------------------------------------------------------------------------- the env


@pytest.mark.parametrize("kwargs", [{}, {"conditional": True}, {"judge": "adaptive", "batch": 8},
                                    {"dataset": "shapes", "size": 32, "batch": 4}, {"size": 8}])
def test_gymnasium_env_checker_passes_with_warnings_as_errors(kwargs):
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(ID, render_mode="rgb_array", **kwargs).unwrapped, skip_render_check=False)


def test_sb3_env_checker_passes_with_only_its_action_range_advice():
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(gym.make(ID, conditional=True).unwrapped)
    # an image's pixels live in [0, 1]; SB3 recommends [-1, 1] for its own policies, nothing more
    assert all("symmetric and normalized Box action space" in str(w.message) for w in caught)


def test_sb3_agents_see_actions_in_minus_one_one_and_answer_in_the_envs_pixels(tmp_path):
    from stable_baselines3.common.env_checker import check_env

    from agents.sb3 import sb3_view
    from arena.registry import make_agent

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(sb3_view(gym.make(ID, conditional=True).unwrapped))
    env = gym.make(ID, conditional=True)
    agent = make_agent("sb3-ppo", steps=64, n_steps=32, batch_size=32, device="cpu")
    agent.fit(env, seed=0)
    obs, _ = env.reset(seed=0)
    action, _ = agent.act(obs)
    raw, _ = agent.model.predict(obs, deterministic=True)  # what SB3 chose, in [-1, 1]
    assert env.action_space.contains(action)
    np.testing.assert_allclose(action, (np.clip(raw, -1, 1) + 1) / 2, atol=1e-6)
    loaded = make_agent("sb3-ppo", device="cpu").load(agent.save(tmp_path / "ppo.npz"), env=env)
    np.testing.assert_array_equal(loaded.act(obs)[0], action)


@pytest.mark.parametrize("kwargs", [{}, {"judge": "adaptive", "conditional": True, "batch": 16}])
def test_the_same_seed_gives_the_same_episode_bit_for_bit(kwargs):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (16, 1, 16, 16)).astype(np.float32) ** 3
    runs = []
    for _ in range(2):
        env = gym.make(ID, batch=16, **{k: v for k, v in kwargs.items() if k != "batch"})
        obs0, _ = env.reset(seed=11)
        rewards, infos, term = play(env, images, seed=11)
        runs.append((obs0.tobytes(), np.array(rewards).tobytes(), infos[-1]))
    assert runs[0] == runs[1] and term


def test_observation_is_latent_noise_plus_the_class_when_conditional():
    env = gym.make(ID, conditional=True, latent=8)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (8 + 10,) and obs[8:].sum() == 1.0
    assert int(obs[8:].argmax()) == env.unwrapped.labels[0]
    assert gym.make(ID, latent=8).reset(seed=0)[0].shape == (8,)


def test_real_images_score_high_noise_scores_low_and_the_last_info_carries_diversity():
    env = gym.make(ID)
    real = env.unwrapped.data.heldout[:64]
    rewards, infos, term = play(env, real)
    assert term and np.mean(rewards) > 0.8
    last = infos[-1]
    assert last["classes_covered"] == 10 and not last["mode_collapse"]
    assert last["pairwise_distance"] == pytest.approx(pairwise_distance(real))
    noise = np.random.default_rng(1).uniform(0, 1, (64, 1, 16, 16)).astype(np.float32)
    assert np.mean(play(env, noise)[0]) < 0.05


def test_one_image_repeated_is_mode_collapse_even_when_the_judge_likes_it():
    env = gym.make(ID)
    best = env.unwrapped.data.heldout[int(env.unwrapped.score(env.unwrapped.data.heldout).argmax())]
    rewards, infos, _ = play(env, [best] * 64)
    assert np.mean(rewards) > 0.9  # it fools the frozen judge...
    assert infos[-1]["mode_collapse"] and infos[-1]["classes_covered"] == 1  # ...and is flagged
    assert infos[-1]["pairwise_distance"] < COLLAPSE_FRACTION * env.unwrapped.real_spread()


def test_the_adaptive_judge_learns_to_reject_what_it_is_shown():
    env = gym.make(ID, judge="adaptive", batch=32)
    held = env.unwrapped.data.heldout
    fake = held[int(env.unwrapped.score(held).argmax())]  # a collapsed generator's one good image
    first = np.mean(play(env, [fake] * 32, seed=0)[0])
    for episode in range(1, 20):
        last = np.mean(play(env, [fake] * 32, seed=episode)[0])
    assert first > 0.9 and last < first / 2
    frozen = gym.make(ID, batch=32)
    assert np.mean(play(frozen, [fake] * 32)[0]) == pytest.approx(first)


def test_conditional_reward_is_realness_times_the_class_probability():
    env = gym.make(ID, conditional=True, batch=4)
    obs, _ = env.reset(seed=5)
    d = env.unwrapped.data
    want = env.unwrapped.labels[0]
    right = d.heldout[np.flatnonzero(d.heldout_labels == want)[0]]
    wrong = d.heldout[np.flatnonzero(d.heldout_labels != want)[0]]
    _, r_right, _, _, info = env.step(right)
    assert r_right == pytest.approx(info["realness"] * info["class_prob"]) and info["class_prob"] > 0.9
    env.reset(seed=5)
    _, r_wrong, _, _, _ = env.step(wrong)
    assert r_wrong < 0.1 < r_right


def test_render_draws_the_images_with_scores_beside_real_samples():
    env = gym.make(ID, batch=8, render_mode="rgb_array")
    play(env, env.unwrapped.data.heldout[:8])
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[:2][::-1] == env.unwrapped.frame_size()
    assert "image 8/8" in gym.make(ID, batch=8, render_mode="ansi").unwrapped.render_text().replace("0/8", "8/8")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("image,word", [
    (np.full((1, 16, 16), np.nan, dtype=np.float32), "NaN"),
    (np.full((1, 16, 16), np.inf, dtype=np.float32), "infinite"),
    (np.zeros((16, 16), dtype=np.float32), "shape"),
    (np.zeros((1, 8, 8), dtype=np.float32), "shape"),
    (np.zeros((1, 16, 16), dtype=np.int64), "dtype"),
    (np.full((1, 16, 16), 1.5, dtype=np.float32), "[0, 1]"),
    (np.full((1, 16, 16), -0.1, dtype=np.float32), "[0, 1]"),
    ("a picture", "dtype"),
    (3, "dtype"),
])
def test_a_bad_image_is_refused_in_one_line_naming_the_fault(image, word):
    env = gym.make(ID, batch=2)
    env.reset(seed=0)
    with pytest.raises(ImageError) as caught:
        env.step(image)
    assert word in str(caught.value) and "\n" not in str(caught.value)
    env.step(np.zeros((1, 16, 16), dtype=np.float32))  # the refused image was not counted


@pytest.mark.parametrize("kwargs,word", [
    ({"dataset": "faces"}, "dataset"), ({"judge": "oracle"}, "judge"), ({"size": 12}, "size=12"),
    ({"dataset": "shapes", "size": 8}, "16 or 32"), ({"batch": 0}, "batch"), ({"latent": 0}, "latent"),
    ({"conditional": "maybe"}, "conditional"),
])
def test_bad_kwargs_are_one_line_arena_errors(kwargs, word):
    with pytest.raises(ArenaError) as caught:
        gym.make(ID, **kwargs)
    assert word in str(caught.value) and "\n" not in str(caught.value)


def test_stepping_past_the_episode_end_is_refused():
    env = gym.make(ID, batch=1)
    play(env, [np.zeros((1, 16, 16), dtype=np.float32)])
    with pytest.raises(ImageError, match="reset"):
        env.unwrapped.step(np.zeros((1, 16, 16), dtype=np.float32))
