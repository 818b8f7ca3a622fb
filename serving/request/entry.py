"""What ``bentoml serve serving.request.entry:Kubricks`` imports.

BentoML locates a service by importing a module, so this is the one place that reads
configuration at import time: ``KUBRICKS_SERVING_RUNTIME`` (set by ``kubricks serve`` and
baked into a built Bento's environment) names the use case and the model versions.
"""

from __future__ import annotations

from kubricks.registry.alias_names import CHALLENGER, CHAMPION
from kubricks.settings import get_settings
from serving.request.bento_config import BentoConfig
from serving.request.service import make_service

_settings = get_settings()
_runtime = BentoConfig.from_settings(_settings)
Kubricks = make_service(
    _runtime.spec,
    _settings,
    {CHAMPION: _runtime.champion, CHALLENGER: _runtime.challenger},
    workers=_runtime.workers,
)
