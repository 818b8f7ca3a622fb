"""Registry errors a user can act on: each names the registered model, version or alias."""

from __future__ import annotations

from kubricks.errors import KubricksError


class RegistryError(KubricksError):
    """A registered model, version, alias or webhook the command needs is missing or refused."""
