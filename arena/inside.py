"""`arena replay FILE --inside PICTURE.png`: the inside of the network that played an episode.

The network comes from its checkpoint (by default runs/<the replay's folder>/checkpoint.npz,
where `arena run` left it), is checked to be the one that played (the replay names its
digest), and is re-run on the episode's observations, re-simulated from the replay's seed
and actions (agents/inside.py). The picture:

- a Transformer: every layer's and head's attention weights as small heatmaps (the
  overview a reader finds heads in), and the most focused head enlarged, the episode's
  tokens on both axes;
- an LSTM: per layer, its input, forget and output gates and its cell state as heat strips
  (steps down, units across), units sorted by how long their forget gate stays open, so the
  units that hold the memory stand out;
- a plain RNN: its hidden state per layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from arena.errors import ViewerError
from arena.replay import Replay, resimulate
from envs.abilities import ShowsTokens


def default_checkpoint(replay_path: Path) -> Path:
    """Where `arena run` left the checkpoint of the run that recorded `replay_path`."""
    return Path("runs") / replay_path.resolve().parent.name / "checkpoint.npz"


def observations(replay: Replay) -> tuple[np.ndarray, list[str]]:
    """The observation before each action (T, ...) and a short label per step (the token shown)."""
    obs, labels = [], []
    for env, frame in resimulate(replay):
        if frame.step < replay.steps:
            obs.append(np.asarray(frame.obs))
            u = env.unwrapped
            shown = np.asarray(frame.obs).ravel()
            text = u.token_text(int(shown[0])) if isinstance(u, ShowsTokens) else str(frame.step)
            labels.append(text)
    return np.stack(obs), labels


def write_inside(replay: Replay, replay_path: Path, picture: Path, checkpoint: Path | None = None) -> str:
    """Draw the inside of the replay's network to `picture` (.png); returns what it drew."""
    from agents.checkpoint import new_file, write_atomically

    picture = new_file(picture, "the picture", (".png",))
    png, what = inside_png(replay, replay_path, checkpoint)
    write_atomically(picture, lambda tmp: tmp.write_bytes(png))
    return what


def inside_png(replay: Replay, replay_path: Path, checkpoint: Path | None = None) -> tuple[bytes, str]:
    """The picture of the inside of the replay's network (PNG bytes), and what it shows."""
    from agents.reinforce import ReinforceAgent
    from arena.registry import make_agent, make_env

    checkpoint = checkpoint or default_checkpoint(replay_path)
    if not checkpoint.is_file():
        raise ViewerError(f"the network that played {replay_path.name} is not at {checkpoint}; give it with "
                          "--checkpoint runs/<run>/checkpoint.npz")
    agent = make_agent(replay.agent)
    if not isinstance(agent, ReinforceAgent):
        raise ViewerError(f"--inside draws REINFORCE policies' networks (rnn, lstm, transformer); {replay.agent} has none")
    env = make_env(replay.env_id, replay.env_kwargs)
    agent.load(checkpoint, env=env)
    if replay.checkpoint and agent.digest() != replay.checkpoint:
        raise ViewerError(f"{checkpoint} is not the network that played this replay (its weights differ); give the "
                          "run's own checkpoint with --checkpoint")
    obs, labels = observations(replay)
    body = agent.net_cfg.body
    fig = {"transformer": _attention_figure, "lstm": _gates_figure, "rnn": _states_figure}.get(body)
    if fig is None:
        raise ViewerError(f"--inside draws rnn, lstm and transformer policies; this one is an {body} (no memory to show)")
    return fig(agent.net, obs, labels, replay)  # type: ignore[no-any-return]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    return buf.getvalue()


def focus(A: np.ndarray) -> np.ndarray:
    """Per layer and head, the mean of each row's largest weight: 1 for a head that always looks at one step."""
    return A.max(axis=-1).mean(axis=-1)  # type: ignore[no-any-return]


def _attention_figure(net: Any, obs: np.ndarray, labels: list[str], replay: Replay) -> tuple[bytes, str]:
    from agents.inside import attention_map

    A = attention_map(net, obs)  # (layers, heads, T, T)
    L, H, T, _ = A.shape
    plt = _pyplot()
    with plt.rc_context({"text.parse_math": False}):
        fig = plt.figure(figsize=(7 + 1.8 * H, max(5.0, 1.8 * L + 1.5)), layout="constrained")
        grid = fig.add_gridspec(L, H + 4)
        for layer in range(L):
            for head in range(H):
                ax = fig.add_subplot(grid[layer, head])
                ax.imshow(A[layer, head], cmap="viridis", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"layer {layer + 1} head {head + 1}", fontsize=7)
        best_layer, best_head = (int(i) for i in np.unravel_index(int(focus(A).argmax()), (L, H)))
        big = fig.add_subplot(grid[:, H:])
        im = big.imshow(A[best_layer, best_head], cmap="viridis", vmin=0, vmax=1)
        big.set_xticks(range(T), labels, fontsize=7)
        big.set_yticks(range(T), labels, fontsize=7)
        big.set_xlabel("attends to (step's token)")
        big.set_ylabel("at step (token shown)")
        big.set_title(f"layer {best_layer + 1} head {best_head + 1}, the most focused")
        fig.colorbar(im, ax=big, fraction=0.04)
        fig.suptitle(f"{replay.agent}: attention weights of one episode\n(row: a step, what it attends to; "
                     "zero above the diagonal)", fontsize=10)
        return _png(fig), f"attention weights: {L} layers x {H} heads over {T} steps"


def _gates_figure(net: Any, obs: np.ndarray, labels: list[str], replay: Replay) -> tuple[bytes, str]:
    from agents.inside import lstm_gates

    gates = lstm_gates(net, obs)
    L, T, Hn = gates["forget"].shape
    plt = _pyplot()
    names = ("input", "forget", "output", "cell")
    fig, axes = plt.subplots(L, 4, figsize=(12, 0.25 * T * L + 2), squeeze=False)
    for layer in range(L):
        order = np.argsort(-gates["forget"][layer].mean(axis=0))  # the longest-open forget gates first
        for col, name in enumerate(names):
            ax = axes[layer, col]
            values = gates[name][layer][:, order]
            im = ax.imshow(np.tanh(values) if name == "cell" else values, aspect="auto", cmap="magma" if name != "cell"
                           else "coolwarm", vmin=0 if name != "cell" else -1, vmax=1)
            ax.set_title(f"layer {layer + 1}: {'tanh(cell)' if name == 'cell' else name + ' gate'}", fontsize=9)
            ax.set_yticks(range(T), labels, fontsize=6)
            ax.set_xlabel("units (by mean forget gate)", fontsize=8)
            fig.colorbar(im, ax=ax, fraction=0.05)
    fig.suptitle(f"{replay.agent}: gates of one episode (steps down, units across)")
    fig.tight_layout()
    return _png(fig), f"LSTM gates: {L} layers x {Hn} units over {T} steps"


def _states_figure(net: Any, obs: np.ndarray, labels: list[str], replay: Replay) -> tuple[bytes, str]:
    from agents.inside import rnn_states

    h = rnn_states(net, obs)
    L, T, Hn = h.shape
    plt = _pyplot()
    fig, axes = plt.subplots(1, L, figsize=(5 * L, 0.25 * T + 2), squeeze=False)
    for layer in range(L):
        ax = axes[0, layer]
        im = ax.imshow(h[layer], aspect="auto", cmap="coolwarm", vmin=-1, vmax=1)
        ax.set_title(f"layer {layer + 1}: hidden state h_t")
        ax.set_yticks(range(T), labels, fontsize=6)
        ax.set_xlabel("units")
        fig.colorbar(im, ax=ax, fraction=0.05)
    fig.suptitle(f"{replay.agent}: plain RNN state of one episode")
    fig.tight_layout()
    return _png(fig), f"RNN hidden states: {L} layers x {Hn} units over {T} steps"


__all__ = ["default_checkpoint", "focus", "inside_png", "observations", "write_inside"]
