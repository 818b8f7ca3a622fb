"""Small commands start instantly: they import nothing heavy.

Each test starts the CLI the way the console script does, in a subprocess with stdout
piped, and records which modules the process imported by the time it exited. Time on a
shared CI machine is noise; an import is not: `kubricks --help` importing MLflow would
cost 3-7 s of CPU, pandas 1-2 s, Spark's Python side 1-2 s. `benchmarks/cli.py` measures
the wall time of the same commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubricks.settings import KubricksSettings
from tests.conftest import free_port

HEAVY = frozenset(
    {
        "pandas",
        "numpy",
        "pyarrow",
        "pyspark",
        "py4j",
        "mlflow",
        "feast",
        "bentoml",
        "sklearn",
        "scipy",
        "deltalake",
        "optuna",
        "lightgbm",
        "skops",
        "kfp",
        "kubernetes",
        "boto3",
        "matplotlib",
    }
)
DELTA = frozenset({"deltalake", "pyarrow", "numpy"})  # listing Delta tables reads their logs

RUN_CLI = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["kubricks", *sys.argv[1:]]
from kubricks.cli import main
main()
"""


def imported(
    args: list[str], env: dict[str, str], code: int = 0
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``kubricks ARGS``; the finished process and the top-level packages it imported."""
    out = Path(env["KUBRICKS_HOME"]).parent / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        env={**env, "MODULES_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stdout + done.stderr
    return done, {name.split(".")[0] for name in json.loads(out.read_text())}


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KUBRICKS_HOME": str(tmp_path / "home"),
        "KUBRICKS_TRACKING_URI": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "KUBRICKS_SERVING_PORT": str(free_port()),
    }


@pytest.mark.parametrize(
    "args", [["--help"], ["models", "--help"], ["serve", "--help"], ["tables", "--help"]]
)
def test_help_imports_nothing_heavy(args: list[str], env: dict[str, str]) -> None:
    done, modules = imported(args, env)
    assert "Usage" in done.stdout
    assert not modules & HEAVY, sorted(modules & HEAVY)


def test_status_imports_nothing_heavy(env: dict[str, str]) -> None:
    done, modules = imported(["status"], env)
    assert "mlflow" in done.stdout and "No model server runs" in done.stdout
    assert not modules & HEAVY, sorted(modules & HEAVY)


def test_tables_reads_delta_logs_only(env: dict[str, str], tmp_path: Path) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    root = Path(env["KUBRICKS_HOME"]) / "lakehouse"
    write_deltalake(str(root / "gold" / "wine"), pa.table({"x": [1, 2, 3]}))
    done, modules = imported(["tables"], env)
    assert "gold/wine" in done.stdout and "3" in done.stdout
    assert not modules & (HEAVY - DELTA), sorted(modules & (HEAVY - DELTA))


def test_predict_with_no_server_says_how_to_start_one(env: dict[str, str]) -> None:
    done, modules = imported(["predict", "--usecase", "churn", "--key", "15634602"], env, code=2)
    assert not modules & HEAVY, sorted(modules & HEAVY)
    assert done.stderr.startswith("error: no Kubricks service answers at")
    assert "`kubricks serve --usecase churn --background`" in done.stderr


@pytest.mark.slow
def test_models_list_asks_the_rest_api_only(
    mlflow_server: str, env: dict[str, str], tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    from tests.serving.models import log_and_register
    from tests.serving.specs import dataset

    spec, features, label = dataset("iris")
    spec = spec.model_copy(update={"name": "iris_startup"})
    settings = KubricksSettings(home=tmp_path / "register", tracking_uri=mlflow_server)
    model = LogisticRegression(max_iter=1000).fit(features, label)
    version = log_and_register(model, features, spec.name, settings)
    spec_file = tmp_path / "iris_startup.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json")))

    done, modules = imported(
        ["models", "list", "--usecase", str(spec_file)],
        {**env, "KUBRICKS_TRACKING_URI": mlflow_server},
    )
    assert not modules & HEAVY, sorted(modules & HEAVY)
    out = done.stdout
    row = next(line for line in out.splitlines() if line.strip().startswith(f"│ {version} "))
    assert "champion" in row
    assert "accuracy" in out

    unknown = spec_file.with_name("never_trained.yaml")
    unknown.write_text(yaml.safe_dump({**spec.model_dump(mode="json"), "name": "never_trained"}))
    missing, _ = imported(
        ["models", "list", "--usecase", str(unknown)],
        {**env, "KUBRICKS_TRACKING_URI": mlflow_server},
        code=2,
    )
    assert missing.stderr.startswith("error: registered model 'never_trained' does not exist")
    assert f"train one with `kubricks train --usecase {unknown}`" in missing.stderr
