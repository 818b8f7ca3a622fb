"""`kubricks run`, `runs`, `compile` and `schedule`: pipelines locally or on Kubeflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from kubricks.commands.options import get_settings
from kubricks.console import console, table

PIPELINE_HELP = "training, batch_inference or monitoring"
ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="Pipeline parameter as name=value; repeatable."),
]


def _value(value: object) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.4g}"
    return str(value)


def _brief(outputs: dict[str, Any], limit: int = 6) -> str:
    shown = [f"{k}={_value(v)}" for k, v in list(outputs.items())[:limit] if v not in (None, "")]
    return ", ".join(shown)


def _printer(out: Console):
    def show(event: dict[str, Any]) -> None:
        status = event.get("status")
        mark = {"succeeded": "[green]✓[/]", "failed": "[red]✗[/]"}.get(status or "", "·")
        line = f"{mark} {event['step']} {status} ({event.get('seconds', '?')} s)"
        if status == "failed":
            line += f": {event.get('error')}"
        elif event.get("outputs"):
            line += f"  {_brief(event['outputs'])}"
        out.print(line, highlight=False)

    return show


def run(
    pipeline: Annotated[str, typer.Argument(help=PIPELINE_HELP)],
    param: ParamOption = None,
    kfp_host: Annotated[
        str | None, typer.Option(help="Submit to Kubeflow Pipelines at this URL instead.")
    ] = None,
) -> None:
    """Run a pipeline locally with kfp.local, or submit it to Kubeflow Pipelines."""
    from pipelines import catalog, local

    settings = get_settings()
    key = catalog.canonical(pipeline)
    built = catalog.build(key, settings)
    arguments = catalog.parse(key, built, with_usecase(param or []))
    if kfp_host:
        _submit(key, arguments, settings, kfp_host)
        return
    out = console
    out.print(f"Running [bold]{key}[/] locally (kfp.local)…")
    record = local.run_local(key, arguments, settings, on_step=_printer(out))
    out.print(
        table(
            f"Run {record.run_id}: {key} {record.status} in {record.seconds} s",
            ["step", "status", "outputs"],
            [
                (s["step"], s["status"], s.get("error") or _brief(s.get("outputs") or {}, 10))
                for s in record.steps
            ],
        )
    )
    out.print(
        f"MLflow parent run: {record.mlflow_run_id}"
        f" ({settings.resolved_tracking_uri}); records: `kubricks runs`"
    )
    if record.status != "succeeded":
        raise local.PipelineFailed(record.error or "the pipeline failed")


def with_usecase(params: list[str]) -> list[str]:
    """``-p usecase=...`` resolved as ``--usecase`` is everywhere (a name in the user's spec
    folder becomes its path; none given: KUBRICKS_USECASE, the only spec, the last used)."""
    from kubricks.commands.options import resolved_usecase

    given = [p.split("=", 1)[1] for p in params if p.startswith("usecase=")]
    rest = [p for p in params if not p.startswith("usecase=")]
    return [*rest, f"usecase={resolved_usecase(given[-1] if given else None)}"]


def _submit(key: str, arguments: dict[str, Any], settings: Any, host: str) -> None:
    from kubricks.errors import KubricksError
    from kubricks.runs import correlation, records
    from pipelines import catalog, kfp_client

    built = catalog.build(key, settings)
    params = catalog.with_defaults(built, arguments)
    record = records.RunRecord(records.new_run_id(), key, params, mode="cluster")
    try:
        from kubricks.tracking import connect

        client = connect(settings)
        record.mlflow_run_id = correlation.start_parent_run(
            client, str(params["usecase"]), key, record.run_id, params, mode="cluster"
        )
    except KubricksError as exc:
        console.print(f"[yellow]warning:[/] no MLflow parent run ({exc}); steps log unnested")
    submitted = kfp_client.submit(
        key,
        {**params, "parent_run_id": record.mlflow_run_id or ""},
        settings,
        host,
        run_name=f"{key}-{record.run_id}",
    )
    record.kfp_run_id = submitted.kfp_run_id
    record.status = "submitted"
    records.save(record, settings)
    console.print(f"Submitted {key} as KFP run {submitted.kfp_run_id}: {submitted.url}")


def runs(
    pipeline: Annotated[str | None, typer.Argument(help=PIPELINE_HELP)] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many runs.")] = 20,
    run_id: Annotated[
        str | None, typer.Option("--run", help="Show one run: parameters, steps, error.")
    ] = None,
) -> None:
    """List recorded pipeline runs, newest first (or one run in detail)."""
    from kubricks.errors import KubricksError
    from kubricks.runs import records
    from pipelines import catalog

    settings = get_settings()
    key = catalog.canonical(pipeline) if pipeline else None
    found = records.list_runs(settings, key)
    if run_id:
        match = [r for r in found if r.run_id.startswith(run_id)]
        if len(match) != 1:
            raise KubricksError(f"run {run_id!r}: {len(match)} recorded runs match")
        _show_run(match[0])
        return
    rows = [
        (
            r.run_id,
            r.pipeline if r.mode == "local" else f"{r.pipeline} ({r.mode})",
            r.status,
            f"{r.started_at:%m-%d %H:%M:%S}",
            r.seconds,
            (r.mlflow_run_id or "")[:12],
        )
        for r in found[:limit]
    ]
    console.print(
        table(
            "Pipeline runs (`kubricks runs --run ID` for details)",
            ["run", "pipeline", "status", "started (UTC)", "s", "MLflow run"],
            rows,
        )
    )


def _show_run(record: Any) -> None:
    console.print(
        f"[bold]{record.pipeline}[/] run {record.run_id} ({record.mode}):"
        f" {record.status}, started {record.started_at:%Y-%m-%d %H:%M:%S} UTC,"
        f" {record.seconds} s",
        highlight=False,
    )
    console.print(
        f"MLflow parent run: {record.mlflow_run_id or '-'}"
        + (f"; KFP run: {record.kfp_run_id}" if record.kfp_run_id else "")
    )
    console.print(f"parameters: {_brief(record.parameters, 50)}", highlight=False)
    if record.error:
        console.print(f"[red]error:[/] {record.error}", highlight=False)
    if record.steps:
        console.print(
            table(
                "Steps",
                ["step", "status", "outputs"],
                [
                    (s["step"], s["status"], s.get("error") or _brief(s.get("outputs") or {}, 10))
                    for s in record.steps
                ],
            )
        )


def compile_pipelines(
    out_dir: Annotated[Path | None, typer.Option(help="Default: pipelines/compiled.")] = None,
) -> None:
    """Write the KFP IR YAML of every pipeline."""
    from pipelines.compile import COMPILED_DIR, compile_all

    for path in compile_all(get_settings(), out_dir or COMPILED_DIR):
        console.print(f"wrote {path}")


def schedule(
    pipeline: Annotated[str, typer.Argument(help=PIPELINE_HELP)],
    cron: Annotated[str, typer.Option(help="Cron schedule, e.g. '0 3 * * *' (UTC).")],
    param: ParamOption = None,
    kfp_host: Annotated[str | None, typer.Option(help="Default: KUBRICKS_KFP_HOST.")] = None,
) -> None:
    """Create a recurring run of a pipeline on Kubeflow Pipelines."""
    from kubricks.errors import KubricksError
    from pipelines import catalog, kfp_client

    settings = get_settings()
    host = kfp_host or settings.kfp_host
    if not host:
        raise KubricksError("schedule needs --kfp-host or KUBRICKS_KFP_HOST")
    key = catalog.canonical(pipeline)
    arguments = catalog.parse(key, catalog.build(key, settings), param or [])
    job = kfp_client.schedule(key, cron, arguments, settings, host)
    console.print(f"Scheduled {key} on '{cron}' as recurring run {job}")
