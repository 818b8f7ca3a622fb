"""Which data the demo ingests: synthetic rows when the spec can make them, else the user's."""

from __future__ import annotations

import pytest

from kubricks.commands.demo import SYNTHETIC, demo_source
from kubricks.errors import KubricksError
from kubricks.spec import load_spec
from tests.serving.specs import dataset


def test_the_bundled_use_case_runs_on_synthetic_rows() -> None:
    assert demo_source(load_spec("churn"), None) == SYNTHETIC


def test_a_spec_without_generators_runs_on_its_own_file() -> None:
    spec, _, _ = dataset("iris")
    with_file = spec.model_copy(update={"source": spec.source.model_copy(update={"path": "x.csv"})})
    assert demo_source(with_file, None) == ""  # the pipeline reads the spec's source
    assert demo_source(with_file, "other.parquet") == "other.parquet"


def test_a_spec_with_no_data_at_all_asks_for_a_source() -> None:
    spec, _, _ = dataset("iris")
    with pytest.raises(KubricksError, match="'iris'.*--source PATH"):
        demo_source(spec, None)
    with pytest.raises(KubricksError, match="'iris' has no synthetic section"):
        demo_source(spec, SYNTHETIC)
