"""Pipelines: local runner, run records, compile, KFP submit, SparkApplications."""
