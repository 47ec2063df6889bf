"""Arena's pytest plugin, as a user meets it: the issue's example copied into a new test
file of another project, run by pytest in a subprocess (so the plugin comes from the
installed `pytest11` entry point, not from this repository's conftest)."""

import sqlite3

import pytest

EXAMPLE = '''
def test_q_learning_masters_the_cliff(arena_eval):
    result = arena_eval("q-learning", "grid:cliff", train_seeds=3, budget=2000)
    assert result.score.iqm >= 0.95 and result.success_rate == 1.0
'''

LOOPING = '''
def test_sarsa_with_constant_exploration_reaches_the_goal(arena_eval):
    result = arena_eval("sarsa", "grid:cliff", train_seeds=[0], budget=500,
                        config={"epsilon": 0.1, "epsilon_end": None})
    assert result.success_rate == 1.0
'''


@pytest.fixture
def project(pytester, monkeypatch):
    monkeypatch.delenv("ARENA_DB", raising=False)
    return pytester


def test_the_readme_example_passes_in_a_users_project(project):
    project.makepyfile(test_agents=EXAMPLE)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not (project.path / "replays").exists()  # nothing recorded unless asked


def test_a_failure_names_the_agent_env_seeds_figure_and_interval(project):
    project.makepyfile(test_agents=LOOPING)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "arena evaluations" in out
    assert "sarsa on grid:cliff: score IQM 0.917" in out and "success rate 0%" in out and "[never succeeds]" in out
    assert "train seeds [0], eval seeds 1000..1009" in out and "one run: no interval" in out


def test_arena_record_writes_each_result_to_the_chosen_database(project):
    project.makepyfile(test_agents=EXAMPLE)
    db = project.path / "board.sqlite"
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--arena-record", f"--arena-db={db}")
    result.assert_outcomes(passed=1)
    rows = sqlite3.connect(db).execute("select agent, train_seed, successes from results order by train_seed").fetchall()
    assert [(a, s) for a, s, _ in rows] == [("q-learning", 0), ("q-learning", 1), ("q-learning", 2)]
    assert all(succ == "[" + ", ".join(["true"] * 10) + "]" for _, _, succ in rows)


def test_the_plugin_adds_its_options_and_marker(project):
    result = project.runpytest_subprocess("--help")
    assert "--arena-record" in result.stdout.str() and "--arena-db" in result.stdout.str()
    assert "leaderboard: a leaderboard evaluation test" in project.runpytest_subprocess("--markers").stdout.str()
