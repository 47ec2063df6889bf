"""Temporal-difference learning (Sutton & Barto, chapters 6 and 7).

Prediction: `td0_prediction` estimates V_pi from experience. Control: SARSA, Q-learning,
Expected SARSA, n-step SARSA and Double Q-learning, each an agent whose `learn_episode`
is one episode of the textbook algorithm. They differ only in the target they move
Q(S, A) towards; the loop around them (budgets, schedules, logging, checkpoints) is the
one training loop in agents/training.py.

On truncation (the step limit) the last state is not terminal, so targets still
bootstrap from it; only a terminal S' has value 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from agents.monte_carlo import batch_until_converged, check_alpha, check_policy, initial_values, policy_episodes
from agents.tabular import LearnerSettings, TabularLearner
from agents.training import episode_seed
from arena.errors import AgentError
from arena.settings import setting


# --------------------------------------------------------------------------- prediction


def td0_prediction(
    env: gym.Env, policy: np.ndarray, episodes: int, alpha: float | None = 0.05, gamma: float = 1.0, seed: int = 0,
    V0: float | np.ndarray = 0.0,
) -> np.ndarray:
    """V_pi by TD(0) (S&B 6.1): V(S) <- V(S) + alpha [R + gamma V(S') - V(S)]. Returns (S,).

    alpha=None steps by 1/N(S), the number of visits to S so far: every state's estimate
    converges, however rarely the policy visits it. A constant alpha tracks a changing
    target but keeps a noise floor of order alpha. V0: the values before learning (one
    number or one per state; Example 6.2 starts at 0.5); a terminal state is worth 0.
    """
    pi = check_policy(env, policy)
    check_alpha(alpha)
    if not 0.0 <= gamma <= 1.0:
        raise AgentError(f"gamma must be a number in [0, 1], got {gamma!r}")
    rng = np.random.default_rng(seed)
    V, N = initial_values(V0, pi.shape[0]), np.zeros(pi.shape[0])
    for episode in range(episodes):
        s, _ = env.reset(seed=episode_seed(seed, episode))
        done = False
        while not done:
            a = rng.choice(pi.shape[1], p=pi[s])
            s2, r, term, trunc, _ = env.step(a)
            target = r if term else r + gamma * V[s2]
            N[s] += 1
            V[s] += (alpha or 1.0 / N[s]) * (target - V[s])
            s, done = s2, term or trunc
    return V


def batch_td0(
    env: gym.Env, policy: np.ndarray, episodes: int, gamma: float = 1.0, alpha: float | None = None,
    V0: float | np.ndarray = 0.0, seed: int = 0, tol: float = 1e-10, max_sweeps: int = 100_000,
) -> np.ndarray:
    """Batch TD(0) (S&B 6.3, Figure 6.2): after each episode, every transition seen so far is
    presented until V converges, V(S) <- V(S) + alpha sum [R + gamma V(S') - V(S)]: to the
    certainty-equivalence estimate, the values of the Markov model the data suggest.
    Returns V after each episode, (episodes, S). Same seed, same episodes as `batch_mc`."""
    pi = check_policy(env, policy)
    check_alpha(alpha)
    if not 0.0 <= gamma <= 1.0:
        raise AgentError(f"gamma must be a number in [0, 1], got {gamma!r}")
    V, history = initial_values(V0, pi.shape[0]), np.empty((episodes, pi.shape[0]))
    S_t: list[int] = []
    R_t: list[float] = []
    S_next: list[int] = []
    goes_on: list[bool] = []  # False where S' is terminal (worth 0)
    for i, ep in enumerate(policy_episodes(env, pi, episodes, seed)):
        for t, (s, _, r) in enumerate(ep):
            S_t.append(s)
            R_t.append(r)
            last = t + 1 == len(ep)
            S_next.append(ep[t + 1][0] if not last else (ep.truncated_at if ep.truncated_at is not None else s))
            goes_on.append(not last or ep.truncated_at is not None)  # a cut episode bootstraps from where it stopped
        R, S2, live = np.array(R_t), np.array(S_next), np.array(goes_on)
        batch_until_converged(V, np.array(S_t), lambda V: R + gamma * np.where(live, V[S2], 0.0), alpha, tol,
                              max_sweeps, "TD(0)")
        history[i] = V
    return history


# --------------------------------------------------------------------------- compiled episodes
#
# One-step TD control on an Arena GridWorld, with the env's step fused into the learner's
# loop: the episode reads the model's successor tables (env.unwrapped.step_tables()) and
# draws the env's own counter-based uniforms, and the agent draws from its own NumPy
# Generator (Numba implements PCG64 exactly as NumPy does), so the Q table, the returns and
# the RNG state come out bit for bit as through env.step. Blocks of such episodes run in one
# call (`learn_fused_block`, the training loop's LearnsInBlocks), their seeding compiled too.
# Each agent's `learn_episode` below stays the reference, and tests hold the paths equal.

import numba  # noqa: E402  (after the reference code it accelerates)
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker  # noqa: E402

from envs.abilities import HasStepTables, MasksActions  # noqa: E402
from envs.grid import compiled  # noqa: E402  (the grid's one step, compiled)
from envs.vector import START_SALT, seeding_kernels, stream_kernels  # noqa: E402

SARSA, Q_LEARNING, EXPECTED_SARSA, DOUBLE_Q = 0, 1, 2, 3  # the compiled episode kinds
PASSIVE_WRAPPERS = (OrderEnforcing, PassiveEnvChecker)  # gym.make's own: they neither change nor count steps

_grid_step = compiled("grid_step")  # envs.grid.grid_step: the grid's dynamics, the one place they are written
_seeded_keys, _unit_seeds = seeding_kernels()  # NumPy's seeding, compiled: envs/vector.py
_uniform = stream_kernels()[1]


def step_tables(env: gym.Env) -> Any:
    """The env's step tables when a compiled episode may replace env.step (a GridWorld under
    gym.make's passive wrappers only, all of whose states offer every action); None
    otherwise, e.g. under a user's wrapper."""
    while type(env) in PASSIVE_WRAPPERS:
        env = env.env  # type: ignore[attr-defined]  # a gymnasium Wrapper
    if isinstance(env, MasksActions):  # the compiled episodes explore over every action
        return None
    return env.step_tables() if isinstance(env, HasStepTables) and env.obs_mode == "index" else None


def fused_tables(agent: TabularLearner, env: gym.Env) -> Any:
    """`step_tables(env)` where the agent may fuse (None otherwise), looked up once per env:
    a runtime Protocol check costs more than a whole compiled episode."""
    if agent.fused_on is None or agent.fused_on[0] is not env:
        agent.fused_on = (env, step_tables(env) if agent.fused else None)
    return agent.fused_on[1]


def fused_episode(agent: Any, env: gym.Env, seed: int) -> float:
    """One training episode with the env's dynamics compiled into the learner's loop.
    The reset is the env's own (seeding, stream key, start state)."""
    tables = fused_tables(agent, env)
    env.reset(seed=seed)
    u: HasStepTables = env.unwrapped  # type: ignore[assignment]  # fused_tables found it one
    s0, key = u.episode_start()
    Q = agent.tables["Q"]
    Q1, Q2 = (agent.tables["Q1"], agent.tables["Q2"]) if agent.kind == DOUBLE_Q else (Q, Q)
    G, s, t, a = _td_episode(agent.kind, Q, Q1, Q2, agent.rng, s0, np.uint64(key), agent.alpha_now, agent.settings.gamma,
                             agent.epsilon_now, tables.A, tables.K, tables.next_state, tables.reward, tables.cum,
                             tables.terminal, tables.max_steps)
    u.sync(s, t, a)  # the env where env.step would have left it
    return G


def learn_fused_block(agent: Any, env: gym.Env, index: int, count: int, total: int) -> dict[str, np.ndarray] | None:
    """LearnsInBlocks.learn_block for the one-step TD learners: `count` training episodes in
    one compiled call (`_td_block`), each exactly the episode `learn` would play (its env
    seed episode_seed(seed, unit), its seeded reset's stream key and start state, its alpha
    and epsilon from the schedules), so Q and the RNG come out bit for bit as unit by unit.
    None where the episode cannot be compiled (then the loop calls `learn`)."""
    tables = fused_tables(agent, env)
    if tables is None:
        return None
    s = agent.settings
    Q = agent.tables["Q"]
    Q1, Q2 = (agent.tables["Q1"], agent.tables["Q2"]) if agent.kind == DOUBLE_Q else (Q, Q)
    G, alpha, epsilon, last = np.empty(count), np.empty(count), np.empty(count), np.zeros(3, dtype=np.int64)
    _td_block(agent.kind, Q, Q1, Q2, agent.rng, np.uint64(agent.seed), index, count, total,
              *_schedule(s.alpha, s.alpha_end), *_schedule(s.epsilon, s.epsilon_end), s.decay, s.gamma,
              tables.A, tables.K, tables.next_state, tables.reward, tables.cum, tables.terminal, tables.max_steps,
              tables.starts, G, alpha, epsilon, last)
    env.reset(seed=episode_seed(agent.seed, index + count - 1))  # the env as the last episode left it:
    u: HasStepTables = env.unwrapped  # type: ignore[assignment]  # fused_tables found it one
    u.sync(int(last[0]), int(last[1]), int(last[2]))  # its reset's seeding, then where it ended
    agent.alpha_now, agent.epsilon_now = float(alpha[-1]), float(epsilon[-1])
    return {"return": G, "epsilon": epsilon, "alpha": alpha}


def _schedule(start: float, end: float | None) -> tuple[float, float]:
    """(start, end) of a Schedule for the compiled block; end = start keeps it constant."""
    return start, start if end is None else end


@numba.njit(cache=True)
def _td_block(kind, Q, Q1, Q2, rng, seed, first, count, total, alpha0, alpha1, epsilon0, epsilon1, decay, gamma, A, K,
              next_state, reward, cum, terminal, max_steps, starts, G, alpha, epsilon, last):  # pragma: no cover
    """Training episodes first .. first + count - 1 of `total`, as TabularLearner.learn plays them."""
    keys = _seeded_keys(_unit_seeds(seed, np.uint64(first), count))  # episode_seed, then the seeded reset's key
    for i in range(count):
        progress = (first + i) / total
        x = min(progress / decay, 1.0)  # Schedule.at
        alpha[i] = alpha0 if alpha1 == alpha0 else alpha0 + x * (alpha1 - alpha0)
        epsilon[i] = epsilon0 if epsilon1 == epsilon0 else epsilon0 + x * (epsilon1 - epsilon0)
        s0 = starts[int(_uniform(keys[i] ^ np.uint64(START_SALT), 0) * len(starts))]  # start_uniform
        G[i], last[0], last[1], last[2] = _td_episode(kind, Q, Q1, Q2, rng, s0, keys[i], alpha[i], gamma, epsilon[i],
                                                      A, K, next_state, reward, cum, terminal, max_steps)


@numba.njit(cache=True)
def _top(Q: np.ndarray, s: int) -> tuple[float, int]:
    """max_a Q(s, a) and how many actions share it."""
    top = Q[s, 0]
    for a in range(1, Q.shape[1]):
        top = max(top, Q[s, a])
    ties = 0
    for a in range(Q.shape[1]):
        ties += Q[s, a] == top
    return top, ties


@numba.njit(cache=True)
def _expected_value(Q: np.ndarray, s: int, epsilon: float) -> float:
    """sum_a pi(a|s) Q(s, a) under the epsilon-greedy policy (greedy mass split among ties)."""
    A = Q.shape[1]
    top, ties = _top(Q, s)
    v = 0.0
    for a in range(A):
        v += (epsilon / A + (1.0 - epsilon) * (Q[s, a] == top) / ties) * Q[s, a]
    return v


@numba.njit(cache=True)
def _td_episode(kind, Q, Q1, Q2, rng, s, key, alpha, gamma, epsilon, A, K, next_state, reward, cum, terminal,
                max_steps):  # pragma: no cover - compiled
    """One episode of `kind` from state s; returns (G, last state, steps, last action).
    SARSA's update waits for A' (chosen at the top of the next pass, where every algorithm
    chooses its action), so the epsilon-greedy choice is written once, in the loop: a helper
    taking `rng` would cost a reference count per step, about half the episode's time."""
    G, t, n_actions = 0.0, 0, Q.shape[1]
    last_s, last_a, last_r, last_term, last_done, waiting = 0, 0, 0.0, False, False, False  # SARSA's (S, A, R)
    while True:
        # A ~ epsilon-greedy in s (TabularLearner.explore): a random action, or argmax_a Q(s, a), ties by a draw
        if rng.random() < epsilon:
            a = rng.integers(0, n_actions)
        else:
            top, ties = _top(Q, s)
            pick = 0 if ties == 1 else rng.integers(0, ties)
            a = n_actions - 1
            for b in range(n_actions):
                if Q[s, b] == top:
                    if pick == 0:
                        a = b
                        break
                    pick -= 1
        if waiting:  # SARSA: Q(S,A) <- Q(S,A) + alpha [R + gamma Q(S',A') - Q(S,A)], with S' = s, A' = a
            target = last_r if last_term else last_r + gamma * Q[s, a]
            Q[last_s, last_a] += alpha * (target - Q[last_s, last_a])
            if last_done:
                return G, s, t, last_a
        s2, r, term, trunc = _grid_step(s, a, key, t, A, K, next_state, reward, cum, terminal, max_steps)
        t += 1
        G += r
        if kind == SARSA:
            last_s, last_a, last_r, last_term, last_done, waiting = s, a, r, term, term or trunc, True
        elif kind == DOUBLE_Q:  # A(S,A) <- A(S,A) + alpha [R + gamma B(S', argmax_a A(S',a)) - A(S,A)]
            first = rng.random() < 0.5
            A_, B_ = (Q1, Q2) if first else (Q2, Q1)
            target = r if term else r + gamma * B_[s2, np.argmax(A_[s2])]
            A_[s, a] += alpha * (target - A_[s, a])
            Q[s, a] = 0.5 * (Q1[s, a] + Q2[s, a])
        else:  # Q-learning: max_a Q(S',a); Expected SARSA: sum_a pi(a|S') Q(S',a)
            value = Q[s2].max() if kind == Q_LEARNING else _expected_value(Q, s2, epsilon)
            target = r if term else r + gamma * value
            Q[s, a] += alpha * (target - Q[s, a])
        if kind != SARSA and (term or trunc):
            return G, s2, t, a
        s = s2


# --------------------------------------------------------------------------- one-step control


class SarsaAgent(TabularLearner):
    """On-policy TD control (S&B 6.4): learns the value of the epsilon-greedy policy it follows."""

    name = "sarsa"
    kind = SARSA  # its compiled episode (fused_episode)
    learn_block = learn_fused_block  # LearnsInBlocks: compiled blocks of episodes

    def learn_episode(self, env: gym.Env, seed: int) -> float:
        if fused_tables(self, env) is not None:
            return fused_episode(self, env, seed)
        Q, alpha, gamma = self.tables["Q"], self.alpha_now, self.settings.gamma
        s, _ = env.reset(seed=seed)
        a = self.explore(s)
        G, done = 0.0, False
        while not done:
            s2, r, term, trunc, _ = env.step(a)
            a2 = self.explore(s2)
            # Q(S,A) <- Q(S,A) + alpha [R + gamma Q(S',A') - Q(S,A)]
            target = r if term else r + gamma * Q[s2, a2]
            Q[s, a] += alpha * (target - Q[s, a])
            s, a, G, done = s2, a2, G + float(r), term or trunc
        return G


def off_policy_td_episode(agent: TabularLearner, env: gym.Env, seed: int, next_value: Callable[[int], float]) -> float:
    """One episode of one-step TD control whose target values S' by `next_value(S')`."""
    Q, alpha, gamma = agent.tables["Q"], agent.alpha_now, agent.settings.gamma
    s, _ = env.reset(seed=seed)
    G, done = 0.0, False
    while not done:
        a = agent.explore(s)
        s2, r, term, trunc, _ = env.step(a)
        # Q(S,A) <- Q(S,A) + alpha [R + gamma next_value(S') - Q(S,A)]
        target = r if term else r + gamma * next_value(s2)
        Q[s, a] += alpha * (target - Q[s, a])
        s, G, done = s2, G + float(r), term or trunc
    return G


class QLearningAgent(TabularLearner):
    """Off-policy TD control (S&B 6.5): learns the greedy policy's values while exploring.

    Q(S,A) <- Q(S,A) + alpha [R + gamma max_a Q(S',a) - Q(S,A)]
    """

    name = "q-learning"
    kind = Q_LEARNING  # its compiled episode (fused_episode)
    learn_block = learn_fused_block  # LearnsInBlocks: compiled blocks of episodes

    def learn_episode(self, env: gym.Env, seed: int) -> float:
        if fused_tables(self, env) is not None:
            return fused_episode(self, env, seed)
        Q = self.tables["Q"]
        return off_policy_td_episode(self, env, seed, lambda s2: Q[s2].max())


class ExpectedSarsaAgent(TabularLearner):
    """Expected SARSA (S&B 6.6): Q-learning with the max over S' replaced by the expectation
    under the epsilon-greedy policy, so it learns that policy's values with less variance
    than SARSA's single sampled A'.

    Q(S,A) <- Q(S,A) + alpha [R + gamma sum_a pi(a|S') Q(S',a) - Q(S,A)]
    """

    name = "expected-sarsa"
    kind = EXPECTED_SARSA  # its compiled episode (fused_episode)
    learn_block = learn_fused_block  # LearnsInBlocks: compiled blocks of episodes

    def learn_episode(self, env: gym.Env, seed: int) -> float:
        if fused_tables(self, env) is not None:
            return fused_episode(self, env, seed)
        Q = self.tables["Q"]
        if self.allowed is not None:  # some states offer fewer actions: the expectation runs over theirs
            return off_policy_td_episode(self, env, seed, self.expected_value)
        # sum_a pi(a|S') Q(S',a), summed in the compiled path's order so both paths agree to the bit
        return off_policy_td_episode(self, env, seed, lambda s2: float(_expected_value(Q, s2, self.epsilon_now)))


class DoubleQLearningAgent(TabularLearner):
    """Double Q-learning (S&B 6.7): two tables, one picks the argmax, the other values it.

    Removes Q-learning's maximisation bias. Acts epsilon-greedily on Q1 + Q2; the greedy
    policy (and the `Q` table shown to the viewer) is their mean.
    """

    name = "double-q-learning"
    kind = DOUBLE_Q  # its compiled episode (fused_episode)
    learn_block = learn_fused_block  # LearnsInBlocks: compiled blocks of episodes
    table_names = ("Q", "Q1", "Q2")

    def init_tables(self, n_states: int, n_actions: int) -> None:
        self.tables = {k: np.zeros((n_states, n_actions)) for k in ("Q", "Q1", "Q2")}

    def learn_episode(self, env: gym.Env, seed: int) -> float:
        if fused_tables(self, env) is not None:
            return fused_episode(self, env, seed)
        Q, Q1, Q2, alpha, gamma = self.tables["Q"], self.tables["Q1"], self.tables["Q2"], self.alpha_now, self.settings.gamma
        s, _ = env.reset(seed=seed)
        G, done = 0.0, False
        while not done:
            a = self.explore(s)  # on Q = (Q1 + Q2) / 2, kept up to date below
            s2, r, term, trunc, _ = env.step(a)
            A, B = (Q1, Q2) if self.rng.random() < 0.5 else (Q2, Q1)
            # A(S,A) <- A(S,A) + alpha [R + gamma B(S', argmax_a A(S',a)) - A(S,A)]
            target = r if term else r + gamma * B[s2, int(np.argmax(A[s2]))]
            A[s, a] += alpha * (target - A[s, a])
            Q[s, a] = 0.5 * (Q1[s, a] + Q2[s, a])
            s, G, done = s2, G + float(r), term or trunc
        return G


# --------------------------------------------------------------------------- n-step


@dataclass(frozen=True)
class NStepSettings(LearnerSettings):
    n: int = setting(4, help="steps of real reward before bootstrapping (1: SARSA)", low=1, high=10_000)


class NStepSarsaAgent(TabularLearner):
    """n-step SARSA (S&B 7.2): the target is n rewards, then gamma^n Q(S_{t+n}, A_{t+n})."""

    name = "n-step-sarsa"
    Settings = NStepSettings

    def learn_episode(self, env: gym.Env, seed: int) -> float:
        Q, alpha, gamma, n = self.tables["Q"], self.alpha_now, self.settings.gamma, self.settings.n
        s, _ = env.reset(seed=seed)
        S, A, R = [s], [self.explore(s)], [0.0]  # R[t] is the reward that followed step t-1
        T: float = float("inf")
        t = 0
        bootstrap = True  # False once the episode ended in a terminal state
        while True:
            if t < T:
                s2, r, term, trunc, _ = env.step(A[t])
                S.append(s2)
                R.append(float(r))
                if term or trunc:
                    T, bootstrap = t + 1, not term
                else:
                    A.append(self.explore(s2))
            tau = t - n + 1  # the step whose estimate is updated now
            if tau >= 0:
                end = int(min(tau + n, T))
                # G = sum_{i=tau+1}^{end} gamma^(i-tau-1) R_i  (+ gamma^n Q(S_{tau+n}, A_{tau+n}) if not over)
                G = sum(gamma ** (i - tau - 1) * R[i] for i in range(tau + 1, end + 1))
                if tau + n < T:
                    G += gamma**n * Q[S[tau + n], A[tau + n]]
                elif bootstrap:  # truncated, not terminal: value S_T under the epsilon-greedy policy
                    G += gamma ** (T - tau) * self.expected_value(S[int(T)])
                Q[S[tau], A[tau]] += alpha * (G - Q[S[tau], A[tau]])
            if tau == T - 1:
                return float(sum(R))
            t += 1
