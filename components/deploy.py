"""Deploy: hand the champion to serving (recorded only until the serving step exists)."""

from kfp.dsl import Input, Model
from kfp.dsl.python_component import PythonComponent


def deploy(usecase: str, registered: Input[Model], parent_run_id: str) -> str:
    """Resolve ``champion`` to a concrete version, record the hand-off, return the version."""
    from kubricks.steps.handoff import plan
    from kubricks.steps.step import step

    with step("deploy", usecase, parent_run_id) as ctx:
        handoff = plan(ctx.client(), ctx.spec, registered.metadata.get("version"))
        ctx.outputs.update(handoff)
        ctx.set_tags({f"deploy.{k}": v for k, v in handoff.items()})
        print(f"deploy: {handoff['note']}")
        return str(handoff["version"])


def component(image: str) -> PythonComponent:
    from components.tasks import lightweight

    return lightweight(deploy, image)
