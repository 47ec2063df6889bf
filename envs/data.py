"""Data the envs ship or build themselves: nothing is downloaded.

`text_corpus()` is a few paragraphs written for Arena about the ideas it teaches, used by
the sequence task "text" (predict the next character).
"""

from __future__ import annotations

TEXT = """\
an agent lives in a world of states. at each step it looks at the state, picks an action,
and the world answers with a reward and a new state. the agent wants the sum of its
rewards to be large, not just the next one, so it must learn which states are good to be
in and which actions lead there. the value of a state is the reward it can expect from
there on, if it keeps acting as it does. the bellman equation says that this value is the
reward of one step plus the discounted value of the state that follows, averaged over
what the world may do. dynamic programming turns this equation into an update and sweeps
it over every state until nothing changes. it needs the model of the world: every
transition and every reward. when the model is not known, the agent has to learn from
experience. monte carlo methods wait until an episode ends and average the returns they
saw. temporal difference methods do not wait: they move the value of a state towards the
reward they just got plus the value they now guess for the next state. sarsa learns the
value of the policy it follows, exploration and all, while q learning learns the value of
the greedy policy even as it explores. when the states are too many to list, a network
takes the place of the table. it reads the observation and outputs a distribution over
actions, and the policy gradient pushes up the probability of actions that were followed
by more reward than expected. a recurrent network or a transformer can remember what it
saw before, which a task that asks it to copy a sequence or to reverse it requires.
"""


def text_corpus() -> str:
    """The shipped corpus: lower-case letters, spaces, punctuation and newlines."""
    return TEXT


def text_vocab() -> str:
    """The corpus's characters, sorted: token i is text_vocab()[i]."""
    return "".join(sorted(set(TEXT)))
