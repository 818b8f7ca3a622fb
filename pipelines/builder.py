"""Pipelines from declared parameters, so one pipeline can reuse another's without a copy.

A KFP pipeline's parameters are its function's signature. Here they are declared once
(:class:`Param`), the signature is built from them, and the body receives the values
by name: the monitoring pipeline declares the training parameters it passes on by
listing ``training.PARAMETERS``, never by repeating them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kfp.dsl.graph_component import GraphComponent


@dataclass(frozen=True)
class Param:
    """One pipeline parameter: what KFP shows and what ``kubricks run -p`` parses."""

    name: str
    type: type
    default: Any
    help: str


USECASE = Param("usecase", str, "churn", "Use-case name (a spec in the use-cases folder).")
PARENT_RUN_ID = Param(
    "parent_run_id", str, "", "MLflow run the steps nest under; set by the runner."
)


def values(arguments: Mapping[str, Any], params: Sequence[Param]) -> dict[str, Any]:
    """The arguments that belong to ``params``, to hand to a nested pipeline."""
    return {p.name: arguments[p.name] for p in params}


def _docstring(description: str, params: Sequence[Param]) -> str:
    """A Google-style docstring: KFP reads each parameter's description from ``Args:``."""
    lines = [description, "", "Args:"]
    lines += [f"    {p.name}: {p.help}" for p in params]
    return "\n".join(lines)


def pipeline(
    name: str,
    description: str,
    params: Sequence[Param],
    body: Callable[[dict[str, Any]], None],
) -> GraphComponent:
    """A KFP pipeline whose signature is ``params`` and whose tasks ``body`` creates.

    ``body`` gets every parameter (as KFP placeholders) in a dict keyed by name.
    """
    from kfp import dsl

    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"pipeline {name}: a parameter is declared twice: {names}")
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature(
        [inspect.Parameter(p.name, kind, default=p.default, annotation=p.type) for p in params]
    )

    def func(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        body(dict(bound.arguments))

    func.__signature__ = signature  # type: ignore[attr-defined]
    func.__name__ = func.__qualname__ = name
    func.__doc__ = _docstring(description, params)
    return dsl.pipeline(name=name.replace("_", "-"), description=description)(func)
