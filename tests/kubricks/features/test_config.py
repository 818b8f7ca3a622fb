"""feature_store.yaml built from settings: SQLite by default, Redis or Postgres on request."""

from __future__ import annotations

import stat
from pathlib import Path

import pyarrow as pa
import pytest
from feast.repo_config import RepoConfig
from feast.types import Float64, Int32, Int64, String, UnixTimestamp
from pydantic import SecretStr

from kubricks.errors import KubricksError
from kubricks.features import config as feast_config
from kubricks.features.definitions import definitions, feast_type, key_value_type
from kubricks.features.store import write_config
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, load_spec

CHURN = load_spec("churn")


def test_default_is_sqlite_under_home(tmp_path: Path) -> None:
    config = feast_config.repo_config(CHURN, KubricksSettings(home=tmp_path), tmp_path / "r")
    assert config["online_store"] == {"type": "sqlite", "path": str(tmp_path / "r/online.db")}
    RepoConfig(**config, repo_path=tmp_path)  # Feast accepts it


def test_materialization_writes_the_online_store_in_bounded_batches(tmp_path: Path) -> None:
    config = feast_config.repo_config(CHURN, KubricksSettings(home=tmp_path), tmp_path / "r")
    parsed = RepoConfig(**config, repo_path=tmp_path)
    assert parsed.materialization_config.online_write_batch_size == 10_000


def test_redis_connection_is_a_secret_until_rendered(tmp_path: Path) -> None:
    settings = KubricksSettings(
        home=tmp_path,
        feast_online_store="redis",
        feast_online_connection=SecretStr("redis:6379,password=s3cret"),
    )
    assert "s3cret" not in repr(settings)
    config = feast_config.repo_config(CHURN, settings, tmp_path)
    assert config["online_store"] == {
        "type": "redis",
        "connection_string": "redis:6379,password=s3cret",
    }
    assert "s3cret" in feast_config.render(config)


def test_postgres_url_becomes_feast_fields(tmp_path: Path) -> None:
    settings = KubricksSettings(
        home=tmp_path,
        feast_online_store="postgres",
        feast_online_connection=SecretStr(
            "postgresql://feast:p%40ss@db:5433/features?sslmode=disable"
        ),
    )
    online = feast_config.repo_config(CHURN, settings, tmp_path)["online_store"]
    assert online == {
        "type": "postgres",
        "host": "db",
        "port": 5433,
        "database": "features",
        "user": "feast",
        "password": "p@ss",
        "sslmode": "disable",
    }


def test_config_file_with_a_secret_is_private(tmp_path: Path) -> None:
    settings = KubricksSettings(
        home=tmp_path,
        feast_online_store="postgres",
        feast_online_connection=SecretStr("postgresql://u:pw@db/f"),
    )
    repo = write_config(CHURN, settings)
    mode = stat.S_IMODE((repo / "feature_store.yaml").stat().st_mode)
    assert mode == 0o600


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_missing_connection_names_the_setting(tmp_path: Path, kind: str) -> None:
    settings = KubricksSettings(home=tmp_path, feast_online_store=kind)
    with pytest.raises(KubricksError, match="KUBRICKS_FEAST_ONLINE_CONNECTION"):
        feast_config.repo_config(CHURN, settings, tmp_path)


def test_bad_postgres_url_is_refused(tmp_path: Path) -> None:
    settings = KubricksSettings(
        home=tmp_path, feast_online_store="postgres", feast_online_connection=SecretStr("db:5432")
    )
    with pytest.raises(KubricksError, match="postgresql://"):
        feast_config.repo_config(CHURN, settings, tmp_path)


def test_arrow_types_map_to_feast_types() -> None:
    assert feast_type(pa.int32()) == Int32
    assert feast_type(pa.int64()) == Int64
    assert feast_type(pa.float64()) == Float64
    assert feast_type(pa.large_string()) == String
    assert feast_type(pa.string()) == String
    assert feast_type(pa.timestamp("us", tz="UTC")) == UnixTimestamp


def test_key_type_and_missing_gold_column(tmp_path: Path) -> None:
    assert key_value_type(CHURN).name == "INT64"
    schema = pa.schema(
        [("CustomerId", pa.int64()), (EVENT_TIME_COLUMN, pa.timestamp("us")), ("Age", pa.int32())]
    )
    with pytest.raises(KubricksError, match="gold/churn: feature column 'CreditScore'"):
        definitions(CHURN, str(tmp_path), schema, "gold/churn")
