"""Arena's pytest plugin (installed with the package, a `pytest11` entry point): leaderboard
evaluation tests in any project.

    def test_q_learning_masters_the_cliff(arena_eval):
        result = arena_eval("q-learning", "grid:cliff", train_seeds=3, budget=2000)
        assert result.score.iqm >= 0.95 and result.success_rate == 1.0

`arena_eval` takes `arena.evaluate`'s arguments and returns its `Evaluation`. Options:
`--arena-record` also writes each result to the leaderboard, `--arena-db PATH` chooses the
database. When a test fails, its report shows every evaluation it made: agent, env,
seeds, score with its confidence interval, success rate and flags.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

EVALUATIONS = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("arena", "Arena leaderboard evaluation tests")
    group.addoption("--arena-record", action="store_true", default=False,
                    help="also write each arena_eval result to the leaderboard")
    group.addoption("--arena-db", default=None, metavar="PATH",
                    help="leaderboard database for --arena-record (default: $ARENA_DB or replays/leaderboard.sqlite)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "leaderboard: a leaderboard evaluation test (trains agents through arena_eval)")


@pytest.fixture
def arena_eval(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """`arena_eval(agent, env, **kwargs)`: `arena.evaluate` with this session's recording options."""
    from arena.evaluation import evaluate

    made: list[Any] = []
    request.node.stash[EVALUATIONS] = made
    record = bool(request.config.getoption("arena_record"))
    db = request.config.getoption("arena_db")

    def run(agent: str, env: str, **kwargs: Any) -> Any:
        if record:
            kwargs.setdefault("record", True)
            kwargs.setdefault("db", db)
        evaluation = evaluate(agent, env, **kwargs)
        made.append(evaluation)
        return evaluation

    yield run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    evaluations = item.stash.get(EVALUATIONS, [])
    if report.when == "call" and evaluations:
        report.sections.append(("arena evaluations", "\n".join(str(e) for e in evaluations)))
    return report
