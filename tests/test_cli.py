"""The `arena` command as a user types it: results, replays, and one-line errors with exit code 2."""

import glob
import sqlite3
from pathlib import Path

import imageio_ffmpeg
import pytest
from typer.testing import CliRunner

from arena.cli import app
from arena.leaderboard import Leaderboard
from arena.replay import load_replay

runner = CliRunner()


def arena(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def assert_one_line_error(result, fragment):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_help_lists_every_command():
    out = arena("--help").output
    for command in ("demo", "run", "eval", "replay", "play", "leaderboard", "tournament", "bench", "envs", "agents"):
        assert command in out


def test_envs_and_agents_list_what_is_there():
    assert "frozenlake-8x8" in arena("envs").output and "maze-<rows>x<cols>" in arena("envs").output
    out = arena("agents").output
    assert "value-iteration" in out and "policy-iteration" in out and "random" in out


def test_run_trains_records_scores_and_lands_on_the_leaderboard(workdir):
    result = arena("run", "value-iteration", "grid:cliff", "--episodes", "3")
    assert result.exit_code == 0, result.output
    assert "1.000" in result.output and "arena replay replays/" in result.output
    (row,) = Leaderboard().results()
    assert row.agent == "value-iteration" and row.score == pytest.approx(1.0) and row.mean_return == -13.0
    assert len(row.replay_paths) == 3 and glob.glob("runs/*/checkpoint.npz")
    verify = arena("replay", row.replay_paths[0], "--verify")
    assert verify.exit_code == 0 and "all 13 steps identical" in verify.output


def test_env_kwargs_on_the_command_line(workdir):
    result = arena("run", "policy-iteration", "grid:frozenlake-4x4", "slip=0", "--episodes", "2")
    assert result.exit_code == 0, result.output
    row = Leaderboard().results()[0]
    assert row.env_kwargs == {"layout": "frozenlake-4x4", "slip": 0} and row.mean_return == 1.0


def test_eval_scores_a_saved_checkpoint_without_training(workdir):
    arena("run", "value-iteration", "grid:four-rooms", "--episodes", "2")
    ckpt = glob.glob("runs/*/checkpoint.npz")[0]
    result = arena("eval", "value-iteration", "grid:four-rooms", "--checkpoint", ckpt, "--episodes", "2")
    assert result.exit_code == 0, result.output
    assert Leaderboard().count() == 2
    import json

    as_json = arena("eval", "value-iteration", "grid:four-rooms", "--checkpoint", ckpt, "--episodes", "2", "--json",
                    "--min-score", "0.99")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["score"]["iqm"] == 1.0
    held = arena("eval", "value-iteration", "grid:four-rooms", "--checkpoint", ckpt, "--episodes", "1", "--min-score", "1.5")
    assert held.exit_code == 1 and "below --min-score 1.5" in held.stderr
    wrong = arena("eval", "value-iteration", "grid:cliff", "--checkpoint", ckpt)
    assert_one_line_error(wrong, "use a checkpoint trained on this env")


def test_replay_exports_mp4_with_one_frame_per_step_plus_the_start(workdir):
    arena("run", "value-iteration", "grid:cliff", "--episodes", "1")
    path = Leaderboard().results()[0].replay_paths[0]
    steps = load_replay(path).steps
    result = arena("replay", path, "--video", "out.mp4")
    assert result.exit_code == 0, result.output
    frames, secs = imageio_ffmpeg.count_frames_and_secs("out.mp4")
    assert frames == steps + 1 + 8 == 22  # the start, one per step, then the last held 1 s at 8 fps
    assert abs(secs - 22 / 8) < 0.2
    again = arena("replay", path, "--video", "out.mp4")
    assert_one_line_error(again, "already exists")


def test_replay_exports_gif(workdir):
    import imageio.v3 as iio

    arena("run", "random", "grid:open-5x5", "--episodes", "1")
    path = Leaderboard().results()[0].replay_paths[0]
    assert arena("replay", path, "--video", "out.gif").exit_code == 0
    assert iio.imread("out.gif").shape[0] == load_replay(path).steps + 1


def test_leaderboard_formats(workdir):
    import csv
    import io
    import json

    arena("run", "random", "grid:cliff", "--episodes", "2")
    arena("run", "random", "grid:cliff", "--episodes", "2", "--seed", "1")
    arena("run", "value-iteration", "grid:cliff", "--episodes", "2")
    assert "| 1 | grid:cliff | value-iteration | 1 | 1.000 |" in arena("leaderboard", "--format", "markdown").output
    assert "| grid:cliff | random |" in arena("leaderboard", "--format", "markdown", "--runs").output
    rows = list(csv.reader(io.StringIO(arena("leaderboard", "--format", "csv").output)))
    assert rows[0][:4] == ["rank", "env", "agent", "runs"] and rows[2][2:4] == ["random", "2"]
    entries = json.loads(arena("leaderboard", "--format", "json").output)
    assert [e["agent"] for e in entries] == ["value-iteration", "random"] and entries[1]["train_seeds"] == [0, 1]
    assert entries[1]["score"]["iqm"] == 0.0 and len(entries[1]["runs"]) == 2
    assert len(json.loads(arena("leaderboard", "--format", "json", "--runs").output)) == 3
    assert_one_line_error(arena("leaderboard", "--format", "html"), "use --html report.html")
    assert "2 entries on 1 envs" in arena("leaderboard", "--html", "report.html").output
    assert open("report.html").read().count("<table>") == 1
    assert "random" in arena("leaderboard", "--env", "grid:cliff").output


def test_demo_prints_a_leaderboard_and_the_command_to_watch_a_replay(workdir):
    result = arena("demo", "--episodes", "3")
    assert result.exit_code == 0, result.output
    assert "Demo leaderboard" in result.output and "watch a replay: arena replay replays/" in result.output
    assert "watch Q-learning explore early in training: arena replay replays/" in result.output
    assert "a Transformer copying 8 tokens: arena replay replays/" in result.output
    assert "a GAN's digits, judged" in result.output and "arena tournament default --workers 2" in result.output
    rows = Leaderboard().results()
    generators = {r.agent: r for r in rows if r.env_id == "arena/ImageGeneration-v0"}
    assert set(generators) == {"gan", "real-data", "noise"}
    assert generators["noise"].score < generators["gan"].score < generators["real-data"].score
    assert all("fid" in r.metrics for r in generators.values())
    rows = [r for r in rows if r.env_id != "arena/ImageGeneration-v0"]
    assert len(rows) == 16 and {r.env_kwargs.get("layout") for r in rows} >= {"cliff", "frozenlake-4x4", "four-rooms"}
    assert {(r.agent, r.env_kwargs.get("layout")) for r in rows} >= {
        ("q-learning", "cliff"), ("sarsa", "cliff"), ("mc-control", "frozenlake-4x4")}
    for r in rows:
        if r.agent == "reinforce-transformer":
            assert r.mean_return >= 0.95  # token accuracy on copy, length 8
        elif r.agent != "random":
            assert r.score >= 0.95
        for path in r.replay_paths + glob.glob(f"replays/{r.run_key}/train-episode*.npz"):
            assert arena("replay", path, "--verify").exit_code == 0
    assert len(glob.glob("replays/*q-learning*/train-episode*.npz")) == 10
    assert glob.glob("runs/*q-learning*/learning_curve.png")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["run", "q-wizard", "grid:cliff"], "unknown agent 'q-wizard'"),
        (["run", "random", "chess:classic"], "unknown env 'chess:classic'"),
        (["run", "random", "grid:volcano"], "unknown layout 'volcano'"),
        (["run", "random", "grid:cliff", "colour=red"], "has no kwarg 'colour'"),
        (["run", "random", "grid:cliff", "slip"], "is not key=value"),
        (["run", "random", "grid", "layout=S..\n.\n..G"], "the map is ragged"),
        (["run", "random", "grid", "layout=S.Z\n..G"], "unknown map character 'Z'"),
        (["run", "random", "grid", "layout=###\n###"], "no free cell"),
        (["run", "random", "grid", "layout=S#.\n##G"], "cannot be reached from the start"),
        (["run", "value-iteration", "grid:cliff", "--set", "gamma=2"], "gamma must be a number in [0, 1], got 2"),
        (["run", "value-iteration", "CartPole-v1"], "cannot play CartPole-v1"),
        (["run", "value-iteration", "grid:cliff", "obs=coords"], "for a grid use obs=index"),
        (["replay", "missing.npz"], "does not exist"),
        (["leaderboard", "--format", "pdf"], "unknown --format 'pdf'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(workdir, args, fragment):
    assert_one_line_error(arena(*args), fragment)


def test_bad_replays_are_refused_and_nothing_is_lost(workdir):
    arena("run", "value-iteration", "grid:cliff", "--episodes", "1")
    good = Leaderboard().results()[0].replay_paths[0]
    data = open(good, "rb").read()
    open("cut.npz", "wb").write(data[:200])
    assert_one_line_error(arena("replay", "cut.npz"), "truncated or corrupt")
    assert_one_line_error(arena("replay", "cut.npz", "--verify"), "truncated or corrupt")
    open("noise.npz", "wb").write(b"\x00" * 500)
    assert_one_line_error(arena("replay", "noise.npz"), "truncated or corrupt")
    assert open(good, "rb").read() == data and arena("replay", good, "--verify").exit_code == 0


def test_locked_database_fails_cleanly_and_keeps_rows_and_replays(workdir, monkeypatch):
    import arena.leaderboard as lb

    arena("run", "random", "grid:cliff", "--episodes", "1")
    monkeypatch.setattr(lb, "BUSY_TIMEOUT_S", 0.2)
    other = sqlite3.connect("replays/leaderboard.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        result = arena("run", "value-iteration", "grid:cliff", "--episodes", "1")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert_one_line_error(result, "is locked by another process")
    assert "the replays are kept in replays/" in result.stderr
    assert [r.agent for r in Leaderboard().results()] == ["random"]
    assert len(glob.glob("replays/*value-iteration*/episode-seed1000.npz")) == 1


def test_corrupt_database_fails_before_any_work_and_is_untouched(workdir):
    open("bad.sqlite", "wb").write(b"garbage" * 300)
    result = arena("run", "value-iteration", "grid:cliff", "--db", "bad.sqlite")
    assert_one_line_error(result, "corrupt or not a database")
    assert open("bad.sqlite", "rb").read() == b"garbage" * 300
    assert not glob.glob("replays/*/episode-*.npz")


def test_wrong_version_replay_is_one_line_and_exit_code_2(workdir):
    from tests.test_replay import _rewrite_header

    arena("run", "value-iteration", "grid:cliff", "--episodes", "1")
    good = Leaderboard().results()[0].replay_paths[0]
    _rewrite_header(good, "future.npz", lambda h: h.update(version=2))
    assert_one_line_error(arena("replay", "future.npz", "--verify"), "format version 2; this Arena reads version(s) 1")


# --------------------------------------------------------------------------- model-free learners


def test_q_learning_run_writes_curve_tensorboard_training_replays_and_a_row(workdir):
    result = arena("run", "q-learning", "grid:cliff", "--train-episodes", "2000", "--record-training", "500", "--episodes", "2")
    assert result.exit_code == 0, result.output
    (row,) = Leaderboard().results()
    assert row.agent == "q-learning" and row.score == pytest.approx(1.0)
    run_dir = glob.glob("runs/*q-learning*")[0]
    assert glob.glob(f"{run_dir}/learning_curve.png") and glob.glob(f"{run_dir}/tensorboard/events.out.tfevents.*")
    training = sorted(glob.glob("replays/*q-learning*/train-episode*.npz"))
    assert [p[-10:-4] for p in training] == ["000000", "000500", "001000", "001500"]
    for path in training:
        rep = load_replay(path)
        assert rep.label.startswith("training episode") and "greedy_actions" in rep.overlay
        assert arena("replay", path, "--verify").exit_code == 0
    first = load_replay(training[0])
    assert (first.overlay["greedy_actions"] != first.actions).any()  # it explored


def test_exploring_starts_training_replays_resimulate_from_their_start_state(workdir):
    result = arena("run", "mc-exploring-starts", "grid:four-rooms", "--train-episodes", "50", "--record-training", "10", "--episodes", "1")
    assert result.exit_code == 0, result.output
    for path in glob.glob("replays/*/train-episode*.npz"):
        assert "state" in load_replay(path).reset_options
        assert arena("replay", path, "--verify").exit_code == 0


def test_resume_continues_training_from_a_checkpoint(workdir):
    arena("run", "sarsa", "grid:frozenlake-4x4", "--train-episodes", "200", "--episodes", "1")
    ckpt = glob.glob("runs/*/checkpoint.npz")[0]
    result = arena("run", "sarsa", "grid:frozenlake-4x4", "--train-episodes", "500", "--resume", ckpt, "--episodes", "1")
    assert result.exit_code == 0, result.output
    assert "episodes 500" in result.output


def test_ctrl_c_saves_a_checkpoint_and_prints_how_to_resume(workdir):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "arena", "run", "q-learning", "grid:frozenlake-8x8", "--train-episodes", "100000000",
         "--db", "elsewhere.sqlite", "--replays", "mine", "--checkpoint-every", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while not glob.glob("runs/*/tensorboard/events.*") and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "training of q-learning interrupted after" in err and "--resume runs/" in err
    ckpt = glob.glob("runs/*/checkpoint.npz")[0]
    from agents.td import QLearningAgent

    stopped_at = QLearningAgent().load(ckpt).episodes_done
    assert stopped_at > 0 and f"interrupted after {stopped_at} of 100000000 episodes;" in err
    assert f"continue with ({100000000 - stopped_at} episodes to go): arena run q-learning grid:frozenlake-8x8" in err
    # following the printed command keeps the run where it was going: same database, replays, checkpoint interval
    assert "--db elsewhere.sqlite" in err and "--replays mine" in err and "--checkpoint-every 2.0" in err
    assert not glob.glob("mine/*/episode-*.npz")  # interrupted before evaluation: no result, no row


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["run", "q-learning", "grid:cliff", "--set", "alpha=0"], "alpha must be a number in (0, 1], got 0"),
        (["run", "sarsa", "grid:cliff", "--set", "epsilon=1.5"], "epsilon must be a number in [0, 1], got 1.5"),
        (["run", "mc-control", "grid:cliff", "--set", "gamma=-1"], "gamma must be a number in [0, 1], got -1"),
        (["run", "q-learning", "CartPole-v1"], "q-learning cannot play CartPole-v1: it is tabular and needs Discrete observations, not Box 4"),
        (["run", "q-learning", "grid:cliff", "--record-training", "-1"], "--record-training -1"),
        (["run", "q-learning", "grid:cliff", "--resume", "nowhere.npz"], "does not exist"),
    ],
)
def test_bad_learner_input_is_one_line_and_exit_code_2(workdir, args, fragment):
    assert_one_line_error(arena(*args), fragment)


# --------------------------------------------------------------------------- neural agents


def test_reinforce_on_a_sequence_task_lands_on_the_leaderboard_and_replays_the_tape(workdir):
    result = arena("run", "reinforce-mlp", "seq:parity", "length=3", "--train-episodes", "640", "--episodes", "2", "--device", "cpu")
    assert result.exit_code == 0, result.output
    (row,) = Leaderboard().results()
    assert row.agent == "reinforce-mlp" and row.env_kwargs == {"task": "parity", "length": 3}
    assert row.score == pytest.approx(row.mean_return) and len(row.successes) == 2  # sequence tasks: accuracy
    assert glob.glob("runs/*/checkpoint.npz") and glob.glob("runs/*/learning_curve.png")
    path = row.replay_paths[0]
    assert arena("replay", path, "--verify").exit_code == 0
    assert arena("replay", path, "--video", "tape.mp4").exit_code == 0
    ckpt = glob.glob("runs/*/checkpoint.npz")[0]
    again = arena("eval", "reinforce-mlp", "seq:parity", "length=3", "--checkpoint", ckpt, "--episodes", "2")
    assert again.exit_code == 0, again.output
    wrong = arena("eval", "reinforce-lstm", "seq:parity", "length=3", "--checkpoint", ckpt)
    assert_one_line_error(wrong, "is a checkpoint of reinforce-mlp, not of reinforce-lstm")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["run", "reinforce-lstm", "seq:copy", "length=0"], "length must be an integer in [1, 256], got 0"),
        (["run", "reinforce-lstm", "seq:juggle"], "task must be one of copy, reverse, parity, addition, sine, text, got 'juggle'"),
        (["run", "reinforce-cnn", "grid:cliff"], "the cnn reads image observations"),
        (["run", "q-learning", "grid:cliff", "--device", "cpu"], "--device applies to neural agents"),
        (["run", "reinforce-mlp", "seq:copy", "--set", "lr=0"], "lr must be a number in (0, 1], got 0"),
        (["run", "reinforce-mlp", "seq:copy", "--device", "tpu"], "device must be one of auto, cpu, cuda, got 'tpu'"),
    ]
    + ([] if __import__("torch").cuda.is_available() else
       [(["run", "reinforce-mlp", "seq:copy", "--device", "cuda"], "no CUDA GPU is available here")]),
)
def test_bad_neural_input_is_one_line_and_exit_code_2(workdir, args, fragment):
    assert_one_line_error(arena(*args), fragment)


def test_sb3_ppo_trains_on_a_grid_and_a_sequence_task_beside_ours(workdir):
    """Budget: 5000 PPO steps on the open room, 3000 on parity of 2 bits; seed 0."""
    assert arena("run", "sb3-ppo", "grid:open-5x5", "--set", "steps=5000", "--episodes", "3").exit_code == 0
    assert arena("run", "sb3-ppo", "seq:parity", "length=2", "--set", "steps=3000", "--episodes", "3").exit_code == 0
    assert arena("run", "value-iteration", "grid:open-5x5", "--episodes", "3").exit_code == 0
    rows = {(r.agent, r.env_id): r for r in Leaderboard().results()}
    assert rows[("sb3-ppo", "arena/GridWorld-v0")].score >= 0.95
    assert rows[("sb3-ppo", "arena/SequencePrediction-v0")].episodes == 3
    board = arena("leaderboard", "--env", "grid:open-5x5").output
    assert "sb3-ppo" in board and "value-iteration" in board
    ckpt = glob.glob("runs/*sb3-ppo-open*/checkpoint.npz")[0]
    again = arena("eval", "sb3-ppo", "grid:open-5x5", "--checkpoint", ckpt, "--episodes", "2")
    assert again.exit_code == 0, again.output
    assert_one_line_error(arena("run", "sb3-sac", "grid:cliff"), "unknown agent 'sb3-sac'")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message given without a GPU")
def test_bench_gpu_without_a_gpu_says_so_in_one_line():
    assert_one_line_error(arena("bench", "--gpu"), "needs a CUDA GPU and none is available here")


def test_verify_failure_exits_1_and_names_the_step(workdir):
    from arena.replay import save_replay

    arena("run", "value-iteration", "grid:cliff", "--episodes", "1")
    rep = load_replay(Leaderboard().results()[0].replay_paths[0])
    rep.rewards = rep.rewards.copy()
    rep.rewards[6] = -2.0
    save_replay("edited.npz", rep)  # a well-formed file whose story no longer matches the env
    result = arena("replay", "edited.npz", "--verify")
    assert result.exit_code == 1
    assert "verify failed" in result.stderr and "step 7: reward -1.0 but the replay recorded -2.0" in result.stderr


def test_play_refuses_what_a_person_cannot_play_in_one_line(workdir):
    assert_one_line_error(arena("play", "img:digits"), "cannot be played from the keyboard")
    assert_one_line_error(arena("play", "grid:cliff", "--episodes", "0"), "play between 1 and 100 episodes")
    assert_one_line_error(arena("play", "grid:cliff", "--seconds", "0.3"), "no key pressed in 0.3 s")
    assert not Leaderboard().results()  # nothing half-played lands


def test_bench_json_lists_figures_with_baseline_ratio_spread_and_target(workdir):
    import json

    result = arena("bench", "--quick", "--only", "env-step", "--only", "q-learning", "--json")
    report = json.loads(result.stdout)
    assert report["complete"] is True
    figures = report["figures"]
    assert [f["id"] for f in figures] == ["env-step", "q-learning"]
    f = figures[0]
    assert set(f) >= {"id", "baseline", "baseline_value", "ours", "unit", "ratio", "spread", "target", "met", "verdict",
                      "limit", "limit_value", "fraction_of_limit"}
    assert f["baseline"] == "Gymnasium FrozenLake8x8-v1" and f["unit"] == "steps/s"
    assert f["spread"][0] <= f["ratio"] <= f["spread"][1] and f["met"] == (f["ratio"] >= 1.0)
    q = figures[1]  # a figure against the limit: the same learning as a compiled loop
    assert q["limit"] and q["limit_value"] > 0 and q["limit_spread"][0] <= q["fraction_of_limit"] <= q["limit_spread"][1]
    assert q["verdict"] == ("inconclusive" if q["inconclusive"] else "met" if q["met"] else "not met")
    ok = all(x["verdict"] == "met" for x in figures)
    assert result.exit_code == (0 if ok else 1)  # a target not met is an exit status, not a secret
    saved = Path("bench.json")
    saved.write_text(result.stdout)
    table = arena("bench", "--from", str(saved), "--markdown")  # a saved run, shown again: the README's table
    assert "| q-learning |" in table.stdout and "the same learning, compiled" in table.stdout
    saved.write_text(result.stdout[: len(result.stdout) // 2])
    assert_one_line_error(arena("bench", "--from", str(saved)), "not a run saved by `arena bench --json`")
    assert_one_line_error(arena("bench", "--from", "missing.json"), "cannot read it")
    assert_one_line_error(arena("bench", "--only", "warp-drive"), "no such benchmark")


def test_arena_envs_names_the_config_files_env_table():
    """'[env]' is text, not rich markup: it reaches the screen."""
    assert "(or under [env] in a --config file)" in arena("envs", "text").output
