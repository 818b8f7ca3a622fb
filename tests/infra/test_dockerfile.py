"""The project Dockerfile: linted, installing from the same lock as scripts/bootstrap.sh,
with the s3a jars matched to pyspark's Hadoop, and an entrypoint that Spark can drive."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = REPO / "infra" / "docker" / "entrypoint.sh"


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: run bash scripts/bootstrap.sh"
    return found


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines: list[str] = []
    buffer = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            buffer += raw.rstrip()[:-1] + " "
            continue
        lines.append(buffer + raw)
        buffer = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [_tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_really_checking(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("python:3.11.14-slim-bookworm", "python:latest"))
    result = subprocess.run(
        [_tool("hadolint"), str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_installs_from_the_same_lock_as_bootstrap() -> None:
    bootstrap = (REPO / "scripts" / "bootstrap.sh").read_text()
    uv_version = re.search(r'"uv==([\d.]+)"', bootstrap).group(1)
    assert "-r requirements.lock" in bootstrap and "--no-deps -e ." in bootstrap
    steps = _instructions()
    runs = [args for op, args in steps if op == "RUN"]
    copies = [args for op, args in steps if op == "COPY"]
    lock_install = next(r for r in runs if "requirements.lock" in r)
    assert f'"uv=={uv_version}"' in lock_install
    assert re.search(r"uv pip install [^\n]*-r requirements\.lock", lock_install)
    assert "requirements.lock ./" in copies[0]  # the lock is copied before anything else
    project_install = next(r for r in runs if "--no-deps ." in r)
    assert "uv pip install" in project_install
    # nothing else is pip-installed: uv itself is the only package outside the lock
    for run in runs:
        for match in re.finditer(r"pip install ([^&\n]*)", run):
            args = match.group(1)
            assert (
                "-r requirements.lock" in args
                or "--no-deps ." in args
                or f"uv=={uv_version}" in args
            )


def test_python_and_hadoop_versions_match_the_lock_and_pyspark() -> None:
    import pyspark

    steps = dict(_instructions())
    base = steps["FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base)  # the lock is for 3.11
    text = DOCKERFILE.read_text()
    assert "SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark" in text
    hadoop = re.search(r"ARG HADOOP_AWS_VERSION=([\d.]+)", text).group(1)
    jars = Path(pyspark.__file__).parent / "jars"
    assert (jars / f"hadoop-client-api-{hadoop}.jar").exists(), sorted(
        p.name for p in jars.glob("hadoop-client-api-*")
    )
    assert "hadoop-aws-${HADOOP_AWS_VERSION}.jar" in text
    assert "software/amazon/awssdk/bundle" in text
    assert "sha1sum --check" in text and "sha256sum --check" in text


def test_every_package_is_copied_and_the_context_lets_it_through() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copies = [
        args.split()[0] for op, args in _instructions() if op == "COPY" and "--chmod" not in args
    ]
    copies += [
        args.split()[1] for op, args in _instructions() if op == "COPY" and "--chmod" in args
    ]
    assert packages <= set(copies)
    from kubricks_infra.cluster import IMAGE_PACKAGES

    assert packages <= set(IMAGE_PACKAGES)  # a change to any package gives the image a new tag
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[1] == "**"  # everything is excluded unless re-included below
    allowed = {line[1:].removesuffix("/**") for line in ignore if line.startswith("!")}
    for source in copies:
        assert source in allowed, f".dockerignore excludes {source}"
        assert (REPO / source).exists(), source


def test_every_run_step_is_valid_bash() -> None:
    for op, args in _instructions():
        if op == "RUN":
            result = subprocess.run(["bash", "-n", "-c", args], capture_output=True, text=True)
            assert result.returncode == 0, f"{args[:60]}...: {result.stderr}"


def test_entrypoint_runs_other_commands_unchanged() -> None:
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "python", "-c", "print('step ran')"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and result.stdout == "step ran\n"


@pytest.mark.parametrize("role", ["driver", "executor"])
def test_entrypoint_starts_spark_roles(tmp_path: Path, role: str) -> None:
    """A stand-in spark-submit/java record how the operator's pods would be started."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("spark-submit", "java"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho {tool} "$@"\n')
        script.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SPARK_HOME": str(tmp_path),
        "SPARK_DRIVER_BIND_ADDRESS": "10.244.1.5",
        "SPARK_EXECUTOR_MEMORY": "2g",
        "SPARK_DRIVER_URL": "spark://driver:7078",
        "SPARK_EXECUTOR_ID": "1",
        "SPARK_EXECUTOR_CORES": "1",
        "SPARK_APPLICATION_ID": "spark-app",
        "SPARK_EXECUTOR_POD_IP": "10.244.1.6",
    }
    args = [role, "--properties-file", "/opt/spark/conf/spark.properties"]
    out = subprocess.run(
        ["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, env=env, timeout=30
    )
    assert out.returncode == 0, out.stderr
    if role == "driver":
        assert out.stdout.startswith("spark-submit --conf spark.driver.bindAddress=10.244.1.5")
        assert "--deploy-mode client --properties-file" in out.stdout
    else:
        assert out.stdout.startswith("java -Xms2g -Xmx2g -cp")
        assert "KubernetesExecutorBackend --driver-url spark://driver:7078" in out.stdout


def test_image_tag_follows_the_sources(tmp_path: Path) -> None:
    from kubricks_infra.cluster import source_digest

    for name in ("Dockerfile", "requirements.lock", "pyproject.toml"):
        (tmp_path / name).write_text("x")
    (tmp_path / "kubricks").mkdir()
    (tmp_path / "kubricks" / "a.py").write_text("1")
    before = source_digest(tmp_path)
    assert source_digest(tmp_path) == before
    (tmp_path / "requirements.lock").write_text("y")
    changed_lock = source_digest(tmp_path)
    (tmp_path / "kubricks" / "a.py").write_text("2")
    assert len({before, changed_lock, source_digest(tmp_path)}) == 3
