"""The cluster acceptance workflow: schema-valid, valid shell, and every command it calls exists
with the options it passes; the names it relies on are the ones the program creates."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from tests.infra.conftest import Recorded, unwrap

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "cluster-acceptance.yml"
EXPRESSION = re.compile(r"\$\{\{[^}]*\}\}")


def _workflow() -> dict[str, Any]:
    return YAML(typ="safe").load(WORKFLOW.read_text())


def _steps() -> list[dict[str, Any]]:
    return _workflow()["jobs"]["acceptance"]["steps"]


def _scripts() -> list[str]:
    return [step["run"] for step in _steps() if "run" in step]


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(tool), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_workflow_matches_the_github_actions_schema(tmp_path: Path) -> None:
    result = _check_jsonschema(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(
        WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04")
    )
    assert _check_jsonschema(broken).returncode != 0  # the schema check is live


def test_workflow_shape() -> None:
    wf = _workflow()
    assert set(wf["on"]) == {"workflow_dispatch", "schedule"}
    assert wf["permissions"] == {"contents": "read"}
    job = wf["jobs"]["acceptance"]
    assert job["timeout-minutes"] <= 90
    for step in job["steps"]:
        if "uses" in step:
            action, _, ref = step["uses"].partition("@")
            assert re.fullmatch(r"v\d+(\.\d+)*", ref), f"{action} is not pinned to a release"
    names = [s["name"] for s in job["steps"]]
    assert names.index("Run the training pipeline on Kubeflow Pipelines") < names.index(
        "One HTTP prediction"
    )
    assert job["steps"][-1]["if"] == "always()" and "pulumi destroy" in job["steps"][-1]["run"]


def test_every_script_is_valid_bash() -> None:
    for script in _scripts():
        text = EXPRESSION.sub("x", script)
        result = subprocess.run(["bash", "-n", "-c", text], capture_output=True, text=True)
        assert result.returncode == 0, f"{script[:60]}: {result.stderr}"


def _invocations(prefix: str) -> list[list[str]]:
    calls = []
    for script in _scripts():
        for line in script.splitlines():
            line = line.strip()
            if line.startswith(prefix):
                calls.append(shlex.split(line.split("|")[0])[1:])
    return calls


def test_kubricks_commands_exist_with_their_options() -> None:
    from kubricks.cli import app

    calls = _invocations(".venv/bin/kubricks ")
    assert {tuple(c[:2]) for c in calls} == {("stack", "settings"), ("run", "training")}
    runner = CliRunner()
    for args in calls:
        command = [a for a in args[:2] if not a.startswith("-")]
        if command[0] == "run":
            command = ["run"]  # `training` is the pipeline argument
        help_text = runner.invoke(app, [*command, "--help"], terminal_width=200).output
        assert "Usage" in help_text, command
        for option in (a for a in args if a.startswith("--")):
            assert option in help_text, f"kubricks {' '.join(command)} has no {option}"
    # and the pipeline it runs is one the catalog knows
    from pipelines import catalog

    assert catalog.canonical("training") == "training"


def test_python_helpers_exist_with_their_options() -> None:
    calls = _invocations(".venv/bin/python ")
    assert {c[0] for c in calls} == {"infra/ci/wait_for_run.py", "infra/ci/predict.py"}
    for args in calls:
        script = REPO / args[0]
        help_text = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60
        ).stdout
        for option in (a for a in args[1:] if a.startswith("--")):
            assert option in help_text, f"{args[0]} has no {option}"


def test_files_and_settings_it_relies_on_exist() -> None:
    from kubricks.commands.stack import OUTPUTS_TO_ENV_KEYS

    text = WORKFLOW.read_text()
    assert "bash scripts/bootstrap.sh" in text and (REPO / "scripts" / "bootstrap.sh").exists()
    assert "working-directory: infra" in text and (REPO / "infra" / "Pulumi.yaml").exists()
    used = set(re.findall(r"\$(KUBRICKS_[A-Z_]+)", text))
    assert used and used <= set(OUTPUTS_TO_ENV_KEYS)


def test_names_it_waits_for_are_what_the_program_creates(program: Recorded) -> None:
    import yaml

    text = WORKFLOW.read_text()
    created = {
        (o["kind"].lower(), o["metadata"]["name"])
        for o in (unwrap(r.inputs) for r in program.k8s_objects())
        if o.get("metadata", {}).get("namespace") == "kubricks" and "kind" in o
    }
    waited = set(re.findall(r"rollout status (statefulset|deployment)/([a-z0-9-]+)", text))
    assert waited and waited <= created
    cluster = yaml.safe_load((REPO / "kind-config.yaml").read_text())["name"]
    contexts = set(re.findall(r"--context (\S+)", text))
    assert contexts == {f"kind-{cluster}"}
    assert f"--name {cluster}" in text


def test_wait_for_run_reports_the_final_state() -> None:
    from infra.ci import wait_for_run

    class Client:
        def __init__(self, state: str) -> None:
            self.state = state
            self.calls: list[tuple[str, int]] = []

        def wait_for_run_completion(self, run_id: str, timeout: int) -> SimpleNamespace:
            self.calls.append((run_id, timeout))
            return SimpleNamespace(state=self.state)

    ok = Client("SUCCEEDED")
    assert wait_for_run.wait(ok, "run-1", 60) == "SUCCEEDED" and ok.calls == [("run-1", 60)]
    assert wait_for_run.wait(Client("FAILED"), "run-2", 60) == "FAILED"


def test_predict_posts_one_row_of_spec_features() -> None:
    from infra.ci import predict
    from kubricks.spec import load_spec

    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"path": self.path, "body": body})
            data = json.dumps({"predictions": [{"prediction": "1"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert predict.main(["--usecase", "churn", "--url", url]) == 0
    finally:
        server.shutdown()
    (request,) = received
    assert request["path"] == "/predict"
    (row,) = request["body"]["rows"]
    assert set(row) == {f.name for f in load_spec("churn").features}
    json.dumps(row)  # plain JSON values only


@pytest.mark.parametrize("status", [500, 422])
def test_predict_fails_loudly_on_errors(status: int) -> None:
    from infra.ci import predict

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"no")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(SystemExit, match=str(status)):
            predict.predict(f"http://127.0.0.1:{server.server_address[1]}", {"rows": []})
    finally:
        server.shutdown()
