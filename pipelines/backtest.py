"""Rolling-origin backtests, the field's way: forecasts from W origins S steps apart over the
held-out end of every series, scored against seasonal naive on the same windows.

Origins: the last window ends with the series; origin w (0..W-1) is T - H - (W - 1 - w) S,
statsforecast's `cross_validation(h=H, n_windows=W, step_size=S)` windows exactly. Forecasts
are frames in statsforecast's layout (unique_id, ds, cutoff, y, <model>, <model>-lo-<level>,
<model>-hi-<level>): the interval of level L has the quantiles (1 - L/100)/2 and (1 + L/100)/2
as its bounds, so LEVELS give the quantiles 0.1..0.9 and the 90% interval.

Metrics (utilsforecast.losses, their definitions checked against the field's):
    MASE   mean |e| / in-sample mean |y_t - y_{t-m}| up to the origin    (Hyndman & Koehler)
    sMAPE  200 mean |e| / (|y| + |yhat|)                                   (M4)
    MAPE   100 mean |e| / |y|
    wQL    mean over q in 0.1..0.9 of 2 sum rho_q(e) / sum |y|   (GluonTS mean_wQuantileLoss;
           utilsforecast's scaled_crps)
    coverage of the 80% and 90% intervals
Each is averaged over a series' windows; the relative score of a series is the model's over
seasonal naive's, and relative scores are aggregated over series (and datasets) by the
geometric mean (GIFT-Eval's convention).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pipelines.forecast_features import context_scale, inputs, known_inputs, window
from zoo.models import distributions

LEVELS = (20, 40, 60, 80, 90)
QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
METRICS = ("mase", "smape", "mape", "wql", "coverage_80", "coverage_90")
NAIVE = "SeasonalNaive"


def origins(length, horizon, windows, stride) -> list[int]:
    """The first forecast step of every window of a series of `length` points."""
    return [length - horizon - (windows - 1 - w) * stride for w in range(windows)]


def level_quantiles() -> list[float]:
    """The quantiles that bound the LEVELS' intervals, lowest first (0.05 .. 0.95)."""
    lows = [(1 - level / 100) / 2 for level in reversed(LEVELS)]
    return lows + [0.5] + [1 - q for q in reversed(lows)]


def quantile_columns(model) -> list[str]:
    """The columns of `model` holding the quantiles 0.1..0.9 (the median is the point)."""
    return (
        [f"{model}-lo-{level}" for level in (80, 60, 40, 20)]
        + [model]
        + [f"{model}-hi-{level}" for level in (20, 40, 60, 80)]
    )


def forecast_quantiles(
    model, layout, rows, cutoffs, context, horizon, samples, seed, head, progress=None
):
    """Quantiles (N, horizon, len(level_quantiles())) in units of y of the forecasts from
    `cutoffs[i]` of series rows[i] (example dicts holding the steps of the horizon, at least
    their known covariates): DeepAR's ancestral sampling, `samples` paths per forecast (the
    median path alone for the quantile head)."""
    samples = 1 if head == "quantile" else samples
    values = [np.asarray(row["y"], np.float64) for row in rows]
    known = [known_inputs(layout, row, len(row["covariates"])) for row in rows]
    x, scale = [], []
    for v, k, c in zip(values, known, cutoffs):
        start = c - context
        if start < layout.reach:
            raise ValueError(
                f"an origin at step {c} needs {layout.reach + context} steps of "
                f"history (lag {layout.reach} + context {context})"
            )
        x.append(window(layout, v[None], k[None], [start], context, 0)[0])
        scale.append(context_scale(v[None, start:c])[0])
    scale = np.repeat(np.asarray(scale), samples)
    step = tf.function(model.step, reduce_retracing=True)
    _, states = tf.function(model.prefill)(np.concatenate(x), model.initial_state(len(rows)))
    states = [[tf.repeat(s, samples, axis=0) for s in group] for group in states]
    buffer = np.zeros((len(rows) * samples, layout.reach + horizon))
    buffer[:, : layout.reach] = np.repeat(
        np.stack([v[c - layout.reach : c] for v, c in zip(values, cutoffs)]), samples, 0
    )
    future = np.repeat(np.stack([k[c : c + horizon] for k, c in zip(known, cutoffs)]), samples, 0)
    rng, found = np.random.default_rng(seed), []
    for h in range(horizon):
        x_h = inputs(layout, buffer[:, h : layout.reach + h], future[:, h : h + 1], scale)
        params, states = step(x_h[:, 0], states)
        params = np.asarray(params)
        if head == "quantile":
            found.append(distributions.quantiles(head, params, level_quantiles(), scale))
        buffer[:, layout.reach + h] = distributions.sample(head, params, rng, scale) * scale
        if progress is not None:
            progress.update()
    if head == "quantile":
        return np.stack(found, 1)
    paths = buffer[:, layout.reach :].reshape(len(rows), samples, horizon)
    return np.moveaxis(np.quantile(paths, level_quantiles(), axis=1), 0, -1)


def timestamps(row, first, count):
    """The `ds` of steps first..first+count-1 of a series (ints for integer steps)."""
    import pandas as pd

    if row["freq"] == "1":
        return int(row["start"]) + np.arange(first, first + count)
    return pd.date_range(row["start"], periods=first + count, freq=row["freq"])[first:]


def as_frame(name, rows, cutoffs, quantiles):
    """Forecasts in statsforecast's cross-validation layout (see the module docstring).
    cutoffs[i] and quantiles[i] (horizon, 11) belong to rows[i]."""
    import pandas as pd

    horizon = quantiles.shape[1]
    names = (
        [f"{name}-lo-{level}" for level in reversed(LEVELS)]
        + [name]
        + [f"{name}-hi-{level}" for level in LEVELS]
    )
    parts = []
    for row, cutoff, q in zip(rows, cutoffs, quantiles):
        part = pd.DataFrame(q, columns=names)
        part.insert(0, "unique_id", row["unique_id"])
        part.insert(1, "ds", timestamps(row, cutoff, horizon))
        part.insert(2, "cutoff", timestamps(row, cutoff - 1, 1)[0])
        part.insert(3, "y", np.asarray(row["y"])[cutoff : cutoff + horizon])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def long_frame(series):
    """The series as one statsforecast frame (unique_id, ds, y)."""
    import pandas as pd

    return pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": row["unique_id"],
                    "ds": timestamps(row, 0, len(row["y"])),
                    "y": row["y"],
                }
            )
            for row in series
        ],
        ignore_index=True,
    )


def naive_frame(series, settings):
    """statsforecast's SeasonalNaive on the backtest windows, with its intervals."""
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    frame = StatsForecast(
        models=[SeasonalNaive(settings["season"])], freq=_freq(series), n_jobs=1
    ).cross_validation(
        df=long_frame(series),
        h=settings["horizon"],
        n_windows=settings["windows"],
        step_size=settings["stride"],
        level=list(LEVELS),
    )
    return frame.reset_index() if "unique_id" not in frame.columns else frame


def _freq(series):
    return 1 if series[0]["freq"] == "1" else series[0]["freq"]


def run(model, layout, series, settings, samples=100, seed=0, head="student_t", name="zoo"):
    """The backtest frame of `model` and seasonal naive on the series' held-out ends."""
    rows, cutoffs = [], []
    for row in series:
        for cutoff in origins(
            len(row["y"]), settings["horizon"], settings["windows"], settings["stride"]
        ):
            rows.append(row)
            cutoffs.append(cutoff)
    batch = max(1, 20_000 // samples)  # rows x samples per call: bounded memory
    parts = []
    with tqdm(
        total=settings["horizon"] * -(-len(rows) // batch),
        desc="backtest",
        unit="step",
        disable=None,
        leave=False,
    ) as progress:
        for first in range(0, len(rows), batch):
            parts.append(
                forecast_quantiles(
                    model,
                    layout,
                    rows[first : first + batch],
                    cutoffs[first : first + batch],
                    settings["context"],
                    settings["horizon"],
                    samples,
                    seed + first,
                    head,
                    progress,
                )
            )
    ours = as_frame(name, rows, cutoffs, np.concatenate(parts))
    naive = naive_frame(series, settings)
    return naive.merge(ours.drop(columns="y"), on=["unique_id", "ds", "cutoff"], how="inner")


def summary(frame, series, settings, name="zoo") -> dict:
    """The test metrics of model `name` in a backtest frame: absolute and relative to
    seasonal naive (see `evaluate`), flat for metrics.json."""
    table = evaluate(frame, series, settings["season"], [NAIVE, name])
    found = {}
    for metric in METRICS:
        found[metric] = table.loc[name, metric]
        if not metric.startswith("coverage"):
            found[f"relative_{metric}"] = table.loc[name, f"relative_{metric}"]
            found[f"naive_{metric}"] = table.loc[NAIVE, metric]
    found["mape_last_step"] = table.loc[name, "mape_last_step"]
    return {k: float(v) for k, v in found.items()}


def evaluate(frame, series, season, models, point_only=()):
    """A table (model x metric) of a backtest frame: every METRIC's mean over series (its
    windows averaged first), `relative_<metric>` the geometric mean over series of the
    model's score over seasonal naive's, and `mape_last_step` the MAPE of the horizon's
    last steps (darts's `historical_forecasts(last_points_only=True)`). Models in
    `point_only` have no intervals: their quantiles are the point and coverage is NaN."""
    import pandas as pd
    from utilsforecast import losses

    frame = frame.copy()
    for model in point_only:
        for column in {
            c for level in LEVELS for c in (f"{model}-lo-{level}", f"{model}-hi-{level}")
        }:
            frame[column] = frame[model]
    per_window = {
        "mase": losses.mase(frame, models, season, long_frame(series)),
        "smape": _times(losses.smape(frame, models), models, 200),
        "mape": _times(losses.mape(frame, models), models, 100),
        "wql": losses.scaled_crps(
            frame, {m: quantile_columns(m) for m in models}, np.asarray(QUANTILES)
        ),
        "coverage_80": losses.coverage(frame, models, 80),
        "coverage_90": losses.coverage(frame, models, 90),
    }
    last = frame[frame.groupby(["unique_id", "cutoff"])["ds"].transform("max") == frame["ds"]]
    table = {}
    for metric, scores in per_window.items():
        per_series = scores.groupby("unique_id")[models].mean()
        table[metric] = per_series.mean()
        if not metric.startswith("coverage"):
            ratio = per_series[models].div(per_series[NAIVE], axis=0)
            ratio = ratio[(per_series[NAIVE] > 0) & np.isfinite(per_series[NAIVE])]
            table[f"relative_{metric}"] = np.exp(np.log(ratio).mean())
    table["mape_last_step"] = _times(losses.mape(last, models), models, 100)[models].mean()
    result = pd.DataFrame(table)
    result.loc[list(point_only), ["coverage_80", "coverage_90"]] = np.nan
    return result


def _times(frame, models, factor):
    frame = frame.copy()
    frame[models] = frame[models] * factor
    return frame
