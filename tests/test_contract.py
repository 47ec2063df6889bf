"""The contract every part keeps: one error root, importable modules without cycles, a
torch-free CLI, typed settings, and every fault a user can cause as one line, exit 2,
with nothing already saved changed (issue 7's list of faults, one case each)."""

import ast
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from typer.testing import CliRunner

import envs  # noqa: F401
from agents.checkpoint import read_arrays, write_arrays
from arena.cli import app
from arena.errors import ArenaError

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("arena", "envs", "agents")


def project_modules() -> list[str]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out.append(".".join(parts))
    return out


def imports_of(module: str) -> set[str]:
    """Project modules `module` imports anywhere in its body (functions included)."""
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n.split(".")[0] in PACKAGES and n in MODULES}
    return found - {module}


MODULES = set(project_modules())


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports_on_its_own(module):
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_no_import_cycle_not_even_inside_functions():
    graph = {m: imports_of(m) for m in MODULES}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(m, path):
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                cycles.append(" -> ".join(path + [m, n]))
            elif n not in state:
                visit(n, path + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert sum(len(v) for v in graph.values()) > 50  # the graph was really read
    assert cycles == []


def test_envs_and_agents_import_only_the_two_leaf_modules_of_arena():
    for m in MODULES:
        if m.split(".")[0] in ("envs", "agents"):
            assert {i for i in imports_of(m) if i.startswith("arena")} <= {"arena", "arena.errors", "arena.settings"}, m
    for leaf in ("arena.errors", "arena.settings"):
        assert imports_of(leaf) <= {"arena", "arena.errors"}, leaf


def test_the_cli_does_not_import_torch():
    code = "import arena.cli, sys; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


# As on a machine without torch: `import torch` raises and "torch" never enters sys.modules
# (sys.modules["torch"] = None would also break SciPy, which looks torch up there).
NO_TORCH = """import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoTorch())
"""


def test_commands_that_need_no_network_run_with_torch_unimportable(saved):
    """--help, envs, agents (and one agent's settings), leaderboard, and replaying or verifying
    a grid episode: each runs in a process where `import torch` fails."""
    replay = str(next(saved.glob("replays/*/episode-seed1000.npz")))
    db = str(saved / "replays" / "leaderboard.sqlite")
    for args in (["--help"], ["envs"], ["agents"], ["agents", "q-learning"], ["leaderboard", "--db", db],
                 ["replay", replay, "--verify"], ["replay", replay, "--seconds", "0.2"]):
        code = (NO_TORCH + "from arena.cli import app\n"
                f"app({args!r}, prog_name='arena')")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=saved,
                              env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
        assert proc.returncode == 0, (args, proc.stderr[-1500:])


def test_every_user_error_class_derives_from_arena_error():
    import arena.errors as errors
    from agents.dp import DPError
    from envs.grid import GridError
    from envs.sequence import SequenceError

    classes = [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    assert all(issubclass(c, ArenaError) for c in classes + [DPError, GridError, SequenceError])


def test_no_learner_is_more_than_two_classes_from_its_base():
    from arena.registry import AGENTS, make_agent

    for name in AGENTS:
        if name.startswith(("reinforce", "sb3")):
            continue
        depth = len(type(make_agent(name)).__mro__) - 1  # minus object
        assert depth <= 3, (name, type(make_agent(name)).__mro__)


# --------------------------------------------------------------------------- typed settings


def test_arena_agents_name_prints_type_default_range_and_help():
    result = CliRunner().invoke(app, ["agents", "q-learning"], terminal_width=200)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    epsilon = next(line for line in lines if line.strip("│ ").startswith("epsilon "))
    assert "float" in epsilon and "0.5" in epsilon and "[0, 1]" in epsilon and "exploration" in epsilon
    episodes = next(line for line in lines if line.strip("│ ").startswith("episodes "))
    assert "int" in episodes and "2000" in episodes and "budget" in episodes


def test_config_comes_from_the_settings_dataclass():
    from arena.registry import make_agent

    agent = make_agent("n-step-sarsa", n=3, epsilon=0.2)
    assert agent.config()["n"] == 3 and agent.config()["epsilon"] == 0.2
    assert set(agent.config()) == {"gamma", "alpha", "alpha_end", "epsilon", "epsilon_end", "decay", "episodes", "n"}


# --------------------------------------------------------------------------- faults through the CLI


def files_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every saved file. SQLite's -wal/-shm sidecars are left out: a reader of a WAL
    database creates them and the last writer removes them; what they hold is compared as rows."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def board_rows(folder: Path) -> list:
    from arena.leaderboard import Leaderboard

    return [(r.id, r.run_key, r.returns) for r in Leaderboard(folder / "replays" / "leaderboard.sqlite", readonly=True).results()]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A folder with a leaderboard, a tabular checkpoint and a replay already in it."""
    folder = tmp_path_factory.mktemp("saved")
    old = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(app, ["run", "q-learning", "grid:cliff", "--train-episodes", "50", "--episodes", "1"])
        assert result.exit_code == 0, result.output
    finally:
        os.chdir(old)
    replay = next(folder.glob("replays/*/episode-seed1000.npz"))
    arrays, meta = read_arrays(replay, "arena-replay", (1,))
    write_arrays(folder / "forged.npz", "arena-replay", 1, arrays, {**meta, "env_id": "this:Zen-v0"})
    write_arrays(folder / "badseed.npz", "arena-replay", 1, arrays, {**meta, "seed": -3})
    ckpt = next(folder.glob("runs/*/checkpoint.npz"))
    (folder / "damaged.npz").write_bytes(ckpt.read_bytes()[:-40])
    from arena.registry import make_agent

    neural = make_agent("reinforce-mlp", episodes=64, device="cpu")
    neural.fit(gym.make("arena/SequencePrediction-v0", task="copy", length=2), seed=0)
    data = bytearray(neural.save(folder / "mlp.npz").read_bytes())
    data[len(data) // 2] ^= 0x10  # one flipped bit in the middle of the weights
    (folder / "mlp-flipped.npz").write_bytes(bytes(data))
    (folder / "mlp.npz").unlink()
    (folder / "a-file").write_text("not a folder")
    return folder


FAULTS = [
    (["run", "reinforce-lstm", "seq:copy", "length=abc"], "length must be an integer in [1, 256], got 'abc'"),
    (["run", "value-iteration", "grid:cliff", "max_steps=x"], "max_steps must be an integer"),
    (["run", "reinforce-lstm", "seq:copy", "length=Infinity"], "length must be an integer in [1, 256], got inf"),
    (["run", "value-iteration", "grid:cliff", "max_steps=NaN"], "max_steps must be an integer"),
    (["run", "value-iteration", "grid:maze-5x5", "maze_seed=-1"], "maze_seed must be an integer in [0, "),
    (["run", "value-iteration", "grid:cliff", 'rewards={"hole": null}'], "rewards['hole'] must be a finite number in [-1e+06, 1e+06], got None"),
    (["run", "value-iteration", "grid:cliff", 'rewards={"goal": Infinity}'], "rewards['goal'] must be a finite number in [-1e+06, 1e+06], got inf"),
    (["run", "q-learning", "bias", "std=-1"], "std must be a number in [0, "),
    (["run", "reinforce-lstm", "seq:copy", "--set", "layers=-1"], "layers must be an integer in [1, 16], got -1"),
    (["run", "reinforce-lstm", "seq:copy", "--set", "hidden=0"], "hidden must be an integer in [1, 4096], got 0"),
    (["run", "q-learning", "grid:cliff", "--set", "epsilon=abc"], "epsilon must be a number in [0, 1], got 'abc'"),
    (["run", "q-learning", "grid:cliff", "--set", "epsilonn=0.1"], "epsilonn is not a setting; the settings are gamma"),
    (["run", "value-iteration", "grid:maze-20000x20000"], "has 400,000,000 cells and would need about"),
    (["run", "value-iteration", "grid:maze-99999999x99999999"], "cells and would need about"),
    (["run", "value-iteration", "grid:S..\n...\n..."], "no goal 'G' or hole 'H'"),
    (["run", "reinforce-lstm", "seq:copy", "--record-training", "5"], "not single env episodes, so its training cannot be recorded"),
    (["run", "value-iteration", "grid:cliff", "--record-training", "5"], "plans or plays without training episodes"),
    (["run", "q-learning", "grid:cliff", "--checkpoint-every", "0"], "--checkpoint-every 0.0: use a positive number"),
    (["replay", "forged.npz", "--verify"], "names env 'this:Zen-v0', which is not an Arena env"),
    (["replay", "badseed.npz", "--verify"], "is not a non-negative 64-bit integer"),
    (["eval", "q-learning", "grid:cliff", "--checkpoint", "damaged.npz"], "is truncated or corrupt"),
    (["eval", "reinforce-mlp", "seq:copy", "length=2", "--checkpoint", "mlp-flipped.npz"], "mlp-flipped.npz is "),
    (["eval", "sarsa", "grid:cliff", "--checkpoint", "CKPT"], "is a checkpoint of q-learning, not of sarsa"),
    (["eval", "random", "grid:cliff", "--checkpoint", "CKPT"], "is a checkpoint of q-learning, not of random"),
    (["replay", "REPLAY", "--video", "out.mp4", "--fps", "0"], "--fps 0.0: use a number of steps per second"),
    (["replay", "REPLAY", "--fps", "-2"], "--fps -2.0: use a number of steps per second"),
    (["leaderboard", "--db", "typo.sqlite"], "typo.sqlite does not exist"),
    (["leaderboard", "--db", "a-file/x.sqlite"], "a-file/x.sqlite does not exist"),
    (["run", "random", "grid:cliff", "--db", "a-file/x.sqlite"], "is a part of the path a file?"),
]


@pytest.mark.parametrize("args,fragment", FAULTS, ids=[" ".join(a)[:60] for a, _ in FAULTS])
def test_each_fault_is_one_line_exit_2_and_changes_no_saved_file(saved, monkeypatch, args, fragment):
    monkeypatch.chdir(saved)
    monkeypatch.delenv("ARENA_DB", raising=False)
    ckpt = str(next(saved.glob("runs/*/checkpoint.npz")).relative_to(saved))
    replay = str(next(saved.glob("replays/*/episode-seed1000.npz")).relative_to(saved))
    args = [ckpt if a == "CKPT" else replay if a == "REPLAY" else a for a in args]
    before, rows = files_digest(saved), board_rows(saved)
    result = CliRunner().invoke(app, args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    after = files_digest(saved)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing saved changed
    assert board_rows(saved) == rows
    assert not any(k.endswith(".sqlite") for k in set(after) - set(before))  # no database created


def test_a_damaged_leaderboard_row_is_one_line_naming_its_id(tmp_path, monkeypatch):
    import sqlite3

    monkeypatch.chdir(tmp_path)
    db = tmp_path / "board.sqlite"
    runner = CliRunner()
    assert runner.invoke(app, ["run", "random", "grid:cliff", "--episodes", "1", "--db", str(db)]).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE results SET returns = '{not json' WHERE id = 1")
    before = db.read_bytes()
    result = runner.invoke(app, ["leaderboard", "--db", str(db)])
    assert result.exit_code == 2 and "row id 1 is damaged" in result.stderr and len(result.stderr.splitlines()) == 1
    assert db.read_bytes() == before


def test_reading_the_leaderboard_neither_creates_nor_switches_it_to_wal(tmp_path):
    import sqlite3

    from arena.leaderboard import REPORT_COLUMNS, Leaderboard, Result

    db = tmp_path / "board.sqlite"
    Leaderboard(db).add(Result("k1", "arena/GridWorld-v0", {"layout": "cliff"}, "[red]x|y\nz<b>", {}, 0, [1000], [1.0],
                               1.0, 0.0, 1.0))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    result = CliRunner().invoke(app, ["leaderboard", "--db", str(db), "--format", "markdown", "--runs"])
    assert result.exit_code == 0, result.output
    row = result.output.splitlines()[2]
    assert "[red]x\\|y z" in row and row.count("|") == len(REPORT_COLUMNS) + 1 + 1  # the pipe escaped, the newline folded
    assert result.output.splitlines()[0].startswith("| id | date | env | agent |")
    table = CliRunner().invoke(app, ["leaderboard", "--db", str(db), "--runs"], terminal_width=200)
    assert "[red]x|y" in table.output  # shown as text, not read as markup
    header = next(line for line in table.output.splitlines() if "score" in line)
    assert all(col in header for col in ("id", "date", "seed"))
    standings = CliRunner().invoke(app, ["leaderboard", "--db", str(db)], terminal_width=200)
    assert "[red]x|y" in standings.output and "rank" in standings.output
    report = CliRunner().invoke(app, ["leaderboard", "--db", str(db), "--html", str(tmp_path / "r.html")])
    assert report.exit_code == 0, report.output
    page = (tmp_path / "r.html").read_text()
    assert "[red]x|y" in page and "z&lt;b&gt;" in page and "z<b>" not in page
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_first_use_by_several_processes_at_once_loses_no_row(tmp_path):
    db = tmp_path / "new.sqlite"
    code = (
        "import sys; from arena.leaderboard import Leaderboard, Result; "
        "Leaderboard(sys.argv[1]).add(Result(sys.argv[2], 'arena/GridWorld-v0', {}, 'random', {}, 0, [1000], [1.0], "
        "1.0, 0.0, 1.0))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db), f"key{i}"], cwd=ROOT, stderr=subprocess.PIPE,
                              text=True) for i in range(12)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    from arena.leaderboard import Leaderboard

    assert Leaderboard(db, readonly=True).count() == 12


# --------------------------------------------------------------------------- crash and resume


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_bit_identical_to_an_uninterrupted_run(tmp_path):
    """SIGKILL mid-training loses at most the checkpoint interval (0.5 s here); the documented
    `arena run ... --resume runs/<run>/checkpoint.npz` then finishes the same run bit for bit."""
    from arena.registry import make_agent
    from agents.checkpoint import load_checkpoint

    total = 40000  # long enough (about 10 s here) that the kill 1.2 s after the first checkpoint falls mid-training
    cmd = [sys.executable, "-m", "arena", "run", "q-learning", "grid:frozenlake-4x4", "--train-episodes", str(total),
           "--episodes", "1", "--checkpoint-every", "0.5"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(tmp_path.glob("runs/*/checkpoint.npz")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.2)
    ckpt = next(tmp_path.glob("runs/*/checkpoint.npz"))
    os.kill(proc.pid, signal.SIGKILL)
    killed_at = time.time()
    proc.wait(timeout=30)
    assert killed_at - ckpt.stat().st_mtime <= 0.5 + 1.0  # the interval, plus slack for a busy machine
    done = load_checkpoint(ckpt, "q-learning")[1]["budget"]["done"]
    assert 0 < done < total

    resumed = subprocess.run(cmd[:6] + ["--episodes", "1", "--resume", str(ckpt)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    final = sorted(tmp_path.glob("runs/*/checkpoint.npz"), key=lambda p: p.stat().st_mtime)[-1]
    arrays, meta = load_checkpoint(final, "q-learning")
    assert meta["budget"]["done"] == total

    straight = make_agent("q-learning")
    straight.fit(gym.make("arena/GridWorld-v0", layout="frozenlake-4x4"), seed=0, budget=total)
    assert np.array_equal(arrays["Q"], straight.Q)
    assert arrays["log_return"].tolist() == straight.log.returns


def test_a_checkpoint_without_run_folder_says_nothing_was_saved():
    from agents.reinforce import ReinforceAgent
    from agents.training import NonFinite
    from arena.errors import TrainingError

    agent = ReinforceAgent(network="mlp", episodes=64 * 3, device="cpu")

    def broken(env, index, progress):
        raise NonFinite("policy loss", float("nan"))

    agent.learn = broken
    with pytest.raises(TrainingError, match="policy loss became nan in batch 1; training stopped and nothing was saved"):
        agent.fit(gym.make("arena/SequencePrediction-v0", task="copy", length=2), seed=0)


def test_the_plain_progress_line_appears_when_stderr_is_not_a_terminal(tmp_path):
    code = (
        "import gymnasium as gym, envs, agents.training as t; t.PLAIN_PROGRESS_EVERY_S = 0.0; "
        "from arena.registry import make_agent; "
        "make_agent('q-learning').fit(gym.make('arena/GridWorld-v0', layout='cliff'), budget=30)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "training q-learning: 30/30 episodes  return" in proc.stderr


def test_exact_evaluation_during_training_uses_gamma_below_one_and_says_so(monkeypatch):
    from agents import dp
    from arena.scoring import ExactEvaluation
    from arena.registry import make_agent

    def horizon(*args, **kwargs):  # what took 17.9 s here: evaluating over the 100000-step limit
        raise AssertionError("the exact evaluation ran a finite-horizon evaluation")

    monkeypatch.setattr(dp, "finite_horizon_evaluation", horizon)
    env = gym.make("arena/GridWorld-v0", layout="windy", max_steps=100000)
    agent = make_agent("sarsa", gamma=1.0, episodes=20)
    agent.fit(env, seed=0, callbacks=[ExactEvaluation(env.unwrapped.mdp)])
    assert "gamma 0.99" in agent.log.eval_label and len(agent.log.evals) == 20
    assert all(np.isfinite(J) for _, J in agent.log.evals)


def test_same_object_same_json_header_for_every_agent_family(tmp_path):
    from arena.registry import make_agent

    grid = gym.make("arena/GridWorld-v0", layout="open-5x5")
    seq = gym.make("arena/SequencePrediction-v0", task="copy", length=2)
    for name, env, kwargs in [("value-iteration", grid, {}), ("random", grid, {}), ("q-learning", grid, {"episodes": 5}),
                              ("reinforce-mlp", seq, {"episodes": 64, "device": "cpu"}),
                              ("sb3-ppo", grid, {"steps": 64, "n_steps": 32, "batch_size": 32, "device": "cpu"})]:
        agent = make_agent(name, **kwargs)
        agent.fit(env, seed=0, progress=False) if hasattr(agent, "learn") else agent.fit(env, seed=0)
        path = agent.save(tmp_path / f"{name}.npz")
        _, meta = read_arrays(path, "arena-checkpoint", (2,))
        assert {"agent", "settings", "env", "budget", "seed", "state"} <= set(meta), name
        assert meta["agent"] == name and meta["env"]["id"] == env.spec.id
        header = json.loads(bytes(np.load(path)["__header__"]).decode())
        assert len(header["sha256"]) == 64
        make_agent(name).load(path, env=env)


@pytest.mark.parametrize("env_id,kwargs", [("arena/GridWorld-v0", {"layout": "frozenlake-4x4"}),
                                           ("arena/GridWorld-v0", {"layout": "windy", "moves": "king+stay",
                                                                   "wind_noise": True, "slip": 0.2}),
                                           ("arena/SequencePrediction-v0", {"task": "copy", "length": 2})])
def test_batched_envs_report_the_info_keys_the_single_env_reports(env_id, kwargs):
    n = 4
    venv = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    singles = [gym.make(env_id, **kwargs).unwrapped for _ in range(n)]
    obs, infos = venv.reset(seed=10)
    expected = [env.reset(seed=10 + i)[1] for i, env in enumerate(singles)]
    rng = np.random.default_rng(0)
    done = np.zeros(n, dtype=bool)
    for _ in range(30):
        for i in range(n):
            for key, value in expected[i].items():
                assert infos["_" + key][i] and infos[key][i] == value, (key, i)
        actions = rng.integers(venv.single_action_space.n, size=n)
        obs, _, term, trunc, infos = venv.step(actions)
        expected = []
        for i, env in enumerate(singles):
            if done[i]:  # next-step autoreset: the copy reports what a reset reports
                expected.append(env.reset()[1])
            else:
                info = env.step(int(actions[i]))[4]
                expected.append({k: v for k, v in info.items() if k != "accuracy"})
        done = term | trunc


@pytest.mark.parametrize("obs", ["index", "coords", "image"])
@pytest.mark.parametrize("layout", ["open-5x5", "cliff", "windy", "frozenlake-8x8", "four-rooms"])
def test_sb3_env_checker_passes_with_warnings_as_errors_on_what_sb3_agents_see(layout, obs):
    import warnings

    from stable_baselines3.common.env_checker import check_env

    from agents.sb3 import sb3_view

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(sb3_view(gym.make("arena/GridWorld-v0", layout=layout, obs=obs).unwrapped))


@pytest.mark.parametrize("env_id,kwargs", [("arena/SequencePrediction-v0", {"task": t})
                                           for t in ("copy", "reverse", "parity", "addition", "sine", "text")]
                         + [("arena/MaximizationBias-v0", {})])
def test_sb3_env_checker_passes_with_warnings_as_errors_on_the_other_envs(env_id, kwargs):
    import warnings

    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(env_id, **kwargs).unwrapped)


def test_sb3_plays_image_observations_through_the_adapter(tmp_path):
    from arena.scoring import exact_score
    from arena.registry import make_agent

    env = gym.make("arena/GridWorld-v0", layout="open-5x5", obs="image")
    agent = make_agent("sb3-ppo", steps=256, n_steps=64, batch_size=64, device="cpu")
    agent.fit(env, seed=0)
    path = agent.save(tmp_path / "ppo.npz")
    loaded = make_agent("sb3-ppo", device="cpu").load(path, env=env)
    obs, _ = env.reset(seed=0)
    assert loaded.act(obs)[0] == agent.act(obs)[0]
    assert exact_score(loaded, env) is not None


def test_the_random_agents_checkpoint_round_trips_through_arena_eval(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARENA_DB", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["run", "random", "grid:cliff", "--episodes", "2"]).exit_code == 0
    ckpt = str(next(tmp_path.glob("runs/*/checkpoint.npz")))
    again = runner.invoke(app, ["eval", "random", "grid:cliff", "--checkpoint", ckpt, "--episodes", "2"])
    assert again.exit_code == 0, again.output


def test_ctrl_c_during_reinforce_stops_at_the_next_batch_and_saves(tmp_path):
    from agents.reinforce import ReinforceAgent
    from agents.training import TrainingInterrupted

    env = gym.make("arena/SequencePrediction-v0", task="copy", length=2)
    agent = ReinforceAgent(network="mlp", num_envs=8, episodes=8 * 10, device="cpu")
    learn = agent.learn

    def learn_then_interrupt(env, index, progress):
        if index == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return learn(env, index, progress)

    agent.learn = learn_then_interrupt
    with pytest.raises(TrainingInterrupted) as stop:
        agent.fit(env, seed=0, run_dir=tmp_path)
    assert stop.value.done == 3 and stop.value.unit == "batch" and stop.value.checkpoint.exists()
    resumed = ReinforceAgent(network="mlp", device="cpu")
    resumed.fit(env, seed=0, resume=stop.value.checkpoint)
    assert resumed.updates_done == 10


def test_a_non_finite_loss_through_the_cli_is_one_line_exit_2_and_the_last_good_state_is_saved(tmp_path, monkeypatch):
    """Fault injection: the third update's policy loss is NaN (as a too-large step size makes it)."""
    from agents.checkpoint import load_checkpoint
    from agents.reinforce import ReinforceAgent
    from agents.training import NonFinite

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARENA_DB", raising=False)
    update, calls = ReinforceAgent.update, {"n": 0}

    def poisoned(self, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise NonFinite("policy loss", float("nan"))
        return update(self, batch)

    monkeypatch.setattr(ReinforceAgent, "update", poisoned)
    result = CliRunner().invoke(app, ["run", "reinforce-mlp", "seq:copy", "length=2", "--set", "num_envs=8",
                                      "--train-episodes", "80", "--device", "cpu"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and "the policy loss became nan in batch 3" in lines[0]
    assert "the last good state (after 2 batches) is saved in runs/" in lines[0]
    ckpt = next(tmp_path.glob("runs/*/checkpoint.npz"))
    assert load_checkpoint(ckpt, "reinforce-mlp")[1]["budget"]["done"] == 2
    assert not list(tmp_path.glob("replays/*/episode-*.npz"))  # no evaluation, no leaderboard row
