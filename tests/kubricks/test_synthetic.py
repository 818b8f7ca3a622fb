"""The synthetic generator: seeded, schema-true, with a learnable label."""

from __future__ import annotations

import pandas as pd

from kubricks.spec import load_spec
from kubricks.synthetic import generate


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    spec = load_spec("churn")
    a, b, c = generate(spec, 500, seed=1), generate(spec, 500, seed=1), generate(spec, 500, 2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_columns_types_and_marginals_follow_the_spec() -> None:
    spec = load_spec("churn")
    frame = generate(spec, 20_000, seed=7)
    assert list(frame.columns) == [c.name for c in spec.columns]
    assert frame[spec.entity_key].is_unique
    assert 0.15 < frame[spec.label].mean() < 0.25  # about 20% churn, as in the real data
    assert frame["Age"].between(18, 92).all()
    assert 0.30 < (frame["Balance"] == 0).mean() < 0.42
    assert set(frame["Geography"]) == {"France", "Spain", "Germany"}


def test_label_depends_on_its_drivers() -> None:
    spec = load_spec("churn")
    frame = generate(spec, 20_000, seed=3)
    old = frame[frame["Age"] > 50][spec.label].mean()
    young = frame[frame["Age"] < 30][spec.label].mean()
    assert old > young + 0.1


def test_synthetic_churn_is_learnable_past_the_gate_threshold() -> None:
    """The demo trains on synthetic rows; its champion must be able to pass the gate."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    spec = load_spec("churn")
    frame = generate(spec, 8_000, seed=11)
    features = frame[[f.name for f in spec.features]].astype(
        {"Geography": "category", "Gender": "category"}
    )
    train, test = slice(0, 6_000), slice(6_000, None)
    model = lgb.LGBMClassifier(n_estimators=150, learning_rate=0.05, num_leaves=15, verbose=-1)
    model.fit(features[train], frame[spec.label][train])
    auc = roc_auc_score(frame[spec.label][test], model.predict_proba(features[test])[:, 1])
    assert auc >= spec.metric.thresholds["roc_auc"] + 0.03
