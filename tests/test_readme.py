"""README's "Your own data": the documented commands, run as written, on a non-churn file.

Each command of the section's bash block runs in bash, one after the other, in a fresh
folder, the way a user types them after activating the environment (the venv's `bin` on
PATH); stdout is piped, as in CI. Only the ports are moved (KUBRICKS_MLFLOW_PORT,
KUBRICKS_SERVING_PORT) so the test never meets another server. What each command prints is
checked for what a user relies on, and all of it for output that reads in a log: no
carriage returns, no colour codes, no table cell cut short.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, free_port

SECTION = "## Your own data"
HEREDOC = re.compile(r"<<'(\w+)'\s*$")
CULTIVARS = {"barolo", "grignolino", "barbera"}


def documented_commands(readme: str) -> list[str]:
    """The section's first bash block, one entry per command (a heredoc stays whole)."""
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    commands: list[str] = []
    lines = iter(block.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = [line]
        heredoc = HEREDOC.search(line)
        if heredoc:
            for body in lines:
                command.append(body)
                if body == heredoc.group(1):
                    break
        commands.append("\n".join(command))
    return commands


def run(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], env=env, cwd=cwd, capture_output=True, text=True, timeout=1800
    )


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "│" in line]


def answer(done: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # fifteen commands, three servers, Spark and AutoML on 2 cores
def test_the_documented_sequence_runs_as_written(tmp_path: Path) -> None:
    commands = documented_commands((REPO / "README.md").read_text())
    assert commands[0].startswith("python - <<'EOF'") and commands[-1] == "kubricks down"
    mlflow_port, serving_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KUBRICKS_")},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "KUBRICKS_MLFLOW_PORT": str(mlflow_port),
        "KUBRICKS_SERVING_PORT": str(serving_port),
        "KUBRICKS_START_TIMEOUT_SECONDS": "600",  # a loaded CI machine
    }
    done: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        for command in commands:
            result = run(command, env, tmp_path)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
            done[command.splitlines()[0]] = result
    finally:
        run("kubricks serve --stop; kubricks down", env, tmp_path)

    everything = "".join(r.stdout + r.stderr for r in done.values())
    assert "\r" not in everything and "\x1b" not in everything
    assert not [line for line in table_lines(everything) if "…" in line]

    inferred = done["kubricks spec infer --source wine.csv --label cultivar"].stdout
    assert "kubricks ingest --usecase wine && kubricks train --usecase wine" in inferred
    assert (tmp_path / ".kubricks" / "usecases" / "wine.yaml").is_file()
    assert (
        "Gate: version 1 of wine passed"
        in done["kubricks train --usecase wine --budget-minutes 1"].stdout
    )

    served = done["kubricks serve --usecase wine --background"].stdout
    assert served.startswith(f"Serving wine: champion v1, at http://127.0.0.1:{serving_port}")
    by_key = answer(done["kubricks predict --usecase wine --key L0042"])["predictions"]
    by_row = answer(done["kubricks predict --usecase wine --json rows.json"])["predictions"]
    for prediction in (*by_key, *by_row):
        assert prediction["prediction"] in CULTIVARS and prediction["model_version"] == "1"

    assert "Report:" in done["kubricks monitor --usecase wine"].stdout
    status = done["kubricks status"].stdout
    (server,) = [line for line in table_lines(status) if "│ wine " in line]
    assert "v1" in server and f"http://127.0.0.1:{serving_port}" in server
    assert done["kubricks serve --stop"].stdout.strip() == "Stopped the server of wine."
    assert "MLflow tracking server stopped." in done["kubricks down"].stdout

    logs = tmp_path / ".kubricks" / "logs"
    spark_said = "Setting default log level"  # Spark's JVM, on stderr, at every start
    assert spark_said in (logs / "ingest.log").read_text()
    assert spark_said not in everything
    for port in (mlflow_port, serving_port):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_the_block_splits_into_the_commands_a_user_types() -> None:
    commands = documented_commands(
        "intro\n## Your own data\ntext\n```bash\npython - <<'EOF'\nprint(1)\nEOF\n"
        "kubricks up\n\nkubricks down\n```\nmore\n## Next\n```bash\nnot this\n```\n"
    )
    assert commands == ["python - <<'EOF'\nprint(1)\nEOF", "kubricks up", "kubricks down"]
