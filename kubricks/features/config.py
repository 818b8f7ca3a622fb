"""``feature_store.yaml`` as data: built from settings, secrets revealed only when rendered.

Pure functions: nothing here touches the disk or a network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec

REGISTRY_FILE = "registry.db"
ONLINE_FILE = "online.db"
# Feast writes a materialization to the online store in one batch by default, building a
# protobuf per value for every row first: about 8 KB a row, 80 GB for ten million rows.
ONLINE_WRITE_BATCH_ROWS = 10_000


def repo_config(spec: UseCaseSpec, settings: KubricksSettings, repo: Path) -> dict[str, Any]:
    """The Feast repo config for one use case: SQL registry on SQLite, file offline store."""
    return {
        "project": spec.name,
        "provider": "local",
        "registry": {
            "registry_type": "sql",
            "path": f"sqlite:///{repo / REGISTRY_FILE}",
            "cache_ttl_seconds": 60,
        },
        "offline_store": {"type": "file"},
        "online_store": online_store_config(settings, repo),
        "materialization": {"online_write_batch_size": ONLINE_WRITE_BATCH_ROWS},
        "entity_key_serialization_version": 3,
    }


def online_store_config(settings: KubricksSettings, repo: Path) -> dict[str, Any]:
    """SQLite next to the registry by default; Redis or Postgres when settings say so."""
    kind = settings.feast_online_store
    if kind == "sqlite":
        return {"type": "sqlite", "path": str(repo / ONLINE_FILE)}
    if settings.feast_online_connection is None:
        raise KubricksError(
            f"feast_online_store={kind}: set KUBRICKS_FEAST_ONLINE_CONNECTION to the "
            f"{'Redis host:port[,password=...]' if kind == 'redis' else 'postgresql:// URL'}"
        )
    secret = settings.feast_online_connection.get_secret_value()
    if kind == "redis":
        return {"type": "redis", "connection_string": secret}
    return {"type": "postgres", **_postgres_fields(secret)}


def _postgres_fields(url: str) -> dict[str, Any]:
    """Split a postgresql:// URL into the fields Feast's Postgres online store takes."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres") or not parts.hostname or not parts.path.strip("/"):
        raise KubricksError(
            "KUBRICKS_FEAST_ONLINE_CONNECTION: expected postgresql://user:password@host:port/db"
        )
    fields: dict[str, Any] = {
        "host": parts.hostname,
        "port": parts.port or 5432,
        "database": parts.path.strip("/"),
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
    }
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    if "sslmode" in query:
        fields["sslmode"] = query["sslmode"]
    return fields


def has_secret(config: dict[str, Any]) -> bool:
    """True when the rendered config carries a credential (the file is then kept private)."""
    online = config.get("online_store", {})
    return bool(online.get("password")) or online.get("type") == "redis"


def render(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
