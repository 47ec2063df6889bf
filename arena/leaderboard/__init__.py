"""The leaderboard: an SQLite database of results, its queries, and its reports.

One row per evaluated (agent, env) run, written in one short transaction, keyed by a
unique run key so a retried job never lands twice. The database runs in WAL mode with a
busy timeout, is stamped with an application id and schema version, and is never
rewritten: a file that is locked, corrupt or not Arena's is refused with a message.
Default location: replays/leaderboard.sqlite (override with --db or ARENA_DB).

Reports: the runs and standings as markdown or CSV tables here; the HTML report page
(`arena leaderboard --html`) in arena/leaderboard/report.py.

Why one long file: the store's schema, migrations, writes and reads must change together.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import urllib.parse
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from arena.errors import LeaderboardError, one_line

APPLICATION_ID = 0x4152454E  # "AREN"
SCHEMA_VERSION = 4  # 2: the metrics column (per-family figures, e.g. FID for generators); 3: successes; 4: budget
DEFAULT_DB = Path("replays") / "leaderboard.sqlite"
BUSY_TIMEOUT_S = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id              INTEGER PRIMARY KEY,
    run_key         TEXT NOT NULL UNIQUE,
    created         TEXT NOT NULL,
    env_id          TEXT NOT NULL,
    env_kwargs      TEXT NOT NULL,
    agent           TEXT NOT NULL,
    agent_config    TEXT NOT NULL,
    checkpoint      TEXT NOT NULL,
    train_seed      INTEGER NOT NULL,
    eval_seeds      TEXT NOT NULL,
    episodes        INTEGER NOT NULL,
    mean_return     REAL,
    std_return      REAL,
    iqm_return      REAL,
    returns         TEXT NOT NULL,
    score           REAL,
    exact_return    REAL,
    eval_gamma      REAL,
    replay_paths    TEXT NOT NULL,
    train_seconds   REAL NOT NULL,
    eval_seconds    REAL NOT NULL,
    code_version    TEXT NOT NULL,
    note            TEXT NOT NULL DEFAULT '',
    metrics         TEXT NOT NULL DEFAULT '{}',
    successes       TEXT NOT NULL DEFAULT '[]',
    budget          INTEGER,
    budget_unit     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS results_env ON results (env_id, env_kwargs);
"""
# how each older schema becomes the next one, in place (rows are never dropped)
MIGRATIONS = {1: "ALTER TABLE results ADD COLUMN metrics TEXT NOT NULL DEFAULT '{}'",
              2: "ALTER TABLE results ADD COLUMN successes TEXT NOT NULL DEFAULT '[]'",
              3: "ALTER TABLE results ADD COLUMN budget INTEGER; ALTER TABLE results ADD COLUMN budget_unit TEXT NOT NULL DEFAULT ''"}


@dataclass
class Result:
    """One leaderboard row. Lists and dicts are stored as JSON text."""

    run_key: str
    env_id: str
    env_kwargs: dict[str, Any]
    agent: str
    agent_config: dict[str, Any]
    train_seed: int
    eval_seeds: list[int]
    returns: list[float]
    mean_return: float | None
    std_return: float | None
    iqm_return: float | None
    score: float | None = None
    exact_return: float | None = None
    eval_gamma: float | None = None
    replay_paths: list[str] = field(default_factory=list)
    checkpoint: str = ""
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    code_version: str = ""
    note: str = ""
    created: str = ""
    id: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # per-family figures: fid, inception_score, coverage, ...
    successes: list[bool] = field(default_factory=list)  # per evaluation episode; empty where the env has no goal
    budget: int | None = None  # what the run trained with, in `budget_unit`; None: nothing trained (planners, references)
    budget_unit: str = ""  # "episode", "batch", "step", ...

    @property
    def budget_text(self) -> str:
        """'2000 episodes', or '' where nothing was trained."""
        if self.budget is None:
            return ""
        return f"{self.budget} {self.budget_unit}{'' if self.budget == 1 else 'es' if self.budget_unit.endswith(('s', 'ch')) else 's'}"

    @property
    def episodes(self) -> int:
        return len(self.returns)

    @property
    def success_rate(self) -> float | None:
        """The share of evaluation episodes that succeeded (reached G; answered all right); None: no such notion."""
        return sum(self.successes) / len(self.successes) if self.successes else None


def default_db() -> Path:
    return Path(os.environ.get("ARENA_DB") or DEFAULT_DB)


def code_version() -> str:
    """Package version plus the git commit when run from a checkout."""
    from arena import __version__

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class Leaderboard:
    """The database at `path`; every call is its own short transaction.

    `readonly=True` (what the reading commands use) never creates or changes a file: a
    missing database is an error, and the file is opened as `file:PATH?mode=ro`, so not
    even the switch to WAL (which rewrites the header) happens. Otherwise the database is
    created on first use; creation runs inside `BEGIN IMMEDIATE` with `IF NOT EXISTS`, so
    several processes creating the same new database at once all succeed.
    """

    def __init__(self, path: str | Path | None = None, timeout: float | None = None, readonly: bool = False) -> None:
        self.path = Path(path) if path is not None else default_db()
        self.timeout = BUSY_TIMEOUT_S if timeout is None else timeout
        self.readonly = readonly
        if self.path.is_dir():
            raise LeaderboardError(f"{self.path} is a folder; give --db a file path such as {self.path / 'leaderboard.sqlite'}")
        if readonly and not self.path.is_file():
            raise LeaderboardError(
                f"{self.path} does not exist; check --db (or $ARENA_DB), or add a result first with `arena run`"
            )
        with self._connect() as conn:
            self._check_or_create(conn)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if self.readonly:
                uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
                connection = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except OSError as exc:
            raise LeaderboardError(
                f"cannot use {self.path}: {exc.strerror or exc} (is a part of the path a file?); give --db a file in a folder"
            ) from None
        except sqlite3.Error as exc:
            raise LeaderboardError(f"cannot open {self.path}: {one_line(exc)}; check the path and its permissions") from None
        try:
            with closing(connection) as conn:
                conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
                yield conn
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise LeaderboardError(
                    f"{self.path} is locked by another process; wait for it to finish, or use --db for another file"
                ) from None
            raise LeaderboardError(f"{self.path}: {one_line(exc)}; check the path and its permissions, or use --db") from None
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise LeaderboardError(
                f"{self.path} is corrupt or not a database ({type(exc).__name__}); move it aside (it is left untouched) "
                "or use --db"
            ) from None

    def _check(self, conn: sqlite3.Connection) -> bool:
        """True if the database is empty (new); raises if it is not an Arena leaderboard we can read."""
        own = not conn.in_transaction  # the three reads in one snapshot: another process may be creating it
        if own:
            conn.execute("BEGIN")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            if own:
                conn.execute("COMMIT")
        if app_id == 0 and tables == 0:
            return True
        if app_id != APPLICATION_ID:
            raise LeaderboardError(
                f"{self.path} is an SQLite database but not an Arena leaderboard; it is left untouched: use --db for another file"
            )
        if version > SCHEMA_VERSION:
            raise LeaderboardError(
                f"{self.path} has leaderboard schema {version}, newer than this Arena's {SCHEMA_VERSION}; upgrade Arena"
            )
        return False

    def _check_or_create(self, conn: sqlite3.Connection) -> None:
        empty = self._check(conn)  # reads only: a foreign file is refused before anything is written
        if self.readonly:
            if empty:
                raise LeaderboardError(f"{self.path} is an empty database, not an Arena leaderboard; check --db")
            return
        conn.execute("PRAGMA journal_mode = WAL")
        if not empty:
            self._migrate(conn)
            return
        conn.execute("BEGIN IMMEDIATE")  # one creator at a time; the others wait, then find it made
        try:
            if self._check(conn):
                for statement in filter(str.strip, SCHEMA.split(";")):  # (executescript would COMMIT first)
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring an older schema up to this one in place, one version at a time, in one transaction."""
        if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # (another process may have done it)
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version].split(";"):
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ---------------------------------------------------------------- writes

    def add(self, result: Result, before_commit: Callable[[], None] | None = None) -> bool:
        """Insert one row in its own transaction; False if its run key is already there.

        `before_commit` runs inside the transaction once the row is in (it holds the write
        lock): what it does is done exactly when the row commits; if it raises, no row."""
        row = asdict(result)
        row.pop("id")
        row["created"] = row["created"] or datetime.now(timezone.utc).isoformat(timespec="seconds")
        row["code_version"] = row["code_version"] or code_version()
        row["episodes"] = result.episodes
        for key in ("mean_return", "std_return", "iqm_return", "score", "exact_return"):
            row[key] = _finite(row[key])
        for key in ("env_kwargs", "agent_config", "eval_seeds", "returns", "replay_paths", "metrics", "successes"):
            row[key] = json.dumps(row[key], sort_keys=True, allow_nan=True)
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute(
                f"INSERT INTO results ({cols}) VALUES ({marks}) ON CONFLICT(run_key) DO NOTHING", row
            )
            if cur.rowcount != 1:
                conn.execute("ROLLBACK")
                return False
            try:
                if before_commit is not None:
                    before_commit()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            result.id, result.created = cur.lastrowid, row["created"]
            return True

    # ---------------------------------------------------------------- reads

    def results(self, env_id: str | None = None, agent: str | None = None, limit: int | None = None) -> list[Result]:
        """Rows best first: by normalised score where known, then by mean return."""
        where, args = [], []
        if env_id:
            where.append("env_id = ?")
            args.append(env_id)
        if agent:
            where.append("agent = ?")
            args.append(agent)
        sql = "SELECT * FROM results"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY env_id, env_kwargs, score IS NULL, score DESC, mean_return IS NULL, mean_return DESC, id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(sql, args).fetchall()
        return [self._row(dict(r)) for r in rows]

    def _row(self, d: dict[str, Any]) -> Result:
        """A database row as a Result, or one line naming the damaged row."""
        d.pop("episodes", None)
        d.setdefault("metrics", "{}")  # an older file opened read-only (never migrated by a reader)
        d.setdefault("successes", "[]")
        d.setdefault("budget", None)
        d.setdefault("budget_unit", "")
        expect = {"env_kwargs": dict, "agent_config": dict, "eval_seeds": list, "returns": list, "replay_paths": list,
                  "metrics": dict, "successes": list}
        try:
            for key, kind in expect.items():
                d[key] = json.loads(d[key])
                if not isinstance(d[key], kind):
                    raise TypeError(key)
            for key in ("run_key", "env_id", "agent", "created", "checkpoint", "code_version", "note"):
                if not isinstance(d[key], str):
                    raise TypeError(key)
            for key in ("mean_return", "std_return", "iqm_return", "score", "exact_return", "eval_gamma"):
                if d[key] is not None and not isinstance(d[key], (int, float)):
                    raise TypeError(key)
            if not isinstance(d["train_seed"], int):
                raise TypeError("train_seed")
            if (d["budget"] is not None and not isinstance(d["budget"], int)) or not isinstance(d["budget_unit"], str):
                raise TypeError("budget")
            if not all(isinstance(x, bool) for x in d["successes"]):
                raise TypeError("successes")
            return Result(**d)
        except (TypeError, ValueError, KeyError) as exc:
            raise LeaderboardError(
                f"{self.path}: row id {d.get('id')} is damaged ({type(exc).__name__}: {one_line(exc)[:60]}); "
                f"delete it (DELETE FROM results WHERE id = {d.get('id')}) or use another --db"
            ) from None

    def run_keys(self) -> set[str]:
        """The run keys already on the board (a tournament skips those jobs on a rerun)."""
        with self._connect() as conn:
            return {k for (k,) in conn.execute("SELECT run_key FROM results")}

    def count(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT count(*) FROM results").fetchone()[0])


ALIASES = {"arena/GridWorld-v0": ("grid", "layout"), "arena/SequencePrediction-v0": ("seq", "task"),
           "arena/ImageGeneration-v0": ("img", "dataset")}


class NamesEnv(Protocol):
    """Anything that names an env by id and kwargs: a leaderboard row, a job."""

    env_id: str
    env_kwargs: dict[str, Any]


def env_label(result: NamesEnv) -> str:
    """'grid:cliff slip=0.1': the env a row (or job) was scored on, in the form `arena run` takes."""
    kwargs = dict(result.env_kwargs)
    head = result.env_id
    if result.env_id in ALIASES:
        alias, key = ALIASES[result.env_id]
        value = kwargs.pop(key, None)
        head = f"{alias}:{value}" if isinstance(value, str) and "\n" not in value else alias if value is None else f"{alias}:<map>"
    rest = " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(kwargs.items()))
    return f"{head} {rest}".strip()


def fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if not isinstance(x, (int, float)) else f"{x:.{digits}f}"


REPORT_COLUMNS = ("id", "date", "env", "agent", "score", "mean return", "std", "exact return", "episodes", "seeds", "code",
                  "figures")


def image_figures(r: Result) -> str:
    """'FID 41.2  IS 9.3  coverage 10/10' for a generator's row (plus a mode-collapse flag); '' otherwise."""
    m = r.metrics
    if "fid" not in m:
        return ""
    flag = "  MODE COLLAPSE" if m.get("mode_collapse") else ""
    return (f"FID {fmt(m.get('fid'), 1)}  IS {fmt(m.get('inception_score'), 2)}  "
            f"coverage {m.get('classes_covered')}/{m.get('n_classes')}{flag}")


def text_summary(gold: float | None, proxy: float | None, kl: float | None, kl_bound: float | None = None) -> str:
    """'gold 0.95, proxy +3.04, KL 0.76' (the parts that exist; best-of-n: 'KL <= 0.64', its
    bound); '' without a gold score."""
    if gold is None:
        return ""
    parts = [f"gold {gold:.3f}"]
    if proxy is not None:
        parts.append(f"proxy {proxy:+.2f}")
    if kl is not None:
        parts.append(f"KL {kl:.2f}")
    elif kl_bound is not None:
        parts.append(f"KL <= {kl_bound:.2f}")
    return ", ".join(parts)


def text_figures(r: Result) -> str:
    """A writer's row as 'gold 0.95, proxy +3.04, KL 0.76'; '' for other rows."""
    m = r.metrics

    def number(key: str) -> float | None:
        v = m.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    return text_summary(number("gold"), number("proxy"), number("kl"), number("kl_bound"))


def json_ready(x: Any) -> Any:
    """`x` with every non-finite float as None, so json.dumps writes standard JSON (no NaN, Infinity)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_ready(v) for v in x]
    return x


def short_date(created: str) -> str:
    """'2026-11-23T12:28:09+00:00' -> '2026-11-23 12:28' (UTC)."""
    return created[:16].replace("T", " ")


def report_rows(results: list[Result]) -> list[tuple[str, ...]]:
    """The report's cells as plain strings; each format escapes them its own way."""
    return [
        (
            str(r.id or ""), short_date(r.created), env_label(r), r.agent, fmt(r.score), fmt(r.mean_return, 2), fmt(r.std_return, 2),
            fmt(r.exact_return, 2), str(r.episodes), f"train {r.train_seed}; eval {r.eval_seeds[0]}..{r.eval_seeds[-1]}"
            if r.eval_seeds else f"train {r.train_seed}", r.code_version, image_figures(r) or text_figures(r),
        )
        for r in results
    ]


def markdown_cell(text: str) -> str:
    """A table cell that cannot break the table or run as HTML where the Markdown is shown:
    pipes escaped, line breaks folded, <, > and & as entities (a raw <script> from the
    database stays text)."""
    import html

    return html.escape(" ".join(text.split()), quote=False).replace("\\", "\\\\").replace("|", "\\|")


def markdown_table(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def markdown_report(results: list[Result]) -> str:
    return markdown_table(REPORT_COLUMNS, report_rows(results))
