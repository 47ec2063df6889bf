"""Networks and REINFORCE: one interface, memory where the task needs it, checkpoints, bad input."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401
from arena.errors import AgentError
from agents.networks import NetConfig, PolicyNet, resolve_device
from agents.reinforce import ReinforceAgent, TrainingError, reward_to_go
from arena.match import record_episode

SEQ = "arena/SequencePrediction-v0"


def copy_env(length=8):
    return gym.make(SEQ, task="copy", length=length)


def greedy_accuracy(agent, env, episodes=50):
    """Mean token accuracy of greedy play on fresh evaluation seeds 1000, 1001, ..."""
    return float(np.mean([record_episode(agent, env, 1000 + i).episode_return for i in range(episodes)]))


@pytest.mark.parametrize("body", ["mlp", "rnn", "lstm", "transformer"])
def test_stepping_with_state_equals_reading_the_whole_sequence(body):
    """The Transformer's key/value cache and the LSTM's carried state give exactly what a
    pass over the whole episode gives."""
    torch.manual_seed(0)
    env = copy_env(4)
    net = PolicyNet(env.observation_space, env.action_space, NetConfig(body=body, layers=2))
    obs = torch.stack([torch.randint(0, 5, (3,)), torch.randint(0, 2, (3,))], dim=-1).repeat(8, 1, 1)  # (T, B, 2)
    logits, values = net.sequence(obs)
    state, step_logits, step_values = net.initial_state(3), [], []
    for t in range(8):
        dist, v, state = net.step(obs[t], state)
        step_logits.append(dist.logits)
        step_values.append(v)
    torch.testing.assert_close(torch.stack(step_logits), torch.log_softmax(logits, -1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack(step_values), values, atol=1e-5, rtol=1e-5)


def test_cnn_reads_grid_images_and_gaussian_head_for_boxes():
    grid = gym.make("arena/GridWorld-v0", layout="four-rooms", obs="image")
    net = PolicyNet(grid.observation_space, grid.action_space, NetConfig(body="cnn"))
    obs, _ = grid.reset(seed=0)
    dist, value, _ = net.step(torch.as_tensor(obs)[None], None)
    assert dist.probs.shape == (1, 4) and value.shape == (1,)
    box = gym.spaces.Box(-1, 1, (3,))
    gauss = PolicyNet(gym.spaces.Box(-1, 1, (5,)), box, NetConfig(body="mlp"))
    dist, _, _ = gauss.step(torch.zeros(2, 5), None)
    assert dist.sample().shape == (2, 3) and dist.log_prob(torch.zeros(2, 3)).shape == (2,)


def test_reward_to_go_stops_at_the_episode_end():
    r = torch.tensor([[1.0], [0.0], [2.0], [5.0]])
    mask = torch.tensor([[1.0], [1.0], [1.0], [0.0]])  # the 4th step is past the end
    G = reward_to_go(r, mask, gamma=0.5)
    torch.testing.assert_close(G[:, 0], torch.tensor([1.5, 1.0, 2.0, 0.0]))


def test_rollout_masks_everything_after_each_copys_episode_end():
    """No transition across an episode boundary (autoreset step included) reaches the loss."""
    env = gym.make("arena/GridWorld-v0", layout="four-rooms", max_steps=40)
    agent = ReinforceAgent(network="mlp", num_envs=16, episodes=16, device="cpu")
    agent.build(env)
    agent.max_steps = 40
    batch = agent.rollout(agent.batched(env), seed=3)
    lengths = batch.mask.sum(dim=0).numpy()
    assert (lengths >= 1).all() and (lengths <= 40).all()
    for b in range(16):  # mask is 1 for the first episode's steps only, then 0 for good
        column = batch.mask[:, b].numpy()
        assert (column[: int(lengths[b])] == 1).all() and (column[int(lengths[b]):] == 0).all()
    np.testing.assert_allclose(batch.rewards.sum(dim=0).numpy(), batch.returns, atol=1e-6)


@pytest.mark.slow
def test_transformer_learns_to_copy_8_tokens():
    """Budget: at most 640 batches of 64 episodes (stops at a 0.98 batch mean), seed 0."""
    env = copy_env(8)
    agent = ReinforceAgent(network="transformer", episodes=64 * 640, target=0.98, device="cpu")
    agent.fit(env, seed=0)
    assert greedy_accuracy(agent, env) >= 0.95


@pytest.mark.slow
def test_lstm_learns_to_copy_8_tokens():
    """Budget: at most 1600 batches of 64 episodes (stops at 0.98), 2 layers, lr 0.005, seed 0;
    gamma 0 because each answer's reward is its own (per-token credit)."""
    env = copy_env(8)
    agent = ReinforceAgent(network="lstm", layers=2, lr=0.005, gamma=0.0, episodes=64 * 1600, target=0.98, device="cpu")
    agent.fit(env, seed=0)
    assert greedy_accuracy(agent, env) >= 0.95


def test_memoryless_mlp_stays_at_chance_on_copy():
    """The MLP sees a blank in the output phase: accuracy stays near 1/vocab = 0.25."""
    env = copy_env(8)
    agent = ReinforceAgent(network="mlp", episodes=64 * 150, device="cpu")
    agent.fit(env, seed=0)
    assert abs(greedy_accuracy(agent, env, episodes=100) - 0.25) < 0.06


def test_same_seed_same_training_curve_on_cpu():
    curves = []
    for _ in range(2):
        agent = ReinforceAgent(network="lstm", episodes=64 * 15, device="cpu")
        agent.fit(copy_env(4), seed=7)
        curves.append(agent.log.returns)
    assert curves[0] == curves[1]


def test_checkpoint_round_trip_and_resume_continue_the_same_run(tmp_path):
    env = copy_env(4)
    straight = ReinforceAgent(network="transformer", episodes=64 * 20, device="cpu")
    straight.fit(env, seed=1)
    first = ReinforceAgent(network="transformer", episodes=64 * 10, device="cpu")
    first.fit(env, seed=1, run_dir=tmp_path)
    ckpt = first.save(tmp_path / "half.npz")
    resumed = ReinforceAgent(network="transformer", num_envs=8, device="cpu")  # the checkpoint's settings win
    resumed.fit(env, seed=1, resume=ckpt, budget=64 * 20)
    assert resumed.settings.num_envs == 64
    assert resumed.updates_done == 20
    for a, b in zip(resumed.net.state_dict().values(), straight.net.state_dict().values()):
        torch.testing.assert_close(a, b)
    loaded = ReinforceAgent(network="transformer", device="cpu").load(ckpt, env=env)
    assert loaded.digest() == first.digest()


# --------------------------------------------------------------------------- bad input


def test_a_network_that_does_not_fit_the_spaces_is_refused():
    with pytest.raises(AgentError, match="the cnn reads image observations .* for a grid use obs=image"):
        ReinforceAgent(network="cnn", device="cpu").build(gym.make("arena/GridWorld-v0", layout="cliff"))
    with pytest.raises(AgentError, match="for image observations use the cnn"):
        ReinforceAgent(network="lstm", device="cpu").build(gym.make("arena/GridWorld-v0", layout="cliff", obs="image"))
    with pytest.raises(AgentError, match="^network must be one of mlp, cnn, rnn, lstm, transformer, got 'gru'$"):
        ReinforceAgent(network="gru")


def test_a_checkpoint_of_another_network_or_a_corrupt_one_is_refused(tmp_path):
    env = copy_env(4)
    lstm = ReinforceAgent(network="lstm", episodes=64, device="cpu")
    lstm.fit(env, seed=0)
    path = lstm.save(tmp_path / "lstm.npz")
    with pytest.raises(AgentError, match="is a checkpoint of reinforce-lstm, not of reinforce-transformer"):
        ReinforceAgent(network="transformer", device="cpu").load(path, env=env)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(path.read_bytes()[:300])
    with pytest.raises(AgentError, match="truncated or corrupt"):
        ReinforceAgent(network="lstm", device="cpu").load(bad, env=env)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when there is no GPU")
def test_device_cuda_without_a_gpu_is_one_clear_error():
    with pytest.raises(AgentError, match="no CUDA GPU is available here; use --device auto or --device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    env = copy_env(4)
    agent = ReinforceAgent(network="mlp", episodes=64 * 6, device="cpu")
    original = agent.rollout
    calls = {"n": 0}

    def poisoned(venv, seed):
        batch = original(venv, seed)
        calls["n"] += 1
        if calls["n"] == 5:
            batch.rewards[0, 0] = float("nan")
        return batch

    monkeypatch.setattr(agent, "rollout", poisoned)
    with pytest.raises(TrainingError, match=r"reinforce-mlp: the (policy|value) loss became nan in batch 5; .*"
                                            r"the last good state \(after 4 batches\) is saved"):
        agent.fit(env, seed=0, run_dir=tmp_path, checkpoint_every=1e9)
    good = ReinforceAgent(network="mlp", device="cpu").load(tmp_path / "checkpoint.npz", env=env)
    assert good.updates_done == 4
    assert all(torch.isfinite(p).all() for p in good.net.parameters())


@pytest.mark.gpu
def test_gpu_forward_matches_cpu_and_a_short_training_runs_on_gpu():
    torch.manual_seed(0)
    env = copy_env(4)
    for body in ("mlp", "lstm", "transformer"):
        net = PolicyNet(env.observation_space, env.action_space, NetConfig(body=body))
        obs = torch.randint(0, 2, (6, 4, 2))
        cpu_logits, _ = net.sequence(obs)
        gpu_logits, _ = net.to("cuda").sequence(obs.to("cuda"))
        torch.testing.assert_close(gpu_logits.cpu(), cpu_logits, atol=1e-4, rtol=1e-4)
    agent = ReinforceAgent(network="transformer", episodes=64 * 5, device="cuda")
    log = agent.fit(env, seed=0)
    assert log["device"].startswith("cuda") and log["updates"] == 5


@pytest.mark.slow
def test_cnn_reads_four_rooms_from_pixels_and_solves_it():
    """Budget: 200 batches of 64 episodes, gamma 0.99, seed 0; exact normalised score of the
    greedy policy (the CNN acts on each state's image) >= 0.95."""
    from arena.scoring import exact_score

    env = gym.make("arena/GridWorld-v0", layout="four-rooms", obs="image")
    agent = ReinforceAgent(network="cnn", gamma=0.99, episodes=64 * 200, device="cpu")
    agent.fit(env, seed=0)
    assert exact_score(agent, env).score >= 0.95
