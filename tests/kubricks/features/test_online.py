"""Materialize churn into the SQLite online store and read features back by key."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from kubricks.errors import KubricksError
from kubricks.features import online
from kubricks.features.online import materialize, online_features, parse_key, sqlite_advice
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec

CHURN = load_spec("churn")
KEYS = [15634602, 15647311, 15815690, 15628319]


def gold_rows(settings: KubricksSettings, keys: list[int]) -> dict[int, dict]:
    uri = layer_tables(CHURN, settings.lakehouse_uri)["gold"][1]
    rows = tables.read_arrow(uri).to_pylist()
    return {r["CustomerId"]: r for r in rows if r["CustomerId"] in keys}


@pytest.mark.slow
def test_online_values_match_gold(
    churn_settings: KubricksSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(online, "SQLITE_ADVISED_KEYS", 5_000)  # 10,000 keys: too many here
    assert online_features(CHURN, churn_settings, KEYS[:1]) == [
        {"CustomerId": KEYS[0], **dict.fromkeys(CHURN.gold_feature_columns())}
    ]  # nothing materialized yet

    assert materialize(CHURN, churn_settings) == 10_000
    assert "10,000 keys into the local SQLite online store" in capsys.readouterr().err
    got = online_features(CHURN, churn_settings, [*KEYS, 1])
    expected = gold_rows(churn_settings, KEYS)
    assert len(expected) == len(KEYS)
    for row in got[:-1]:
        gold = expected[row["CustomerId"]]
        assert list(row) == ["CustomerId", *CHURN.gold_feature_columns()]
        for column in CHURN.gold_feature_columns():
            if isinstance(gold[column], str):  # categories stay raw (encoded inside the model)
                assert row[column] == gold[column], (row["CustomerId"], column)
            else:
                assert math.isclose(row[column], gold[column]), (row["CustomerId"], column)
    assert got[-1] == {"CustomerId": 1, **dict.fromkeys(CHURN.gold_feature_columns())}
    # a key asked twice in one read gets the same row twice
    assert online_features(CHURN, churn_settings, [KEYS[1], KEYS[1]]) == [got[1], got[1]]

    # Serving's reader: the same rows without the key, None for an unknown key; once open,
    # the local SQLite store is read on the event loop (inline), not in a thread.
    from serving.request.lookup import FeastReader

    reader = FeastReader(CHURN, churn_settings)
    assert not reader.inline  # opening applies the definitions: that stays in a thread
    served = reader([*KEYS, 1])
    assert served[:-1] == [{k: v for k, v in row.items() if k != "CustomerId"} for row in got[:-1]]
    assert served[-1] is None
    assert reader.inline

    # Incremental: nothing new in gold since the last end time.
    assert materialize(CHURN, churn_settings, end=datetime.now(UTC) + timedelta(seconds=1)) == 0
    assert "SQLite" not in capsys.readouterr().err


def test_only_a_big_sqlite_materialization_is_warned_about() -> None:
    assert sqlite_advice(1_000_000, "sqlite") is None
    assert sqlite_advice(10_000_000, "redis") is None
    advice = sqlite_advice(10_000_000, "sqlite")
    assert advice is not None
    assert "10,000,000 keys" in advice
    assert "51 minutes" in advice  # at the measured 3,300 keys a second
    assert "KUBRICKS_FEAST_ONLINE_STORE=redis" in advice


def test_keys_from_the_command_line_are_typed() -> None:
    assert parse_key(CHURN, "15634602") == 15634602
    with pytest.raises(KubricksError, match="CustomerId: 'abc' is not a valid long"):
        parse_key(CHURN, "abc")
