"""Compile pipelines to KFP IR YAML (the files Kubeflow Pipelines runs)."""

from __future__ import annotations

from pathlib import Path

from kubricks.settings import KubricksSettings
from pipelines import catalog

COMPILED_DIR = Path(__file__).resolve().parent / "compiled"


def compile_pipeline(name: str, settings: KubricksSettings, out_dir: Path = COMPILED_DIR) -> Path:
    """Write ``<out_dir>/<name>.yaml`` and return its path."""
    from kfp import compiler

    key = catalog.canonical(name)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{key}.yaml"
    compiler.Compiler().compile(catalog.build(key, settings), str(path))
    return path


def compile_all(settings: KubricksSettings, out_dir: Path = COMPILED_DIR) -> list[Path]:
    return [compile_pipeline(name, settings, out_dir) for name in catalog.names()]
