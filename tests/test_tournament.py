"""Suites and tournaments: the suite file is checked whole before any job starts, every job
lands on the leaderboard, and image suites cross-judge their generators ("who fools
whom") with Bradley-Terry ratings (issue 8's competition)."""

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from arena.cli import app
from arena.errors import SuiteError
from arena.statistics import ELO_SCALE, bradley_terry
from arena.image_score import cross_judge, fooling_rate
from arena.tournament import load_suite, suite_names
from envs.data import image_dataset

runner = CliRunner()

SMALL = """\
format = 1
description = "a quick image tournament"
envs = ["img:digits"]
train_seeds = [0]
eval_episodes = 5
cross_judge = true

[[agents]]
name = "gan"
budget = 30
set = { loss = "bce", device = "cpu" }

[[agents]]
name = "gan"
label = "critic"
budget = 5
set = { loss = "wgan-gp", n_critic = 2, device = "cpu" }

[[agents]]
name = "real-data"

[[agents]]
name = "noise"
"""


# --------------------------------------------------------------------------- Bradley-Terry


def test_two_players_rate_at_the_log_odds_of_their_games():
    r = bradley_terry([("a", "b", 75.0, 100.0)], prior=1e-9)
    assert (r["a"] - r["b"]) / ELO_SCALE == pytest.approx(math.log(75 / 25), abs=1e-4)
    assert (r["a"] + r["b"]) / 2 == pytest.approx(1500.0, abs=1e-3)  # the prior centres the scale


def test_known_strengths_are_recovered_from_many_games():
    theta = {"a": 1.0, "b": 0.0, "c": -0.5, "d": -2.0}
    games = []
    for x in theta:
        for y in theta:
            if x < y:
                p = 1 / (1 + math.exp(theta[y] - theta[x]))
                games.append((x, y, p * 10_000, 10_000.0))
    r = bradley_terry(games, prior=1e-9)
    mean = np.mean(list(theta.values()))
    for name, t in theta.items():
        assert (r[name] - 1500) / ELO_SCALE == pytest.approx(t - mean, abs=1e-3)


def test_a_player_who_never_wins_stays_finite_and_last():
    r = bradley_terry([("a", "b", 0.0, 50.0), ("c", "b", 25.0, 50.0)])
    assert all(math.isfinite(v) for v in r.values()) and r["a"] < r["c"] < r["b"]


@pytest.mark.parametrize("game", [("a", "b", 3.0, 2.0), ("a", "b", -1.0, 2.0), ("a", "b", 0.0, 0.0)])
def test_impossible_games_are_refused(game):
    with pytest.raises(ValueError):
        bradley_terry([game])


# --------------------------------------------------------------------------- fooling rates


def test_the_fooling_rate_is_half_for_indistinguishable_images_and_counts_ties_half():
    assert fooling_rate(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(0.5)
    assert fooling_rate(np.array([0.0, 0.0]), np.array([1.0, 1.0])) == 0.0
    assert fooling_rate(np.array([2.0]), np.array([1.0, 3.0])) == 0.5


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-40, 40), min_size=1, max_size=30), st.lists(st.integers(-40, 40), min_size=1, max_size=30))
def test_the_fooling_rate_reads_a_logit_and_its_probability_alike(fake, real):
    """Only the order counts, so a judge's logit and its sigmoid give one rate (on a grid of
    logits whose sigmoids stay distinct in float64; nearer ones can round together)."""
    fake, real = np.array(fake) / 4, np.array(real) / 4
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    direct = fooling_rate(fake, real)
    brute = np.mean([(f > r) + 0.5 * (f == r) for f in fake for r in real])
    assert direct == pytest.approx(brute) and 0.0 <= direct <= 1.0
    assert fooling_rate(sigmoid(fake), sigmoid(real)) == pytest.approx(direct, abs=1e-9)


def test_cross_judging_ranks_real_images_above_noise_with_the_env_judge():
    data = image_dataset("digits", 16)
    noise = np.random.default_rng(0).uniform(0, 1, (200, 1, 16, 16)).astype(np.float32)
    brightness = lambda x: -np.abs(x.mean(axis=(1, 2, 3)) - data.heldout.mean())  # noqa: E731
    judged = cross_judge({"real": data.heldout_b, "noise": noise}, {"brightness": brightness}, data.heldout)
    assert judged.images == 200 and judged.fooled.shape == (2, 1)
    assert 0.35 < judged.fooled[0, 0] < 0.65 and judged.fooled[1, 0] < 0.05
    judged.ratings = bradley_terry(judged.games())
    assert judged.ratings["G real"] > judged.ratings["G noise"]
    assert json.loads(json.dumps(judged.as_dict()))["generators"] == ["real", "noise"]


# --------------------------------------------------------------------------- suite files


def test_the_built_in_suites_load_and_list_their_jobs():
    assert "imagegen" in suite_names()
    suite = load_suite("imagegen")
    labels = [a.label for a in suite.agents]
    assert suite.cross_judge and len(suite.jobs()) == len(labels) == len(set(labels))
    assert {"gan loss=bce", "vae", "reinforce-generator", "real-data", "noise"} <= set(labels)


def test_the_default_suite_covers_every_agent_family_on_every_env_family():
    from arena.registry import family_of

    suite = load_suite("default")
    jobs = suite.jobs()
    played = {(agent.name, family_of(job.env_id)) for agent, job in jobs}
    for name in ("value-iteration", "policy-iteration", "q-learning", "sarsa", "mc-control", "random", "sb3-ppo"):
        assert (name, "grid") in played, name
    for name in ("reinforce-lstm", "reinforce-transformer", "sb3-ppo", "random"):
        assert (name, "seq") in played, name
    for name in ("gan", "vae", "real-data", "noise"):
        assert (name, "img") in played, name
    assert suite.train_seeds == [0, 1, 2] and suite.cross_judge


def test_an_agent_can_be_limited_to_some_of_the_suites_envs(tmp_path):
    text = SMALL.replace('envs = ["img:digits"]', 'envs = ["img:digits", "img:shapes"]').replace(
        'name = "noise"', 'name = "noise"\nenvs = ["img:shapes"]')
    suite = load_suite(write(tmp_path, text))
    assert [job.env_kwargs["dataset"] for agent, job in suite.jobs() if agent.name == "noise"] == ["shapes"]
    assert "noise on img:digits (not in its envs)" in suite.skipped
    with pytest.raises(SuiteError, match="list some of the suite's envs"):
        load_suite(write(tmp_path, text.replace('envs = ["img:shapes"]', 'envs = ["grid:cliff"]')))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,where,fragment", [
    ('envs = ["img:digits"\n', ":", "not valid TOML"),
    (SMALL.replace('name = "noise"', 'name = "nosie"'), ":23:", "unknown agent 'nosie'"),
    (SMALL.replace("train_seeds = [0]", "train_seeds = [0, 0]"), ":4:", "distinct integers"),
    (SMALL.replace("train_seeds = [0]", 'train_seeds = ["a"]'), ":4:", "train_seeds"),
    (SMALL.replace("train_seeds = [0]", "train_seeds = [-1]"), ":4:", "train_seeds"),
    (SMALL.replace("eval_episodes = 5", "eval_episodes = 0"), ":5:", "eval_episodes"),
    (SMALL.replace('"img:digits"', '"img:letters"'), ":3:", "img:letters"),
    (SMALL.replace('"img:digits"', '"nowhere:1"'), ":3:", "unknown env"),
    (SMALL.replace("budget = 30", "budget = -3"), ":", "budget"),
    (SMALL.replace('loss = "bce"', 'loss = "hinge"'), ":", "hinge"),
    (SMALL.replace("cross_judge = true", "cross_judging = true"), ":6:", "unknown key 'cross_judging'"),
    (SMALL + '\n[[agents]]\nname = "noise"\n', ":23:", "labelled 'noise'"),
    (SMALL.replace('"img:digits"', '"grid:cliff"'), ":", "can play none"),
    (SMALL.replace("format = 1", "format = 9"), ":1:", "format"),
])
def test_a_bad_suite_is_one_line_naming_the_file_and_line(tmp_path, text, where, fragment):
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    message = str(info.value)
    assert message.startswith(str(path) + where) and fragment in message and "\n" not in message, message


def test_an_unknown_suite_name_lists_the_built_in_ones():
    with pytest.raises(SuiteError, match="imagegen"):
        load_suite("no-such-suite")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, len(SMALL) - 1), st.integers(0, 40), st.text(max_size=8))
def test_a_damaged_suite_loads_or_is_a_suite_error(tmp_path, start, length, junk):
    path = write(tmp_path, SMALL[:start] + junk + SMALL[start + length:])
    try:
        suite = load_suite(path)
    except SuiteError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
    else:
        assert suite.jobs()


# --------------------------------------------------------------------------- the command


def test_arena_tournament_runs_every_job_lands_each_and_says_who_fools_whom(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARENA_DB", raising=False)
    path = write(tmp_path, SMALL)
    result = runner.invoke(app, ["tournament", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("4 jobs, 0 already", "done: noise on img:digits", "Who fools whom", "env (frozen judge)", "Bradley-Terry",
                 "critic", "gan loss=bce"):
        assert text in out, text
    rows = sqlite3.connect(tmp_path / "replays" / "leaderboard.sqlite").execute("select agent from results").fetchall()
    assert sorted(r[0] for r in rows) == ["gan", "gan", "noise", "real-data"]
    (table,) = (tmp_path / "runs").glob("suite-judging-*.json")
    judged = json.loads(table.read_text())
    assert judged["judges"] == ["env (frozen judge)", "gan loss=bce device=cpu", "critic"]
    fooled = dict(zip(judged["generators"], judged["fooled"]))
    assert all(0.3 < f < 0.7 for f in fooled["real-data"]) and all(f < 0.05 for f in fooled["noise"])
    assert judged["ratings"]["G real-data"] > judged["ratings"]["G noise"]


def test_a_bad_suite_stops_the_command_before_any_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, SMALL.replace('name = "noise"', 'name = "nosie"'))
    result = runner.invoke(app, ["tournament", str(path)], catch_exceptions=False)
    assert result.exit_code == 2 and "unknown agent 'nosie'" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "replays").exists() and not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- resuming, workers

GRID_SUITE = """\
envs = ["grid:cliff", "grid:open-5x5"]
train_seeds = [0, 1]
eval_episodes = 3

[[agents]]
name = "q-learning"
budget = 600

[[agents]]
name = "sarsa"
budget = 600

[[agents]]
name = "value-iteration"
"""


def figures(db):
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute("select run_key, agent, env_kwargs, train_seed, score, returns, successes from results"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The grid suite run once, whole, in this process: the reference."""
    folder = tmp_path_factory.mktemp("whole")
    suite = write(folder, GRID_SUITE)
    result = runner.invoke(app, ["tournament", str(suite), "--db", str(folder / "lb.sqlite"), "--replays",
                                 str(folder / "replays"), "--runs", str(folder / "runs")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = figures(folder / "lb.sqlite")
    assert len(rows) == 12 and len({r[0] for r in rows}) == 12
    return suite, rows, files_under(folder / "replays")


def test_two_workers_give_the_rows_one_worker_gives(uninterrupted, tmp_path):
    suite, reference, reference_files = uninterrupted
    db = tmp_path / "lb.sqlite"
    result = runner.invoke(app, ["tournament", str(suite), "--workers", "2", "--db", str(db), "--replays",
                                 str(tmp_path / "replays"), "--runs", str(tmp_path / "runs")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert figures(db) == reference


def marked_processes(mark: str) -> list[int]:
    """The live processes whose environment carries `mark` (a driver, its workers, Ray's)."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if f"ARENA_TEST_MARK={mark}".encode() in f.read().split(b"\0"):
                    with open(f"/proc/{entry}/stat") as stat:
                        if stat.read().rsplit(")", 1)[1].split()[0] != "Z":  # not a zombie
                            found.append(int(entry))
        except OSError:
            continue
    return found


def gone(mark: str, within: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + within
    while marked_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not marked_processes(mark)


def marked_tournament(suite, folder, *args):
    """The command that runs `suite` in `folder`, and an environment that marks its processes."""
    import os
    import sys
    import uuid

    mark = uuid.uuid4().hex
    db = folder / "lb.sqlite"
    command = [sys.executable, "-m", "arena", "tournament", str(suite), "--db", str(db), *args]
    return db, mark, {**os.environ, "ARENA_TEST_MARK": mark}, command


def rerun_ends_as_uninterrupted(command, folder, env, reference, reference_files):
    """Run `command` to the end in `folder`: it succeeds, and the rows and replay files are the uninterrupted run's."""
    import subprocess

    again = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    assert figures(folder / "lb.sqlite") == reference
    assert files_under(folder / "replays") == reference_files
    return again


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_a_tournament_killed_at_ten_moments_and_rerun_ends_as_an_uninterrupted_one(uninterrupted, tmp_path):
    """SIGKILL of the driver (alone) at 10 random moments, one and two workers by turns, each
    rerun carrying on; then a run to the end. Rows and replay files equal the uninterrupted
    run's, no staged file is left, and no process outlives its driver."""
    import random
    import subprocess
    import time

    suite, reference, reference_files = uninterrupted
    db, mark, env, command = marked_tournament(suite, tmp_path)
    rng = random.Random(7)
    for kill in range(10):
        workers = ["--workers", str(1 + kill % 2)]
        proc = subprocess.Popen(command + workers, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        time.sleep(rng.uniform(1.0, 4.0))  # start-up, training, recording or landing: wherever it falls
        proc.kill()  # the driver alone: its workers must notice and exit by themselves
        proc.wait()
        assert gone(mark), f"kill {kill}: processes outlived their driver: {marked_processes(mark)}"
    rerun_ends_as_uninterrupted(command + ["--workers", "2"], tmp_path, env, reference, reference_files)
    assert gone(mark)


@pytest.mark.slow
def test_ctrl_c_keeps_every_finished_job_and_a_rerun_finishes_the_rest(uninterrupted, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    suite, reference, reference_files = uninterrupted
    db, mark, env, command = marked_tournament(suite, tmp_path, "--workers", "2")
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and rows_in(db) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches the driver and its workers
    proc.communicate(timeout=60)
    kept = rows_in(db)
    assert kept >= 2
    assert gone(mark)
    landed = {p.split("/")[0] for p in files_under(tmp_path / "replays")}
    assert len(landed) == kept  # each kept row has its replays, and nothing else was left
    again = rerun_ends_as_uninterrupted(command, tmp_path, env, reference, reference_files)
    assert f"{kept} already on the leaderboard" in again.stdout


@pytest.mark.slow
def test_a_ray_worker_killed_mid_job_is_retried_and_the_run_ends_as_an_uninterrupted_one(uninterrupted, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    suite, reference, reference_files = uninterrupted
    db, mark, env, command = marked_tournament(suite, tmp_path, "--backend", "ray", "--workers", "2")
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        staging = tmp_path / "replays" / ".staging"
        if staging.is_dir() and any(p.name.count("@") == 2 for p in staging.iterdir()):  # a try is under way
            for pid in marked_processes(mark):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        running_a_job = f.read().startswith(b"ray::_ray_job")  # Ray titles a busy worker so
                except OSError:
                    continue
                if running_a_job:
                    os.kill(pid, signal.SIGKILL)
                    killed = pid
                    break
        time.sleep(0.02)
    out, err = proc.communicate(timeout=300)
    assert killed is not None, "no Ray worker was caught mid-job"
    assert proc.returncode == 0, err
    assert figures(db) == reference
    assert files_under(tmp_path / "replays") == reference_files
    assert gone(mark, within=30)


@pytest.mark.slow
def test_a_killed_ray_driver_leaves_no_process_and_a_rerun_finishes(uninterrupted, tmp_path):
    import subprocess
    import time

    suite, reference, reference_files = uninterrupted
    db, mark, env, command = marked_tournament(suite, tmp_path, "--backend", "ray", "--workers", "2")
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and rows_in(db) < 2:
        time.sleep(0.05)
    proc.kill()  # the driver alone, mid-run: Ray's processes and the workers must go with it
    proc.wait()
    left = marked_processes(mark) if not gone(mark, within=20) else []
    assert not left, "left running: " + "; ".join(open(f"/proc/{p}/cmdline").read()[:80] for p in left)
    rerun_ends_as_uninterrupted(command, tmp_path, env, reference, reference_files)
    assert gone(mark, within=20)


@pytest.mark.slow
def test_the_same_tournament_run_twice_at_once_lands_each_job_once(uninterrupted, tmp_path):
    import subprocess
    import sys

    suite, reference, reference_files = uninterrupted
    command = [sys.executable, "-m", "arena", "tournament", str(suite), "--db", str(tmp_path / "lb.sqlite")]
    procs = [subprocess.Popen(command + ["--workers", str(n)], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for n in (1, 2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert figures(tmp_path / "lb.sqlite") == reference
    assert files_under(tmp_path / "replays") == reference_files


def rows_in(db) -> int:
    try:
        return len(figures(db))
    except sqlite3.OperationalError:  # not there yet, or its schema not yet committed
        return 0


def test_the_ray_backend_gives_the_rows_the_local_backend_gives(uninterrupted, tmp_path):
    """A real local Ray instance (started for the run, shut down after it)."""
    suite, reference, reference_files = uninterrupted
    db = tmp_path / "lb.sqlite"
    result = runner.invoke(app, ["tournament", str(suite), "--backend", "ray", "--workers", "2", "--db", str(db),
                                 "--replays", str(tmp_path / "replays"), "--runs", str(tmp_path / "runs")],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert figures(db) == reference


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 400 Bad Request\r\n\r\n"])
def test_a_listening_port_that_is_not_ray_is_refused_in_seconds(tmp_path, monkeypatch, answer):
    import socket
    import threading
    import time

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:  # accepts, says `answer` (or nothing) and keeps the line open
        conn, _ = server.accept()
        conn.sendall(answer)
        time.sleep(10)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, GRID_SUITE)
    t0 = time.monotonic()
    result = runner.invoke(app, ["tournament", str(path), "--backend", "ray", "--address", f"127.0.0.1:{port}"])
    assert result.exit_code == 2 and "not as Ray does" in result.stderr, result.output
    assert time.monotonic() - t0 < 10
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    server.close()


@pytest.mark.parametrize("args,fragment", [
    (["--backend", "ray", "--address", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
    (["--backend", "ray", "--address", "localhost:-1"], "is not a Ray address"),
    (["--backend", "ray", "--address", "h" * 300 + ":6379"], "is not a Ray address"),
    (["--backend", "ray", "--address", "a" * 70 + "." + "b" * 70 + ":6379"], "cannot reach the Ray cluster"),
    (["--backend", "ray", "--address", "ray://127.0.0.1:1"], "cannot reach the Ray cluster"),
    (["--backend", "ray", "--address", "http://127.0.0.1:80"], "is not a Ray address"),
    (["--backend", "slurm"], "unknown backend 'slurm'"),
    (["--address", "10.0.0.1:6379"], "add --backend ray"),
    (["--workers", "0"], "--workers 0"),
])
def test_bad_backends_and_addresses_are_one_line_before_any_job(tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, GRID_SUITE)
    result = runner.invoke(app, ["tournament", str(path), *args], catch_exceptions=False)
    assert result.exit_code == 2 and fragment in result.stderr and "Traceback" not in result.output, result.output
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "replays" / "leaderboard.sqlite").exists() or not figures(tmp_path / "replays" / "leaderboard.sqlite")
