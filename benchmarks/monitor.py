"""Monitoring speed: Kubricks' drift + profile against Evidently's DataDriftPreset, one run.

1,000,000 monitored rows x 20 features (15 numeric, 5 categorical) against a 100,000-row
baseline, the same frames for both. Kubricks: bins frozen from the baseline, then profile
and drift (KS, Wasserstein, PSI, JS, chi-square, TV, L-inf) of one window plus alarms.
Evidently: ``Report([DataDriftPreset()]).run(current, reference)``.

Evidently is a benchmark-only dependency (it pins pandas<3 and more): run this from the
separate venv described in benchmarks/requirements-monitor.txt:

    .venv-bench/bin/python benchmarks/monitor.py [--rows 1000000] [--baseline 100000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from kubricks.monitoring.analysis import MonitoredColumn, analyze, build_reference
from kubricks.spec import Monitoring

NUMERIC, CATEGORICAL = 15, 5


def frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(NUMERIC):
        values = rng.normal(i * 10, 1 + i, rows) if i % 3 else rng.lognormal(3, 1, rows)
        data[f"num_{i}"] = values + (shift * values.std() if i < 3 else 0.0)
    for i in range(CATEGORICAL):
        levels = np.array([f"c{i}_{k}" for k in range(3 + 4 * i)])
        data[f"cat_{i}"] = levels[rng.integers(0, len(levels), rows)]
    return pd.DataFrame(data)


def kubricks_run(baseline: pd.DataFrame, current: pd.DataFrame) -> tuple[float, float, float]:
    columns = [
        MonitoredColumn(c, "categorical" if c.startswith("cat_") else "numeric")
        for c in baseline.columns
    ]
    current = current.assign(ts=pd.Timestamp("2024-01-15"))
    start = time.perf_counter()
    reference = build_reference(baseline, columns, Monitoring())
    built = time.perf_counter()
    cpu = time.process_time()
    analysis = analyze(reference, current, "ts", "month")
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    print(f"  kubricks drifted: {analysis.drifted_features}")
    return built - start, done - built, cpu


def evidently_run(baseline: pd.DataFrame, current: pd.DataFrame) -> tuple[float, float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[c for c in baseline.columns if c.startswith("num_")],
        categorical_columns=[c for c in baseline.columns if c.startswith("cat_")],
    )
    start, cpu = time.perf_counter(), time.process_time()
    ref = Dataset.from_pandas(baseline, data_definition=definition)
    cur = Dataset.from_pandas(current, data_definition=definition)
    Report([DataDriftPreset()]).run(cur, ref)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=100_000)
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args()
    baseline = frame(args.baseline, seed=1)
    current = frame(args.rows, seed=2, shift=0.5)  # three features move by half a std
    print(f"{args.rows:,} rows x {baseline.shape[1]} features vs a {args.baseline:,}-row baseline")
    freeze, kub, kub_cpu = kubricks_run(baseline, current)
    print(
        f"kubricks: baseline freeze {freeze:.2f} s, profile+drift+alarms {kub:.2f} s"
        f" ({kub_cpu:.2f} CPU s) -> {args.rows / kub:,.0f} rows/s"
        f" ({args.rows / (kub + freeze):,.0f} incl. freeze)"
    )
    if args.skip_evidently:
        return
    evi, evi_cpu = evidently_run(baseline, current)
    print(
        f"evidently DataDriftPreset: {evi:.2f} s ({evi_cpu:.2f} CPU s)"
        f" -> {args.rows / evi:,.0f} rows/s"
    )
    print(
        f"ratio evidently / kubricks: {evi / kub:.1f}x wall ({evi / (kub + freeze):.1f}x incl."
        f" freeze), {evi_cpu / kub_cpu:.1f}x CPU"
    )


if __name__ == "__main__":
    main()
