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
