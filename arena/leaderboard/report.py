"""The leaderboard as one static HTML page: what a person reads after a tournament.

`arena leaderboard --html report.html` writes a single self-contained file (every image
is embedded, nothing is fetched): per env, the standings table (IQM score, 95% interval,
success, ties and flags as in the terminal), the intervals drawn as error bars beside a
performance profile, the learning curves of the entries' training runs, and a GIF of the
top entries' first evaluation episode. Learning curves come from each run's checkpoint
(runs/<run key>/checkpoint.npz carries its training log); replays from the paths on the
row. What is not on this machine any more is said on the page, never silently left out.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agents.training import plural_count

import numpy as np

from arena.standings import STANDINGS_COLUMNS, Standing, standing_cells, standings
from arena.leaderboard import Result

TOP_REPLAYS = 3  # GIF thumbnails per env: the entries ranked first (at most this many)
MAX_CURVES = 8  # learning curves per env: the best entries
GIF_WIDTH = 260  # pixels, for frames whose text stays legible at this width
GIF_MIN_SCALE = 0.7  # wider frames are shrunk at most this much, so their text stays at least ~10 px tall
GIF_STEPS = 64  # an episode longer than this is shown up to here (and says so); an image episode is 64
GIF_FPS = 6
IMAGE_GIF_STRIDE = 4  # an image episode's GIF shows every 4th step: each adds one image, 64 frames would be ~5 MB

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#222}
h1{margin-bottom:4px} h2{margin-top:40px;border-bottom:2px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:12px 0;font-size:14px}
td,th{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:right}
td.left,th.left{text-align:left} th{background:#f4f4f6}
tr.tied td.rank{color:#555} td.flag{color:#b00020;font-weight:600;text-align:left}
.muted{color:#666;font-size:13px} figure{display:inline-block;margin:8px 16px 8px 0;vertical-align:top}
figcaption{font-size:13px;color:#444;max-width:520px} img{border:1px solid #eee;max-width:100%;height:auto}
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
                 on_env: Callable[[str], None] | None = None, overwrite: bool = False) -> ReportSummary:
    """Write the report page of leaderboard rows `results` to `path` (atomically; an existing
    file only with `overwrite`)."""
    from agents.checkpoint import new_file, write_atomically

    path = new_file(path, "the report page", (".html", ".htm"), overwrite)
    page, summary = report_page(results, Path(runs_dir), source, on_env)
    write_atomically(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    summary.path = path
    return summary


def report_page(results: list[Result], runs_dir: Path, source: str = "",
                on_env: Callable[[str], None] | None = None) -> tuple[str, ReportSummary]:
    """The page's HTML and what it holds."""
    entries = standings(results)
    envs = sorted({st.env for st in entries})
    summary = ReportSummary(Path(), len(envs), len(entries), 0, [])
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = sorted({r.code_version for r in results if r.code_version})
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>Arena leaderboard</title>",
        f"<style>{STYLE}</style><body><h1>Arena leaderboard</h1>",
        f"<p class='muted'>{plural_count(len(results), 'run')}, {plural_count(len(entries), 'entry')} on "
        f"{plural_count(len(envs), 'env')}"
        f"{', from ' + html.escape(source) if source else ''}; written {when}"
        f"{'; Arena ' + html.escape(', '.join(versions[:3])) if versions else ''}.</p>",
        "<p>An <b>entry</b> is one agent with one set of settings on one env; its runs (one per training seed) "
        "are evaluated on fixed seeds that no run trained on. <b>score</b>: normalised (exact for grids: 0 = a "
        "random policy, 1 = optimal; accuracy for sequence tasks; FID-based for images; gold for text: 0 = the "
        "supervised stage-1 model, 1 = gold-best), aggregated over runs "
        "as the interquartile mean (IQM) with a 95% stratified bootstrap interval. An entry's <b>rank</b> is 1 + "
        "the entries whose interval lies entirely above its own, so entries that cannot be told apart share a "
        "rank (=). <b>success</b>: evaluation episodes that reached the goal or answered fully right; a policy "
        "that never succeeds is flagged in red, whatever its score.</p>",
    ]
    if not entries:
        parts.append("<p><b>The leaderboard is empty.</b> Add results with <code>arena run</code> or "
                     "<code>arena tournament default</code>.</p>")
    from arena.card import marks_from_results

    marks = marks_from_results(results)
    links = [f"<li><a href='#{_anchor(e)}'>{html.escape(e)}</a></li>" for e in envs]
    if marks:
        links.insert(0, "<li><a href='#memory-card'>Memory card</a></li>")
    parts.append("<ul>" + "".join(links) + "</ul>")
    if marks:
        parts.append(_card_section(marks, summary))
    for env in envs:
        if on_env:
            on_env(env)
        parts.append(_env_section(env, [st for st in entries if st.env == env], runs_dir, summary))
    parts.append("</body></html>\n")
    return "".join(parts), summary


def _card_section(marks: list[Any], summary: ReportSummary) -> str:
    """The memory card (arena/card.py) of the runs on memory tasks at several lengths."""
    from arena.card import PASS, TASKS, card_png

    tasks = sorted({m.task for m in marks}, key=TASKS.index)
    agents = list(dict.fromkeys(m.agent for m in marks))
    head = "".join(f"<th>{html.escape(t)}</th>" for t in tasks)
    rows = []
    for agent in agents:
        cells = []
        for task in tasks:
            m = next((m for m in marks if m.agent == agent and m.task == task), None)
            if m is None:
                cells.append("<td></td>")
                continue
            iqm, (low, high) = m.summary()
            cells.append(f"<td>{iqm:g} [{low:g}, {high:g}]</td>")
        rows.append(f"<tr><td class='left'>{html.escape(agent)}</td>{''.join(cells)}</tr>")
    return (f"<section><h2 id='memory-card'>Memory card</h2><p>The longest sequence each agent learned to at least "
            f"{PASS:g} accuracy, on copy, reverse and parity at growing lengths (<code>arena card</code>): IQM over "
            f"training seeds [95% interval]; 0: not even length 1.</p><table><tr><th class='left'>agent</th>{head}</tr>"
            f"{''.join(rows)}</table>"
            + _figure(card_png(marks), "Accuracy against length, mean over training seeds (band: lowest to highest "
                      "seed); dashed: the 0.9 bar.", summary, alt="memory card") + "</section>")


def _anchor(env: str) -> str:
    return "env-" + "".join(c if c.isalnum() else "-" for c in env)


def _env_section(env: str, entries: list[Standing], runs_dir: Path, summary: ReportSummary) -> str:
    out = [f"<section><h2 id='{_anchor(env)}'>{html.escape(env)}</h2>", _standings_html(entries)]
    scored = [st for st in entries if st.evaluation.score is not None]
    if scored:
        out.append(_figure(_intervals_and_profile(scored),
                           "Left: each entry's IQM score (dot) with its 95% interval (bar) and its runs (small marks), "
                           "best first. Right: performance profile, the share of the entry's runs scoring above "
                           "&tau;: a curve further right and higher is better everywhere.", summary))
    if any(st.evaluation.gold is not None for st in entries):
        out.append(_figure(_frontier(entries),
                           "Gold against KL: each writer's gold score (the hidden rule) against how far it moved from "
                           "the stage-1 model (KL in nats per response). RLHF at its measured KL; best-of-n (open marks) "
                           "at its bound log n - (n-1)/n (Beirami et al. 2024: the true KL is below it); writers "
                           "without a reference (stage 1, gold-best) as horizontal lines.", summary,
                           alt="gold against KL"))
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


def _standings_html(entries: list[Standing]) -> str:
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


def _frontier(entries: list[Standing]) -> bytes:
    """Gold score against KL from the stage-1 reference, one mark per text entry."""
    plt = _pyplot()
    with plt.rc_context({"text.parse_math": False}):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for i, st in enumerate(e for e in entries if e.evaluation.gold is not None):
            e = st.evaluation
            gold = e.gold
            assert gold is not None
            if e.kl is not None:
                ax.plot(e.kl, gold, "o", color=f"C{i % 10}", ms=8, label=_short(st.agent))
            elif e.kl_bound is not None:
                ax.plot(e.kl_bound, gold, "o", mfc="none", color=f"C{i % 10}", ms=8, label=f"{_short(st.agent)} (KL bound)")
            else:
                ax.axhline(gold, color=f"C{i % 10}", ls="--", lw=1.2, label=_short(st.agent))
        ax.set_xlabel("KL(pi || pi_stage1)  (nats per response)")
        ax.set_ylabel("gold score")
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        return _png(fig)


def _intervals_and_profile(entries: list[Standing]) -> bytes:
    """Error bars of IQM and interval per entry, and each entry's performance profile
    (entries with a score: the caller leaves the others out)."""
    scores_of = [st.evaluation.score for st in entries]
    if any(s is None for s in scores_of):
        raise ValueError("every entry needs a score")

    plt = _pyplot()
    with plt.rc_context({"text.parse_math": False}):  # agent names are text, never LaTeX
        fig, (bars, profile) = plt.subplots(1, 2, figsize=(12, 1.2 + 0.42 * len(entries)), squeeze=True)
        y = np.arange(len(entries))[::-1]
        for yi, st in zip(y, entries):
            s = st.evaluation.score
            assert s is not None
            lo, hi = s.ci if math.isfinite(s.ci[0]) else (s.iqm, s.iqm)
            colour = "C3" if st.evaluation.flags else "C0"
            bars.plot([lo, hi], [yi, yi], color=colour, lw=3, alpha=0.5, solid_capstyle="butt")
            bars.plot(s.values, [yi] * len(s.values), "|", color="0.35", ms=9)
            bars.plot(s.iqm, yi, "o", color=colour, ms=7)
        bars.set_yticks(y, [f"{st.rank}{'=' if st.tied else ''}  {_short(st.agent)}" for st in entries])
        bars.set_xlabel("normalised score (IQM, 95% interval)")
        bars.grid(axis="x", alpha=0.3)
        scores = np.concatenate([s.values for s in scores_of if s is not None])
        taus = np.linspace(min(0.0, float(scores.min())), max(1.0, float(scores.max())), 201)
        drawn: dict[bytes, tuple[str, int]] = {}  # a curve already drawn: by whom, and how often
        for i, st in enumerate(entries[:10]):  # more lines than ten cannot be told apart
            v = np.asarray(scores_of[i].values)  # type: ignore[union-attr]
            curve = np.array([(v > t).mean() for t in taus])
            first, copies = drawn.get(curve.tobytes(), (_short(st.agent), 0))
            drawn[curve.tobytes()] = (first, copies + 1)
            label = _short(st.agent) if not copies else f"{_short(st.agent)} (same curve as {first})"
            # equal curves (tied entries) are nudged apart a little, so each stays visible
            profile.plot(taus, curve + 0.012 * copies, color=f"C{i}", label=label, ls="-" if i < 5 else "--")
        profile.set_xlabel("score threshold τ")
        profile.set_ylabel("share of runs with score > τ")
        profile.set_ylim(-0.03, 1.03)
        profile.grid(alpha=0.3)
        profile.legend(fontsize=8, loc="best")
        return _png(fig)


def _short(name: str, width: int = 34) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _curves(st: Standing, runs_dir: Path, summary: ReportSummary) -> list[np.ndarray]:
    """Each run's per-unit training returns, from its checkpoint's log (empty when none is here)."""

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
            ax.plot(x * 100, R.mean(axis=0), color=f"C{i}", label=f"{_short(name)} ({plural_count(len(runs), 'run')})",
                    ls="-" if i < 5 else "--")
            if len(runs) > 1:
                ax.fill_between(x * 100, R.min(axis=0), R.max(axis=0), color=f"C{i}", alpha=0.12)
        ax.set_xlabel("% of the training budget done")
        ax.set_ylabel("return while training (smoothed)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        return _png(fig)


# --------------------------------------------------------------------------- replays


def frames_gif(frames: list[np.ndarray], width: int = GIF_WIDTH) -> bytes:
    """RGB frames as an animated GIF about `width` pixels wide (text kept legible: shrunk at
    most to GIF_MIN_SCALE), the last frame held a second."""
    from PIL import Image

    h, w = frames[0].shape[:2]
    scale = min(1.0, max(width / w, GIF_MIN_SCALE))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    images = [Image.fromarray(f).resize(size, Image.Resampling.LANCZOS) for f in frames]
    images += [images[-1]] * GIF_FPS  # hold the end a second
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / GIF_FPS), loop=0)
    return buf.getvalue()


def _replay_gif(st: Standing, summary: ReportSummary) -> str:
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
        frames = render_frames(replay, steps=GIF_STEPS)  # only what is shown is re-simulated and drawn
        if replay.actions.ndim > 1:  # images: every IMAGE_GIF_STRIDE-th step and the last (the page stays small)
            frames = frames[::IMAGE_GIF_STRIDE] + ([frames[-1]] if (len(frames) - 1) % IMAGE_GIF_STRIDE else [])
    except (ArenaError, OSError) as exc:
        summary.missing.append(f"{path} ({exc})")
        return f"<p class='muted'>{html.escape(st.agent)}: its replay {html.escape(str(path))} cannot be shown here.</p>"
    gif = frames_gif(frames)
    cut = f", its first {GIF_STEPS} of {replay.steps} steps" if replay.steps > GIF_STEPS else ""
    cut += f", every {IMAGE_GIF_STRIDE}th step shown" if replay.actions.ndim > 1 else ""
    caption = (f"{html.escape(st.agent)} (rank {st.rank}{'=' if st.tied else ''}), training seed {run.train_seed}, "
               f"evaluation seed {replay.seed}: return {replay.episode_return:.2f}{cut}")
    return _figure(gif, caption, summary, kind="gif", alt=f"replay of {st.agent}")
