"""The `kubricks` command. Each concern lives in kubricks.commands; this wires them up."""

from __future__ import annotations

import sys

import typer
from rich.text import Text

from kubricks.commands import demo, features, lakehouse, models, platform, serve, stream, train
from kubricks.commands import forget as forget_command
from kubricks.commands import monitor as monitor_command
from kubricks.commands import pipelines as pipeline_commands
from kubricks.commands import spec as spec_commands
from kubricks.commands import stack as stack_commands
from kubricks.console import err_console
from kubricks.errors import KubricksError

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
# Real-time serving (workstream serving).
app.command("serve")(serve.serve)
app.command("predict")(serve.predict)
app.add_typer(serve.bento_app, name="bento")


def main() -> None:
    """Entry point: user errors print as one red line, not a traceback."""
    try:
        app(standalone_mode=False)
    except KubricksError as exc:
        err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
