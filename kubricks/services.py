"""Local platform services as background child processes under ``KUBRICKS_HOME``.

Each service has a pid file and a log file in ``<home>/run``. ``up`` is a no-op for a
healthy service, cleans a stale pid file left by a crash, and waits for health.

The home is the user's alone (0700; the CLI's umask makes the files in it 0600), and no
secret is ever put on a command line, where ``ps`` shows it to every local user: the
database URL reaches MLflow in its environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from kubricks.errors import ServiceUnavailable
from kubricks.settings import KubricksSettings

BACKEND_STORE_ENV = "MLFLOW_BACKEND_STORE_URI"  # `mlflow server --backend-store-uri`'s envvar


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str
    pid: int | None
    running: bool
    healthy: bool
    note: str = ""


def home_dir(settings: KubricksSettings) -> Path:
    """``KUBRICKS_HOME``, created private (0700): it holds data, logs and credentials."""
    path = settings.home.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def run_dir(settings: KubricksSettings) -> Path:
    path = home_dir(settings) / "run"
    path.mkdir(exist_ok=True, mode=0o700)
    return path


def _pid_file(settings: KubricksSettings, name: str) -> Path:
    return run_dir(settings) / f"{name}.pid"


def process_alive(pid: int) -> bool:
    """Whether ``pid`` still runs: a child of ours that exited is reaped, and a zombie (exited,
    not yet reaped by its parent) counts as gone, so a stop waits only for real work."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False  # our own child, now reaped
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _read_pid(settings: KubricksSettings, name: str) -> int | None:
    path = _pid_file(settings, name)
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def backend_store_uri(settings: KubricksSettings) -> str:
    """SQLite under home, or the database URL (with its password) when one is set."""
    if settings.database_url:
        return settings.database_url.get_secret_value()
    return f"sqlite:///{settings.home.expanduser().resolve() / 'mlflow.db'}"


def mlflow_command(settings: KubricksSettings) -> list[str]:
    """The tracking server; its backend store comes from the environment (see above)."""
    artifacts = artifacts_destination(settings)
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--serve-artifacts",
        "--artifacts-destination",
        artifacts,
        "--host",
        settings.mlflow_host,
        "--port",
        str(settings.mlflow_port),
        "--workers",
        "2",
    ]


def artifacts_destination(settings: KubricksSettings) -> str:
    """Where the server keeps artifacts: the setting, else beside an s3:// lakehouse, else home.

    With an object-store lakehouse the artifacts go to the same bucket (``<root>/_mlflow``
    is outside every table folder), so nothing of a run stays on the machine's disk.
    """
    from kubricks.storage import is_s3

    if settings.artifacts_destination:
        return settings.artifacts_destination
    if is_s3(settings.lakehouse_uri):
        return f"{settings.lakehouse_uri}/_mlflow"
    return str(settings.home.expanduser().resolve() / "mlartifacts")


def webhook_key(settings: KubricksSettings) -> str:
    """The Fernet key MLflow encrypts webhook secrets with, kept under home (owner-only).

    Without one, each server worker invents its own key and stored secrets become
    unreadable by the other worker and after a restart.
    """
    from cryptography.fernet import Fernet

    path = run_dir(settings) / "webhook-secret.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode())
    return path.read_text().strip()


def mlflow_environment(settings: KubricksSettings) -> dict[str, str]:
    """The server's environment on top of ours: the backend store, keys, S3 credentials."""
    from kubricks.storage import mlflow_server_environment

    env = {
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        BACKEND_STORE_ENV: backend_store_uri(settings),
    }
    if "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY" not in os.environ:
        env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] = webhook_key(settings)
    if settings.mlflow_webhook_allow_local:
        env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] = "http,https"
        env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] = "true"
    env.update(mlflow_server_environment(settings, artifacts_destination(settings)))
    return env


def _artifact_options(settings: KubricksSettings) -> dict[str, str]:
    """S3 options for an s3:// artifact store when the lakehouse itself is a local folder."""
    return settings.model_copy(update={"lakehouse_root": "s3://artifacts"}).storage_options() or {}


def mlflow_url(settings: KubricksSettings) -> str:
    return f"http://{settings.mlflow_host}:{settings.mlflow_port}"


def mlflow_status(settings: KubricksSettings) -> ServiceStatus:
    url = mlflow_url(settings)
    pid = _read_pid(settings, "mlflow")
    running = pid is not None and process_alive(pid)
    note = "stale pid file" if pid is not None and not running else ""
    return ServiceStatus("mlflow", url, pid if running else None, running, healthy(url), note)


def start_mlflow(settings: KubricksSettings, timeout: float = 90.0) -> ServiceStatus:
    """Start the tracking server unless it already runs; return once it answers /health."""
    status = mlflow_status(settings)
    if status.running and status.healthy:
        return status
    if status.healthy and not status.running:
        raise ServiceUnavailable(
            f"port {settings.mlflow_port} already serves an MLflow server Kubricks did not start;"
            " stop it or set KUBRICKS_MLFLOW_PORT"
        )
    _pid_file(settings, "mlflow").unlink(missing_ok=True)  # stale or absent
    from kubricks.storage import check, is_s3

    destination = artifacts_destination(settings)
    if is_s3(destination):  # fail in one line now, not on the first artifact upload
        check(destination, settings.storage_options() or _artifact_options(settings))
    env = {**os.environ, **mlflow_environment(settings)}
    with (run_dir(settings) / "mlflow.log").open("ab") as log:
        process = subprocess.Popen(
            mlflow_command(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    _pid_file(settings, "mlflow").write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _pid_file(settings, "mlflow").unlink(missing_ok=True)
            raise ServiceUnavailable(
                f"MLflow server exited with code {process.returncode};"
                f" see {run_dir(settings) / 'mlflow.log'}"
            )
        if healthy(mlflow_url(settings), timeout=1.0):
            return mlflow_status(settings)
        time.sleep(0.5)
    stop_mlflow(settings)
    raise ServiceUnavailable(
        f"MLflow server did not answer at {mlflow_url(settings)} in"
        f" {timeout:.0f}s; see {run_dir(settings) / 'mlflow.log'}"
    )


def stop_mlflow(settings: KubricksSettings, timeout: float = 20.0) -> bool:
    """Stop the server's whole process group; True if something was stopped."""
    pid = _read_pid(settings, "mlflow")
    _pid_file(settings, "mlflow").unlink(missing_ok=True)
    if pid is None or not process_alive(pid):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process_alive(pid):
        time.sleep(0.2)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    if process_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    return True
