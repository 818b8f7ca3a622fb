"""Live search progress with Rich: trials done, best score so far, time left in the budget."""

from __future__ import annotations

from types import TracebackType

from optuna import Study
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
)
from rich.text import Text


class BudgetLeftColumn(ProgressColumn):
    """Counts down the search's time budget (Rich's own column estimates from speed)."""

    def __init__(self, budget_seconds: float) -> None:
        super().__init__()
        self.budget = budget_seconds

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if task.finished:  # the bar's last frame is what a log keeps: the time taken
            minutes, seconds = divmod(int(elapsed), 60)
            return Text(f"done in {minutes}:{seconds:02d}", style="progress.elapsed")
        minutes, seconds = divmod(int(max(0.0, self.budget - elapsed)), 60)
        return Text(f"{minutes}:{seconds:02d} left", style="progress.remaining")


class SearchProgress:
    """An Optuna callback that drives a Rich progress bar; a no-op when disabled."""

    def __init__(
        self,
        max_trials: int,
        budget_seconds: float,
        metric: str,
        enabled: bool = True,
        console: Console | None = None,
    ) -> None:
        self.metric = metric
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"),
            BudgetLeftColumn(budget_seconds),
            console=console,
            disable=not enabled,
        )
        self.task = self.progress.add_task("AutoML trials", total=max_trials, best="-", start=False)

    def __enter__(self) -> SearchProgress:
        self.progress.start()
        self.progress.start_task(self.task)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        best = "-"
        if any(t.state == TrialState.COMPLETE for t in study.trials):
            family = study.best_trial.params.get("family", "?")
            best = f"{self.metric}={study.best_value:.4f} ({family})"
        self.progress.update(self.task, advance=1, best=best)
