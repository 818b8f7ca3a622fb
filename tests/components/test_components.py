"""Components: side-effect-free imports, the project image, nothing installed, typed I/O."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

MODULES = [
    "ingest",
    "features",
    "train",
    "gate",
    "deploy",
    "batch_score",
    "monitor",
    "maintain",
    "finish",
]
IMAGE = "registry.test/kubricks:9"


def test_importing_components_has_no_side_effects(tmp_path: Path) -> None:
    code = "import components." + ", components.".join(MODULES)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBRICKS_HOME": "x"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", MODULES)
def test_component_on_the_project_image_installs_nothing(name: str) -> None:
    module = importlib.import_module(f"components.{name}")
    component = module.component(IMAGE)
    container = component.component_spec.implementation.container
    assert container.image == IMAGE
    script = container.command[2]
    assert "pip install" not in script and "kfp.dsl.executor_main" in script
    func = component.python_func
    assert func.__module__ == f"components.{name}"
    for param in inspect.signature(func).parameters.values():
        assert param.annotation is not inspect.Parameter.empty, f"{name}.{param.name}"
    assert "parent_run_id" in inspect.signature(func).parameters
    assert module.component(IMAGE) is component  # built once per image
