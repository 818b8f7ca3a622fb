"""Commands know which use case you mean, as a user meets it: the real CLI, stdout piped.

`kubricks predict` with no server running is the probe: it resolves the use case, says
which one it picked, and its error names the `kubricks serve` command for that use case.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_iris, load_wine

from tests.conftest import free_port

KUBRICKS = str(Path(sys.executable).with_name("kubricks"))


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k != "KUBRICKS_USECASE"},
        "KUBRICKS_HOME": str(tmp_path / "home"),
        "KUBRICKS_SERVING_PORT": str(free_port()),  # nothing listens
    }


def kubricks(
    *args: str, env: dict[str, str], cwd: Path, code: int = 0
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [KUBRICKS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == code, done.stdout + done.stderr
    return done


def picked(env: dict[str, str], cwd: Path) -> tuple[str, str]:
    """(the line saying which use case was picked, the one-line error naming it)."""
    done = kubricks("predict", "--key", "1", env=env, cwd=cwd, code=2)
    lines = done.stderr.strip().splitlines()
    return lines[0], lines[-1]


def test_resolution_in_every_case(env: dict[str, str], tmp_path: Path) -> None:
    said, error = picked(env, tmp_path)
    assert (
        said == "Use case churn: the only spec in the bundled examples (--usecase picks another)."
    )
    assert "`kubricks serve --usecase churn --background`" in error

    wine = tmp_path / "wine.csv"
    data = load_wine(as_frame=True)
    data.frame.assign(target=data.target.map(dict(enumerate(data.target_names)))).to_csv(
        wine, index=False
    )
    inferred = kubricks(
        "spec", "infer", "--source", str(wine), "--label", "target", env=env, cwd=tmp_path
    )
    written = tmp_path / "home" / "usecases" / "wine.yaml"
    assert written.is_file()
    out = inferred.stdout.splitlines()
    assert "kubricks spec check wine" in out  # whole lines: copyable as printed
    assert "kubricks ingest --usecase wine && kubricks train --usecase wine" in out

    said, error = picked(env, tmp_path)
    assert said.startswith("Use case wine: ")
    assert "`kubricks serve --usecase wine --background`" in error

    iris = tmp_path / "flowers.csv"
    frame = load_iris(as_frame=True)
    frame.frame.assign(target=frame.target.map(dict(enumerate(frame.target_names)))).to_csv(
        iris, index=False
    )
    kubricks(
        "spec", "infer", "--source", str(iris), "--label", "target", "--name", "iris",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    said, _ = picked(env, tmp_path)
    assert said == "Use case iris: the one last used here (--usecase picks another)."

    said, _ = picked({**env, "KUBRICKS_USECASE": "wine"}, tmp_path)
    assert said == "Use case wine: from KUBRICKS_USECASE (--usecase picks another)."

    (tmp_path / "home" / "last-usecase").unlink()
    undecided = kubricks("predict", "--key", "1", env=env, cwd=tmp_path, code=2)
    assert undecided.stderr.count("\n") == 1  # one line
    assert undecided.stderr.startswith("error: which use case? pass --usecase NAME")
    assert "(specs: iris, wine; bundled: churn)" in undecided.stderr
    assert "or a path to a spec YAML" in undecided.stderr

    unknown = kubricks("predict", "--usecase", "vine", "--key", "1", env=env, cwd=tmp_path, code=2)
    assert unknown.stderr.startswith("error: no use case named 'vine' (specs: iris, wine;")
    assert "or a path to its YAML file" in unknown.stderr

    by_path = kubricks(
        "predict", "--usecase", str(written), "--key", "1", env=env, cwd=tmp_path, code=2
    )
    assert "Use case" not in by_path.stderr  # named: nothing to say
    assert "`kubricks serve --usecase wine --background`" in by_path.stderr


def test_stop_without_a_use_case_when_nothing_runs(env: dict[str, str], tmp_path: Path) -> None:
    done = kubricks("serve", "--stop", env=env, cwd=tmp_path)
    assert done.stdout.strip() == "No background server runs."
