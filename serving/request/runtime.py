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
import gc
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubricks.registry.store import CHALLENGER, CHAMPION
from kubricks.settings import KubricksSettings, resolved_bentoml_home
from kubricks.spec import UseCaseSpec
from kubricks.tracking import load_header_plugins
from serving.request import model as model_io
from serving.request import store
from serving.request.batch import Batch, Job, Scored, score_jobs
from serving.request.batcher import Batcher
from serving.request.handler import ModelRefused, NotReady
from serving.request.inference_log import log_table
from serving.request.model import LoadedModel
from serving.request.traffic import Traffic

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)
SLOTS = (CHAMPION, CHALLENGER)
WATCH_SECONDS = 0.2


@dataclass(frozen=True)
class Arms:
    champion: LoadedModel | None = None
    challenger: LoadedModel | None = None

    def get(self, slot: str) -> LoadedModel | None:
        return self.champion if slot == CHAMPION else self.challenger

    def backends(self) -> dict[str, dict[str, str] | None]:
        """What scores each arm's rows (ONNX or scikit-learn) and why, and what prepares them."""
        return {
            slot: {"backend": m.backend, "note": m.backend_note, "preprocessing": m.preprocessing}
            if m
            else None
            for slot, m in ((CHAMPION, self.champion), (CHALLENGER, self.challenger))
        }

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


def registry_aliases(client: MlflowClient, spec: UseCaseSpec) -> dict[str, str | None]:
    """The versions the champion and challenger aliases point at (None when unset)."""
    from kubricks.registry.store import require_model

    aliases = require_model(client, spec.name).aliases
    return {slot: str(v) if (v := aliases.get(slot)) is not None else None for slot in SLOTS}


def preload_slow_imports() -> None:
    """Import now what a hot swap or the first by-key lookup would import mid-traffic.

    The first MLflow REST call of a process loads MLflow's request-header plugins, and the
    first by-key lookup imports Feast (typeguard instruments its modules on import: 3-7 s
    of CPU on 2 cores). Left lazy, they landed inside the first swap, which then took
    8-12 s under load instead of under two. Done before the first load, so readiness
    includes it, which is what a readiness probe should mean.
    """
    try:
        load_header_plugins()
        import kubricks.features.store  # noqa: F401
    except Exception as exc:  # an optimisation: a broken plugin must not stop serving
        logger.warning("could not preload MLflow's plugins or Feast: %s", exc)


class Runtime:
    """Arms, batching dispatchers and swap machinery of one worker process."""

    def __init__(
        self,
        spec: UseCaseSpec,
        settings: KubricksSettings,
        initial: dict[str, str | None],
        traffic: Traffic,
        on_batch: Callable[[Batch], None] | None = None,
    ) -> None:
        self.spec = spec
        self.on_batch = on_batch  # counters and the inference-log queue: cheap, no I/O
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
        self._batchers: dict[str, Batcher[Job, Scored]] = {}
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
        for batcher in self._batchers.values():
            batcher.close()

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
                logger.info(
                    "%s now serves %s v%s with %s (%s)",
                    slot,
                    self.spec.name,
                    version,
                    loaded.backend,
                    loaded.backend_note,
                )
            if changed:
                # Warm before publishing: readiness (the champion arm) and a swapped-in
                # version only take traffic once the request path is warm.
                self._warm_up(arms)
                first = self.arms.champion is None
                if first:  # nothing serves yet: settle the heap before reporting ready too
                    self._settle_heap()
                self.arms = arms  # the one atomic switch
                self.swaps += 1
                self.load_error = None
                if not first:  # now the old version's cycles can be collected
                    self._settle_heap()
            return changed

    def _warm_up(self, arms: Arms) -> None:
        """One request through scoring and log building for each arm of ``arms``, so the
        first real requests do not pay for lazy imports (Arrow compute, delta-rs)."""
        import deltalake  # noqa: F401  (the log writer's first flush would import it later)

        rows = model_io.sample_rows(self.spec, list(self.recent))
        for slot in (CHAMPION, CHALLENGER):
            model = arms.get(slot)
            if model is None:
                continue
            job = Job("warm-up", datetime.now(UTC), [None] * len(rows), rows, slot)
            try:
                log_table(self.spec, [score_jobs(model, [job])])
            except Exception as exc:  # a warm-up, not a gate: the model passed its check
                logger.warning("warm-up of %s v%s failed: %s", slot, model.version, exc)

    def _settle_heap(self) -> None:
        """Hide everything long-lived from the cyclic GC.

        Libraries and models leave about a million long-lived objects. Every full
        collection walked them all and stalled the event loop for 50-100 ms: that was the
        p99 latency. After the warm-up, one collection frees the old model's cycles and
        ``gc.freeze`` parks the survivors (refcounting still frees them).
        """
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def _watch(self) -> None:
        preload_slow_imports()  # before the first load, so a ready worker swaps fast
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

        found = registry_aliases(MlflowClient(self.settings.resolved_tracking_uri), self.spec)
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
    def _batcher(self, slot: str) -> Batcher[Job, Scored]:
        batcher = self._batchers.get(slot)
        if batcher is None:
            batcher = self._batchers[slot] = Batcher(
                self._batch_callback(slot),
                max_rows=self.settings.serving_max_batch_rows,
                max_wait_seconds=self.settings.serving_max_latency_ms / 1000,
            )
        return batcher

    def _batch_callback(self, slot: str):
        # The model runs on the event loop, not in a thread: the GIL serialises the two
        # anyway, and the thread hop cost more than it overlapped (single-row requests/s
        # 1,470 -> 2,100, 100-row 500 -> 705 in the serving benchmark's setup).
        async def run(jobs: Sequence[Job]) -> Sequence[Scored | Exception]:
            model = self.arms.get(slot)  # one model for the whole batch
            if model is None:
                raise NotReady(f"no {slot} model is loaded")
            try:
                batch = self._score(model, jobs)
            except Exception as exc:
                if len(jobs) == 1:
                    raise ModelRefused(str(exc)) from exc
                # One bad request must not fail its batch neighbours: retry them one by one.
                return [self._one(model, job) for job in jobs]
            return batch.split()

        return run

    def _score(self, model: LoadedModel, jobs: Sequence[Job]) -> Batch:
        batch = score_jobs(model, jobs)
        if self.on_batch is not None:
            try:
                self.on_batch(batch)
            except Exception:  # the answer stands even when its log rows cannot be built
                logger.exception("inference log: dropping the rows of %d requests", len(jobs))
        return batch

    def _one(self, model: LoadedModel, job: Job) -> Scored | Exception:
        try:
            batch = self._score(model, [job])
        except Exception as exc:  # handed to that request's future alone
            return ModelRefused(str(exc))
        return batch.split()[0]

    async def predict(self, slot: str, job: Job) -> Scored:
        """Score ``job`` with the arm in ``slot`` through adaptive batching."""
        if self.arms.get(slot) is None:
            raise NotReady(f"no {slot} model is loaded")
        return await self._batcher(slot)(job)

    def remember(self, rows: list[dict[str, Any]]) -> None:
        self.recent.extend(rows[:8])
