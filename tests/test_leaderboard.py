"""The SQLite leaderboard: rows, WAL, unique run keys, and refusing bad databases without harm."""

import math
import sqlite3

import pytest

from arena.leaderboard import SCHEMA_VERSION, Leaderboard, LeaderboardError, Result, markdown_report
from arena.leaderboard.report import report_page


def row(key="run-1", agent="value-iteration", score=1.0, mean=-13.0):
    return Result(
        run_key=key, env_id="arena/GridWorld-v0", env_kwargs={"layout": "cliff"}, agent=agent,
        agent_config={"gamma": 0.99}, train_seed=0, eval_seeds=[1000, 1001], returns=[mean, mean],
        mean_return=mean, std_return=0.0, iqm_return=mean, score=score, exact_return=mean, eval_gamma=0.99,
        replay_paths=["replays/run-1/episode-seed1000.npz"],
    )


def test_rows_round_trip_with_every_field(tmp_path):
    board = Leaderboard(tmp_path / "lb.sqlite")
    assert board.add(row())
    (got,) = board.results()
    assert got.env_kwargs == {"layout": "cliff"} and got.eval_seeds == [1000, 1001]
    assert got.score == 1.0 and got.mean_return == -13.0 and got.episodes == 2
    assert got.code_version and got.created and got.replay_paths == ["replays/run-1/episode-seed1000.npz"]


def test_database_is_wal_with_schema_version(tmp_path):
    Leaderboard(tmp_path / "lb.sqlite")
    conn = sqlite3.connect(tmp_path / "lb.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4


def test_a_retried_job_lands_once(tmp_path):
    board = Leaderboard(tmp_path / "lb.sqlite")
    assert board.add(row("same"))
    assert not board.add(row("same", mean=-99.0))
    assert board.count() == 1 and board.results()[0].mean_return == -13.0


def test_best_first_and_nan_stored_as_missing(tmp_path):
    board = Leaderboard(tmp_path / "lb.sqlite")
    board.add(row("a", "random", score=0.0, mean=-800.0))
    board.add(row("b", "value-iteration", score=1.0))
    board.add(row("c", "broken", score=math.nan, mean=math.nan))
    agents = [r.agent for r in board.results()]
    assert agents == ["value-iteration", "random", "broken"]
    broken = board.results(agent="broken")[0]
    assert broken.score is None and broken.mean_return is None
    assert "n/a" in markdown_report(board.results()) and "<table>" in report_page(board.results(), tmp_path)[0]


def test_locked_database_is_refused_and_keeps_its_rows(tmp_path):
    path = tmp_path / "lb.sqlite"
    board = Leaderboard(path, timeout=0.2)
    board.add(row("kept"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(LeaderboardError, match="is locked by another process; wait for it to finish"):
            board.add(row("new"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert [r.run_key for r in board.results()] == ["kept"]


def test_corrupt_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "lb.sqlite"
    path.write_bytes(b"definitely not sqlite" * 100)
    before = path.read_bytes()
    with pytest.raises(LeaderboardError, match="corrupt or not a database .* move it aside"):
        Leaderboard(path)
    assert path.read_bytes() == before


def test_someone_elses_sqlite_file_is_not_touched(tmp_path):
    path = tmp_path / "theirs.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.execute("INSERT INTO notes VALUES (1)")
    conn.commit()
    conn.close()
    with pytest.raises(LeaderboardError, match="not an Arena leaderboard"):
        Leaderboard(path)
    assert sqlite3.connect(path).execute("SELECT x FROM notes").fetchall() == [(1,)]


def test_newer_schema_asks_for_an_upgrade(tmp_path):
    path = tmp_path / "lb.sqlite"
    Leaderboard(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()
    with pytest.raises(LeaderboardError, match=f"schema 7, newer than this Arena's {SCHEMA_VERSION}; upgrade Arena"):
        Leaderboard(path)


def test_a_schema_1_database_is_migrated_in_place_keeping_its_rows(tmp_path):
    """Schema 1 had no metrics, successes nor budget columns: a writer adds them in place
    (1 -> 2 -> 3 -> 4); a reader reads the file as it is."""
    path = tmp_path / "lb.sqlite"
    Leaderboard(path).add(row("old"))
    with sqlite3.connect(path) as conn:  # turn it back into a schema-1 file
        conn.execute("ALTER TABLE results DROP COLUMN metrics")
        conn.execute("ALTER TABLE results DROP COLUMN successes")
        conn.execute("ALTER TABLE results DROP COLUMN budget")
        conn.execute("ALTER TABLE results DROP COLUMN budget_unit")
        conn.execute("PRAGMA user_version = 1")
    assert [r.run_key for r in Leaderboard(path, readonly=True).results()] == ["old"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # the reader changed nothing
    board = Leaderboard(path)
    board.add(row("new"))
    assert sorted(r.run_key for r in board.results()) == ["new", "old"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_committed_rows_survive_a_killed_writer(tmp_path):
    """A process killed with SIGKILL right after add() returns loses nothing it committed."""
    import subprocess
    import sys

    path = tmp_path / "lb.sqlite"
    script = (
        "import os, signal, sys\n"
        "sys.path.insert(0, %r)\n"
        "from tests.test_leaderboard import row\n"
        "from arena.leaderboard import Leaderboard\n"
        "b = Leaderboard(%r)\n"
        "b.add(row('before-kill'))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    ) % (str(__import__("pathlib").Path(__file__).resolve().parents[1]), str(path))
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -9
    assert [r.run_key for r in Leaderboard(path).results()] == ["before-kill"]
