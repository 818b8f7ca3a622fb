"""Will a training set fit in memory? Decided from the label rows, before Feast loads features,
so a set too large fails in one line naming what would fit instead of an out-of-memory kill.

The estimate is bytes per row (8 per number or timestamp, :data:`STRING_BYTES` per text
value in pandas) times :data:`PEAK_FACTOR`, the peak resident memory of a whole train step
per byte of its training frame, measured with ``benchmarks/scale.py`` (Feast's join, the
splits, the search sample, the refit and the gate's holdout all hold copies).
"""

from __future__ import annotations

import math
from pathlib import Path

import psutil

from kubricks.spec import UseCaseSpec

STRING_BYTES = 64  # a short Python str in an object column, with its pointer
PEAK_FACTOR = 6.0  # peak RSS of a train step / bytes of its training frame (measured)
HEADROOM = 0.8  # of the available memory a train step may plan to use
_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
    (
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",  # cgroup v1
        "/sys/fs/cgroup/memory/memory.usage_in_bytes",
    ),
)


def _cgroup_room() -> int | None:
    """What a container's memory limit still allows (None outside a limited cgroup)."""
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:
            return max(0, int(limit) - usage)
    return None


def available_bytes() -> int:
    """Memory this process can still take: the machine's available memory, or less when a
    container limit (a Kubernetes pod's) is tighter."""
    free = psutil.virtual_memory().available
    room = _cgroup_room()
    return free if room is None else min(free, room)


def row_bytes(spec: UseCaseSpec) -> int:
    """In-memory bytes of one training row: key, event time, features and label."""
    declared = {c.name: c.type for c in spec.columns}
    text = {f.name for f in spec.categorical_features()}  # raw values: the model encodes them
    text.update(c for c in (spec.entity_key, spec.label) if declared.get(c) == "string")
    columns = [spec.entity_key, *spec.gold_feature_columns(), spec.label]
    return 8 + sum(STRING_BYTES if c in text else 8 for c in columns)


def peak_bytes(spec: UseCaseSpec, rows: int) -> int:
    """Expected peak memory of training on ``rows`` rows."""
    return int(rows * row_bytes(spec) * PEAK_FACTOR)


def rows_that_fit(spec: UseCaseSpec, available: int) -> int:
    return int(available * HEADROOM / (row_bytes(spec) * PEAK_FACTOR))


def gigabytes(value: float) -> str:
    return f"{value / 2**30:.1f} GB"


def fitting_fraction(rows: int, fit: int) -> float:
    """The sample fraction (rounded down to two significant digits) that fits."""
    if fit <= 0:
        return 0.0
    raw = fit / rows
    digits = 1 - math.floor(math.log10(raw))
    return math.floor(raw * 10**digits) / 10**digits
