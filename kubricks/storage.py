"""Object storage for an ``s3://`` lakehouse: delta-rs options, clients, a fast endpoint check.

Every S3 consumer (delta-rs, pyarrow for Spark's staged files, boto3, the MLflow
server) is configured from the same delta-rs option dict, which
``KubricksSettings.storage_options()`` builds, so one set of ``KUBRICKS_S3_*``
settings reaches them all.

Delta commits on S3 use conditional put (``If-None-Match: *`` on the log entry): of two
writers racing for one table version exactly one wins and the other gets a commit
conflict, with no lock service and never an unsafe rename.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from kubricks.errors import ServiceUnavailable
from kubricks.settings import (
    S3_ACCESS_KEY,
    S3_ENDPOINT,
    S3_REGION,
    S3_SCHEMES,
    S3_SECRET_KEY,
    S3_TIMEOUT,
    KubricksSettings,
)

_reachable: set[tuple[str, str, str]] = set()  # (endpoint, bucket, credentials digest) checked


class StorageUnavailable(ServiceUnavailable):
    """The object store is down, refuses the credentials, or lacks the bucket."""


def is_s3(uri: str) -> bool:
    return uri.startswith(S3_SCHEMES)


def split(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → (``bucket``, ``a/b``)."""
    parts = urlsplit(uri)
    return parts.netloc, parts.path.strip("/")


def fs_path(uri: str) -> str:
    """The path pyarrow's S3FileSystem uses for a URI: ``bucket/key``."""
    bucket, key = split(uri)
    return f"{bucket}/{key}" if key else bucket


def s3a(uri: str) -> str:
    """The same object as Hadoop's S3A connector names it."""
    return "s3a://" + uri.split("://", 1)[1] if is_s3(uri) else uri


def endpoint(options: dict[str, str] | None) -> str:
    """The endpoint errors name: the configured URL, or AWS's default."""
    return (options or {}).get(S3_ENDPOINT) or "https://s3.amazonaws.com"


def _seconds(options: dict[str, str]) -> float:
    return float(options.get(S3_TIMEOUT, "10s").rstrip("s"))


def filesystem(options: dict[str, str] | None) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem with the lakehouse's endpoint and credentials."""
    options = options or {}
    kwargs: dict[str, object] = {
        "region": options.get(S3_REGION, "us-east-1"),
        "connect_timeout": _seconds(options),
        "request_timeout": _seconds(options),
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=2),
    }
    if options.get(S3_ENDPOINT):
        parts = urlsplit(options[S3_ENDPOINT])
        kwargs["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        kwargs["scheme"] = parts.scheme or "https"
    if options.get(S3_ACCESS_KEY):
        kwargs["access_key"] = options[S3_ACCESS_KEY]
        kwargs["secret_key"] = options.get(S3_SECRET_KEY, "")
    return pafs.S3FileSystem(**kwargs)


def client(options: dict[str, str] | None):  # -> botocore S3 client
    """A boto3 S3 client for the same store; no retries, so a dead endpoint fails fast."""
    import boto3
    from botocore.config import Config

    options = options or {}
    seconds = _seconds(options)
    return boto3.client(
        "s3",
        endpoint_url=options.get(S3_ENDPOINT) or None,
        region_name=options.get(S3_REGION, "us-east-1"),
        aws_access_key_id=options.get(S3_ACCESS_KEY) or None,
        aws_secret_access_key=options.get(S3_SECRET_KEY) or None,
        config=Config(
            connect_timeout=seconds,
            read_timeout=seconds,
            retries={"max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )


def check(uri: str, options: dict[str, str] | None) -> None:
    """Fail in one line naming the endpoint when the store is down or refuses us.

    Called before anything is read or written, so a bad endpoint never leaves a table
    half-changed; a success is remembered for the rest of the process.
    """
    if not is_s3(uri):
        return
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    bucket, _ = split(uri)
    url = endpoint(options)
    secret = f"{(options or {}).get(S3_ACCESS_KEY, '')}:{(options or {}).get(S3_SECRET_KEY, '')}"
    key = (url, bucket, hashlib.sha256(secret.encode()).hexdigest())
    if key in _reachable:
        return
    try:
        client(options).head_bucket(Bucket=bucket)
    except EndpointConnectionError as exc:
        raise StorageUnavailable(
            f"S3 endpoint {url} is not reachable ({type(exc).__name__}): start the object store"
            " or fix KUBRICKS_S3_ENDPOINT_URL; nothing was read or written"
        ) from exc
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "")) or "error"
        if code in ("404", "NoSuchBucket"):
            raise StorageUnavailable(
                f"S3 endpoint {url}: bucket {bucket!r} does not exist; create it first"
            ) from exc
        if code in ("400", "401", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise StorageUnavailable(
                f"S3 endpoint {url} refused the credentials for bucket {bucket!r} (HTTP {code}):"
                " check KUBRICKS_S3_ACCESS_KEY_ID and KUBRICKS_S3_SECRET_ACCESS_KEY;"
                " nothing was read or written"
            ) from exc
        raise StorageUnavailable(f"S3 endpoint {url}: bucket {bucket!r}: {code}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(
            f"S3 endpoint {url} is not reachable ({type(exc).__name__}); nothing was read or"
            " written"
        ) from exc
    _reachable.add(key)


def upload(files: Iterable[Path], prefix_uri: str, options: dict[str, str] | None) -> None:
    """Copy local files into ``prefix_uri/<file name>`` (Spark's staged Parquet)."""
    fs = filesystem(options)
    base = fs_path(prefix_uri)
    local = pafs.LocalFileSystem()
    for path in files:
        pafs.copy_files(
            str(path),
            f"{base}/{path.name}",
            source_filesystem=local,
            destination_filesystem=fs,
        )


def download(uris: list[str], folder: Path, options: dict[str, str] | None) -> list[str]:
    """Local copies of immutable data files (Delta never rewrites one), reused when present."""
    fs = filesystem(options)
    folder.mkdir(parents=True, exist_ok=True)
    local = pafs.LocalFileSystem()
    paths = []
    for uri in uris:
        name = hashlib.sha1(uri.encode()).hexdigest()[:16] + "-" + uri.rsplit("/", 1)[-1]
        target = folder / name
        if target.exists():
            target.touch()  # in use: keep it out of prune()'s reach
        else:
            partial = target.with_suffix(".partial")
            pafs.copy_files(
                fs_path(uri), str(partial), source_filesystem=fs, destination_filesystem=local
            )
            partial.rename(target)
        paths.append(str(target))
    return paths


def prune(folder: Path, older_than_seconds: float) -> list[Path]:
    """Delete entries of a scratch folder untouched for a while; returns what was removed.

    Staged copies of a failed run (or of a table a re-run skipped) and snapshot copies
    no longer read would otherwise pile up; anything in use is fresh, so it stays.
    """
    import shutil
    import time

    if not folder.is_dir():
        return []
    cutoff = time.time() - older_than_seconds
    removed = []
    for entry in folder.iterdir():
        if entry.stat().st_mtime < cutoff:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def list_keys(uri: str, options: dict[str, str] | None) -> list[str]:
    """Every object key under ``uri`` (tests and diagnostics: what really is in the bucket)."""
    bucket, prefix = split(uri)
    paginator = client(options).get_paginator("list_objects_v2")
    keys: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def spark_conf(settings: KubricksSettings) -> dict[str, str]:
    """Spark settings for the chosen transport; the tables module reads them back.

    ``copy``: Spark touches only local files; ``s3a``: Hadoop's S3A connector (the
    cluster image's jars) talks to the same endpoint, credentials from the standard
    ``AWS_*`` environment variables (the Secret), never written into Spark's conf.
    """
    scratch = settings.home.expanduser().resolve() / "spark" / "objectstore"
    conf = {
        "spark.kubricks.s3.transport": settings.spark_s3_transport,
        "spark.kubricks.s3.scratch": str(scratch),
    }
    if settings.spark_s3_transport == "s3a":
        conf.update(
            {
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.endpoint.region": settings.s3_region,
                "spark.hadoop.fs.s3a.aws.credentials.provider": (
                    "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
                ),
            }
        )
        if settings.s3_endpoint_url:
            parts = urlsplit(settings.s3_endpoint_url)
            conf["spark.hadoop.fs.s3a.endpoint"] = settings.s3_endpoint_url
            conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
                parts.scheme == "https"
            ).lower()
    return conf


def mlflow_server_environment(settings: KubricksSettings, destination: str) -> dict[str, str]:
    """What the MLflow server process needs to proxy artifacts into an s3:// destination.

    Only the server holds the credentials: clients upload through its
    ``mlflow-artifacts:`` proxy, so training steps never see them.
    """
    if not is_s3(destination):
        return {}
    env = {"AWS_DEFAULT_REGION": settings.s3_region}
    if settings.s3_endpoint_url:
        env["MLFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    if settings.s3_access_key_id:
        env["AWS_ACCESS_KEY_ID"] = settings.s3_access_key_id.get_secret_value()
    if settings.s3_secret_access_key:
        env["AWS_SECRET_ACCESS_KEY"] = settings.s3_secret_access_key.get_secret_value()
    return env
