"""The HTML report: what it holds, what it says when files are gone, and how a real browser shows it."""

import base64
import io
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import arena
from arena.cli import app
from arena.leaderboard import Leaderboard
from arena.leaderboard.report import write_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """A small tournament's worth of rows: two envs, learners with curves, replays on disk."""
    root = tmp_path_factory.mktemp("report")
    db, replays, runs = root / "board.sqlite", root / "replays", root / "runs"
    common = dict(train_seeds=2, eval_episodes=3, record=True, db=db, replays=replays, runs=runs)
    arena.evaluate("q-learning", "grid:cliff", budget=300, **common)
    arena.evaluate("random", "grid:cliff", **common)
    arena.evaluate("value-iteration", "grid:cliff", **common)
    arena.evaluate("random", "seq:copy length=3", **common)
    return root


class Page(HTMLParser):
    """The page's tables (as rows of cell text), headings and embedded images."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.h2, self.images, self._cell, self._where = [], [], [], None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th", "h2"):
            self._cell, self._where = "", tag
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == self._where:
            (self.h2 if tag == "h2" else self.tables[-1][-1]).append(self._cell)
            self._cell = self._where = None


def decode(src):
    kind, data = re.fullmatch(r"data:image/(png|gif);base64,([A-Za-z0-9+/=]+)", src).groups()
    return kind, Image.open(io.BytesIO(base64.b64decode(data)))


def test_the_report_has_rankings_intervals_curves_and_replays_per_env(board, tmp_path):
    result = CliRunner().invoke(app, ["leaderboard", "--db", str(board / "board.sqlite"), "--html",
                                      str(tmp_path / "report.html"), "--runs-dir", str(board / "runs")])
    assert result.exit_code == 0, result.output
    assert "4 entries on 2 envs" in result.output and "not shown" not in result.output
    page = Page((tmp_path / "report.html").read_text())
    assert page.h2 == ["grid:cliff", "seq:copy length=3"]
    cliff, copy = page.tables
    assert cliff[0][:3] == ["rank", "agent", "runs"]
    ranks = {row[1]: row[0] for row in cliff[1:]}
    assert set(ranks) == {"value-iteration", "q-learning", "random"} and ranks["value-iteration"].startswith("1")
    assert cliff[-1][1] == "random" and ranks["random"] == "3"
    rows = cliff[1:] + copy[1:]
    assert all((row[5] == "0%") == ("never succeeds" in row[-1]) for row in rows)  # flagged, whatever the score
    assert any(row[5] == "0%" for row in rows)
    images = [decode(src) for src in page.images]
    kinds = [kind for kind, _ in images]
    # per env: intervals + profile, learning curves where something learned, a GIF of each entry ranked first
    assert kinds.count("png") == 3 and kinds.count("gif") >= 2
    for kind, image in images:
        image.load()
        assert image.size[0] >= 200 and len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 8
        if kind == "gif":
            assert image.n_frames > 2  # the episode moves


def test_what_is_not_here_any_more_or_is_damaged_is_said_on_the_page(board, tmp_path):
    results = Leaderboard(board / "board.sqlite").results(env_id="arena/GridWorld-v0")
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04 not a replay")
    for r in results:
        if r.agent == "value-iteration":
            r.replay_paths = [str(damaged)]
    summary = write_report(results, tmp_path / "r.html", runs_dir=tmp_path / "no-runs")
    text = (tmp_path / "r.html").read_text()
    assert "No learning curves" in text and "cannot be shown here" in text
    assert any(str(damaged) in m for m in summary.missing) and any("no-runs" in m for m in summary.missing)
    # a damaged checkpoint costs its run's curve, not the page
    runs = tmp_path / "runs"
    shutil.copytree(board / "runs", runs)
    q_runs = [r for r in results if r.agent == "q-learning"]
    (runs / q_runs[0].run_key / "checkpoint.npz").write_bytes(b"\x00" * 64)
    summary = write_report(results, tmp_path / "r2.html", runs_dir=runs)
    assert any(q_runs[0].run_key in m and "corrupt" in m for m in summary.missing)
    assert "Learning curves:" in (tmp_path / "r2.html").read_text()  # from q-learning's other run
    empty = write_report([], tmp_path / "empty.html")
    assert empty.entries == 0 and "The leaderboard is empty" in (tmp_path / "empty.html").read_text()


def chromium():
    """Debian's chromium, or a skip saying so (in CI, where .ci/run installs it, a failure)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("ARENA_CI") or os.environ.get("CI"):
        pytest.fail("no Chromium in CI: .ci/run installs Debian's chromium (apt-get install chromium)")
    pytest.skip("no Chromium on this machine: install Debian's chromium (apt-get install chromium) to run this test")


def test_a_real_headless_chromium_renders_the_tables_and_every_image(board, tmp_path):
    browser = chromium()
    summary = write_report(Leaderboard(board / "board.sqlite").results(), tmp_path / "report.html",
                           runs_dir=board / "runs")
    # a copy that reports, once loaded, how many images the browser decoded (the report itself has no script)
    probe = tmp_path / "probe.html"
    probe.write_text((tmp_path / "report.html").read_text().replace(
        "</body>", "<script>addEventListener('load', () => document.body.setAttribute('data-decoded', "
                   "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length))</script></body>"))
    run = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*run, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert f'data-decoded="{summary.images}"' in dom, dom[:400]
    assert dom.count("<table>") == 2 and "never succeeds" in dom and "q-learning" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*run, "--window-size=1200,2400", f"--screenshot={shot}", (tmp_path / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2400, 1200)
    blue = (np.abs(pixels.astype(int) - (31, 119, 180)).sum(axis=2) < 40).sum()  # matplotlib's first colour
    assert blue > 500 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
