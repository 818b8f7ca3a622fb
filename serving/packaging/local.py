"""A local `bentoml serve` process for one use case: start, wait until ready, list, stop.

Used by `kubricks serve`, `kubricks status`, the demo, the tests and the benchmark. Each
server leaves ``<home>/run/serving-<usecase>.pid`` and a ``.json`` beside it (URL, log).

Stopping is what a supervisor does: SIGTERM to the server process only. BentoML's arbiter
(circus) then stops its workers gracefully: each stops accepting, finishes the requests in
flight, runs the service's shutdown hook (which commits the queued inference-log rows)
and exits; the arbiter exits 0 after them. Anything of the process group still alive
after the timeout is killed, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from kubricks.errors import KubricksError
from kubricks.services import process_alive, run_dir
from kubricks.settings import KubricksSettings

if TYPE_CHECKING:
    from serving.request.bento_config import BentoConfig

PREFIX = "serving-"


@dataclass(frozen=True)
class LocalServer:
    url: str
    pid: int
    log: Path | None


@dataclass(frozen=True)
class ServerStatus:
    """A server this home started, as `kubricks status` shows it."""

    usecase: str
    url: str
    pid: int
    running: bool
    versions: dict[str, Any]  # {"champion": "3", "challenger": None} from the server itself


def url(settings: KubricksSettings, port: int | None = None) -> str:
    return f"http://{settings.serving_host}:{port or settings.serving_port}"


def pid_file(settings: KubricksSettings, usecase: str) -> Path:
    return run_dir(settings) / f"{PREFIX}{usecase}.pid"


def _state_file(settings: KubricksSettings, usecase: str) -> Path:
    return run_dir(settings) / f"{PREFIX}{usecase}.json"


def command(settings: KubricksSettings, port: int) -> list[str]:
    bentoml = Path(sys.executable).with_name("bentoml")
    return [
        str(bentoml),
        "serve",
        "serving.request.entry:Kubricks",
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


def _record(settings: KubricksSettings, usecase: str, server: LocalServer) -> None:
    pid_file(settings, usecase).write_text(str(server.pid))
    state = {"usecase": usecase, "url": server.url, "pid": server.pid, "log": str(server.log)}
    _state_file(settings, usecase).write_text(json.dumps(state))


def _forget(settings: KubricksSettings, usecase: str) -> None:
    pid_file(settings, usecase).unlink(missing_ok=True)
    _state_file(settings, usecase).unlink(missing_ok=True)


def start(
    settings: KubricksSettings,
    runtime: BentoConfig,
    port: int | None = None,
    timeout: float = 120.0,
    extra_env: dict[str, str] | None = None,
) -> LocalServer:
    """Start the server in the background and return once /readyz says a model is loaded."""
    from serving.packaging.build import REPO, server_env

    port = port or settings.serving_port
    base = url(settings, port)
    if ready(base):
        raise KubricksError(
            f"{base} already serves: stop it (`kubricks serve --stop`) or pick another --port"
        )
    log = run_dir(settings) / f"{PREFIX}{runtime.spec.name}.log"
    env = {**server_env(settings, runtime), **(extra_env or {})}
    with log.open("ab") as out:
        process = subprocess.Popen(
            command(settings, port),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(REPO),
            start_new_session=True,
        )
    server = LocalServer(base, process.pid, log)
    _record(settings, runtime.spec.name, server)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _forget(settings, runtime.spec.name)
            raise KubricksError(f"the Bento server exited with {process.returncode}; see {log}")
        if ready(base, timeout=1.0):
            return server
        time.sleep(0.3)
    stop(settings, runtime.spec.name)
    raise KubricksError(f"the Bento server was not ready at {base} in {timeout:.0f}s; see {log}")


def exec_foreground(settings: KubricksSettings, runtime: BentoConfig, port: int) -> None:
    """Replace this process with the server, so the supervisor's SIGTERM (or Ctrl+C) reaches
    BentoML's arbiter directly and the exit status is the server's. Never returns."""
    from serving.packaging.build import REPO, server_env

    env = server_env(settings, runtime)
    argv = command(settings, port)
    _record(settings, runtime.spec.name, LocalServer(url(settings, port), os.getpid(), None))
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(REPO)
    os.execve(argv[0], argv, env)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def stop(settings: KubricksSettings, usecase: str, timeout: float = 30.0) -> bool:
    """SIGTERM the server (its arbiter drains the workers), wait for its whole process
    group, kill whatever outlives ``timeout``. True if a running server was stopped."""
    pid = _read_pid(pid_file(settings, usecase))
    _forget(settings, usecase)
    if pid is None or not process_alive(pid):
        return False
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return False
    own_group = group == pid  # a background server leads its own session
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid) and not (own_group and _group_alive(group)):
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        if own_group:
            os.killpg(group, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    return True


def servers(settings: KubricksSettings) -> list[ServerStatus]:
    """Every server this home started and that still runs, with the versions it serves."""
    found = []
    for path in sorted(run_dir(settings).glob(f"{PREFIX}*.pid")):
        usecase = path.stem.removeprefix(PREFIX)
        pid = _read_pid(path)
        if pid is None or not process_alive(pid):
            _forget(settings, usecase)  # a crash or a foreground server that ended
            continue
        try:
            state = json.loads(_state_file(settings, usecase).read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        base = state.get("url") or url(settings)
        found.append(ServerStatus(usecase, base, pid, True, served_versions(base)))
    return found


def served_versions(base: str, timeout: float = 2.0) -> dict[str, Any]:
    """The versions a running server answers with (empty while it is still loading)."""
    try:
        answer = httpx.get(f"{base}/admin/model", timeout=timeout)
    except httpx.HTTPError:
        return {}
    if answer.status_code != 200:
        return {}
    versions = answer.json().get("versions")
    return versions if isinstance(versions, dict) else {}


def stop_all(settings: KubricksSettings, timeout: float = 30.0) -> list[str]:
    """Stop every server this home started; the use cases whose server was stopped."""
    stopped = []
    for path in sorted(run_dir(settings).glob(f"{PREFIX}*.pid")):
        usecase = path.stem.removeprefix(PREFIX)
        if stop(settings, usecase, timeout):
            stopped.append(usecase)
    return stopped
