"""Deploy: put the champion in front of traffic, hot-swapping a running server."""

from kfp.dsl import Input, Model
from kfp.dsl.python_component import PythonComponent


def deploy(usecase: str, registered: Input[Model], parent_run_id: str) -> str:
    """Resolve ``champion`` to a concrete version and serve it; return the version.

    Locally a running ``kubricks serve`` hot-swaps to it (no server: recorded, not an error,
    since serving is optional on a laptop). In the cluster the Bento's Deployment, Service and
    HPA are applied; running pods also swap by the registry webhook and the alias poll.
    """
    from kubricks.steps.handoff import plan
    from kubricks.steps.step import step
    from serving.packaging.deploy import deploy_cluster, deploy_local

    with step("deploy", usecase, parent_run_id) as ctx:
        handoff = plan(ctx.client(), ctx.spec, registered.metadata.get("version"))
        version = str(handoff["version"])
        if ctx.settings.serving_target == "kubernetes":
            from kubernetes import client as k8s_client

            from kubricks.spark_k8s.sparkapp import kubernetes_api

            kubernetes_api()  # loads the in-cluster (or kubeconfig) credentials
            result = deploy_cluster(
                ctx.settings, ctx.spec, version, ctx.settings.image, k8s_client.ApiClient()
            )
            result["deployed"] = bool(result.get("applied"))
        else:
            result = deploy_local(ctx.settings, ctx.spec, version)
        handoff.update({k: v for k, v in result.items() if k != "version"})
        handoff["status"] = "deployed" if result.get("deployed") else "not deployed"
        ctx.outputs.update(handoff)
        ctx.set_tags({f"deploy.{k}": str(v) for k, v in handoff.items()})
        reason = result.get("reason", "")
        print(
            f"deploy: {handoff['note']}: {handoff['status']}" + (f" ({reason})" if reason else "")
        )
        return version


def component(image: str) -> PythonComponent:
    from components.tasks import lightweight

    return lightweight(deploy, image)
