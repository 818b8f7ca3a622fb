"""``benchmarks/serving.py --families``: the champion of each AutoML family, served side by side.

Churn is ingested into gold (categories as values) and materialised to the online store;
each family's default configuration is trained on gold, registered with the gate's digest
and compiled the way the gate compiles a passed model (kubricks.registry.compiled.record).
Each champion is then served twice on the same port, one after the other: through its
compiled (ONNX) form and through scikit-learn (``KUBRICKS_SERVING_COMPILED=false``); wrk
sends single rows at c=16 to ``/predict`` and single keys to ``/predict_by_key``, cycling
through 1,000 distinct customers (one repeated key would let a lookup batch read one key
for every request in it). The load
average is printed beside each run: the machine is shared, so read ratios measured in one
run, not absolute numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from rich.console import Console
from rich.table import Table
from sklearn.model_selection import train_test_split

from benchmarks.serving import REPO, SECRET, free_port, start, stop, wait_http, wrk
from kubricks import services
from kubricks.features.online import materialize
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import ingest, layer_tables
from kubricks.registry import compiled
from kubricks.settings import KubricksSettings
from kubricks.spark import get_spark
from kubricks.spec import load_spec
from kubricks.synthetic import write_synthetic
from kubricks.training.search_space import build_pipeline, family_named
from serving.packaging import build, local
from tests.registered import register_model

console = Console()
FAMILIES = ("logistic_regression", "random_forest", "extra_trees", "lightgbm")
# (name, compiled form on, fast preprocessing on, by key too): the served variants; the
# second is how the compiled form was served before the preprocessing was made fast.
VARIANTS = (
    ("onnx", True, True, True),
    ("onnx + scikit-learn preprocessing", True, False, False),
    ("scikit-learn", False, True, True),
)
TODAY_RF_RPS = 474.0  # random-forest champion on /predict at c=16 before this work
TODAY_LOGISTIC_RPS = 4310.0  # logistic regression on /predict at c=16 before this work


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def single_row_ms(predict: Any, rows: pd.DataFrame, seconds: float = 3.0) -> float:
    """Median milliseconds of one single-row call in this process."""
    times = []
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < seconds:
        row = rows.iloc[[i % len(rows)]]
        t0 = time.perf_counter()
        predict(row)
        times.append(time.perf_counter() - t0)
        i += 1
    return float(np.median(times) * 1000)


def prepare_gold(settings: KubricksSettings, spec: Any, home: Path) -> pd.DataFrame:
    spark = get_spark(settings, "bench-families")
    try:
        source = write_synthetic(spec, 5000, home / "churn.csv", seed=11)
        ingest(spark, spec, source, settings)
    finally:
        spark.stop()
    gold = tables.read_arrow(layer_tables(spec, settings.lakehouse_uri)["gold"][1]).to_pandas()
    materialize(spec, settings)
    return gold


def serve_and_measure(
    settings: KubricksSettings,
    spec: Any,
    version: str,
    body: list[str],
    key_body: list[str] | None,
    seconds: int,
) -> dict[str, Any]:
    started = local.start(settings, build.prepare(settings, spec, champion=version), timeout=300)
    try:
        info = httpx.get(f"{started.url}/admin/model", timeout=10).json()
        out: dict[str, Any] = {"backend": info["backends"]["champion"]}
        pairs = [("predict", body)] + ([("predict_by_key", key_body)] if key_body else [])
        routes = {f"{started.url}/{route}": (route, payload) for route, payload in pairs}
        # Warm both routes first: a worker settles its heap (warm-up, gc.freeze) just after it
        # reports ready, and the first by-key lookups open the online store.
        for url, (route, payload) in routes.items():
            answer = httpx.post(
                url, content=payload[0], headers={"content-type": "application/json"}
            )
            assert answer.status_code == 200, (route, answer.text)
            wrk(url, payload, 16, 3)
        for url, (route, payload) in routes.items():
            out[route] = {**wrk(url, payload, 16, seconds), "load": load()}
            console.print(f"  {route:15} {out[route]}")
        return out
    finally:
        local.stop(settings, spec.name)


def mlserver_venv(home: Path) -> Path:
    """MLServer in a venv of its own under the work folder (requirements-mlserver.txt)."""
    venv = home / "mlserver-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    uv = Path(sys.executable).with_name("uv")
    requirements = REPO / "benchmarks" / "requirements-mlserver.txt"
    install = [str(uv), "pip", "install", "--quiet", "--python", str(python)]
    subprocess.run([*install, "-r", str(requirements)], check=True)
    subprocess.run([*install, "--no-deps", "-e", str(REPO)], check=True)  # the transformers
    return venv


def v2_body(row: pd.DataFrame) -> str:
    """One row in the V2 inference protocol, read by MLServer's pandas codec."""
    inputs = []
    for name, value in row.iloc[0].items():
        if isinstance(value, str):
            inputs.append(
                {
                    "name": name,
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"content_type": "str"},
                    "data": [value],
                }
            )
        else:
            inputs.append({"name": name, "shape": [1], "datatype": "FP64", "data": [float(value)]})
    return json.dumps(
        {
            "parameters": {"content_type": "pd"},
            "inputs": inputs,
            "outputs": [{"name": "predict_proba"}],
        }
    )


def mlserver_measure(
    venv: Path, home: Path, name: str, model: Any, body: str, seconds: int
) -> dict[str, Any]:
    """Serve ``model`` with MLServer's scikit-learn runtime, adaptive batching on."""
    import joblib

    folder = home / f"mlserver-{name}"
    (folder / name).mkdir(parents=True)
    joblib.dump(model, folder / name / "model.joblib")  # MLServer's own format: a pickle
    port = free_port()
    (folder / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                # inference in the server process: MLServer 1.7.1's worker pool fails to start
                # here ("no current event loop" in uvloop's setup), and 2 cores gain nothing
                "parallel_workers": 0,
            }
        )
    )
    (folder / name / "model-settings.json").write_text(
        json.dumps(
            {
                "name": name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "max_batch_size": 16,
                "max_batch_time": 0.005,
                "parameters": {"uri": "./model.joblib", "version": "v1"},
            }
        )
    )
    process = start(
        [str(venv / "bin" / "mlserver"), "start", str(folder)],
        {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"},
        home / f"mlserver-{name}.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/models/{name}/ready", timeout=300)
        url = f"http://127.0.0.1:{port}/v2/models/{name}/infer"
        answer = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 200, answer.text
        wrk(url, body, 16, 2)  # warm-up
        out = {**wrk(url, body, 16, seconds), "load": load()}
        console.print(f"  mlserver        {out}")
        return out
    finally:
        stop(process)


def run_families(
    seconds: int, workers: int, only: list[str] | None, with_mlserver: bool
) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="kubricks-bench-families-"))
    spec = load_spec("churn").model_copy(update={"name": "churn_families"})
    settings = KubricksSettings(
        home=home,
        mlflow_port=free_port(),
        serving_port=free_port(),
        serving_workers=workers,
        registry_webhook_secret=SECRET,
        serving_poll_seconds=0,
    )
    services.start_mlflow(settings, timeout=600)  # a shared machine can be slow to start it
    os.environ["MLFLOW_TRACKING_URI"] = settings.resolved_tracking_uri
    results: dict[str, Any] = {}
    try:
        gold = prepare_gold(settings, spec, home)
        features = spec.gold_feature_columns()
        train, holdout = train_test_split(gold, test_size=0.2, random_state=0)
        client = MlflowClient(settings.resolved_tracking_uri)
        # Single rows and single keys of 1,000 distinct customers, sent in turn.
        row = gold.iloc[[0]]
        customers = gold.iloc[:1000]
        records = json.loads(customers[features].to_json(orient="records"))
        body = [json.dumps({"rows": [record]}) for record in records]
        key_body = [json.dumps({"keys": [int(k)]}) for k in customers[spec.entity_key]]
        console.print(f"single rows like: {body[0]}")
        venv = mlserver_venv(home) if with_mlserver else None
        for name in only or FAMILIES:
            family = family_named("classification", name)
            model = build_pipeline(spec, family, family.defaults, seed=0)
            model.fit(train[features], train[spec.label])
            version = register_model(
                model, train[features], spec.name, settings.resolved_tracking_uri, alias=None
            )
            run_id = client.get_model_version(spec.name, version).run_id
            tags = compiled.record(client, spec.name, version, run_id, model, holdout[features])
            console.print(f"[bold]{name}[/] v{version}: {tags[compiled.REASON_TAG]}")
            entry: dict[str, Any] = {"version": version, "tags": tags}
            entry["in_process_sklearn_ms"] = single_row_ms(model.predict_proba, holdout[features])
            if tags[compiled.COMPILED_TAG] == compiled.ONNX:
                onnx = compiled.CompiledModel(model, _artifact(client, tags, home))
                entry["in_process_onnx_ms"] = single_row_ms(onnx.predict_proba, holdout[features])
            if tags[compiled.COMPILED_TAG] == compiled.ONNX:
                prep = compiled.CompiledModel(model, _artifact(client, tags, home)).preprocess
                entry["in_process_fast_prep_ms"] = single_row_ms(prep.transform, holdout[features])
                entry["in_process_sklearn_prep_ms"] = single_row_ms(
                    model[:-1].transform, holdout[features]
                )
            for backend, flag, fast, keys in VARIANTS:
                console.print(f" serving {name} with {backend}")
                use = settings.model_copy(
                    update={"serving_compiled": flag, "serving_fast_preprocessing": fast}
                )
                entry[backend] = serve_and_measure(
                    use, spec, version, body, key_body if keys else None, seconds
                )
            if venv is not None:
                console.print(f" serving {name} with MLServer")
                try:
                    entry["mlserver"] = mlserver_measure(
                        venv, home, name, model, v2_body(row[features]), seconds
                    )
                except Exception as exc:  # a peer that fails must not lose our numbers
                    console.print(f"  MLServer failed: {exc} (see {home}/mlserver-{name}.log)")
            results[name] = entry
            print_family(name, entry)
        summary(results)
        (home / "families.json").write_text(json.dumps(results, indent=2, default=str))
        console.print(f"raw numbers: {home / 'families.json'}")
    finally:
        local.stop(settings, spec.name)
        services.stop_mlflow(settings)
    return results


def _artifact(client: MlflowClient, tags: dict[str, str], home: Path) -> bytes:
    import mlflow

    folder = Path(tempfile.mkdtemp(dir=home))
    path = mlflow.artifacts.download_artifacts(tags[compiled.URI_TAG], dst_path=str(folder))
    return Path(path).read_bytes()


def print_family(name: str, entry: dict[str, Any]) -> None:
    table = Table(title=f"{name} v{entry['version']}: single rows, c=16")
    for column in ("served by", "route", "req/s", "p50 ms", "p99 ms", "errors", "load avg"):
        table.add_column(column, justify="left" if column in ("served by", "route") else "right")
    for backend, *_ in VARIANTS:
        served = entry[backend]["backend"]
        label = f"{served['backend']}, prep: {served.get('preprocessing', '?')[:24]}"
        for route in ("predict", "predict_by_key"):
            if route not in entry[backend]:
                continue
            r = entry[backend][route]
            table.add_row(
                label,
                f"/{route}",
                f"{r['rps']:.0f}",
                f"{r['p50']:.2f}",
                f"{r['p99']:.2f}",
                str(r["errors"]),
                r["load"],
            )
    if "mlserver" in entry:
        r = entry["mlserver"]
        table.add_row(
            "MLServer 1.7.1",
            "/v2/.../infer",
            f"{r['rps']:.0f}",
            f"{r['p50']:.2f}",
            f"{r['p99']:.2f}",
            str(r["errors"]),
            r["load"],
        )
    console.print(table)
    onnx_ms = entry.get("in_process_onnx_ms")
    console.print(
        f"in process, one row: scikit-learn {entry['in_process_sklearn_ms']:.2f} ms"
        + (f", ONNX {onnx_ms:.3f} ms" if onnx_ms is not None else ", no ONNX form")
        + (
            f"; preprocessing alone: scikit-learn {entry['in_process_sklearn_prep_ms']:.3f} ms,"
            f" fast {entry['in_process_fast_prep_ms']:.3f} ms"
            if "in_process_fast_prep_ms" in entry
            else ""
        )
    )
    if "onnx + scikit-learn preprocessing" in entry:
        new, old = entry["onnx"]["predict"], entry["onnx + scikit-learn preprocessing"]["predict"]
        console.print(
            f"fast preprocessing: {new['rps'] / max(old['rps'], 1e-9):.1f}x the req/s of ONNX"
            f" behind scikit-learn's preprocessing (p99 {new['p99']:.1f} vs {old['p99']:.1f} ms)"
        )


def summary(results: dict[str, Any]) -> None:
    """The targets, each with the measured value and whether it is met."""
    for name in ("random_forest", "lightgbm"):
        if name not in results:
            continue
        best = results[name]["onnx"]
        rps, p99 = best["predict"]["rps"], best["predict"]["p99"]
        key_ratio = rps / max(best["predict_by_key"]["rps"], 1e-9)
        console.print(
            f"{name}: {rps:.0f} req/s = {rps / TODAY_RF_RPS:.1f}x 474 (target >= 5x),"
            f" p99 {p99:.1f} ms (target < 25), /predict is {key_ratio:.2f}x /predict_by_key"
            " (target <= 1.5x)"
        )
    for name, entry in results.items():
        if "mlserver" in entry:
            ours, theirs = entry["onnx"]["predict"], entry["mlserver"]
            console.print(
                f"{name}: {ours['rps'] / max(theirs['rps'], 1e-9):.1f}x MLServer's req/s"
                f" (target >= 2x), p99 {ours['p99']:.1f} vs {theirs['p99']:.1f} ms"
            )
    if "logistic_regression" in results:
        rps = results["logistic_regression"]["onnx"]["predict"]["rps"]
        console.print(
            f"logistic regression, raw rows: {rps:.0f} req/s ="
            f" {rps / TODAY_LOGISTIC_RPS:.2f}x 4,310 (target >= 0.9x)"
        )
