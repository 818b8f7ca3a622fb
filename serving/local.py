"""A local `bentoml serve` process for one use case: start, wait until ready, stop.

Used by `kubricks serve`, the demo, the tests and the benchmark. The server runs in its
own process group (pid file ``<home>/run/serving-<usecase>.pid``) so stopping it also
stops BentoML's worker processes.
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

from kubricks.errors import KubricksError
from kubricks.services import run_dir
from kubricks.settings import KubricksSettings
from serving.build import REPO, Runtime, server_env


@dataclass(frozen=True)
class LocalServer:
    url: str
    pid: int
    log: Path


def url(settings: KubricksSettings, port: int | None = None) -> str:
    return f"http://{settings.serving_host}:{port or settings.serving_port}"


def pid_file(settings: KubricksSettings, usecase: str) -> Path:
    return run_dir(settings) / f"serving-{usecase}.pid"


def command(settings: KubricksSettings, port: int) -> list[str]:
    bentoml = Path(sys.executable).with_name("bentoml")
    return [
        str(bentoml),
        "serve",
        "serving.entry:Kubricks",
        "--host",
        settings.serving_host,
        "--port",
        str(port),
    ]


def ready(base: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def start(
    settings: KubricksSettings,
    runtime: Runtime,
    port: int | None = None,
    timeout: float = 120.0,
    extra_env: dict[str, str] | None = None,
) -> LocalServer:
    """Start the server in the background and return once /readyz says a model is loaded."""
    port = port or settings.serving_port
    base = url(settings, port)
    if ready(base):
        raise KubricksError(f"{base} already serves: stop it or pick another --port")
    log = run_dir(settings) / f"serving-{runtime.spec.name}.log"
    env = {**server_env(settings, runtime), **(extra_env or {})}
    with log.open("ab") as out:
        process = subprocess.Popen(
            command(settings, port),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(REPO),
            start_new_session=True,
        )
    pid_file(settings, runtime.spec.name).write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise KubricksError(f"the Bento server exited with {process.returncode}; see {log}")
        if ready(base, timeout=1.0):
            return LocalServer(base, process.pid, log)
        time.sleep(0.3)
    stop(settings, runtime.spec.name)
    raise KubricksError(f"the Bento server was not ready at {base} in {timeout:.0f}s; see {log}")


def stop(settings: KubricksSettings, usecase: str, timeout: float = 30.0) -> bool:
    """SIGTERM the server's process group (workers flush the inference log), then wait."""
    path = pid_file(settings, usecase)
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    path.unlink(missing_ok=True)
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True
