"""Calling a running Kubricks service over HTTP (`kubricks predict`, the demo)."""

from __future__ import annotations

from typing import Any

import httpx

from kubricks.errors import KubricksError


class NotServing(KubricksError):
    """Nothing answers at the service URL."""


class NoFeatures(KubricksError):
    """A by-key call found no features: the online store is empty or was never set up."""


def _post(base: str, route: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        answer = httpx.post(f"{base}/{route}", json=body, timeout=60)
    except httpx.HTTPError as exc:
        raise NotServing(f"no Kubricks service answers at {base} ({exc})") from exc
    if answer.status_code != 200:
        try:
            message = answer.json().get("error", answer.text)
        except ValueError:
            message = answer.text
        text = f"{base}/{route} answered {answer.status_code}: {message}"
        if route == "predict_by_key" and (
            (answer.status_code == 404 and "online store" in str(message))
            or (answer.status_code == 503 and "feature store" in str(message))
        ):
            raise NoFeatures(text)
        raise KubricksError(text)
    return answer.json()


def predict_keys(base: str, keys: list[Any], overrides: list[dict] | None = None) -> dict:
    body: dict[str, Any] = {"keys": keys}
    if overrides is not None:
        body["rows"] = overrides
    return _post(base, "predict_by_key", body)


def predict_rows(base: str, rows: list[dict[str, Any]]) -> dict:
    return _post(base, "predict", {"rows": rows})
