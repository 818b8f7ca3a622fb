"""Imports point down only: core ``kubricks`` <- ``serving`` <- ``components`` <- ``pipelines``
<- ``kubricks.commands`` (and the CLI, and the Pulumi program in ``infra``).

Every import in every module is checked, the ones inside functions too: a lazy import
upwards is still an upward dependency. Relative imports are resolved first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOP = 4
LAYERS = {"kubricks": 0, "serving": 1, "components": 2, "pipelines": 3}
TOP_LEVEL = ("kubricks.commands", "kubricks.cli", "infra")  # may import anything


def layer(module: str) -> int | None:
    """The layer of a dotted module name, or None for third-party and stdlib modules."""
    if any(module == top or module.startswith(f"{top}.") for top in TOP_LEVEL):
        return TOP
    return LAYERS.get(module.split(".")[0])


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of everything a module imports, relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found += [(node.lineno, ".".join(filter(None, (base, a.name)))) for a in node.names]
    return found


def sources() -> list[Path]:
    roots = [REPO / name for name in (*LAYERS, "infra")]
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*.py"))


def upward_imports(paths: list[Path], root: Path = REPO) -> list[str]:
    problems = []
    for path in paths:
        module = module_name(path, root)
        own = layer(module)
        assert own is not None, module
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, name in imported(tree, module, path.name == "__init__.py"):
            target = layer(name)
            if target is not None and target > own:
                where = path.relative_to(root)
                problems.append(f"{where}:{line} imports {name} (layer {target} > {own})")
    return sorted(set(problems))


def test_no_module_imports_a_layer_above_its_own() -> None:
    paths = sources()
    assert len(paths) > 50, "the layering check found too few modules to mean anything"
    assert upward_imports(paths) == []


@pytest.mark.parametrize(
    ("module", "code", "upward"),
    [
        ("kubricks/scoring/x.py", "from components import train", True),
        ("kubricks/scoring/x.py", "def f():\n    import pipelines.catalog", True),
        ("kubricks/x.py", "from serving import service", True),
        ("serving/x.py", "from components.tasks import lightweight", True),
        ("components/x.py", "from .. import pipelines", True),
        ("components/x.py", "from kubricks.commands import train", True),
        ("pipelines/x.py", "from components import train", False),
        ("kubricks/commands/x.py", "from pipelines import local", False),
        ("kubricks/steps/x.py", "from ..registry import store", False),
        ("kubricks/x.py", "import pandas", False),
    ],
)
def test_the_check_catches_an_upward_import(
    tmp_path: Path, module: str, code: str, upward: bool
) -> None:
    """The checker itself: each case is a module placed in a throwaway tree."""
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(code + "\n")
    assert bool(upward_imports([path], tmp_path)) is upward
