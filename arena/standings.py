"""Standings, the leaderboard's view: rows grouped into entries (env, agent, settings and
training budget), each evaluated over its runs and ranked with ties where intervals overlap."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from arena.evaluation import Evaluation
from arena.leaderboard import Result

@dataclass
class Standing:
    """One (env, agent, settings, budget) entry of the leaderboard: its runs, evaluated together.
    `rank` is 1 + the entries clearly ahead of it; `tied` when another entry has its rank."""

    env: str
    agent: str  # the agent's name, plus the settings that tell it from others of that name on this env
    rank: int
    tied: bool
    evaluation: Evaluation


def standings(results: list[Result]) -> list[Standing]:
    """Leaderboard rows grouped into entries: same env, agent, settings and trained budget
    (runs trained longer are another entry); one run per training seed (the newest row of a seed counts). Listed within each
    env by IQM score (then mean return); an entry's rank is 1 + the number of entries
    clearly ahead of it (their 95% interval entirely above its own), so entries whose
    intervals overlap share a rank (`tied`)."""
    import json

    from arena.leaderboard import env_label

    groups: dict[tuple[str, str, str], dict[int, Result]] = {}
    for r in sorted(results, key=lambda r: (r.created, r.id or 0)):
        identity = {**r.agent_config, **({"budget": r.budget_text} if r.budget_text else {})}
        config = json.dumps(identity, sort_keys=True, default=str)
        groups.setdefault((env_label(r), r.agent, config), {})[r.train_seed] = r
    names = _agent_labels([key for key in groups])
    by_env: dict[str, list[Standing]] = {}
    for key, runs in groups.items():
        evaluation = Evaluation.of(key[1], key[0], [runs[s] for s in sorted(runs)])
        by_env.setdefault(key[0], []).append(Standing(key[0], names[key], 0, False, evaluation))

    def order(st: Standing) -> tuple[float, float]:
        e = st.evaluation
        return (-(e.score.iqm if e.score else -math.inf), -(e.mean_return.iqm if e.mean_return else -math.inf))

    def better(x: Standing, y: Standing) -> bool:
        """x is clearly ahead of y: its interval lies above y's (without intervals: a higher score)."""
        a, b = x.evaluation.score, y.evaluation.score
        if a is None or b is None:
            return order(x) < order(y)
        return a.clearly_above(b)

    out = []
    for env in sorted(by_env):
        entries = sorted(by_env[env], key=order)
        for st in entries:  # rank: 1 + the entries clearly ahead of it, so entries that cannot be told apart tie
            st.rank = 1 + sum(better(other, st) for other in entries if other is not st)
        for st in entries:
            st.tied = sum(other.rank == st.rank for other in entries) > 1
        out.extend(entries)
    return out


STANDINGS_COLUMNS = ("rank", "env", "agent", "runs", "score IQM", "95% CI", "success", "mean return", "notes")


def standing_cells(st: Standing) -> tuple[str, ...]:
    """One entry as the plain strings every format shows (rank 'n=' when tied)."""
    e = st.evaluation
    ci = (f"[{e.score.ci[0]:.3f}, {e.score.ci[1]:.3f}]" if e.score and math.isfinite(e.score.ci[0])
          else "1 run" if len(e.runs) == 1 else "n/a")
    success = "n/a" if e.success_rate is None else f"{e.success_rate:.0%}"
    score = f"{e.score.iqm:.3f}" if e.score else "n/a"
    mean = f"{e.mean_return.iqm:.2f}" if e.mean_return else "n/a"
    return (f"{st.rank}{'=' if st.tied else ''}", st.env, st.agent, str(len(e.runs)), score, ci, success, mean,
            "; ".join([*filter(None, [e.image_figures, e.text_figures]), *e.flags]))


def standing_dict(st: Standing) -> dict[str, Any]:
    """One entry for JSON: rank, tie, env, agent, and the evaluation's figures (runs as run keys)."""
    figures = st.evaluation.as_dict()
    figures["runs"] = [r.run_key for r in st.evaluation.runs]
    return {"rank": st.rank, "tied": st.tied, "env": st.env, "agent": st.agent, **figures}


def _agent_labels(keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """Name entries by agent, adding the settings in which entries of one agent on one env differ."""
    import json

    out = {}
    for key in keys:
        peers = [json.loads(k[2]) for k in keys if k[:2] == key[:2]]
        mine = json.loads(key[2])
        differ = sorted({k for p in peers for k in set(p) | set(mine) if p.get(k) != mine.get(k)})
        out[key] = " ".join([key[1], *(f"{k}={mine.get(k)}" for k in differ)])
    return out


__all__ = ["STANDINGS_COLUMNS", "Standing", "standing_cells", "standing_dict", "standings"]
