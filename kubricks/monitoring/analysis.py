"""The monitoring computation, pure: a baseline and monitored rows in, metric tables out.

``build_reference`` freezes bins, the baseline's own profile and the bootstrap nulls from
the baseline (the champion's training data); ``analyze`` windows the monitored rows and
returns Lakehouse-Monitoring-shaped profile, drift and quality frames plus per-window
alarms. No I/O here: ``kubricks.monitoring.run`` reads tables and writes results.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from kubricks.errors import KubricksError
from kubricks.monitoring import alarms, metrics, quality
from kubricks.monitoring.bins import (
    CategoricalBins,
    NumericBins,
    categorical_bins,
    encode,
    numeric_bins,
    numeric_column,
)
from kubricks.monitoring.sketch import Sketch, categorical_sketch, numeric_sketch
from kubricks.monitoring.windows import AUTO, SNAPSHOT, Groups, fit_granularity, group_rows
from kubricks.spec import Monitoring

THREADS = 2  # numpy sorts release the GIL: two columns at a time on two cores


@dataclass(frozen=True)
class MonitoredColumn:
    name: str
    kind: str  # numeric | categorical
    role: str = "feature"  # feature | prediction


@dataclass
class Reference:
    """Everything frozen from the baseline: bins, its sketch, its profile, the nulls."""

    columns: list[MonitoredColumn]
    bins: dict[str, NumericBins | CategoricalBins]
    sketches: dict[str, Sketch]
    nulls: dict[str, alarms.NullModel]
    alarm_metric: dict[str, str]
    rows: int
    config: Monitoring


def not_judged(minimum: int) -> str:
    """The verdict of a window too small to judge, in the table, the report and Delta rows."""
    return f"not judged (n < {minimum})"


@dataclass(frozen=True)
class QualityInputs:
    """Labels (NaN until they land), predictions and probabilities, aligned with the rows.

    Binary: labels and predictions are 0/1 for "is the positive class". Multiclass
    (``classes`` > 2): they are class indices. Regression: the values.
    """

    problem_type: str  # classification | regression
    label: np.ndarray  # float codes or values, NaN when unlabelled
    predicted: np.ndarray  # same coding as ``label``
    probability: np.ndarray | None  # calibrated: positive class (binary), predicted class's
    primary: str
    greater_is_better: bool
    reference: dict[str, float] = field(default_factory=dict)  # holdout (realized) quality
    raw_probability: np.ndarray | None = None  # binary: the model's own positive-class score
    probabilities: np.ndarray | None = None  # multiclass: the model's rows x classes matrix
    calibrated: np.ndarray | None = None  # multiclass: per-class calibrated probabilities
    classes: int = 2

    @property
    def multiclass(self) -> bool:
        return self.problem_type == "classification" and self.classes > 2


@dataclass
class Analysis:
    profile: pd.DataFrame
    drift: pd.DataFrame
    quality: pd.DataFrame
    windows: pd.DataFrame
    latest_fine: dict[str, np.ndarray] = field(default_factory=dict)  # for the report's plots
    granularity: str = ""  # the one used: the spec's, a fitted one, or "snapshot"
    min_window_rows: int = 0

    @property
    def snapshot(self) -> bool:
        return self.granularity == SNAPSHOT

    @property
    def judged(self) -> bool:
        """Whether the latest window was large enough to judge drift at all."""
        return bool(len(self.windows)) and bool(self.windows["judged"].iloc[-1])

    @property
    def alarm(self) -> bool:
        """Whether the latest window is in alarm (after persistence)."""
        return bool(len(self.windows)) and bool(self.windows["alarm"].iloc[-1])

    @property
    def drifted_features(self) -> list[str]:
        """Features that drifted in the latest window (any slice)."""
        if self.windows.empty:
            return []
        return list(self.windows["drifted_features"].iloc[-1])


def _names(table: pa.Table | pd.DataFrame) -> list[str]:
    return list(table.columns) if isinstance(table, pd.DataFrame) else table.column_names


def _raw(table: pa.Table | pd.DataFrame, name: str):
    return table[name] if isinstance(table, pd.DataFrame) else table.column(name)


def _rows(table: pa.Table | pd.DataFrame) -> int:
    return len(table) if isinstance(table, pd.DataFrame) else table.num_rows


def _numpy(table: pa.Table | pd.DataFrame, name: str) -> np.ndarray:
    data = _raw(table, name)
    return data.to_numpy()


def _times(table: pa.Table | pd.DataFrame, name: str) -> np.ndarray:
    """Event or request times as naive UTC ``datetime64[us]`` (time zones converted)."""
    data = _raw(table, name)
    if isinstance(data, pd.Series):
        stamps = pd.to_datetime(data)
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        return stamps.to_numpy("datetime64[us]")
    return data.cast(pa.timestamp("us")).to_numpy()


def _column_data(table: pa.Table | pd.DataFrame, column: MonitoredColumn, order=None):
    """A column ready to sketch (numeric floats or category codes), rows in ``order``."""
    data = _raw(table, column.name)
    if column.kind == "numeric":
        out = numeric_column(data)
        return out if order is None else out.take(order)
    codes, dictionary = encode(data)
    return (codes if order is None else codes[order]), dictionary


def build_reference(
    baseline: pa.Table | pd.DataFrame,
    columns: list[MonitoredColumn],
    config: Monitoring,
    seed: int = 0,
) -> Reference:
    """Freeze bins and bootstrap nulls from the baseline rows."""
    table = baseline
    missing = [c.name for c in columns if c.name not in _names(table)]
    if missing:
        raise KubricksError(f"baseline has no column(s) {', '.join(missing)}")
    bounds = np.array([0, _rows(table)])
    tests = max(1, sum(c.role == "feature" for c in columns))
    samples = max(config.bootstrap_samples, int(np.ceil(2 * tests / config.fdr)))
    bins: dict[str, NumericBins | CategoricalBins] = {}
    sketches: dict[str, Sketch] = {}
    nulls: dict[str, alarms.NullModel] = {}
    chosen: dict[str, str] = {}
    frozen: NumericBins | CategoricalBins
    for i, column in enumerate(columns):
        data = _column_data(table, column)
        if column.kind == "numeric":
            frozen = numeric_bins(data)
            sketches[column.name] = numeric_sketch(data, frozen, bounds)
            metric = config.numeric_metric
            edges, scale, discrete = frozen.edges, frozen.scale, frozen.discrete
        else:
            frozen = categorical_bins(data)
            sketches[column.name] = categorical_sketch(data, frozen, bounds)
            metric = config.categorical_metric
            if metric in ("ks", "wasserstein"):
                metric = "js_distance"
            edges, scale, discrete = None, 1.0, False
        bins[column.name] = frozen
        chosen[column.name] = metric
        function, fine = alarms.metric_function(metric, edges, scale, discrete)
        ref = sketches[column.name].fine[0]
        nulls[column.name] = alarms.NullModel(
            ref if fine else frozen.coarse(ref), function, samples, seed=seed + i
        )
    return Reference(columns, bins, sketches, nulls, chosen, _rows(table), config)


def _sketch_all(
    table: pa.Table | pd.DataFrame, reference: Reference, groups: Groups
) -> dict[str, Sketch]:
    order: np.ndarray | None
    order = groups.order
    if len(order) == 0 or np.array_equal(order, np.arange(len(order))):
        order = None  # already contiguous (one window, or rows in time order)

    def one(column: MonitoredColumn) -> tuple[str, Sketch]:
        data = _column_data(table, column, order)
        frozen = reference.bins[column.name]
        if column.kind == "numeric":
            assert isinstance(frozen, NumericBins)  # the reference froze it by kind
            return column.name, numeric_sketch(data, frozen, groups.bounds)
        assert isinstance(frozen, CategoricalBins)
        return column.name, categorical_sketch(data, frozen, groups.bounds)

    with ThreadPoolExecutor(THREADS) as pool:
        return dict(pool.map(one, reference.columns))


PROFILE_TYPES = {
    "count": "int64",
    "num_nulls": "int64",
    "num_nan": "int64",
    "num_zeros": "float64",  # null for categorical columns
    "percent_null": "float64",
    "avg": "float64",
    "stddev": "float64",
    "min": "float64",
    "max": "float64",
    "median": "float64",
    "distinct_count": "int64",
    "frequent_items": "string",
}


def _profile_frame(
    keys: pd.DataFrame, sketches: dict[str, Sketch], reference: Reference, log_type: str
) -> pd.DataFrame:
    frames = []
    for column in reference.columns:
        rows = pd.DataFrame(sketches[column.name].profiles).astype(PROFILE_TYPES)
        rows.insert(0, "column_name", column.name)
        rows.insert(1, "data_type", column.kind)
        rows.insert(2, "role", column.role)
        frames.append(pd.concat([keys.drop(columns="count").reset_index(drop=True), rows], axis=1))
    out = pd.concat(frames, ignore_index=True)
    out.insert(cast(int, out.columns.get_loc("slice_value")) + 1, "log_type", log_type)  # unique
    return out


def _drift_metrics(
    column: MonitoredColumn, frozen, ref_fine, cur_fine, ref_tails, cur_tails
) -> dict[str, np.ndarray]:
    ref_coarse, cur_coarse = frozen.coarse(ref_fine), frozen.coarse(cur_fine)
    chi_stat, chi_p = metrics.chi2(ref_coarse, cur_coarse)
    out = {
        "js_distance": metrics.js_distance(ref_coarse, cur_coarse),
        "psi": metrics.psi(ref_coarse, cur_coarse),
        "tv_distance": metrics.tv(ref_coarse, cur_coarse),
        "linf_distance": metrics.linf(ref_coarse, cur_coarse),
        "chi2_statistic": chi_stat,
        "chi2_pvalue": chi_p,
    }
    n = cur_fine.shape[0]
    if column.kind == "numeric":
        ks_stat, ks_p = metrics.ks(ref_fine, cur_fine)
        out["ks_statistic"], out["ks_pvalue"] = ks_stat, ks_p
        out["wasserstein_distance"] = metrics.wasserstein(
            ref_fine, cur_fine, frozen.edges, frozen.scale, ref_tails, cur_tails, frozen.discrete
        )
    else:
        out["ks_statistic"] = out["ks_pvalue"] = out["wasserstein_distance"] = np.full(n, np.nan)
    return {k: np.broadcast_to(v, (n,)) for k, v in out.items()}


METRIC_COLUMN = {
    "js_distance": "js_distance",
    "psi": "psi",
    "tv": "tv_distance",
    "linf": "linf_distance",
    "chi2": "chi2_statistic",
    "ks": "ks_statistic",
    "wasserstein": "wasserstein_distance",
}


def _drift_frame(
    keys: pd.DataFrame, sketches: dict[str, Sketch], reference: Reference
) -> pd.DataFrame:
    """Drift of every group against the baseline and against the previous window."""
    previous = _previous_group(keys)
    has_prev = previous >= 0
    frames = []
    for column in reference.columns:
        frozen = reference.bins[column.name]
        sketch = sketches[column.name]
        base = reference.sketches[column.name]
        base_profile = base.profiles[0]
        for drift_type in ("BASELINE", "CONSECUTIVE"):
            if drift_type == "BASELINE":
                ref_fine, ref_tails = base.fine, base.tails
                rows = np.arange(len(keys))
                cmp_start = pd.Series([pd.NaT] * len(rows), dtype="datetime64[us]")
                cmp_end = cmp_start
                count_cmp = np.full(len(rows), reference.rows)
            else:
                rows = np.flatnonzero(has_prev)
                if rows.size == 0:
                    continue
                prev = previous[rows]
                ref_fine = sketch.fine[prev]
                ref_tails = None if sketch.tails is None else sketch.tails[prev]
                cmp_start = keys["window_start"].to_numpy()[prev]
                cmp_end = keys["window_end"].to_numpy()[prev]
                count_cmp = keys["count"].to_numpy()[prev]
            cur_tails = None if sketch.tails is None else sketch.tails[rows]
            values = _drift_metrics(
                column, frozen, ref_fine, sketch.fine[rows], ref_tails, cur_tails
            )
            frame = keys.iloc[rows].reset_index(drop=True).copy()
            frame["column_name"] = column.name
            frame["data_type"] = column.kind
            frame["role"] = column.role
            frame["drift_type"] = drift_type
            frame["window_cmp_start"] = np.asarray(cmp_start)
            frame["window_cmp_end"] = np.asarray(cmp_end)
            frame["count_cmp"] = np.asarray(count_cmp, dtype=np.int64)
            for name, value in values.items():
                frame[name] = np.asarray(value, dtype=np.float64)
            profiles = [sketch.profiles[r] for r in rows]
            if drift_type == "BASELINE":
                ref_null = [base_profile["percent_null"]] * len(rows)
                ref_avg = [base_profile["avg"]] * len(rows)
            else:
                ref_null = [sketch.profiles[p]["percent_null"] for p in prev]
                ref_avg = [sketch.profiles[p]["avg"] for p in prev]
            frame["percent_null_delta"] = [
                p["percent_null"] - r for p, r in zip(profiles, ref_null, strict=True)
            ]
            frame["avg_delta"] = np.array(
                [
                    np.nan if p["avg"] is None or r is None else p["avg"] - r
                    for p, r in zip(profiles, ref_avg, strict=True)
                ],
                dtype=np.float64,
            )
            new: list[Any]
            gone: list[Any]
            if sketch.new_categories is not None and drift_type == "BASELINE":
                assert sketch.missing_categories is not None  # sketched with new_categories
                new = [",".join(sketch.new_categories[r]) for r in rows]
                gone = [",".join(sketch.missing_categories[r]) for r in rows]
            else:
                new = gone = [pd.NA] * len(rows)
            frame["new_categories"] = pd.array(new, dtype="string")
            frame["missing_categories"] = pd.array(gone, dtype="string")
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _previous_group(keys: pd.DataFrame) -> np.ndarray:
    """For each group, the group of the same slice in the previous window (or -1)."""
    previous = np.full(len(keys), -1, dtype=np.int64)
    slice_id = keys["slice_value"].astype("string").fillna("\x00")
    for _, idx in keys.groupby(slice_id, sort=False).groups.items():
        ordered = keys.loc[idx].sort_values("window_start").index.to_numpy()
        previous[ordered[1:]] = ordered[:-1]
    return previous


def _alarms(drift: pd.DataFrame, reference: Reference) -> pd.DataFrame:
    """Attach alarm metric, size-calibrated null p-value, threshold and the drifted flag."""
    config = reference.config
    drift["alarm_metric"] = None
    drift["alarm_value"] = np.nan
    drift["null_pvalue"] = np.nan
    drift["threshold"] = np.nan
    drift["drifted"] = False
    base = drift.index[(drift["drift_type"] == "BASELINE").to_numpy()]
    for name, metric in reference.alarm_metric.items():
        rows = base[(drift.loc[base, "column_name"] == name).to_numpy()]
        values = drift.loc[rows, METRIC_COLUMN[metric]].to_numpy()
        sizes = drift.loc[rows, "count"].to_numpy()
        null = reference.nulls[name]
        drift.loc[rows, "alarm_metric"] = metric
        drift.loc[rows, "alarm_value"] = values
        drift.loc[rows, "null_pvalue"] = [
            null.pvalue(int(n), float(v)) for n, v in zip(sizes, values, strict=True)
        ]
        floor = config.min_effect.get(metric, 0.0)
        drift.loc[rows, "threshold"] = [
            max(floor, null.quantile(int(n), 1 - config.fdr)) for n in sizes
        ]
    # within a slice, the slice's own column is one value by construction: not compared
    own = (drift.loc[base, "column_name"] == drift.loc[base, "slice_key"]).to_numpy()
    base = base[~own]
    judged = base[(drift.loc[base, "count"] >= config.min_window_rows).to_numpy()]
    drift["judged"] = False
    drift.loc[judged, "judged"] = True
    features = judged[(drift.loc[judged, "role"] == "feature").to_numpy()]
    for _, idx in drift.loc[features].groupby("window_start").groups.items():
        rejected = alarms.benjamini_hochberg(drift.loc[idx, "null_pvalue"].to_numpy(), config.fdr)
        metric_floor = np.array(
            [config.min_effect.get(m, 0.0) for m in drift.loc[idx, "alarm_metric"]]
        )
        large = drift.loc[idx, "alarm_value"].to_numpy() >= metric_floor
        drift.loc[idx, "drifted"] = rejected & large
    # the model's outputs are reported against their own threshold; they raise no alarm
    outputs = judged[(drift.loc[judged, "role"] != "feature").to_numpy()]
    drift.loc[outputs, "drifted"] = (
        drift.loc[outputs, "alarm_value"].to_numpy() >= drift.loc[outputs, "threshold"].to_numpy()
    )
    verdict = pd.Series(pd.NA, index=drift.index, dtype="string")
    verdict[base] = not_judged(config.min_window_rows)
    verdict[judged] = np.where(drift.loc[judged, "drifted"].astype(bool), "drifted", "stable")
    drift["verdict"] = verdict
    return drift


def _ordered(values: np.ndarray | None, order: np.ndarray) -> np.ndarray | None:
    return None if values is None else values[order]


def _window_quality(
    inputs: QualityInputs, rows: dict[str, np.ndarray | None], counted: bool, labelled
) -> tuple[dict[str, float], dict[str, float], tuple[str, ...]]:
    """Realized (on the labelled rows, when counted) and estimated metrics of one window."""
    y, predicted, probability = rows["label"], rows["predicted"], rows["probability"]
    assert y is not None and predicted is not None  # always read; only the rest are optional
    if inputs.problem_type != "classification":
        names: tuple[str, ...] = quality.REGRESSION_METRICS
        realized = (
            quality.realized_regression(y[labelled], predicted[labelled])
            if counted
            else dict.fromkeys(names, np.nan)
        )
        return realized, dict.fromkeys(names, np.nan), names
    names = quality.CLASSIFICATION_METRICS
    if inputs.multiclass:
        matrix = rows["probabilities"]
        realized = (
            quality.realized_multiclass(
                y[labelled].astype(int),
                predicted[labelled].astype(int),
                None if matrix is None else matrix[labelled],
                inputs.classes,
            )
            if counted
            else dict.fromkeys(names, np.nan)
        )
        estimated = quality.estimated_multiclass(
            probability, rows["calibrated"], predicted.astype(int)
        )
        return realized, estimated, names
    score = rows["raw_probability"]
    if score is None:
        score = probability if probability is not None else predicted.astype(float)
    realized = (
        quality.realized_classification(
            y[labelled].astype(int), score[labelled], predicted[labelled].astype(int)
        )
        if counted
        else dict.fromkeys(names, np.nan)
    )
    estimated = (
        quality.estimated_classification(probability, predicted)
        if probability is not None
        else dict.fromkeys(names, np.nan)
    )
    return realized, estimated, names


def _quality_frame(
    keys: pd.DataFrame, groups: Groups, inputs: QualityInputs, config: Monitoring
) -> pd.DataFrame:
    """Realized and estimated quality per window, against the champion's holdout.

    Realized quality is judged once labels cover ``label_coverage`` of a window and at
    least ``min_window_rows`` rows are labelled; the estimate once the window has that
    many rows. A window that is neither says why in ``quality_verdict``.
    """
    arrays = {
        "label": inputs.label,
        "predicted": inputs.predicted,
        "probability": inputs.probability,
        "raw_probability": inputs.raw_probability,
        "probabilities": inputs.probabilities,
        "calibrated": inputs.calibrated,
    }
    ordered = {name: _ordered(values, groups.order) for name, values in arrays.items()}
    minimum = config.min_window_rows
    rows = []
    for g in range(len(keys)):
        lo, hi = groups.bounds[g], groups.bounds[g + 1]
        window = {n: None if v is None else v[lo:hi] for n, v in ordered.items()}
        labelled = ~np.isnan(cast(np.ndarray, window["label"]))  # the label is always read
        coverage = float(labelled.mean()) if hi > lo else 0.0
        counted = bool(coverage >= config.label_coverage and labelled.sum() >= max(2, minimum))
        row: dict[str, object] = {"labelled": int(labelled.sum()), "label_coverage": coverage}
        row["counted"] = counted
        realized, estimated, names = _window_quality(inputs, window, counted, labelled)
        for name in names:
            row[f"realized_{name}"] = realized.get(name, np.nan)
            row[f"estimated_{name}"] = estimated.get(name, np.nan)
        rows.append(row)
    out = pd.concat([keys.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
    primary = inputs.primary
    reference = inputs.reference.get(primary, np.nan)
    out["primary_metric"] = primary
    out["reference_value"] = reference
    sign = 1.0 if inputs.greater_is_better else -1.0
    big = out["count"].to_numpy() >= minimum
    for kind in ("realized", "estimated"):
        column = f"{kind}_{primary}"
        value = out[column] if column in out else pd.Series(np.nan, index=out.index)
        drop = sign * (reference - value)
        out[f"{kind}_drop"] = drop
        out[f"{kind}_alarm"] = (drop > config.quality_drop).fillna(False).astype(bool) & big
    out["estimate_gap"] = out.get(f"estimated_{primary}", np.nan) - out.get(
        f"realized_{primary}", np.nan
    )
    out["quality_alarm"] = out["realized_alarm"] | out["estimated_alarm"]
    out["quality_verdict"] = [
        _quality_verdict(row, primary, reference, config) for row in out.to_dict("records")
    ]
    return out


def _quality_verdict(
    row: Mapping[Hashable, Any], primary: str, reference: float, config: Monitoring
) -> str:
    """Why a window's quality is or is not in alarm, in a few words."""
    if np.isnan(reference):
        return f"not judged (no holdout {primary} to compare with)"
    if row["quality_alarm"]:
        return "dropped" if row["realized_alarm"] else "dropped (estimated)"
    if row["counted"]:
        return "held"
    if int(row["count"]) < config.min_window_rows:
        return not_judged(config.min_window_rows)
    if not np.isnan(float(row.get(f"estimated_{primary}", np.nan))):
        return "held (estimated; labels on too few rows)"
    return f"not judged (labels on {float(row['label_coverage']):.0%} of rows)"


def _window_summary(
    keys: pd.DataFrame, drift: pd.DataFrame, quality_frame: pd.DataFrame | None, config
) -> pd.DataFrame:
    windows = (
        keys.groupby(["window_start", "window_end"], as_index=False)["count"]
        .max()
        # as_index=False gives a DataFrame; pandas-stubs types it as a Series
        .sort_values("window_start")  # type: ignore[call-overload]
        .reset_index(drop=True)
    )
    overall = keys["slice_key"].isna()
    windows["count"] = (
        keys[overall].set_index("window_start")["count"].reindex(windows["window_start"]).to_numpy()
    )
    flagged = drift[drift["drifted"].astype(bool) & (drift["role"] == "feature")]
    per_window = flagged.groupby("window_start")["column_name"].agg(lambda s: sorted(set(s)))
    windows["drifted_features"] = [per_window.get(w, []) for w in windows["window_start"]]
    windows["drift_raw"] = windows["drifted_features"].map(bool)
    windows["judged"] = windows["count"] >= config.min_window_rows
    windows["drift_verdict"] = np.where(
        ~windows["judged"],
        not_judged(config.min_window_rows),
        np.where(windows["drift_raw"], "drifted", "stable"),
    )
    # k of the last n windows, or of as many as there are: one window (a snapshot, a short
    # source) is judged on its own rather than never
    k = min(config.persistence_k, len(windows)) or 1
    n = config.persistence_n
    windows["drift_alarm"] = alarms.persistent(windows["drift_raw"].to_numpy(), k, n)
    if quality_frame is not None and not quality_frame.empty:
        q = quality_frame[quality_frame["slice_key"].isna()].set_index("window_start")
        q = q.reindex(windows["window_start"])
        for column in ("realized_alarm", "estimated_alarm"):
            windows[column.replace("alarm", "raw")] = q[column].fillna(False).to_numpy(bool)
        for column in ("label_coverage", "estimate_gap", "reference_value", "quality_verdict"):
            windows[column] = q[column].to_numpy()
        primary = q["primary_metric"].dropna().iloc[0] if q["primary_metric"].notna().any() else ""
        windows["realized"] = q.get(
            f"realized_{primary}", pd.Series(np.nan, index=q.index)
        ).to_numpy()
        windows["estimated"] = q.get(
            f"estimated_{primary}", pd.Series(np.nan, index=q.index)
        ).to_numpy()
        windows["quality_raw"] = windows["realized_raw"] | windows["estimated_raw"]
        windows["quality_alarm"] = alarms.persistent(windows["quality_raw"].to_numpy(), k, n)
    else:
        windows["quality_raw"] = False
        windows["quality_alarm"] = False
        windows["quality_verdict"] = "not judged (no labels or probabilities)"
    windows["alarm"] = windows["drift_alarm"] | windows["quality_alarm"]
    return windows


def analyze(
    reference: Reference,
    monitored: pa.Table | pd.DataFrame,
    time_column: str | None,
    granularity: str | None = None,
    quality_inputs: QualityInputs | None = None,
    snapshot_at: pd.Timestamp | None = None,
) -> Analysis:
    """Profile, drift, quality and alarms of every window (and slice) of ``monitored``.

    With no ``time_column`` the rows are one snapshot window stamped ``snapshot_at``
    (default now). ``granularity`` ``auto`` (or None with the spec's ``auto``) fits the
    window to the rows' span and count.
    """
    table = monitored
    config = reference.config
    absent = [c.name for c in reference.columns if c.name not in _names(table)]
    absent += [c for c in config.slices if c not in _names(table)]
    if absent:
        raise KubricksError(f"monitored rows lack column(s) {', '.join(absent)}")
    if time_column is None:
        granularity = SNAPSHOT
        stamp = pd.Timestamp(snapshot_at if snapshot_at is not None else pd.Timestamp.now("UTC"))
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        times = np.full(_rows(table), stamp.to_datetime64(), dtype="datetime64[us]")
    else:
        if time_column not in _names(table):
            raise KubricksError(f"monitored rows have no time column {time_column!r}")
        times = _times(table, time_column)
        undated = int(np.isnat(times).sum())
        if undated:
            raise KubricksError(
                f"{undated} monitored row(s) have no {time_column!r}: cannot window them"
            )
        granularity = granularity or config.granularity
        if granularity == AUTO:
            granularity = fit_granularity(times, config.min_window_rows)
    slicings: list[str | None] = [None, *config.slices]
    profiles, drifts, qualities = [], [], []
    latest_fine: dict[str, np.ndarray] = {}
    all_keys = []
    for slice_key in slicings:
        values = None if slice_key is None else np.asarray(_numpy(table, slice_key), dtype=object)
        groups = group_rows(times, granularity, slice_key, values)
        keys = groups.keys
        sketches = _sketch_all(table, reference, groups)
        if slice_key is None and len(keys):
            latest = int(np.argmax(keys["window_start"].to_numpy()))
            latest_fine = {name: sketch.fine[latest] for name, sketch in sketches.items()}
        profiles.append(_profile_frame(keys, sketches, reference, "INPUT"))
        drifts.append(_drift_frame(keys, sketches, reference))
        if quality_inputs is not None:
            qualities.append(_quality_frame(keys, groups, quality_inputs, config))
        all_keys.append(keys)
    baseline_keys = pd.DataFrame(
        {
            "window_start": pd.Series([pd.NaT], dtype="datetime64[us]"),
            "window_end": pd.Series([pd.NaT], dtype="datetime64[us]"),
            "slice_key": [None],
            "slice_value": [None],
            "count": [reference.rows],
        }
    )
    profiles.append(_profile_frame(baseline_keys, reference.sketches, reference, "BASELINE"))
    keys = pd.concat(all_keys, ignore_index=True)
    drift = _alarms(pd.concat(drifts, ignore_index=True), reference)
    quality_frame = pd.concat(qualities, ignore_index=True) if qualities else pd.DataFrame()
    profile = pd.concat(profiles, ignore_index=True)
    for frame in (profile, drift, quality_frame):
        if not frame.empty:
            frame.insert(2, "granularity", granularity)
    windows = _window_summary(keys, drift, quality_frame if qualities else None, config)
    return Analysis(
        profile, drift, quality_frame, windows, latest_fine, granularity, config.min_window_rows
    )
