"""Seeing inside the networks: what a policy attends to, and what its memory holds.

Everything here re-runs a trained network on one episode's observations (a replay's, re-
simulated from its seed and actions), so it works on any replay, old ones included, and
gives the same pictures every time:

- `attention_map(net, obs)`: a Transformer policy's attention weights, (layers, heads, T, T);
  row t is what step t attends to, zero above the diagonal (a step sees only the past);
- `lstm_gates(net, obs)`: an LSTM's input, forget and output gates (in [0, 1]) and its cell
  state, each (layers, T, H): i_t = sigma(W_i [x_t, h_{t-1}] + b_i), likewise f_t and o_t;
  c_t = f_t c_{t-1} + i_t tanh(W_g [x_t, h_{t-1}] + b_g); h_t = o_t tanh(c_t);
- `rnn_states(net, obs)`: a plain RNN's hidden state h_t = tanh(W_x x_t + W_h h_{t-1} + b), (layers, T, H).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import torch

from agents.networks import CausalSelfAttention, LSTMBody, PolicyNet, RNNBody, TransformerBody
from arena.errors import AgentError


def _features(net: PolicyNet, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One episode's observations (T, ...) as the body's input (T, 1, F)."""
    x = torch.as_tensor(np.asarray(obs))
    device = next(net.parameters()).device
    return net.encoder(x.to(device)).reshape(x.shape[0], 1, -1)


class AttentionRecorder:
    """`with AttentionRecorder(net) as rec:` every attention layer of `net` keeps its weights;
    afterwards `rec.weights[layer]` lists them, one (B, heads, new steps, all steps) tensor per call."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.layers = [m for m in net.modules() if isinstance(m, CausalSelfAttention)]
        self.weights: list[list[torch.Tensor]] = []

    def __enter__(self) -> "AttentionRecorder":
        for layer in self.layers:
            layer.record = []
        return self

    def __exit__(self, *exc: Any) -> None:
        self.weights = [layer.record or [] for layer in self.layers]
        for layer in self.layers:
            layer.record = None


def attention_map(net: PolicyNet, obs: np.ndarray | torch.Tensor) -> np.ndarray:
    """Attention weights (layers, heads, T, T) of a Transformer policy over one episode."""
    if not isinstance(net.body, TransformerBody):
        raise AgentError(f"attention weights need a Transformer policy; this one is a {net.cfg.body}")
    x = _features(net, obs)
    with torch.no_grad(), AttentionRecorder(net) as rec:
        net.body(x, net.body.initial_state(1, x.device))
    return np.stack([w[0][0].cpu().numpy() for w in rec.weights]).astype(np.float64)


def lstm_gates(net: PolicyNet, obs: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
    """The LSTM's gates and states over one episode, each (layers, T, H): `input`, `forget`,
    `output` (in [0, 1]), `cell` (c_t) and `hidden` (h_t), written out step by step from
    nn.LSTM's weights (its gate order: i, f, g, o)."""
    if not isinstance(net.body, LSTMBody):
        raise AgentError(f"gate activations need an LSTM policy; this one is a {net.cfg.body}")
    body, lstm = net.body, net.body.lstm
    H = lstm.hidden_size
    with torch.no_grad():
        x = torch.tanh(body.embed(_features(net, obs)))  # (T, 1, H): what the first layer reads
        table = np.empty((lstm.num_layers, x.shape[0], 5 * H))  # per layer: i, f, o, c, h
        zero = torch.zeros(1, 1, H, device=x.device)
        for layer in range(lstm.num_layers):
            W_ih, W_hh, b_ih, b_hh = (getattr(lstm, f"{w}_l{layer}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            h = torch.lstm(x, (zero, zero), [W_ih, W_hh, b_ih, b_hh], True, 1, 0.0, False, False, False)[0][:, 0]
            h_before = torch.cat((zero[0], h[:-1]))  # h_{t-1}, h_{-1} = 0
            a = torch.addmm(b_ih + b_hh, x[:, 0], W_ih.T).addmm_(h_before, W_hh.T)  # W_ih x_t + W_hh h_{t-1} + b
            _gates(a.cpu().numpy(), h.cpu().numpy(), table[layer])
            x = h[:, None]
    return {name: table[:, :, k * H:(k + 1) * H] for k, name in enumerate(("input", "forget", "output", "cell", "hidden"))}


@numba.njit(cache=True)
def _gates(a: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """One layer's row of `lstm_gates` from its pre-activations a (T, 4H, nn.LSTM's order i, f,
    g, o) and nn.LSTM's own h (T, H): out[t] = i_t, f_t, o_t, c_t = f_t c_{t-1} + i_t g_t, h_t."""
    T, H = h.shape
    for j in range(H):
        c = 0.0
        for t in range(T):
            i = 1.0 / (1.0 + np.exp(-a[t, j]))
            f = 1.0 / (1.0 + np.exp(-a[t, H + j]))
            g = np.tanh(a[t, 2 * H + j])
            o = 1.0 / (1.0 + np.exp(-a[t, 3 * H + j]))
            c = f * c + i * g
            out[t, j], out[t, H + j], out[t, 2 * H + j], out[t, 3 * H + j], out[t, 4 * H + j] = i, f, o, c, h[t, j]


def rnn_states(net: PolicyNet, obs: np.ndarray | torch.Tensor) -> np.ndarray:
    """A plain RNN's hidden states over one episode, (layers, T, H), each in [-1, 1]."""
    if not isinstance(net.body, RNNBody):
        raise AgentError(f"hidden states of a plain RNN need an rnn policy; this one is a {net.cfg.body}")
    body, rnn = net.body, net.body.rnn
    states = []
    with torch.no_grad():
        layer_in = torch.tanh(body.embed(_features(net, obs)))  # (T, 1, H)
        for layer in range(rnn.num_layers):
            W_ih, W_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
            b = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
            h = torch.zeros(rnn.hidden_size, device=layer_in.device)
            rows = []
            for x_t in layer_in[:, 0]:
                h = torch.tanh(W_ih @ x_t + W_hh @ h + b)  # h_t = tanh(W_x x_t + W_h h_{t-1} + b)
                rows.append(h)
            states.append(torch.stack(rows).cpu().numpy())
            layer_in = torch.stack(rows)[:, None]
    return np.stack(states).astype(np.float64)


__all__ = ["AttentionRecorder", "attention_map", "lstm_gates", "rnn_states"]
