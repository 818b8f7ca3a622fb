"""Real-time serving, side by side on one champion: our Bento vs the usual ways to serve it.

Run by hand: ``.venv/bin/python benchmarks/serving.py [--seconds 10]``. It starts its own
MLflow server, trains and registers a small scikit-learn model on synthetic churn (the
gold feature columns), then serves that same version four ways:

- ``kubricks``: our service (native arrays, adaptive batching, inference log on);
- ``kubricks-api``: the same service with ``KUBRICKS_SERVING_FAST_PATH=false``, i.e.
  BentoML's own per-request API dispatch (what the fast path saves);
- ``mlflow``: ``mlflow models serve --env-manager local`` (``/invocations``);
- ``naive-bento``: a BentoML service calling pyfunc per request (benchmarks/naive_bento.py);
- ``in-process``: ``predict_proba`` in this process, the limit without HTTP.

Load comes from ``wk`` (Debian's wrk) in its own process: single-row requests at
concurrency 1, 16 and 64, and 100-row requests at 16. Last, a hot swap under load: a
signed webhook moves the champion while wrk runs; errors and p99 during the swap print.

``--families`` instead serves the champion of each AutoML family (logistic regression,
random forest, extra trees, LightGBM with their default settings, trained on churn gold
with categories as values) and prints one table per family: single rows at c=16 on
``/predict`` and ``/predict_by_key`` (Feast online store), through the compiled (ONNX)
form the gate recorded and through scikit-learn (``KUBRICKS_SERVING_COMPILED=false``),
and once through ONNX behind scikit-learn's own preprocessing
(``KUBRICKS_SERVING_FAST_PREPROCESSING=false``, how it was served before), beside the
in-process single-row call of each; with ``--mlserver`` also MLServer
(adaptive batching on) in its own venv (benchmarks/requirements-mlserver.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kubricks import services  # noqa: E402
from kubricks.settings import KubricksSettings  # noqa: E402
from kubricks.spec import load_spec  # noqa: E402
from kubricks.synthetic import generate  # noqa: E402
from serving.packaging import build, deploy, local  # noqa: E402
from tests.serving.models import log_and_register  # noqa: E402

console = Console()
SECRET = "benchmark-secret"
LOADS = [("1 row", 1, 1), ("1 row", 16, 1), ("1 row", 64, 1), ("100 rows", 16, 100)]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gold_like(spec, rows: int) -> pd.DataFrame:
    """Rows as gold holds them: the raw feature columns (the model encodes categories)."""
    return generate(spec, rows, seed=11)


def wrk(url: str, body: str | list[str], connections: int, seconds: int) -> dict[str, float]:
    """One wrk run; requests/s, p50, p99 (ms) and errors (non-2xx + socket errors).

    A list of bodies is sent in turn (distinct rows or keys, as real traffic has: one
    repeated key would let a lookup answer every request in a batch with one read)."""
    script = Path(tempfile.mkdtemp()) / "post.lua"
    bodies = [body] if isinstance(body, str) else body
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"bodies = {{{', '.join(json.dumps(b) for b in bodies)}}}\n"
        "i = 0\n"
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\n"
        "end\n"
    )
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shutil.rmtree(script.parent)

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(g) for g in sockets.groups()) if sockets else 0
    )
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "errors": errors}


def wait_http(url: str, timeout: float = 180.0, method: str = "GET", **kwargs: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.request(method, url, timeout=2, **kwargs).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen(
        command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


def in_process(model: Any, frame: pd.DataFrame, batch: int, seconds: float) -> dict[str, float]:
    """Rows/requests per second calling the model directly, one request of ``batch`` rows."""
    times = []
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < seconds:
        chunk = frame.iloc[(i * batch) % (len(frame) - batch) :][:batch]
        t0 = time.perf_counter()
        model.predict_proba(chunk)
        times.append(time.perf_counter() - t0)
        i += 1
    ms_times = np.array(times) * 1000
    return {
        "rps": len(times) / (time.perf_counter() - started),
        "p50": float(np.percentile(ms_times, 50)),
        "p99": float(np.percentile(ms_times, 99)),
        "errors": 0,
    }


def targets(results: dict[tuple[str, str, int], dict[str, float]]) -> str:
    """The serving targets (the README's Benchmarks section quotes them), each with the
    measured value and whether it is met."""
    ours = results[("kubricks", "1 row", 16)]
    ours_100 = results[("kubricks", "100 rows", 16)]
    checks = [
        (
            "req/s vs mlflow models serve, c=16",
            ours["rps"] / results[("mlflow", "1 row", 16)]["rps"],
            5.0,
        ),
        (
            "req/s vs naive pyfunc Bento, c=16",
            ours["rps"] / results[("naive-bento", "1 row", 16)]["rps"],
            2.0,
        ),
        (
            "single rows vs in-process one at a time",
            ours["rps"] / results[("in-process", "1 row", 16)]["rps"],
            1.0,
        ),
        (
            "100-row req/s vs in-process 100-row calls/s",
            ours_100["rps"] / results[("in-process", "100 rows", 16)]["rps"],
            0.5,
        ),
    ]
    lines = [
        f"{name}: {value:.2f}x (target >= {want}x) {'met' if value >= want else 'NOT met'}"
        for name, value, want in checks
    ]
    verdict = "met" if ours["p99"] <= 25 else "NOT met"
    lines.append(f"p99 at c=16: {ours['p99']:.1f} ms (target <= 25 ms) {verdict}")
    lines.append(f"errors at c=16: {ours['errors']} (target 0)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="Length of each wrk run.")
    parser.add_argument("--workers", type=int, default=1, help="Workers of our service.")
    parser.add_argument(
        "--families", action="store_true", help="One champion per family (see above)."
    )
    parser.add_argument("--only", nargs="*", default=None, help="With --families: these only.")
    parser.add_argument("--mlserver", action="store_true", help="With --families: MLServer.")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    if args.families:
        from benchmarks.serving_families import run_families

        run_families(args.seconds, args.workers, args.only, args.mlserver)
        return

    home = Path(tempfile.mkdtemp(prefix="kubricks-bench-serving-"))
    spec = load_spec("churn").model_copy(update={"name": "churn_bench"})
    settings = KubricksSettings(
        home=home,
        mlflow_port=free_port(),
        serving_port=free_port(),
        serving_workers=args.workers,
        registry_webhook_secret=SECRET,
        serving_poll_seconds=0,
    )
    api_settings = settings.model_copy(
        update={
            "home": home / "api-path",
            "serving_port": free_port(),
            "serving_fast_path": False,
        }
    )
    procs: list[subprocess.Popen] = []
    services.start_mlflow(settings)
    os.environ["MLFLOW_TRACKING_URI"] = settings.resolved_tracking_uri
    try:
        from kubricks.training.search_space import build_pipeline, family_named

        frame = gold_like(spec, 5000)
        features = frame[spec.gold_feature_columns()]
        logistic = family_named("classification", "logistic_regression")
        model = build_pipeline(spec, logistic, logistic.defaults, seed=0)
        model.fit(features, frame[spec.label])
        v1 = log_and_register(model, features, spec.name, settings)
        other = build_pipeline(spec, logistic, {"C": 0.01}, seed=0)
        v2 = log_and_register(
            other.fit(features, frame[spec.label]), features, spec.name, settings, alias=None
        )
        console.print(f"champion {spec.name} v{v1} ({len(features.columns)} features)")

        ours = local.start(settings, build.prepare(settings, spec))
        api_path = local.start(api_settings, build.prepare(api_settings, spec))
        mlflow_port, naive_port = free_port(), free_port()
        env = {
            **os.environ,
            "NAIVE_MODEL_URI": f"models:/{spec.name}/{v1}",
            "BENTOML_HOME": str(home / "bentoml-naive"),
            "BENTOML_DO_NOT_TRACK": "true",
            # The peers load MLflow's own format, which reads its pickled parts: allowed in
            # their environment only (Kubricks itself loads skops with pickle forbidden).
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
            # mlflow models serve starts `uvicorn` through bash: the venv's bin must be on PATH
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        }
        procs.append(
            start(
                [
                    str(Path(sys.executable).with_name("mlflow")),
                    "models",
                    "serve",
                    "-m",
                    f"models:/{spec.name}/{v1}",
                    "--env-manager",
                    "local",
                    "--host",
                    "127.0.0.1",
                    "-p",
                    str(mlflow_port),
                ],
                env,
                home / "mlflow-serve.log",
            )
        )
        procs.append(
            start(
                [
                    str(Path(sys.executable).with_name("bentoml")),
                    "serve",
                    "benchmarks.naive_bento:Naive",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(naive_port),
                ],
                env,
                home / "naive.log",
            )
        )
        wait_http(f"http://127.0.0.1:{mlflow_port}/health")
        wait_http(f"http://127.0.0.1:{naive_port}/readyz")

        records = features.to_dict("records")  # ints stay ints: pyfunc enforces the signature

        def chunks(field: str) -> Any:
            """Bodies of n rows each, from distinct customers (1,000 rows in all)."""
            return lambda n: [json.dumps({field: records[i : i + n]}) for i in range(0, 1000, n)]

        bodies = {
            "kubricks": chunks("rows"),
            "kubricks-api": chunks("rows"),
            "mlflow": chunks("dataframe_records"),
            "naive-bento": chunks("rows"),
        }
        urls = {
            "kubricks": f"{ours.url}/predict",
            "kubricks-api": f"{api_path.url}/predict",
            "mlflow": f"http://127.0.0.1:{mlflow_port}/invocations",
            "naive-bento": f"http://127.0.0.1:{naive_port}/predict",
        }
        for name, url in urls.items():  # each answers the body we will send
            answer = httpx.post(
                url, content=bodies[name](1)[0], headers={"content-type": "application/json"}
            )
            assert answer.status_code == 200, (name, answer.text)
        results: dict[tuple[str, str, int], dict[str, float]] = {}
        for label, connections, rows in LOADS:
            for name, url in urls.items():
                wrk(url, bodies[name](rows), connections, 2)  # warm-up
                results[(name, label, connections)] = wrk(
                    url, bodies[name](rows), connections, args.seconds
                )
                console.print(
                    f"{name:12} {label:9} c={connections:<3} {results[(name, label, connections)]}"
                )
            results[("in-process", label, connections)] = in_process(
                model, features, rows, min(args.seconds, 5)
            )

        table = Table(title="Serving one champion (2 cores shared; wrk on the same machine)")
        for column in (
            "server",
            "load",
            "conc.",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "vs mlflow",
            "vs naive",
        ):
            table.add_column(
                column, justify="right" if column not in ("server", "load") else "left"
            )
        for label, connections, _ in LOADS:
            base_m = results[("mlflow", label, connections)]["rps"]
            base_n = results[("naive-bento", label, connections)]["rps"]
            for name in ("kubricks", "kubricks-api", "mlflow", "naive-bento", "in-process"):
                r = results[(name, label, connections)]
                table.add_row(
                    name,
                    label,
                    str(connections) if name != "in-process" else "1 (loop)",
                    f"{r['rps']:.0f}",
                    f"{r['p50']:.2f}",
                    f"{r['p99']:.2f}",
                    str(r["errors"]),
                    f"{r['rps'] / base_m:.1f}x",
                    f"{r['rps'] / base_n:.1f}x",
                )
        console.print(table)
        console.print(targets(results))

        # Hot swap under load: the champion moves to v2 while wrk runs at concurrency 16.
        body = bodies["kubricks"](1)[0]
        swap_result: dict[str, Any] = {}

        def swap() -> None:
            time.sleep(args.seconds / 3)
            started = time.monotonic()
            swap_result.update(deploy.deploy_local(settings, spec, v2))
            swap_result["wall"] = time.monotonic() - started

        thread = threading.Thread(target=swap)
        thread.start()
        under_swap = wrk(urls["kubricks"], bodies["kubricks"](1), 16, args.seconds)
        thread.join()
        after = httpx.post(
            urls["kubricks"], content=body, headers={"content-type": "application/json"}
        )
        console.print(
            f"hot swap v{v1} -> v{v2} under load (c=16, {args.seconds}s):"
            f" {under_swap['rps']:.0f} req/s,"
            f" p50 {under_swap['p50']:.2f} ms, p99 {under_swap['p99']:.2f} ms,"
            f" errors {under_swap['errors']}; swap {swap_result}; now answering"
            f" v{after.json()['predictions'][0]['model_version']}"
        )
        summary = {
            "results": {f"{k[0]}|{k[1]}|c{k[2]}": v for k, v in results.items()},
            "swap": {**under_swap, **{k: v for k, v in swap_result.items() if k != "url"}},
        }
        (home / "results.json").write_text(json.dumps(summary, indent=2))
        console.print(f"raw numbers: {home / 'results.json'}")
    finally:
        for process in procs:
            stop(process)
        local.stop(settings, spec.name)
        local.stop(api_settings, spec.name)
        services.stop_mlflow(settings)


if __name__ == "__main__":
    main()
