"""Spec inference on small frames and real scikit-learn data sets written to CSV, Parquet, JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from kubricks.errors import SourceError, SpecError
from kubricks.spec import UseCaseSpec, load_spec
from kubricks.spec_infer import (
    column_type,
    infer_spec,
    read_sample,
    source_format,
    time_split_safe,
    usecase_name,
)


def infer(frame: pd.DataFrame, label: str, **kwargs):
    options = {"where": "data.csv", "source_path": "/data/data.csv", "fmt": "csv", "name": "t"}
    return infer_spec(frame, label=label, **{**options, **kwargs})


def features(inference) -> dict[str, str]:
    return {f["name"]: f.get("kind", "numeric") for f in inference.spec["features"]}


def columns(inference) -> dict[str, str]:
    return {c["name"]: c["type"] for c in inference.spec["columns"]}


def roundtrip(inference, tmp_path: Path) -> UseCaseSpec:
    path = tmp_path / "spec.yaml"
    path.write_text(inference.yaml())
    return load_spec(path)


def test_diabetes_parquet_is_regression_with_a_generated_key(tmp_path: Path) -> None:
    path = tmp_path / "diabetes.parquet"
    load_diabetes(as_frame=True, scaled=False).frame.to_parquet(path)
    frame, truncated = read_sample(path, source_format(path))

    inference = infer(frame, "target", fmt="parquet", source_path=str(path))
    spec = roundtrip(inference, tmp_path)

    assert not truncated
    assert spec.problem_type == "regression" and spec.metric.primary == "rmse"
    key = spec.column(spec.entity_key)
    assert (key.generated, key.type) == ("row_hash", "string")
    # bmi, s1.. are unique floats: measurements, never taken for a key
    assert [f.name for f in spec.features] == [
        "age",
        "sex",
        "bmi",
        "bp",
        *[f"s{i}" for i in range(1, 7)],
    ]
    assert all(f.kind == "numeric" for f in spec.features)
    assert spec.source.path == str(path) and spec.source.format == "parquet"
    assert [e.name for e in spec.expectations] == ["label_present"]


def test_breast_cancer_csv_is_binary_with_0_1_labels_and_no_positive_class(tmp_path: Path) -> None:
    path = tmp_path / "Breast Cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(path, index=False)
    frame, _ = read_sample(path, "csv")

    inference = infer(frame, "target")
    spec = roundtrip(inference, tmp_path)

    assert usecase_name(path) == "breast_cancer"
    assert spec.problem_type == "classification" and spec.metric.primary == "roc_auc"
    assert spec.positive_class is None
    assert spec.column("target").type == "long"
    assert spec.column("mean radius").type == "double"
    assert len(spec.features) == 30
    choices = {d.subject: d.choice for d in inference.decisions}
    assert choices["positive class"] == "1"


def test_json_lines_keep_their_types_and_a_named_id_is_the_key(tmp_path: Path) -> None:
    iris = load_iris(as_frame=True)
    frame = iris.frame.assign(
        species=iris.target_names[iris.target],
        flower_id=np.arange(1000, 1150),
        checked=[bool(i % 2) for i in range(150)],
    ).drop(columns="target")
    path = tmp_path / "iris.jsonl"
    frame.to_json(path, orient="records", lines=True)
    sample, _ = read_sample(path, source_format(path))

    inference = infer(sample, "species", fmt="json")
    spec = roundtrip(inference, tmp_path)

    assert spec.entity_key == "flower_id" and spec.column("flower_id").type == "long"
    assert spec.problem_type == "classification" and spec.positive_class is None
    assert spec.metric.primary == "f1"  # three classes: macro F1
    assert columns(inference)["checked"] == "boolean"
    assert features(inference)["checked"] == "numeric"
    assert [e.name for e in spec.expectations] == ["key_present", "label_present"]


def test_key_prefers_an_id_name_and_identifiers_are_not_features() -> None:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "RowNumber": [str(i) for i in range(1, n + 1)],
            "CustomerId": [str(v) for v in rng.permutation(np.arange(10_000, 10_000 + n))],
            "Surname": [f"name{i}" for i in range(n)],
            "City": rng.choice(["Paris", "Rome", "Oslo"], n),
            "Balance": [f"{v:.2f}" for v in rng.normal(100, 10, n)],
            "Code": rng.choice(["007", "012", "100"], n),  # leading zeros: text, not numbers
            "Constant": ["x"] * n,
            "Exited": rng.choice(["0", "1"], n),
        }
    )
    inference = infer(frame, "Exited")

    assert inference.spec["entity_key"] == "CustomerId"
    assert features(inference) == {
        "City": "categorical",
        "Balance": "numeric",
        "Code": "categorical",
    }
    assert columns(inference)["Code"] == "string"
    left_out = {d.subject: d.why for d in inference.columns if d.choice == "left out"}
    assert set(left_out) == {"RowNumber", "Surname", "Constant"}
    assert "identifier" in left_out["RowNumber"] and "single value" in left_out["Constant"]


def test_given_key_must_be_a_column_and_duplicates_are_reported() -> None:
    frame = pd.DataFrame(
        {"id": ["1", "1", "2", "3"], "x": ["1.5", "2", "3", "7"], "y": ["0", "1", "0", "1"]}
    )
    with pytest.raises(SourceError, match=r"data.csv: --key 'nope' is not a column"):
        infer(frame, "y", key="nope")
    inference = infer(frame, "y", key="id")
    assert inference.spec["entity_key"] == "id"
    assert "1 repeated" in next(d.why for d in inference.decisions if d.subject == "entity key")


def test_generated_key_name_avoids_existing_columns() -> None:
    frame = pd.DataFrame({"row_key": ["a", "a", "b"], "x": ["1", "2", "2"], "y": ["0", "1", "1"]})
    inference = infer(frame, "y")
    assert inference.spec["entity_key"] == "row_key_1"
    assert inference.spec["columns"][0] == {
        "name": "row_key_1",
        "type": "string",
        "generated": "row_hash",
    }


def test_string_binary_label_needs_positive_class_and_lists_the_values(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"x": [str(i / 2) for i in range(40)], "credit": ["good"] * 30 + ["bad"] * 10}
    )
    with pytest.raises(SpecError) as error:
        infer(frame, "credit")
    message = str(error.value)
    assert "'bad', 'good'" in message and "--positive-class" in message and "\n" not in message
    with pytest.raises(SpecError, match="'meh' is not one of the label's values"):
        infer(frame, "credit", positive_class="meh")

    spec = roundtrip(infer(frame, "credit", positive_class="bad"), tmp_path)
    assert spec.positive_class == "bad" and spec.column("credit").type == "string"


def test_yes_no_labels_stay_text_in_yaml(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [str(i / 2) for i in range(10)], "churn": ["Yes", "No"] * 5})
    inference = infer(frame, "churn", positive_class="Yes")
    assert "positive_class: 'Yes'" in inference.yaml()  # not YAML's boolean yes
    assert roundtrip(inference, tmp_path).positive_class == "Yes"


def test_boolean_and_numeric_binary_labels() -> None:
    flags = pd.DataFrame({"x": np.arange(10.0), "fraud": [True, False] * 5})
    assert infer(flags, "fraud").spec["positive_class"] is True
    assert infer(flags, "fraud", positive_class="false").spec["positive_class"] is False
    grades = pd.DataFrame({"x": np.arange(10.0), "grade": [1, 2] * 5})
    with pytest.raises(SpecError, match="values 1, 2: pass --positive-class"):
        infer(grades, "grade")
    assert infer(grades, "grade", positive_class="2").spec["positive_class"] == 2


def test_multiclass_refuses_positive_class_and_regression_too() -> None:
    frame = pd.DataFrame(
        {"x": np.arange(9.0), "kind": ["a", "b", "c"] * 3, "y": np.arange(9) * 1.5}
    )
    assert "positive_class" not in infer(frame, "kind").spec
    with pytest.raises(SpecError, match="binary labels only"):
        infer(frame, "kind", positive_class="a")
    with pytest.raises(SpecError, match="regression target"):
        infer(frame, "y", positive_class="1")


def test_many_whole_numbers_are_regression_and_few_are_classes() -> None:
    frame = pd.DataFrame(
        {"x": np.arange(200.0), "count": np.arange(200) % 50, "stars": np.arange(200) % 5}
    )
    assert infer(frame, "count").spec["problem_type"] == "regression"
    stars = infer(frame, "stars").spec
    assert stars["problem_type"] == "classification" and stars["metric"]["primary"] == "f1"


def daily(days: int = 120, classes: bool = False) -> pd.DataFrame:
    dates = pd.date_range("2025-01-01", periods=days, freq="D")
    label = (dates.dayofweek >= 5).astype(int) if classes else np.arange(days) * 1.0 + 3
    return pd.DataFrame(
        {"day": dates.strftime("%Y-%m-%d"), "store": ["a", "b"] * (days // 2), "sales": label}
    )


def test_a_date_column_is_the_event_time_a_datetime_feature_and_allows_a_time_split(
    tmp_path: Path,
) -> None:
    inference = infer(daily(), "sales")
    spec = roundtrip(inference, tmp_path)
    assert spec.column("day").type == "date"
    assert spec.event_timestamp == "day" and spec.split == "time"
    assert features(inference)["day"] == "datetime"
    assert "event_time_present" in [e.name for e in spec.expectations]


def test_time_split_is_refused_when_the_latest_period_lacks_a_class() -> None:
    frame = daily(classes=True)
    frame.loc[frame.index >= 90, "sales"] = 0  # no positive in the last month
    inference = infer(frame, "sales")
    assert inference.spec["event_timestamp"] == "day" and inference.spec["split"] == "random"
    why = next(d.why for d in inference.decisions if d.subject == "split")
    assert "class 1 is absent" in why


def test_time_split_needs_complete_and_varied_times() -> None:
    times = pd.Series(pd.to_datetime(["2025-01-01"] * 5 + ["2025-01-02"] * 5))
    labels = pd.Series([0, 1] * 5)
    assert time_split_safe(times, labels, "classification") == (
        False,
        "only 2 distinct event times",
    )
    assert not time_split_safe(times.where(times.index > 0), labels, "classification")[0]


def test_two_unnamed_date_columns_give_no_event_time() -> None:
    frame = daily().assign(opened=lambda f: f["day"], closed=lambda f: f["day"]).drop(columns="day")
    inference = infer(frame, "sales")
    assert "event_timestamp" not in inference.spec and inference.spec["split"] == "random"
    assert features(inference)["opened"] == "datetime"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", " 2 ", ""], "long"),
        (["1.5", "2", "NaN"], "double"),
        (["TRUE", "false"], "boolean"),
        (["2025-01-01", "2025-12-31"], "date"),
        (["2025-01-01 10:00:00", "2025-01-02T11:30"], "timestamp"),
        (["1", "NA"], "string"),  # 'NA' would not cast: ingest would quarantine the row
        (["2025-13-45"], "string"),
        ([None, None], "string"),
    ],
)
def test_text_columns_get_the_type_every_value_casts_to(values: list, expected: str) -> None:
    assert column_type(pd.Series(values, dtype=object)) == expected


def test_bad_input_is_one_line_naming_the_file_or_column(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match=r"empty.csv: file is empty"):
        read_sample(empty, "csv")
    header = tmp_path / "header.csv"
    header.write_text("a,b\n")
    with pytest.raises(SourceError, match=r"header.csv: file has no rows"):
        infer(read_sample(header, "csv")[0], "a", where=str(header))
    with pytest.raises(SourceError, match=r"only one column \('a'\)"):
        infer(pd.DataFrame({"a": ["1", "2"]}), "a")
    with pytest.raises(SourceError, match=r"data.csv: label 'z' is not a column \(columns: a, b\)"):
        infer(pd.DataFrame({"a": ["1"], "b": ["2"]}), "z")
    with pytest.raises(SourceError, match=r"suffix '.xlsx'"):
        source_format(tmp_path / "book.xlsx")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"a": 1},\n{"a": 2}]\n')
    with pytest.raises(SourceError, match=r"broken.json: cannot be read as JSON Lines"):
        read_sample(broken, "json")


def test_a_sample_of_a_large_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    pd.DataFrame({"x": np.arange(50) / 2, "y": np.arange(50) % 2}).to_csv(path, index=False)
    frame, truncated = read_sample(path, "csv", rows=20)
    assert len(frame) == 20 and truncated
    inference = infer(frame, "y", truncated=True)
    assert inference.decisions[0].subject == "sample"


def test_written_yaml_is_plain_and_complete() -> None:
    inference = infer(daily(), "sales")
    raw = yaml.safe_load(inference.yaml())
    assert list(raw)[:4] == ["name", "description", "source", "columns"]
    assert raw == inference.spec
