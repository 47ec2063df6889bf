"""ChatGPT's three stages in miniature: the text env, the language model, the reward model,
RL with a KL penalty, best-of-n against its closed-form bounds, and the bad input around them."""

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from typer.testing import CliRunner

import envs  # noqa: F401
from agents.language import (RLHF, BestOfN, LanguageModel, RewardModel, best_of_n_exact, mean_gold, response_logits,
                             sample)
from agents.protocol import Callback
from arena.cli import app
from arena.errors import ArenaError
from arena.registry import make_agent, make_env, parse_env
from envs.text import TASKS, TextError

TEXT = "arena/TextGeneration-v0"
runner = CliRunner()


def one_line_error(*args):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def text_env(spec, render_mode=None, **kwargs):
    """An env from the CLI's string, e.g. "text:sort max_len=5", with more kwargs."""
    env_id, parsed = parse_env(spec)
    return make_env(env_id, {**parsed, **kwargs}, render_mode)


def write(env, tokens):
    """Write a response token by token; the last step's (reward, info)."""
    for t in tokens:
        _, r, term, trunc, info = env.step(t)
        if term or trunc:
            return r, info
    raise AssertionError("the response did not end")


# --------------------------------------------------------------------------- the env


@pytest.mark.parametrize("task", TASKS)
def test_every_task_passes_both_env_checkers(task):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(gym.make(TEXT, task=task, render_mode="rgb_array").unwrapped)
        sb3_check_env(gym.make(TEXT, task=task))


def test_the_gold_rule_scores_what_the_task_asks():
    env = text_env("text:sort")
    obs, _ = env.reset(seed=3)
    prompt = obs[:4]
    eos = env.unwrapped.text.eos
    r, info = write(env, [*np.sort(prompt), eos])
    assert r == 1.0 and info["gold"] == 1.0 and info["is_success"] and info["length"] == 4 and info["proxy"] is None
    env.reset(seed=3)
    r, info = write(env, [*np.sort(prompt), 0, eos])  # one digit too many
    assert r == pytest.approx(4 / 5) and not info["is_success"]
    env.reset(seed=3)
    r, _ = write(env, [eos])  # nothing said
    assert r == 0.0
    evens = text_env("text:evens prompt_len=6")
    obs, _ = evens.reset(seed=5)
    want = [d for d in obs[:6] if d % 2 == 0]
    assert write(evens, [*want, evens.unwrapped.text.eos])[0] == 1.0


def test_a_response_ends_at_max_len_and_the_same_seed_gives_the_same_prompt():
    env = text_env("text:sort max_len=5")
    first = env.reset(seed=7)[0].copy()
    for _ in range(4):
        _, _, term, _, _ = env.step(1)
        assert not term
    _, _, term, _, info = env.step(1)
    assert term and info["length"] == 5
    assert np.array_equal(env.reset(seed=7)[0], first)
    assert not np.array_equal(env.reset(seed=8)[0], first)


def test_the_tape_renders_in_rgb_and_ansi():
    env = text_env("text:sort", render_mode="rgb_array")
    env.reset(seed=0)
    write(env, [1, 2, env.unwrapped.text.eos])
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 0
    text = text_env("text:sort", render_mode="ansi")
    text.reset(seed=0)
    assert "prompt:" in text.render() and "want:" in text.render()


@pytest.mark.parametrize("kwargs, fragment", [
    ({"task": "poetry"}, "task"),
    ({"judge": "human"}, "judge"),
    ({"prompt_len": 0}, "prompt_len"),
    ({"prompt_len": 17}, "prompt_len"),
    ({"prompt_len": 8, "max_len": 4}, "max_len"),
    ({"length_bias": float("nan")}, "length_bias"),
    ({"vocab": 1}, "vocab"),
])
def test_bad_text_settings_are_one_clear_error(kwargs, fragment):
    with pytest.raises(TextError) as err:
        gym.make(TEXT, **kwargs)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_bad_action_is_refused_in_words():
    env = text_env("text:sort")
    env.reset(seed=0)
    for bad in (-1, 11, 2.5, "a"):
        with pytest.raises(TextError, match="action"):
            env.step(bad)


# --------------------------------------------------------------------------- the agents, small


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """A quickly trained stage 1 and stage 2 on text:sort, saved."""
    folder = tmp_path_factory.mktemp("stages")
    env = text_env("text:sort")
    lm = LanguageModel(updates=60)
    lm.fit(env, seed=0, progress=False)
    lm.save(folder / "lm.npz")
    rm = RewardModel(updates=60, pairs=300, heldout=100, sft=str(folder / "lm.npz"))
    rm.fit(env, seed=0, progress=False)
    rm.save(folder / "rm.npz")
    return folder


def test_responses_are_sampled_from_exactly_the_logits_that_are_scored(stages):
    lm = LanguageModel().load(stages / "lm.npz")
    task = lm.task
    prompts = task.prompts(32, np.random.default_rng(0))
    seq, _ = sample(lm.writer(), task, prompts, 1.0, torch.Generator().manual_seed(0), lm.device)
    with torch.no_grad():
        whole = response_logits(lm.writer(), task, seq)  # one pass over the finished sequences
        step_by_step = torch.stack([lm.writer()(seq[:, : task.prompt_len + 1 + t])[:, -1]
                                    for t in range(seq.shape[1] - task.prompt_len - 1)], dim=1)
    assert torch.allclose(whole, step_by_step, atol=1e-5)


def test_the_kl_is_never_negative_and_every_unit_logs_the_five_figures(stages):
    env = text_env("text:sort")
    rl = RLHF(sft=str(stages / "lm.npz"), reward_model=str(stages / "rm.npz"), beta=0.0, updates=12, prompts=8)
    rl.fit(env, seed=0, progress=False)
    v = rl.log.values
    assert len(v["kl"]) == 12 and min(v["kl"]) >= 0.0 and v["kl"][0] == 0.0  # the policy starts as the reference
    assert max(v["kl"]) > 0  # and moves away
    for name in ("proxy", "gold", "entropy", "distinct", "length"):
        assert len(v[name]) == 12 and all(math.isfinite(x) for x in v[name])


def test_rlhf_resumed_ends_as_the_uninterrupted_run(stages, tmp_path):
    env = text_env("text:sort")
    kw = dict(sft=str(stages / "lm.npz"), reward_model=str(stages / "rm.npz"), updates=6, prompts=4)
    whole = RLHF(**kw)
    whole.fit(env, seed=1, progress=False)
    half = RLHF(**kw)
    half.fit(env, seed=1, budget=3, run_dir=tmp_path / "a", progress=False)
    rest = RLHF(**kw)
    rest.fit(env, resume=tmp_path / "a" / "checkpoint.npz", budget=6, progress=False)
    assert rest.digest() == whole.digest()
    assert rest.log.values["kl"] == pytest.approx(whole.log.values["kl"])


def test_every_text_agent_plays_deterministically_on_the_leaderboard(stages, workdir):
    import arena

    for agent, config in [("gold-best", {}), ("lm", {"updates": 5}),
                          ("best-of-n", {"n": 3, "sft": str(stages / "lm.npz"), "reward_model": str(stages / "rm.npz")}),
                          ("reward-model", {"updates": 5, "pairs": 50, "heldout": 10})]:
        first = arena.evaluate(agent, "text:sort", train_seeds=1, eval_episodes=4, config=config)
        again = arena.evaluate(agent, "text:sort", train_seeds=1, eval_episodes=4, config=config)
        assert first.returns == again.returns, agent
        metrics = first.runs[0].metrics
        assert 0.0 <= metrics["gold"] <= 1.0 and metrics["length"] >= 0
    best = arena.evaluate("gold-best", "text:evens", train_seeds=1, eval_episodes=5)
    assert best.score.iqm == 1.0 and best.success_rate == 1.0


def test_the_env_judges_with_a_given_reward_model_and_reports_both_scores(stages):
    env = text_env("text:sort", judge="reward-model", reward_model=str(stages / "rm.npz"))
    obs, _ = env.reset(seed=0)
    r, info = write(env, [*np.sort(obs[:4]), env.unwrapped.text.eos])
    assert info["gold"] == 1.0 and info["proxy"] == pytest.approx(r) and isinstance(info["proxy"], float)


def test_a_reward_model_for_another_task_or_an_sft_of_another_agent_is_refused(stages, tmp_path):
    with pytest.raises(ArenaError, match="reward-model for .*evens|task=sort"):
        text_env("text:evens", judge="reward-model", reward_model=str(stages / "rm.npz"))
    with pytest.raises(ArenaError, match="vocab"):
        text_env("text:sort vocab=8", reward_model=str(stages / "rm.npz"))
    rl = RLHF(sft=str(stages / "rm.npz"), reward_model=str(stages / "rm.npz"))
    with pytest.raises(ArenaError, match="sft=.*checkpoint of reward-model, not of lm"):
        rl.fit(text_env("text:sort"), seed=0, progress=False)


def test_bad_rlhf_settings_are_one_line_each(stages, workdir):
    assert "beta" in one_line_error("run", "rlhf", "text:sort", "--set", "beta=-1")
    assert "beta" in one_line_error("run", "rlhf", "text:sort", "--set", "beta=nan")
    assert "k must be an integer in [2, 256]" in one_line_error("run", "rlhf", "text:sort", "--set", "k=1")
    assert "prompt_len" in one_line_error("run", "lm", "text:sort prompt_len=0")
    assert "task" in one_line_error("run", "lm", "text:poetry")
    assert "judge" in one_line_error("run", "lm", "text:sort judge=crowd")
    line = one_line_error("run", "rlhf", "text:sort", "--set", f"sft={stages / 'rm.npz'}")
    assert "not of lm" in line
    from arena.leaderboard import Leaderboard

    assert not (workdir / "runs").exists() and not list((workdir / "replays").glob("*/*.npz"))  # nothing trained or played
    assert Leaderboard(workdir / "replays" / "leaderboard.sqlite").results() == []


def test_language_agents_refuse_envs_that_are_not_text():
    with pytest.raises(ArenaError, match="text env"):
        make_agent("lm").fit(text_env("seq:copy"), seed=0)


# --------------------------------------------------------------------------- best-of-n, exactly


def enumerate_responses(lm, prompt):
    """Every response the model can write to `prompt`, with its probability."""
    task = lm.task
    out = []

    def grow(response, p):
        seq = torch.as_tensor(task.sequence(prompt, np.array(response, dtype=np.int64), ended=False)[None])
        with torch.no_grad():
            probs = torch.softmax(lm.writer()(seq)[0, -1].double(), dim=-1).numpy()
        out.append((tuple(response), p * probs[task.eos]))
        if len(response) < task.max_len:
            for d in range(task.vocab):
                if len(response) + 1 == task.max_len:  # a full response ends without eos
                    out.append((tuple(response + [d]), p * probs[d]))
                else:
                    grow(response + [d], p * probs[d])

    grow([], 1.0)
    return out


def test_best_of_n_stays_within_beiramis_bounds_computed_by_enumeration():
    env = text_env("text:sort vocab=3 prompt_len=2 max_len=3")
    lm = LanguageModel(updates=30, hidden=16, heads=2)
    lm.fit(env, seed=0, progress=False)
    task = lm.task
    prompt = np.array([2, 0])
    responses = enumerate_responses(lm, prompt)
    p = np.array([q for _, q in responses])
    assert len(responses) == 1 + 3 + 9 + 27 and p.sum() == pytest.approx(1.0, abs=1e-9)
    r = np.array([task.gold(prompt, np.array(y)) for y, _ in responses])
    for n in (1, 2, 4, 16):
        q, kl, win = best_of_n_exact(p, r, n)
        assert q.sum() == pytest.approx(1.0) and kl >= 0
        assert kl <= math.log(n) - (n - 1) / n + 1e-9
        assert win <= n / (n + 1) + 1e-9
    # with no response carrying much probability (all rewards distinct), the bounds are nearly met
    flat_p, flat_r = np.full(4000, 1 / 4000), np.arange(4000.0)
    for n in (2, 4, 16):
        _, kl, win = best_of_n_exact(flat_p, flat_r, n)
        assert kl == pytest.approx(math.log(n) - (n - 1) / n, abs=2e-3)
        assert win == pytest.approx(n / (n + 1), abs=1e-3)


def test_best_of_n_samples_match_its_exact_distribution():
    """Sampled best-of-n choices follow the closed form (a check on the agent, not the formula)."""
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.3, 0.15, 0.05])
    r = np.array([0.0, 1.0, 2.0, 3.0])
    q, _, _ = best_of_n_exact(p, r, 3)
    draws = rng.choice(4, size=(200_000, 3), p=p)
    picked = draws[np.arange(len(draws)), r[draws].argmax(axis=1)]
    assert np.bincount(picked, minlength=4) / len(draws) == pytest.approx(q, abs=3e-3)


# --------------------------------------------------------------------------- the published behaviour (slow)


@pytest.fixture(scope="module")
def full_stages(tmp_path_factory):
    """Stage 1 and stage 2 on text:sort at their default budgets."""
    folder = tmp_path_factory.mktemp("full")
    env = text_env("text:sort")
    lm = LanguageModel()
    lm.fit(env, seed=0, progress=False)
    lm.save(folder / "lm.npz")
    rm = RewardModel(sft=str(folder / "lm.npz"))
    out = rm.fit(env, seed=0, progress=False)
    rm.save(folder / "rm.npz")
    return folder, lm, out["heldout_accuracy"]


@pytest.mark.slow
def test_the_reward_model_ranks_heldout_pairs_as_the_gold_rule_does(full_stages):
    _, _, accuracy = full_stages
    assert accuracy >= 0.85


@pytest.mark.slow
def test_rlhf_raises_the_gold_score_halfway_to_the_ceiling_with_the_kl_bounded(full_stages):
    folder, lm, _ = full_stages
    env = text_env("text:sort")
    rl = RLHF(sft=str(folder / "lm.npz"), reward_model=str(folder / "rm.npz"))
    rl.fit(env, seed=0, progress=False)
    task = lm.task
    before = mean_gold(lm.writer(), task, 2000, seed=99)
    after = mean_gold(rl.modules["policy"], task, 2000, seed=99)
    assert after - before >= 0.5 * (1.0 - before), (before, after)
    assert max(rl.log.values["kl"]) < 3.0


@pytest.mark.slow
def test_without_a_kl_penalty_the_proxy_rises_while_the_gold_score_peaks_and_falls(full_stages, tmp_path):
    folder, _, _ = full_stages
    env = text_env("text:sort")
    rl = RLHF(sft=str(folder / "lm.npz"), reward_model=str(folder / "rm.npz"), beta=0.0, updates=200)
    out = rl.fit(env, seed=0, progress=False, run_dir=tmp_path)
    smooth = lambda v: np.convolve(v, np.ones(20) / 20, mode="valid")  # noqa: E731
    gold, proxy = smooth(rl.log.values["gold"]), smooth(rl.log.values["proxy"])
    peak = int(gold.argmax())
    assert gold[peak] - gold[-1] >= 0.1 and gold[peak] > gold[0]
    assert proxy[-1] > proxy[peak]
    assert (tmp_path / "overoptimisation.png").stat().st_size > 10_000 and out["overoptimisation"]


@pytest.mark.slow
def test_the_cached_reward_model_judge_is_trained_once_and_a_damaged_cache_is_retrained(tmp_path, monkeypatch, capsys):
    from envs import vision

    monkeypatch.setenv("ARENA_CACHE", str(tmp_path))
    monkeypatch.setattr(vision, "_LOADED", {})
    env = text_env("text:sort", judge="reward-model")
    obs, _ = env.reset(seed=0)
    r, info = write(env, [*np.sort(obs[:4]), env.unwrapped.text.eos])
    assert info["proxy"] == r and "training the reward model" in capsys.readouterr().err
    (cached,) = tmp_path.glob("reward-model-sort-*.safetensors")
    monkeypatch.setattr(vision, "_LOADED", {})
    again = text_env("text:sort", judge="reward-model")
    again.reset(seed=0)
    assert write(again, [*np.sort(obs[:4]), env.unwrapped.text.eos])[0] == r
    assert "training" not in capsys.readouterr().err
    cached.write_bytes(cached.read_bytes()[:-100])
    monkeypatch.setattr(vision, "_LOADED", {})
    third = text_env("text:sort", judge="reward-model")
    third.reset(seed=0)
    assert write(third, [*np.sort(obs[:4]), env.unwrapped.text.eos])[0] == r  # retrained, deterministically
    assert "unusable" in capsys.readouterr().err


@pytest.mark.slow
def test_arena_run_rlhf_runs_the_three_stages_as_runs_of_their_own_and_lands(workdir):
    result = runner.invoke(app, ["run", "rlhf", "text:sort", "--set", "updates=20", "--episodes", "20"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = next((workdir / "runs").glob("*rlhf*"))
    for stage in ("stage1-lm", "stage2-reward-model"):
        assert (run / stage / "checkpoint.npz").exists() and (run / stage / "learning_curve.png").exists()
    assert (run / "overoptimisation.png").exists()
    from arena.leaderboard import Leaderboard

    rows = Leaderboard(workdir / "replays" / "leaderboard.sqlite").results()
    assert [r.agent for r in rows] == ["rlhf"] and 0 <= rows[0].score <= 1 and "gold" in rows[0].metrics
    resumed = RLHF().load(run / "checkpoint.npz")  # self-contained: reference and reward model inside
    assert set(resumed.modules) == {"policy", "reference", "reward"}


def test_an_rlhf_replay_keeps_each_tokens_log_ratio_and_its_row_reports_proxy_and_kl(stages, workdir):
    from arena.leaderboard import Leaderboard
    from arena.replay import load_replay
    from arena.viewer import render_frames

    result = runner.invoke(app, ["run", "rlhf", "text:sort", "--set", f"sft={stages / 'lm.npz'}", "--set",
                                 f"reward_model={stages / 'rm.npz'}", "--set", "updates=3", "--episodes", "3"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (row,) = Leaderboard(workdir / "replays" / "leaderboard.sqlite").results()
    m = row.metrics
    assert m["kl"] >= 0 and isinstance(m["proxy"], float) and 0 <= m["gold"] <= 1
    assert row.score == pytest.approx((m["gold"] - m["stage1_gold"]) / (1 - m["stage1_gold"]))
    replay = load_replay(row.replay_paths[0])
    assert len(replay.overlay["log_ratio"]) == len(replay.overlay["kl"]) == replay.steps
    assert (replay.overlay["kl"] >= 0).all() and len(replay.overlay["proxy"]) == 1
    with_ratios = render_frames(replay)[-1]
    replay.overlay = {}
    assert render_frames(replay)[-1].shape == with_ratios.shape
    assert not np.array_equal(render_frames(replay)[-1], with_ratios)  # the log-ratio row is drawn


def test_the_normalised_gold_score_puts_stage_1_at_0_and_gold_best_at_1():
    from agents.language import stage1_gold

    task = text_env("text:sort").unwrapped.text
    floor = stage1_gold(task)
    assert 0.3 < floor < 0.95 and stage1_gold(task) == floor


def test_the_report_page_draws_every_writers_gold_against_its_kl(tmp_path):
    from arena.leaderboard import Result
    from arena.leaderboard.report import report_page

    rows = []
    for i, (agent, config, metrics) in enumerate([
            ("lm", {}, {"gold": 0.75}), ("rlhf", {"beta": 0.5}, {"gold": 0.94, "kl": 0.8, "proxy": 3.0}),
            ("best-of-n", {"n": 4}, {"gold": 0.93, "kl_bound": math.log(4) - 3 / 4}), ("gold-best", {}, {"gold": 1.0})]):
        for seed in range(2):
            rows.append(Result(f"k{i}{seed}", TEXT, {"task": "sort"}, agent, config, seed, [1000], [metrics["gold"]],
                               metrics["gold"], 0.0, metrics["gold"], score=(metrics["gold"] - 0.75) / 0.25,
                               metrics=metrics))
    page, summary = report_page(rows, tmp_path)
    assert "alt='gold against KL'" in page and "KL 0.80" in page and "gold 0.940" in page


@pytest.mark.slow
def test_a_tournament_of_writers_lands_each_and_its_report_draws_the_frontier(stages, workdir):
    given = f'sft = "{stages / "lm.npz"}", reward_model = "{stages / "rm.npz"}"'
    suite = workdir / "writers.toml"
    suite.write_text(f"""format = 1
description = "writers on text:sort, small"
envs = ["text:sort"]
train_seeds = [0]
eval_episodes = 5

[[agents]]
name = "lm"
budget = 10

[[agents]]
name = "best-of-n"
set = {{ n = 2, {given} }}

[[agents]]
name = "rlhf"
budget = 4
set = {{ beta = 0.5, {given} }}

[[agents]]
name = "gold-best"
""")
    result = runner.invoke(app, ["tournament", str(suite), "--workers", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    from arena.leaderboard import Leaderboard

    rows = Leaderboard(workdir / "replays" / "leaderboard.sqlite").results()
    assert sorted(r.agent for r in rows) == ["best-of-n", "gold-best", "lm", "rlhf"]
    assert {r.agent: r.score for r in rows}["gold-best"] == 1.0
    page = runner.invoke(app, ["leaderboard", "--html", "report.html"], catch_exceptions=False)
    assert page.exit_code == 0, page.output
    assert "alt='gold against KL'" in (workdir / "report.html").read_text()


class StopAfter(Callback):
    """A callback that stops training after `n` units, as Ctrl-C would (the loop saves)."""

    def __init__(self, n):
        self.n = n

    def after_unit(self, learner, done, total):
        return done >= self.n


@pytest.mark.slow
def test_a_pipeline_interrupted_in_a_stage_resumes_from_that_stages_checkpoint(tmp_path):
    """`arena run rlhf ... --resume runs/<run>/stage1-lm/checkpoint.npz` (what Ctrl-C in stage 1
    prints) finishes stage 1 as an uninterrupted run would, then runs stages 2 and 3."""
    from agents.protocol import RunSpec

    env = text_env("text:sort")
    cut = LanguageModel()
    cut.fit(env, RunSpec(seed=0, run_dir=tmp_path / "a" / "stage1-lm", callbacks=(StopAfter(40),), progress=False))
    assert cut.budget.done == 40 < cut.budget.total
    whole = LanguageModel()
    whole.fit(env, seed=0, progress=False)
    rl = RLHF(updates=3)
    rl.fit(env, RunSpec(seed=0, run_dir=tmp_path / "b", resume=tmp_path / "a" / "stage1-lm" / "checkpoint.npz",
                        progress=False))
    assert rl.stage1.digest() == whole.digest() and rl.stage1.budget.done == whole.budget.done
    assert (tmp_path / "b" / "stage2-reward-model" / "checkpoint.npz").exists() and rl.budget.done == 3
    with pytest.raises(ArenaError, match="drop one of them"):
        RLHF(sft=str(tmp_path / "b" / "stage1-lm" / "checkpoint.npz")).fit(
            env, resume=tmp_path / "a" / "stage1-lm" / "checkpoint.npz", progress=False)


def test_the_rlhf_suite_runs_stage_1_best_of_n_rlhf_at_three_betas_and_the_ceiling():
    from arena.tournament import load_suite

    suite = load_suite("rlhf")
    labels = [a.label for a in suite.agents]
    assert labels == ["lm", "best-of-n n=4", "best-of-n n=16", "rlhf beta=0.0", "rlhf beta=0.1", "rlhf beta=0.5",
                      "gold-best"]
    assert len(suite.jobs()) == len(labels)
