"""Wait for a Kubeflow Pipelines run to finish; exit 0 only when it succeeded."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DONE = {"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"}


def wait(client: Any, run_id: str, timeout: int) -> str:
    """The run's final state, as KFP reports it."""
    run = client.wait_for_run_completion(run_id, timeout=timeout)
    return str(getattr(run, "state", None) or "UNKNOWN")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_id")
    parser.add_argument("--host", required=True, help="KFP URL (the stack's kfp_url)")
    parser.add_argument("--timeout", type=int, default=3600)
    args = parser.parse_args(argv)
    import kfp

    state = wait(kfp.Client(host=args.host), args.run_id, args.timeout)
    print(f"KFP run {args.run_id}: {state}")
    return 0 if state == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
