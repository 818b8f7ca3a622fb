"""Small real models for the serving tests, registered the way training and the gate do."""

from __future__ import annotations

import pandas as pd
from sklearn.base import BaseEstimator, is_classifier

from kubricks.settings import KubricksSettings
from tests.registered import register_model


def log_and_register(
    estimator: BaseEstimator,
    frame: pd.DataFrame,
    model_name: str,
    settings: KubricksSettings,
    alias: str | None = "champion",
) -> str:
    """Log ``estimator`` (already fit on ``frame``'s columns) with skops, register it (digest
    recorded) and point ``alias`` at the new version; returns the version."""
    return register_model(
        estimator,
        frame,
        model_name,
        settings.resolved_tracking_uri,
        alias=alias,
        problem_type="classification" if is_classifier(estimator) else "regression",
        experiment=f"serving-{model_name}",
    )
