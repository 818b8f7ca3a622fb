"""The `kubricks` command. Each concern lives in kubricks.commands; this wires them up.

Command modules import only Typer and the console at the top; everything heavy (Spark,
MLflow, Feast, pandas, BentoML) is imported inside the command that uses it, so `--help`,
`status`, `predict`, `tables` and `models list` import none of it.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.text import Text

from kubricks.commands import demo, features, lakehouse, models, platform, serve, stream, train
from kubricks.commands import forget as forget_command
from kubricks.commands import monitor as monitor_command
from kubricks.commands import pipelines as pipeline_commands
from kubricks.commands import spec as spec_commands
from kubricks.commands import stack as stack_commands
from kubricks.console import LOG_ATTRIBUTE, configure_output, err_console, library_output
from kubricks.errors import ERROR_PREFIX, KubricksError

app = typer.Typer(
    name="kubricks",
    help="The Databricks ML lifecycle on your laptop or your Kubernetes cluster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo.demo)
app.command("ingest")(lakehouse.ingest)
app.add_typer(lakehouse.tables_app, name="tables")
app.command("forget")(forget_command.forget)
app.add_typer(features.app, name="features")
app.add_typer(models.app, name="models")
app.command("up")(platform.up)
app.command("status")(platform.status)
app.command("down")(platform.down)
app.command("train")(train.train)
app.command("run")(pipeline_commands.run)
app.command("runs")(pipeline_commands.runs)
app.command("compile")(pipeline_commands.compile_pipelines)
app.command("schedule")(pipeline_commands.schedule)
app.add_typer(stack_commands.app, name="stack")  # cluster platform settings (infra/)
app.command("monitor")(monitor_command.monitor)
app.add_typer(spec_commands.app, name="spec")

app.command("stream")(stream.stream)
# Real-time serving (serving/, docs/architecture.md "Real-time serving").
app.command("serve")(serve.serve)
app.command("predict")(serve.predict)
app.add_typer(serve.bento_app, name="bento")


def _logged(callback: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Run a command with library output sent to ``<home>/logs/<name>.log``."""

    @functools.wraps(callback)  # Typer reads the options from the wrapped signature
    def run(*args: Any, **kwargs: Any) -> Any:
        from kubricks.settings import get_settings

        with library_output(name, get_settings().home):
            return callback(*args, **kwargs)

    return run


def _wrap_commands(group: typer.Typer, prefix: str = "") -> None:
    """Every command of every group, whichever module registered it."""
    for info in group.registered_commands:
        if info.callback is not None and not hasattr(info.callback, "__wrapped__"):
            name = info.name or info.callback.__name__.replace("_", "-")
            info.callback = _logged(info.callback, f"{prefix}{name}")
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _wrap_commands(sub.typer_instance, f"{prefix}{sub.name}-")


_wrap_commands(app)


def _usage_error(exc: Exception) -> str | None:
    """The message of a command-line usage error (Typer's own Click raises them), or None."""
    message = getattr(exc, "format_message", None)
    if not callable(message) or not isinstance(getattr(exc, "exit_code", None), int):
        return None
    where = getattr(getattr(exc, "ctx", None), "command_path", None) or "kubricks"
    return f"{message()} (see `{where} --help`)"


def _settings_error(exc: Exception) -> str | None:
    """A KUBRICKS_* variable that does not parse, in one line naming it."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError) or exc.title != "KubricksSettings":
        return None
    first = exc.errors()[0]
    name = "KUBRICKS_" + "_".join(str(p) for p in first["loc"]).upper()
    return f"{name}={first.get('input')!r}: {first['msg']}"


def fail(message: str, code: int) -> None:
    err_console.print(Text.assemble((ERROR_PREFIX, "bold red"), message), soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """Entry point: every error prints as one line with the same prefix, not a traceback."""
    os.umask(0o077)  # state under KUBRICKS_HOME (data, logs, mlflow.db) is the user's alone
    configure_output()
    try:
        app(standalone_mode=False)
    except KubricksError as exc:
        fail(str(exc), 2)
    except typer.Abort:  # Ctrl+C, or an answered prompt
        fail("aborted", 1)
    except Exception as exc:
        usage = _usage_error(exc)  # usage errors arrive here in non-standalone mode
        if usage is not None:
            fail(usage, getattr(exc, "exit_code", 2))
        setting = _settings_error(exc)
        if setting is not None:
            fail(setting, 2)
        log = getattr(exc, LOG_ATTRIBUTE, None)
        if log is None:
            raise  # no log holds the traceback: show it
        fail(f"unexpected {type(exc).__name__}: {exc} (the traceback is in {log})", 1)


if __name__ == "__main__":
    main()
