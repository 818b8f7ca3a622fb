"""AutoML training: search, metrics, plots and the logged model."""
