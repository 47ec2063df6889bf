"""Monte Carlo methods (Sutton & Barto, chapter 5): learn from whole episodes' returns.

Prediction: first-visit and every-visit `mc_prediction`, and `off_policy_mc_prediction`
with ordinary or weighted importance sampling. Control: on-policy first-visit control
with epsilon-soft policies, exploring starts, and off-policy control with weighted
importance sampling. Each works backwards through an episode, G <- gamma G + R.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import gymnasium as gym
import numpy as np

from agents.tabular import LearnerSettings, TabularLearner
from agents.training import episode_seed
from arena.errors import AgentError
from arena.settings import setting
from envs.abilities import HasModel

Episode = list[tuple[int, int, float]]  # (S_t, A_t, R_{t+1}) for t = 0..T-1


class Played(list):
    """An episode's [(S_t, A_t, R_{t+1})], plus S_T when the step limit cut it short."""

    truncated_at: int | None = None


def check_policy(env: gym.Env, policy: np.ndarray) -> np.ndarray:
    """An (S, A) policy for `env` whose rows are probabilities, or an AgentError saying what is wrong."""
    from gymnasium import spaces

    if not isinstance(env.observation_space, spaces.Discrete) or not isinstance(env.action_space, spaces.Discrete):
        raise AgentError("tabular prediction needs Discrete observations and actions; for a grid use obs=index")
    S, A = int(env.observation_space.n), int(env.action_space.n)
    pi = np.asarray(policy, dtype=float)
    if pi.ndim == 1 and len(pi) == S:
        pi = np.eye(A)[pi.astype(int)]
    if pi.shape != (S, A):
        raise AgentError(f"policy has shape {pi.shape}; this env needs ({S}, {A}) action probabilities")
    sums = pi.sum(axis=1)
    bad = np.flatnonzero((np.abs(sums - 1.0) > 1e-8) | (pi < 0).any(axis=1))
    if len(bad):
        raise AgentError(f"policy row {bad[0]} sums to {sums[bad[0]]:.6g}; each row must be probabilities summing to 1")
    return pi


def check_gamma(gamma: float) -> float:
    if not 0.0 <= gamma <= 1.0:
        raise AgentError(f"gamma must be a number in [0, 1], got {gamma!r}")
    return float(gamma)


def generate_episode(env: gym.Env, seed: int, choose: Callable[[int], int], options: dict | None = None) -> Played:
    """Play one episode with `choose(state) -> action`; returns [(S_t, A_t, R_{t+1})].

    If the step limit ends it in a non-terminal state, `truncated_at` holds that state.
    """
    s, _ = env.reset(seed=seed, options=options)
    episode = Played()
    done = False
    while not done:
        a = choose(s)
        s2, r, term, trunc, _ = env.step(a)
        episode.append((s, a, float(r)))
        s, done = s2, term or trunc
        if trunc and not term:
            episode.truncated_at = s2
    return episode


# --------------------------------------------------------------------------- prediction


def initial_values(V0: float | np.ndarray, n_states: int) -> np.ndarray:
    """V0 as an (S,) float array: one number for every state, or one per state."""
    V = np.array(V0, dtype=float, copy=True) if np.ndim(V0) else np.full(n_states, float(V0))
    if V.shape != (n_states,) or not np.isfinite(V).all():
        raise AgentError(f"V0 must be one finite number or {n_states} of them (one per state), got {np.shape(V0)}")
    return V


def check_alpha(alpha: float | None) -> float | None:
    if alpha is not None and not 0.0 < alpha <= 1.0:
        raise AgentError(f"alpha must be a number in (0, 1] or None (the sample average), got {alpha!r}")
    return alpha


def policy_episodes(env: gym.Env, pi: np.ndarray, episodes: int, seed: int) -> Iterator[Played]:
    """`episodes` episodes of the (S, A) policy pi: episode i from env seed episode_seed(seed, i),
    actions drawn from one stream seeded by `seed`. Every prediction method plays through this,
    so two methods given the same seed learn from the same episodes."""
    rng = np.random.default_rng(seed)
    for episode in range(episodes):
        yield generate_episode(env, episode_seed(seed, episode), lambda s: int(rng.choice(pi.shape[1], p=pi[s])))


def visit_returns(ep: Played, gamma: float, first_visit: bool) -> list[tuple[int, float]]:
    """(S_t, G_t) for each visit of the episode (only the first per state if first_visit), last step first."""
    first: dict[int, int] = {}
    for t, (s, _, _) in enumerate(ep):
        first.setdefault(s, t)
    G, out = 0.0, []
    for t in range(len(ep) - 1, -1, -1):
        s, _, r = ep[t]
        G = gamma * G + r  # G_t = R_{t+1} + gamma G_{t+1}
        if not first_visit or first[s] == t:
            out.append((s, G))
    return out


def mc_prediction(
    env: gym.Env, policy: np.ndarray, episodes: int, gamma: float = 1.0, first_visit: bool = True, seed: int = 0,
    alpha: float | None = None, V0: float | np.ndarray = 0.0,
) -> np.ndarray:
    """V_pi from the returns after visits to each state (S&B 5.1). Returns (S,).

    first_visit=True uses only the first visit per episode; False, every visit. alpha=None
    averages the returns (step 1/N(s)); a number is constant-alpha MC (S&B 6.1), which
    weights recent returns more. V0: the values before any return is seen (one number or
    one per state), e.g. 0.5 in Example 6.2.
    """
    pi = check_policy(env, policy)
    check_gamma(gamma)
    check_alpha(alpha)
    V, N = initial_values(V0, pi.shape[0]), np.zeros(pi.shape[0])
    for ep in policy_episodes(env, pi, episodes, seed):
        for s, G in visit_returns(ep, gamma, first_visit):
            N[s] += 1
            V[s] += (alpha or 1.0 / N[s]) * (G - V[s])  # V(S_t) <- V(S_t) + alpha [G_t - V(S_t)]
    return V


def batch_until_converged(V: np.ndarray, states: np.ndarray, target: Callable[[np.ndarray], np.ndarray],
                          alpha: float | None, tol: float, max_sweeps: int, what: str) -> int:
    """Batch updating (S&B 6.3): every recorded visit is presented again and again, each sweep
    moving V(s) by alpha times the sum of its visits' increments target - V(s) (alpha=None:
    by their mean), until no value moves by tol. Returns the sweeps taken; V changes in place."""
    N = np.bincount(states, minlength=len(V))
    for sweep in range(1, max_sweeps + 1):
        total = np.bincount(states, weights=target(V) - V[states], minlength=len(V))
        step = total / np.maximum(N, 1) if alpha is None else alpha * total
        V += step
        if not np.isfinite(V).all() or np.abs(V).max() > 1e150:
            raise AgentError(f"batch {what} diverged: alpha={alpha} is too large for {N.max()} visits of one state; "
                             f"use alpha < {1.0 / N.max():.3g} or alpha=None")
        if np.abs(step).max(initial=0.0) < tol:
            return sweep
    raise AgentError(f"batch {what} did not converge in {max_sweeps} sweeps; raise tol or use alpha=None")


def batch_mc(
    env: gym.Env, policy: np.ndarray, episodes: int, gamma: float = 1.0, alpha: float | None = None,
    V0: float | np.ndarray = 0.0, first_visit: bool = False, seed: int = 0, tol: float = 1e-10,
    max_sweeps: int = 100_000,
) -> np.ndarray:
    """Batch Monte Carlo (S&B 6.3, Figure 6.2): after each episode, every return seen so far is
    presented until V converges, V(S_t) <- V(S_t) + alpha sum [G_t - V(S_t)]: to the mean
    return after each state. Every visit counts by default (the book's constant-alpha MC).
    Returns V after each episode, (episodes, S)."""
    pi = check_policy(env, policy)
    check_gamma(gamma)
    check_alpha(alpha)
    V, history = initial_values(V0, pi.shape[0]), np.empty((episodes, pi.shape[0]))
    states: list[int] = []
    returns: list[float] = []
    for i, ep in enumerate(policy_episodes(env, pi, episodes, seed)):
        for s, G in visit_returns(ep, gamma, first_visit):
            states.append(s)
            returns.append(G)
        G_all = np.array(returns)
        batch_until_converged(V, np.array(states), lambda V: G_all, alpha, tol, max_sweeps, "Monte Carlo")
        history[i] = V
    return history


def off_policy_mc_prediction(
    env: gym.Env,
    target: np.ndarray,
    behaviour: np.ndarray,
    episodes: int,
    gamma: float = 1.0,
    weighted: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """V_pi of `target` from episodes of `behaviour`, by importance sampling (S&B 5.5-5.6).

    Every visit to S_t is weighted by rho = prod_{k>=t} pi(A_k|S_k) / b(A_k|S_k).
    Ordinary IS averages rho * G over visits (unbiased, high variance); weighted IS
    divides by the sum of the rhos instead (biased, far lower variance).
    """
    pi, b = check_policy(env, target), check_policy(env, behaviour)
    if ((pi > 0) & (b == 0)).any():
        s = int(np.flatnonzero(((pi > 0) & (b == 0)).any(axis=1))[0])
        raise AgentError(f"behaviour policy never takes an action the target takes in state {s}: coverage fails")
    check_gamma(gamma)
    S = pi.shape[0]
    V, C, N = np.zeros(S), np.zeros(S), np.zeros(S)
    for ep in policy_episodes(env, b, episodes, seed):
        G, W = 0.0, 1.0
        for s, a, r in reversed(ep):
            G = gamma * G + r
            W *= pi[s, a] / b[s, a]
            if weighted:
                if W == 0.0:
                    break  # every earlier visit has weight 0 too
                C[s] += W
                V[s] += W / C[s] * (G - V[s])  # V <- V + W/C (G - V)
            else:
                N[s] += 1
                V[s] += (W * G - V[s]) / N[s]  # V <- mean of rho * G
    return V


# --------------------------------------------------------------------------- control


@dataclass(frozen=True)
class MCSettings(LearnerSettings):
    episodes: int = setting(5000, help="training budget in episodes", low=1, high=10**9)
    averaging: bool = setting(False, help="step 1/N(s,a) (true: the mean of all returns) instead of alpha")


def tail_value(Q: np.ndarray, ep: Played) -> float:
    """What follows the end of an episode: 0 after a terminal state, max_a Q(S_T, a) after a cut.

    MC targets are whole returns, but an episode cut off by the step limit has not ended:
    its return would count the rest as 0 and make looping look good.
    """
    if ep.truncated_at is None:
        return 0.0
    v = float(Q[ep.truncated_at].max())
    return v if np.isfinite(v) else 0.0


def first_visit_update(agent: TabularLearner, ep: Played) -> float:
    """First-visit MC control update from one episode (S&B 5.3-5.4); returns the episode's return.

    averaging moves Q(s, a) to the mean of all first-visit returns after (s, a) (step
    1/N); otherwise the step is alpha (constant-alpha MC), which forgets the returns of
    earlier, more exploratory policies: the policy changes, so old returns go stale.
    """
    Q, N, gamma = agent.tables["Q"], agent.tables["N"], agent.settings.gamma
    first: dict[tuple[int, int], int] = {}
    for t, (s, a, _) in enumerate(ep):
        first.setdefault((s, a), t)
    G = tail_value(Q, ep)
    for t in range(len(ep) - 1, -1, -1):
        s, a, r = ep[t]
        G = gamma * G + r  # G <- gamma G + R_{t+1}
        if first[(s, a)] == t:
            N[s, a] += 1
            step = 1.0 / N[s, a] if agent.settings.averaging else agent.alpha_now
            Q[s, a] += step * (G - Q[s, a])  # Q(s,a) <- average(Returns(s,a)), or constant-alpha
    return sum(r for _, _, r in ep)


class MCControlAgent(TabularLearner):
    """On-policy first-visit MC control with an epsilon-soft policy (S&B 5.4).

    Q(s, a) is the average of the first-visit returns after (s, a); the policy is
    epsilon-greedy in Q, so it keeps exploring while it improves.
    """

    name = "mc-control"
    Settings = MCSettings
    table_names = ("Q", "N")

    def init_tables(self, n_states: int, n_actions: int) -> None:
        self.tables = {"Q": np.zeros((n_states, n_actions)), "N": np.zeros((n_states, n_actions))}

    def learn_episode(self, env: gym.Env, seed: int) -> float:
        return first_visit_update(self, generate_episode(env, seed, self.explore))


class MCExploringStartsAgent(TabularLearner):
    """MC control with exploring starts (S&B 5.3): every episode starts from a random state
    and a random first action, then follows the greedy policy, so no epsilon is needed.

    Needs an env that can start anywhere (GridWorld's reset option `state`).
    """

    name = "mc-exploring-starts"
    Settings = MCSettings
    table_names = ("Q", "N")

    def check_env(self, env: gym.Env) -> int:
        if not isinstance(env.unwrapped, HasModel):
            raise AgentError(f"{self.name} needs an env that can start in any state (a GridWorld)")
        return super().check_env(env)

    def init_tables(self, n_states: int, n_actions: int) -> None:
        self.tables = {"Q": np.zeros((n_states, n_actions)), "N": np.zeros((n_states, n_actions))}

    def learn_episode(self, env: gym.Env, seed: int) -> float:
        Q = self.tables["Q"]
        u = env.unwrapped
        assert isinstance(u, HasModel)  # check_env made sure
        s0 = int(self.rng.choice(np.flatnonzero(~u.mdp.terminal)))
        a0 = int(self.rng.integers(Q.shape[1]))
        first_action = [a0]
        choose = lambda s: first_action.pop() if first_action else self.greedy(s)  # noqa: E731
        return first_visit_update(self, generate_episode(env, seed, choose, options={"state": s0}))


class OffPolicyMCControlAgent(TabularLearner):
    """Off-policy MC control with weighted importance sampling (S&B 5.7).

    Behaviour: epsilon-greedy in Q (soft, so it covers the target). Target: greedy in Q.
    Working back from the end of each episode, G <- gamma G + R, C <- C + W,
    Q <- Q + W/C (G - Q), W <- W / b(A|S), until the behaviour took an action the target
    would not have. Four choices make this learn at a useful speed, each a known remedy:
    - the target is the greedy policy as it stood when the episode was played (the policy
      the weights refer to), improved between episodes, as in generalised policy iteration;
    - untried actions have Q = -inf, so the target only picks actions it has evidence for
      (with Q = 0 and negative rewards, every update would make the action just learned
      non-greedy and cut the tail after one step);
    - the step W/C is capped at alpha, and a new action starts from the state's value,
      so one lucky return cannot make an action greedy;
    - unless averaging=True, old weight fades by (1 - alpha) per update, because old
      returns were earned under older target policies.
    """

    name = "mc-off-policy"
    Settings = MCSettings
    table_names = ("Q", "C")

    def init_tables(self, n_states: int, n_actions: int) -> None:
        self.tables = {"Q": np.full((n_states, n_actions), -np.inf), "C": np.zeros((n_states, n_actions))}

    def state_value(self, s: int) -> float:
        """max_a Q(s, a) over the actions tried so far (0 if none): where a new action starts."""
        row = self.tables["Q"][s]
        tried = row[np.isfinite(row)]
        return float(tried.max()) if len(tried) else 0.0

    def learn_episode(self, env: gym.Env, seed: int) -> float:
        Q, C, gamma, averaging = self.tables["Q"], self.tables["C"], self.settings.gamma, self.settings.averaging
        b_probs: list[float] = []  # b(A_t|S_t)
        target: list[int] = []  # pi(S_t): greedy in Q as the episode was played

        def behave(s: int) -> int:
            a = self.explore(s)
            b_probs.append(float(self.epsilon_greedy_probs(s)[a]))
            target.append(int(np.argmax(Q[s])))
            return a

        ep = generate_episode(env, seed, behave)
        G, W = tail_value(Q, ep), 1.0
        for t in range(len(ep) - 1, -1, -1):
            s, a, r = ep[t]
            G = gamma * G + r
            # C <- C + W, with old weight fading unless averaging
            C[s, a] = (C[s, a] if averaging else (1.0 - self.alpha_now) * C[s, a]) + W
            # Q <- Q + W/C (G - Q), with the step capped at alpha so that one lucky return
            # cannot make an action greedy; an untried action starts from the state's value
            q = Q[s, a] if np.isfinite(Q[s, a]) else self.state_value(s)
            Q[s, a] = q + min(W / C[s, a], self.alpha_now) * (G - q)
            if a != target[t]:
                break  # pi(A_t|S_t) = 0: earlier steps get no weight
            W /= b_probs[t]  # W <- W * pi(A_t|S_t) / b(A_t|S_t), with pi(A_t|S_t) = 1
        return sum(r for _, _, r in ep)
