"""A clean stop, as a supervisor does it: SIGTERM under load loses no acknowledged request.

`kubricks serve` runs as a user (or Kubernetes, or systemd) starts it: the real console
script in a subprocess, two workers, stdout piped. The inference log commits only at
shutdown here (a flush interval of 10 minutes), so every acknowledged request found in it
was committed by the drain that SIGTERM started. Afterwards no process of the server
may remain and the port must be closed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from deltalake import DeltaTable
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kubricks.settings import KubricksSettings
from serving.packaging import local
from serving.request.inference_log import log_uri
from tests.conftest import free_port
from tests.serving.conftest import Load
from tests.serving.models import log_and_register
from tests.serving.specs import dataset

pytestmark = pytest.mark.slow
KUBRICKS = str(Path(sys.executable).with_name("kubricks"))
SPEC, FEATURES, LABEL = dataset("breast_cancer")
SPEC = SPEC.model_copy(update={"name": "cancer_stop"})
ROWS = [{"id": i, **FEATURES.iloc[i].to_dict()} for i in range(3)]
READY_SECONDS = 600  # two workers importing the stack on a loaded 2-core machine


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clean-stop")


@pytest.fixture(scope="module")
def settings(home: Path, mlflow_server: str) -> KubricksSettings:
    return KubricksSettings(
        home=home,
        tracking_uri=mlflow_server,
        serving_port=free_port(),
        serving_workers=2,
        serving_poll_seconds=0,
        inference_log_flush_seconds=600,
    )


@pytest.fixture(scope="module")
def spec_file(home: Path, settings: KubricksSettings) -> Path:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    log_and_register(model.fit(FEATURES, LABEL), FEATURES, SPEC.name, settings)
    path = home / f"{SPEC.name}.yaml"
    path.write_text(yaml.safe_dump(SPEC.model_dump(mode="json")))
    return path


@pytest.fixture(scope="module")
def env(settings: KubricksSettings) -> dict[str, str]:
    return {
        **os.environ,
        "KUBRICKS_HOME": str(settings.home),
        "KUBRICKS_TRACKING_URI": settings.resolved_tracking_uri,
        "KUBRICKS_SERVING_PORT": str(settings.serving_port),
        "KUBRICKS_SERVING_WORKERS": "2",
        "KUBRICKS_SERVING_POLL_SECONDS": "0",
        "KUBRICKS_INFERENCE_LOG_FLUSH_SECONDS": "600",
        "KUBRICKS_START_TIMEOUT_SECONDS": str(READY_SECONDS),
    }


def wait_ready(base: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"kubricks serve exited with {process.returncode}: {output}")
        if local.ready(base, timeout=1.0):
            return
        time.sleep(0.5)
    raise AssertionError(f"{base} not ready in {READY_SECONDS}s")


def server_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


def still_running(processes: list[psutil.Process]) -> list[str]:
    shown = []
    for process in alive(processes):
        try:
            shown.append(f"{process.pid} {' '.join(process.cmdline()[:4])}")
        except psutil.NoSuchProcess:
            continue
    return shown


def logged_request_ids(settings: KubricksSettings) -> set[str]:
    return set(DeltaTable(log_uri(SPEC, settings)).to_pandas()["request_id"])


def acknowledged(load: Load) -> list[dict]:
    answered = [body for status, body in load.replies if status == 200]
    assert answered, "no request was answered before the stop"
    assert {status for status, _ in load.replies} <= {200, 0, 503}, load.replies[-5:]
    return answered


@pytest.fixture()
def cleanup(settings: KubricksSettings) -> Iterator[None]:
    yield
    local.stop_all(settings, timeout=10)  # only matters when an assertion failed midway


def test_sigterm_to_kubricks_serve_drains_and_leaves_nothing(
    settings: KubricksSettings, spec_file: Path, env: dict[str, str], cleanup: None
) -> None:
    base = local.url(settings)
    serve = subprocess.Popen(
        [KUBRICKS, "serve", "--usecase", str(spec_file)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_ready(base, serve)
    tree = server_tree(serve.pid)
    assert len(still_running(tree)) >= 3  # the server and its two workers

    with Load(base, {"rows": ROWS}) as load:
        time.sleep(2.0)
        serve.send_signal(signal.SIGTERM)  # what Kubernetes sends PID 1
        code = serve.wait(timeout=120)
        time.sleep(0.5)  # the load meets a closed port

    try:
        output, _ = serve.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # an orphan of the server still holds the pipe
        output = "(stdout held open after kubricks serve exited)"
    left = still_running(tree)
    for process in alive(tree):  # an orphaned server would keep answering: stop it
        process.kill()
    assert code == 0, output
    assert left == []
    answered = acknowledged(load)
    assert {a["request_id"] for a in answered} <= logged_request_ids(settings)
    assert not local.ready(base)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/livez", timeout=2)


def test_background_server_is_listed_then_stopped_by_serve_stop(
    settings: KubricksSettings, spec_file: Path, env: dict[str, str], cleanup: None
) -> None:
    base = local.url(settings)
    before = logged_request_ids(settings) if Path(log_uri(SPEC, settings)).exists() else set()
    started = subprocess.run(
        [KUBRICKS, "serve", "--usecase", str(spec_file), "--background"],
        env=env,
        capture_output=True,
        text=True,
        timeout=READY_SECONDS + 60,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    assert "kubricks serve --stop --usecase cancer_stop" in started.stdout
    tree = server_tree(int(local.pid_file(settings, SPEC.name).read_text()))

    status = subprocess.run(
        [KUBRICKS, "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stderr
    listed = [line for line in status.stdout.splitlines() if SPEC.name in line]
    assert len(listed) == 1 and "v1" in listed[0] and base in listed[0], status.stdout

    with Load(base, {"rows": ROWS}) as load:
        time.sleep(2.0)
        stop = subprocess.run(  # no use case: every background server of this home
            [KUBRICKS, "serve", "--stop"], env=env, capture_output=True, text=True, timeout=120
        )
        time.sleep(0.5)

    assert stop.returncode == 0, stop.stderr
    assert f"Stopped the server of {SPEC.name}." in stop.stdout
    answered = acknowledged(load)
    ids = {a["request_id"] for a in answered}
    assert ids <= logged_request_ids(settings) - before
    assert still_running(tree) == []
    assert not local.ready(base)
    assert local.servers(settings) == []


def test_predict_answers_through_the_cli_without_importing_the_stack(
    settings: KubricksSettings, spec_file: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """`kubricks predict` is a thin HTTP client: no pandas, Spark, MLflow, Feast or BentoML."""
    from tests.kubricks.commands.test_startup import HEAVY, imported

    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps(ROWS))
    base = local.url(settings)
    server = subprocess.run(
        [KUBRICKS, "serve", "--usecase", str(spec_file), "--background"],
        env=env,
        capture_output=True,
        text=True,
        timeout=READY_SECONDS + 60,
    )
    assert server.returncode == 0, server.stdout + server.stderr
    try:
        done, modules = imported(["predict", "--usecase", str(spec_file), "--json", str(rows)], env)
    finally:
        local.stop(settings, SPEC.name)
    answer = json.loads(done.stdout)
    assert [p["model_version"] for p in answer["predictions"]] == ["1"] * len(ROWS)
    assert not modules & HEAVY, sorted(modules & HEAVY)
    assert not local.ready(base)
