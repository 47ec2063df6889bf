"""Your own agent on the board: a class defined outside the package (tests/user_agents.py),
registered by name, is checked, listed, trained and ranked wherever a built-in is."""

import json
import textwrap

import pytest

import arena
from arena import registry
from arena.errors import AgentError, RegistryError
from tests import user_agents


@pytest.fixture(autouse=True)
def mine(monkeypatch):
    """The user's agents registered for one test; the registry as it was afterwards."""
    monkeypatch.setattr(registry, "AGENTS", dict(registry.AGENTS))
    user_agents.register()


def test_a_registered_agent_is_ranked_by_arena_eval(arena_eval):
    """Optimistic initial values solve the deterministic cliff greedily (S&B 2.6): optimal, every seed."""
    result = arena_eval("optimistic-q", "grid:cliff", train_seeds=2, eval_episodes=3, budget=300,
                        config={"epsilon": 0.0, "epsilon_end": None, "alpha": 0.5, "alpha_end": None, "gamma": 1.0})
    assert result.score.iqm == pytest.approx(1.0) and result.success_rate == 1.0
    assert [r.budget for r in result.runs] == [300, 300] and result.runs[0].budget_unit == "episode"
    assert result.runs[0].agent_config["q0"] == 1.0


def test_its_settings_are_checked_and_listed_like_the_builtins(workdir):
    from typer.testing import CliRunner

    from arena.cli import app

    with pytest.raises(AgentError, match="q0 must be a number in"):
        registry.make_agent("optimistic-q", q0="high")
    with pytest.raises(AgentError, match="nope is not a setting"):
        registry.make_agent("fixed-action", nope=1)
    shown = CliRunner().invoke(app, ["agents", "optimistic-q"])
    assert shown.exit_code == 0 and "q0" in shown.output and "optimism" in shown.output
    assert "--budget counts episodes" in " ".join(shown.output.split())


def test_a_planner_written_against_the_protocol_alone_runs_by_name_in_arena_run(workdir):
    from typer.testing import CliRunner

    from arena.cli import app
    from arena.leaderboard import Leaderboard

    out = CliRunner().invoke(app, ["run", "fixed-action", "grid:cliff", "--set", "action=1", "--episodes", "2",
                                   "--json"])
    assert out.exit_code == 0, out.output
    (row,) = Leaderboard().results()
    assert row.agent == "fixed-action" and row.agent_config == {"action": 1} and row.budget is None
    assert row.score is not None and row.success_rate == 0.0  # always right: into the cliff's far wall, never home
    assert json.loads(out.stdout)["runs"][0]["agent"] == "fixed-action"


def test_bad_registrations_are_one_line_errors():
    with pytest.raises(RegistryError, match="is a built-in agent"):
        arena.register_agent("q-learning", user_agents.OptimisticQ)
    with pytest.raises(RegistryError, match="lowercase letters"):
        arena.register_agent("My Agent!", user_agents.OptimisticQ)
    with pytest.raises(RegistryError, match="already registered"):
        arena.register_agent("optimistic-q", user_agents.OptimisticQ)
    arena.register_agent("not-an-agent", dict, replace=True)
    with pytest.raises(AgentError, match="not an Agent: it lacks name, recurrent"):
        registry.make_agent("not-an-agent")


SUITE = """
    train_seeds = [0, 1]
    eval_episodes = 2
    envs = ["grid:cliff"]

    [[agents]]
    name = "optimistic-q"
    budget = 200
    set = { epsilon = 0.0, epsilon_end = 0.0, alpha = 0.5, alpha_end = 0.5, gamma = 1.0 }

    [[agents]]
    name = "fixed-action"
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend,workers", [("local", 2), ("ray", 2)])
def test_a_registered_agent_plays_tournaments_in_worker_processes_and_on_ray(workdir, backend, workers):
    """Pool workers (spawned) and Ray tasks import the user's agent from where it was defined."""
    from arena.leaderboard import Leaderboard
    from arena.tournament import load_suite, run_suite

    (workdir / "mine.toml").write_text(textwrap.dedent(SUITE))
    board = Leaderboard(workdir / "lb.sqlite")
    finished = run_suite(load_suite(workdir / "mine.toml"), board, workdir / "replays", workdir / "runs",
                         workers=workers, backend=backend)
    assert len(finished) == 4
    rows = {(r.agent, r.train_seed): r for r in board.results()}
    assert set(rows) == {("optimistic-q", 0), ("optimistic-q", 1), ("fixed-action", 0), ("fixed-action", 1)}
    assert rows[("optimistic-q", 0)].score == pytest.approx(1.0) and rows[("optimistic-q", 1)].budget == 200
    from arena.standings import standings

    ranked = [st.agent for st in standings(board.results())]
    assert ranked[0].startswith("optimistic-q")


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.text(max_size=80), st.integers(), st.none()),
       factory=st.sampled_from([user_agents.OptimisticQ, user_agents.FixedAction, 5, "x", None, dict]))
def test_any_registration_is_taken_or_refused_in_one_line(name, factory):
    """Hostile names and factories: registered, or one RegistryError; the built-ins untouched."""
    before = {n: spec for n, spec in registry.AGENTS.items() if spec.source is None}
    try:
        arena.register_agent(name, factory, replace=True)
    except RegistryError as exc:
        assert "\n" not in str(exc)
    else:
        assert registry.AGENTS[name].factory is factory
    assert {n: spec for n, spec in registry.AGENTS.items() if spec.source is None} == before


def test_an_installed_package_declares_its_agents_in_the_entry_point_group(tmp_path):
    """A package on the path with an `arena.agents` entry point: its agent is listed and runs by name."""
    import os
    import subprocess
    import sys

    (tmp_path / "theirpkg").mkdir()
    (tmp_path / "theirpkg" / "__init__.py").write_text(
        "from tests.user_agents import FixedAction as Always\n")
    info = tmp_path / "theirpkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: theirpkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[arena.agents]\nalways = theirpkg:Always\n")
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), root])}
    listed = subprocess.run([sys.executable, "-m", "arena", "agents", "always"], capture_output=True, text=True,
                            env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "action" in listed.stdout and "the action it always takes" in " ".join(listed.stdout.split())
    ran = subprocess.run([sys.executable, "-m", "arena", "run", "always", "grid:cliff", "--set", "action=2",
                          "--episodes", "1", "--json", "--db", str(tmp_path / "lb.sqlite")],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["runs"][0]["agent_config"] == {"action": 2}
