"""`kubricks forget --vacuum` on a lakehouse in a real S3 server: the rows leave the bucket."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from kubricks import storage
from kubricks.cli import app
from kubricks.lakehouse import audit, tables
from kubricks.lakehouse.forget import targets
from kubricks.lakehouse.ingest import ingest, layer_tables
from tests.kubricks.training import datasets
from tests.s3.conftest import S3Server

pytestmark = pytest.mark.slow
KEY = "patient_id"


def test_forget_with_vacuum_removes_the_rows_from_every_table_and_the_bucket(
    spark: SparkSession, s3_server: S3Server, tmp_path: Path
) -> None:
    source, spec = datasets.tumours(tmp_path)
    frame = pd.read_csv(source)
    frame[frame[KEY] <= 200].to_csv(tmp_path / "first.csv", index=False)
    frame[frame[KEY] > 150].to_csv(tmp_path / "second.csv", index=False)  # 151-200 again
    spec_path = tmp_path / "tumours.yaml"
    spec_path.write_text(spec.model_dump_json())
    settings = s3_server.settings(tmp_path / "home")
    options = settings.storage_options()
    ingest(spark, spec, tmp_path / "first.csv", settings)
    ingest(spark, spec, tmp_path / "second.csv", settings)
    keys = list(range(1, 313))
    write_deltalake(
        tables.table_uri(settings.lakehouse_uri, "gold", f"{spec.name}_predictions"),
        pa.table({KEY: pa.array(keys, pa.int64()), "prediction": ["benign"] * len(keys)}),
        storage_options=options,
    )
    write_deltalake(
        tables.table_uri(settings.lakehouse_uri, "gold", f"{spec.name}_inference_log"),
        pa.table({"entity_key": [str(k) for k in keys], "arm": ["champion"] * len(keys)}),
        storage_options=options,
    )
    bronze = layer_tables(spec, settings.lakehouse_uri)["bronze"][1]
    old_bronze = tables.current_version(bronze, options)
    _, prefix = storage.split(settings.lakehouse_uri)
    objects_before = set(s3_server.keys(prefix))

    env = {
        "KUBRICKS_HOME": str(settings.home),
        "KUBRICKS_LAKEHOUSE_ROOT": settings.lakehouse_uri,
        "KUBRICKS_S3_ENDPOINT_URL": s3_server.endpoint,
        "KUBRICKS_S3_ACCESS_KEY_ID": s3_server.access_key,
        "KUBRICKS_S3_SECRET_ACCESS_KEY": s3_server.secret_key,
        "KUBRICKS_TRACKING_URI": "http://127.0.0.1:9",  # no MLflow: the model list is skipped
    }
    args = ["forget", "--usecase", str(spec_path), "--key", "160", "--key", "7"]
    result = CliRunner().invoke(app, [*args, "--reason", "erasure 7", "--vacuum"], env=env)
    assert result.exit_code == 0, result.output

    for target in targets(spec, settings):
        if not tables.exists(target.uri, options):
            continue
        rows = tables.read_arrow(target.uri, storage_options=options).to_pandas()
        column = "entity_key" if target.match == "text" else KEY
        assert not rows[column].astype(str).str.strip().isin({"7", "160"}).any(), target.table
    expected = {
        "bronze/tumours": 200 + 162 - 3,  # 160 arrived in both batches, 7 in one
        "silver/tumours": 310,
        "gold/tumours": 310,
        "gold/tumours_predictions": 310,
        "gold/tumours_inference_log": 310,
    }
    for table, count in expected.items():
        uri = tables.table_uri(settings.lakehouse_uri, *table.split("/"))
        assert tables.read_arrow(uri, storage_options=options).num_rows == count, table

    with pytest.raises(OSError):  # vacuumed: the old version's files left the bucket
        tables.read_arrow(bronze, old_bronze, storage_options=options)
    removed = objects_before - set(s3_server.keys(prefix))
    assert any("/bronze/tumours/part-" in key for key in removed)
    [row] = audit.read(settings, spec.name)
    assert row.action == "forget" and row.reason == "erasure 7"
    assert audit.key_digest(7) in row.detail and '"7"' not in row.detail
