"""One run, specified once: the RunSpec reaches the loop, the budget trained is what the
leaderboard records, env settings are declared once and reach the env, and the command
line reads settings from a file and env strings in their quoted form."""

import json

import gymnasium as gym
import numpy as np
import pytest
from typer.testing import CliRunner

import arena
import envs  # noqa: F401
from agents.protocol import Agent, EpisodeLearner, HasPolicyTable, Learner, Planner, RunSpec
from arena import registry
from arena import settings as typed
from arena.cli import app
from arena.errors import SettingsError, TrainingError
from arena.leaderboard import Leaderboard


def cli(*args):
    result = CliRunner().invoke(app, list(args), terminal_width=200)
    return result


# --------------------------------------------------------------------------- abilities


@pytest.mark.parametrize("name,abilities", [
    ("q-learning", {Learner, EpisodeLearner, HasPolicyTable}),
    ("value-iteration", {Planner, HasPolicyTable}),
    ("random", {Planner, HasPolicyTable}),
    ("reinforce-mlp", {Learner}),
    ("real-data", {Planner}),
])
def test_every_builtin_is_an_agent_and_declares_exactly_its_abilities(name, abilities):
    agent = registry.make_agent(name, **({"device": "cpu"} if name.startswith("reinforce") else {}))
    assert isinstance(agent, Agent)
    declared = {a for a in (Learner, EpisodeLearner, Planner, HasPolicyTable) if isinstance(agent, a)}
    assert declared == abilities


def test_ability_checks_never_fail_on_an_unfitted_agent():
    """isinstance on a runtime Protocol reads every member (hasattr, on Python 3.11): no property
    of any agent may raise before it is fitted (it once did: reinforce-generator's `conditioned`)."""
    from agents.protocol import Discriminator, Generator

    for name in registry.agent_names():
        agent = registry.make_agent(name, **({"device": "cpu"} if registry.AGENTS[name].neural else {}))
        for ability in (Agent, Learner, EpisodeLearner, Planner, HasPolicyTable, Generator, Discriminator):
            isinstance(agent, ability)
        assert isinstance(agent, Agent), name


def test_the_spec_reaches_the_loop_unchanged_and_an_empty_budget_is_refused(tmp_path):
    env = gym.make("arena/GridWorld-v0", layout="frozenlake-4x4")
    agent = registry.make_agent("q-learning")
    spec = RunSpec(seed=3, budget=37, run_dir=tmp_path / "run", checkpoint_every=1000.0, progress=False)
    out = agent.fit(env, spec)
    assert out["episodes"] == 37 and agent.budget.done == 37 and agent.seed == 3
    assert (tmp_path / "run" / "checkpoint.npz").exists() and out["checkpoint"].endswith("checkpoint.npz")
    with pytest.raises(TrainingError, match="not a positive whole number"):
        agent.fit(env, budget=0)
    with pytest.raises(TrainingError, match="plans in one go: there is no training to resume"):
        registry.make_agent("value-iteration").fit(env, resume=tmp_path / "run" / "checkpoint.npz")


# --------------------------------------------------------------------------- the budget is what was trained


def test_runs_with_different_budgets_are_separate_entries(workdir):
    """The issue's example: 20 episodes must not replace 20,000 in the standings."""
    for budget in ("2000", "20"):
        assert cli("run", "q-learning", "grid:frozenlake-4x4", "--train-episodes", budget, "--episodes", "2").exit_code == 0
    rows = Leaderboard().results()
    assert sorted(r.budget for r in rows) == [20, 2000] and {r.budget_unit for r in rows} == {"episode"}
    from arena.standings import standings

    entries = standings(rows)
    assert len(entries) == 2
    assert sorted(st.agent for st in entries) == ["q-learning budget=20 episodes", "q-learning budget=2000 episodes"]
    shown = cli("leaderboard", "--format", "json")
    assert len(json.loads(shown.stdout)) == 2


def test_a_planner_records_no_budget_and_budget_is_refused_for_it(workdir):
    assert cli("run", "value-iteration", "grid:cliff", "--episodes", "1").exit_code == 0
    (row,) = Leaderboard().results()
    assert row.budget is None and row.budget_unit == ""
    bad = cli("run", "value-iteration", "grid:cliff", "--budget", "5")
    assert bad.exit_code == 2 and "does not train" in bad.output


def test_train_episodes_is_refused_where_the_budget_is_not_in_episodes(workdir):
    bad = cli("run", "sb3-ppo", "grid:cliff", "--train-episodes", "5", "--device", "cpu")
    assert bad.exit_code == 2 and "counts its budget in steps, not episodes; use --budget N" in bad.output


def test_sb3_trains_the_budget_rounded_up_to_whole_rollouts_and_says_so(tmp_path):
    """Before: --set steps=20000 trained 40,960 steps (a whole 2048-step rollout per 1000-step chunk)."""
    env = gym.make("arena/GridWorld-v0", layout="cliff")
    agent = registry.make_agent("sb3-a2c", device="cpu", n_steps=8)
    out = agent.fit(env, seed=0, budget=1001, progress=False)
    assert out["steps"] == 1008 == agent.trained()  # 126 rollouts of 8 steps
    assert "1001 steps asked, 1008 trained" in out["note"]
    exact = registry.make_agent("sb3-a2c", device="cpu", n_steps=8)
    assert exact.fit(env, seed=0, budget=800, progress=False)["steps"] == 800 and "note" not in exact.finish()


def test_an_sb3_run_cannot_be_resumed_and_says_so(tmp_path):
    from arena.errors import AgentError

    env = gym.make("arena/GridWorld-v0", layout="cliff")
    first = registry.make_agent("sb3-a2c", device="cpu", n_steps=8)
    first.fit(env, seed=0, budget=80, run_dir=tmp_path, progress=False)
    with pytest.raises(AgentError, match="cannot --resume"):
        registry.make_agent("sb3-a2c", device="cpu").fit(env, resume=tmp_path / "checkpoint.npz", budget=5000,
                                                         progress=False)


# --------------------------------------------------------------------------- env settings declared once


# per env family: a base config and, for each settings field, a value other than its default
FIELD_VALUES = {
    "grid": ({"layout": "maze-7x7"}, {"layout": "frozenlake-4x4", "slip": 0.3, "wind": [0, 1, 0, 0, 0, 0, 0],
                                      "rewards": {"goal": 5.0}, "obs": "coords", "max_steps": 7, "maze_seed": 4,
                                      "moves": "king", "wind_noise": True}),
    "mdp": ({}, {"model": "gambler", "P": "P", "R": "R", "transitions": "T", "terminal": "TERM", "start": 1, "n": 7, "left": -1.0, "p_h": 0.3, "goal": 12, "max_cars": 3,
                 "variant": True, "a_actions": 3, "b_actions": 4, "mean": 0.2, "std": 2.0, "observe": "nothing",
                 "max_steps": 9}),
    "seq": ({}, {"task": "reverse", "length": 3, "vocab": 5, "curriculum": True}),
    "bias": ({}, {"n_actions": 4, "a_actions": 3, "mean": 0.5, "std": 2.0}),
    "img": ({}, {"dataset": "shapes", "judge": "adaptive", "conditional": True, "batch": 8, "size": 16, "latent": 4,
                 "judge_seed": 3}),
}


@pytest.mark.parametrize("family", sorted(FIELD_VALUES))
def test_each_env_setting_reaches_the_env(family, tmp_path):
    """Set each field (alone, on the base config) and read it back from the built env's settings:
    a field the env forgot to read would come back as its default."""
    fam = registry.FAMILIES[family]
    base, values = FIELD_VALUES[family]
    assert set(values) == {f.name for f in typed.fields(fam.settings)}, "a field without a test value"
    for name, value in values.items():
        kwargs = {**base, name: value}
        if family == "grid" and name == "wind":
            kwargs["layout"] = "open-5x5"
            value = kwargs["wind"] = [0, 1, 0, 0, 0]
        if family == "grid" and name == "wind_noise":
            kwargs["layout"] = "windy"
        own = {"P": [[[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]]], "R": [[1.0], [0.0], [0.0]],
               "terminal": [False, False, True]}  # 0 -> 1 -> 2 (terminal)
        if family == "mdp" and name in ("P", "R", "terminal", "start"):
            kwargs = {**own, "start": 0, name: own.get(name, 1)}
            value = kwargs[name]
        if family == "mdp" and name == "transitions":
            value = kwargs[name] = {0: {0: [(1.0, 1, 0.0, True)]}, 1: {0: [(1.0, 1, 0.0, True)]}}
        if family == "mdp" and name in ("max_cars", "variant"):
            kwargs["model"] = "jacks-car-rental"
        if family == "mdp" and name in ("a_actions", "b_actions", "mean", "std"):
            kwargs["model"] = "maximization-bias"
        env = gym.make(fam.env_id, **kwargs)
        read = getattr(env.unwrapped.settings, name)
        assert read == value, (name, read, value)
        env.close()


def test_an_env_rejects_an_unknown_kwarg_naming_the_ones_it_takes():
    with pytest.raises(Exception, match="has no kwarg 'sliip'; it takes layout, slip"):
        registry.parse_env("grid:cliff sliip=0.1")


def test_arena_envs_name_prints_each_setting_with_type_default_range_and_help():
    out = cli("envs", "grid")
    assert out.exit_code == 0, out.output
    slip = next(line for line in out.output.splitlines() if line.strip("│ ").startswith("slip "))
    assert "float" in slip and "[0, 1]" in slip and "perpendicular" in slip
    assert cli("envs", "seq").exit_code == 0 and "curriculum" in cli("envs", "seq").output
    bad = cli("envs", "nope")
    assert bad.exit_code == 2 and "unknown env 'nope'" in bad.output


# --------------------------------------------------------------------------- the command line


def test_config_file_gives_agent_settings_and_env_kwargs_and_the_command_line_wins(workdir):
    (workdir / "run.toml").write_text('[agent]\nalpha = 0.4\nepsilon = 0.3\n\n[env]\nslip = 0.1\nmax_steps = 50\n')
    out = cli("run", "q-learning", "grid:cliff", "max_steps=60", "--config", "run.toml", "--set", "epsilon=0.2",
              "--train-episodes", "20", "--episodes", "1")
    assert out.exit_code == 0, out.output
    (row,) = Leaderboard().results()
    assert row.agent_config["alpha"] == 0.4 and row.agent_config["epsilon"] == 0.2
    assert row.env_kwargs == {"layout": "cliff", "slip": 0.1, "max_steps": 60}
    (workdir / "bad.toml").write_text("[agent]\nalpha = 7\n")
    bad = cli("run", "q-learning", "grid:cliff", "--config", "bad.toml")
    assert bad.exit_code == 2 and "alpha must be a number in (0, 1], got 7" in bad.output
    (workdir / "odd.toml").write_text("[agents]\nalpha = 0.1\n")
    odd = cli("run", "q-learning", "grid:cliff", "--config", "odd.toml")
    assert odd.exit_code == 2 and "unknown table [agents]" in odd.output


def test_the_quoted_env_form_works_everywhere_an_env_is_named(workdir):
    out = cli("run", "random", "seq:copy length=4", "--episodes", "1")
    assert out.exit_code == 0, out.output
    (row,) = Leaderboard().results()
    assert row.env_kwargs == {"task": "copy", "length": 4}
    assert registry.parse_env("seq:copy length=4") == registry.parse_env("seq:copy", ["length=4"])
    with pytest.raises(SettingsError, match="name it as the command line does"):
        arena.evaluate("random", 5)  # type: ignore[arg-type]


def test_a_multi_line_text_map_keeps_its_lines():
    env_id, kwargs = registry.parse_env("grid:S.G\n...\nslip=0.1".replace("\nslip", " slip"))
    assert kwargs == {"layout": "S.G\n...", "slip": 0.1}
    assert np.asarray(gym.make(env_id, **kwargs).unwrapped.grid).shape == (2, 3)


def test_fit_names_a_wrong_spec_in_one_line():
    env = gym.make("arena/GridWorld-v0", layout="cliff")
    with pytest.raises(TrainingError, match="spec must be a RunSpec, got 0"):
        registry.make_agent("q-learning").fit(env, 0)
    with pytest.raises(TrainingError, match="'episodes' is not part of a run .the budget is `budget`"):
        registry.make_agent("q-learning").fit(env, episodes=5)


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

toml_scalars = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False),
                         st.booleans(), st.text(max_size=12), st.lists(st.integers(-5, 5), max_size=4))
toml_tables = st.dictionaries(st.sampled_from(["alpha", "epsilon", "gamma", "episodes", "decay", "slip", "obs",
                                               "max_steps", "layout", "wind", "zzz"]), toml_scalars, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(agent=toml_tables, env=toml_tables, junk=st.booleans())
def test_any_config_file_is_read_or_refused_in_one_arena_error(tmp_path, agent, env, junk):
    """Hostile --config files: whatever the tables hold, the file is read and checked, or one ArenaError."""
    import tomllib

    from arena.errors import ArenaError

    def toml_value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(map(str, v)) + "]"
        return repr(v)

    text = "[agent]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in agent.items())
    text += "[env]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in env.items())
    path = tmp_path / "run.toml"
    path.write_bytes(text.encode() + (b"\xff[" if junk else b""))
    try:
        settings_, kwargs = registry.read_config(path)
        assert tomllib.loads(text) == {"agent": settings_, "env": kwargs}
        registry.make_agent("q-learning", **settings_)
        registry.check_env_kwargs("arena/GridWorld-v0", {"layout": "cliff", **kwargs})
    except ArenaError as exc:
        assert "\n" not in str(exc).strip() and len(str(exc)) < 400


def test_arena_run_init_starts_a_new_run_from_a_checkpoint_and_refuses_what_cannot(workdir):
    import gymnasium as gym

    from agents import dp

    env = gym.make("arena/GridWorld-v0", layout="cliff")
    V, _ = dp.value_iteration(env.unwrapped.mdp, 0.99)
    by_hand = registry.make_agent("q-learning", gamma=0.99)
    by_hand.tables = {"Q": dp.q_values(env.unwrapped.mdp, V, 0.99)}
    by_hand.save(workdir / "q-star.npz")
    out = cli("run", "q-learning", "grid:cliff", "--init", "q-star.npz", "--train-episodes", "5", "--episodes", "1",
              "--set", "gamma=0.99", "--set", "epsilon=0", "--set", "epsilon_end=null")
    assert out.exit_code == 0, out.output
    assert "1.000" in out.output  # the exact score of the policy it started from and kept
    for args, word in [(["run", "value-iteration", "grid:cliff", "--init", "q-star.npz"], "does not train"),
                       (["run", "q-learning", "grid:cliff", "--init", "missing.npz"], "no such checkpoint file"),
                       (["run", "q-learning", "grid:open-5x5", "--init", "q-star.npz"], "table for this env")]:
        bad = cli(*args)
        assert bad.exit_code == 2 and word in bad.output, bad.output
