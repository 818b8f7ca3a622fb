"""Training: ingest → build features → train (AutoML) → validate and promote → deploy if passed.

Every step after ingest reads the gold version ingest wrote: the ``gold`` Dataset
carries it, so a batch landing meanwhile does not change what this run trains on.
"""

from typing import Any

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from kubricks.settings import KubricksSettings
from pipelines.builder import PARENT_RUN_ID, USECASE, Param, pipeline

NAME = "training"
DESCRIPTION = "Ingest a batch, build features, run AutoML, gate the candidate, deploy the champion."
INGEST_PARAMETERS = (
    Param("source", str, "", "A file, a folder or 'synthetic' (`rows` rows); empty: the spec's."),
    Param("rows", int, 10_000, "Rows of a synthetic source."),
    Param("batch_id", str, "", "Ingest batch id; empty: a hash of the source's content."),
)
# What a search and its gate take; the monitoring pipeline's retraining reuses these.
SEARCH_PARAMETERS = (
    Param(
        "budget_minutes",
        float,
        2.0,
        "Wall clock of the train step: load, search, refit, logging, time kept for the gate.",
    ),
    Param("max_trials", int, 20, "Stop the search after this many trials."),
    Param("seed", int, 42, "Seed of the splits, the sampler and the models."),
    Param(
        "thresholds",
        dict,
        {},
        "Metric minimums laid over the spec's, e.g. {\"roc_auc\": 0.8}; {} keeps the spec's.",
    ),
)
PARAMETERS = (*INGEST_PARAMETERS, *SEARCH_PARAMETERS)


def build(settings: KubricksSettings, close_parent: bool = True) -> GraphComponent:
    """The training pipeline for these settings (image, retries, settings wiring).

    ``close_parent=False`` builds it for nesting: the outer pipeline closes the MLflow run.
    """
    return pipeline(
        NAME,
        DESCRIPTION,
        [USECASE, *PARAMETERS, PARENT_RUN_ID],
        lambda args: tasks(settings, args, close_parent),
    )


def tasks(settings: KubricksSettings, args: dict[str, Any], close_parent: bool = True) -> None:
    """The task graph, given the pipeline's parameters by name."""
    from components import deploy, features, gate, ingest, train
    from components.finish import closing_parent
    from components.tasks import SMALL, SPARK, TRAINING, configure

    image = settings.image
    usecase, parent_run_id = args["usecase"], args["parent_run_id"]
    with closing_parent(settings, parent_run_id, close_parent):
        ingested = configure(
            ingest.component(image)(
                usecase=usecase,
                source=args["source"],
                rows=args["rows"],
                batch_id=args["batch_id"],
                parent_run_id=parent_run_id,
            ),
            settings,
            SPARK,
        ).set_display_name("ingest")
        built = configure(
            features.component(image)(
                usecase=usecase,
                gold=ingested.outputs["gold"],
                parent_run_id=parent_run_id,
            ),
            settings,
            SMALL,
        ).set_display_name("build features")
        trained = configure(
            train.component(image)(
                usecase=usecase,
                gold=ingested.outputs["gold"],
                budget_minutes=args["budget_minutes"],
                max_trials=args["max_trials"],
                seed=args["seed"],
                parent_run_id=parent_run_id,
            ),
            settings,
            TRAINING,
            network=False,
        ).set_display_name("train (AutoML)")
        trained.after(built)
        gated = configure(
            gate.component(image)(
                usecase=usecase,
                model=trained.outputs["model"],
                thresholds=args["thresholds"],
                parent_run_id=parent_run_id,
            ),
            settings,
            SMALL,
            tracking_secret=settings.gate_secrets_name,  # the only login that moves aliases
        ).set_display_name("validate and promote")
        with dsl.If(gated.outputs["Output"] == True, name="gate-passed"):  # noqa: E712
            configure(
                deploy.component(image)(
                    usecase=usecase,
                    registered=gated.outputs["registered"],
                    parent_run_id=parent_run_id,
                ),
                settings,
                SMALL,
            ).set_display_name("deploy")
