"""The governed model registry: MLflow aliases behind a validation gate, with an audit trail."""
