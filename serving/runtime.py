"""One worker's serving state: the loaded arms, adaptive batching, and hot swap.

Hot swap: the wanted versions live in a small target file shared by the workers of a
machine (``<bentoml home>/serving/<usecase>.target.json``). The registry webhook and the
alias poll only write that file; every worker watches it, loads a changed version beside
the serving one, checks it answers a sample of recent rows, then replaces one immutable
:class:`Arms` reference. Batches already running keep the model they started with, so no
request fails or mixes versions; the old model is freed once they finish.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pandas as pd

from kubricks.settings import KubricksSettings, resolved_bentoml_home
from kubricks.spec import UseCaseSpec
from serving import model as model_io
from serving import store
from serving.model import LoadedModel
from serving.traffic import Traffic

logger = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
WATCH_SECONDS = 0.2


class NotReady(Exception):
    """No model is loaded yet (answered with 503 and reported by /readyz)."""


class ModelRefused(Exception):
    """The model raised on these rows (answered with 422; the batch neighbours still pass)."""


@dataclass(frozen=True)
class Arms:
    champion: LoadedModel | None = None
    challenger: LoadedModel | None = None

    def get(self, slot: str) -> LoadedModel | None:
        return self.champion if slot == CHAMPION else self.challenger

    def versions(self) -> dict[str, str | None]:
        return {
            CHAMPION: self.champion.version if self.champion else None,
            CHALLENGER: self.challenger.version if self.challenger else None,
        }


def target_path(settings: KubricksSettings, spec: UseCaseSpec) -> Path:
    return resolved_bentoml_home(settings) / "serving" / f"{spec.name}.target.json"


def read_target(path: Path) -> dict[str, str | None]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {
        k: (None if v is None else str(v)) for k, v in data.items() if k in (CHAMPION, CHALLENGER)
    }


def write_target(path: Path, **versions: str | None) -> dict[str, str | None]:
    """Merge ``versions`` into the target file atomically (write then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**read_target(path), **versions}
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return data


def to_outputs(model: LoadedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The model's answer as a frame (so BentoML's batching can split and join it)."""
    out = model.predict(frame)
    numbers = out.probabilities if out.probabilities is not None else out.labels
    if numbers.dtype.kind == "f" and not np.isfinite(numbers).all():
        raise ValueError("the model returned non-finite values for these rows")
    columns: dict[str, Any] = {"label": out.labels, "version": model.version}
    if out.probabilities is not None:
        for i in range(out.probabilities.shape[1]):
            columns[f"p{i}"] = out.probabilities[:, i]
    return pd.DataFrame(columns, index=frame.index)


class Runtime:
    """Arms, batching dispatchers and swap machinery of one worker process."""

    def __init__(
        self,
        spec: UseCaseSpec,
        settings: KubricksSettings,
        initial: dict[str, str | None],
        traffic: Traffic,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.traffic = traffic
        self.arms = Arms()
        self.target_file = target_path(settings, spec)
        self.initial = initial
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=64)
        self.load_error: str | None = None
        self.swaps = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._swap_lock = threading.Lock()
        self._dispatchers: dict[str, Any] = {}
        self._answered: dict[str, LoadedModel] = {}
        self._corks: list[Any] = []
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Runtime:
        if not self.target_file.exists():
            write_target(self.target_file, **self.initial)
        for target, name in ((self._watch, "swap-watch"), (self._poll, "alias-poll")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for cork in self._corks:
            cork.shutdown()

    @property
    def ready(self) -> bool:
        return self.arms.champion is not None

    # -- swap --------------------------------------------------------------------------
    def _load_checked(self, version: str) -> LoadedModel:
        loaded = store.load_version(self.settings, self.spec, version)
        model_io.check(loaded, model_io.sample_frame(self.spec, list(self.recent)))
        return loaded

    def apply_target(self) -> bool:
        """Bring the arms to the target file's versions; True when something changed."""
        with self._swap_lock:
            wanted = read_target(self.target_file) or self.initial
            arms = self.arms
            changed = False
            for slot in (CHAMPION, CHALLENGER):
                version = wanted.get(slot)
                if slot == CHALLENGER and not self.traffic.needs_challenger:
                    version = None
                current = arms.get(slot)
                if (current.version if current else None) == version:
                    continue
                if version is None:
                    if slot == CHALLENGER:
                        arms, changed = replace(arms, challenger=None), True
                    continue
                try:
                    loaded = self._load_checked(version)
                except Exception as exc:  # keep serving the current version
                    self.load_error = f"{slot} v{version}: {exc}"
                    logger.error("not swapping %s to v%s: %s", slot, version, exc)
                    continue
                arms, changed = replace(arms, **{slot: loaded}), True
                logger.info("%s now serves %s v%s", slot, self.spec.name, version)
            if changed:
                self.arms = arms  # the one atomic switch
                self.swaps += 1
                self.load_error = None
            return changed

    def _watch(self) -> None:
        seen: float | None = None
        while not self._stop.is_set():
            try:
                mtime = self.target_file.stat().st_mtime_ns
            except FileNotFoundError:
                mtime = None
            if mtime != seen or not self.ready:
                seen = mtime
                self.apply_target()
            self._wake.wait(WATCH_SECONDS if self.ready else 2.0)
            self._wake.clear()

    def _poll(self) -> None:
        """The safety net for missed webhooks: resolve the aliases every few seconds."""
        interval = self.settings.serving_poll_seconds
        if interval <= 0:
            return
        while not self._stop.wait(interval):
            try:
                self.poll_once()
            except Exception as exc:  # registry down: keep serving what we have
                logger.warning("alias poll failed: %s", exc)

    def poll_once(self) -> dict[str, str | None]:
        from mlflow import MlflowClient

        client = MlflowClient(self.settings.resolved_tracking_uri)
        found: dict[str, str | None] = {}
        for alias in (CHAMPION, CHALLENGER):
            try:
                found[alias] = str(client.get_model_version_by_alias(self.spec.name, alias).version)
            except Exception as exc:
                if (
                    "RESOURCE_DOES_NOT_EXIST" not in str(exc)
                    and "not found" not in str(exc).lower()
                ):
                    raise
                found[alias] = None
        if found[CHAMPION] is None:
            found.pop(CHAMPION)  # never stop serving because the alias vanished
        if {k: read_target(self.target_file).get(k) for k in found} != found:
            write_target(self.target_file, **found)
            self._wake.set()
        return found

    def on_alias(self, alias: str, version: str | None) -> None:
        """A verified webhook: record the wanted version for every worker and wake up."""
        if alias == CHAMPION and version is None:
            return
        write_target(self.target_file, **{alias: version})
        self._wake.set()

    # -- predict -----------------------------------------------------------------------
    def _dispatcher(self, slot: str):
        dispatcher = self._dispatchers.get(slot)
        if dispatcher is None:
            from bentoml._internal.marshal.dispatcher import CorkDispatcher
            from bentoml.exceptions import ServiceUnavailable

            def overloaded() -> Any:
                raise ServiceUnavailable("the model queue is full: retry later")

            dispatcher = CorkDispatcher(
                max_latency_in_ms=self.settings.serving_max_latency_ms,
                max_batch_size=self.settings.serving_max_batch_rows,
                fallback=overloaded,
                get_batch_size=len,
                batch_dim=(0, 0),
            )
            self._corks.append(dispatcher)
            dispatcher = dispatcher(self._batch_callback(slot))
            self._dispatchers[slot] = dispatcher
        return dispatcher

    def _batch_callback(self, slot: str):
        async def run(frames: tuple[pd.DataFrame, ...]) -> list[pd.DataFrame]:
            model = self.arms.get(slot)  # one model for the whole batch
            if model is None:
                raise NotReady(f"no {slot} model is loaded")
            self._answered[model.version] = model
            while len(self._answered) > 4:  # forget versions swapped out long ago
                self._answered.pop(next(iter(self._answered)))
            sizes = [len(f) for f in frames]
            joined = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            try:
                out = await anyio.to_thread.run_sync(to_outputs, model, joined)
            except Exception as exc:
                if len(frames) == 1:
                    raise ModelRefused(str(exc)) from exc
                # One bad request must not fail its batch neighbours: retry them one by one.
                return [await self._one(model, frame) for frame in frames]
            bounds = np.cumsum([0, *sizes])
            return [out.iloc[a:b] for a, b in itertools.pairwise(bounds)]

        return run

    async def _one(self, model: LoadedModel, frame: pd.DataFrame) -> Any:
        try:
            return await anyio.to_thread.run_sync(to_outputs, model, frame)
        except Exception as exc:  # handed to that request's future alone
            return ModelRefused(str(exc))

    async def predict(self, slot: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, LoadedModel]:
        """Score ``frame`` with the arm in ``slot`` through adaptive batching."""
        if self.arms.get(slot) is None:
            raise NotReady(f"no {slot} model is loaded")
        out = await self._dispatcher(slot)(frame.reset_index(drop=True))
        return out, self._answered[str(out["version"].iloc[0])]

    def remember(self, rows: list[dict[str, Any]]) -> None:
        self.recent.extend(rows[:8])
