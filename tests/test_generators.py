"""Generators as agents: GAN, VAE / autoencoder, the black-box REINFORCE generator, and the
two references, all through the one training loop and the one checkpoint format.

Specification (issue 8): on digits, 2 minutes of CPU training each, `gan` scores >= 0.9
normalised and `vae` >= 0.8, both covering all ten classes, the best >= 0.95 (the
conditional GAN on the conditional env); on shapes
`gan` covers every class at >= 0.8; `real-data` scores about 1 and `noise` about 0 by
construction; `reinforce-generator` lands between or at the bottom; a generator that
always draws one image is flagged for mode collapse and scores low even when the frozen
judge likes that image.
"""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from agents.generator import GeneratorAgent
from agents.protocol import RunSpec
from arena import scoring
from arena.errors import AgentError, ArenaError, CheckpointError, TrainingError
from arena.match import play
from arena.registry import make_agent
from arena.tournament import Job, SuiteAgent, judge_suite, run_job

ID = "arena/ImageGeneration-v0"
CPU = {"device": "cpu"}


def env(**kwargs):
    return gym.make(ID, **kwargs)


def job(agent, config=None, episodes=5, train=None, **env_kwargs):
    """A run: train, play `episodes` evaluation episodes of 64 images (5 x 64 >= the 300 scored), score."""
    return Job(agent, ID, {"dataset": "digits", **env_kwargs}, {**(config or {})}, RunSpec(budget=train), episodes)


# --------------------------------------------------------------------------- the references


def test_real_data_scores_about_one_and_noise_about_zero(tmp_path):
    real, _ = run_job(job("real-data"), tmp_path / "replays", tmp_path / "runs")
    noise, _ = run_job(job("noise"), tmp_path / "replays", tmp_path / "runs")
    assert 0.9 <= real.score <= 1.1 and real.metrics["classes_covered"] == 10
    assert abs(noise.score) < 0.05
    assert real.metrics["fid"] < noise.metrics["fid"] and real.metrics["inception_score"] > 8


def test_one_fixed_image_is_flagged_and_scores_low_even_when_it_fools_the_frozen_judge():
    class OneImage(GeneratorAgent):
        name = "one-image"

        def config(self):
            return {}

        def generate(self, z, y):
            return np.repeat(self.best[None], len(z), axis=0)

    e = env()
    agent = OneImage()
    agent.bind(e)
    held = e.unwrapped.data.heldout
    agent.best = held[int(e.unwrapped.score(held).argmax())]
    episodes = play(agent, ID, {"dataset": "digits"}, [1000 + i for i in range(5)])
    score = scoring.image_score(e, episodes)
    assert score.judge > 0.9  # the frozen judge is fooled...
    assert score.mode_collapse and score.classes_covered == 1 and score.normalised < 0  # ...the scores are not
    assert all(ep.last_info["mode_collapse"] for ep in episodes)


# --------------------------------------------------------------------------- every generator trains, saves, loads


@pytest.mark.parametrize("name,config", [
    ("gan", {"loss": "bce"}), ("gan", {"loss": "lsgan"}), ("gan", {"loss": "wgan-gp", "n_critic": 2}),
    ("gan", {"conditional": True}), ("vae", {}), ("vae", {"beta": 0.0}), ("vae", {"conditional": True}),
    ("reinforce-generator", {}),
])
def test_each_generator_trains_through_the_loop_and_its_checkpoint_round_trips(tmp_path, name, config):
    conditional = bool(config.get("conditional"))
    e = env(conditional=conditional, batch=8)
    agent = make_agent(name, **config, **CPU)
    log = agent.fit(e, seed=0, budget=3, run_dir=tmp_path / "run", progress=False)
    assert log["curve"].endswith(".png") and (tmp_path / "run" / "tensorboard").is_dir()
    loaded = make_agent(name, **CPU).load(log["checkpoint"], env=e)
    assert loaded.config() == agent.config()
    obs, _ = e.reset(seed=3)
    image, _ = agent.act(obs)
    assert image.shape == (1, 16, 16) and image.dtype == np.float32 and 0 <= image.min() <= image.max() <= 1
    assert np.array_equal(loaded.act(obs)[0], image)
    e.step(image)  # the env accepts what it made


@pytest.mark.gpu
@pytest.mark.parametrize("name,config", [("gan", {"loss": "bce"}), ("gan", {"loss": "wgan-gp"}), ("vae", {}),
                                         ("reinforce-generator", {})])
def test_generators_train_on_cuda_and_their_checkpoints_load_on_the_cpu(tmp_path, name, config):
    e = env(batch=8)
    agent = make_agent(name, **config, device="cuda")
    log = agent.fit(e, seed=0, budget=5, run_dir=tmp_path / "run", progress=False)
    assert log["device"].startswith("cuda")
    on_cpu = make_agent(name, **CPU).load(log["checkpoint"], env=e)
    obs, _ = e.reset(seed=3)
    gpu_image, cpu_image = agent.act(obs)[0], on_cpu.act(obs)[0]
    assert cpu_image.shape == (1, 16, 16) and np.allclose(gpu_image, cpu_image, atol=1e-4)


@pytest.mark.parametrize("name", ["gan", "vae", "reinforce-generator"])
def test_resume_continues_bit_for_bit(tmp_path, name):
    e = env(batch=8)
    whole = make_agent(name, **CPU)
    whole.fit(e, seed=4, budget=4, progress=False)
    half = make_agent(name, **CPU)
    half.fit(e, seed=4, budget=2, run_dir=tmp_path / "a", progress=False)
    resumed = make_agent(name, **CPU)
    resumed.fit(e, seed=4, budget=4, resume=tmp_path / "a" / "checkpoint.npz", progress=False)
    assert resumed.digest() == whole.digest()
    assert np.array_equal(resumed.sample(8, seed=0), whole.sample(8, seed=0))


def test_the_gan_losses_read_as_the_textbook_objectives():
    import torch

    gan = make_agent("gan", loss="lsgan", **CPU)
    gan.fit(env(batch=4), seed=0, budget=1, progress=False)
    D = gan.modules["discriminator"]
    real, fake = torch.rand(4, 1, 16, 16), torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        d_real, d_fake = D(real), D(fake)
        want = 0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake**2).mean()
        assert torch.isclose(gan.d_loss(real, fake, None), want)
        assert torch.isclose(gan.g_loss(fake, None), 0.5 * ((d_fake - 1) ** 2).mean())


# --------------------------------------------------------------------------- bad input


def test_a_checkpoint_of_another_generator_or_other_shapes_is_refused_in_one_line(tmp_path):
    e = env(batch=4)
    gan = make_agent("gan", **CPU)
    gan.fit(e, seed=0, budget=1, run_dir=tmp_path / "gan", progress=False)
    path = tmp_path / "gan" / "checkpoint.npz"
    with pytest.raises(CheckpointError, match="checkpoint of gan, not of vae"):
        make_agent("vae", **CPU).load(path, env=e)
    with pytest.raises(AgentError, match="latent 16.*latent 8") as caught:
        make_agent("gan", **CPU).load(path, env=env(latent=8))
    assert "\n" not in str(caught.value)
    with pytest.raises(AgentError, match="8x8"):
        make_agent("gan", **CPU).load(path, env=env(size=8))


def test_a_conditional_generator_needs_a_conditional_env():
    with pytest.raises(AgentError, match="conditional=true"):
        make_agent("gan", conditional=True, **CPU).fit(env(batch=4), budget=1, progress=False)


def test_generators_refuse_envs_without_images_and_other_agents_refuse_images():
    from arena.registry import check_pairing

    with pytest.raises(ArenaError, match="image"):
        check_pairing("gan", "arena/GridWorld-v0", kwargs={"layout": "cliff"})
    with pytest.raises(ArenaError, match="Discrete"):
        check_pairing("q-learning", ID, kwargs={})


def test_a_non_finite_loss_stops_training_naming_the_component(tmp_path, monkeypatch):
    import torch

    from agents.gan import GANAgent

    monkeypatch.setattr(GANAgent, "d_loss", lambda self, real, fake, y: torch.tensor(float("nan")))
    with pytest.raises(TrainingError, match="d loss became nan in batch 1.*nothing was saved"):
        make_agent("gan", **CPU).fit(env(batch=4), seed=0, budget=3, progress=False)


# --------------------------------------------------------------------------- the targets (2 minutes each on 2 CPU cores)


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """Each generator trained on digits as a suite would run it: name -> (SuiteAgent, Job, Result, log)."""
    folder = tmp_path_factory.mktemp("digits")
    out = {}
    budgets = {"reinforce-generator": 300}  # the others: their defaults, about 2 minutes each on 2 CPU cores
    for name in ("gan", "vae", "reinforce-generator", "real-data", "noise", "cgan"):
        agent = "gan" if name == "cgan" else name
        config = CPU if name not in ("real-data", "noise") else {}
        the_job = job(agent, config, train=budgets.get(name))
        if name == "cgan":  # the class-conditional GAN on the conditional env
            the_job = job(agent, {**config, "conditional": True}, conditional=True)
        result, log = run_job(the_job, folder / "replays", folder / "runs")
        out[name] = (SuiteAgent(agent, name, the_job.agent_config, None), the_job, result, log)
    return out


@pytest.fixture(scope="module")
def digits_results(digits_runs):
    return {name: run[2] for name, run in digits_runs.items()}


@pytest.mark.slow
def test_gan_and_vae_reach_their_digit_targets_covering_every_class(digits_results):
    gan, vae, cgan = digits_results["gan"], digits_results["vae"], digits_results["cgan"]
    assert gan.score >= 0.9 and gan.metrics["classes_covered"] == 10, gan.metrics
    assert vae.score >= 0.8 and vae.metrics["classes_covered"] == 10, vae.metrics
    # the best generator: the conditional GAN, which draws every class equally often (0.972 at seed 0)
    assert cgan.score >= 0.95 and cgan.metrics["classes_covered"] == 10, cgan.metrics
    assert not any(r.metrics["mode_collapse"] for r in (gan, vae, cgan))


@pytest.mark.slow
def test_every_generator_is_judged_by_every_discriminator(digits_runs):
    """Who fools whom: the env's judge and each trained GAN's own D, against every generator."""
    by_env = dict(judge_suite(list(digits_runs.values())))
    assert set(by_env) == {"img:digits", "img:digits conditional=true"}
    plain = by_env["img:digits"]
    assert plain.judges == ["env (frozen judge)", "gan"]
    assert plain.generators == ["gan", "vae", "reinforce-generator", "real-data", "noise"]
    fooled = dict(zip(plain.generators, plain.fooled))
    assert all(0.3 < f < 0.7 for f in fooled["real-data"]), fooled  # no judge tells held-out real images apart
    assert all(f < 0.05 for f in fooled["noise"]), fooled
    rating = plain.ratings
    assert rating["G real-data"] > rating["G gan"] > max(rating["G reinforce-generator"], rating["G noise"])
    conditional = by_env["img:digits conditional=true"]
    assert conditional.judges == ["env (frozen judge)", "cgan"] and conditional.generators == ["cgan"]


@pytest.mark.slow
def test_the_black_box_generator_lands_between_the_references_or_at_the_bottom(digits_results):
    r = {name: res.score for name, res in digits_results.items() if name != "cgan"}
    assert r["reinforce-generator"] < min(r["gan"], r["vae"]) < r["real-data"]
    assert abs(r["noise"]) < 0.05 and 0.9 <= r["real-data"] <= 1.1


@pytest.mark.slow
def test_gan_on_shapes_covers_every_shape(tmp_path):
    result, _ = run_job(Job("gan", ID, {"dataset": "shapes"}, CPU, RunSpec(), 5), tmp_path / "replays", tmp_path / "runs")
    assert result.score >= 0.8 and result.metrics["classes_covered"] == 4, result.metrics


# --------------------------------------------------------------------------- the command line


def test_arena_run_gan_lands_on_the_leaderboard_with_image_scores_and_writes_a_sample_video(workdir):
    import imageio.v2 as imageio
    from typer.testing import CliRunner

    from arena.cli import app
    from arena.leaderboard import Leaderboard

    result = CliRunner().invoke(app, ["run", "gan", "img:digits", "--budget", "30", "--episodes", "5",
                                      "--device", "cpu", "--checkpoint-every", "0.2", "--video", "samples.gif"],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "FID" in result.output and "coverage" in result.output and "video: samples.gif" in result.output
    (row,) = Leaderboard().results()
    assert row.agent == "gan" and {"fid", "inception_score", "coverage", "mode_collapse"} <= set(row.metrics)
    frames = imageio.mimread("samples.gif")
    assert len(frames) >= 3  # a frame per checkpoint (and the last one held)
    replay = CliRunner().invoke(app, ["replay", row.replay_paths[0], "--verify"])
    assert replay.exit_code == 0 and "all 64 steps identical" in replay.output


def test_arena_run_vae_writes_its_latent_interpolation_strip(workdir):
    from typer.testing import CliRunner

    from arena.cli import app

    result = CliRunner().invoke(app, ["run", "vae", "img:digits", "--budget", "10", "--episodes", "1",
                                      "--device", "cpu"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "interpolation: runs/" in result.output and list(workdir.glob("runs/*/interpolation.png"))


@pytest.mark.parametrize("args,word", [
    (["run", "gan", "img:digits", "--video", "samples.avi"], ".mp4 or .gif"),
    (["run", "q-learning", "grid:cliff", "--video", "x.mp4"], "makes no images"),
    (["run", "gan", "img:digits", "--set", "loss=hinge"], "loss"),
    (["run", "gan", "img:faces"], "dataset"),
    (["run", "vae", "img:digits", "latent=0"], "latent"),
])
def test_bad_generator_commands_are_one_line_exit_2(workdir, args, word):
    from typer.testing import CliRunner

    from arena.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and word in result.output and result.output.count("error:") == 1, result.output


@pytest.mark.slow
def test_the_vae_lesson_shows_both_pictures_prior_lines_and_lines_between_encoded_digits(tmp_path):
    """Both decoders are smooth between the codes of real digits (each line starts at a close
    reconstruction of its digit); only the VAE's codes stay near N(0, I), where the env samples
    (measured after 300 batches: mean |mu(x)| 12.5 for the autoencoder, 2.9 for the VAE)."""
    import torch

    from arena.registry import make_agent

    env = gym.make("arena/ImageGeneration-v0")
    norms = {}
    for beta in (0.0, 1.0):
        agent = make_agent("vae", beta=beta, device="cpu")
        agent.fit(env, seed=0, budget=300, progress=False)
        rows = agent.interpolation_rows(steps=6, pairs=3)
        assert rows["prior"].shape == rows["encoded"].shape == (3, 6, 1, 16, 16)
        real = rows["real"]
        start_error = np.mean((rows["encoded"][:, 0] - real[:, 0]) ** 2)
        end_error = np.mean((rows["encoded"][:, -1] - real[:, 1]) ** 2)
        assert start_error < 0.03 and end_error < 0.03  # the lines join reconstructions of the two digits
        with torch.no_grad():
            mu, _ = agent.modules["encoder"].eval()(torch.from_numpy(real.reshape(-1, 1, 16, 16)))
        norms[beta] = float(mu.norm(dim=1).mean())
        assert agent.interpolate(tmp_path / f"beta{beta:g}.png").stat().st_size > 5000
    assert norms[0.0] > 2 * norms[1.0]


@pytest.mark.slow
def test_mode_collapse_on_demand_and_wgan_gp_on_the_same_settings_does_not_collapse():
    """arena/suites/collapse.toml's two entries: the vanilla GAN collapses (one class, every
    image alike), WGAN-GP with the same lr, d_lr, beta1, n_critic and no batch norm keeps all
    classes (measured on seeds 0-3: bce 1 class, distance <= 0.002; wgan-gp 10, 0.25-0.32,
    the real data's 0.29)."""
    import tomllib
    from pathlib import Path

    from arena.registry import make_agent

    suite = tomllib.loads((Path(__file__).parent.parent / "arena" / "suites" / "collapse.toml").read_text())
    env = gym.make("arena/ImageGeneration-v0")
    seen = {}
    for entry in suite["agents"]:
        agent = make_agent(entry["name"], device="cpu", **entry["set"])
        agent.fit(env, seed=0, budget=entry["budget"], progress=False)
        seen[entry["set"]["loss"]] = env.unwrapped.diversity(agent.sample(256, seed=1))
    assert seen["bce"]["mode_collapse"] and seen["bce"]["classes_covered"] <= 2
    assert not seen["wgan-gp"]["mode_collapse"] and seen["wgan-gp"]["classes_covered"] >= 8
