"""ChatGPT's three training stages in miniature, on the text env (envs/text.py).

A language model pi reads a prompt x and writes a response y = (y_1, ..., y_T) token by
token; every network here is a small causal Transformer (agents/networks.py).

Stage 1, supervised (`lm`): teacher forcing on demonstrations (prompt, right answer; a
share `demo_noise` of demonstrators make one mistake):
    loss = -mean_t log pi(y_t | x, y_<t)                      (response tokens and end-of-sequence)

Stage 2, the reward model (`reward-model`): a scalar r(x, y) fitted to preference pairs
(x, y_w preferred, y_l rejected) labelled by the task's gold rule (and its labellers'
biases, envs/text.py), with the Bradley-Terry loss
    loss = -mean log sigmoid(r(x, y_w) - r(x, y_l))
and its pairwise accuracy measured on held-out pairs it never saw.

Stage 3, RL (`rlhf`): starting from the stage-1 model, maximise the reward model's score
while staying near the frozen stage-1 reference pi_ref:
    J(pi) = E_{y ~ pi}[ r(x, y) ] - beta KL(pi || pi_ref)
    KL_t  = sum_a pi(a|s_t) (log pi(a|s_t) - log pi_ref(a|s_t))   (exact per token, over every token: never < 0)
    R_i   = r(x, y_i) - beta sum_t KL_t                          (K responses y_1..y_K per prompt)
    A_i   = R_i - mean_{j != i} R_j                              (leave-one-out baseline, Ahmadian et al. 2024)
    loss  = -mean_i[ A_i sum_t log pi(y_it) ] + beta mean_i[ sum_t KL_t ]
(the second term is the KL's direct gradient, the first its score-function part). The
responses are sampled from the very logits that are scored (temperature 1, nothing cut).

Beside them: `best-of-n` (n samples from the stage-1 model, the reward model picks one),
`gold-best` (the right answer: the ceiling) and `best_of_n_exact` (the best-of-n policy
of an enumerated distribution, for checking Beirami et al.'s bounds).

A language model's policy is its sampling distribution: in play (`greedy=True`) it samples
at its `temperature` from a sampler seeded by `reset(seed)` (temperature 0: the likeliest
token), so evaluation measures the policy RL changed and the same seed gives the same
episode.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.checkpoint import load_checkpoint, load_settings, save_checkpoint
from agents.networks import NetConfig, TokenTransformer, check_memory, module_digest, resolve_device, restore_torch, torch_arrays
from agents.neural_settings import BestOfNSettings, GoldBestSettings, LMSettings, RewardModelSettings, RLHFSettings
from agents.protocol import RunSpec
from agents.training import (AgentBase, CountsUpdates, NonFinite, TrainingLog, check_finite, episode_seed, fit,
                             restore_progress)
from arena import settings as typed
from arena.errors import AgentError, CheckpointError
from envs.abilities import WritesText
from envs.text_task import TextTask

DATA_STREAM = 1 << 40  # episode_seed index of a run's fixed data (pairs), apart from its units


# --------------------------------------------------------------------------- sequences


def text_task(env: gym.Env, agent: str) -> TextTask:
    """The text task of `env`, or one line saying `agent` writes text only."""
    u = env.unwrapped
    if not isinstance(u, WritesText):
        raise AgentError(f"{agent} writes responses to prompts; play it on the text env (text:sort, text:evens)")
    return u.text  # type: ignore[no-any-return]


def pad(seqs: list[np.ndarray], value: int) -> np.ndarray:
    """Sequences of different lengths as one (B, longest) array, `value` after each end."""
    out = np.full((len(seqs), max(len(s) for s in seqs)), value, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def choose(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """A token per row from logits (B, A): sampled at `temperature` by the inverse CDF of one
    uniform draw per row (0: the likeliest)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    u = torch.rand(probs.shape[0], 1, generator=generator).to(probs.device)
    return (probs.cumsum(dim=-1) < u).sum(dim=-1).clamp(max=probs.shape[-1] - 1)


@torch.no_grad()
def sample(net: TokenTransformer, task: TextTask, prompts: np.ndarray, temperature: float,
           generator: torch.Generator, device: torch.device) -> tuple[torch.Tensor, list[np.ndarray]]:
    """Responses to prompts (B, P): the sequences (B, P + 1 + steps) (prompt, sep, tokens,
    pad after each end) and each response's digits."""
    B = len(prompts)
    seq = torch.as_tensor(np.concatenate([prompts, np.full((B, 1), task.sep)], axis=1), device=device)
    alive = torch.ones(B, dtype=torch.bool, device=device)
    digits = torch.zeros(B, dtype=torch.long, device=device)
    for _ in range(task.max_len):
        token = choose(net(seq)[:, -1], temperature, generator)
        token = torch.where(alive, token, torch.full_like(token, task.pad))
        seq = torch.cat([seq, token[:, None]], dim=1)
        digits += alive & (token != task.eos)
        alive &= (token != task.eos) & (digits < task.max_len)
        if not alive.any():
            break
    rows = seq[:, task.prompt_len + 1:].cpu().numpy()
    return seq, [r[r < task.vocab] for r in rows]


def mean_gold(net: TokenTransformer, task: TextTask, n: int, seed: int, device: torch.device | None = None) -> float:
    """The mean gold score of `n` responses sampled (temperature 1) for `n` prompts drawn
    with `seed`: how good a writer's policy is by the hidden rule."""
    device = device or next(net.parameters()).device
    prompts = task.prompts(n, np.random.default_rng(seed))
    _, responses = sample(net, task, prompts, 1.0, torch.Generator().manual_seed(seed), device)
    return float(np.mean([task.gold(p, r) for p, r in zip(prompts, responses)]))


def response_logits(net: TokenTransformer, task: TextTask, seq: torch.Tensor) -> torch.Tensor:
    """The logits (B, L, A) each response token (and end) of `seq` was chosen from."""
    return net(seq[:, :-1])[:, task.prompt_len:]


def score_input(task: TextTask, prompts: np.ndarray, responses: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """What a reward model reads: (prompt, sep, response, eos) padded, and each sequence's last index."""
    seqs = [task.sequence(p, r, ended=True) for p, r in zip(prompts, responses)]
    return pad(seqs, task.pad), np.array([len(s) - 1 for s in seqs])


def net_config(settings: Any, task: TextTask) -> NetConfig:
    return NetConfig(body="transformer", hidden=settings.hidden, layers=settings.layers, heads=settings.heads,
                     max_len=task.longest_sequence)


# --------------------------------------------------------------------------- what the agents share


class TextAgent(AgentBase):
    """What the language-model agents share: the task they were built for, the device, the
    sampler, the checkpoint (weights, optimiser and sampler state as arrays; the task in
    the header) and playing a response token by token."""

    unit = "update"
    budget_unit = "update"
    Settings: type = LMSettings
    recurrent = False  # the observation holds the whole response so far
    needs_stages = False  # rlhf and best-of-n: `fit` gets stages 1 and 2 first
    stage1: "LanguageModel | None" = None
    stage2: "RewardModel | None" = None
    default_budget, units_for, trained = CountsUpdates.default_budget, CountsUpdates.units_for, CountsUpdates.trained
    finish = CountsUpdates.finish

    def __init__(self, **settings: Any) -> None:
        self.settings = typed.build(self.Settings, settings, AgentError)
        self.device = resolve_device(self.settings.device)
        self.task: TextTask | None = None
        self.modules: dict[str, Any] = {}
        self.optims: dict[str, Any] = {}
        self.sampler = torch.Generator()
        self.seed = 0
        self.budget: Any = None
        self.trained_on: dict[str, Any] | None = None
        self.log = TrainingLog(unit=self.unit)

    # ---------------------------------------------------------------- the task

    def bind(self, env: gym.Env) -> TextTask:
        self.task = text_task(env, self.name)
        return self.task

    def _task(self) -> TextTask:
        if self.task is None:
            raise AgentError(f"{self.name} has not been fitted; call fit(env) or load(path) first")
        return self.task

    def check_fits(self, env: gym.Env) -> None:
        """It writes for the prompts, vocabulary and response length it was trained on."""
        have, want = self._task(), text_task(env, self.name)
        mine = {k: v for k, v in have.key().items() if k != "length_bias"}
        theirs = {k: v for k, v in want.key().items() if k != "length_bias"}
        if mine != theirs:
            raise AgentError(f"{self.name} was trained for {_describe(mine)}; this env is {_describe(theirs)}: "
                             "make the env to match or train a new one")

    def check_task(self, task: TextTask, path: Any) -> None:
        """A stage loaded from `path` must have been trained for `task` (prompts, vocabulary,
        lengths; a reward model also for the labellers' length bias)."""
        mine, want = self._task().key(), task.key()
        if self.name != "reward-model":
            mine.pop("length_bias"), want.pop("length_bias")
        if mine != want:
            raise CheckpointError(f"{path} is a {self.name} for {_describe(mine)}; this env is {_describe(want)}: "
                                  "give a checkpoint trained for this task")

    def build(self) -> None:
        """The modules and optimisers for `self.task` (set by `bind` or `load`)."""
        raise NotImplementedError

    def make_net(self, out: int, batch: int) -> TokenTransformer:
        """A TokenTransformer of the agent's size, once an estimate says it fits in memory."""
        task, cfg = self._task(), net_config(self.settings, self._task())
        T = task.longest_sequence
        activations = batch * T * cfg.hidden * cfg.layers * 4 * 16 + batch * cfg.heads * T * T * cfg.layers * 4 * 2
        check_memory(self.name, lambda: [TokenTransformer(task.n_tokens, out, cfg)], activations, self.device,
                     "lower hidden, layers or the batch (--set hidden=...)")
        return TokenTransformer(task.n_tokens, out, cfg).to(self.device)

    def begin(self, env: gym.Env, seed: int) -> None:
        torch.manual_seed(seed)
        self.bind(env)
        self.build()
        self.sampler.manual_seed(seed)
        self.seed = seed

    def fit(self, env: gym.Env, spec: RunSpec | None = None, **fields: Any) -> dict[str, Any]:
        """The one `fit`; an agent built on stages 1 and 2 gets them first (from its settings'
        checkpoints, or trained now as runs of their own), unless it resumes its own checkpoint
        (which holds them); resumed from a stage's checkpoint, that stage continues first."""
        spec = self.run_spec(spec, fields)
        if self.needs_stages and isinstance(spec, RunSpec):
            stage = stage_of(spec.resume)  # an interrupted pipeline's stage 1 or 2 continues, then the rest runs
            if spec.resume is None or stage is not None:
                self.stage1, self.stage2 = stages(self, env, spec, resume=stage)
                spec = spec.but(resume=None)
        return fit(self, env, spec)

    def unit_rng(self, index: int) -> np.random.Generator:
        """The prompts' stream of unit `index`."""
        return np.random.default_rng(episode_seed(self.seed, index))

    # ---------------------------------------------------------------- playing

    def writer(self) -> TokenTransformer:
        """The network that writes when it plays."""
        return self._module("policy")

    def _module(self, name: str) -> Any:
        if name not in self.modules:
            raise AgentError(f"{self.name} has not been fitted; call fit(env) or load(path) first")
        return self.modules[name]

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.sampler.manual_seed(int(seed))
        return None

    def split(self, obs: Any) -> tuple[np.ndarray, np.ndarray]:
        """An observation as (prompt, response so far)."""
        task = self._task()
        obs = np.asarray(obs, dtype=np.int64).ravel()
        if obs.shape != (task.prompt_len + task.max_len,):
            raise AgentError(f"{self.name} reads observations of {task.prompt_len + task.max_len} tokens; got {obs.shape}")
        response = obs[task.prompt_len:]
        return obs[: task.prompt_len], response[: int(np.argmax(np.append(response, task.pad) == task.pad))]

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        """The next token: sampled at `temperature` (the module docstring says why even in play)."""
        task = self._task()
        prompt, response = self.split(obs)
        seq = torch.as_tensor(task.sequence(prompt, response, ended=False)[None], device=self.device)
        with torch.no_grad():
            token = choose(self.writer()(seq)[:, -1], float(self.settings.temperature), self.sampler)
        return int(token[0]), None

    def overlay(self) -> dict[str, np.ndarray]:
        return {}

    def digest(self) -> str:
        return "".join(module_digest(m)[:16] for _, m in sorted(self.modules.items()))

    # ---------------------------------------------------------------- the one checkpoint format

    def extra_state(self) -> dict[str, Any]:
        return {}

    def save(self, path: str | Path) -> Path:
        arrays, state = torch_arrays(self.modules, self.optims, self.sampler)
        state["text"] = self._task().key()
        state.update(self.extra_state())
        arrays.update(self.log.arrays())
        return save_checkpoint(path, self.name, typed.as_dict(self.settings), arrays, env=self.trained_on,
                               budget=self.budget.as_dict() if self.budget else None, seed=self.seed, state=state)

    def load(self, path: str | Path, env: gym.Env | None = None) -> Any:
        """Restore a checkpoint of this agent; settings and task come from the file, the device stays."""
        arrays, meta = load_checkpoint(path, self.name)
        saved = load_settings(self.Settings, meta, path, self.name)
        self.settings = typed.build(self.Settings, {**typed.as_dict(saved), "device": self.settings.device}, CheckpointError)
        self.task = task_of(meta["state"].get("text"), path)
        self.restore_state(meta["state"], path)
        self.build()
        restore_torch(arrays, meta["state"], self.modules, self.optims, self.sampler, self.device, path)
        restore_progress(self, arrays, meta, path)
        for module in self.frozen():
            module.requires_grad_(False)
        if env is not None:
            self.check_fits(env)
        return self

    def restore_state(self, state: dict[str, Any], path: Any) -> None:
        """What `extra_state` saved, read back before the modules are built."""

    def frozen(self) -> list[Any]:
        return []


def task_of(key: Any, path: Any) -> TextTask:
    """The TextTask a checkpoint names in its header."""
    try:
        task = TextTask(str(key["task"]), int(key["prompt_len"]), int(key["max_len"]), int(key["vocab"]),
                        float(key["length_bias"]))
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: its text task record is missing or damaged; it was not written for the text env") from None
    if not (1 <= task.prompt_len <= 64 and 1 <= task.max_len <= 64 and 2 <= task.vocab <= 64):
        raise CheckpointError(f"{path}: its text task record is out of range; the file is damaged")
    return task


def _describe(key: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items())


def stage_spec(spec: RunSpec, folder: str) -> RunSpec:
    """A stage's own run inside a pipeline's: its own folder, its agent's own budget."""
    return RunSpec(seed=spec.seed, run_dir=spec.run_dir / folder if spec.run_dir else None,
                   checkpoint_every=spec.checkpoint_every, progress=spec.progress)


# --------------------------------------------------------------------------- stage 1: supervised


class LanguageModel(TextAgent):
    """Stage 1 (`lm`): next-token prediction on demonstrations (the module docstring)."""

    name = "lm"
    Settings = LMSettings

    def build(self) -> None:
        net = self.make_net(self._task().n_actions, self.settings.batch_size)
        self.modules = {"policy": net}
        self.optims = {"adam": torch.optim.Adam(net.parameters(), lr=self.settings.lr)}

    def demonstration(self, prompt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The right answer; with probability `demo_noise`, with one mistake (a digit changed,
        dropped or added)."""
        task = self._task()
        answer = list(task.answer(prompt))
        if rng.random() < self.settings.demo_noise:
            kind = int(rng.integers(3))
            if kind == 0 and answer:
                answer[int(rng.integers(len(answer)))] = int(rng.integers(task.vocab))
            elif kind == 1 and answer:
                del answer[int(rng.integers(len(answer)))]
            elif len(answer) < task.max_len:
                answer.insert(int(rng.integers(len(answer) + 1)), int(rng.integers(task.vocab)))
        return np.array(answer, dtype=np.int64)

    def learn(self, env: gym.Env, index: int, progress: float) -> dict[str, Any]:
        """One batch of demonstrations, one Adam step; "return" is the mean gold score of the
        model's own samples for the batch's prompts."""
        task, net, rng = self._task(), self.modules["policy"], self.unit_rng(index)
        prompts = task.prompts(self.settings.batch_size, rng)
        demos = [self.demonstration(p, rng) for p in prompts]
        tokens = torch.as_tensor(pad([task.sequence(p, d, ended=True) for p, d in zip(prompts, demos)], task.pad),
                                 device=self.device)
        logits = response_logits(net, task, tokens)  # (B, L, A)
        targets = tokens[:, task.prompt_len + 1:]  # (B, L): response tokens and end
        mask = targets != task.pad
        loss = torch.nn.functional.cross_entropy(logits[mask], targets[mask])  # -mean_t log pi(y_t | x, y_<t)
        check_finite(loss=loss)
        self.optims["adam"].zero_grad()
        loss.backward()
        self.optims["adam"].step()
        _, responses = sample(net, task, prompts, 1.0, self.sampler, self.device)
        gold = np.mean([task.gold(p, r) for p, r in zip(prompts, responses)])
        return {"return": float(gold), "loss": loss.item()}


# --------------------------------------------------------------------------- stage 2: the reward model


class RewardModel(TextAgent):
    """Stage 2 (`reward-model`): r(x, y) from preference pairs (the module docstring).

    Its pairs are a fixed data set drawn once from the run's seed: responses sampled from
    the stage-1 model (`sft`) when there is one, else the task's edited answers, labelled
    by the task's labellers (with `noise`); `heldout` more pairs measure its pairwise
    accuracy. As a player it writes, token by token, what its own score likes best: what
    the proxy rewards, with no language model to keep it honest."""

    name = "reward-model"
    Settings = RewardModelSettings

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.sft_model: LanguageModel | None = None  # stage 1 given in memory (a pipeline without a run folder)
        self.data: dict[str, np.ndarray] | None = None
        self.heldout_accuracy: float | None = None

    def build(self) -> None:
        net = self.make_net(1, 2 * self.settings.batch_size)
        self.modules = {"reward": net}
        self.optims = {"adam": torch.optim.Adam(net.parameters(), lr=self.settings.lr)}

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        """The token whose completed response (that token, then end) it scores highest."""
        task = self._task()
        prompt, response = self.split(obs)
        options = [np.append(response, d) for d in range(task.vocab)] if len(response) < task.max_len else []
        scores = self.score(np.repeat(prompt[None], len(options) + 1, axis=0), [*options, response])
        return int(np.argmax(scores)) if options else task.eos, None

    def score(self, prompts: np.ndarray, responses: list[np.ndarray]) -> np.ndarray:
        """r(x, y) (B,) for prompts (B, P) and complete responses."""
        net = self._module("reward")
        tokens, last = score_input(self._task(), np.asarray(prompts), responses)
        with torch.no_grad():
            r = self.rewards(net, torch.as_tensor(tokens, device=self.device), torch.as_tensor(last, device=self.device))
        return r.double().cpu().numpy()

    @staticmethod
    def rewards(net: TokenTransformer, tokens: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """The scalar head read at each sequence's last token: (B,)."""
        return net(tokens)[torch.arange(len(last), device=tokens.device), last, 0]

    # ---------------------------------------------------------------- the pairs

    def sft_policy(self) -> LanguageModel | None:
        if self.sft_model is None and self.settings.sft is not None:
            self.sft_model = load_stage(LanguageModel, self.settings.sft, "sft", self.device)
            self.sft_model.check_task(self._task(), self.settings.sft)
        return self.sft_model

    def labelled_pairs(self, n: int, stream: int) -> dict[str, np.ndarray]:
        """`n` pairs (preferred, rejected) with their tokens and last indices, from stream `stream`."""
        task, lm = self._task(), self.sft_policy()
        rng = np.random.default_rng(episode_seed(self.seed, stream))
        sampler = torch.Generator().manual_seed(episode_seed(self.seed, stream + 1))
        prompts_out: list[np.ndarray] = []
        win: list[np.ndarray] = []
        lose: list[np.ndarray] = []
        tried = 0
        while len(win) < n:
            prompts = task.prompts(max(64, n - len(win)), rng)
            if lm is not None and tried < 8 * n:  # stage-1 samples; a model that always agrees with itself gives ties
                both = np.repeat(prompts, 2, axis=0)
                _, responses = sample(lm.writer(), task, both, 1.0, sampler, lm.device)
                answers = list(zip(responses[0::2], responses[1::2]))
            else:
                answers = [(task.candidate(p, rng), task.candidate(p, rng)) for p in prompts]
            tried += len(prompts)
            for p, (a, b) in zip(prompts, answers):
                verdict = task.prefers_first(p, a, b, rng, self.settings.noise)
                if verdict is None or len(win) >= n:
                    continue
                prompts_out.append(p)
                win.append(a if verdict else b)
                lose.append(b if verdict else a)
        P = np.array(prompts_out)
        tw, lw = score_input(task, P, win)
        tl, ll = score_input(task, P, lose)
        return {"win": tw, "win_last": lw, "lose": tl, "lose_last": ll}

    def pairs(self) -> dict[str, np.ndarray]:
        if self.data is None:
            train = self.labelled_pairs(self.settings.pairs, DATA_STREAM)
            test = self.labelled_pairs(self.settings.heldout, DATA_STREAM + 2)
            self.data = {**train, **{f"heldout_{k}": v for k, v in test.items()}}
        return self.data

    def accuracy(self, prefix: str = "heldout_") -> float:
        """The share of pairs where r(preferred) > r(rejected)."""
        d = self.pairs()
        net = self.modules["reward"]
        with torch.no_grad():
            rw = self.rewards(net, torch.as_tensor(d[prefix + "win"]), torch.as_tensor(d[prefix + "win_last"]))
            rl = self.rewards(net, torch.as_tensor(d[prefix + "lose"]), torch.as_tensor(d[prefix + "lose_last"]))
        return float((rw > rl).double().mean())

    def learn(self, env: gym.Env, index: int, progress: float) -> dict[str, Any]:
        """One batch of pairs, one Adam step; "return" is the batch's pairwise accuracy."""
        d, net = self.pairs(), self.modules["reward"]
        pick = self.unit_rng(index).integers(len(d["win"]), size=self.settings.batch_size)
        t = {k: torch.as_tensor(d[k][pick], device=self.device) for k in ("win", "win_last", "lose", "lose_last")}
        margin = self.rewards(net, t["win"], t["win_last"]) - self.rewards(net, t["lose"], t["lose_last"])
        loss = -torch.nn.functional.logsigmoid(margin).mean()  # -log sigmoid(r(x, y_w) - r(x, y_l))
        check_finite(loss=loss)
        self.optims["adam"].zero_grad()
        loss.backward()
        self.optims["adam"].step()
        out: dict[str, Any] = {"return": float((margin > 0).double().mean()), "loss": loss.item()}
        total = self.budget.total if self.budget else 1
        if (index + 1) % max(1, total // 10) == 0 or index + 1 == total:
            out["heldout_accuracy"] = self.heldout_accuracy = self.accuracy()
        return out

    def finish(self) -> dict[str, Any]:
        out = super().finish()
        if "reward" in self.modules:
            self.heldout_accuracy = self.accuracy()
            out["heldout_accuracy"] = round(self.heldout_accuracy, 4)
        return out


# --------------------------------------------------------------------------- loading stages


def load_stage(cls: type, path: str | Path, setting_name: str, device: torch.device) -> Any:
    """A stage's agent from its checkpoint, its modules frozen; a checkpoint of another
    agent is one line naming the setting that pointed at it."""
    agent = cls(device=device.type)
    try:
        agent.load(path)
    except CheckpointError as exc:
        raise CheckpointError(f"--set {setting_name}={path}: {exc}") from None
    for module in agent.modules.values():
        module.requires_grad_(False)
    return agent


def reward_model_for(task: TextTask, path: str | None) -> RewardModel:
    """The env's reward-model judge: the checkpoint at `path`, or the cached one for `task`
    (trained once from the task's edited answers)."""
    if path is not None:
        model: RewardModel = load_stage(RewardModel, path, "reward_model", torch.device("cpu"))
        model.check_task(task, path)
        return model
    return cached_stage(RewardModel, task)  # type: ignore[return-value]


REFERENCE_PROMPTS, REFERENCE_SEED = 2000, 12345
_STAGE1_GOLD: dict[tuple[tuple[str, Any], ...], float] = {}


def stage1_gold(task: TextTask) -> float:
    """The mean gold score of the default stage-1 model (`lm`, seed 0) on `task`: the 0 of the
    leaderboard's normalised text score (gold-best is its 1). Trained once and cached."""
    key = tuple(sorted(task.key().items()))
    if key not in _STAGE1_GOLD:
        _STAGE1_GOLD[key] = mean_gold(cached_stage(LanguageModel, task).writer(), task, REFERENCE_PROMPTS,
                                      REFERENCE_SEED)
    return _STAGE1_GOLD[key]


def cached_stage(cls: type[TextAgent], task: TextTask) -> TextAgent:
    """Stage 1 (`LanguageModel`) or stage 2 (`RewardModel`, from the task's edited answers) at
    its default settings, seed 0, on CPU with one thread, so that it is the same on every
    machine: trained for `task` once and cached (envs/vision.py keeps the cache)."""
    from envs.vision import cached_module

    model: TextAgent = cls(device="cpu")
    model.task = task
    model.build()
    module = "reward" if cls is RewardModel else "policy"
    blank = model.modules[module]

    def train() -> tuple[Any, dict[str, str]]:
        env = gym.make("arena/TextGeneration-v0", **task.key())
        model.fit(env, RunSpec(seed=0, progress=False))  # (on one thread: cached_module trains so)
        extra = {"heldout_accuracy": f"{model.heldout_accuracy:.4f}"} if isinstance(model, RewardModel) else {}
        return model.modules[module], extra

    stem = f"{cls.name}-{task.task}-p{task.prompt_len}-m{task.max_len}-v{task.vocab}-b{task.length_bias:g}-seed0"
    what = f"the {'reward model' if module == 'reward' else 'stage-1 model'} for text:{task.task} (seed 0)"
    model.modules = {module: cached_module(cls.name, stem, task.key(), lambda: blank, train, what)}
    return model


# --------------------------------------------------------------------------- the pipeline's stages 1 and 2


def stage_of(path: Path | None) -> str | None:
    """Which stage a checkpoint given to --resume belongs to: "lm", "reward-model", or None
    (no checkpoint, or another agent's: the loop then says whose it is)."""
    if path is None:
        return None
    from agents.checkpoint import CHECKPOINT_KIND, CHECKPOINT_VERSION, read_arrays
    from arena.errors import FileFormatError

    try:
        _, meta = read_arrays(path, CHECKPOINT_KIND, (CHECKPOINT_VERSION,))
    except FileFormatError as exc:
        raise CheckpointError(str(exc)) from None
    owner = meta.get("agent")
    return owner if owner in (LanguageModel.name, RewardModel.name) else None


def stages(agent: TextAgent, env: gym.Env, spec: RunSpec, resume: str | None = None) -> tuple[LanguageModel, RewardModel]:
    """Stage 1 and stage 2 for `agent` (rlhf, best-of-n): loaded from its `sft` and
    `reward_model` settings, or trained now, each a run of its own (runs/<run>/stage1-lm,
    runs/<run>/stage2-reward-model) so it can be inspected and reused. `resume` ("lm" or
    "reward-model"): `spec.resume` is that stage's checkpoint, left by an interrupted
    pipeline; the stage continues from it (stage 2 from the stage 1 its checkpoint names)."""
    s, task = agent.settings, text_task(env, agent.name)
    if resume is not None and (s.sft if resume == LanguageModel.name else s.reward_model) is not None:
        raise CheckpointError(f"--resume {spec.resume} continues a stage that --set "
                              f"{'sft' if resume == LanguageModel.name else 'reward_model'} also gives; drop one of them")
    sft = s.sft
    if resume == RewardModel.name and sft is None and spec.resume is not None:  # stage 1 finished before stage 2 began: its checkpoint says where
        sft = RewardModel(device=s.device).load(spec.resume).settings.sft
        if sft is None:
            raise CheckpointError(f"{spec.resume} learned from edited answers, not from a stage-1 model; give the "
                                  "stage 1 to start from with --set sft=...")
    if sft is not None:
        lm = load_stage(LanguageModel, sft, "sft", agent.device)
        lm.check_task(task, sft)
    else:
        lm = LanguageModel(device=s.device)
        lm.fit(env, stage_spec(spec, "stage1-lm").but(resume=spec.resume if resume == LanguageModel.name else None))
    if s.reward_model is not None:
        rm = load_stage(RewardModel, s.reward_model, "reward_model", agent.device)
        rm.check_task(task, s.reward_model)
    else:
        run = stage_spec(spec, "stage2-reward-model")
        rm = RewardModel(device=s.device, sft=str(run.run_dir.parent / "stage1-lm" / "checkpoint.npz")
                         if run.run_dir and sft is None else sft)
        rm.sft_model = lm
        rm.fit(env, run.but(resume=spec.resume if resume == RewardModel.name else None))
    for module in [*lm.modules.values(), *rm.modules.values()]:
        module.requires_grad_(False)
    return lm, rm


# --------------------------------------------------------------------------- stage 3: RL against the reward model


class RLHF(TextAgent):
    """Stage 3 (`rlhf`): the module docstring's J(pi), by REINFORCE with a leave-one-out baseline.

    One unit: `prompts` prompts, `k` responses to each, one Adam step. Its checkpoint holds
    the policy, the frozen reference and the frozen reward model, so a resumed or loaded
    run needs no other file. Logged every update: proxy, gold, KL (sum over a response),
    entropy (per token), distinct (share of different responses) and length."""

    name = "rlhf"
    Settings = RLHFSettings
    needs_stages = True

    def build(self) -> None:
        if self.stage1 is not None and self.stage2 is not None:  # a fresh run: copies of the stages
            policy = copy.deepcopy(self.stage1.writer()).requires_grad_(True)
            reference = copy.deepcopy(self.stage1.writer()).requires_grad_(False)
            reward = copy.deepcopy(self.stage2.modules["reward"]).requires_grad_(False)
            self.nets = {"policy": policy.cfg.to_dict(), "reward": reward.cfg.to_dict()}
        else:  # a checkpoint: shapes from its header
            task = self._task()
            policy = TokenTransformer(task.n_tokens, task.n_actions, NetConfig(**self.nets["policy"]))
            reference = TokenTransformer(task.n_tokens, task.n_actions, NetConfig(**self.nets["policy"]))
            reward = TokenTransformer(task.n_tokens, 1, NetConfig(**self.nets["reward"]))
        self.modules = {"policy": policy.to(self.device), "reference": reference.to(self.device),
                        "reward": reward.to(self.device)}
        self.optims = {"adam": torch.optim.Adam(policy.parameters(), lr=self.settings.lr)}

    nets: dict[str, Any] = {}

    def extra_state(self) -> dict[str, Any]:
        return {"nets": self.nets}

    def restore_state(self, state: dict[str, Any], path: Any) -> None:
        nets = state.get("nets")
        try:
            self.nets = {k: NetConfig(**nets[k]).to_dict() for k in ("policy", "reward")}  # type: ignore[index]
        except (KeyError, TypeError):
            raise CheckpointError(f"{path}: its network record is missing or damaged; write it again") from None
        self.stage1 = self.stage2 = None

    def frozen(self) -> list[Any]:
        return [self.modules["reference"], self.modules["reward"]]

    # ---------------------------------------------------------------- playing, traced

    trace: dict[str, list[float]] = {}

    def reset(self, seed: int | None = None) -> None:
        self.trace = {"log_ratio": [], "kl": [], "proxy": []}
        return super().reset(seed)

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        """The next token, as every writer chooses it; the episode's trace keeps, per token, its
        log-ratio log pi(a)/pi_ref(a) and the exact KL_t, and at the end the reward model's
        score: what the replay viewer colours and the leaderboard reports."""
        task = self._task()
        prompt, response = self.split(obs)
        seq = torch.as_tensor(task.sequence(prompt, response, ended=False)[None], device=self.device)
        with torch.no_grad():
            logits = self.modules["policy"](seq)[0, -1]
            logp = torch.log_softmax(logits, -1)
            ref_logp = torch.log_softmax(self.modules["reference"](seq)[0, -1], -1)
            token = int(choose(logits[None], float(self.settings.temperature), self.sampler)[0])
        trace = self.trace or {"log_ratio": [], "kl": [], "proxy": []}
        trace["log_ratio"].append(float(logp[token] - ref_logp[token]))
        trace["kl"].append(max(0.0, float((logp.exp() * (logp - ref_logp)).sum())))
        if token == task.eos or len(response) + 1 >= task.max_len:  # the response ends here
            final = response if token == task.eos else np.append(response, token)
            tokens, last = score_input(task, prompt[None], [final])
            with torch.no_grad():
                trace["proxy"] = [float(RewardModel.rewards(self.modules["reward"], torch.as_tensor(tokens, device=self.device),
                                                           torch.as_tensor(last, device=self.device))[0])]
        self.trace = trace
        return token, None

    def overlay(self) -> dict[str, np.ndarray]:
        """The last episode's trace: per token `log_ratio` and `kl`, and `proxy` at its end."""
        return {k: np.array(v, dtype=np.float64) for k, v in self.trace.items() if v}

    def begin(self, env: gym.Env, seed: int) -> None:
        if self.stage1 is None or self.stage2 is None:
            self.stage1, self.stage2 = stages(self, env, RunSpec(seed=seed, progress=False))
        super().begin(env, seed)

    def learn(self, env: gym.Env, index: int, progress: float) -> dict[str, Any]:
        s, task = self.settings, self._task()
        policy, reference, reward = self.modules["policy"], self.modules["reference"], self.modules["reward"]
        prompts = np.repeat(task.prompts(s.prompts, self.unit_rng(index)), s.k, axis=0)  # (B = prompts K, P)
        seq, responses = sample(policy, task, prompts, 1.0, self.sampler, self.device)
        tokens, last = score_input(task, prompts, responses)
        with torch.no_grad():
            proxy = RewardModel.rewards(reward, torch.as_tensor(tokens, device=self.device),
                                        torch.as_tensor(last, device=self.device))  # r(x, y_i)
            ref_logp = torch.log_softmax(response_logits(reference, task, seq), dim=-1)
        logp = torch.log_softmax(response_logits(policy, task, seq), dim=-1)  # (B, L, A): the logits sampled from
        actions = seq[:, task.prompt_len + 1:]
        mask = (actions != task.pad).float()
        logp_taken = logp.gather(-1, actions.clamp(max=task.eos)[..., None])[..., 0] * mask  # log pi(y_t)
        kl_t = (logp.exp() * (logp - ref_logp)).sum(-1).clamp(min=0.0) * mask  # exact KL_t per token
        kl = kl_t.sum(1)  # (B,)
        R = (proxy - s.beta * kl.detach()).view(s.prompts, s.k)
        A = (R - (R.sum(1, keepdim=True) - R) / (s.k - 1)).view(-1)  # leave-one-out baseline
        loss = -(A * logp_taken.sum(1)).mean() + s.beta * kl.mean()
        entropy = -(logp.exp() * logp).sum(-1)
        check_finite(loss=loss)
        self.optims["adam"].zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), s.max_grad_norm)
        if not torch.isfinite(grad_norm):
            self.optims["adam"].zero_grad()
            raise NonFinite("gradient norm", grad_norm.item())
        self.optims["adam"].step()
        gold = np.array([task.gold(p, r) for p, r in zip(prompts, responses)])
        return {"return": float(proxy.mean()), "proxy": float(proxy.mean()), "gold": float(gold.mean()),
                "kl": float(kl.mean().detach()), "entropy": float((entropy * mask).sum().detach() / mask.sum()),
                "distinct": len({tuple(r) for r in responses}) / len(responses),
                "length": float(np.mean([len(r) for r in responses]))}

    def finish(self) -> dict[str, Any]:
        out = super().finish()
        values = self.log.values
        if values.get("gold"):
            out.update({"gold": round(values["gold"][-1], 4), "proxy": round(values["proxy"][-1], 4),
                        "kl": round(values["kl"][-1], 4)})
            if self.log.run_dir is not None:
                out["overoptimisation"] = str(overoptimisation_plot(self.log, self.log.run_dir / "overoptimisation.png",
                                                                    f"rlhf beta={self.settings.beta:g}"))
        return out


def overoptimisation_plot(log: TrainingLog, path: Path, title: str) -> Path:
    """Gold and proxy scores against sqrt(KL) from the reference, as Gao, Schulman & Hilton
    (2022) draw them: the proxy keeps rising while the gold score peaks and falls."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agents.checkpoint import write_atomically

    kl = np.sqrt(np.maximum(np.array(log.values["kl"]), 0.0))
    w = max(1, len(kl) // 25)
    smooth = (lambda v: np.convolve(np.asarray(v), np.ones(w) / w, mode="valid"))
    fig, gold_axis = plt.subplots(figsize=(7, 4))
    proxy_axis = gold_axis.twinx()
    gold_axis.plot(smooth(kl), smooth(log.values["gold"]), color="C2", label="gold (the hidden rule)")
    proxy_axis.plot(smooth(kl), smooth(log.values["proxy"]), color="C1", label="proxy (the reward model)")
    gold_axis.set_xlabel("sqrt KL(pi || pi_ref)  (nats^1/2)")
    gold_axis.set_ylabel("gold score", color="C2")
    proxy_axis.set_ylabel("reward-model score", color="C1")
    fig.legend(loc="lower center", ncol=2, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- best-of-n and gold-best


class BestOfN(TextAgent):
    """`best-of-n`: for each prompt, n responses sampled from the stage-1 model; it writes the
    one the reward model scores highest. No training of its own (a Planner)."""

    name = "best-of-n"
    Settings = BestOfNSettings
    needs_stages = True
    recurrent = True  # it keeps the response it chose

    def build(self) -> None:
        task = self._task()
        if self.stage1 is not None and self.stage2 is not None:
            self.nets = {"policy": self.stage1.writer().cfg.to_dict(), "reward": self.stage2.modules["reward"].cfg.to_dict()}
            self.modules = {"policy": self.stage1.writer(), "reward": self.stage2.modules["reward"]}
        else:
            self.modules = {"policy": TokenTransformer(task.n_tokens, task.n_actions, NetConfig(**self.nets["policy"])),
                            "reward": TokenTransformer(task.n_tokens, 1, NetConfig(**self.nets["reward"]))}
        self.modules = {k: m.to(self.device) for k, m in self.modules.items()}

    nets: dict[str, Any] = {}
    extra_state = RLHF.extra_state
    restore_state = RLHF.restore_state

    def plan(self, env: gym.Env, seed: int) -> dict[str, Any]:
        self.bind(env)
        if self.stage1 is None or self.stage2 is None:
            self.stage1, self.stage2 = stages(self, env, RunSpec(seed=seed, progress=False))
        self.build()
        self.seed, self.trained_on = seed, None
        return {"n": self.settings.n}

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        task = self._task()
        prompt, response = self.split(obs)
        if state is None:
            prompts = np.repeat(prompt[None], self.settings.n, axis=0)
            _, candidates = sample(self.modules["policy"], task, prompts, 1.0, self.sampler, self.device)
            tokens, last = score_input(task, prompts, candidates)
            with torch.no_grad():
                r = RewardModel.rewards(self.modules["reward"], torch.as_tensor(tokens, device=self.device),
                                        torch.as_tensor(last, device=self.device))
            state = candidates[int(r.argmax())]
        i = len(response)
        return (int(state[i]) if i < len(state) else task.eos), state

    def overlay(self) -> dict[str, np.ndarray]:
        """`kl_bound`: log n - (n-1)/n, the bound on best-of-n's KL from the stage-1 model (Beirami et al. 2024)."""
        n = self.settings.n
        return {"kl_bound": np.array([math.log(n) - (n - 1) / n])}


class GoldBest(TextAgent):
    """`gold-best`: writes the right answer, read from the task's hidden rule: the ceiling the
    leaderboard's normalised gold score calls 1. Nothing to learn (a Planner)."""

    name = "gold-best"
    Settings = GoldBestSettings

    def build(self) -> None:
        self.modules = {}

    def plan(self, env: gym.Env, seed: int) -> dict[str, Any]:
        self.bind(env)
        self.seed = seed
        return {}

    def act(self, obs: Any, state: Any = None, greedy: bool = True) -> tuple[int, Any]:
        task = self._task()
        prompt, response = self.split(obs)
        answer = task.answer(prompt)
        return (int(answer[len(response)]) if len(response) < len(answer) else task.eos), None

    def digest(self) -> str:
        return ""


# --------------------------------------------------------------------------- best-of-n, exactly


def best_of_n_exact(p: np.ndarray, r: np.ndarray, n: int) -> tuple[np.ndarray, float, float]:
    """The best-of-n policy of a reference distribution `p` over responses with rewards `r`
    (ties broken uniformly at random): its probabilities, KL(best-of-n || reference) and its
    win rate against a reference sample (ties count half). Beirami et al. (2024): the KL is
    at most log n - (n - 1)/n and the win rate at most n/(n + 1)."""
    p, r = np.asarray(p, dtype=np.float64), np.asarray(r, dtype=np.float64)
    levels = np.unique(r)
    F = np.array([p[r <= v].sum() for v in levels])  # reference CDF at each reward level
    F_below = np.concatenate([[0.0], F[:-1]])
    q = np.zeros_like(p)
    for v, hi, lo in zip(levels, F, F_below):
        at = r == v
        q[at] = (hi**n - lo**n) * p[at] / p[at].sum()  # P(best of n lands on this level), shared by probability
    live = q > 0
    kl = float((q[live] * np.log(q[live] / p[live])).sum())
    mass = np.array([p[r == v].sum() for v in levels])
    win_level = F_below + 0.5 * mass  # P(reference sample below) + half P(tie), per level
    win = float(sum(q[r == v].sum() * w for v, w in zip(levels, win_level)))
    return q, kl, win


__all__ = ["BestOfN", "GoldBest", "LanguageModel", "RLHF", "RewardModel", "best_of_n_exact", "cached_stage", "mean_gold", "overoptimisation_plot",
           "reward_model_for", "sample", "stage1_gold"]
