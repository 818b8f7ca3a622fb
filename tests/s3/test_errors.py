"""A down endpoint or refused credentials: one line naming the endpoint, and no table changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyarrow as pa
import pytest
from pydantic import SecretStr

from kubricks import services, storage
from kubricks.lakehouse import tables
from kubricks.registry import audit
from kubricks.runs import records
from kubricks.settings import KubricksSettings
from tests.conftest import free_port
from tests.s3.conftest import S3Server, run_moto
from tests.s3.test_concurrency import stage_rows


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A moto server that checks credentials (IAM on): one user may use S3, no one else."""
    log = tmp_path_factory.mktemp("moto-auth") / "moto.log"
    # The first three calls (create the user, its policy and its key) need no credentials.
    with run_moto(log, env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as url:
        iam = boto3.client(
            "iam",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="lake")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="lake", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="lake")["AccessKey"]
        server = S3Server(url, "guarded-lake", key["AccessKeyId"], key["SecretAccessKey"])
        server.client().create_bucket(Bucket=server.bucket)
        yield server


def one_line(error: BaseException, endpoint: str, words: str) -> None:
    message = str(error)
    assert "\n" not in message, message
    assert endpoint in message and words in message, message


def every_write(settings: KubricksSettings, staged: tables.StagedFiles) -> dict[str, object]:
    """The lakehouse writes of each part of the platform, as each would make them."""
    options = settings.storage_options()
    record = audit.AuditRecord(
        at=audit.now(),
        actor="t",
        model="m",
        alias="champion",
        from_version=None,
        to_version="1",
        action="promote",
        reason="test",
    )
    run = records.RunRecord(run_id=records.new_run_id(), pipeline="training", parameters={})
    return {
        "commit": lambda: tables.commit(staged, "append", "b2", None, options),
        "exists": lambda: tables.exists(staged.uri, options),
        "audit": lambda: audit.append(settings, record),
        "runs": lambda: records.save(run, settings),
        "list": lambda: tables.list_tables(settings.lakehouse_uri, options),
    }


def seeded(server: S3Server, home: Path) -> tuple[KubricksSettings, tables.StagedFiles, list[str]]:
    """A table at version 0 plus a batch staged for it; returns the keys in the bucket."""
    good = server.settings(home)
    options = good.storage_options()
    uri = tables.table_uri(good.lakehouse_uri, "silver", "accounts")
    tables.commit(
        stage_rows(uri, "part-0", pa.table({"x": [1]}), options), "append", "b1", None, options
    )
    staged = stage_rows(uri, "part-1", pa.table({"x": [2]}), options)
    _, prefix = storage.split(good.lakehouse_uri)
    return good, staged, server.keys(prefix)


def test_refused_credentials_fail_in_one_line_and_change_no_table(
    guarded_server: S3Server, tmp_path: Path
) -> None:
    good, staged, before = seeded(guarded_server, tmp_path)
    for wrong in (
        {"s3_secret_access_key": SecretStr("not-the-secret")},
        {"s3_access_key_id": SecretStr("AKIAUNKNOWN00000"), "s3_secret_access_key": SecretStr("x")},
    ):
        bad = good.model_copy(update=wrong)
        for write in every_write(bad, staged).values():
            with pytest.raises(storage.StorageUnavailable) as failure:
                write()
            one_line(failure.value, guarded_server.endpoint, "refused the credentials")
            assert "KUBRICKS_S3_SECRET_ACCESS_KEY" in str(failure.value)
    _, prefix = storage.split(good.lakehouse_uri)
    assert guarded_server.keys(prefix) == before
    assert tables.current_version(staged.uri, good.storage_options()) == 0


def test_a_down_endpoint_fails_in_one_line_and_changes_no_table(
    s3_server: S3Server, tmp_path: Path
) -> None:
    good, staged, before = seeded(s3_server, tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"
    bad = good.model_copy(update={"s3_endpoint_url": dead})
    for write in every_write(bad, staged).values():
        with pytest.raises(storage.StorageUnavailable) as failure:
            write()
        one_line(failure.value, dead, "not reachable")
    _, prefix = storage.split(good.lakehouse_uri)
    assert s3_server.keys(prefix) == before
    assert tables.current_version(staged.uri, good.storage_options()) == 0


def test_a_missing_bucket_is_named(s3_server: S3Server, tmp_path: Path) -> None:
    settings = s3_server.settings(tmp_path).model_copy(
        update={"lakehouse_root": "s3://no-such-bucket/lake"}
    )
    with pytest.raises(storage.StorageUnavailable) as failure:
        tables.exists(f"{settings.lakehouse_uri}/gold/x", settings.storage_options())
    one_line(failure.value, s3_server.endpoint, "'no-such-bucket' does not exist")


def test_mlflow_server_with_artifacts_on_a_down_endpoint_is_not_started(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = KubricksSettings(
        home=tmp_path,
        mlflow_port=free_port(),
        artifacts_destination="s3://mlflow-artifacts/runs",
        s3_endpoint_url=dead,
        s3_access_key_id=SecretStr("k"),
        s3_secret_access_key=SecretStr("s"),
    )
    with pytest.raises(storage.StorageUnavailable) as failure:
        services.start_mlflow(settings)
    one_line(failure.value, dead, "not reachable")
    assert not services.mlflow_status(settings).running
