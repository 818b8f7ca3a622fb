"""How long small commands take to answer, against another checkout's CLI, side by side.

Run by hand: ``.venv/bin/python benchmarks/cli.py [--baseline /work/main/.venv/bin/kubricks]
[--runs 5] [--tracking-uri URL --usecase NAME] [--serving-url URL]``.

Each command runs ``--runs`` times with this checkout's ``kubricks``, then with the
baseline's, in a fresh ``KUBRICKS_HOME`` with a small Delta table in it. The median
wall time is printed with the ratio, next to ``python -c pass`` (the interpreter's own
start). Give a tracking server (and a registered use case) to time ``models list``, and a
served model to time ``predict``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(sys.executable).with_name("kubricks")


def seconds(command: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="another checkout's kubricks script")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tracking-uri", help="an MLflow server, to time `models list`")
    parser.add_argument("--usecase", default="churn", help="a use case registered there")
    parser.add_argument("--serving-url", help="a running Kubricks service, to time `predict`")
    args = parser.parse_args()

    import pyarrow as pa
    from deltalake import write_deltalake

    home = Path(tempfile.mkdtemp(prefix="kubricks-cli-bench-"))
    write_deltalake(str(home / "lakehouse" / "gold" / "bench"), pa.table({"x": [1, 2, 3]}))
    rows = home / "rows.json"
    rows.write_text(json.dumps([{}]))
    env = {**os.environ, "KUBRICKS_HOME": str(home), "KUBRICKS_USECASE": args.usecase}
    if args.tracking_uri:
        env["KUBRICKS_TRACKING_URI"] = args.tracking_uri
    commands = [["--help"], ["status"], ["tables"]]
    if args.tracking_uri:
        commands.append(["models", "list"])
    if args.serving_url:
        commands.append(["predict", "--url", args.serving_url, "--json", str(rows)])

    out = Table(title=f"Median of {args.runs} runs (wall seconds)")
    for column in ("command", "this checkout", "baseline", "baseline / this"):
        out.add_column(column, justify="right" if column != "command" else "left")
    python = seconds([sys.executable, "-c", "pass"], env, args.runs)
    out.add_row("python -c pass", f"{python:.2f}", "", "")
    for command in commands:
        ours = seconds([str(HERE), *command], env, args.runs)
        base = seconds([args.baseline, *command], env, args.runs) if args.baseline else None
        ratio = f"{base / ours:.1f}x" if base else ""
        out.add_row(
            f"kubricks {' '.join(command)}", f"{ours:.2f}", f"{base:.2f}" if base else "", ratio
        )
    Console().print(out)
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
