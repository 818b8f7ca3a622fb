"""Options every command shares, so each behaves the same way.

``usecase: UseCaseOption = AUTO`` is all a command needs: the option's callback resolves
what the user meant (see kubricks.usecase), says so in one line when it had to choose,
and hands the command a value ``load_spec(value, settings.usecases_dir)`` loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from kubricks.settings import KubricksSettings

AUTO = ""  # no --usecase: kubricks.usecase decides
USECASE_HELP = (
    "A spec's name or a path to its YAML. Default: KUBRICKS_USECASE, else the only spec"
    " there is, else the one last used."
)


def resolve_usecase(ctx: typer.Context, value: str | None) -> str:
    """The option's callback (see :func:`resolved_usecase`)."""
    if ctx.resilient_parsing:  # shell completion: resolve nothing
        return value or AUTO
    return resolved_usecase(value)


def resolved_usecase(value: str | None) -> str:
    """A spec name or path for the command, said in one line when it had to be chosen,
    and remembered as the last used."""
    from kubricks.console import err_console
    from kubricks.usecase import remember, resolve

    settings = get_settings()
    found = resolve(value or None, settings)
    if found.why:
        err_console.print(
            f"Use case {found.path.stem}: {found.why} (--usecase picks another).",
            highlight=False,
            soft_wrap=True,
        )
    remember(found.path, settings)
    return found.ref


UseCaseOption = Annotated[
    str,
    typer.Option("--usecase", help=USECASE_HELP, callback=resolve_usecase, show_default=False),
]


def get_settings(**overrides: object) -> KubricksSettings:
    """:func:`kubricks.settings.get_settings`, imported when a command runs: pydantic is
    a third of what `kubricks --help` would otherwise import."""
    from kubricks.settings import get_settings as read

    return read(**overrides)
