"""A real S3 API server for the object-storage tests: ``moto_server`` on 127.0.0.1.

Not an in-process mock: delta-rs, pyarrow, boto3 and the MLflow server all talk
HTTP to it exactly as they would to SeaweedFS or MinIO in the cluster.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest

from kubricks.settings import KubricksSettings
from tests.conftest import free_port

ACCESS_KEY = "kubricks-test-key"
SECRET_KEY = "kubricks-test-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    def client(self, access_key: str | None = None, secret_key: str | None = None):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
        )

    def settings(self, home: Path, prefix: str | None = None, **extra: object) -> KubricksSettings:
        """Settings whose lakehouse is a fresh prefix of the bucket."""
        prefix = prefix or f"lake-{uuid.uuid4().hex[:8]}"
        values: dict[str, object] = {
            "home": home,
            "lakehouse_root": f"s3://{self.bucket}/{prefix}",
            "s3_endpoint_url": self.endpoint,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
            "s3_timeout_seconds": 5,
            **extra,
        }
        return KubricksSettings(**values)

    def keys(self, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]


@contextlib.contextmanager
def run_moto(log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start ``moto_server`` on a free port, wait until it answers, stop it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {process.returncode}; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{url}/moto-api/", timeout=1.0)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not answer at {url}; see {log}")
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3 API server with one bucket for the session; each test uses its own prefix."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with run_moto(log) as url:
        server = S3Server(endpoint=url, bucket="kubricks-lake")
        server.client().create_bucket(Bucket=server.bucket)
        yield server
