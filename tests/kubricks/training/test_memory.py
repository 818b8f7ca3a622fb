"""A training set too large for memory is refused in one line with the fraction that fits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kubricks.settings import KubricksSettings
from kubricks.training import data, memory
from tests.kubricks.training.specs import classification_spec, gold_frame


def test_text_columns_cost_more_than_numbers(tmp_path: Path) -> None:
    spec = classification_spec(tmp_path)  # key, Size, Rooms, City (text), Age, Sold
    assert memory.row_bytes(spec) == 8 + 5 * 8 + memory.STRING_BYTES


def test_the_fitting_fraction_is_rounded_down_to_two_digits() -> None:
    assert memory.fitting_fraction(10_000_000, 4_567_000) == 0.45
    assert memory.fitting_fraction(10_000_000, 123_456) == 0.012
    assert memory.fitting_fraction(10, 0) == 0.0


def test_rows_that_fit_fill_the_headroom_and_no_more(tmp_path: Path) -> None:
    spec = classification_spec(tmp_path)
    rows = memory.rows_that_fit(spec, 2**30)
    assert memory.peak_bytes(spec, rows) <= 2**30 * memory.HEADROOM
    assert memory.peak_bytes(spec, rows + 10) > 2**30 * memory.HEADROOM


def test_label_rows_that_do_not_fit_fail_in_one_line_naming_size_and_fraction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = classification_spec(tmp_path)
    rows = gold_frame(spec, rows=20_000)
    room = memory.peak_bytes(spec, 5_000) / memory.HEADROOM  # a quarter of the rows fit
    monkeypatch.setattr(memory, "available_bytes", lambda: int(room))
    select = data.fitting_rows(spec, "gold/buyers@v4", None, seed=0)
    with pytest.raises(data.TrainingDataError) as caught:
        select(rows)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("gold/buyers@v4: 20,000 labelled rows need about")
    assert re.search(r"a stratified sample of 0\.2\d? \(\d,\d{3} rows\) would fit", message)
    assert "--max-rows" in message and "KUBRICKS_TRAINING_MAX_ROWS" in message


def test_a_row_cap_samples_the_label_rows_before_the_memory_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = classification_spec(tmp_path)
    rows = gold_frame(spec, rows=20_000)
    room = memory.peak_bytes(spec, 5_000) / memory.HEADROOM
    monkeypatch.setattr(memory, "available_bytes", lambda: int(room))
    chosen = data.fitting_rows(spec, "gold/buyers@v4", 4_000, seed=0)(rows)
    assert len(chosen) == pytest.approx(4_000, abs=2)
    assert chosen[spec.label].mean() == pytest.approx(rows[spec.label].mean(), abs=0.01)


def test_the_row_cap_comes_from_the_caller_the_setting_or_the_cluster() -> None:
    local = KubricksSettings()
    assert data.row_cap(local) is None
    assert data.row_cap(local, 5_000) == 5_000
    assert data.row_cap(local.model_copy(update={"training_max_rows": 7_000})) == 7_000
    cluster = local.model_copy(update={"spark_mode": "kubernetes"})
    assert data.row_cap(cluster) == data.CLUSTER_TRAINING_ROWS
    assert data.row_cap(cluster, 5_000) == 5_000
