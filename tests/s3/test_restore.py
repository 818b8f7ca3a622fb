"""`kubricks tables restore` on a lakehouse in a real S3 server (delta-rs only, no Spark)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake

from kubricks.errors import KubricksError
from kubricks.lakehouse import audit, tables
from kubricks.lakehouse.restore import matching_version, restore
from tests.s3.conftest import S3Server


def test_restore_and_a_vacuumed_version_in_the_bucket(s3_server: S3Server, tmp_path: Path) -> None:
    settings = s3_server.settings(tmp_path / "home")
    options = settings.storage_options()
    for layer in ("silver", "gold"):
        uri = tables.table_uri(settings.lakehouse_uri, layer, "wine")
        for batch, rows in (("a", [1]), ("b", [1, 2]), ("c", [1, 2, 3])):
            write_deltalake(
                uri,
                pa.table({"id": rows}),
                mode="overwrite",
                storage_options=options,
                commit_properties=CommitProperties(custom_metadata={tables.BATCH_KEY: batch}),
            )
    done = restore(settings, "silver/wine", version=1, reason="undo c")
    assert done.version == 3
    silver = tables.table_uri(settings.lakehouse_uri, "silver", "wine")
    assert tables.read_arrow(silver, storage_options=options)["id"].to_pylist() == [1, 2]
    assert matching_version(settings, "silver/wine", 1) == ("gold/wine", 1)
    assert [r.action for r in audit.read(settings, "wine")] == ["restore"]

    DeltaTable(silver, storage_options=options).vacuum(
        retention_hours=0, enforce_retention_duration=False, dry_run=False
    )
    with pytest.raises(KubricksError, match=r"^silver/wine: version 0 was vacuumed .* left is 1$"):
        restore(settings, "silver/wine", version=0, reason="too late")
