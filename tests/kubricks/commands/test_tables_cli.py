"""`kubricks tables show | history | optimize | vacuum` run as a user runs them: a subprocess
with stdout piped, over a real lakehouse with a predictions table and a registered champion."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest
import yaml
from mlflow import MlflowClient
from pyspark.sql import SparkSession

from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.scoring.batch import score_gold
from kubricks.settings import KubricksSettings
from kubricks.spec import BUNDLED_USECASES
from kubricks.synthetic import write_synthetic
from kubricks.training.search_space import build_pipeline, family_named
from tests.registered import register_model

pytestmark = pytest.mark.slow

NAME = "churn_tables_cli"


@dataclass(frozen=True)
class Lakehouse:
    env: dict[str, str]
    settings: KubricksSettings
    gold_uri: str
    keys: list[int]
    champion: str


@pytest.fixture(scope="module")
def lakehouse(
    spark: SparkSession, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Lakehouse:
    """Gold v0 (a model trained on it is champion), predictions by it, then gold v1."""
    home = tmp_path_factory.mktemp("tables-cli")
    usecases = home / "usecases"
    usecases.mkdir()
    raw = yaml.safe_load((BUNDLED_USECASES / "churn.yaml").read_text())
    (usecases / f"{NAME}.yaml").write_text(yaml.safe_dump({**raw, "name": NAME}))
    settings = KubricksSettings(home=home, tracking_uri=mlflow_server, usecases_dir=usecases)
    from kubricks.spec import load_spec

    spec = load_spec(NAME, usecases)
    ingest(spark, spec, write_synthetic(spec, 300, home / "first.csv", seed=1), settings)
    gold_uri = layer_tables(spec, settings.lakehouse_uri)["gold"][1]
    gold = tables.read_arrow(gold_uri, 0).to_pandas()

    family = family_named("classification", "logistic_regression")
    model = build_pipeline(spec, family, family.defaults, seed=0)
    features = gold[spec.gold_feature_columns()]
    model.fit(features, gold[spec.label])
    version = register_model(model, features, NAME, mlflow_server, alias=None)
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    client.set_model_version_tag(NAME, version, "lineage.gold_table", gold_uri)
    client.set_model_version_tag(NAME, version, "lineage.gold_version", "0")
    client.set_registered_model_alias(NAME, "champion", version)
    score_gold(spark, spec, settings, client=client)
    ingest(spark, spec, write_synthetic(spec, 200, home / "second.csv", seed=2), settings)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KUBRICKS_HOME": str(home),
        "KUBRICKS_TRACKING_URI": mlflow_server,
        "KUBRICKS_USECASES_DIR": str(usecases),
    }
    return Lakehouse(env, settings, gold_uri, gold[spec.entity_key].tolist(), version)


def kubricks(lakehouse: Lakehouse, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kubricks.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=lakehouse.env,
        timeout=300,
        check=False,
    )


def readable(output: str) -> None:
    """Whole cells for a log: no ANSI codes, no cell cut by an ellipsis."""
    assert "\x1b[" not in output and "…" not in output


def test_show_finds_one_customer_s_prediction(lakehouse: Lakehouse) -> None:
    key = lakehouse.keys[7]
    done = kubricks(
        lakehouse,
        "tables",
        "show",
        f"gold/{NAME}_predictions",
        "--where",
        f"CustomerId = {key}",
        "--columns",
        "CustomerId,prediction,probability,model_version,batch_id",
    )
    assert done.returncode == 0, done.stderr
    readable(done.stdout)
    assert f"gold/{NAME}_predictions v0 where CustomerId = {key}: 1 row(s)" in done.stdout
    (row,) = [line for line in done.stdout.splitlines() if str(key) in line and "│" in line]
    assert f"gold-v0-model-v{lakehouse.champion}" in row  # the whole batch id, uncut
    assert "probability" in done.stdout and "Geography" not in done.stdout  # only --columns


def test_show_as_json_lines_and_by_version(lakehouse: Lakehouse) -> None:
    done = kubricks(
        lakehouse,
        "tables",
        "show",
        f"gold/{NAME}",
        "--version",
        "0",
        "--limit",
        "3",
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 3
    assert {r["CustomerId"] for r in rows} <= set(lakehouse.keys)  # version 0: the first batch


def test_show_refuses_sql_that_is_not_an_expression_in_one_line(lakehouse: Lakehouse) -> None:
    for where, part in (
        ("reflect('java.lang.System', 'exit', '1') IS NULL", "function reflect()"),
        ("CustomerId IN (SELECT 1 FROM text.`/etc/passwd`)", "a subquery reading text."),
        ("Nope = 1", "no column 'Nope'"),
    ):
        done = kubricks(lakehouse, "tables", "show", f"gold/{NAME}", "--where", where)
        assert done.returncode == 2
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and part in done.stderr, done.stderr


def test_history_shows_readable_times(lakehouse: Lakehouse) -> None:
    done = kubricks(lakehouse, "tables", "history", f"gold/{NAME}")
    assert done.returncode == 0, done.stderr
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", done.stdout)
    assert not re.search(r"\b\d{13}\b", done.stdout)  # no epoch milliseconds


def test_vacuum_keeps_the_champion_s_gold_version_and_says_so(lakehouse: Lakehouse) -> None:
    refused = kubricks(lakehouse, "tables", "vacuum", f"gold/{NAME}", "--retain-hours", "0")
    assert refused.returncode == 2 and "pass --force" in refused.stderr
    done = kubricks(lakehouse, "tables", "vacuum", f"gold/{NAME}", "--retain-hours", "0", "--force")
    assert done.returncode == 0, done.stderr
    readable(done.stdout)
    kept = rf"gold/{NAME}: kept \d+ file\(s\) that {NAME} v{lakehouse.champion} \(champion\)"
    assert re.search(kept + " was trained on", " ".join(done.stdout.split())), done.stdout
    options = lakehouse.settings.storage_options()
    assert tables.read_arrow(lakehouse.gold_uri, 0, options).num_rows == 300  # the baseline


def test_optimize_says_what_it_did_to_each_table(lakehouse: Lakehouse) -> None:
    done = kubricks(lakehouse, "tables", "optimize")
    assert done.returncode == 0, done.stderr
    readable(done.stdout)
    lines = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert f"bronze/{NAME}" in lines and f"gold/{NAME}_predictions" in lines
    assert "Z-order by CustomerId would let a reader skip nothing" in lines[f"bronze/{NAME}"]
