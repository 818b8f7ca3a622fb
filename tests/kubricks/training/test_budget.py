"""The train step's budget: search sample sizing, the too-small-budget line, trial estimates."""

from __future__ import annotations

import time

import pytest

from kubricks.training.budget import (
    MIN_SEARCH_ROWS,
    Budget,
    BudgetError,
    Costs,
    TrialCosts,
    check_budget_for_rows,
    minimum_seconds,
    overrun_note,
    search_rows,
    smallest_budget_minutes,
)

# A default forest at 100 us a row to fit and 10 us to predict: a quiet 2-core machine.
QUIET = Costs(fit_per_row=1e-4, predict_per_row=1e-5)


def test_the_search_samples_only_what_its_time_cannot_afford() -> None:
    assert search_rows(QUIET, 600.0, 30, 50_000) == 50_000  # ten minutes: every row
    few = search_rows(QUIET, 60.0, 30, 800_000)
    assert MIN_SEARCH_ROWS < few < 800_000
    assert search_rows(QUIET, 120.0, 30, 800_000) == pytest.approx(2 * few, rel=0.01)
    slower = Costs(fit_per_row=4e-4, predict_per_row=4e-5)
    assert search_rows(slower, 60.0, 30, 800_000) == pytest.approx(few / 4, rel=0.01)


def test_a_default_trial_fits_a_tenth_of_the_search() -> None:
    rows = search_rows(QUIET, 100.0, 30, 10**8)
    assert QUIET.trial_seconds(rows, rows // 3) == pytest.approx(10.0, rel=0.05)


def test_asking_for_fewer_trials_gives_each_a_larger_sample() -> None:
    assert search_rows(QUIET, 60.0, 2, 10**8) == pytest.approx(
        5 * search_rows(QUIET, 60.0, 30, 10**8), rel=0.01
    )


def test_the_search_never_samples_below_the_minimum() -> None:
    assert search_rows(QUIET, 0.01, 30, 800_000) == MIN_SEARCH_ROWS
    assert search_rows(QUIET, 0.01, 30, 300) == 300


def test_a_budget_too_small_for_the_data_size_names_the_smallest_that_works() -> None:
    rows, holdout = 10_000_000, 200_000
    assert minimum_seconds(rows, holdout) > 100.0  # loading ten million rows alone
    with pytest.raises(BudgetError) as caught:
        check_budget_for_rows(Budget.minutes(0.5), rows, holdout, "churn")
    message = str(caught.value)
    assert "\n" not in message
    assert "--budget-minutes 0.5 is too small for 10,000,000 training rows of 'churn'" in message
    smallest = float(message.rsplit("can work for this size is ", 1)[1].split()[0])
    assert smallest * 60 >= minimum_seconds(rows, holdout)
    check_budget_for_rows(Budget.minutes(smallest), rows, holdout, "churn")  # and it does


def test_small_data_fits_even_a_tiny_budget() -> None:
    check_budget_for_rows(Budget.minutes(0.1), 10_000, 2_000, "churn")


def test_a_budget_spent_by_loading_still_runs_the_minimum_and_says_what_it_needs() -> None:
    budget = Budget(seconds=30.0, started=time.monotonic() - 50.0)  # loading took 50 s
    note = overrun_note(budget, one_trial=2.0, after_search=17.0)
    assert note is not None and "\n" not in note
    assert "loading took 50 s" in note and "about 1.2 minutes" in note  # 69 s, rounded up
    roomy = Budget(seconds=120.0, started=time.monotonic() - 50.0)
    assert overrun_note(roomy, one_trial=2.0, after_search=17.0) is None


def test_smallest_budget_rounds_up_to_a_tenth_of_a_minute() -> None:
    assert smallest_budget_minutes(60.0) == 1.0
    assert smallest_budget_minutes(61.0) == 1.1
    assert smallest_budget_minutes(5.0) == 0.1


def test_the_search_deadline_bounds_search_left() -> None:
    budget = Budget.minutes(1.0)
    assert 59.0 < budget.left() <= 60.0
    budget.search_deadline = time.monotonic() + 20.0
    assert 19.0 < budget.search_left() <= 20.0 < budget.left()


def test_trial_costs_learn_per_family_and_scale_with_the_configuration() -> None:
    costs = TrialCosts()
    small = {"random_forest.n_estimators": 100, "random_forest.max_depth": 8,
             "random_forest.max_features": 0.5}  # fmt: skip
    assert costs.predict("random_forest", small, 10_000) is None  # never ran: no guess
    costs.record("random_forest", small, 10_000, 4.0)
    big = {**small, "random_forest.n_estimators": 300}
    assert costs.predict("random_forest", big, 10_000) == pytest.approx(12.0)
    assert costs.predict("random_forest", small, 20_000) == pytest.approx(8.0)
    assert costs.predict("lightgbm", {}, 10_000) is None
