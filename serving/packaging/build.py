"""Build time: import the champion (and challenger) into the Bento store, build the Bento.

The running service never needs the registry to answer: the versions it starts with are
in BentoML's model store, and :class:`BentoConfig` (spec + versions) travels in the Bento's
environment as ``KUBRICKS_SERVING_RUNTIME``. Containerizing needs Docker:
``bentoml containerize kubricks-<usecase>:latest`` (see serving/README.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings, resolved_bentoml_home
from kubricks.spec import UseCaseSpec
from kubricks.tracking import connect
from serving.request import store
from serving.request.bento_config import BentoConfig
from serving.request.runtime import (
    CHALLENGER,
    CHAMPION,
    registry_aliases,
    target_path,
    write_target,
)

if TYPE_CHECKING:
    from bentoml._internal.bento.build_config import ModelSpec

REPO = Path(__file__).resolve().parents[2]


def alias_versions(settings: KubricksSettings, spec: UseCaseSpec) -> dict[str, str | None]:
    """The versions to serve; a clear error when the server is down or has no champion."""
    out = registry_aliases(connect(settings), spec)
    if out[CHAMPION] is None:
        raise KubricksError(
            f"registered model {spec.name!r} has no 'champion' alias: train one that passes the"
            f" gate with `kubricks train --usecase {spec.name}` (or `kubricks models promote V`)"
        )
    return out


def prepare(
    settings: KubricksSettings,
    spec: UseCaseSpec,
    champion: str | None = None,
    challenger: str | None = None,
) -> BentoConfig:
    """Import the serving versions into the store (idempotent) and reset the swap target."""
    if champion is None:
        versions = alias_versions(settings, spec)
        champion, challenger = versions[CHAMPION], versions[CHALLENGER]
    assert champion is not None
    store.import_version(settings, spec, champion)
    if challenger is not None:
        store.import_version(settings, spec, challenger)
    write_target(target_path(settings, spec), champion=champion, challenger=challenger)
    return BentoConfig(
        spec=spec, champion=champion, challenger=challenger, workers=settings.serving_workers
    )


def settings_env(settings: KubricksSettings) -> dict[str, str]:
    """Every explicitly set setting as ``KUBRICKS_*``, so the server sees the same values."""
    out: dict[str, str] = {}
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        out[f"KUBRICKS_{name.upper()}"] = str(value)
    return out


def server_env(settings: KubricksSettings, runtime: BentoConfig) -> dict[str, str]:
    """Environment of a local `bentoml serve` process for this runtime."""
    env = dict(os.environ)
    env.update(settings_env(settings))
    env["BENTOML_HOME"] = str(resolved_bentoml_home(settings))
    env["KUBRICKS_SERVING_RUNTIME"] = runtime.model_dump_json()
    env["KUBRICKS_HOME"] = str(settings.home.expanduser().resolve())
    env["KUBRICKS_LAKEHOUSE_ROOT"] = settings.lakehouse_uri
    env["KUBRICKS_TRACKING_URI"] = settings.resolved_tracking_uri
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def build_bento(settings: KubricksSettings, runtime: BentoConfig) -> Any:
    """``kubricks bento build``: a Bento with the code, the spec and the imported models."""
    import bentoml
    from bentoml._internal.bento import BentoStore
    from bentoml._internal.bento.build_config import BentoEnvSchema
    from bentoml._internal.configuration.containers import BentoMLContainer

    home = resolved_bentoml_home(settings)
    models: list[ModelSpec | str | dict[str, Any]] = [store.tag_for(runtime.spec, runtime.champion)]
    if runtime.challenger:
        models.append(store.tag_for(runtime.spec, runtime.challenger))
    (home / "bentos").mkdir(parents=True, exist_ok=True)
    bentos = BentoStore(str(home / "bentos"))
    previous = os.environ.get("KUBRICKS_SERVING_RUNTIME")
    os.environ["KUBRICKS_SERVING_RUNTIME"] = runtime.model_dump_json()  # entry.py reads it
    try:
        with (
            BentoMLContainer.model_store.patch(store.model_store(settings)),
            BentoMLContainer.bento_store.patch(bentos),
        ):
            return bentoml.bentos.build(
                "serving.request.entry:Kubricks",
                name=store.store_name(runtime.spec),
                labels={"usecase": runtime.spec.name, CHAMPION: runtime.champion},
                include=[
                    "serving/**/*.py",
                    "kubricks/**/*.py",
                    "usecases/*.yaml",
                    "pyproject.toml",
                ],
                envs=[
                    BentoEnvSchema(name="KUBRICKS_SERVING_RUNTIME", value=runtime.model_dump_json())
                ],
                python={"requirements_txt": "requirements.lock"},  # relative to build_ctx
                models=models,
                build_ctx=str(REPO),
                _bento_store=bentos,
            )
    finally:
        if previous is None:
            os.environ.pop("KUBRICKS_SERVING_RUNTIME", None)
        else:
            os.environ["KUBRICKS_SERVING_RUNTIME"] = previous
