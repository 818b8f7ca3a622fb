"""Bronze → silver → gold through Kubricks' Delta path vs the same transforms to plain Parquet.

Run by hand: ``.venv/bin/python benchmarks/ingest.py [--rows 100000 1000000]``.
Both paths share every transform (``build_layers``); only the writer differs, so the
ratio is the cost of Delta (staging + delta-rs commits + run records).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kubricks.lakehouse.ingest import ingest, resolve_source
from kubricks.lakehouse.medallion import build_layers, timed
from kubricks.lakehouse.sources import read_source
from kubricks.settings import KubricksSettings
from kubricks.spark import get_spark
from kubricks.spec import load_spec

STAGES = ("bronze", "expectations", "silver", "quarantine", "gold")


def plain_parquet(spark, spec, source: Path, out: Path) -> tuple[float, dict[str, float]]:
    seconds: dict[str, float] = {}

    def write(df, table: str):
        target = out / table
        df.write.mode("overwrite").parquet(str(target))
        return spark.read.parquet(str(target))

    start = time.perf_counter()
    build_layers(
        read_source(spark, source, spec),
        spec,
        source=str(source),
        batch_id="bench",
        ingested_at=datetime.now(UTC),
        existing_silver=None,
        write=timed(write, seconds),
        seconds=seconds,
    )
    return time.perf_counter() - start, seconds


def delta(spark, spec, source: Path, settings: KubricksSettings) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    result = ingest(spark, spec, source, settings, batch_id=f"bench-{time.time_ns()}")
    return time.perf_counter() - start, result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--usecase", default="churn")
    args = parser.parse_args()
    console = Console(width=200)
    work = Path(tempfile.mkdtemp(prefix="kubricks-bench-"))
    try:
        spec = load_spec(args.usecase)
        spec = spec.model_copy(
            update={"source": spec.source.model_copy(update={"format": "parquet"})}
        )
        spark = get_spark(KubricksSettings(home=work / "spark"))
        warm = resolve_source(spec, "synthetic", KubricksSettings(home=work / "warm"), 2_000)
        delta(spark, spec, warm, KubricksSettings(home=work / "warm"))  # JIT and caches warm
        report = Table(title="Ingest: Kubricks Delta path vs plain Spark Parquet (same run)")
        for column in (
            "rows",
            "path",
            "total s",
            "rows/s",
            *[f"{s} rows/s" for s in STAGES],
            "commit s",
            "Delta / Parquet",
        ):
            report.add_column(column, justify="right")
        for rows in args.rows:
            settings = KubricksSettings(home=work / f"delta-{rows}")
            source = resolve_source(spec, "synthetic", settings, rows)
            p_total, p_stages = plain_parquet(spark, spec, source, work / f"parquet-{rows}")
            d_total, d_stages = delta(spark, spec, source, settings)
            for name, total, stages in (
                ("parquet", p_total, p_stages),
                ("delta", d_total, d_stages),
            ):
                report.add_row(
                    f"{rows:,}",
                    name,
                    f"{total:.1f}",
                    f"{rows / total:,.0f}",
                    *[
                        f"{rows / stages[s]:,.0f} ({stages[s]:.1f} s)" if stages.get(s) else "-"
                        for s in STAGES
                    ],
                    f"{stages.get('commit', 0):.2f}",
                    f"{d_total / p_total:.2f}" if name == "delta" else "",
                )
        console.print(report)
        console.print(
            "Stage rows/s = input rows / the stage's seconds. bronze includes reading the source;"
            " expectations is the rule-count pass (typing, every rule and the distinct keys in one"
            " aggregation);"
            " total also counts Spark planning between stages."
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
