"""Adaptive batching's unit of work and what one model call makes of a batch of them.

A :class:`Job` is one request's rows for one arm. The batcher hands every job queued for
an arm to :func:`score_jobs` at once: one frame, one ``predict_proba``, then each job gets
its slice back as a :class:`Scored`. Answers and the inference log are built from those
arrays, never from per-request frames: per-request pandas work, not the model, is what
dominated a request (see the README's serving benchmark).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from serving.request.model import LoadedModel, Outputs, to_columns


@dataclass(frozen=True, eq=False)
class Job:
    """One request's rows for one arm (``shadow`` is the challenger, logged, never returned)."""

    request_id: str
    requested_at: datetime
    keys: list[Any]
    rows: list[dict[str, Any]]
    arm: str

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Scored:
    """What the model said about one job's rows."""

    model: LoadedModel
    labels: np.ndarray
    probabilities: np.ndarray | None


@dataclass(frozen=True)
class Batch:
    """Jobs scored together: the frame the model saw and its outputs, row-aligned."""

    model: LoadedModel
    jobs: Sequence[Job]
    columns: dict[str, Any]  # the frame's columns, as arrays
    outputs: Outputs

    def __len__(self) -> int:
        return len(self.outputs.labels)

    def split(self) -> list[Scored]:
        bounds = itertools.pairwise(np.cumsum([0, *(len(job) for job in self.jobs)]))
        probabilities = self.outputs.probabilities
        return [
            Scored(
                self.model,
                self.outputs.labels[a:b],
                None if probabilities is None else probabilities[a:b],
            )
            for a, b in bounds
        ]


def score_jobs(model: LoadedModel, jobs: Sequence[Job]) -> Batch:
    """One model call for every job; raises when the model fails or answers non-finite."""
    rows = list(itertools.chain.from_iterable(job.rows for job in jobs))
    columns = to_columns(model.spec, rows)
    out = model.predict(columns)
    numbers = out.probabilities if out.probabilities is not None else out.labels
    if numbers.dtype.kind == "f" and not np.isfinite(numbers).all():
        raise ValueError("the model returned non-finite values for these rows")
    return Batch(model, jobs, columns, out)


def answers(scored: Scored, arm: str) -> list[dict[str, Any]]:
    """Response rows: the original label, probabilities, and who answered."""
    model = scored.model
    base = {"model_name": model.name, "model_version": model.version, "arm": arm}
    labels = scored.labels.tolist()
    if scored.probabilities is None:
        return [
            {"prediction": label, "probability": None, "probabilities": None, **base}
            for label in labels
        ]
    names = [str(c) for c in model.classes]
    positive = model.positive_index
    rows = []
    for label, p in zip(labels, scored.probabilities.tolist(), strict=True):
        rows.append(
            {
                "prediction": label,
                "probability": max(p) if positive is None else p[positive],
                "probabilities": dict(zip(names, p, strict=True)),
                **base,
            }
        )
    return rows
