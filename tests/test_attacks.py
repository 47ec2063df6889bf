"""Faults found by attacking Arena's newer surfaces: each is one line, exit code 2, and
nothing already saved changes."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

import arena
from arena.cli import app
from arena.errors import ArenaError
from arena.leaderboard import Leaderboard
from tests.test_cli import assert_one_line_error

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A leaderboard with a few cliff runs."""
    root = tmp_path_factory.mktemp("attacks")
    arena.evaluate("random", "grid:cliff", train_seeds=1, eval_episodes=2, record=True, db=root / "lb.sqlite",
                   replays=root / "replays", runs=root / "runs")
    return root / "lb.sqlite"


def snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes()) for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- the report page


def test_the_report_page_never_overwrites_a_file_unless_asked(db, tmp_path):
    page = tmp_path / "report.html"
    page.write_text("mine")
    result = runner.invoke(app, ["leaderboard", "--db", str(db), "--html", str(page)])
    assert_one_line_error(result, "already exists")
    assert page.read_text() == "mine"
    result = runner.invoke(app, ["leaderboard", "--db", str(db), "--html", str(page), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "<html" in page.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_folder_as_report_page_is_one_line_and_leaves_nothing_behind(db, tmp_path):
    folder = tmp_path / "out.html"
    folder.mkdir()
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["leaderboard", "--db", str(db), "--html", str(folder)])
    assert_one_line_error(result, "is a folder")
    assert snapshot(tmp_path) == before and [p.name for p in tmp_path.iterdir()] == ["out.html"]


# --------------------------------------------------------------------------- tables at 120 columns


def test_a_long_env_label_folds_and_every_figure_stays_whole_at_120_columns():
    from rich.console import Console

    from arena.cli import _results_table, _standings_table
    from arena.leaderboard import Result, env_label
    from arena.standings import standings

    kwargs = {"layout": "cliff", "rewards": {"step": -1.0, "cliff": -100.0, "goal": 0.0, "wall": -1.0},
              "slip": 0.1, "max_steps": 10000}
    rows = [Result(run_key=f"k{i}", env_id="arena/GridWorld-v0", env_kwargs=kwargs, agent=agent, agent_config={},
                   train_seed=i, eval_seeds=[1000, 1001], returns=[-13.25, -13.25], mean_return=-13.25, std_return=0.0,
                   iqm_return=-13.25, score=0.987654, exact_return=-13.25, eval_gamma=0.99, replay_paths=[],
                   created="2026-12-02T10:00:00+00:00")
            for i, agent in enumerate(["value-iteration", "q-learning-with-a-long-name"])]
    assert len(env_label(rows[0])) > 100
    for table in (_results_table(rows, "runs"), _standings_table(standings(rows), "standings")):
        console = Console(width=120, record=True)
        console.print(table)
        text = console.export_text()
        assert "0.988" in text and "-13.25" in text and "…" not in text, text
        assert max(map(len, text.splitlines())) <= 120


# --------------------------------------------------------------------------- arena.evaluate

BAD_ARGUMENTS = {
    "agent": [None, 5, "", "nope", ["random"], b"random"],
    "env": ["", "   ", None, 5, "grid:", "grid:nope", "nope:x", "grid:cliff slip=abc", "grid:cliff slip=2", "img:digits batch=0"],
    "train_seeds": [0, -1, 10**9, [], [1000], [1, 1], "3", 3.5, True, [2**40], range(10**7)],
    "eval_episodes": [0, -1, 10**9, 2.5, "10", None, True],
    "budget": [0, -5, 1.5, "10", True],
    "config": [{1: 2}, {"nope": 1}, [], "alpha=0.5", {"epsilon": "x"}, {"epsilon": math.nan}],
    "db": [5, 3.5, []],
    "record": ["yes", 1, None],
    "replays": [5, None],
    "runs": [5, None],
}


def test_every_bad_evaluate_call_is_an_arena_error_and_writes_nothing(tmp_path, monkeypatch):
    """Each bad value of each argument alone, others valid and cheap, then pairs drawn by Hypothesis."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    monkeypatch.chdir(tmp_path)
    good = {"agent": "q-learning", "env": "grid:cliff", "train_seeds": 1, "eval_episodes": 1, "budget": 1}

    def refused(bad: dict) -> None:
        kwargs = {**good, **bad}
        if "db" in bad:
            kwargs["record"] = True
        with pytest.raises(ArenaError) as caught:
            arena.evaluate(kwargs.pop("agent"), kwargs.pop("env"), **kwargs)
        assert "\n" not in str(caught.value)
        assert not list(tmp_path.iterdir()), f"{bad} wrote {list(tmp_path.iterdir())}"

    for name, values in BAD_ARGUMENTS.items():
        for value in values:
            refused({name: value})

    pairs = st.lists(st.sampled_from(sorted(BAD_ARGUMENTS)), min_size=2, max_size=2, unique=True).flatmap(
        lambda names: st.tuples(*(st.tuples(st.just(n), st.sampled_from(BAD_ARGUMENTS[n])) for n in names)))

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(pairs)
    def check(pair):
        refused(dict(pair))

    check()


def test_the_pytest_plugin_passes_a_bad_call_on_as_an_arena_error(pytester):
    pytester.makepyfile("""
        import pytest
        from arena.errors import ArenaError

        def test_bad(arena_eval):
            with pytest.raises(ArenaError):
                arena_eval("q-learning", "", train_seeds=1)
            with pytest.raises(ArenaError):
                arena_eval(5, "grid:cliff", train_seeds=10**9)
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize("args,fragment", [
    (["--episodes", "1000000000"], "evaluate on 1 to 100000 episodes"),
    (["--episodes", "0"], "evaluate on 1 to 100000 episodes"),
    (["--min-score", "nan"], "--min-score nan: give a finite number"),
    (["--min-score", "inf"], "--min-score inf: give a finite number"),
    (["--min-score", "abc"], "Invalid value for '--min-score'"),
    (["--episodes", "abc"], "Invalid value for '--episodes'"),
    (["--no-such-option"], "No such option"),
])
def test_bad_run_options_are_one_line_before_any_work(tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "random", "grid:cliff", *args])
    assert_one_line_error(result, fragment)
    assert not list(tmp_path.iterdir())


def test_a_suite_with_a_million_training_seeds_is_refused_before_any_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "big.toml"
    suite.write_text('envs = ["grid:cliff"]\ntrain_seeds = [' + ", ".join(map(str, range(10**6))) + ']\n'
                     '[[agents]]\nname = "random"\n')
    result = runner.invoke(app, ["tournament", str(suite)])
    assert_one_line_error(result, "at most 1000")
    assert [p.name for p in tmp_path.iterdir()] == ["big.toml"]


def test_rewards_whose_return_could_overflow_are_refused_at_the_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "random", 'grid:cliff rewards={"step":1e308}'])
    assert_one_line_error(result, "rewards['step'] must be a finite number in [-1e+06, 1e+06]")
    assert not list(tmp_path.iterdir())


def test_one_step_limit_for_envs_and_replays():
    from arena import replay
    from envs.abilities import MAX_EPISODE_STEPS
    from envs.grid import GridSettings
    from arena.settings import fields

    assert replay.MAX_STEPS == MAX_EPISODE_STEPS
    assert {f.name: f.high for f in fields(GridSettings)}["max_steps"] == MAX_EPISODE_STEPS


@pytest.mark.parametrize("args,fragment", [
    (["play", "grid:cliff", "--seconds", "nan"], "--seconds nan: use a positive number of seconds"),
    (["play", "grid:cliff", "--seconds", "-1"], "--seconds -1.0: use a positive number of seconds"),
    (["play", "grid:cliff"], "wait forever; add --seconds N"),
])
def test_play_never_waits_forever(tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert_one_line_error(runner.invoke(app, args), fragment)
    assert not list(tmp_path.iterdir())


def test_a_replay_without_a_display_says_so_and_suggests_a_video(db, monkeypatch):
    path = Leaderboard(db).results()[0].replay_paths[0]
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["replay", path])
    assert_one_line_error(result, "no display here")
    assert "--video out.mp4" in result.stderr
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert_one_line_error(runner.invoke(app, ["replay", path, "--seconds", "nan"]), "--seconds nan")
    assert runner.invoke(app, ["replay", path, "--seconds", "0.2"]).exit_code == 0


def test_runs_as_json_are_standard_json_and_a_row_without_some_metrics_is_listed(tmp_path):
    from arena.leaderboard import Result

    board = Leaderboard(tmp_path / "lb.sqlite")
    board.add(Result(run_key="odd", env_id="arena/ImageGeneration-v0", env_kwargs={"dataset": "digits"}, agent="noise",
                     agent_config={}, train_seed=0, eval_seeds=[1000], returns=[math.nan], mean_return=math.nan,
                     std_return=math.inf, iqm_return=math.nan, score=None, exact_return=None, eval_gamma=None,
                     replay_paths=[], metrics={"fid": math.inf}))
    result = runner.invoke(app, ["leaderboard", "--db", str(tmp_path / "lb.sqlite"), "--runs", "--format", "json"])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    result = runner.invoke(app, ["leaderboard", "--db", str(tmp_path / "lb.sqlite"), "--runs"])
    assert result.exit_code == 0 and "noise" in result.stdout, result.output
    result = runner.invoke(app, ["leaderboard", "--db", str(tmp_path / "lb.sqlite"), "--format", "json"])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))


@pytest.mark.parametrize("agent,env,sets", [
    ("reinforce-transformer", "seq:copy", ["hidden=4096", "layers=16"]),
    ("reinforce-lstm", "seq:copy", ["num_envs=65536", "hidden=4096"]),
    ("gan", "img:digits", ["batch_size=4096", "hidden=1024"]),
    ("vae", "img:digits", ["batch_size=4096", "hidden=1024"]),
])
def test_a_network_too_big_for_this_machine_is_refused_before_it_is_built(tmp_path, monkeypatch, agent, env, sets):
    """Settings inside their ranges whose estimate exceeds this machine's memory (its size
    pretended to be 8 GB, so the test means the same everywhere)."""
    from agents import networks

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(networks, "memory_budget", lambda device: (8e9 * networks.MEMORY_SHARE, "8 GB of RAM"))
    args = ["run", agent, env, *(word for s in sets for word in ("--set", s)), "--device", "cpu"]
    result = runner.invoke(app, args)
    assert_one_line_error(result, f"{agent} would need about")
    assert "of this machine's 8 GB of RAM; lower" in result.stderr
    assert not (tmp_path / "replays").exists() or not list((tmp_path / "replays").rglob("*.npz"))


def test_the_default_networks_fit_a_small_machine():
    """The estimate is not so cautious that defaults are refused on a 4 GB laptop."""
    from agents import networks
    from arena.registry import make_agent, make_env

    budget = (4e9 * networks.MEMORY_SHARE, "4 GB of RAM")
    original = networks.memory_budget
    networks.memory_budget = lambda device: budget
    try:
        for agent, env in (("reinforce-transformer", "arena/SequencePrediction-v0"), ("reinforce-lstm",
                           "arena/SequencePrediction-v0"), ("gan", "arena/ImageGeneration-v0"),
                           ("vae", "arena/ImageGeneration-v0")):
            made = make_agent(agent, device="cpu")
            made.begin(make_env(env, {}), 0)  # refused (AgentError) if the estimate said it cannot fit
            assert made.seed == 0
    finally:
        networks.memory_budget = original


def test_evaluation_keeps_only_the_images_scoring_reads(tmp_path):
    from arena.image_score import SCORE_IMAGES
    from arena.match import play
    from arena.registry import make_agent
    from arena.replay import load_replay

    from arena.registry import make_env

    agent = make_agent("noise")
    agent.fit(make_env("arena/ImageGeneration-v0", {"batch": 128}))
    episodes = play(agent, "arena/ImageGeneration-v0", {"batch": 128}, [1000, 1001, 1002, 1003], tmp_path)
    assert sum(len(e.actions) for e in episodes) == SCORE_IMAGES  # 512 made, 300 kept
    assert all(load_replay(e.replay_path).actions.shape[0] == 128 for e in episodes)  # the replays hold them all


def test_the_image_env_steps_in_gymnasiums_forked_async_vector_env_after_torch_was_used():
    import subprocess
    import sys

    script = """
import torch, gymnasium as gym, envs
x = torch.randn(512, 512); (x @ x).sum()  # torch's thread pool is up before the fork
v = gym.make_vec("arena/ImageGeneration-v0", num_envs=2, vectorization_mode="async")
v.reset(seed=0)
obs, r, term, trunc, info = v.step(v.action_space.sample())
v.close()
print("stepped", r.shape)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "stepped (2,)" in done.stdout, done.stderr


def test_markdown_output_never_passes_html_from_the_database(tmp_path):
    from arena.leaderboard import Result

    board = Leaderboard(tmp_path / "lb.sqlite")
    board.add(Result(run_key="x", env_id="arena/GridWorld-v0", env_kwargs={"layout": "cliff"},
                     agent="<script>alert(1)</script>", agent_config={}, train_seed=0, eval_seeds=[1000], returns=[1.0],
                     mean_return=1.0, std_return=0.0, iqm_return=1.0, score=0.5, exact_return=None, eval_gamma=None,
                     replay_paths=[], code_version="<img src=x onerror=alert(2)>"))
    for args in (["--format", "markdown"], ["--runs", "--format", "markdown"]):
        result = runner.invoke(app, ["leaderboard", "--db", str(tmp_path / "lb.sqlite"), *args])
        assert result.exit_code == 0, result.output
        assert "<script>" not in result.stdout and "<img" not in result.stdout
        assert "&lt;script&gt;" in result.stdout


def test_image_standings_and_evaluations_show_fid_is_and_coverage(tmp_path):
    from rich.console import Console

    from arena.cli import _standings_table
    from arena.leaderboard import Result
    from arena.standings import standings

    rows = [Result(run_key=f"g{i}", env_id="arena/ImageGeneration-v0", env_kwargs={"dataset": "digits"}, agent="gan",
                   agent_config={}, train_seed=i, eval_seeds=[1000], returns=[0.5], mean_return=0.5, std_return=0.0,
                   iqm_return=0.5, score=0.8, exact_return=None, eval_gamma=None, replay_paths=[],
                   metrics={"fid": fid, "inception_score": 8.0 + i, "coverage": 1.0, "classes_covered": 10,
                            "n_classes": 10}) for i, fid in enumerate([40.0, 42.0, 50.0])]
    (entry,) = standings(rows)
    assert entry.evaluation.fid == 42.0 and entry.evaluation.inception_score == 9.0 and entry.evaluation.coverage == 1.0
    assert entry.evaluation.as_dict()["fid"] == 42.0
    console = Console(width=160, record=True)
    console.print(_standings_table([entry], "standings"))
    assert "FID 42.0, IS 9.00, coverage 100%" in console.export_text()


@pytest.mark.parametrize("agent,setting", [("reinforce-lstm", "hidden=abc"), ("gan", "loss=x"), ("vae", "beta=-1"),
                                           ("reinforce-generator", "sigma=0")])
def test_a_bad_setting_of_a_neural_agent_is_refused_before_torch_is_imported(agent, setting):
    import subprocess
    import sys

    script = f"""
import sys
from typer.testing import CliRunner
from arena.cli import app
result = CliRunner().invoke(app, ["run", "{agent}", "grid:cliff", "--set", "{setting}"])
print(result.exit_code, "torch" in sys.modules)
print(result.stderr)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    code, torch_loaded = done.stdout.split("\n")[0].split()
    assert code == "2" and torch_loaded == "False", done.stdout + done.stderr
    assert setting.split("=")[0] in done.stdout


def test_a_training_bar_under_a_live_display_is_a_row_of_it_not_a_second_display():
    from rich.progress import TextColumn

    from agents.training import LIVE, ProgressBar, progress_display

    outer = progress_display(TextColumn("{task.description}"))
    outer.add_task("tournament", total=3)
    with outer:
        assert LIVE == [outer]
        bar = ProgressBar(True, total=10, done=0, label="training q-learning", unit="episode")
        assert bar.bar is outer and len(outer.tasks) == 2
        bar.update({"return": -13.0})
        assert "return" in outer.tasks[1].description
        bar.close()
        assert len(outer.tasks) == 1
    assert LIVE == []


@pytest.mark.parametrize("env", ["img:digits batch=1", "img:digits batch=1 judge=adaptive"])
def test_an_image_episode_of_one_image_is_scored(tmp_path, env):
    result = arena.evaluate("noise", env, train_seeds=1, eval_episodes=3)
    assert result.runs[0].metrics["images"] == 3 and "fewer than" in result.runs[0].note


def test_an_image_replay_is_explained_and_its_report_gif_shows_the_whole_episode_legibly(tmp_path):
    import base64
    import io
    import re

    from PIL import Image

    from arena.leaderboard.report import GIF_MIN_SCALE, IMAGE_GIF_STRIDE, write_report
    from arena.replay import load_replay
    from arena.viewer import Timeline, hud_text, legend_items, render_frames

    db = tmp_path / "lb.sqlite"
    arena.evaluate("noise", "img:digits", train_seeds=1, eval_episodes=1, record=True, db=db,
                   replays=tmp_path / "replays", runs=tmp_path / "runs")
    (row,) = Leaderboard(db).results()
    replay = load_replay(row.replay_paths[0])
    timeline = Timeline.build(replay, 3)
    assert len(timeline) == 4  # only what is shown is re-simulated
    assert any("looks real" in text for _, text, _ in legend_items(timeline, True))
    hud = hud_text(timeline, 1)
    assert "mean brightness" in hud and f"reward {timeline.frames[1].reward:.4g} " in hud  # 4 digits, not 6
    write_report(Leaderboard(db).results(), tmp_path / "r.html")
    (gif,) = re.findall(r"data:image/gif;base64,([A-Za-z0-9+/=]+)", (tmp_path / "r.html").read_text())
    image = Image.open(io.BytesIO(base64.b64decode(gif)))
    full = render_frames(replay, steps=0)[0]
    assert image.size[0] >= GIF_MIN_SCALE * full.shape[1] - 1  # its text is not shrunk away
    assert image.n_frames >= replay.steps // IMAGE_GIF_STRIDE + 1  # to the episode's last step (64 of 64)


def test_a_very_long_run_keeps_a_bounded_log_that_resumes_exactly(monkeypatch):
    """Past MAX_POINTS per scalar the curve halves its resolution; totals stay exact, and a
    log restored from its arrays mid-way continues exactly as the uninterrupted one."""
    import numpy as np

    from agents.training import TrainingLog

    monkeypatch.setattr(TrainingLog, "MAX_POINTS", 64)
    rng = np.random.default_rng(0)
    values = rng.normal(size=1000)
    straight, first = TrainingLog(), TrainingLog()
    for i, v in enumerate(values):
        straight.record({"return": v, "env_steps": 3.0})
        if i < 613:
            first.record({"return": v, "env_steps": 3.0})
    resumed = TrainingLog()
    resumed.restore_arrays(first.arrays())
    for v in values[613:]:
        resumed.record({"return": v, "env_steps": 3.0})
    assert len(straight.returns) <= 64 and straight.stride["return"] == 16
    assert straight.totals["env_steps"] == 3000.0 and straight.units == 1000
    assert np.isclose(np.mean(straight.returns), values[:len(straight.returns) * 16].mean())
    assert resumed.returns == straight.returns and resumed.totals == straight.totals
    assert resumed.units == straight.units and resumed.stride == straight.stride


def test_files_written_atomically_get_the_usual_mode_not_a_private_one(tmp_path):
    """A report page, video or plot is readable as a plain open() would leave it (mkstemp makes 0600)."""
    from agents.checkpoint import UMASK, write_atomically

    path = write_atomically(tmp_path / "page.html", lambda p: p.write_text("x"))
    assert path.stat().st_mode & 0o777 == 0o666 & ~UMASK
