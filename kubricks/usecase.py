"""Which use case a command means when the user does not say: the one home for that answer.

In order: ``--usecase NAME|PATH``; ``KUBRICKS_USECASE``; the only spec there is; the one
last used in this ``KUBRICKS_HOME``. "The specs there are" are the user's own (the folder
``kubricks spec infer`` writes to, plus the last one used if it lives elsewhere), and
only when there are none, the bundled examples. When nothing decides, the error lists
the choices in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubricks.errors import SpecError
from kubricks.settings import KubricksSettings

SUFFIXES = (".yaml", ".yml")
LAST_USED = "last-usecase"


@dataclass(frozen=True)
class Resolved:
    """A use case as commands and pipelines take it, and why it was picked."""

    ref: str  # a name load_spec finds by itself, else the spec file's absolute path
    path: Path
    why: str | None = None  # None when the user named it


def bundled_dir() -> Path:
    from kubricks.spec import BUNDLED_USECASES

    return BUNDLED_USECASES


def own_dir(settings: KubricksSettings) -> Path:
    """Where the user's specs live: ``KUBRICKS_USECASES_DIR``, else ``<home>/usecases``."""
    return (settings.usecases_dir or settings.home / "usecases").expanduser().resolve()


def _specs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


def _looks_like_path(text: str) -> bool:
    return text.endswith(SUFFIXES) or "/" in text or text.startswith(".")


def _ref(path: Path, settings: KubricksSettings) -> str:
    """The name when ``load_spec(name, settings.usecases_dir)`` finds this very file (so a
    pipeline on a cluster can look it up too), else the absolute path."""
    lookup = (settings.usecases_dir or bundled_dir()).expanduser().resolve()
    return path.stem if path.parent == lookup and path.suffix == ".yaml" else str(path)


def choices(settings: KubricksSettings) -> str:
    """The specs a name can pick, for one-line messages."""
    own = [p.stem for p in _specs(own_dir(settings))]
    bundled = [] if settings.usecases_dir else [p.stem for p in _specs(bundled_dir())]
    parts = [", ".join(own)] if own else []
    if bundled:
        parts.append(f"bundled: {', '.join(bundled)}")
    return "; ".join(parts) or "none yet: `kubricks spec infer --source FILE --label COLUMN`"


def find(given: str, settings: KubricksSettings) -> Path:
    """The spec file a ``--usecase`` value names: a path, else a name in the user's folder,
    else a bundled example."""
    if _looks_like_path(given):
        path = Path(given).expanduser().resolve()
        if not path.is_file():
            raise SpecError(f"{given}: no such spec file")
        return path
    folders = [own_dir(settings)] + ([] if settings.usecases_dir else [bundled_dir()])
    for folder in folders:
        for suffix in SUFFIXES:
            if (folder / f"{given}{suffix}").is_file():
                return folder / f"{given}{suffix}"
    raise SpecError(
        f"no use case named {given!r} (specs: {choices(settings)}): pass a spec's name"
        " or a path to its YAML file"
    )


def _last_used_file(settings: KubricksSettings) -> Path:
    return settings.home.expanduser().resolve() / LAST_USED


def last_used(settings: KubricksSettings) -> Path | None:
    """The spec file a command last used in this home, if it still exists."""
    try:
        path = Path(_last_used_file(settings).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return path if path.is_file() else None


def remember(path: Path, settings: KubricksSettings) -> None:
    """Record the spec a command used, for the next command that names none."""
    target = _last_used_file(settings)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.write_text(f"{path}\n")


def resolve(given: str | None, settings: KubricksSettings) -> Resolved:
    """The use case a command runs on (see the module docstring for the order)."""
    if given:
        path = find(given, settings)
        return Resolved(_ref(path, settings), path)
    if settings.usecase:
        path = find(settings.usecase, settings)
        return Resolved(_ref(path, settings), path, "from KUBRICKS_USECASE")
    folder = own_dir(settings)
    last = last_used(settings)
    pool = _specs(folder)
    if last is not None and last not in pool:
        pool.append(last)
    where = _shown(folder)
    if not pool and not settings.usecases_dir:
        pool, where = _specs(bundled_dir()), "the bundled examples"
    if len(pool) == 1:
        only = pool[0]
        why = "the one last used here" if only == last else f"the only spec in {where}"
        return Resolved(_ref(only, settings), only, why)
    if last is not None:
        return Resolved(_ref(last, settings), last, "the one last used here")
    raise SpecError(
        f"which use case? pass --usecase NAME (specs: {choices(settings)}) or a path to a"
        " spec YAML, or set KUBRICKS_USECASE"
    )


def _shown(folder: Path) -> str:
    try:
        return str(folder.relative_to(Path.cwd()))
    except ValueError:
        return str(folder)


def short(ref: str, settings: KubricksSettings) -> str:
    """How to name a use case in a command to copy: its name when the name finds the same
    file, else the path."""
    try:
        path = find(ref, settings)
        return path.stem if find(path.stem, settings) == path else str(path)
    except SpecError:
        return ref
