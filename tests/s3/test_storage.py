"""Settings → every S3 consumer: delta-rs options, Spark's transport, the MLflow server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import SecretStr

from kubricks import services, storage
from kubricks.lakehouse import tables
from kubricks.settings import KubricksSettings
from tests.s3.conftest import S3Server
from tests.s3.test_concurrency import stage_rows


def s3_settings(tmp_path: Path, **extra: object) -> KubricksSettings:
    return KubricksSettings(
        home=tmp_path,
        lakehouse_root="s3://lake/prod/",
        s3_endpoint_url="http://seaweedfs.kubricks:8333",
        s3_access_key_id=SecretStr("AKIA-TEST"),
        s3_secret_access_key=SecretStr("s3cr3t"),
        **extra,
    )


def test_local_lakehouse_has_no_storage_options(tmp_path: Path) -> None:
    assert KubricksSettings(home=tmp_path).storage_options() is None


def test_delta_options_use_conditional_put_never_unsafe_rename(tmp_path: Path) -> None:
    options = s3_settings(tmp_path).storage_options()
    assert options is not None
    assert options["aws_conditional_put"] == "etag"
    assert not any("UNSAFE_RENAME" in key.upper() or "LOCKING" in key.upper() for key in options)
    assert options["AWS_ENDPOINT_URL"] == "http://seaweedfs.kubricks:8333"
    assert options["AWS_ACCESS_KEY_ID"] == "AKIA-TEST"
    assert options["AWS_ALLOW_HTTP"] == "true"
    assert options["timeout"] == "10s"  # a dead store fails in seconds, not minutes


def test_spark_copy_transport_keeps_spark_off_s3(tmp_path: Path) -> None:
    conf = storage.spark_conf(s3_settings(tmp_path))
    assert conf["spark.kubricks.s3.transport"] == "copy"
    assert Path(conf["spark.kubricks.s3.scratch"]).is_relative_to(tmp_path.resolve())
    assert not any(key.startswith("spark.hadoop.fs.s3a") for key in conf)


def test_spark_s3a_transport_points_s3a_at_the_endpoint_without_secrets(tmp_path: Path) -> None:
    conf = storage.spark_conf(s3_settings(tmp_path, spark_s3_transport="s3a"))
    assert conf["spark.kubricks.s3.transport"] == "s3a"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://seaweedfs.kubricks:8333"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert (
        "EnvironmentVariableCredentialsProvider"
        in conf["spark.hadoop.fs.s3a.aws.credentials.provider"]
    )
    assert "s3cr3t" not in " ".join(conf.values())  # credentials come from the Secret's env
    assert storage.s3a("s3://lake/prod/gold/x/part-1") == "s3a://lake/prod/gold/x/part-1"


def test_mlflow_server_stores_artifacts_beside_an_s3_lakehouse(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    command = services.mlflow_command(settings)
    assert command[command.index("--artifacts-destination") + 1] == "s3://lake/prod/_mlflow"
    env = storage.mlflow_server_environment(settings, services.artifacts_destination(settings))
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://seaweedfs.kubricks:8333"
    assert env["AWS_ACCESS_KEY_ID"] == "AKIA-TEST"
    assert env["AWS_SECRET_ACCESS_KEY"] == "s3cr3t"
    explicit = settings.model_copy(update={"artifacts_destination": "s3://other/mlflow"})
    assert services.artifacts_destination(explicit) == "s3://other/mlflow"
    local = KubricksSettings(home=tmp_path)
    assert services.artifacts_destination(local) == str(tmp_path.resolve() / "mlartifacts")
    assert storage.mlflow_server_environment(local, services.artifacts_destination(local)) == {}


def test_downloaded_snapshot_files_are_reused(s3_server: S3Server, tmp_path: Path) -> None:
    """Delta data files are immutable, so Spark's local copies are fetched once."""
    options = s3_server.settings(tmp_path).storage_options()
    uri = f"s3://{s3_server.bucket}/reuse-{tmp_path.name}/part-0.parquet"
    pq.write_table(
        pa.table({"x": [1, 2]}), storage.fs_path(uri), filesystem=storage.filesystem(options)
    )
    [first] = storage.download([uri], tmp_path / "copies", options)
    bucket, key = storage.split(uri)
    s3_server.client().delete_object(Bucket=bucket, Key=key)  # a second fetch would now fail
    [again] = storage.download([uri], tmp_path / "copies", options)
    assert again == first
    assert pq.read_table(again)["x"].to_pylist() == [1, 2]


def test_tables_in_the_bucket_are_listed(s3_server: S3Server, tmp_path: Path) -> None:
    settings = s3_server.settings(tmp_path)
    options = settings.storage_options()
    for layer, name in (("gold", "wine"), ("_meta", "ingest_runs"), ("silver", "wine")):
        uri = tables.table_uri(settings.lakehouse_uri, layer, name)
        tables.commit(
            stage_rows(uri, "part-0", pa.table({"x": [1]}), options), "append", "b", None, options
        )
    stray = f"{storage.fs_path(settings.lakehouse_uri)}/gold/not_a_table/file.txt"
    with storage.filesystem(options).open_output_stream(stray) as out:
        out.write(b"not delta")
    assert tables.list_tables(settings.lakehouse_uri, options) == [
        "_meta/ingest_runs",
        "gold/wine",
        "silver/wine",
    ]


def test_prune_removes_only_stale_scratch_entries(tmp_path: Path) -> None:
    stale, fresh = tmp_path / "crashed-run", tmp_path / "running"
    for folder in (stale, fresh):
        (folder / "part-0").mkdir(parents=True)
        (folder / "part-0" / "a.parquet").write_bytes(b"x")
    old = time.time() - 2 * 86400
    os.utime(stale, (old, old))
    assert storage.prune(tmp_path, 86400) == [stale]
    assert not stale.exists() and (fresh / "part-0" / "a.parquet").exists()
    assert storage.prune(tmp_path / "absent", 86400) == []
