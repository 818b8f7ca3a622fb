"""One HTTP prediction against the served Bento: ``POST /predict`` with ``{"rows": [...]}``.

The row is a synthetic one drawn from the use case's spec, with its raw feature columns,
so the check works for any spec that has a ``synthetic:`` section.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from typing import Any


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def request_body(usecase: str, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """A one-row request for ``usecase``: each of the spec's features with a plausible value."""
    from kubricks.spec import load_spec
    from kubricks.synthetic import generate

    spec = load_spec(usecase)
    frame = generate(spec, rows=1, seed=seed)
    row = {f.name: _plain(frame[f.name].iloc[0]) for f in spec.features}
    return {"rows": [row]}


def predict(url: str, body: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    import httpx

    response = httpx.post(f"{url.rstrip('/')}/predict", json=body, timeout=timeout)
    if response.status_code != 200:
        raise SystemExit(f"POST {url}/predict: {response.status_code} {response.text[:500]}")
    return response.json()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--usecase", default="churn")
    parser.add_argument("--url", required=True, help="the stack's serving_url")
    args = parser.parse_args(argv)
    body = request_body(args.usecase)
    answer = predict(args.url, body)
    print(json.dumps({"request": body, "response": answer}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
