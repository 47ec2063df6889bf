"""Dynamic programming on a known model: policy evaluation, policy iteration, value iteration.

Sutton & Barto, chapter 4. Every function takes the model as compact successor tables
(`mdp.next_state[s, a, k]`, `mdp.prob[s, a, k]`, `mdp.R[s, a]`, `mdp.terminal[s]`), so the
same code solves a 4x4 frozen lake and a 256x256 maze. A policy is an (S, A) array of
action probabilities; an (S,) array of actions is accepted as a deterministic policy.

value_iteration and policy_iteration return a `Solution`, which unpacks as (V, policy)
and also carries how many sweeps (or improvement steps) it took and the final Bellman
residual.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Literal, Protocol

import numba
import gymnasium as gym
import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as splinalg

from agents.tabular import TabularAgent
from agents.training import env_ref
from arena.errors import AgentError
from envs.abilities import HasModel
from envs.grid import check_model as check_arrays


class DPError(AgentError):
    """Dynamic programming was asked something it cannot answer (bad gamma, policy, model)."""


class TabularMDP(Protocol):
    """What DP reads from a model; envs.grid.GridMDP is one."""

    next_state: np.ndarray  # (S, A, K) int
    prob: np.ndarray  # (S, A, K) float, sums to 1 over k
    terminal: np.ndarray  # (S,) bool

    @property
    def R(self) -> np.ndarray: ...  # (S, A) expected reward


class Solution(tuple):
    """(V, policy) with how the solver got there: sweeps, residual, seconds."""

    V: np.ndarray
    policy: np.ndarray
    sweeps: int
    residual: float
    seconds: float

    backups: int  # state backups done (value iteration passes over settled blocks: fewer than sweeps x states)

    def __new__(cls, V: np.ndarray, policy: np.ndarray, sweeps: int, residual: float, seconds: float,
                backups: int = 0):
        self = super().__new__(cls, (V, policy))
        self.V, self.policy = V, policy
        self.sweeps, self.residual, self.seconds, self.backups = sweeps, residual, seconds, backups
        return self


# --------------------------------------------------------------------------- checks


def check_gamma(gamma: float) -> float:
    if not 0.0 <= gamma <= 1.0:
        raise DPError(f"gamma={gamma} is out of range; use a discount in [0, 1]")
    return float(gamma)


def check_model(mdp: Any) -> None:
    """The model DP reads, or one DPError line naming the array that is missing or wrong (envs.grid.check_model)."""
    if not isinstance(mdp, _UnitCost):
        check_arrays(mdp, DPError)


def as_policy_matrix(policy: np.ndarray, n_states: int, n_actions: int) -> np.ndarray:
    """An (S, A) matrix of action probabilities from an (S, A) matrix or (S,) actions."""
    pi = np.asarray(policy)
    if pi.ndim == 1 and pi.shape[0] == n_states:
        if not np.issubdtype(pi.dtype, np.integer) or pi.min() < 0 or pi.max() >= n_actions:
            raise DPError(f"a deterministic policy must hold integer actions in 0..{n_actions - 1}")
        return np.eye(n_actions)[pi]
    if pi.shape != (n_states, n_actions):
        raise DPError(
            f"policy has shape {pi.shape}; use ({n_states}, {n_actions}) probabilities or ({n_states},) actions"
        )
    pi = pi.astype(float)
    if (pi < 0).any() or not np.allclose(pi.sum(axis=1), 1.0, atol=1e-8):
        bad = int(np.argmax(np.abs(pi.sum(axis=1) - 1.0)))
        raise DPError(
            f"policy row {bad} sums to {pi[bad].sum():.6g}; each row must be probabilities summing to 1"
        )
    return pi


# --------------------------------------------------------------------------- Bellman backups


def q_values(mdp: TabularMDP, V: np.ndarray, gamma: float) -> np.ndarray:
    """Q(s, a) = R(s, a) + gamma * sum_k p(s'_k | s, a) V(s'_k), for all s, a at once."""
    return mdp.R + gamma * (mdp.prob * V[mdp.next_state]).sum(axis=-1)


def bellman_residual(mdp: TabularMDP, V: np.ndarray, gamma: float) -> float:
    """max_s |max_a Q(s, a) - V(s)| over non-terminal states: 0 exactly at V*."""
    backup = np.where(mdp.terminal, 0.0, q_values(mdp, V, gamma).max(axis=1))
    return float(np.abs(backup - V).max(initial=0.0))


def greedy_policy(mdp: TabularMDP, V: np.ndarray, gamma: float) -> np.ndarray:
    """pi(s) = argmax_a Q(s, a) as an (S, A) one-hot matrix (ties to the lowest action)."""
    Q = q_values(mdp, V, gamma)
    return np.eye(Q.shape[1])[Q.argmax(axis=1)]


# --------------------------------------------------------------------------- policy evaluation


def policy_model(mdp: TabularMDP, pi: np.ndarray) -> tuple[np.ndarray, sparse.csr_matrix]:
    """The Markov chain a policy makes of the MDP: R_pi (S,) and sparse P_pi (S, S).

    R_pi(s) = sum_a pi(a|s) R(s, a);  P_pi[s, s'] = sum_a pi(a|s) p(s'|s, a); both are
    zero at terminal states, where the episode has ended.
    """
    S, A, K = mdp.next_state.shape
    R_pi = np.where(mdp.terminal, 0.0, (pi * mdp.R).sum(axis=1))
    weights = (pi[:, :, None] * mdp.prob) * ~mdp.terminal[:, None, None]
    rows = np.broadcast_to(np.arange(S)[:, None, None], (S, A, K))
    P_pi = sparse.csr_matrix((weights.ravel(), (rows.ravel(), mdp.next_state.ravel())), shape=(S, S))
    P_pi.eliminate_zeros()  # an edge in P_pi means a move that can happen
    return R_pi, P_pi


def _reaches_terminal(P_pi: sparse.csr_matrix, terminal: np.ndarray) -> np.ndarray:
    """States from which a terminal state is reached with positive probability under P_pi."""
    incoming = P_pi.T.tocsr()
    seen = terminal.copy()
    queue = deque(np.flatnonzero(terminal).tolist())
    while queue:
        s = queue.popleft()
        for s_prev in incoming.indices[incoming.indptr[s] : incoming.indptr[s + 1]]:
            if not seen[s_prev]:
                seen[s_prev] = True
                queue.append(int(s_prev))
    return seen


def policy_evaluation(
    mdp: TabularMDP,
    policy: np.ndarray,
    gamma: float,
    tol: float = 1e-10,
    method: Literal["solve", "sweep"] = "solve",
    max_sweeps: int = 100_000,
) -> np.ndarray:
    """V_pi as an (S,) array: the expected discounted return from each state under pi.

    method="sweep" is iterative policy evaluation (S&B 4.1), stopping when no value moves
    by more than tol; method="solve" solves the Bellman equation V = R_pi + gamma P_pi V
    exactly as a sparse linear system. With gamma = 1, states that can never reach a
    terminal state are worth 0 if the policy earns nothing there, else an error.
    """
    gamma = check_gamma(gamma)
    check_model(mdp)
    S, A, _ = mdp.next_state.shape
    pi = as_policy_matrix(policy, S, A)
    R_pi, P_pi = policy_model(mdp, pi)

    live = np.ones(S, dtype=bool)
    if gamma == 1.0:
        live = _reaches_terminal(P_pi, mdp.terminal)
        stuck = np.flatnonzero(~live)
        if len(stuck) and np.abs(R_pi[stuck]).max() > 0:
            raise DPError(
                f"with gamma=1 the policy never reaches a terminal state from state {stuck[0]} "
                f"(and {len(stuck) - 1} others) and keeps earning reward there, so its value is "
                "infinite; use gamma < 1 or a policy that terminates"
            )

    if method == "solve":
        V = np.zeros(S)
        idx = np.flatnonzero(live)
        A_mat = sparse.identity(len(idx), format="csc") - gamma * P_pi[idx][:, idx].tocsc()
        V[idx] = splinalg.spsolve(A_mat, R_pi[idx])
        return V
    if method != "sweep":
        raise DPError(f"unknown method {method!r}; use 'solve' or 'sweep'")
    V = np.zeros(S)
    for _ in range(max_sweeps):
        V_new = R_pi + gamma * (P_pi @ V)  # V(s) <- sum_a pi(a|s) [R(s,a) + gamma sum_s' p V(s')]
        delta = np.abs(V_new - V).max(initial=0.0)
        V = V_new
        if delta < tol:
            return V
    raise DPError(
        f"policy evaluation did not converge in {max_sweeps} sweeps (last change {delta:.3g}); "
        "use method='solve' or a larger tol"
    )


def finite_horizon_evaluation(mdp: TabularMDP, policy: np.ndarray, horizon: int, gamma: float = 1.0) -> np.ndarray:
    """Expected return over at most `horizon` steps from each state: (S,), finite for any policy.

    V_0 = 0, V_k = R_pi + gamma P_pi V_{k-1} (k steps of backward induction): what an
    episode cut off at the step limit actually returns on average.
    """
    gamma = check_gamma(gamma)
    check_model(mdp)
    S, A, _ = mdp.next_state.shape
    R_pi, P_pi = policy_model(mdp, as_policy_matrix(policy, S, A))
    V = np.zeros(S)
    for _ in range(int(horizon)):
        V = R_pi + gamma * (P_pi @ V)
    return V


# --------------------------------------------------------------------------- value iteration


_BLOCK = 1024  # states per block that a sweep may pass over (see _in_place_sweeps)


@numba.njit(cache=True)
def _in_place_sweeps(next_state, coef, R, scale, first, tol, max_sweeps, V, block, backups):  # pragma: no cover
    """In-place value iteration (S&B 4.4) over states first..S-1, in index order; returns the
    sweeps taken (those that passed over settled blocks included), or -1 past max_sweeps,
    and counts the state backups in backups[0].

    V(s) <- max_a [R(s,a) + sum_k coef(s,a,k) V(s'_k)] * scale(s,a), where coef = gamma p(s'|s,a)
    for s' != s and the self-loop is solved for exactly: scale = 1 / (1 - gamma p(s|s,a)).

    Asynchronous DP (S&B 4.5): the states come in blocks of `block`, and a sweep passes over
    a block whose successors have moved by less than tol in all since it was last backed
    up (its backup could move it by no more). The stopping rule stays the synchronous one:
    it returns only after a sweep over every state changes no value by tol or more.
    """
    S, A, K = next_state.shape
    n_blocks = max((S - first + block - 1) // block, 1)
    lo, hi = _block_dependencies(next_state, first, block, n_blocks)
    moved = np.zeros(n_blocks)  # largest change in each block during the last sweep
    pending = np.full(n_blocks, np.inf)  # how far each block's successors moved since its last backup
    for sweep in range(max_sweeps):
        delta, full = 0.0, True
        for b in range(n_blocks):
            pending[b] += moved[lo[b] : hi[b] + 1].max()
        for b in range(n_blocks):
            if pending[b] < tol:
                moved[b] = 0.0
                full = False
                continue
            pending[b] = 0.0
            block_delta = 0.0
            backups[0] += min(first + (b + 1) * block, S) - (first + b * block)
            for s in range(first + b * block, min(first + (b + 1) * block, S)):
                best = -np.inf
                for a in range(A):
                    q = R[s, a]
                    for k in range(K):
                        q += coef[s, a, k] * V[next_state[s, a, k]]
                    q *= scale[s, a]
                    if q > best:
                        best = q
                change = abs(best - V[s])
                if change > block_delta:
                    block_delta = change
                V[s] = best
            moved[b] = block_delta
            delta = max(delta, block_delta)
        if delta < tol:
            if full:
                return sweep + 1
            pending[:] = np.inf  # nothing left to do: the next sweep checks every state
    return -1


@numba.njit(cache=True)
def _block_dependencies(next_state, first, block, n_blocks):  # pragma: no cover - compiled
    """For each block of states, the first and last block holding one of its successors
    (terminal states, which never change, left out); the block itself is always included."""
    S, A, K = next_state.shape
    lo, hi = np.arange(n_blocks), np.arange(n_blocks)
    for s in range(first, S):
        b = (s - first) // block
        for a in range(A):
            for k in range(K):
                t = next_state[s, a, k]
                if t >= first:
                    lo[b] = min(lo[b], (t - first) // block)
                    hi[b] = max(hi[b], (t - first) // block)
    return lo, hi


def _sweep_tables(mdp: TabularMDP, gamma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The model relabelled into sweep order (terminal states first, then by distance to one),
    so the sweep reads its tables front to back: (order, next_state, coef, R, scale, first
    non-terminal). Self-loops are folded into `scale` (see _in_place_sweeps). Every step is
    linear in the model's size (S*A*K)."""
    ns, prob = np.ascontiguousarray(mdp.next_state), np.ascontiguousarray(mdp.prob)
    terminal = np.ascontiguousarray(mdp.terminal, dtype=bool)
    S = len(terminal)
    if S >= 2**31:
        raise DPError(f"{S} states: value iteration handles fewer than 2^31")
    order = _sweep_order(ns, prob, terminal)
    rank = np.empty(S, dtype=np.int64)
    rank[order] = np.arange(S)
    next_state = np.empty(ns.shape, dtype=np.int32)
    coef, R, scale = np.empty(prob.shape), np.empty(ns.shape[:2]), np.empty(ns.shape[:2])
    _relabel(ns, prob, np.ascontiguousarray(mdp.R), order, rank, gamma, next_state, coef, R, scale)  # R: computed once, here
    return order, next_state, coef, R, scale, int(terminal.sum())


@numba.njit(cache=True)
def _sweep_order(next_state, prob, terminal):  # pragma: no cover - compiled
    """The states by their fewest moves to a terminal state (a breadth-first search from the
    terminal states along reversed edges s' <- s, p(s'|s,a) > 0, s' != s), ties by index,
    unreachable states last; every state in index order when there is no terminal state."""
    S, A, K = next_state.shape
    start = np.zeros(S + 1, dtype=np.int64)  # reversed edges, compressed rows: into[start[s'] : start[s'+1]]
    for s in range(S):
        for a in range(A):
            for k in range(K):
                if prob[s, a, k] > 0 and next_state[s, a, k] != s:
                    start[next_state[s, a, k] + 1] += 1
    for i in range(S):
        start[i + 1] += start[i]
    into = np.empty(start[S], dtype=np.int32)  # state indices: value_iteration refuses S >= 2^31
    fill = start[:S].copy()
    for s in range(S):
        for a in range(A):
            for k in range(K):
                t = next_state[s, a, k]
                if prob[s, a, k] > 0 and t != s:
                    into[fill[t]] = s
                    fill[t] += 1
    dist = np.full(S, -1, dtype=np.int64)
    queue = np.empty(S, dtype=np.int64)
    tail = 0
    for s in range(S):
        if terminal[s]:
            dist[s], queue[tail] = 0, s
            tail += 1
    if tail == 0:
        return np.arange(S)
    head = 0
    while head < tail:
        u = queue[head]
        head += 1
        for j in range(start[u], start[u + 1]):
            v = into[j]
            if dist[v] < 0:
                dist[v], queue[tail] = dist[u] + 1, v
                tail += 1
    far = dist.max() + 1  # unreachable states sort after every distance
    count = np.zeros(far + 2, dtype=np.int64)  # a counting sort by distance: stable, so ties stay by index
    for s in range(S):
        count[(dist[s] if dist[s] >= 0 else far) + 1] += 1
    for d in range(far + 1):
        count[d + 1] += count[d]
    order = np.empty(S, dtype=np.int64)
    for s in range(S):
        d = dist[s] if dist[s] >= 0 else far
        order[count[d]] = s
        count[d] += 1
    return order


@numba.njit(cache=True)
def _relabel(ns, prob, R, order, rank, gamma, out_ns, coef, out_R, scale):  # pragma: no cover - compiled
    """Row i of the outputs is state order[i]; successors renamed by rank. coef = gamma p for
    s' != s; a self-loop is solved for (scale = 1 / (1 - gamma p_self)) unless that is 1/0."""
    S, A, K = ns.shape
    for i in range(S):
        s = order[i]
        for a in range(A):
            p_self = 0.0
            for k in range(K):
                if ns[s, a, k] == s:
                    p_self += prob[s, a, k]
            solved = 1.0 - gamma * p_self > 1e-12
            for k in range(K):
                out_ns[i, a, k] = rank[ns[s, a, k]]
                coef[i, a, k] = 0.0 if solved and ns[s, a, k] == s else gamma * prob[s, a, k]
            scale[i, a] = 1.0 / (1.0 - gamma * p_self) if solved else 1.0
            out_R[i, a] = R[s, a]


def value_iteration(
    mdp: TabularMDP, gamma: float, tol: float = 1e-10, max_sweeps: int = 1_000_000
) -> Solution:
    """V* and a greedy optimal policy by value iteration (S&B 4.4).

    V(s) <- max_a [R(s,a) + gamma sum_s' p(s'|s,a) V(s')], swept in place, nearest-to-
    terminal states first, starting from a lower bound on V* when gamma < 1, so values
    flow back from the goal in one sweep instead of one cell per sweep. Blocks of states
    whose successors have settled are passed over (asynchronous DP, S&B 4.5); it stops when
    a sweep over every state changes no value by tol or more.
    """
    gamma = check_gamma(gamma)
    check_model(mdp)
    t0 = time.perf_counter()
    order, next_state, coef, R, scale, first = _sweep_tables(mdp, gamma)
    V = np.zeros(R.shape[0])  # in sweep order
    if gamma < 1.0:
        V[:] = min(R.min(), 0.0) / (1.0 - gamma)  # V* >= min reward / (1 - gamma)
    V[:first] = 0.0  # terminal states
    backups = np.zeros(1, dtype=np.int64)
    sweeps = _in_place_sweeps(next_state, coef, R, scale, first, tol, max_sweeps, V, _BLOCK, backups)
    if sweeps < 0:
        raise DPError(
            f"value iteration did not converge in {max_sweeps} sweeps; with gamma=1 some state "
            "may never reach a terminal state: use gamma < 1"
        )
    # the greedy policy and the Bellman residual max_s |max_a Q(s,a) - V(s)| of plain Q (no self-loop folding)
    actions, residual = _greedy_and_residual(next_state, coef, R, scale, first, V)
    V_out = np.empty_like(V)
    V_out[order] = V
    policy = np.zeros((len(mdp.terminal), coef.shape[1]))
    policy[order, actions] = 1.0  # with gamma=1 and free moves, ties may loop: prefer gamma < 1
    return Solution(V_out, policy, sweeps, residual, time.perf_counter() - t0, int(backups[0]))


@numba.njit(cache=True)
def _greedy_and_residual(next_state, coef, R, scale, first, V):  # pragma: no cover - compiled
    """Per state (sweep order), argmax_a Q(s, a) (ties to the lowest action; terminal states
    take action 0) and max over non-terminal s of |max_a Q(s, a) - V(s)|, where Q(s, a) =
    R(s, a) + gamma sum_s' p(s'|s, a) V(s'): the folded self-loop is unfolded,
    gamma p(s|s, a) = 1 - 1 / scale(s, a) (0 where it was not folded)."""
    S, A, K = next_state.shape
    actions = np.zeros(S, dtype=np.int64)
    residual = 0.0
    for s in range(first, S):
        best, best_a = -np.inf, 0
        for a in range(A):
            q = R[s, a] + (1.0 - 1.0 / scale[s, a]) * V[s]
            for k in range(K):
                q += coef[s, a, k] * V[next_state[s, a, k]]
            if q > best:
                best, best_a = q, a
        actions[s] = best_a
        residual = max(residual, abs(best - V[s]))
    return actions, residual


def value_iteration_python(mdp: TabularMDP, gamma: float, tol: float = 1e-10) -> np.ndarray:
    """The same in-place value iteration as a plain Python loop: the textbook baseline for `arena bench`."""
    check_model(mdp)
    R, ns, p, terminal = mdp.R.tolist(), mdp.next_state.tolist(), mdp.prob.tolist(), mdp.terminal.tolist()
    S = len(R)
    V = [0.0] * S
    while True:
        delta = 0.0
        for s in range(S):
            if terminal[s]:
                continue
            best = max(
                R[s][a] + gamma * sum(pk * V[sk] for pk, sk in zip(p[s][a], ns[s][a])) for a in range(len(R[s]))
            )
            delta = max(delta, abs(best - V[s]))
            V[s] = best
        if delta < tol:
            return np.array(V)


# --------------------------------------------------------------------------- policy iteration


def policy_iteration(mdp: TabularMDP, gamma: float, max_iterations: int = 10_000) -> Solution:
    """An optimal (V, policy) by policy iteration (S&B 4.3): evaluate exactly, improve greedily, repeat.

    Improvement keeps the current action unless another is strictly better, so the loop
    ends when the policy is stable. With gamma = 1 it starts from the policy that reaches
    a terminal state in fewest expected moves (a proper policy, so every V_pi is finite).
    """
    gamma = check_gamma(gamma)
    check_model(mdp)
    t0 = time.perf_counter()
    S, A = mdp.R.shape
    if gamma == 1.0:
        steps_model = _UnitCost(mdp)
        actions = value_iteration(steps_model, 1.0).policy.argmax(axis=1)
    else:
        actions = np.zeros(S, dtype=np.int64)
    for iteration in range(1, max_iterations + 1):
        V = policy_evaluation(mdp, actions, gamma, method="solve")
        Q = q_values(mdp, V, gamma)
        best = Q.argmax(axis=1)
        improves = Q[np.arange(S), best] > Q[np.arange(S), actions] + 1e-12 * (1 + np.abs(V))
        if not improves.any():
            policy = np.eye(A)[actions]
            return Solution(V, policy, iteration, bellman_residual(mdp, V, gamma), time.perf_counter() - t0)
        actions = np.where(improves, best, actions)
    raise DPError(f"policy iteration did not stabilise in {max_iterations} improvement steps")


class _UnitCost:
    """The same dynamics with reward -1 per move: its optimum reaches termination fastest."""

    def __init__(self, mdp: TabularMDP) -> None:
        if not mdp.terminal.any():
            raise DPError("gamma=1 needs a terminal state (a goal or a hole); use gamma < 1")
        self.next_state, self.prob, self.terminal = mdp.next_state, mdp.prob, mdp.terminal
        self.R = np.where(mdp.terminal[:, None], 0.0, -np.ones(mdp.R.shape))
        self.n_states = mdp.R.shape[0]


# --------------------------------------------------------------------------- as arena agents


class DPAgent(TabularAgent):
    """Plans on the env's exact model (`env.unwrapped.mdp`) instead of learning from samples."""

    name = "dp"
    method: Literal["value", "policy"] = "value"

    def plan(self, env: gym.Env, seed: int) -> dict[str, Any]:
        """Solve the env's exact model (`env.unwrapped.mdp`) for V, Q and the greedy policy."""
        self.check_env(env)
        if not isinstance(env.unwrapped, HasModel):
            raise AgentError(f"{self.name} plans on an exact model; {env.spec.id if env.spec else env} has no env.unwrapped.mdp")
        mdp = env.unwrapped.mdp
        gamma = self.settings.gamma
        sol = solve(mdp, gamma, self.method)
        self.tables = {"V": sol.V, "Q": q_values(mdp, sol.V, gamma), "policy": sol.policy}
        self.trained_on, self.seed = env_ref(env), seed
        return {"sweeps": sol.sweeps, "bellman_residual": sol.residual, "seconds": sol.seconds}


class ValueIterationAgent(DPAgent):
    name = "value-iteration"
    method = "value"


class PolicyIterationAgent(DPAgent):
    name = "policy-iteration"
    method = "policy"


def solve(mdp: TabularMDP, gamma: float, method: Literal["value", "policy"] = "value") -> Solution:
    """The optimum by the named method; value iteration is the faster on large grids."""
    if method == "value":
        return value_iteration(mdp, gamma)
    if method == "policy":
        return policy_iteration(mdp, gamma)
    raise DPError(f"unknown DP method {method!r}; use 'value' or 'policy'")


__all__: list[str] = [
    "DPError",
    "Solution",
    "bellman_residual",
    "check_model",
    "greedy_policy",
    "policy_evaluation",
    "policy_iteration",
    "q_values",
    "value_iteration",
]
