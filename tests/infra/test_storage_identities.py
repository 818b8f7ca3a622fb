"""Each workload's S3 identity, as the program writes SeaweedFS's ``s3.json``, checked against
a real SeaweedFS: every identity can do its job and is refused the other buckets."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.s3.conftest import S3Server, create_bucket, run_seaweedfs

BUCKETS = ("lakehouse", "mlflow", "pipelines")


@pytest.fixture(scope="module")
def identities() -> dict[str, tuple[str, str]]:
    from kubricks_infra.storage import IDENTITY_ACTIONS

    return {n: (f"{n}{secrets.token_hex(6)}", secrets.token_hex(20)) for n in IDENTITY_ACTIONS}


@pytest.fixture(scope="module")
def store(
    identities: dict[str, tuple[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from kubricks_infra.storage import s3_identities

    config = s3_identities(identities)["identities"]
    with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs"), config) as url:
        admin = identities["admin"]
        for bucket in BUCKETS:  # what the bucket Job does, with the admin identity
            create_bucket(S3Server(url, bucket, *admin))
            S3Server(url, bucket, *admin).client().put_object(Bucket=bucket, Key="seed", Body=b"")
        yield url


def can(url: str, keys: tuple[str, str], action: str, bucket: str) -> bool:
    client = S3Server(url, bucket, *keys).client()
    try:
        if action == "write":
            client.put_object(Bucket=bucket, Key="probe/x", Body=b"1")
        elif action == "read":
            client.list_objects_v2(Bucket=bucket)
            client.get_object(Bucket=bucket, Key="seed")
        elif action == "delete":
            client.delete_object(Bucket=bucket, Key="probe/x")
        elif action == "create":
            client.create_bucket(Bucket=f"new-{secrets.token_hex(3)}")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDenied", exc.response
        return False
    return True


@pytest.mark.parametrize(
    ("identity", "allowed"),
    [
        ("mlflow", {("write", "mlflow"), ("read", "mlflow"), ("delete", "mlflow")}),
        ("pipelines", {("write", "lakehouse"), ("read", "lakehouse"), ("delete", "lakehouse")}),
        # the Bento appends its inference log to the lakehouse; it never sees MLflow's bucket
        ("serving", {("write", "lakehouse"), ("read", "lakehouse"), ("delete", "lakehouse")}),
    ],
)
def test_each_identity_reaches_only_its_buckets(
    store: str, identities: dict[str, tuple[str, str]], identity: str, allowed: set
) -> None:
    keys = identities[identity]
    for bucket in BUCKETS:
        for action in ("write", "read", "delete"):
            assert can(store, keys, action, bucket) == ((action, bucket) in allowed), (
                identity,
                action,
                bucket,
            )
    assert not can(store, keys, "create", "lakehouse")  # only the admin makes buckets
    assert can(store, identities["admin"], "create", "lakehouse")


def test_no_workload_can_touch_model_artifacts_but_mlflow(
    identities: dict[str, tuple[str, str]], store: str, tmp_path: Path
) -> None:
    """Models reach clients through MLflow's artifact proxy only: a stolen pipeline or
    Bento key cannot plant a file where the loaders read models from."""
    for identity in ("pipelines", "serving"):
        client = S3Server(store, "mlflow", *identities[identity]).client()
        with pytest.raises(ClientError, match="AccessDenied"):
            client.put_object(Bucket="mlflow", Key="artifacts/1/model/model.skops", Body=b"x")
