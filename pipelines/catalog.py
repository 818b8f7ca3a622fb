"""The pipelines Kubricks ships, by name, and their parameters as a user types them.

Unknown pipelines and parameters fail with a message that lists the valid ones;
``k=v`` values are converted to the type the pipeline declares.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings

if TYPE_CHECKING:
    from kfp.dsl.graph_component import GraphComponent

PIPELINES = {
    "training": "pipelines.training",
    "batch_inference": "pipelines.batch_inference",
    "monitoring": "pipelines.monitoring",
}
INTERNAL = {"parent_run_id"}  # set by the runner, not by the user


class UnknownPipeline(KubricksError):
    """No pipeline by that name."""


class BadParameter(KubricksError):
    """A pipeline parameter is unknown or its value does not parse."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # KFP's: String, Integer, Float, Boolean, Dict, List
    default: Any
    description: str = ""


def names() -> list[str]:
    return list(PIPELINES)


def build(name: str, settings: KubricksSettings) -> GraphComponent:
    """The pipeline object of ``name``, built for these settings (image, retries)."""
    return importlib.import_module(PIPELINES[canonical(name)]).build(settings)


def canonical(name: str) -> str:
    key = name.replace("-", "_")
    if key not in PIPELINES:
        raise UnknownPipeline(f"unknown pipeline {name!r}; valid: {', '.join(names())}")
    return key


def parameters(pipeline: GraphComponent) -> dict[str, Parameter]:
    """The user-facing parameters of a pipeline with their types and defaults."""
    out: dict[str, Parameter] = {}
    for name, spec in (pipeline.component_spec.inputs or {}).items():
        if name in INTERNAL:
            continue
        out[name] = Parameter(name, str(spec.type), spec.default, spec.description or "")
    return out


def _convert(param: Parameter, raw: str) -> Any:
    try:
        if param.type == "Integer":
            return int(raw)
        if param.type == "Float":
            return float(raw)
        if param.type == "Boolean":
            lowered = raw.strip().lower()
            if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(raw)
            return lowered in {"true", "1", "yes"}
        if param.type in {"Dict", "List"}:
            value = json.loads(raw)
            expected = dict if param.type == "Dict" else list
            if not isinstance(value, expected):
                raise ValueError(raw)
            return value
    except ValueError as exc:
        example = {"Dict": '{"roc_auc": 0.8}', "List": "[1, 2]"}.get(param.type, "")
        hint = f" (for example {example})" if example else ""
        raise BadParameter(
            f"parameter {param.name!r}: {raw!r} is not a valid {param.type}{hint}"
        ) from exc
    return raw


def parse(pipeline_name: str, pipeline: GraphComponent, pairs: list[str]) -> dict[str, Any]:
    """Turn ``["k=v", ...]`` into typed arguments; unknown names list the valid ones."""
    known = parameters(pipeline)
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise BadParameter(f"--param {pair!r}: expected name=value")
        if key not in known:
            raise BadParameter(
                f"pipeline {pipeline_name!r} has no parameter {key!r};"
                f" valid: {', '.join(sorted(known))}"
            )
        args[key] = _convert(known[key], raw)
    return args


def with_defaults(pipeline: GraphComponent, args: dict[str, Any]) -> dict[str, Any]:
    """The full parameter set of a run, as recorded: defaults plus what the user gave."""
    return {n: args.get(n, p.default) for n, p in parameters(pipeline).items()}
