"""The settings of the neural agents (REINFORCE, the black-box generator, GAN, VAE), each a
typed dataclass (arena/settings.py), in a module that imports no network library: the
command line checks `--set` against them before it spends seconds loading PyTorch. The
agents' own modules import them from here."""

from __future__ import annotations

from dataclasses import dataclass

from arena.settings import device_setting, setting

BODIES = ("mlp", "cnn", "rnn", "lstm", "transformer")


@dataclass(frozen=True)
class ReinforceSettings:
    """REINFORCE's settings; `network` is fixed by the agent's name (reinforce-<network>)."""

    network: str = setting("lstm", help="policy body", choices=tuple(BODIES))
    hidden: int = setting(64, help="width of the hidden layers", low=1, high=4096)
    layers: int = setting(1, help="hidden layers (RNN / LSTM layers, Transformer blocks)", low=1, high=16)
    heads: int = setting(2, help="attention heads (Transformer; hidden must be divisible by it)", low=1, high=64)
    lr: float = setting(3e-3, help="Adam learning rate", low=0.0, high=1.0, low_open=True)
    gamma: float = setting(0.9, help="discount factor gamma", low=0.0, high=1.0)
    entropy: float = setting(0.01, help="entropy bonus weight c_H", low=0.0, high=10.0)
    value_coef: float = setting(0.5, help="baseline loss weight c_v", low=0.0, high=10.0)
    max_grad_norm: float = setting(1.0, help="gradient norm clip", low=0.0, high=1e6, low_open=True)
    num_envs: int = setting(64, help="episodes per batch (batched env copies)", low=1, high=65536)
    episodes: int = setting(64 * 300, help="training budget in episodes (rounded up to whole batches)",
                            low=1, high=10**9)
    target: float | None = setting(None, help="stop once a batch's mean return reaches this (null: never)")
    normalize: bool = setting(False, help="standardise advantages per batch")
    log_grad_norm: bool = setting(False, help="log the gradient norm reaching each time step (recurrent networks: "
                                  "how far back the loss's gradient flows)")
    device: str = device_setting()


@dataclass(frozen=True)
class ReinforceGeneratorSettings:
    """The black-box generator's settings."""

    hidden: int = setting(128, help="width of the policy's hidden layer", low=1, high=8192)
    lr: float = setting(3e-3, help="Adam learning rate", low=0.0, high=1.0, low_open=True)
    sigma: float = setting(0.15, help="initial pixel noise sigma of the Gaussian policy (learned)", low=1e-4, high=1.0)
    baseline_rate: float = setting(0.05, help="step size of the running-mean reward baseline b", low=0.0, high=1.0,
                                   low_open=True)
    updates: int = setting(1000, help="training budget in episodes (one update each)", low=1, high=10**8)
    device: str = device_setting()


LOSSES = ("bce", "wgan-gp", "lsgan")


@dataclass(frozen=True)
class GANSettings:
    """The GAN's settings."""

    loss: str = setting("bce", help="bce (minimax), lsgan (least squares) or wgan-gp (Wasserstein + penalty)",
                        choices=LOSSES)
    conditional: bool = setting(False, help="condition G and D on the class (the env must be conditional)")
    hidden: int = setting(64, help="channels of the first conv layer (the second has twice as many)", low=4, high=1024)
    lr: float = setting(5e-4, help="Adam learning rate (G, and D unless d_lr)", low=0.0, high=1.0, low_open=True)
    d_lr: float | None = setting(None, help="D's own learning rate (null: lr)", low=0.0, high=1.0, low_open=True)
    lr_decay: bool = setting(False, help="decay the learning rate linearly to 0 over the budget")
    beta1: float = setting(0.5, help="Adam beta1 (DCGAN: 0.5)", low=0.0, high=1.0, high_open=True)
    batch_norm: bool = setting(True, help="batch norm in G and (bce, lsgan) in D; false: none, so D cannot tell a "
                               "collapsed batch by its statistics (arena tournament collapse)")
    batch_size: int = setting(64, help="real and fake images per step", low=2, high=4096)
    updates: int = setting(1200, help="training budget in batches (1200: about 2 minutes on 2 CPU cores)", low=1,
                          high=10**8)
    n_critic: int = setting(1, help="D steps per G step (wgan-gp: 5 is usual)", low=1, high=100)
    gp: float = setting(10.0, help="gradient penalty weight lambda (wgan-gp)", low=0.0, high=1e4)
    ema: float = setting(0.0, help="decay of an averaged generator that plays instead (0: play the last weights)",
                         low=0.0, high=1.0, high_open=True)
    device: str = device_setting()


@dataclass(frozen=True)
class VAESettings:
    """The VAE's settings."""

    beta: float = setting(1.0, help="weight of the KL term (1: VAE; 0: plain autoencoder)", low=0.0, high=1e3)
    conditional: bool = setting(False, help="condition encoder and decoder on the class (the env must be conditional)")
    hidden: int = setting(32, help="channels of the first conv layer (the second has twice as many)", low=4, high=1024)
    lr: float = setting(2e-3, help="Adam learning rate", low=0.0, high=1.0, low_open=True)
    lr_decay: bool = setting(False, help="decay the learning rate linearly to 0 over the budget")
    batch_size: int = setting(64, help="images per step", low=2, high=4096)
    updates: int = setting(4000, help="training budget in batches (4000: about 2 minutes on 2 CPU cores)", low=1,
                          high=10**8)
    device: str = device_setting()


@dataclass(frozen=True)
class TransformerSize:
    """The size of a language-model agent's Transformer, declared once for stage 1 and stage 2."""

    hidden: int = setting(64, help="width of the Transformer", low=4, high=1024)
    layers: int = setting(2, help="Transformer blocks", low=1, high=16)
    heads: int = setting(4, help="attention heads (hidden must be divisible by it)", low=1, high=64)


@dataclass(frozen=True)
class LMSettings(TransformerSize):
    """Stage 1, supervised: a small Transformer language model trained on demonstrations."""

    lr: float = setting(3e-3, help="Adam learning rate", low=0.0, high=1.0, low_open=True)
    batch_size: int = setting(64, help="demonstrations per update", low=1, high=4096)
    updates: int = setting(150, help="training budget in updates (batches of demonstrations)", low=1, high=10**8)
    demo_noise: float = setting(0.4, help="share of demonstrations with one mistake (demonstrators err)", low=0.0,
                                high=1.0)
    temperature: float = setting(1.0, help="sampling temperature when it plays (0: always the likeliest token)",
                                 low=0.0, high=10.0)
    device: str = device_setting()


@dataclass(frozen=True)
class RewardModelSettings(TransformerSize):
    """Stage 2: a Transformer with a scalar head, fitted to preference pairs (Bradley-Terry)."""

    lr: float = setting(1e-3, help="Adam learning rate", low=0.0, high=1.0, low_open=True)
    batch_size: int = setting(64, help="preference pairs per update", low=1, high=4096)
    updates: int = setting(1500, help="training budget in updates (batches of pairs)", low=1, high=10**8)
    pairs: int = setting(4000, help="labelled preference pairs to learn from (a fixed data set)", low=2, high=10**6)
    heldout: int = setting(1000, help="labelled pairs kept aside to measure pairwise accuracy", low=1, high=10**6)
    noise: float = setting(0.0, help="share of labels flipped (labellers disagree)", low=0.0, high=0.5)
    sft: str | None = setting(None, help="a stage-1 (lm) checkpoint whose samples are labelled (null: the task's "
                              "edited answers)")
    device: str = device_setting()


@dataclass(frozen=True)
class RLHFSettings:
    """Stage 3: REINFORCE with a leave-one-out baseline against the reward model, minus beta KL."""

    sft: str | None = setting(None, help="the stage-1 (lm) checkpoint to start from and stay near (null: train one)")
    reward_model: str | None = setting(None, help="the reward-model checkpoint to maximise (null: train one)")
    beta: float = setting(0.5, help="weight of the KL penalty from the stage-1 model (0: none)", low=0.0, high=100.0)
    k: int = setting(4, help="responses sampled per prompt (the leave-one-out baseline needs 2 or more)", low=2,
                     high=256)
    prompts: int = setting(16, help="prompts per update", low=1, high=4096)
    lr: float = setting(3e-4, help="Adam learning rate", low=0.0, high=1.0, low_open=True)
    updates: int = setting(300, help="training budget in updates", low=1, high=10**8)
    max_grad_norm: float = setting(1.0, help="gradient norm clip", low=0.0, high=1e6, low_open=True)
    temperature: float = setting(1.0, help="sampling temperature when it plays (0: always the likeliest token)",
                                 low=0.0, high=10.0)
    device: str = device_setting()


@dataclass(frozen=True)
class BestOfNSettings:
    """Best-of-n: n samples from the stage-1 model, the one the reward model scores highest."""

    n: int = setting(4, help="responses sampled per prompt", low=1, high=4096)
    sft: str | None = setting(None, help="the stage-1 (lm) checkpoint to sample from (null: train one)")
    reward_model: str | None = setting(None, help="the reward-model checkpoint that picks (null: train one)")
    device: str = device_setting()


@dataclass(frozen=True)
class GoldBestSettings:
    """gold-best reads the task's hidden rule; it has only a device, where its answers are
    made (none of its work needs one)."""

    device: str = device_setting()


__all__ = ["BODIES", "BestOfNSettings", "GoldBestSettings", "TransformerSize", "GANSettings", "LMSettings", "LOSSES", "RLHFSettings", "ReinforceGeneratorSettings",
           "ReinforceSettings", "RewardModelSettings", "VAESettings"]
