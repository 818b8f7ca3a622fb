"""Every pipeline compiles to KFP IR with the expected tasks, conditions, retries and wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubricks import pods
from kubricks.settings import KubricksSettings
from kubricks.steps.environment import secret_fields
from pipelines import catalog
from pipelines.compile import compile_all

NETWORK_STEPS = {
    "ingest",
    "build-features",
    "validate-and-promote",
    "deploy",
    "batch-score",
    "maintain",
    "close-parent-run",
}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> KubricksSettings:
    return KubricksSettings(
        home=tmp_path_factory.mktemp("home"),
        image="registry.test/kb:7",
        pipeline_retries=3,
        pipeline_retry_backoff=11,
    )


@pytest.fixture(scope="module")
def compiled(
    settings: KubricksSettings, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    out = tmp_path_factory.mktemp("compiled")
    paths = compile_all(settings, out)
    assert sorted(p.name for p in paths) == sorted(f"{n}.yaml" for n in catalog.names())
    docs = {}
    for path in paths:
        spec, platform = list(yaml.safe_load_all(Path(path).read_text()))
        docs[path.stem] = (spec, platform)
    return docs


def dag_tasks(spec: dict[str, Any], component: str | None = None) -> dict[str, Any]:
    """A DAG's tasks; for the root, the steps inside the exit handler that closes the run."""
    if component is not None:
        return spec["components"][component]["dag"]["tasks"]
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"exit-handler-1", "close-parent-run"}
    return dag_tasks(spec, root["exit-handler-1"]["componentRef"]["name"])


@pytest.mark.parametrize("name", catalog.names())
def test_an_exit_handler_closes_the_mlflow_parent_run(compiled, name: str) -> None:
    spec, _ = compiled[name]
    root = spec["root"]["dag"]["tasks"]
    closer = root["close-parent-run"]
    assert closer["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert closer["dependentTasks"] == ["exit-handler-1"]
    assert "parent_run_id" in closer["inputs"]["parameters"]


def test_training_tasks_and_gate_condition(compiled) -> None:
    spec, _ = compiled["training"]
    tasks = dag_tasks(spec)
    assert set(tasks) == {
        "ingest",
        "build-features",
        "train",
        "validate-and-promote",
        "condition-2",
    }
    condition = tasks["condition-2"]  # condition-1 is the exit handler's group
    assert condition["dependentTasks"] == ["validate-and-promote"]
    assert "validate-and-promote-Output" in condition["triggerPolicy"]["condition"]
    assert condition["triggerPolicy"]["condition"].endswith("== true")
    inner = dag_tasks(spec, condition["componentRef"]["name"])
    assert set(inner) == {"deploy"}
    assert set(tasks["train"]["dependentTasks"]) == {"ingest", "build-features"}


def test_parameters_cover_use_case_source_budget_and_thresholds(compiled) -> None:
    spec, _ = compiled["training"]
    params = spec["root"]["inputDefinitions"]["parameters"]
    for name in (
        "usecase",
        "source",
        "budget_minutes",
        "max_trials",
        "thresholds",
        "parent_run_id",
    ):
        assert name in params
    assert params["thresholds"]["parameterType"] == "STRUCT"
    monitoring = compiled["monitoring"][0]["root"]["inputDefinitions"]["parameters"]
    assert {"monitor_source", "granularity", "retrain", "budget_minutes"} <= set(monitoring)
    assert "source" not in monitoring  # the loop retrains on gold as it stands: no ingest


def test_retries_on_network_steps_only(compiled, settings: KubricksSettings) -> None:
    seen = set()
    for spec, _ in compiled.values():
        dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
        for dag in dags:
            for name, task in dag["tasks"].items():
                if name.startswith(("condition", "exit-handler")) or name == "training":
                    continue
                seen.add(name)
                policy = task.get("retryPolicy")
                if name in NETWORK_STEPS:
                    assert policy["maxRetryCount"] == settings.pipeline_retries, name
                    assert policy["backoffDuration"] == f"{settings.pipeline_retry_backoff}s"
                else:
                    assert policy is None, name
                assert task["cachingOptions"] == {} or not task["cachingOptions"].get(
                    "enableCache"
                ), name
    # train and monitor (which may retrain) are not retried: a retry would repeat the search
    assert seen == NETWORK_STEPS | {"train", "monitor"}


def test_executors_use_the_project_image_and_install_nothing(compiled, settings) -> None:
    for spec, _ in compiled.values():
        for executor in spec["deploymentSpec"]["executors"].values():
            container = executor["container"]
            assert container["image"] == settings.image
            command = " ".join(container["command"][:2] + container["command"][3:])
            assert "pip install" not in command
            assert "kfp.dsl.executor_main" in container["command"][2]
            resources = container["resources"]
            assert {"cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"} <= set(resources)


def test_settings_reach_cluster_steps_through_configmap_and_secret(compiled, settings) -> None:
    _, platform = compiled["training"]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == {
        f"exec-{n}"
        for n in (
            "ingest",
            "build-features",
            "train",
            "validate-and-promote",
            "deploy",
            "close-parent-run",
        )
    }
    login = {"KUBRICKS_TRACKING_USERNAME", "KUBRICKS_TRACKING_PASSWORD"}
    for name, config in executors.items():
        (cm,) = config["configMapAsEnv"]
        assert cm["configMapName"] == settings.settings_configmap
        assert {
            "envVar": "KUBRICKS_LAKEHOUSE_ROOT",
            "configMapKey": "KUBRICKS_LAKEHOUSE_ROOT",
        } in cm["keyToEnv"]
        secret = config["secretAsEnv"][0]
        assert secret["secretName"] == settings.secrets_name
        names = {e["envVar"] for e in secret["keyToEnv"]}
        gate = name == "exec-validate-and-promote"  # its login comes from the gate's Secret
        assert names == {f"KUBRICKS_{f.upper()}" for f in secret_fields()} - (
            login if gate else set()
        )
        assert "KUBRICKS_S3_SECRET_ACCESS_KEY" in names
        assert not {e["configMapKey"] for e in cm["keyToEnv"]} & names
        # the project image's user and group (kubricks.pods), as every other workload runs
        assert config["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": str(pods.PROJECT_UID),
            "runAsGroup": str(pods.PROJECT_GID),
        }


def test_monitoring_deploys_only_a_promoted_model(compiled) -> None:
    spec, _ = compiled["monitoring"]
    tasks = dag_tasks(spec)
    assert set(tasks) == {"monitor", "condition-2", "condition-3"}
    condition = tasks["condition-3"]  # condition-1 is the exit handler's group
    assert "monitor-Output" in condition["triggerPolicy"]["condition"]
    inner = dag_tasks(spec, condition["componentRef"]["name"])
    assert set(inner) == {"deploy"}
    registered = inner["deploy"]["inputs"]["artifacts"]["registered"]
    assert registered == {"componentInputArtifact": "pipelinechannel--monitor-model"}


def test_monitoring_maintains_the_tables_after_monitoring_unless_told_not_to(compiled) -> None:
    spec, _ = compiled["monitoring"]
    condition = dag_tasks(spec)["condition-2"]
    assert "maintain" in condition["triggerPolicy"]["condition"]
    assert condition["dependentTasks"] == ["monitor"]  # never competes with the monitoring read
    inner = dag_tasks(spec, condition["componentRef"]["name"])
    assert set(inner) == {"maintain"}
    params = inner["maintain"]["inputs"]["parameters"]
    assert params["retain_hours"] == {"componentInputParameter": "pipelinechannel--retain_hours"}
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    assert defaults["retain_hours"]["defaultValue"] == 168
    assert defaults["maintain"]["defaultValue"] is True


def test_batch_inference_is_one_scoring_step(compiled) -> None:
    spec, _ = compiled["batch_inference"]
    assert set(dag_tasks(spec)) == {"batch-score"}


def test_committed_compiled_files_are_current(tmp_path: Path) -> None:
    """pipelines/compiled holds what `kubricks compile` writes with default settings."""
    folder = Path(__file__).resolve().parents[2] / "pipelines" / "compiled"
    fresh = compile_all(KubricksSettings.model_construct(), tmp_path)
    for path in fresh:
        committed = folder / path.name
        assert committed.is_file(), f"run `kubricks compile` ({path.name})"
        assert committed.read_text() == path.read_text(), (
            f"{path.name} is stale: `kubricks compile`"
        )


@pytest.mark.parametrize(
    ("name", "gate"),
    [
        ("training", "exec-validate-and-promote"),
        ("monitoring", "exec-monitor"),
        ("batch_inference", None),
    ],
)
def test_only_the_gate_step_logs_in_to_mlflow_as_the_gate(
    compiled, settings: KubricksSettings, name: str, gate: str | None
) -> None:
    """The gate's Secret reaches the step that moves aliases and no other; that step takes
    its whole MLflow login from it, so no second login competes for the same variables
    (in monitoring the closed loop gates inside the monitor step)."""
    _, platform = compiled[name]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    login = {"KUBRICKS_TRACKING_USERNAME", "KUBRICKS_TRACKING_PASSWORD"}
    with_gate = set()
    for executor, config in executors.items():
        secrets = {s["secretName"]: s for s in config["secretAsEnv"]}
        if settings.gate_secrets_name not in secrets:
            continue
        with_gate.add(executor)
        gate_secret = secrets[settings.gate_secrets_name]
        assert {(e["secretKey"], e["envVar"]) for e in gate_secret["keyToEnv"]} == {
            (v, v) for v in login
        }
        assert gate_secret.get("optional") is not True  # no login, no gate
        others = [s for n, s in secrets.items() if n != settings.gate_secrets_name]
        others_env = {e["envVar"] for s in others for e in s["keyToEnv"]}
        (cm,) = config["configMapAsEnv"]
        assert not login & (others_env | {e["envVar"] for e in cm["keyToEnv"]})
    assert with_gate == ({gate} if gate else set())
