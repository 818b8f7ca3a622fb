"""What a training run hands to the registry gate and to pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field

HOLDOUT_ARTIFACT = "holdout/holdout.parquet"  # features + label, the gate's shared holdout
PROFILE_ARTIFACT = "profile/baseline.json"  # training data summary, the drift baseline
MODEL_ARTIFACT = "model"


@dataclass(frozen=True)
class TrainResult:
    """The best model of one AutoML search, already logged (artifacts complete)."""

    usecase: str
    run_id: str  # the parent (search) run that holds the best model
    model_uri: str  # runs:/<run_id>/model, or the logged model's models:/ uri
    family: str
    metrics: dict[str, float]  # holdout metrics of the best model
    params: dict[str, object] = field(default_factory=dict)
    n_trials: int = 0
    lineage: dict[str, str] = field(default_factory=dict)  # gold table, version, feature views
    search_fraction: float = 1.0  # of the fit rows the search used (a stratified sample if < 1)
    refit: str = "all_rows"  # or "search_sample": the search's fit was kept (no time to refit)
    notes: list[str] = field(default_factory=list)  # what the run said about sampling and refit
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
