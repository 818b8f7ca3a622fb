"""What a pipeline run leaves behind: its record in ``_meta/pipeline_runs``, its MLflow run."""
