"""What a Bento serves: the spec and the model versions, handed from the build to the server.

The packaging side writes it (``serving.packaging.build`` puts it in the Bento's environment
and in a local server's); the server reads it back in ``serving.request.entry``. It lives
on the request side because the server needs it and the server imports nothing of the
packaging side.
"""

from __future__ import annotations

from pydantic import BaseModel

from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec


class BentoConfig(BaseModel):
    """What a Bento serves: the spec itself (no file lookup at run time) and versions."""

    spec: UseCaseSpec
    champion: str
    challenger: str | None = None
    workers: int = 1

    @classmethod
    def from_settings(cls, settings: KubricksSettings) -> BentoConfig:
        if not settings.serving_runtime:
            raise KubricksError(
                "KUBRICKS_SERVING_RUNTIME is unset: start the service with `kubricks serve`"
            )
        return cls.model_validate_json(settings.serving_runtime)
