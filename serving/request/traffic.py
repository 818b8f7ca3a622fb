"""Which arm answers a request: the champion, or the challenger for a sticky share of keys."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec

Mode = Literal["champion", "shadow", "split"]


@dataclass(frozen=True)
class Traffic:
    mode: Mode = "champion"
    split_percent: float = 0.0

    @property
    def needs_challenger(self) -> bool:
        return self.mode in ("shadow", "split")


def traffic(spec: UseCaseSpec, settings: KubricksSettings) -> Traffic:
    """Settings override the spec's ``serving:`` section."""
    mode = settings.serving_traffic or spec.serving.traffic
    percent = settings.serving_split_percent
    if percent is None:
        percent = spec.serving.split_percent
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"serving_split_percent: {percent} is not within 0..100")
    return Traffic(mode, percent)


def bucket(value: Any) -> float:
    """A stable position in [0, 100) for a key: the same key always lands in the same arm."""
    digest = hashlib.sha256(str(value).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100.0


def to_challenger(config: Traffic, key: Any, fallback: str) -> bool:
    """Split mode: whether this row goes to the challenger (by key, else by request id)."""
    if config.mode != "split":
        return False
    return bucket(fallback if key is None else key) < config.split_percent
