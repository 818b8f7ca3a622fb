"""The Rich progress callback follows an Optuna study."""

from __future__ import annotations

import io

import optuna
from rich.console import Console

from kubricks.training.progress import SearchProgress


def test_progress_counts_trials_and_shows_the_best() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with SearchProgress(5, 60.0, "roc_auc", console=console) as progress:
        study.optimize(
            lambda t: t.suggest_float("x", 0, 1) if t.number != 1 else 0.99,
            n_trials=3,
            callbacks=[progress],
        )
        task = progress.progress.tasks[0]
        assert task.completed == 3 and task.total == 5
        assert task.fields["best"].startswith("roc_auc=0.9900")
    assert "3/5" in out.getvalue() and "left" in out.getvalue()


def test_a_finished_search_says_how_long_it_took_not_time_left() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize")
    out = io.StringIO()
    console = Console(file=out, width=120)  # a log: only the final frame is written
    with SearchProgress(3, 300.0, "f1", console=console) as progress:
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3, callbacks=[progress])
    last = out.getvalue().strip().splitlines()[-1]
    assert "3/3" in last and "done in 0:0" in last and "left" not in last
