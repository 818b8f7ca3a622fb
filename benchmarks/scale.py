"""The whole lifecycle at growing row counts: seconds, peak memory and growth per 10x rows.

Run by hand (never in CI):

    .venv/bin/python benchmarks/scale.py --rows 100000 1000000
    nice -n 10 .venv/bin/python benchmarks/scale.py --rows 10000000 &   # long: run it alone
    .venv/bin/python benchmarks/scale.py --report                       # all tiers measured so far

Each tier gets its own ``KUBRICKS_HOME`` (under ``--work``) and MLflow server. Every step
runs in a fresh process, as a user would run it (the CLI where one exists), and is measured
from outside: wall-clock seconds, and the peak resident memory of the step's whole process
tree (the Spark JVM included), sampled every 0.1 s. Steps, in lifecycle order:

- ``ingest``: ``kubricks ingest --source synthetic --rows N`` (the CSV is written beforehand,
  untimed, by the ``generate`` step);
- ``materialize``: ``kubricks features materialize`` (Feast apply, then every key into the
  SQLite online store);
- ``training_set``: Feast's point-in-time training set of every gold row;
- ``train``: ``kubricks train --budget-minutes B`` (a fixed budget: it should not grow);
- ``gate``: what the gate computes: the candidate's holdout downloaded and scored by the
  candidate and the champion;
- ``batch_score``: the champion over gold with Spark into ``gold/<name>_predictions``;
- ``monitor``: ``kubricks monitor`` over an inference log of N rows spread over one day
  (written beforehand, untimed, from the batch predictions);
- ``lookup``: online features of 1,000 random keys, one call per key (p50 and p99 ms).

Results go to ``<work>/scale-<rows>.json``; ``--report`` prints every tier found there side
by side with the growth factor per 10x rows (time and memory).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == REPO / "benchmarks":
    sys.path[0] = str(REPO)  # benchmarks/serving.py must not shadow the serving package
PYTHON = sys.executable
KUBRICKS = str(Path(sys.executable).with_name("kubricks"))
USECASE = "churn"
STEPS = (
    "generate",
    "ingest",
    "materialize",
    "training_set",
    "train",
    "gate",
    "batch_score",
    "log",
    "monitor",
    "lookup",
)
SETUP_STEPS = ("generate", "log")  # preparation, not lifecycle steps: measured, not judged
LOOKUPS = 1000
SECONDS_PER_DAY = 86_400


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- measuring a step from outside ---------------------------------------------------------


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (Spark's JVM is a child)."""
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def measured(command: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``command``; its wall seconds, peak tree RSS, exit code and last output line."""
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        proc = psutil.Process(child.pid)
        peak = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                with contextlib.suppress(psutil.Error):
                    peak = max(peak, tree_rss(proc))
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = child.wait()
        stop.set()
        sampler.join()
    seconds = time.perf_counter() - started
    lines = log.read_text(errors="replace").strip().splitlines()
    detail: dict[str, Any] = {}
    for line in reversed(lines):
        if line.startswith("SCALE "):
            detail = json.loads(line[len("SCALE ") :])
            break
    return {
        "seconds": round(seconds, 2),
        "peak_gb": round(peak / 2**30, 3),
        "exit": code,
        "last": lines[-1][:300] if lines else "",
        **detail,
    }


def step_command(
    step: str, rows: int, budget: float, max_trials: int, max_rows: int | None = None
) -> list[str]:
    """The command a user would run for ``step`` (or this script's in-process step)."""
    sample = ["--max-rows", str(max_rows)] if max_rows else []
    cli = {
        "ingest": [KUBRICKS, "ingest", "--usecase", USECASE, "--source", "synthetic",
                   "--rows", str(rows)],
        "materialize": [KUBRICKS, "features", "materialize", "--usecase", USECASE],
        "train": [KUBRICKS, "train", "--usecase", USECASE, "--budget-minutes", str(budget),
                  "--max-trials", str(max_trials), *sample],
        "monitor": [KUBRICKS, "monitor", "--usecase", USECASE, "--source", "inference-log"],
    }  # fmt: skip
    if step in cli:
        return cli[step]
    return [PYTHON, __file__, "--step", step, "--rows", str(rows)]


# ---- steps that have no CLI command (run inside the child process) -------------------------


def report(detail: dict[str, Any]) -> None:
    print("SCALE " + json.dumps(detail), flush=True)


def run_step(step: str, rows: int) -> None:
    from kubricks.settings import get_settings
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(USECASE, settings.usecases_dir)
    if step == "generate":
        from kubricks.lakehouse.ingest import resolve_source

        path = resolve_source(spec, "synthetic", settings, rows)
        report({"file_mb": round(path.stat().st_size / 2**20, 1)})
    elif step == "training_set":
        from kubricks.features.training import training_set

        frame = training_set(spec, settings).frame
        report({"rows": len(frame), "frame_mb": round(frame.memory_usage(deep=True).sum() / 2**20)})
    elif step == "gate":
        gate_step(spec, settings)
    elif step == "batch_score":
        from kubricks.scoring.batch import score_gold
        from kubricks.spark import get_spark

        result = score_gold(get_spark(settings), spec, settings)
        report({"rows": result.rows, "model_version": result.model_version})
    elif step == "log":
        write_inference_log(spec, settings)
    elif step == "lookup":
        lookup_step(spec, settings)
    else:
        raise SystemExit(f"unknown step {step!r}")


def gate_step(spec: Any, settings: Any) -> None:
    """The gate's work: download the candidate's holdout, score candidate and champion on it."""
    from kubricks.registry.aliases import promote
    from kubricks.registry.champion import champion, current_champion
    from kubricks.registry.safe_load import load_version
    from kubricks.registry.scoring import load_holdout, score
    from kubricks.tracking import connect

    client = connect(settings)
    if current_champion(client, spec.name) is None:  # the gate refused it: promote by hand
        latest = max(int(v.version) for v in client.search_model_versions(f"name='{spec.name}'"))
        promote(settings, spec.name, str(latest), "benchmarks/scale.py: steps need a champion")
    version = champion(client, spec.name, "the train step registers one")
    run_id = version.tags.get("kubricks.run_id") or version.run_id
    started = time.perf_counter()
    holdout = load_holdout(client, run_id, spec)
    loaded = time.perf_counter() - started
    metrics = [
        score(load_version(client, spec.name, version.version).estimator, holdout, spec)
        for _ in ("candidate", "champion")
    ]
    report(
        {
            "holdout_rows": len(holdout),
            "download_s": round(loaded, 2),
            spec.metric.primary: round(metrics[0][spec.metric.primary], 4),
        }
    )


def write_inference_log(spec: Any, settings: Any) -> None:
    """N inference-log rows spread over one day, from the batch predictions and gold."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from kubricks.lakehouse import tables
    from kubricks.lakehouse.gold import read_gold
    from kubricks.scoring.batch import predictions_table
    from serving.request.inference_log import log_schema, log_uri

    options = settings.storage_options()
    gold, _ = read_gold(spec, settings)
    _, uri = predictions_table(spec, settings.lakehouse_uri)
    predictions = tables.read_arrow(uri, None, options)
    n = min(gold.num_rows, predictions.num_rows)
    key = spec.entity_key
    order = pc.sort_indices(gold, [(key, "ascending")])
    gold = gold.take(order).slice(0, n)
    predictions = predictions.take(pc.sort_indices(predictions, [(key, "ascending")])).slice(0, n)
    schema = log_schema(spec)
    start = np.datetime64("2026-12-01T00:00:00", "us")
    offsets = np.sort(np.random.default_rng(7).integers(0, SECONDS_PER_DAY * 10**6, n))
    columns: dict[str, Any] = {
        "request_id": pa.array(np.char.mod("r%d", np.arange(n)).astype(object)),
        "requested_at": pa.array(start + offsets.astype("timedelta64[us]")),
        "entity_key": pc.cast(gold[key], pa.string()),
        "prediction": pc.cast(predictions["prediction"], pa.string()),
        "probability": predictions["probability"],
        "probabilities": pa.nulls(n, pa.string()),
        "model_name": pa.array([spec.name] * n, pa.string()),
        "model_version": pc.cast(predictions["model_version"], pa.string()),
        "arm": pa.array(["champion"] * n, pa.string()),
    }
    for field in schema:
        if field.name not in columns:
            columns[field.name] = gold[field.name]
    arrays = [pc.cast(columns[f.name], f.type) for f in schema]
    table = pa.Table.from_arrays(arrays, schema=schema)
    from deltalake import write_deltalake

    write_deltalake(log_uri(spec, settings), table, mode="overwrite", storage_options=options)
    report({"rows": n})


def lookup_step(spec: Any, settings: Any) -> None:
    """Online features of random keys, one call per key, as serving's by-key path asks
    (the store opened once, as a serving worker holds it)."""
    import numpy as np

    from kubricks.features.store import feature_refs, feature_store
    from kubricks.lakehouse.gold import read_gold

    gold, _ = read_gold(spec, settings, columns=[spec.entity_key])
    keys = gold[spec.entity_key].to_numpy()
    chosen = np.random.default_rng(11).choice(keys, size=min(LOOKUPS, len(keys)), replace=False)
    store, refs = feature_store(spec, settings), feature_refs(spec)
    features = spec.gold_feature_columns()
    times, found = [], 0
    for k in chosen:
        started = time.perf_counter()
        row = store.get_online_features(
            features=refs, entity_rows=[{spec.entity_key: k.item()}]
        ).to_dict()
        times.append(time.perf_counter() - started)
        found += any(row[c][0] is not None for c in features)
    ms = np.asarray(times) * 1000
    report(
        {
            "lookups": len(chosen),
            "found": found,
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
        }
    )


# ---- one tier, then the report ------------------------------------------------------------


def run_tier(
    rows: int,
    work: Path,
    budget: float,
    max_trials: int,
    steps: list[str],
    max_rows: int | None = None,
) -> Path:
    from kubricks import services
    from kubricks.settings import KubricksSettings

    home = (work / f"rows-{rows}").resolve()
    home.mkdir(parents=True, exist_ok=True)
    results_path = work / f"scale-{rows}.json"
    results: dict[str, Any] = {"rows": rows, "budget_minutes": budget, "steps": {}}
    if results_path.exists():
        results = json.loads(results_path.read_text())
    server = KubricksSettings(home=home, mlflow_port=free_port())
    status = services.start_mlflow(server, timeout=300)
    env = {
        **os.environ,
        "KUBRICKS_HOME": str(home),
        "KUBRICKS_TRACKING_URI": status.url,
        "PYTHONPATH": str(REPO),
    }
    console = Console()
    try:
        for step in steps:
            load = os.getloadavg()[0]
            console.print(f"[bold]{rows:,} rows[/]: {step} (load {load:.1f}) …")
            command = step_command(step, rows, budget, max_trials, max_rows)
            result = measured(command, env, home / f"{step}.log")
            result["load_before"] = round(load, 2)
            result["load_after"] = round(os.getloadavg()[0], 2)
            if step == "train" and max_rows:
                result["max_rows"] = max_rows
            results["steps"][step] = result
            results["cpus"] = psutil.cpu_count()
            results["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
            results_path.write_text(json.dumps(results, indent=2))
            console.print(f"  {json.dumps(result)}")
            if result["exit"] != 0:
                console.print(f"  [red]{step} failed[/]: see {home / f'{step}.log'}")
                break
    finally:
        services.stop_mlflow(server)
    return results_path


def growth(small: dict[str, Any] | None, big: dict[str, Any] | None, key: str, tiers: float) -> str:
    if not small or not big or small.get("exit") or big.get("exit") or not small.get(key):
        return "-"
    return f"{(big[key] / small[key]) ** (1 / tiers):.1f}x"


def print_report(work: Path) -> None:
    found = sorted(
        (json.loads(p.read_text()) for p in work.glob("scale-*.json")), key=lambda r: r["rows"]
    )
    if not found:
        raise SystemExit(f"no results under {work}")
    table = Table(title="Lifecycle at scale (seconds / peak GB of the step's process tree)")
    table.add_column("step")
    for tier in found:
        table.add_column(f"{tier['rows']:,} rows", justify="right")
    for small, big in itertools.pairwise(found):
        table.add_column(f"growth {small['rows']:,}→{big['rows']:,} (per 10x)", justify="right")
    for step in STEPS:
        cells = []
        for tier in found:
            r = tier["steps"].get(step)
            if r is None:
                cells.append("-")
            elif r["exit"]:
                cells.append(f"failed ({r['last'][:60]})")
            else:
                cells.append(f"{r['seconds']:.1f} s / {r['peak_gb']:.2f} GB")
        for small, big in itertools.pairwise(found):
            tiers = math.log10(big["rows"] / small["rows"])
            a, b = small["steps"].get(step), big["steps"].get(step)
            cells.append(f"{growth(a, b, 'seconds', tiers)} / {growth(a, b, 'peak_gb', tiers)}")
        name = f"{step} (setup)" if step in SETUP_STEPS else step
        table.add_row(name, *cells)
    Console().print(table)
    for tier in found:
        loads = [s.get("load_before") for s in tier["steps"].values() if "load_before" in s]
        details = {k: {x: v for x, v in s.items() if x not in ("last",)}
                   for k, s in tier["steps"].items()}  # fmt: skip
        print(f"{tier['rows']:,} rows: load average before steps {loads}")
        print(json.dumps(details))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--budget-minutes", type=float, default=3.0)
    parser.add_argument("--max-trials", type=int, default=30)
    parser.add_argument(
        "--max-rows",
        type=int,
        help="train on a stratified sample of this many rows (what `train --max-rows` does)",
    )
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kubricks-scale"))
    parser.add_argument("--report", action="store_true", help="print the tiers measured so far")
    parser.add_argument("--step", help=argparse.SUPPRESS)  # inside a child process
    args = parser.parse_args()
    if args.step:
        run_step(args.step, args.rows[0])
        return
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.report:
        for rows in args.rows:
            run_tier(
                rows, args.work, args.budget_minutes, args.max_trials, args.steps, args.max_rows
            )
    print_report(args.work)


if __name__ == "__main__":
    main()
