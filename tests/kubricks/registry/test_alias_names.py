"""The alias names have one home, ``kubricks.registry.alias_names`` (``CHAMPION``,
``CHALLENGER``, also importable from ``kubricks.registry.store``).

A second spelling of ``"champion"`` somewhere else is how a rename (or a typo) leaves one
module asking MLflow for an alias nobody sets. Literal[...] types are exempt: they name
the serving traffic mode "champion", a different concept that happens to share the word.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HOME = REPO / "kubricks" / "registry" / "alias_names.py"
NAMES = {"champion", "challenger"}


def literal_types(tree: ast.AST) -> set[int]:
    """ids of the constants a ``Literal[...]`` type holds or gives a default (``mode: Mode =
    "champion"`` where ``Mode = Literal[...]``): traffic modes, not alias names."""
    literal_names = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and is_literal(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and is_literal(node):
            inside |= {id(n) for n in ast.walk(node.slice)}
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            names = {getattr(n, "id", None) for n in ast.walk(node.annotation)}
            if names & literal_names or any(is_literal(n) for n in ast.walk(node.annotation)):
                inside.add(id(node.value))
    return inside


def is_literal(node: ast.AST) -> bool:
    if not isinstance(node, ast.Subscript):
        return False
    base = node.value
    return (base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")) == "Literal"


def spelled_out(path: Path, root: Path = REPO) -> list[str]:
    """``file:line 'champion'`` for each alias name written out in a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    exempt = literal_types(tree)
    return [
        f"{path.relative_to(root)}:{node.lineno} {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in NAMES and id(node) not in exempt
    ]


def sources() -> list[Path]:
    roots = [REPO / name for name in ("kubricks", "serving", "components", "pipelines", "demo")]
    return sorted(p for root in roots for p in root.rglob("*.py") if p != HOME)


def test_only_the_registry_store_spells_the_alias_names() -> None:
    paths = sources()
    assert len(paths) > 50
    assert [line for path in paths for line in spelled_out(path)] == []


@pytest.mark.parametrize(
    ("code", "found"),
    [
        ('ALIAS = "champion"', True),
        ('client.get_model_version_by_alias(name, "challenger")', True),
        ('Mode = Literal["champion", "shadow", "split"]', False),
        ('traffic: typing.Literal["champion", "split"] = "champion"', False),
        ('Mode = Literal["champion", "split"]\nmode: Mode | None = "champion"', False),
        ('Mode = Literal["champion", "split"]\nalias: str = "champion"', True),
        ("from kubricks.registry.alias_names import CHAMPION", False),
    ],
)
def test_the_check_finds_a_second_spelling(tmp_path: Path, code: str, found: bool) -> None:
    path = tmp_path / "module.py"
    path.write_text(code + "\n")
    assert bool(spelled_out(path, tmp_path)) is found
