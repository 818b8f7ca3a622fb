"""All configuration in one place, read from ``KUBRICKS_*`` environment variables.

Nothing reads the environment at import time: call :func:`get_settings` (or build
``KubricksSettings()``) where the value is needed, and pass it down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# delta-rs's names for the S3 options :meth:`KubricksSettings.storage_options` builds;
# kubricks.storage reads them back to configure pyarrow, boto3 and the MLflow server
S3_ENDPOINT = "AWS_ENDPOINT_URL"
S3_ACCESS_KEY = "AWS_ACCESS_KEY_ID"
S3_SECRET_KEY = "AWS_SECRET_ACCESS_KEY"
S3_REGION = "AWS_REGION"
S3_TIMEOUT = "timeout"
S3_SCHEMES = ("s3://", "s3a://")


class KubricksSettings(BaseSettings):
    """Settings for local and cluster mode; only the values change between them."""

    model_config = SettingsConfigDict(env_prefix="KUBRICKS_", env_file=None, extra="ignore")

    home: Path = Field(Path(".kubricks"), description="Local state: services, logs, tables.")
    lakehouse_root: str | None = Field(
        None, description="Folder or s3:// URI for Delta tables; default <home>/lakehouse."
    )
    usecases_dir: Path | None = Field(
        None,
        description="Where use-case specs are looked up by name and `spec infer` writes them;"
        " default <home>/usecases, then the bundled examples.",
    )
    usecase: str | None = Field(
        None, description="The use case (name or spec path) of commands run without --usecase."
    )

    # Object storage (MinIO in the cluster); only used when lakehouse_root is s3://.
    s3_endpoint_url: str | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    s3_allow_http: bool = True
    s3_conditional_put: str = Field(
        "etag",
        description="delta-rs conditional put mode for Delta commits on S3 (If-None-Match):"
        " two writers of the same version cannot both win. Never unsafe renames.",
    )
    s3_timeout_seconds: int = Field(
        10, description="Timeout against the object store, so a dead one fails fast."
    )
    spark_s3_transport: Literal["copy", "s3a"] = Field(
        "copy",
        description="How Spark's files reach an s3:// lakehouse: 'copy' stages them in a local"
        " scratch folder and uploads them (no hadoop-aws jars needed); 's3a' writes and reads"
        " s3a:// directly (the cluster image carries the jars). delta-rs commits either way.",
    )

    # Spark in local mode.
    spark_master: str = "local[2]"
    spark_driver_memory: str = "4g"
    spark_shuffle_partitions: int = 4

    # Tracking and registry.
    tracking_uri: str | None = Field(
        None, description="MLflow server URL; default http://<mlflow_host>:<mlflow_port>."
    )
    mlflow_host: str = "127.0.0.1"
    mlflow_port: int = 5000
    start_timeout_seconds: float = Field(
        180.0,
        description="How long `kubricks up` and `kubricks serve --background` wait for the"
        " service to answer (importing MLflow or BentoML takes long on a busy machine).",
    )
    database_url: SecretStr | None = Field(
        None, description="Postgres URL for the MLflow backend store; SQLite under home if unset."
    )
    artifacts_destination: str | None = Field(
        None, description="Where the MLflow server stores artifacts; default <home>/mlartifacts."
    )
    registry_webhook_url: str | None = None
    registry_webhook_secret: SecretStr | None = None
    mlflow_webhook_allow_local: bool = Field(
        False,
        description="Let the local MLflow server deliver webhooks over http to private addresses"
        " (a receiver on localhost); MLflow's default is https to public addresses only.",
    )
    gate_margin: float | None = Field(
        None, description="Gate margin over the champion; default the spec's min_improvement."
    )
    registry_actor: str | None = Field(
        None, description="Who the registry audit trail records; default the OS user."
    )

    # Feature store (Feast): offline store on the gold Delta tables, online store below.
    feast_online_store: Literal["sqlite", "redis", "postgres"] = "sqlite"
    feast_online_connection: SecretStr | None = Field(
        None,
        description="Redis 'host:port,password=...' or a postgresql:// URL; unused for sqlite.",
    )

    # Pipelines (KFP): the same pipelines run by kfp.local or on Kubeflow Pipelines.
    image: str = Field(
        "ghcr.io/kubricks/kubricks:0.1.0",
        description="The project image: base_image of every component and the Spark image.",
    )
    kfp_host: str | None = Field(None, description="Kubeflow Pipelines API URL for cluster runs.")
    kfp_namespace: str | None = Field(None, description="KFP namespace (multi-user installs).")
    pipeline_root: str | None = Field(
        None, description="Where step outputs land; default <home>/pipelines locally."
    )
    step_usecase_paths: bool = Field(
        True,
        description="A pipeline step's `usecase` may be a path to a spec YAML. The cluster sets"
        " false: whoever can start a run there then picks a use case by name from"
        " usecases_dir, never a spec of their own.",
    )
    pipeline_retries: int = Field(2, description="Retries of each step that uses the network.")
    pipeline_retry_backoff: int = Field(5, description="Seconds before the first retry.")
    settings_configmap: str = Field(
        "kubricks-settings", description="ConfigMap whose KUBRICKS_* keys reach cluster steps."
    )
    secrets_name: str = Field(
        "kubricks-secrets", description="Secret whose KUBRICKS_* keys reach cluster steps."
    )
    serving_secrets_name: str = Field(
        "kubricks-serving-secrets",
        description="Secret the Bento reads in the cluster: its own S3 and read-only MLflow login.",
    )
    spark_mode: Literal["local", "kubernetes"] = Field(
        "local", description="Run Spark steps in-process, or as SparkApplications on the cluster."
    )
    k8s_namespace: str = Field("kubricks", description="Namespace of the SparkApplications.")
    spark_service_account: str = "spark"
    spark_executor_instances: int = 2
    spark_timeout_seconds: int = 3600

    # AutoML training.
    tracking_http_retries: int = Field(
        2, description="MLflow HTTP retries during training, so a stopped server fails in seconds."
    )
    training_max_rows: int | None = Field(
        None,
        description="Train on a stratified sample of at most this many labelled rows; default"
        " all rows locally (refused in one line if they do not fit in memory) and"
        " 2,000,000 on the cluster (KUBRICKS_SPARK_MODE=kubernetes).",
    )

    # MLflow basic auth: the cluster's MLflow server requires it (infra/). The MLflow client
    # reads MLFLOW_TRACKING_USERNAME/PASSWORD; these carry them through the ConfigMap/Secret.
    tracking_username: str | None = None
    tracking_password: SecretStr | None = None
    tracking_gate_username: str | None = Field(
        None,
        description="The MLflow user that alone (with admins) may move registered-model"
        " aliases when the server runs `mlflow server --app-name kubricks-auth`"
        " (kubricks/tracking_auth.py); read by that server when it starts.",
    )
    gate_secrets_name: str = Field(
        "kubricks-gate-secrets",
        description="Secret with the gate's MLflow login (KUBRICKS_TRACKING_USERNAME/PASSWORD),"
        " mapped into the cluster's gate step only, instead of the pipelines' login.",
    )
    # Real-time serving (BentoML): the service, hot swap, traffic arms and the inference log.
    serving_host: str = "127.0.0.1"
    serving_port: int = 3000
    serving_target: Literal["local", "kubernetes"] = Field(
        "local",
        description="Where the deploy step serves: hot-swap `kubricks serve`, or apply the Bento.",
    )
    serving_node_port: int = Field(
        30300,
        description="The Bento Service's NodePort in the cluster (kind maps it to localhost); "
        "0: a ClusterIP Service (clusters that do not publish NodePorts).",
    )
    serving_workers: int = Field(1, description="BentoML worker processes of `kubricks serve`.")
    bentoml_home: Path | None = Field(
        None, description="BentoML's model and Bento store; default <home>/bentoml."
    )
    serving_runtime: str | None = Field(
        None, description="JSON that tells the Bento which use case and model tags it serves."
    )
    serving_max_body_bytes: int = Field(1_048_576, description="Larger request bodies get 413.")
    serving_header_timeout_seconds: float = Field(
        10.0,
        description="A connection whose request line and headers are not complete this long"
        " after it opened (or after the request's first byte) is closed: slow clients cannot"
        " hold the server's connections.",
    )
    serving_body_timeout_seconds: float = Field(
        30.0, description="A request body not fully received this long after its headers: 408."
    )
    serving_max_rows: int = Field(1000, description="Rows (or keys) allowed in one request.")
    serving_max_batch_rows: int = Field(512, description="Adaptive batching: rows per model call.")
    serving_max_latency_ms: int = Field(
        10_000, description="Adaptive batching: a queued request older than this gets 503."
    )
    serving_fast_path: bool = Field(
        True,
        description="Answer /predict and /predict_by_key in the service's ASGI layer, without"
        " BentoML's per-request API dispatch (same contract; see serving/request/http.py).",
    )
    serving_compiled: bool = Field(
        True,
        description="Score with the compiled (ONNX) form the gate verified when a version has"
        " one (kubricks/registry/compiled.py); false: always scikit-learn.",
    )
    serving_fast_preprocessing: bool = Field(
        True,
        description="Prepare features with array lookups derived from the model's fitted steps"
        " (kubricks/training/fast_preprocess.py, equal output); false: scikit-learn's transform.",
    )
    serving_trace_predictions: bool = Field(
        False,
        description="OpenTelemetry spans for /predict and /predict_by_key (BentoML's `tracing`"
        " config says where they go). Off: a span cost a third of a single-row request.",
    )
    serving_poll_seconds: float = Field(
        30.0, description="Alias poll, the safety net for missed registry webhooks (0: off)."
    )
    serving_traffic: Literal["champion", "shadow", "split"] | None = Field(
        None, description="Overrides the spec's serving.traffic."
    )
    serving_split_percent: float | None = Field(
        None, description="Overrides the spec's serving.split_percent."
    )
    inference_log_flush_seconds: float = Field(
        2.0, description="The inference-log writer commits at least this often."
    )
    inference_log_max_rows: int = Field(
        5000, description="...or as soon as this many rows wait (the crash-loss bound)."
    )
    auto_compact_small_files: int = Field(
        100,
        description="Writers of many small commits (the inference-log writer, `kubricks stream`)"
        " compact the table once it holds this many files below the target size; 0: never.",
    )

    @property
    def lakehouse_uri(self) -> str:
        """The lakehouse root as an absolute local path or an object-store URI."""
        if self.lakehouse_root:
            if "://" in self.lakehouse_root:
                return self.lakehouse_root.rstrip("/")
            return str(Path(self.lakehouse_root).expanduser().resolve())
        return str((self.home / "lakehouse").expanduser().resolve())

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or f"http://{self.mlflow_host}:{self.mlflow_port}"

    def storage_options(self) -> dict[str, str] | None:
        """delta-rs storage options for an s3:// lakehouse, or None for local folders.

        Built here, from these fields alone, so that settings imports nothing of its own
        package: every S3 consumer in ``kubricks.storage`` starts from this dict."""
        if not self.lakehouse_uri.startswith(S3_SCHEMES):
            return None
        timeout = f"{self.s3_timeout_seconds}s"
        options = {
            S3_REGION: self.s3_region,
            "aws_conditional_put": self.s3_conditional_put,
            S3_TIMEOUT: timeout,
            "connect_timeout": timeout,
            "max_retries": "2",
            "retry_timeout": f"{self.s3_timeout_seconds * 2}s",
        }
        if self.s3_endpoint_url:
            options[S3_ENDPOINT] = self.s3_endpoint_url
            options["AWS_ALLOW_HTTP"] = str(self.s3_allow_http).lower()
        if self.s3_access_key_id:
            options[S3_ACCESS_KEY] = self.s3_access_key_id.get_secret_value()
        if self.s3_secret_access_key:
            options[S3_SECRET_KEY] = self.s3_secret_access_key.get_secret_value()
        return options


def get_settings(**overrides: Any) -> KubricksSettings:
    """Read settings from the environment now, with explicit overrides on top."""
    return KubricksSettings(**overrides)


def resolved_bentoml_home(settings: KubricksSettings) -> Path:
    """BentoML's store root: models imported at build time and built Bentos live here."""
    return (settings.bentoml_home or settings.home / "bentoml").expanduser().resolve()
