"""The use-case spec: validation errors name the field, and the bundled spec loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubricks.errors import SpecError
from kubricks.spec import BUNDLED_USECASES, Feature, load_spec


def _churn_raw() -> dict:
    return yaml.safe_load((BUNDLED_USECASES / "churn.yaml").read_text())


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_bundled_churn_spec_loads_with_categories_the_model_encodes() -> None:
    spec = load_spec("churn")
    assert spec.entity_key == "CustomerId"
    assert spec.label == "Exited"
    geography = next(f for f in spec.categorical_features() if f.name == "Geography")
    assert geography.categories == ["France", "Spain", "Germany"]
    assert geography.model_encoding == "one_hot"


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


def test_categorical_encodings_belong_to_categorical_features() -> None:
    from pydantic import ValidationError

    assert Feature(name="city", kind="categorical").model_encoding == "one_hot"
    assert Feature(name="city", kind="categorical", encoding="passthrough").model_encoding == (
        "one_hot"
    )
    assert Feature(name="city", kind="categorical", encoding="ordinal").model_encoding == (
        "ordinal"
    )
    with pytest.raises(ValidationError, match="ordinal encoding applies to categorical"):
        Feature(name="age", encoding="ordinal")
    with pytest.raises(ValidationError, match="categories apply to categorical"):
        Feature(name="age", categories=["a"])
    with pytest.raises(ValidationError, match="duplicate categories"):
        Feature(name="city", kind="categorical", categories=["a", "a"])


def test_gold_holds_the_raw_feature_columns() -> None:
    spec = load_spec("churn")
    assert spec.gold_feature_columns() == [f.name for f in spec.features]
    assert "Geography" in spec.gold_feature_columns()
    assert not any(c.startswith("Geography_") for c in spec.gold_feature_columns())


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


def _with_feed(**cdc: object) -> dict:
    raw = _churn_raw()
    raw["columns"] += [{"name": "op", "type": "string"}, {"name": "seq", "type": "long"}]
    raw["cdc"] = {"operation_column": "op", "sequence_column": "seq", **cdc}
    return raw


def test_a_change_feed_section_defaults_and_reads_its_values_as_text(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, _with_feed(delete_values=[2], upsert_values=[0, 1])))
    assert spec.cdc is not None
    assert (spec.cdc.delete_values, spec.cdc.upsert_values) == (["2"], ["0", "1"])
    assert load_spec(_write(tmp_path, _with_feed())).cdc.operations() == ["D", "I", "U"]
    assert load_spec("churn").cdc is None  # without it, ingest behaves as before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"operation_column": "nope"}, "cdc.operation_column: 'nope' is not one of the declared"),
        (
            {"sequence_column": "Age"},
            "cdc.sequence_column: 'Age' is the key, the label or a feature",
        ),
        ({"delete_values": ["U"]}, "'U' is both a delete and an upsert value"),
        ({"delete_values": []}, "cdc.delete_values"),
    ],
)
def test_a_change_feed_section_is_checked(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(_write(tmp_path, _with_feed(**change)))
