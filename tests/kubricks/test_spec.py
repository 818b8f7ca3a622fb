"""The use-case spec: validation errors name the field, and the bundled spec loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubricks.errors import SpecError
from kubricks.spec import BUNDLED_USECASES, load_spec, one_hot_column


def _churn_raw() -> dict:
    return yaml.safe_load((BUNDLED_USECASES / "churn.yaml").read_text())


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_bundled_churn_spec_loads_with_one_hot_features() -> None:
    spec = load_spec("churn")
    assert spec.entity_key == "CustomerId"
    assert spec.label == "Exited"
    assert "Geography_Germany" in spec.gold_feature_columns()
    assert "Geography" not in spec.gold_feature_columns()


def test_unknown_name_lists_the_available_specs() -> None:
    with pytest.raises(SpecError, match="available: .*churn"):
        load_spec("nope")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(label="Missing"), "label: 'Missing' is not one of the declared"),
        (lambda r: r.update(problem_type="ranking"), "problem_type"),
        (lambda r: r["expectations"][0].update(action="explode"), "expectations.0.action"),
        (lambda r: r["features"].append({"name": "Exited"}), "is the key or the label"),
        (lambda r: r.update(surprise=1), "surprise"),
    ],
)
def test_invalid_spec_names_the_field(tmp_path: Path, mutate, message: str) -> None:
    raw = _churn_raw()
    mutate(raw)
    with pytest.raises(SpecError, match=message) as info:
        load_spec(_write(tmp_path, raw))
    assert str(tmp_path / "spec.yaml") in str(info.value)


def test_malformed_yaml_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)


def test_one_hot_column_names_are_identifiers() -> None:
    assert one_hot_column("city", "New York-2") == "city_New_York_2"
    assert one_hot_column("x", "") == "x_blank"


def test_monitoring_section_has_defaults_and_checks_its_fields() -> None:
    import pytest
    from pydantic import ValidationError

    from kubricks.spec import Monitoring, load_spec

    spec = load_spec("churn")
    assert spec.monitoring == Monitoring()  # old specs stay valid
    assert spec.monitoring.granularity == "auto" and spec.monitoring.persistence_k == 2
    raw = spec.model_dump()
    raw["monitoring"] = {"slices": ["Nope"]}
    with pytest.raises(ValidationError, match="monitoring.slices: 'Nope'"):
        type(spec).model_validate(raw)
    with pytest.raises(ValidationError, match="persistence_k"):
        Monitoring(persistence_k=4, persistence_n=3)
