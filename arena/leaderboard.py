"""The leaderboard: an SQLite database of results, its queries, and its reports.

One row per evaluated (agent, env) run, written in one short transaction, keyed by a
unique run key so a retried job never lands twice. The database runs in WAL mode with a
busy timeout, is stamped with an application id and schema version, and is never
rewritten: a file that is locked, corrupt or not Arena's is refused with a message.
Default location: replays/leaderboard.sqlite (override with --db or ARENA_DB).

Reports: the standings and runs as markdown or CSV tables, and the report page
(`arena leaderboard --html report.html`): one self-contained HTML file (every image
embedded, nothing fetched) with, per env, the standings table (IQM score, 95% interval,
success, ties and flags as in the terminal), the intervals as error bars beside a
performance profile, the learning curves of the entries' training runs (each run's
checkpoint, runs/<run key>/checkpoint.npz, carries its training log) and a GIF of the top
entries' first evaluation episode. What is not on the machine any more is said on the
page, never silently left out.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import sqlite3
import subprocess
import urllib.parse
from collections.abc import Callable
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import numpy as np

from arena.errors import LeaderboardError, one_line

APPLICATION_ID = 0x4152454E  # "AREN"
SCHEMA_VERSION = 3  # 2: the metrics column (per-family figures, e.g. FID for generators); 3: successes
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
    successes       TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS results_env ON results (env_id, env_kwargs);
"""
# how each older schema becomes the next one, in place (rows are never dropped)
MIGRATIONS = {1: "ALTER TABLE results ADD COLUMN metrics TEXT NOT NULL DEFAULT '{}'",
              2: "ALTER TABLE results ADD COLUMN successes TEXT NOT NULL DEFAULT '[]'"}


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
                conn.execute(MIGRATIONS[version])
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ---------------------------------------------------------------- writes

    def add(self, result: Result) -> bool:
        """Insert one row in its own transaction; False if its run key is already there."""
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
            cur = conn.execute(
                f"INSERT INTO results ({cols}) VALUES ({marks}) ON CONFLICT(run_key) DO NOTHING", row
            )
            if cur.rowcount == 1:
                result.id, result.created = cur.lastrowid, row["created"]
            return cur.rowcount == 1

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


def env_label(result: Result) -> str:
    """'grid:cliff slip=0.1': the env a row was scored on, in the form `arena run` takes."""
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
                  "image scores")


def image_figures(r: Result) -> str:
    """'FID 41.2  IS 9.3  coverage 10/10' for a generator's row (plus a mode-collapse flag); '' otherwise."""
    m = r.metrics
    if "fid" not in m:
        return ""
    flag = "  MODE COLLAPSE" if m.get("mode_collapse") else ""
    return (f"FID {fmt(m.get('fid'), 1)}  IS {fmt(m.get('inception_score'), 2)}  "
            f"coverage {m.get('classes_covered')}/{m.get('n_classes')}{flag}")


def short_date(created: str) -> str:
    """'2026-11-23T12:28:09+00:00' -> '2026-11-23 12:28' (UTC)."""
    return created[:16].replace("T", " ")


def report_rows(results: list[Result]) -> list[tuple[str, ...]]:
    """The report's cells as plain strings; each format escapes them its own way."""
    return [
        (
            str(r.id or ""), short_date(r.created), env_label(r), r.agent, fmt(r.score), fmt(r.mean_return, 2), fmt(r.std_return, 2),
            fmt(r.exact_return, 2), str(r.episodes), f"train {r.train_seed}; eval {r.eval_seeds[0]}..{r.eval_seeds[-1]}"
            if r.eval_seeds else f"train {r.train_seed}", r.code_version, image_figures(r),
        )
        for r in results
    ]


def markdown_cell(text: str) -> str:
    """A table cell that cannot break the table: pipes escaped, line breaks folded."""
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|")


def markdown_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
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


# --------------------------------------------------------------------------- the report page

TOP_REPLAYS = 3  # GIF thumbnails per env: the entries ranked first (at most this many)
MAX_CURVES = 8  # learning curves per env: the best entries
GIF_WIDTH = 260  # pixels
GIF_STEPS = 60  # an episode longer than this is shown up to here (and says so)
GIF_FPS = 6

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#222}
h1{margin-bottom:4px} h2{margin-top:40px;border-bottom:2px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:12px 0;font-size:14px}
td,th{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:right}
td.left,th.left{text-align:left} th{background:#f4f4f6}
tr.tied td.rank{color:#555} td.flag{color:#b00020;font-weight:600;text-align:left}
.muted{color:#666;font-size:13px} figure{display:inline-block;margin:8px 16px 8px 0;vertical-align:top}
figcaption{font-size:13px;color:#444;max-width:520px} img{border:1px solid #eee}
"""


@dataclass
class ReportSummary:
    """What a written report holds: for the CLI's closing line, and for tests."""

    path: Path
    envs: int
    entries: int
    images: int
    missing: list[str]  # what could not be shown (a run folder or a replay not on this machine)


def write_report(results: list[Result], path: str | Path, runs_dir: str | Path = "runs", source: str = "",
                 on_env: Callable[[str], None] | None = None) -> ReportSummary:
    """Write the report page of leaderboard rows `results` to `path` (atomically)."""
    path = Path(path)
    page, summary = report_page(results, Path(runs_dir), source, on_env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    summary.path = path
    return summary


def report_page(results: list[Result], runs_dir: Path, source: str = "",
                on_env: Callable[[str], None] | None = None) -> tuple[str, ReportSummary]:
    """The page's HTML and what it holds."""
    from arena.evaluate import standings

    entries = standings(results)
    envs = sorted({st.env for st in entries})
    summary = ReportSummary(Path(), len(envs), len(entries), 0, [])
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = sorted({r.code_version for r in results if r.code_version})
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>Arena leaderboard</title>",
        f"<style>{STYLE}</style><body><h1>Arena leaderboard</h1>",
        f"<p class='muted'>{len(results)} runs, {len(entries)} entries on {len(envs)} envs"
        f"{', from ' + html.escape(source) if source else ''}; written {when}"
        f"{'; Arena ' + html.escape(', '.join(versions[:3])) if versions else ''}.</p>",
        "<p>An <b>entry</b> is one agent with one set of settings on one env; its runs (one per training seed) "
        "are evaluated on fixed seeds that no run trained on. <b>score</b>: normalised (exact for grids: 0 = a "
        "random policy, 1 = optimal; accuracy for sequence tasks; FID-based for images), aggregated over runs "
        "as the interquartile mean (IQM) with a 95% stratified bootstrap interval. An entry's <b>rank</b> is 1 + "
        "the entries whose interval lies entirely above its own, so entries that cannot be told apart share a "
        "rank (=). <b>success</b>: evaluation episodes that reached the goal or answered fully right; a policy "
        "that never succeeds is flagged in red, whatever its score.</p>",
    ]
    if not entries:
        parts.append("<p><b>The leaderboard is empty.</b> Add results with <code>arena run</code> or "
                     "<code>arena tournament default</code>.</p>")
    parts.append("<ul>" + "".join(f"<li><a href='#{_anchor(e)}'>{html.escape(e)}</a></li>" for e in envs) + "</ul>")
    for env in envs:
        if on_env:
            on_env(env)
        parts.append(_env_section(env, [st for st in entries if st.env == env], runs_dir, summary))
    parts.append("</body></html>\n")
    return "".join(parts), summary


def _anchor(env: str) -> str:
    return "env-" + "".join(c if c.isalnum() else "-" for c in env)


def _env_section(env: str, entries: list[Any], runs_dir: Path, summary: "ReportSummary") -> str:
    out = [f"<section><h2 id='{_anchor(env)}'>{html.escape(env)}</h2>", _standings_html(entries)]
    scored = [st for st in entries if st.evaluation.score is not None]
    if scored:
        out.append(_figure(_intervals_and_profile(scored),
                           "Left: each entry's IQM score (dot) with its 95% interval (bar) and its runs (small marks), "
                           "best first. Right: performance profile, the share of the entry's runs scoring above "
                           "&tau;: a curve further right and higher is better everywhere.", summary))
    curves = {st.agent: (i, _curves(st, runs_dir, summary)) for i, st in enumerate(entries[:MAX_CURVES])}
    curves = {name: c for name, c in curves.items() if c[1]}  # (colour index as in the profile, runs)
    if curves:
        out.append(_figure(_curves_png(curves),
                           "Learning curves: the return of each training episode (or batch) while exploring, "
                           "smoothed, the mean over the entry's runs (band: lowest to highest run), against the "
                           "share of its training budget done.", summary))
    else:
        out.append("<p class='muted'>No learning curves: the runs' folders are not under the runs folder given, "
                   "or these agents do not learn episode by episode (dynamic programming).</p>")
    top = [st for st in entries if st.rank == 1][:TOP_REPLAYS]
    gifs = [g for g in (_replay_gif(st, summary) for st in top) if g]
    out.extend(gifs)
    out.append("</section>")
    return "".join(out)


def _standings_html(entries: list[Any]) -> str:
    from arena.evaluate import STANDINGS_COLUMNS, standing_cells

    cols = [c for c in STANDINGS_COLUMNS if c != "env"]
    left = ("agent", "notes")
    head = "".join(f"<th class='{'left' if c in left else ''}'>{html.escape(c)}</th>" for c in cols)
    rows = []
    for st in entries:
        cells = dict(zip(STANDINGS_COLUMNS, standing_cells(st)))
        tds = []
        for c in cols:
            cls = "rank" if c == "rank" else "flag" if c == "notes" and cells[c] else "left" if c in left else ""
            tds.append(f"<td class='{cls}'>{html.escape(cells[c])}</td>")
        rows.append(f"<tr class='{'tied' if st.tied else ''}'>{''.join(tds)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _figure(png: bytes, caption: str, summary: ReportSummary, kind: str = "png", alt: str = "chart") -> str:
    summary.images += 1
    data = base64.b64encode(png).decode()
    return (f"<figure><img alt='{html.escape(alt)}' src='data:image/{kind};base64,{data}'>"
            f"<figcaption>{caption}</figcaption></figure>")


# --------------------------------------------------------------------------- charts


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def _intervals_and_profile(entries: list[Any]) -> bytes:
    """Error bars of IQM and interval per entry, and each entry's performance profile."""
    import numpy as np

    plt = _pyplot()
    with plt.rc_context({"text.parse_math": False}):  # agent names are text, never LaTeX
        fig, (bars, profile) = plt.subplots(1, 2, figsize=(12, 1.2 + 0.42 * len(entries)), squeeze=True)
        y = np.arange(len(entries))[::-1]
        for yi, st in zip(y, entries):
            s = st.evaluation.score
            lo, hi = s.ci if math.isfinite(s.ci[0]) else (s.iqm, s.iqm)
            colour = "C3" if st.evaluation.flags else "C0"
            bars.plot([lo, hi], [yi, yi], color=colour, lw=3, alpha=0.5, solid_capstyle="butt")
            bars.plot(s.values, [yi] * len(s.values), "|", color="0.35", ms=9)
            bars.plot(s.iqm, yi, "o", color=colour, ms=7)
        bars.set_yticks(y, [f"{st.rank}{'=' if st.tied else ''}  {_short(st.agent)}" for st in entries])
        bars.set_xlabel("normalised score (IQM, 95% interval)")
        bars.grid(axis="x", alpha=0.3)
        scores = np.concatenate([st.evaluation.score.values for st in entries])
        taus = np.linspace(min(0.0, float(scores.min())), max(1.0, float(scores.max())), 201)
        for i, st in enumerate(entries[:10]):  # more lines than ten cannot be told apart
            v = np.asarray(st.evaluation.score.values)
            profile.plot(taus, [(v > t).mean() for t in taus], color=f"C{i}", label=_short(st.agent),
                         ls="-" if i < 5 else "--")
        profile.set_xlabel("score threshold τ")
        profile.set_ylabel("share of runs with score > τ")
        profile.set_ylim(-0.03, 1.03)
        profile.grid(alpha=0.3)
        profile.legend(fontsize=8, loc="best")
        return _png(fig)


def _short(name: str, width: int = 34) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _curves(st: Any, runs_dir: Path, summary: ReportSummary) -> list[np.ndarray]:
    """Each run's per-unit training returns, from its checkpoint's log (empty when none is here)."""
    import numpy as np

    from arena.errors import FileFormatError
    from agents.checkpoint import CHECKPOINT_KIND, CHECKPOINT_VERSION, read_arrays

    out = []
    for r in st.evaluation.runs:
        path = runs_dir / r.run_key / "checkpoint.npz"
        if not path.is_file():
            summary.missing.append(str(path))
            continue
        try:
            arrays, _ = read_arrays(path, CHECKPOINT_KIND, (CHECKPOINT_VERSION,))
        except FileFormatError as exc:
            summary.missing.append(f"{path} ({exc})")
            continue
        G = np.asarray(arrays.get("log_return", np.zeros(0)), dtype=float)
        if G.ndim == 1 and G.size >= 2 and np.isfinite(G).all():
            out.append(G)
    return out


def _curves_png(curves: dict[str, tuple[int, list[np.ndarray]]]) -> bytes:
    """Smoothed training returns against the share of the budget done, mean over runs; each
    entry in its colour of the performance profile."""
    import numpy as np

    plt = _pyplot()
    x = np.linspace(0, 1, 101)
    with plt.rc_context({"text.parse_math": False}):
        fig, ax = plt.subplots(figsize=(12, 4))
        for name, (i, runs) in curves.items():
            resampled = []
            for G in runs:
                w = max(1, len(G) // 25)
                smooth = np.convolve(G, np.ones(w) / w, mode="valid")
                resampled.append(np.interp(x, np.linspace(0, 1, len(smooth)), smooth))
            R = np.array(resampled)
            ax.plot(x * 100, R.mean(axis=0), color=f"C{i}", label=f"{_short(name)} ({len(runs)} runs)",
                    ls="-" if i < 5 else "--")
            if len(runs) > 1:
                ax.fill_between(x * 100, R.min(axis=0), R.max(axis=0), color=f"C{i}", alpha=0.12)
        ax.set_xlabel("% of the training budget done")
        ax.set_ylabel("return while training (smoothed)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        return _png(fig)


# --------------------------------------------------------------------------- replays


def _replay_gif(st: Any, summary: ReportSummary) -> str:
    """A GIF of the entry's newest run's first evaluation episode, as the viewer draws it."""
    from arena.errors import ArenaError
    from arena.replay import load_replay
    from arena.viewer import render_frames

    run = max(st.evaluation.runs, key=lambda r: (r.created, r.id or 0))
    if not run.replay_paths:
        return ""
    path = Path(run.replay_paths[0])
    try:
        replay = load_replay(path)
        frames = render_frames(replay)[:GIF_STEPS + 1]
    except (ArenaError, OSError) as exc:
        summary.missing.append(f"{path} ({exc})")
        return f"<p class='muted'>{html.escape(st.agent)}: its replay {html.escape(str(path))} cannot be shown here.</p>"
    from PIL import Image

    h, w = frames[0].shape[:2]
    size = (GIF_WIDTH, max(1, round(h * GIF_WIDTH / w)))
    images = [Image.fromarray(f).resize(size, Image.Resampling.LANCZOS) for f in frames]
    images += [images[-1]] * GIF_FPS  # hold the end a second
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / GIF_FPS), loop=0)
    cut = f", its first {GIF_STEPS} of {replay.steps} steps" if replay.steps > GIF_STEPS else ""
    caption = (f"{html.escape(st.agent)} (rank {st.rank}{'=' if st.tied else ''}), training seed {run.train_seed}, "
               f"evaluation seed {replay.seed}: return {replay.episode_return:.2f}{cut}")
    return _figure(buf.getvalue(), caption, summary, kind="gif", alt=f"replay of {st.agent}")
