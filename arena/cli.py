"""The `arena` command: parse, call, print. Errors a user can cause become one line and exit 2.

Why one long file: it holds only the commands (parse, call, print) and their help texts, one
function each; the work is in the modules they call.
"""

from __future__ import annotations

import functools
import math
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from agents.training import TrainingInterrupted, plural, progress_display
from arena import registry
from arena.errors import ArenaError, LeaderboardError, RegistryError, ViewerError, one_line
from arena.leaderboard import Leaderboard, Result, env_label, fmt, json_ready, short_date
from arena.replay import load_replay, verify
from envs.grid import LAYOUTS, layout_names

if TYPE_CHECKING:  # arena.jobs imports the learners (Numba): commands import it when they run a job
    from arena.jobs import Job

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

class _OneLineErrors(TyperGroup):
    """Arena's command group: a usage error (an unknown option, `--episodes abc`) is one
    `error:` line naming the fix and exit code 2, as every other user error is."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        from typer._click import exceptions as click  # (Typer's own copy of Click raises these)

        try:
            code = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        except click.NoArgsIsHelpError as exc:
            exc.show()  # `arena` alone: the help
            code = exc.exit_code
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "arena"
            err.print(f"[bold red]error:[/] {escape(one_line(exc.format_message()))} (see {escape(where)} --help)",
                      highlight=False, soft_wrap=True)
            code = 2
        except click.ClickException as exc:
            err.print(f"[bold red]error:[/] {escape(one_line(exc.format_message()))}", highlight=False, soft_wrap=True)
            code = exc.exit_code
        except typer.Abort:
            err.print("aborted")
            code = 1
        if standalone_mode:
            sys.exit(code if isinstance(code, int) else 0)
        return code


app = typer.Typer(
    cls=_OneLineErrors,
    help="Arena: where learning agents meet tasks. Train, evaluate, record, replay, rank.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # docstrings are plain text: paragraphs rewrapped to the terminal, no markup read
)
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

DB_HELP = "leaderboard database (default: $ARENA_DB or replays/leaderboard.sqlite)"


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can cause into `error: ...` and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ArenaError as exc:
            err.print(f"[bold red]error:[/] {escape(one_line(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted; everything already written is kept")
            raise typer.Exit(130) from None

    return wrapper


def _progress() -> Progress:
    """The command's progress display; a job's training bar joins it as a row (one live display)."""
    return progress_display(  # type: ignore[no-any-return]
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        disable=not err.is_terminal)


# --------------------------------------------------------------------------- listing


@app.command()
@user_errors
def envs(name: Optional[str] = typer.Argument(None, help="an env family (grid, seq, img, bias) or id: show its settings")) -> None:
    """List environments, their aliases and named layouts; with NAME, that env's settings."""
    from arena import settings as typed

    if name is not None:
        family = registry.FAMILIES.get(name.partition(":")[0]) or registry.FAMILY_OF_ID.get(name)
        if family is None:
            known = ", ".join([*registry.FAMILIES, *registry.FAMILY_OF_ID])
            raise RegistryError(f"unknown env {name!r}; name one of {known}")
        table = Table(title=f"{family.env_id} ({family.name}:<{family.default_kwarg}>): {family.summary}")
        for col in ("kwarg", "type", "default", "allowed", "help"):
            table.add_column(col, overflow="fold")
        for row in typed.describe(family.settings):
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
        console.print(f"set one with [bold]arena run AGENT {escape(family.examples[0])} key=value[/] "
                      "(or under \\[env] in a --config file)", soft_wrap=True)
        return
    table = Table(title="Environments")
    for col in ("id", "alias", "what", "kwargs", "examples"):
        table.add_column(col)
    for fam in registry.FAMILIES.values():
        table.add_row(fam.env_id, f"{fam.name}:<{fam.default_kwarg}>", fam.summary,
                      " ".join(f.name for f in typed.fields(fam.settings)), "\n".join(fam.examples))
    console.print(table)
    layouts = Table(title="GridWorld layouts (grid:<layout>)")
    layouts.add_column("layout")
    layouts.add_column("about")
    for layout in layout_names():
        about = LAYOUTS[layout].about if layout in LAYOUTS else "a perfect maze generated from maze_seed (default 0)"
        layouts.add_row(layout, about)
    console.print(layouts)
    console.print("an env's settings (type, default, range, help): [bold]arena envs grid[/]; e.g. "
                  "[bold]arena run value-iteration grid:cliff slip=0.1[/]")


@app.command()
@user_errors
def agents(name: Optional[str] = typer.Argument(None, help="an agent: show its settings")) -> None:
    """List agents and the env families each can play; with NAME, that agent's settings."""
    if name is not None:
        if name not in registry.AGENTS:
            registry.make_agent(name)  # the one 'unknown agent' message
        from arena import settings as typed

        spec = registry.AGENTS[name]
        table = Table(title=f"{name}: {spec.summary}")
        for col in ("setting", "type", "default", "allowed", "help"):
            table.add_column(col, overflow="fold")
        for row in typed.describe(registry.settings_of(name)):
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
        from agents.protocol import Learner

        made = registry.make_agent(name)
        unit = f"; --budget counts {plural(made.budget_unit)}" if isinstance(made, Learner) else ""
        console.print(f"set one with [bold]arena run {name} ENV --set key=value[/]{unit}", soft_wrap=True)
        return
    table = Table(title="Agents", caption="plays: the env families whose spaces the agent reads (agents/spaces.py)")
    for col in ("name", "plays", "what"):
        table.add_column(col)
    for spec in registry.AGENTS.values():
        table.add_row(spec.name, ", ".join(registry.playable_families(spec.name)), spec.summary)
    console.print(table)
    console.print("settings of one agent: [bold]arena agents NAME[/]")


# --------------------------------------------------------------------------- run / eval


def _run_and_record(job: Job, db: Optional[Path], replays: Path, out: Console = console) -> Result:
    from arena.jobs import run_job

    board = Leaderboard(db)  # open first: a bad database fails before any work
    progress = _progress()  # evaluation bar, started once training (with its own bar) is done
    label = job.env_kwargs.get("layout") or job.env_kwargs.get("task") or job.env_id

    def evaluated(episode: Any) -> None:
        if not progress.task_ids:
            progress.start()
            progress.add_task(f"evaluating {job.agent} on {label}", total=job.episodes)
        progress.advance(progress.task_ids[0])

    try:
        result, log = run_job(job, replays, on_episode=evaluated)
    finally:
        progress.stop()
    try:
        board.add(result)
    except LeaderboardError as exc:
        raise LeaderboardError(f"{exc} (the replays are kept in {replays / job.run_key})") from None
    _print_training_log(job.agent, log, out)
    return result


def _print_training_log(agent: str, log: dict[str, Any], out: Console = console) -> None:
    shown = {k: v for k, v in log.items() if k not in ("checkpoint", "curve", "interpolation", "video")}
    if shown:
        out.print(f"[dim]{agent}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()) + "[/]")
    for key in ("checkpoint", "curve", "interpolation", "video"):
        if key in log:
            out.print(f"[dim]{key}: {log[key]}[/]", soft_wrap=True)


def _fill(table: Table, columns: Sequence[str], rows: list[tuple[str, ...]], words: tuple[str, ...]) -> None:
    """Add the columns and rows (escaped: no markup from a database runs). Figures never
    wrap or shrink below their widest cell; the `words` columns (names, labels, notes) give
    way instead, folding a long env label over lines, so a narrow terminal keeps the numbers."""
    for i, col in enumerate(columns):
        if col in words:
            table.add_column(col, justify="left", overflow="fold", ratio=1 if col == "env" else None)
        else:
            widest = max([len(col.split()[0]), *(len(r[i]) for r in rows)])
            table.add_column(col, justify="left" if col == "date" else "right", no_wrap=True, min_width=min(widest, 24))
    for cells in rows:
        table.add_row(*(escape(c) for c in cells))


def _results_table(results: list[Result], title: str, labels: dict[str, str] | None = None) -> Table:
    """Results as a rich table; every string from a database or file is escaped (no markup runs).
    `labels` names agents by run key (a suite's "gan loss=lsgan") where the name alone is ambiguous."""
    table = Table(title=escape(title))
    images = any("fid" in r.metrics for r in results)
    texts = any("gold" in r.metrics for r in results)
    exact = any(r.exact_return is not None for r in results)  # a column of n/a only takes room
    success = any(r.successes for r in results)
    columns = ("id", "date", "env", "agent", "seed", "score") + (("success",) if success else ())
    columns += ("mean return", "std") + (("exact return",) if exact else ())
    columns += ("n",) + (("FID", "IS", "coverage") if images else ()) + (("gold", "proxy", "KL") if texts else ())
    rows: list[tuple[str, ...]] = []
    for r in results:
        agent = (labels or {}).get(r.run_key, r.agent)
        cells: tuple[str, ...] = (str(r.id or ""), short_date(r.created), env_label(r), agent, str(r.train_seed),
                                  fmt(r.score))
        if success:
            rate = r.success_rate
            cells += ("n/a" if rate is None else f"{rate:.0%}" + (" never" if rate == 0 else ""),)
        cells += (fmt(r.mean_return, 2), fmt(r.std_return, 2)) + ((fmt(r.exact_return, 2),) if exact else ()) + (str(r.episodes),)
        if images:
            m = r.metrics
            covered = f"{m.get('classes_covered', '?')}/{m.get('n_classes', '?')}" if "fid" in m else ""
            flag = " collapsed" if m.get("mode_collapse") else ""
            cells += (fmt(m.get("fid"), 1) if "fid" in m else "", fmt(m.get("inception_score"), 2) if "fid" in m else "",
                      covered + flag)
        if texts:
            m = r.metrics
            cells += tuple(fmt(m.get(k), 3 if k == "gold" else 2) if m.get(k) is not None else "" for k in ("gold", "proxy", "kl"))
        rows.append(cells)
    _fill(table, columns, rows, words=("env", "agent"))
    table.caption = ("score: exact normalised score (1 optimal, 0 random); exact return: expected return, computed by DP"
                     if exact else "")
    if success:
        table.caption += ("\n" if table.caption else "") + ("success: share of evaluation episodes that reached the goal "
                                                            "or answered all right; 'never': a policy that never does")
    if images:
        table.caption += ("\n" if table.caption else "") + ("images: score = (FID_noise - FID) / (FID_noise - FID_real), 1 = as real as held-out data, "
                          "0 = noise; FID, IS and coverage in the data set's classifier features")
    if texts:
        table.caption += ("\n" if table.caption else "") + (
            "text: score = (gold - stage 1's gold) / (1 - stage 1's gold), 0 = the supervised model, 1 = gold-best; "
            "gold: the hidden rule's score; proxy: the reward model's; KL: nats per response from the agent's reference")
    return table


def _job(agent: str, env: str, kwargs: list[str] | None, seed: int, episodes: int, config: list[str] | None,
         checkpoint: Optional[Path] = None, device: Optional[str] = None, budget: Optional[int] = None,
         train_episodes: Optional[int] = None, resume: Optional[Path] = None, checkpoint_every: Optional[float] = None,
         record_training: int = 0, video: Optional[Path] = None, config_file: Optional[Path] = None,
         init: Optional[Path] = None) -> Job:
    """The job a command line asks for, every part checked before any work: the RunSpec is made here, once."""
    from agents.protocol import Learner, RunSpec
    from arena.jobs import Job

    env_id, env_kwargs = registry.parse_env(env, kwargs)
    agent_config: dict[str, Any] = {}
    if config_file is not None:
        file_settings, file_env = registry.read_config(config_file)
        agent_config.update(file_settings)
        env_kwargs = {**file_env, **env_kwargs}  # the command line wins over the file
        registry.check_env_kwargs(env_id, env_kwargs)
    agent_config.update(_settings(config))
    if device is not None:
        if agent in registry.AGENTS and not registry.AGENTS[agent].neural:
            raise RegistryError(f"--device applies to neural agents; {agent} is tabular and runs on the CPU")
        agent_config["device"] = device
    made = registry.make_agent(agent, **agent_config)  # fail fast on a bad name or setting (the pairing: in run_job)
    if budget is not None and train_episodes is not None:
        raise RegistryError("--budget and --train-episodes say the same thing; give one")
    if budget is not None or train_episodes is not None:
        if not isinstance(made, Learner):
            raise RegistryError(f"{agent} does not train (it plans or plays in one go); drop --budget")
        if train_episodes is not None and made.budget_unit != "episode":
            raise RegistryError(f"{agent} counts its budget in {plural(made.budget_unit)}, not episodes; use --budget N")
        budget = budget if budget is not None else train_episodes
        if budget is not None and budget < 1:
            raise RegistryError(f"--budget {budget}: train for at least 1 {made.budget_unit}")
    if init is not None and not isinstance(made, Learner):
        raise RegistryError(f"{agent} does not train (it plans or plays in one go); drop --init")
    if init is not None and not init.is_file():
        raise RegistryError(f"--init {init}: no such checkpoint file")
    spec = RunSpec(seed=seed, budget=budget, resume=resume, checkpoint_every=checkpoint_every, init=init)
    return Job(agent, env_id, env_kwargs, agent_config, spec, episodes, str(checkpoint) if checkpoint else None,
               record_training=record_training, video=str(video) if video else None)


def _settings(items: list[str] | None) -> dict[str, Any]:
    """--set key=value options as agent settings (values read as TOML-like literals)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise RegistryError(f"--set {item!r} is not key=value; write e.g. --set gamma=0.9")
        out[key] = registry.parse_value(value)
    return out


def _resume_command(ctx: typer.Context, checkpoint: Path) -> str:
    """The command line of this very `arena run`, every option kept, with --resume CHECKPOINT
    (and without --init: the checkpoint holds where the run began): following it continues
    the same run on the same leaderboard."""
    words = ["arena", ctx.info_name or "run"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in ("resume", "init") or value is None or value == param.default or value in ((), []):
            continue
        if param.param_type_name == "argument":
            words += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
            continue
        flag = max(param.opts, key=len)
        if isinstance(value, bool):
            words.append(flag if value else (param.secondary_opts or [flag])[0])
        else:
            for v in value if isinstance(value, (list, tuple)) else [value]:
                words += [flag, str(v)]
    words += ["--resume", str(checkpoint)]
    return " ".join(shlex.quote(w) for w in words)


@app.command()
@user_errors
def run(
    ctx: typer.Context,
    agent: str = typer.Argument(..., help="agent name (see `arena agents`)"),
    env: str = typer.Argument(..., help="env id or alias, e.g. grid:cliff or 'seq:copy length=4'"),
    kwargs: Optional[list[str]] = typer.Argument(None, help="env kwargs as key=value, e.g. slip=0.1"),
    seed: int = typer.Option(0, help="training seed"),
    episodes: int = typer.Option(10, help="evaluation episodes (seeds 1000, 1001, ...)"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="agent setting key=value, e.g. --set gamma=0.9"),
    config: Optional[Path] = typer.Option(None, "--config", help="a TOML file of agent settings ([agent]) and env "
                                          "kwargs ([env]); --set and key=value on the command line win"),
    budget: Optional[int] = typer.Option(None, help="training budget in the agent's unit (`arena agents NAME` says "
                                         "which: episodes, batches, steps); default: its settings"),
    train_episodes: Optional[int] = typer.Option(None, help="training budget in episodes, for agents that count "
                                                 "episodes (same as --budget)"),
    record_training: int = typer.Option(0, help="also record every K-th training episode as a replay"),
    resume: Optional[Path] = typer.Option(None, help="continue training from a checkpoint (after Ctrl-C or a crash)"),
    init: Optional[Path] = typer.Option(None, help="start a new run from a checkpoint's weights or tables (one saved "
                                        "anywhere, e.g. set by hand); this run's own settings, seed and budget"),
    checkpoint_every: float = typer.Option(5.0, help="seconds of training between checkpoints (a killed run loses at most this)"),
    device: Optional[str] = typer.Option(None, help="neural agents: auto (CUDA when present), cpu or cuda"),
    video: Optional[Path] = typer.Option(None, help="generators: write a video (.mp4/.gif) of fixed-latent samples, one frame per checkpoint"),
    db: Optional[Path] = typer.Option(None, help=DB_HELP),
    replays: Path = typer.Option(Path("replays"), help="folder for recorded episodes"),
    json_: bool = typer.Option(False, "--json", help="print the result as JSON (the figures of arena.evaluate) instead of a table"),
    min_score: Optional[float] = typer.Option(None, help="exit with status 1 when the normalised score is below this"),
) -> None:
    """Train AGENT on ENV, evaluate on fixed seeds with recording, and add the result to the leaderboard.

    Training writes runs/<run>/: checkpoint.npz (every few seconds and at the end),
    learning_curve.png and tensorboard/ (view with `tensorboard --logdir runs`). Ctrl-C
    stops after the current episode or batch, saves, and prints the command that resumes;
    after a crash, `--resume runs/<run>/checkpoint.npz` continues from the last checkpoint.
    """
    _check_min_score(min_score)
    if record_training < 0:
        raise RegistryError(f"--record-training {record_training}: use 0 (off) or a positive K")
    _check_seconds(checkpoint_every, "--checkpoint-every")
    if train_episodes is not None and train_episodes < 1:
        raise RegistryError(f"--train-episodes {train_episodes}: train for at least 1 episode")
    job = _job(agent, env, kwargs, seed, episodes, set_, device=device, budget=budget, train_episodes=train_episodes,
               resume=resume, checkpoint_every=checkpoint_every, record_training=record_training, video=video,
               config_file=config, init=init)
    if video is not None:
        from arena.viewer import SampleVideo

        SampleVideo(video)  # a bad suffix or an existing file fails before any training
    try:
        result = _run_and_record(job, db, replays, err if json_ else console)  # --json: stdout is the JSON alone
    except TrainingInterrupted as stop:
        err.print(f"[yellow]{escape(str(stop))}[/]", highlight=False, soft_wrap=True)
        if stop.checkpoint:
            left = stop.total - stop.done
            err.print(f"continue with ({left} {stop.unit}s to go): {_resume_command(ctx, stop.checkpoint)}",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    _report([result], agent, " ".join([env, *(kwargs or [])]), json_, min_score)


def _check_seconds(seconds: Optional[float], flag: str) -> None:
    """A time limit is a positive, finite number of seconds (NaN would never run out)."""
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise RegistryError(f"{flag} {seconds}: use a positive number of seconds")


def _check_min_score(min_score: Optional[float]) -> None:
    """A score to hold to is a finite number (NaN would make every comparison pass)."""
    if min_score is not None and not math.isfinite(min_score):
        raise RegistryError(f"--min-score {min_score}: give a finite number, e.g. --min-score 0.9")


def _report(results: list[Result], agent: str, env: str, as_json: bool, min_score: Optional[float]) -> None:
    """Print finished runs (a table, or JSON on stdout alone) and hold them to --min-score."""
    import json

    from arena.evaluation import Evaluation

    evaluation = Evaluation.of(agent, env, results)
    if as_json:
        typer.echo(json.dumps(evaluation.as_dict(), indent=1))
    else:
        console.print(_results_table(results, "Result"))
        if results[0].replay_paths:
            console.print(f"watch it: [bold]arena replay {results[0].replay_paths[0]}[/]", soft_wrap=True)
    if min_score is not None:
        if evaluation.score is None:
            raise RegistryError(f"--min-score: {agent} on {env} has no normalised score to hold to {min_score}")
        if evaluation.score.iqm < min_score:
            err.print(f"score {evaluation.score.iqm:.3f} is below --min-score {min_score}", highlight=False)
            raise typer.Exit(1)


@app.command("eval")
@user_errors
def eval_(
    agent: str = typer.Argument(..., help="agent name"),
    env: str = typer.Argument(..., help="env id or alias"),
    kwargs: Optional[list[str]] = typer.Argument(None, help="env kwargs as key=value"),
    checkpoint: Path = typer.Option(..., help="checkpoint written by `arena run` (runs/<key>/checkpoint.*)"),
    episodes: int = typer.Option(10, help="evaluation episodes"),
    device: Optional[str] = typer.Option(None, help="neural agents: auto, cpu or cuda"),
    db: Optional[Path] = typer.Option(None, help=DB_HELP),
    replays: Path = typer.Option(Path("replays"), help="folder for recorded episodes"),
    json_: bool = typer.Option(False, "--json", help="print the result as JSON (the figures of arena.evaluate) instead of a table"),
    min_score: Optional[float] = typer.Option(None, help="exit with status 1 when the normalised score is below this"),
) -> None:
    """Evaluate a saved agent on ENV without training, and add the result to the leaderboard."""
    _check_min_score(min_score)
    job = _job(agent, env, kwargs, 0, episodes, None, checkpoint, device=device)
    result = _run_and_record(job, db, replays, err if json_ else console)  # --json: stdout is the JSON alone
    _report([result], agent, " ".join([env, *(kwargs or [])]), json_, min_score)


# --------------------------------------------------------------------------- replay


@app.command()
@user_errors
def replay(
    file: Path = typer.Argument(..., help="a replay .npz"),
    verify_: bool = typer.Option(False, "--verify", help="re-simulate and check every step is bit-identical"),
    video: Optional[Path] = typer.Option(None, help="export to .mp4 or .gif instead of opening a window"),
    fps: Optional[float] = typer.Option(None, help="playback speed in steps per second"),
    values: bool = typer.Option(True, help="draw the value heatmap (when the replay has values)"),
    policy: bool = typer.Option(True, help="draw greedy-policy arrows (when the replay has a policy)"),
    seconds: Optional[float] = typer.Option(None, help="close the window after this many seconds"),
    step: Optional[int] = typer.Option(None, help="open paused at this step"),
    inside: Optional[Path] = typer.Option(None, help="draw the inside of the network that played it to this .png: "
                                          "attention weights (transformer), gates (lstm), hidden state (rnn)"),
    checkpoint: Optional[Path] = typer.Option(None, help="--inside: the network's checkpoint (default: "
                                              "runs/<the replay's folder>/checkpoint.npz)"),
) -> None:
    """Watch a replay in a window, verify it, export it as video, or draw the network inside it."""
    if fps is not None and not 0 < fps <= 1000:
        raise ViewerError(f"--fps {fps}: use a number of steps per second in (0, 1000]")
    _check_seconds(seconds, "--seconds")
    rep = load_replay(file)
    if verify_:
        check = verify(rep)
        if not check.ok:
            err.print(f"[bold red]verify failed:[/] {escape(str(file))}: {escape(check.message)}", highlight=False)
            raise typer.Exit(1)
        console.print(f"[green]verified:[/] {file}: {check.message}", highlight=False)
        if video is None:
            return
    if inside is not None:
        from arena.inside import write_inside

        what = write_inside(rep, file, inside, checkpoint)
        console.print(f"wrote {inside} ({what})", highlight=False)
        if video is None:
            return
    if video is not None:
        from arena.viewer import export_video

        n = export_video(rep, video, fps=fps, show_values=values, show_policy=policy)
        console.print(f"wrote {video} ({n} frames: the start and one per step; the last is held about a second)")
        return
    from arena.viewer import check_display, watch

    check_display(seconds, f"export it instead: arena replay {shlex.quote(str(file))} --video out.mp4 (or --verify)")
    console.print("space pause, left/right step, +/- speed, r restart, v values, p policy, q quit")
    watch(rep, speed=fps, max_seconds=seconds, start=step)


@app.command("play")
@user_errors
def play_command(
    env: str = typer.Argument(..., help="a grid or sequence env, e.g. grid:cliff or 'seq:copy length=4'"),
    kwargs: Optional[list[str]] = typer.Argument(None, help="env kwargs as key=value, e.g. slip=0.1"),
    episodes: int = typer.Option(1, help="episodes to play (the evaluation seeds 1000, 1001, ... every agent plays)"),
    db: Optional[Path] = typer.Option(None, help=DB_HELP),
    replays: Path = typer.Option(Path("replays"), help="folder for recorded episodes"),
    seconds: Optional[float] = typer.Option(None, help="give up when no key is pressed for this many seconds"),
) -> None:
    """Play ENV yourself from the keyboard; your run lands on the leaderboard as agent `human`.

    Grids: arrow keys (or w a s d) move. Sequence tasks: type a token to output it (the
    wanted outputs are hidden). Esc gives up. You play the seeds every agent is evaluated
    on, and your score is normalised like theirs (sampled from your episodes), so
    `arena leaderboard --env grid:cliff` puts you beside value iteration.
    """
    from arena.human import play_human

    if not 1 <= episodes <= 100:
        raise RegistryError(f"--episodes {episodes}: play between 1 and 100 episodes")
    _check_seconds(seconds, "--seconds")
    env_id, env_kwargs = registry.parse_env(env, kwargs)
    console.print(f"playing {escape(env)}: a window opens; arrows or w a s d move on a grid, tokens are typed, Esc gives up")
    result = play_human(env_id, env_kwargs, episodes=episodes, replays=replays, db=db, max_seconds=seconds)
    success = "n/a" if result.success_rate is None else f"{result.success_rate:.0%}"
    console.print(f"[green]recorded[/] human on {escape(env_label(result))}: mean return {fmt(result.mean_return, 2)}, "
                  f"score {fmt(result.score)}, success {success} (run {result.run_key})", highlight=False)
    console.print(f"compare: arena leaderboard --env {escape(env_label(result))!r}; watch: arena replay "
                  f"{escape(result.replay_paths[0])}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- leaderboard


@app.command()
@user_errors
def card(
    agents: Optional[list[str]] = typer.Argument(None, help="agents to test, e.g. reinforce-lstm reinforce-rnn"),
    all_: bool = typer.Option(False, "--all", help="every network: reinforce-mlp, -rnn, -lstm, -transformer"),
    tasks: str = typer.Option("copy,reverse,parity", help="memory tasks, comma-separated"),
    seeds: int = typer.Option(3, help="training seeds per length", min=1, max=100),
    budget: Optional[int] = typer.Option(None, help="training budget per length, in episodes (default: the agent's)"),
    episodes: int = typer.Option(20, help="evaluation episodes per run", min=1, max=10_000),
    max_length: int = typer.Option(64, help="the longest length tried (1, 2, 4, ... up to it)", min=1, max=256),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="a setting for every agent, e.g. --set gamma=0"),
    json_: Optional[Path] = typer.Option(None, "--json", help="also write the card as JSON to this file"),
    plot: Optional[Path] = typer.Option(None, help="also draw accuracy against length to this .png"),
    db: Optional[Path] = typer.Option(None, help=DB_HELP),
    replays: Path = typer.Option(Path("replays"), help="folder for recorded episodes"),
    runs: Path = typer.Option(Path("runs"), help="folder for checkpoints and curves"),
    workers: int = typer.Option(1, help="jobs at once: 1 runs them in this process, more in a process pool", min=1),
    backend: str = typer.Option("local", help="local (this machine) or ray (Ray tasks with retries)"),
    address: Optional[str] = typer.Option(None, help="--backend ray: the cluster's address (default: a local Ray)"),
) -> None:
    """The memory report card: the longest copy, reverse and parity length each agent learns.

    Trains every agent at lengths 1, 2, 4, ... (the same budget each), seeds apart, and
    stops an agent on a task after two lengths it fails; its mark is the longest length it
    reached at >= 0.9 accuracy (IQM over seeds, 95% interval). Runs land on the leaderboard
    as they finish, so an interrupted card resumes.
    """
    import json

    from arena.card import LENGTHS, NETWORKS, card_plot, memory_card
    from arena.tournament import check_backend

    names = list(NETWORKS) if all_ else list(agents or [])
    if not names:
        raise RegistryError("name the agents to test (e.g. arena card reinforce-lstm reinforce-rnn), or --all")
    if budget is not None and budget < 1:
        raise RegistryError(f"--budget {budget}: train for at least 1 episode per length")
    if json_ is not None:
        from agents.checkpoint import new_file

        json_ = new_file(json_, "the card", (".json",))
    if plot is not None:
        from agents.checkpoint import new_file

        plot = new_file(plot, "the plot", (".png",))
    config = _settings(set_)
    check_backend(backend, address)
    board = Leaderboard(db)
    lengths = tuple(L for L in LENGTHS if L <= max_length) or (1,)
    progress = _progress()
    bar = progress.add_task("memory card", total=None)

    def on_length(length: int, jobs: int) -> None:
        progress.update(bar, description=f"memory card: length {length}", total=jobs, completed=0)

    def landed(agent: Any, result: Result) -> None:
        progress.advance(bar)
        if not err.is_terminal:
            err.print(f"done: {agent.label} on {env_label(result)} seed {result.train_seed}: accuracy {fmt(result.score)}",
                      highlight=False)

    with progress:
        marks = memory_card(names, board, replays, runs, tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
                            config=config,
                            seeds=tuple(range(seeds)), budget=budget, eval_episodes=episodes, lengths=lengths,
                            workers=workers, backend=backend, address=address, on_result=landed, on_length=on_length)
    table = Table(title="Memory card: the longest length learned to >= 0.9 accuracy")
    task_names = sorted({m.task for m in marks}, key=lambda t: ("copy", "reverse", "parity").index(t))
    rows = []
    for name in names:
        cells = [name]
        for task in task_names:
            m = next(m for m in marks if m.agent == name and m.task == task)
            iqm, ci = m.summary()
            cells.append(f"{iqm:.3g} [{ci[0]:.3g}, {ci[1]:.3g}] (seeds: {', '.join(map(str, m.longest()))})")
        rows.append(tuple(cells))
    _fill(table, ("agent", *task_names), rows, words=("agent",))
    table.caption = (f"IQM over {seeds} training seed(s) [95% interval]; 0: not even length 1; lengths tried: "
                     f"{', '.join(map(str, lengths))}, stopping after two failures")
    console.print(table)
    if json_ is not None:
        from agents.checkpoint import write_atomically

        text = json.dumps(json_ready({"format": 1, "pass": 0.9, "lengths": list(lengths),
                                      "marks": [m.as_dict() for m in marks]}), indent=1, allow_nan=False)
        write_atomically(json_, lambda tmp: tmp.write_text(text))
        console.print(f"wrote {json_}", highlight=False)
    if plot is not None:
        console.print(f"wrote {card_plot(marks, plot)}", highlight=False)


@app.command()
@user_errors
def tournament(
    suite: str = typer.Argument(..., help="a suite: a name from arena/suites (e.g. imagegen) or a .toml path"),
    db: Optional[Path] = typer.Option(None, help=DB_HELP),
    replays: Path = typer.Option(Path("replays"), help="folder for recorded episodes"),
    runs: Path = typer.Option(Path("runs"), help="folder for checkpoints, curves and the judging table"),
    workers: int = typer.Option(1, help="jobs at once: 1 runs them in this process, more in a process pool "
                                        "(with --backend ray: the local Ray instance's CPUs)"),
    backend: str = typer.Option("local", help="local (this machine) or ray (Ray tasks with retries)"),
    address: Optional[str] = typer.Option(None, help="--backend ray: the cluster's address, e.g. 10.0.0.5:6379 "
                                                     "(default: start a local Ray)"),
) -> None:
    """Run every (agent, env, seed) job of a SUITE and add each result to the leaderboard.

    A suite is a small TOML file: envs, agents (with settings and budgets), training seeds
    and evaluation episodes; the file is checked whole before any job starts. Each result
    lands as its job finishes; a rerun skips the jobs already on the leaderboard (keyed by
    agent, settings, env, seed and budget), so an interrupted tournament resumes. Image suites
    with `cross_judge = true` then show every generator to every trained discriminator
    (the env's judge and each GAN's own) and print who fools whom, with Bradley-Terry ratings.
    """
    import json
    from datetime import datetime, timezone

    from arena.tournament import check_backend, judge_suite, load_suite, run_suite

    spec = load_suite(suite)
    check_backend(backend, address)
    if workers < 1:
        raise RegistryError(f"--workers {workers}: use 1 (in this process) or more (a process pool)")
    board = Leaderboard(db)
    jobs = spec.jobs()
    done = board.run_keys()
    todo = sum(job.run_key not in done for _, job in jobs)
    console.print(f"[bold]{escape(spec.name)}[/]: {len(jobs)} jobs, {len(jobs) - todo} already on the leaderboard"
                  + (f" ({escape(spec.description)})" if spec.description else ""))
    if spec.skipped:
        console.print(f"[dim]{len(spec.skipped)} agent-env pairs skipped (the agent cannot play the env, or its "
                      "envs list leaves it out)[/]")
    progress = _progress()
    where = f"Ray at {address}" if address else f"{workers} worker{'s' if workers > 1 else ''}" + (
        " on a local Ray" if backend == "ray" else "")
    task = progress.add_task(f"tournament {spec.name} ({where})", total=todo)

    def landed(agent: Any, result: Result) -> None:
        progress.advance(task)
        if not err.is_terminal:  # a line per job where there is no bar
            err.print(f"done: {agent.label} on {env_label(result)} seed {result.train_seed}: score {fmt(result.score)}",
                      highlight=False)

    with progress:
        finished = run_suite(spec, board, replays, runs, workers=workers, on_result=landed, backend=backend,
                             address=address)
    results = [result for _, _, result, _ in finished]
    labels = {result.run_key: agent.label for agent, _, result, _ in finished}
    ranked = sorted(results, key=lambda r: (r.env_id, -(r.score if r.score is not None else float("-inf"))))
    console.print(_results_table(ranked, f"Tournament {spec.name}", labels))
    if spec.cross_judge:
        for env_text, judged in judge_suite(finished):
            console.print(_fooling_table(env_text, judged))
            console.print(_ratings_table(judged))
            out = runs / f"{spec.name}-judging-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(json_ready({"suite": spec.name, "env": env_text, **judged.as_dict()}), indent=1,
                                      allow_nan=False))
            console.print(f"[dim]judging table: {out}[/]", soft_wrap=True)
    console.print("see them all: [bold]arena leaderboard[/] (one page with charts: [bold]arena leaderboard --html "
                  "report.html[/])", soft_wrap=True)


def _fooling_table(env_text: str, judged: Any) -> Table:
    table = Table(title=escape(f"Who fools whom on {env_text}: % of comparisons each judge (column) "
                               "rated the generator's image above a held-out real one"))
    table.add_column("generator", no_wrap=True)
    for name in judged.judges:
        table.add_column(escape(name), justify="right")
    order = sorted(range(len(judged.generators)), key=lambda g: -judged.ratings[f"G {judged.generators[g]}"])
    for g in order:
        table.add_row(escape(judged.generators[g]), *(f"{100 * v:.0f}" for v in judged.fooled[g]))
    table.caption = (f"50 = the judge cannot tell the images from real ones, 0 = it always can; "
                     f"{judged.images} generated and {judged.images} real images per judge")
    return table


def _ratings_table(judged: Any) -> Table:
    table = Table(title="Bradley-Terry ratings (Elo scale): generators and judges on one scale")
    for col in ("rank", "player", "role", "rating"):
        table.add_column(col, justify="right" if col in ("rank", "rating") else "left")
    for i, (player, rating) in enumerate(sorted(judged.ratings.items(), key=lambda kv: -kv[1]), 1):
        role, _, name = player.partition(" ")
        table.add_row(str(i), escape(name), "generator" if role == "G" else "judge", f"{rating:.0f}")
    table.caption = "a generator 400 points above a judge fools it at 10:1 odds per comparison"
    return table


@app.command()
@user_errors
def leaderboard(
    env: Optional[str] = typer.Option(None, help="only this env id or alias"),
    agent: Optional[str] = typer.Option(None, help="only this agent"),
    db: Optional[Path] = typer.Option(None, help=DB_HELP),
    format_: str = typer.Option("table", "--format", help="table, markdown, csv or json"),
    limit: Optional[int] = typer.Option(None, help="at most this many rows"),
    runs: bool = typer.Option(False, "--runs", help="list every run (one row per training seed) instead of the standings"),
    html_path: Optional[Path] = typer.Option(None, "--html", help="write the report page here (e.g. report.html)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="--html: replace the page if the file exists"),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="where the runs were trained (the --runs of arena "
                                  "run/tournament): the report's learning curves come from there"),
) -> None:
    """Show the standings, best first within each env (opens the database read-only).

    An entry is one agent with one set of settings on one env; its runs (one per training
    seed) are aggregated as IQM score with a 95% bootstrap interval, and entries whose
    intervals overlap share a rank (tied). `--runs` lists the runs themselves. `--html
    report.html` writes one static page instead: per-env rankings, intervals as error bars,
    performance profiles, learning curves and a GIF of each top entry's replay.
    """
    import json
    from dataclasses import asdict

    from arena.leaderboard import REPORT_COLUMNS, csv_table, markdown_table, report_rows

    if format_ == "html":
        raise RegistryError("--format html is now the report page: use --html report.html")
    if format_ not in ("table", "markdown", "csv", "json"):
        raise RegistryError(f"unknown --format {format_!r}; use table, markdown, csv or json (or --html PATH)")
    board = Leaderboard(db, readonly=True)
    env_id, env_kwargs = registry.parse_env(env) if env else (None, {})
    results = [r for r in board.results(env_id=env_id, agent=agent, limit=limit)  # grid:cliff: that layout only
               if all(r.env_kwargs.get(k) == v for k, v in env_kwargs.items())]
    title = f"Leaderboard ({board.path}, {len(results)} runs)"
    if html_path is not None:
        from arena.leaderboard.report import write_report

        envs_seen = sorted({env_label(r) for r in results})
        with _progress() as progress:
            task = progress.add_task("report", total=len(envs_seen))

            def drawn(env: str) -> None:
                progress.update(task, advance=1, description=f"report: {env}")
                if not err.is_terminal:  # a line per env where there is no bar
                    done = int(progress.tasks[0].completed)
                    err.print(f"report: {done}/{len(envs_seen)} envs drawn ({env})", highlight=False, soft_wrap=True)

            summary = write_report(results, html_path, runs_dir, source=str(board.path), overwrite=overwrite,
                                   on_env=drawn)
        size = summary.path.stat().st_size / 1e6 if summary.path else 0.0
        typer.echo(f"wrote {summary.path} ({size:.1f} MB): {summary.entries} entries on {summary.envs} envs, "
                   f"{summary.images} images")
        if summary.missing:
            typer.echo(f"not shown ({len(summary.missing)} files not here, e.g. {summary.missing[0]}): "
                       f"give --runs-dir the folder the runs were trained in", err=True)
    elif runs:
        if format_ == "json":
            typer.echo(json.dumps(json_ready([asdict(r) for r in results]), indent=1, default=str, allow_nan=False))
        elif format_ in ("markdown", "csv"):
            sys.stdout.write((markdown_table if format_ == "markdown" else csv_table)(REPORT_COLUMNS, report_rows(results)))
        else:
            console.print(_results_table(results, title))
    else:
        from arena.standings import STANDINGS_COLUMNS, standing_cells, standing_dict, standings

        entries = standings(results)
        if format_ == "json":
            typer.echo(json.dumps(json_ready([standing_dict(st) for st in entries]), indent=1, allow_nan=False))
        elif format_ in ("markdown", "csv"):
            table = (markdown_table if format_ == "markdown" else csv_table)
            sys.stdout.write(table(STANDINGS_COLUMNS, [standing_cells(st) for st in entries]))
        else:
            console.print(_standings_table(entries, title))


def _standings_table(entries: list[Any], title: str) -> Table:
    """Entries (arena.standings.Standing) as a rich table: rank (= when tied), IQM, CI, success, flags."""
    from arena.standings import STANDINGS_COLUMNS, standing_cells

    table = Table(title=escape(title))
    _fill(table, STANDINGS_COLUMNS, [standing_cells(st) for st in entries], words=("env", "agent", "notes"))
    table.caption = ("score: normalised (exact for grids, accuracy for sequences, FID-based for images, gold for text: 0 stage 1, 1 gold-best), "
                     "IQM over "
                     "runs; =: tied (95% intervals overlap); success: episodes that reached the goal or were all right")
    return table


# --------------------------------------------------------------------------- bench / demo


@app.command()
@user_errors
def bench(
    quick: bool = typer.Option(False, help="fewer steps and repeats, smaller problems (a few minutes)"),
    gpu: bool = typer.Option(False, "--gpu", help="REINFORCE and GAN training throughput on CUDA against CPU"),
    heavy: bool = typer.Option(False, "--heavy", help="also the baselines that start hundreds of processes "
                                                      "(Gymnasium's AsyncVectorEnv, a process per copy)"),
    scale: bool = typer.Option(False, "--scale", help="how costs grow instead: gym.make and value iteration at "
                                                      "256..2048, batched steps at 1k..64k copies, tournaments at 1, 2, 4 workers"),
    json_: bool = typer.Option(False, "--json", help="print the figures as JSON ({complete, figures: [...]}, stable ids)"),
    markdown: bool = typer.Option(False, "--markdown", help="print the figures as a markdown table (the README's)"),
    only: Optional[list[str]] = typer.Option(None, "--only", help="run only this benchmark (repeatable), e.g. --only vi"),
    saved: Optional[Path] = typer.Option(None, "--from", help="show a run saved with --json (e.g. as --markdown) "
                                                              "instead of measuring"),
) -> None:
    """Speed figures: Arena against what a user would pick instead, on the same work, and
    against the limit (a plain compiled loop on the same arrays, or memory bandwidth).

    Baseline, Arena and limit run interleaved in this process; each figure is the median of
    the per-pair ratios (above 1: Arena ahead) with their spread. A figure whose spread
    reaches across its target is "inconclusive". Exits 1 when a target is not met or a
    figure is inconclusive. SIGINT or SIGTERM stops it at once: what was measured so far
    is printed, marked incomplete (JSON: "complete": false), and the exit status is 128 +
    the signal's number.
    """
    import json
    import signal

    from arena import bench as benchmarks

    unknown = sorted(set(only or []) - set(benchmarks.BENCHMARKS))
    if unknown:
        raise RegistryError(f"--only {unknown[0]}: no such benchmark; use one of {', '.join(benchmarks.BENCHMARKS)}")
    benchmarks.HEAVY = heavy
    figures: list[Any] = []
    stopped: int | None = None

    def stop(signum: int, frame: Any) -> None:
        raise benchmarks.Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop), signal.signal(signal.SIGINT, stop)
    try:
        if saved is not None:
            figures = benchmarks.load_figures(saved)
        elif gpu:
            figures = benchmarks.bench_gpu(updates=5 if quick else 20)
        elif scale:
            figures = []  # printed as the scale table below
        else:
            keys = [k for k in benchmarks.BENCHMARKS if not only or k in only]
            with _progress() as progress:
                task = progress.add_task("benchmarks", total=len(keys))
                for key in keys:
                    progress.update(task, description=f"bench: {key}")
                    figures.extend(benchmarks.BENCHMARKS[key](quick))
                    progress.advance(task)
        rows = benchmarks.scale_rows(quick) if scale else []
    except benchmarks.Stopped as signalled:
        stopped, rows = signalled.signum, []
    except TrainingInterrupted:  # SIGINT while a benchmark trained: the training loop's Ctrl-C stopped it
        stopped, rows = int(signal.SIGINT), []
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    name = signal.Signals(stopped).name if stopped else ""
    if scale and not stopped:
        if json_:
            typer.echo(json.dumps({"complete": True, "scale": rows}, indent=1))
        else:
            sys.stdout.write(benchmarks.scale_markdown(rows))
        return
    if json_:
        out: dict[str, Any] = {"complete": stopped is None, "figures": [f.as_dict() for f in figures]}
        if stopped:
            out["stopped_by"] = name
        typer.echo(json.dumps(out, indent=1))
    elif markdown:
        sys.stdout.write(benchmarks.markdown(figures))
    else:
        table = Table(title="arena bench: ratio = Arena against the baseline, median of interleaved pairs (above 1: Arena "
                            "ahead); of the limit: Arena against the same work compiled (1: at the limit)")
        for col in ("id", "baseline", "baseline", "Arena", "unit", "ratio", "spread", "the limit", "of the limit",
                    "target", "verdict", "detail"):
            table.add_column(col, justify="right" if col in ("ratio", "spread", "of the limit") else "left")
        colour = {"met": "green", "not met": "red", "inconclusive": "yellow"}
        for f in figures:
            table.add_row(f.id, escape(f.baseline), f"{f.baseline_value:,.4g}", f"{f.ours:,.4g}", f.unit, f"{f.ratio:,.2f}x",
                          f"{f.spread[0]:.2f}-{f.spread[1]:.2f}",
                          escape(f"{f.limit}: {f.limit_value:,.4g}") if f.limit_value is not None else "",
                          f"{f.fraction_of_limit:.2f}" if f.fraction_of_limit is not None else "", f.target,
                          f"[{colour[f.verdict]}]{f.verdict}[/]", escape(f.detail))
        console.print(table)
    if stopped:
        typer.echo(f"stopped by {name}: {len(figures)} figures measured; the run is incomplete", err=True)
        raise typer.Exit(128 + stopped)
    if not all(f.met and not f.inconclusive for f in figures):
        raise typer.Exit(1)


DEMO_LAYOUTS = ("cliff", "frozenlake-4x4", "four-rooms", "maze-15x15")
DEMO_AGENTS = ("value-iteration", "policy-iteration", "random")
# model-free learners, with their training budgets (episodes) and how often to record training
DEMO_LEARNERS = (("q-learning", "cliff", 3000, 300), ("sarsa", "cliff", 3000, 0), ("mc-control", "frozenlake-4x4", 30000, 0))
# a short generator match: a GAN against the held-out data (the ceiling) and noise (the floor), on digits
DEMO_GENERATORS: tuple[tuple[str, dict[str, Any], int | None], ...] = (
    ("gan", {"device": "cpu"}, 400), ("real-data", {}, None), ("noise", {}, None))


@app.command()
@user_errors
def demo(
    db: Optional[Path] = typer.Option(None, help=DB_HELP),
    replays: Path = typer.Option(Path("replays"), help="folder for recorded episodes"),
    episodes: int = typer.Option(10, help="evaluation episodes per agent"),
) -> None:
    """The main job on its defaults: DP, TD, MC and a neural agent, plus the random baseline, recorded and ranked."""
    from agents.protocol import RunSpec
    from arena.jobs import Job, run_job

    board = Leaderboard(db)
    jobs = [
        Job(agent, "arena/GridWorld-v0", {"layout": layout}, {}, RunSpec(), episodes)
        for layout in DEMO_LAYOUTS for agent in DEMO_AGENTS
    ] + [
        Job(agent, "arena/GridWorld-v0", {"layout": layout}, {}, RunSpec(budget=budget), episodes, record_training=every)
        for agent, layout, budget, every in DEMO_LEARNERS
    ] + [
        Job("reinforce-transformer", "arena/SequencePrediction-v0", {"task": "copy", "length": 8},
            {"target": 0.98, "device": "cpu"}, RunSpec(budget=64 * 500), episodes),
    ] + [
        Job(agent, "arena/ImageGeneration-v0", {"dataset": "digits"}, config, RunSpec(budget=budget), max(episodes, 5))
        for agent, config, budget in DEMO_GENERATORS
    ]
    results, logs = [], []
    with _progress() as progress:
        task = progress.add_task("demo matches", total=len(jobs))
        for job in jobs:
            where = job.env_kwargs.get("layout") or job.env_kwargs.get("task") or job.env_kwargs.get("dataset")
            progress.update(task, description=f"{job.agent} on {where}")
            result, log = run_job(job, replays)
            board.add(result)
            results.append(result)
            logs.append(log)
            progress.advance(task)
    console.print(_results_table(results, f"Demo leaderboard ({board.path})"))
    best = next(r for r in results if r.agent == "value-iteration" and r.env_kwargs["layout"] == "cliff")
    learner = next(r for r in results if r.agent == "q-learning")
    curve = next(log["curve"] for r, log in zip(results, logs) if r.agent == "q-learning")
    training = sorted(Path(learner.replay_paths[0]).parent.glob("train-episode*.npz"))
    console.print(f"{board.count()} results in {board.path}; all of them: [bold]arena leaderboard[/]")
    console.print(f"watch a replay: [bold]arena replay {best.replay_paths[0]}[/]", soft_wrap=True)
    if training:
        console.print(f"watch Q-learning explore early in training: [bold]arena replay {training[0]}[/]", soft_wrap=True)
    console.print(f"its learning curve: {curve}", soft_wrap=True)
    console.print(f"export a replay: [bold]arena replay {best.replay_paths[0]} --video cliff.mp4[/]", soft_wrap=True)
    copier = next(r for r in results if r.agent == "reinforce-transformer")
    console.print(f"a Transformer copying 8 tokens: [bold]arena replay {copier.replay_paths[0]}[/]", soft_wrap=True)
    gan = next(r for r in results if r.agent == "gan")
    console.print(f"a GAN's digits, judged (score {gan.score:.2f} after {DEMO_GENERATORS[0][2]} batches; "
                  f"train longer: [bold]arena run gan img:digits[/]): [bold]arena replay {gan.replay_paths[0]}[/]",
                  soft_wrap=True)
    console.print("every agent family on every env family, 3 training seeds each, ranked with confidence intervals "
                  "(under 10 minutes): [bold]arena tournament default --workers 2[/], then [bold]arena leaderboard[/] "
                  "(or [bold]--html report.html[/]); play the cliff yourself: [bold]arena play grid:cliff[/]",
                  soft_wrap=True)


def main() -> None:  # pragma: no cover
    app()
