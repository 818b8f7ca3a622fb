"""The train step's wall clock: one budget for loading, search, refit, evaluation, logging
and the gate, so ``--budget-minutes 3`` means three minutes of waiting, not three of search.

Every phase asks the same :class:`Budget` how long it may take. The search gets what is
left once a reserve for the rest is set aside: at least :data:`AFTER_SEARCH_SHARE` of the
budget, more when the rest must take longer (measured, see :class:`Costs`). Optional work
after the search (refitting on every row, permutation-importance repeats) only runs in
what the reserve leaves over. Times come from this machine's own measurements during the
run (a pilot fit, the trials), never from constants measured elsewhere, because a shared
2-core machine can be several times slower one hour than the next.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from kubricks.errors import KubricksError

AFTER_SEARCH_SHARE = 0.2  # of the budget, kept for refit, evaluation, artifacts, model, gate
GRACE_SECONDS = 15.0  # fixed costs (MLflow round trips) not worth refusing a run over
TRIAL_SHARE = 1 / 10  # the search sample is sized so a default forest takes this much
MIN_SEARCH_ROWS = 1_000  # below this a sample says too little to choose a model
FIXED_AFTER_SEARCH_SECONDS = 6.0  # spec, profile, holdout, plots, model and version calls
SAFETY = 1.5  # estimates scale measured times by this (tree fits grow a bit faster than rows)


class BudgetError(KubricksError):
    """The time budget cannot fit even one trial and the model's evaluation for this data size."""


@dataclass
class Budget:
    """Seconds of wall clock for one train step, counted from ``started`` (monotonic)."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    search_deadline: float | None = None  # set by the plan once the reserve is known

    @classmethod
    def minutes(cls, minutes: float) -> Budget:
        return cls(seconds=max(0.0, minutes) * 60.0)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def search_left(self) -> float:
        deadline = self.search_deadline or (self.started + self.seconds)
        return deadline - time.monotonic()


def smallest_budget_minutes(needed_seconds: float) -> float:
    """A budget (minutes, rounded up to a tenth) that covers ``needed_seconds``."""
    return math.ceil(needed_seconds / 6.0) / 10.0


@dataclass
class Costs:
    """Seconds per row of the pilot fit (a default forest) and of predicting with it."""

    fit_per_row: float
    predict_per_row: float

    def trial_seconds(self, rows: int, validation_rows: int) -> float:
        """A default-configuration forest trial on ``rows`` rows, scored on the validation."""
        return SAFETY * (self.fit_per_row * rows + self.predict_per_row * validation_rows)

    def predict_seconds(self, rows: int) -> float:
        return SAFETY * self.predict_per_row * rows

    def after_search_seconds(self, holdout_rows: int) -> float:
        """What must follow the search: the holdout scored by the candidate here and by
        candidate and champion in the gate, and the fixed logging work."""
        return 3 * self.predict_seconds(holdout_rows) + FIXED_AFTER_SEARCH_SECONDS


def search_rows(costs: Costs, search_seconds: float, max_trials: int, fit_rows: int) -> int:
    """How many fit rows the search can afford: a default forest trial should take at most
    :data:`TRIAL_SHARE` of the search (fewer trials asked for: a larger share each)."""
    share = max(TRIAL_SHARE, 1.0 / max(1, max_trials))
    per_row = SAFETY * (costs.fit_per_row + costs.predict_per_row / 3)  # 3 fit rows : 1 val
    affordable = int(search_seconds * share / per_row) if per_row > 0 else fit_rows
    return max(min(fit_rows, MIN_SEARCH_ROWS), min(fit_rows, affordable))


# What a quiet 2-core machine needs at least (benchmarks/scale.py), kept on the fast side so
# only a budget that cannot work anywhere is refused before loading; the run itself measures.
LOAD_SECONDS_PER_ROW = 10e-6  # Feast's point-in-time training set
PREDICT_SECONDS_PER_ROW = 5e-6  # a default forest over the holdout (here and twice in the gate)
ONE_TRIAL_SECONDS = 1.0  # the first trial (logistic regression) on a small sample
STARTUP_SECONDS = 10.0  # imports, the tracking server's first answer, Feast's registry


def minimum_seconds(rows: int, holdout_rows: int) -> float:
    """The least a train step on ``rows`` labelled rows can take: load them, run one trial,
    score the holdout three times, log."""
    return (
        STARTUP_SECONDS
        + LOAD_SECONDS_PER_ROW * rows
        + ONE_TRIAL_SECONDS
        + 3 * PREDICT_SECONDS_PER_ROW * holdout_rows
        + FIXED_AFTER_SEARCH_SECONDS
    )


def check_budget_for_rows(budget: Budget, rows: int, holdout_rows: int, usecase: str) -> None:
    """Refuse, before anything is loaded, a budget that cannot fit loading ``rows`` rows, one
    trial and the work after it on any machine: one line with the smallest budget that can
    work for this size. (A slow machine is not refused: the run does the minimum and says so.)"""
    needed = minimum_seconds(rows, holdout_rows)
    if needed <= budget.seconds + GRACE_SECONDS:
        return
    raise BudgetError(
        f"--budget-minutes {budget.seconds / 60:g} is too small for {rows:,} training rows of"
        f" {usecase!r}: loading them, one trial, the holdout evaluation, logging and the gate"
        f" take at least {needed:.0f} s; the smallest budget that can work for this size is"
        f" {smallest_budget_minutes(needed)} minutes"
    )


def overrun_note(budget: Budget, one_trial: float, after_search: float) -> str | None:
    """Once loaded: when the budget cannot hold one trial and the work after it on this
    machine now, the run still does the minimum (one trial) and says how long it needs."""
    needed = budget.elapsed() + one_trial + after_search
    if needed <= budget.seconds:
        return None
    return (
        f"The {budget.seconds / 60:g}-minute budget is short here: loading took"
        f" {budget.elapsed():.0f} s and one trial with the evaluation, logging and the gate"
        f" needs about {one_trial + after_search:.0f} s more, so only the minimum runs; this"
        f" data needs about {smallest_budget_minutes(needed)} minutes on this machine now."
    )


class TrialCosts:
    """Seconds per unit of work of each model family, learned from the trials that ran,
    so a sampled configuration that cannot finish before the search deadline is skipped."""

    def __init__(self) -> None:
        self.rates: dict[str, float] = {}

    @staticmethod
    def work(family: str, params: dict[str, Any], rows: int) -> float:
        """A size of one fit: rows times trees (times depth and features for forests)."""

        def value(name: str, default: float) -> float:
            return float(params.get(f"{family}.{name}", default))

        if family in ("random_forest", "extra_trees"):
            depth = min(value("max_depth", 12), math.log2(max(rows, 2)))
            return rows * value("n_estimators", 100) * value("max_features", 1.0) * depth
        if family == "lightgbm":
            return rows * value("n_estimators", 100) * value("subsample", 1.0)
        return float(rows)

    def record(self, family: str, params: dict[str, Any], rows: int, seconds: float) -> None:
        rate = seconds / max(self.work(family, params, rows), 1.0)
        self.rates[family] = max(rate, self.rates.get(family, 0.0))

    def predict(self, family: str, params: dict[str, Any], rows: int) -> float | None:
        """Expected seconds of a trial, or None before the family has run once."""
        rate = self.rates.get(family)
        return None if rate is None else rate * self.work(family, params, rows)
