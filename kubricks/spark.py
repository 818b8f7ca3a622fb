"""One configured Spark session for local mode (the cluster passes its own master)."""

from __future__ import annotations

import os
import shutil
import sys

from pyspark.sql import Column, SparkSession

from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings
from kubricks.storage import spark_conf

JAVA_HINT = (
    "Spark needs Java 17 or newer: install it (Debian/Ubuntu: apt-get install"
    " openjdk-17-jre-headless; macOS: brew install openjdk@17) and make sure `java` is on PATH"
    " or JAVA_HOME is set."
)


def ensure_java() -> None:
    """Fail with an actionable message instead of Spark's gateway error."""
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise KubricksError(JAVA_HINT)


def get_spark(settings: KubricksSettings, app_name: str = "kubricks") -> SparkSession:
    """Return the process-wide session, creating it with Kubricks' defaults once."""
    ensure_java()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode needs no public interface
    # Python workers (UDFs, spark_udf scoring) must run this interpreter, not `python3` on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    scratch = settings.home.expanduser().resolve() / "spark"
    scratch.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():  # how Spark's files reach object storage
        builder = builder.config(key, value)
    session = (
        builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.local.dir", str(scratch / "tmp"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={scratch}")
        .config("spark.sql.sources.partitionOverwriteMode", "static")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Hadoop applies its own umask (022), not the process's: keep the lakehouse private
        .config("spark.hadoop.fs.permissions.umask-mode", "077")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def quoted(name: str) -> str:
    """A column name as a Spark SQL identifier: backticks around it, inner ones doubled.

    Spark parses every name handed to ``F.col``, ``F.expr`` or a string ``select``, so a
    name with a backtick, a dot, a quote or a space must be quoted, or it is misread.
    """
    return "`" + name.replace("`", "``") + "`"


def column(name: str) -> Column:
    """``F.col`` of a column name taken literally, whatever characters it holds."""
    from pyspark.sql import functions as F

    return F.col(quoted(name))
