"""`kubricks spec infer` as a user runs it: infer, then ingest and train the spec unedited."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from typer.testing import CliRunner

from kubricks.cli import app
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec


@pytest.fixture(scope="module", autouse=True)
def _stop_spark() -> Iterator[None]:
    """`kubricks ingest` starts Spark in this process; stop it with the module."""
    yield
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_infer_writes_a_valid_spec_and_explains_it(tmp_path: Path) -> None:
    source = tmp_path / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(source, index=False)
    out = tmp_path / "specs" / "cancer.yaml"

    result = run(
        "spec", "infer", "--source", str(source), "--label", "target", "--output", str(out)
    )

    spec = load_spec(out)
    assert spec.name == "cancer" and spec.problem_type == "classification"
    for said in ("entity key", "generated", "classification", "roc_auc", "numeric features"):
        assert said in result.output
    again = CliRunner().invoke(
        app, ["spec", "infer", "--source", str(source), "--label", "target", "--output", str(out)]
    )
    assert again.exit_code != 0 and "already exists" in str(again.exception)


@pytest.mark.parametrize(
    ("content", "label", "message"),
    [
        ("", "y", "file is empty"),
        ("only\n1\n2\n", "only", "only one column ('only')"),
        ("a,b\n1,2\n", "c", "label 'c' is not a column (columns: a, b)"),
        (
            "x,y\n1.5,bad\n2.5,good\n",
            "y",
            "binary with values 'bad', 'good': pass --positive-class",
        ),
    ],
)
def test_bad_input_is_one_red_line(tmp_path: Path, content: str, label: str, message: str) -> None:
    source = tmp_path / "data.csv"
    source.write_text(content)
    completed = subprocess.run(
        [
            *(sys.executable, "-c", "from kubricks.cli import main; main()", "spec", "infer"),
            *("--source", str(source), "--label", label, "--output", str(tmp_path / "s.yaml")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert message in completed.stderr and str(source) in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.yaml").exists()


@pytest.mark.slow
def test_inferred_specs_ingest_and_train_without_edits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: str
) -> None:
    monkeypatch.setenv("KUBRICKS_HOME", str(tmp_path / "home"))
    cancer = tmp_path / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(cancer, index=False)
    diabetes = tmp_path / "diabetes.parquet"
    load_diabetes(as_frame=True, scaled=False).frame.to_parquet(diabetes)

    for source, label, primary in ((cancer, "target", "roc_auc"), (diabetes, "target", "rmse")):
        spec_path = tmp_path / f"{source.stem}.yaml"
        run("spec", "infer", "--source", str(source), "--label", label, "--output", str(spec_path))
        spec = load_spec(spec_path)
        assert spec.column(spec.entity_key).generated == "row_hash"

        run("ingest", "--usecase", str(spec_path))
        gold_uri = layer_tables(spec, KubricksSettings().lakehouse_uri)["gold"][1]
        gold = tables.read_arrow(gold_uri).to_pandas()
        assert len(gold) == len(
            pd.read_csv(cancer) if source == cancer else pd.read_parquet(diabetes)
        )
        assert gold[spec.entity_key].str.fullmatch(r"[0-9a-f]{16}").all()

        trained = run(
            "train", "--usecase", str(spec_path), "--max-trials", "2", "--budget-minutes", "1"
        )
        assert "Best of 2 trials" in trained.output and primary in trained.output


@pytest.mark.slow
def test_inferred_spec_with_a_date_and_an_id_ingests_with_the_event_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training on datetime features is tested in test_calendar_features.py; ingest is here."""
    monkeypatch.setenv("KUBRICKS_HOME", str(tmp_path / "home"))
    days = pd.date_range("2025-01-01", periods=140, freq="D")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "order_id": rng.permutation(np.arange(5000, 5140)),
            "day": days.strftime("%Y-%m-%d"),
            "channel": rng.choice(["web", "shop"], len(days)),
            "sales": 100 + 30 * (days.dayofweek >= 5) + rng.normal(0, 5, len(days)),
        }
    )
    source = tmp_path / "orders.json"
    frame.to_json(source, orient="records", lines=True)
    spec_path = tmp_path / "orders.yaml"
    run("spec", "infer", "--source", str(source), "--label", "sales", "--output", str(spec_path))
    spec = load_spec(spec_path)
    assert (spec.entity_key, spec.event_timestamp, spec.split) == ("order_id", "day", "time")
    assert {f.name: f.kind for f in spec.features} == {"day": "datetime", "channel": "categorical"}

    run("ingest", "--usecase", str(spec_path))

    gold_uri = layer_tables(spec, KubricksSettings().lakehouse_uri)["gold"][1]
    gold = tables.read_arrow(gold_uri).to_pandas().set_index("order_id").sort_index()
    expected = frame.set_index("order_id").sort_index()
    assert len(gold) == 140
    assert (gold["event_timestamp"].dt.strftime("%Y-%m-%d") == expected["day"]).all()
    assert np.allclose(gold["sales"], expected["sales"])


def wine_frame() -> pd.DataFrame:
    """Wine as a user's CSV: an id, the measurements, the cultivar as text."""
    data = load_wine(as_frame=True)
    frame = data.data.rename(columns=lambda c: c.replace("/", "_"))
    frame.insert(0, "lot", [f"L{i:03d}" for i in range(len(frame))])
    return frame.assign(cultivar=data.target.map(dict(enumerate(data.target_names))))


def check(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """`kubricks spec check ...` as a user runs it: the console script, stdout piped."""
    kubricks = str(Path(sys.executable).with_name("kubricks"))
    return subprocess.run(
        [kubricks, "spec", "check", *args],
        env={**os.environ, "KUBRICKS_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_spec_check_names_missing_and_extra_columns(tmp_path: Path) -> None:
    source = tmp_path / "wine.csv"
    wine_frame().drop(columns=["hue"]).assign(notes="ok").to_csv(source, index=False)
    spec = tmp_path / "wine.yaml"
    run("spec", "infer", "--source", str(source), "--label", "cultivar", "--output", str(spec))
    wine_frame().drop(columns=["proline"]).to_csv(source, index=False)  # the data moved on

    done = check(str(spec), home=tmp_path / "home")

    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Spec wine.yaml against {source}:"
    assert (
        "error   column 'proline': declared but not in wine.csv: ingest fails (it is required)"
        in lines
    )
    assert (
        "error   column 'notes': declared but not in wine.csv: ingest fails (it is required)"
        in lines
    )
    assert "warning column 'hue': in wine.csv but not declared: ingest leaves it out" in lines
    assert len(lines) == 4  # the heading and one line per finding
    assert done.stderr == "error: wine.yaml: 2 problem(s) would stop ingest or training\n"


@pytest.mark.slow
def test_spec_check_finds_what_ingest_and_training_would_do(tmp_path: Path) -> None:
    frame = wine_frame()
    frame["magnesium"] = frame["magnesium"].astype(int).astype(str)
    frame.loc[:9, "magnesium"] = "n/a"  # 10 values a typed column cannot hold
    source = tmp_path / "wine.csv"
    frame.to_csv(source, index=False)
    spec = tmp_path / "wine.yaml"
    run("spec", "infer", "--source", str(source), "--label", "cultivar", "--output", str(spec))
    raw = yaml.safe_load(spec.read_text())
    next(c for c in raw["columns"] if c["name"] == "magnesium")["type"] = "int"
    raw["positive_class"] = "class_0"  # three classes have no single positive one
    raw["expectations"] += [
        {"name": "strong", "expr": "alcohol > 14", "action": "quarantine"},
        {"name": "typo", "expr": "alcohool > 1", "action": "warn"},
    ]
    spec.write_text(yaml.safe_dump(raw))

    done = check(str(spec), "--source", str(source), home=tmp_path / "home")

    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Spec wine.yaml against {source} (178 rows):"
    findings = lines[1:]
    assert (
        "warning column 'magnesium': 10 of 178 values are not a valid int:"
        " those rows go to quarantine" in findings
    )
    strong = [f for f in findings if f.startswith("warning expectation 'strong' (alcohol > 14)")]
    assert len(strong) == 1 and "most rows quarantined" in strong[0]
    typo = [f for f in findings if f.startswith("error   expectation 'typo': Spark cannot")]
    assert len(typo) == 1 and "alcohool" in typo[0]
    (label,) = [f for f in findings if f.startswith("error   label 'cultivar':")]
    assert "positive_class" in label
    assert len(findings) == 4, findings
    assert done.stderr == "error: wine.yaml: 2 problem(s) would stop ingest or training\n"
    assert "Setting default log level" not in done.stdout + done.stderr  # Spark: in the log
    assert (
        "Setting default log level" in (tmp_path / "home" / "logs" / "spec-check.log").read_text()
    )
