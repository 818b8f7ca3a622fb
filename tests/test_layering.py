"""The import contracts in pyproject.toml ([tool.importlinter]) say what they mean.

`lint-imports` (run by scripts/test.sh) checks the contracts against the code; these
tests check the contracts themselves: each case adds one import to the real import graph
and asserts that the contracts break exactly when that import goes against the layers
of docs/architecture.md ("Layers"), or would bring back an import cycle.
"""

from __future__ import annotations

from copy import deepcopy
from functools import cache
from pathlib import Path

import grimp
import pytest
from importlinter import configuration
from importlinter.application.use_cases import UserOptions
from importlinter.application.use_cases import read_user_options as read
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract
from importlinter.domain.contract import Contract

REPO = Path(__file__).resolve().parent.parent
TYPES: dict[str, type[Contract]] = {
    "layers": LayersContract,
    "forbidden": ForbiddenContract,
    "acyclic_siblings": AcyclicSiblingsContract,
}


@cache
def config() -> UserOptions:
    configuration.configure()  # what the lint-imports command does before reading
    return read(str(REPO / "pyproject.toml"))


@cache
def contracts() -> tuple[Contract, ...]:
    options = config()
    return tuple(
        TYPES[c["type"]](name=c["id"], session_options=options.session_options, contract_options=c)
        for c in options.contracts_options
    )


@cache
def graph() -> grimp.ImportGraph:
    roots = config().session_options["root_packages"]
    return grimp.build_graph(*roots, cache_dir=None)


def broken(extra: tuple[str, str] | None = None) -> set[str]:
    """The ids of the contracts the code breaks, with one more import if given."""
    names = set()
    for contract in contracts():
        copy = deepcopy(graph())  # as lint-imports does: contracts may change the graph
        if extra:
            copy.add_import(importer=extra[0], imported=extra[1])
        if not contract.check(copy, verbose=False).kept:
            names.add(contract.name)
    return names


def test_every_declared_contract_type_is_checked_here() -> None:
    types = {c["type"] for c in config().contracts_options}
    assert types <= set(TYPES)
    assert {c.name for c in contracts()} >= {
        "top-layers",
        "core-layers",
        "no-cycles",
        "serving-request-below-packaging",
    }


def test_imports_inside_functions_are_in_the_graph() -> None:
    """A lazy import upwards is still an upward dependency: import-linter must see it."""
    # components/finish.py imports kubricks.runs.correlation inside close_parent_run() only
    assert graph().direct_import_exists(
        importer="components.finish", imported="kubricks.runs.correlation"
    )


@pytest.mark.parametrize(
    ("importer", "imported", "contract"),
    [
        ("kubricks.lakehouse.tables", "kubricks.monitoring.run", "core-layers"),
        ("kubricks.scoring.batch", "kubricks.monitoring.run", "core-layers"),
        ("kubricks.monitoring.run", "kubricks.scoring.batch", "core-layers"),
        ("kubricks.settings", "kubricks.storage", "core-layers"),
        ("kubricks.runs.correlation", "kubricks.steps.step", "core-layers"),
        ("kubricks.registry.champion", "serving.request.runtime", "core-below-serving"),
        ("kubricks.scoring.batch", "components.train", "core-below-serving"),
        ("kubricks.training.automl", "kubricks.commands.train", "core-layers"),
        ("serving.request.service", "components.tasks", "top-layers"),
        ("components.train", "pipelines.training", "top-layers"),
        ("pipelines.training", "kubricks.commands.train", "top-layers"),
        ("components.tasks", "components.finish", "no-cycles"),
        ("serving.request.entry", "serving.packaging.build", "serving-request-below-packaging"),
        ("serving.request.store", "serving.packaging.local", "serving-request-below-packaging"),
        ("kubricks.registry.store", "kubricks.registry.gate", "no-cycles"),
        ("kubricks.monitoring.run", "kubricks.retraining.loop", "core-layers"),
        ("kubricks.retraining.loop", "kubricks.commands.monitor", "core-layers"),
        ("kubricks.monitoring.run", "demo.scenarios", "core-below-serving"),
        ("serving.service", "demo.serve", "top-layers"),
        ("components.monitor", "demo.story", "top-layers"),
        ("demo.story", "components.monitor", "top-layers"),
        ("demo.story", "pipelines.monitoring", "top-layers"),
    ],
)
def test_an_import_against_the_layers_breaks_a_contract(
    importer: str, imported: str, contract: str
) -> None:
    assert contract in broken((importer, imported)) - broken()


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("pipelines.training", "components.train"),
        ("kubricks.commands.train", "pipelines.local"),
        ("components.train", "serving.packaging.build"),
        ("serving.request.runtime", "kubricks.registry.champion"),
        ("serving.packaging.deploy", "serving.request.webhook"),
        ("kubricks.steps.step", "kubricks.registry.store"),
        ("kubricks.monitoring.run", "kubricks.training.metrics"),
        ("kubricks.spark_k8s.score_job", "kubricks.scoring.batch"),
        ("kubricks.retraining.loop", "kubricks.monitoring.run"),
        ("demo.serve", "serving.packaging.build"),
        ("kubricks.commands.demo", "demo.story"),
    ],
)
def test_an_import_along_the_layers_breaks_none(importer: str, imported: str) -> None:
    assert broken((importer, imported)) == broken()
