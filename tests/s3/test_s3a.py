"""The cluster's Spark transport, ``s3a``, against SeaweedFS: Spark writes and reads the
tables' files through Hadoop's S3A connector, delta-rs commits them.

It needs ``hadoop-aws`` and the AWS SDK v2 bundle, which PySpark does not ship and the project
image carries. ``scripts/cluster-s3a.sh`` fetches them from Maven Central at the versions the
Dockerfile uses and runs this module with ``KUBRICKS_S3A_JARS`` naming them; without it, the
module is skipped (the ``copy`` transport's tests cover the same code paths on the same servers).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables, resolve_source
from kubricks.registry.gate import register_and_gate
from kubricks.scoring.batch import score_gold
from kubricks.settings import KubricksSettings
from kubricks.spark import get_spark
from kubricks.spec import UseCaseSpec
from kubricks.training.automl import train
from tests.kubricks.training.specs import classification_spec
from tests.s3.conftest import S3Server, create_bucket, run_seaweedfs

JARS = os.environ.get("KUBRICKS_S3A_JARS", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not JARS, reason="needs the s3a jars: bash scripts/cluster-s3a.sh fetches them and runs it"
    ),
]


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as url:
        server = S3Server(endpoint=url, bucket="lakehouse")
        create_bucket(server)
        yield server


@pytest.fixture(scope="module")
def settings(
    seaweedfs: S3Server, tmp_path_factory: pytest.TempPathFactory, mlflow_server: str
) -> KubricksSettings:
    return seaweedfs.settings(
        tmp_path_factory.mktemp("s3a-home"),
        prefix="s3a",
        spark_s3_transport="s3a",
        tracking_uri=mlflow_server,
    )


@pytest.fixture(scope="module")
def s3a_spark(seaweedfs: S3Server, settings: KubricksSettings) -> Iterator[SparkSession]:
    """A session with the jars on its classpath and the S3A settings Kubricks derives; the
    connector reads the keys from the environment, as the cluster's pods get them."""
    saved = {
        k: os.environ.get(k)
        for k in ("PYSPARK_SUBMIT_ARGS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    os.environ["PYSPARK_SUBMIT_ARGS"] = f"--jars {JARS} pyspark-shell"
    os.environ["AWS_ACCESS_KEY_ID"] = seaweedfs.access_key
    os.environ["AWS_SECRET_ACCESS_KEY"] = seaweedfs.secret_key
    assert SparkSession.getActiveSession() is None, "run this module in a process of its own"
    session = get_spark(settings, "kubricks-s3a")
    try:
        assert tables.transport(session) == "s3a"
        yield session
    finally:
        session.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> UseCaseSpec:
    return classification_spec(tmp_path_factory.mktemp("spec"), name="s3a_buyers")


def test_ingest_and_batch_scoring_write_through_s3a(
    s3a_spark: SparkSession,
    seaweedfs: S3Server,
    settings: KubricksSettings,
    spec: UseCaseSpec,
) -> None:
    options = settings.storage_options()
    source = resolve_source(spec, "synthetic", settings, rows=400, seed=3)
    result = ingest(s3a_spark, spec, source, settings)
    _, gold_uri = layer_tables(spec, settings.lakehouse_uri)["gold"]
    gold = tables.read_arrow(gold_uri, storage_options=options)
    assert gold.num_rows == result.tables["gold"].rows == 400
    # Spark itself read the silver table back through s3a:// to build gold
    assert tables.read_spark(s3a_spark, gold_uri, storage_options=options).count() == 400

    trained = train(spec, settings, budget_minutes=0.5, max_trials=1, seed=1, progress=False)
    decision = register_and_gate(spec, settings, trained)
    assert decision.passed, decision
    scored = score_gold(s3a_spark, spec, settings)
    predictions = tables.read_arrow(scored.uri, storage_options=options)
    assert predictions.num_rows == 400
    assert set(predictions["model_version"].to_pylist()) == {decision.version}

    keys = seaweedfs.keys("s3a/")
    data = [
        k
        for k in keys
        if k.startswith(f"s3a/gold/{spec.name}_predictions/") and k.endswith(".parquet")
    ]
    assert data, "the predictions' files are not in the bucket"
    scratch = tables.scratch(s3a_spark) / "staging"
    assert not scratch.exists() or list(scratch.iterdir()) == [], "s3a staged through the disk"


def test_two_spark_writers_race_for_one_version_and_one_wins(
    s3a_spark: SparkSession, settings: KubricksSettings
) -> None:
    """Two overwrites staged through s3a from the same snapshot: SeaweedFS's conditional put
    lets exactly one log entry land; the loser fails cleanly and leaves no rows behind."""
    options = settings.storage_options()
    uri = tables.table_uri(settings.lakehouse_uri, "gold", "s3a_race")
    first = s3a_spark.createDataFrame([(0,)], "x long")
    tables.commit(tables.stage(first, uri, options), "overwrite", "r0", None, options)

    staged = {
        name: tables.stage(s3a_spark.createDataFrame([(value,)] * 2, "x long"), uri, options)
        for name, value in (("a", 1), ("b", 2))
    }
    assert all(s.folder.startswith("s3a://") for s in staged.values())
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def commit(name: str) -> None:
        barrier.wait()
        try:
            outcomes[name] = tables.commit(staged[name], "overwrite", f"r-{name}", None, options)
        except Exception as exc:  # inspected below
            outcomes[name] = exc

    threads = [threading.Thread(target=commit, args=(n,)) for n in staged]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    won = [n for n, v in outcomes.items() if v == 1]
    lost = [n for n, v in outcomes.items() if isinstance(v, tables.ConcurrentCommit)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    rows = tables.read_arrow(uri, storage_options=options)["x"].to_pylist()
    assert rows == [{"a": 1, "b": 2}[won[0]]] * 2
    assert not tables.has_batch(uri, f"r-{lost[0]}", options)


def test_jars_are_the_dockerfiles() -> None:
    """The jars this ran with are the versions the image carries."""
    import re

    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    names = {Path(j).name for j in JARS.split(",")}
    hadoop = re.search(r"ARG HADOOP_AWS_VERSION=([\d.]+)", dockerfile).group(1)
    assert f"hadoop-aws-{hadoop}.jar" in names
    assert any(n.startswith("bundle-2.") for n in names)
