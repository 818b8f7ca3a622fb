"""Maintain: compact the use case's tables and vacuum old files, on the monitoring schedule."""

from kfp.dsl import Metrics, Output
from kfp.dsl.python_component import PythonComponent


def maintain(usecase: str, retain_hours: int, parent_run_id: str, metrics: Output[Metrics]) -> int:
    """Optimize every table of the use case (Z-order by its key where that helps), then
    vacuum files older than ``retain_hours``, keeping the gold versions registered models
    with an alias were trained on; return how many files were removed.

    The writers compact what they append as they go; this pass catches up on every other
    table and is the only one that deletes files.
    """
    from kubricks.lakehouse import maintenance, tables
    from kubricks.registry.pins import gold_pins
    from kubricks.spec import BUNDLED_USECASES
    from kubricks.steps.step import step

    with step("maintain", usecase, parent_run_id) as ctx:
        root, options = ctx.settings.lakehouse_uri, ctx.settings.storage_options()
        folder = ctx.settings.usecases_dir or BUNDLED_USECASES
        known = {p.stem for p in folder.glob("*.yaml")} | {ctx.spec.name}
        names = [
            n
            for n in tables.list_tables(root, options)
            if maintenance.owner(n, known) == ctx.spec.name
        ]
        keys = {n: maintenance.zorder_key(n, ctx.spec.entity_key) for n in names}
        done = maintenance.maintain(
            root, names, keys, gold_pins(ctx.client()), retain_hours, options
        )
        for line in done.lines():
            print(f"maintain: {line}")
        removed = sum(len(v.removed) for v in done.vacuumed)
        compacted = sum(r.before.files - r.files_after for r in done.optimized)
        metrics.log_metric("files_removed", float(removed))
        metrics.log_metric("files_compacted_away", float(compacted))
        ctx.outputs.update({"tables": names, "files_removed": removed, "lines": done.lines()})
        return removed


def component(image: str) -> PythonComponent:
    from components.tasks import lightweight

    return lightweight(maintain, image)
