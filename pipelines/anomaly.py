"""Anomalies from forecasts: the forecaster's one-step-ahead distribution scores every point,
and Hundman et al.'s non-parametric dynamic threshold flags the anomalous stretches.

    python -m pipelines.anomaly                     # the F1 table of docs/tasks/forecasting.md
    python -m pipelines.anomaly --datasets=ecg --epochs=2

A `Forecaster` (any cell) trains on the normal training part of a labelled series
(`pipelines.datasets.anomalies`), with lags 1, 2, 3 and one and two periods (the period is
the training part's strongest autocorrelation). Every test point t gets the standardised
residual of its forecast from the `context` steps before it,

    r_t = |y_t - mu_t| / sigma_t,

smoothed by an exponentially weighted mean (telemanom's smoothing), and the dynamic threshold
(`dynamic_threshold`) picks the stretches to flag. Scores: point-wise F1 (scikit-learn) and
range-based F1 (Tatbul et al. 2018, aeon's `range_f_score`).

Reference: K. Hundman, V. Constantinou, C. Laporte, I. Colwell, T. Soderstrom, "Detecting
Spacecraft Anomalies Using LSTMs and Nonparametric Dynamic Thresholding", KDD 2018.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from pipelines import datasets
from pipelines.forecast_features import default_lags, fit_layout, known_inputs, window

DATASETS = {"ucr135": "zoo_ucr_anomaly135", "ecg": "zoo_ecg_anomalies"}
Z_VALUES = tuple(np.arange(2.0, 10.5, 0.5))  # the thresholds tried, in standard deviations


def period_of(values, longest=1000) -> int:
    """The lag of the strongest autocorrelation of `values` (up to `longest`) after the
    autocorrelation first turns negative: a heartbeat's length, a day's."""
    x = np.asarray(values, np.float64) - np.mean(values)
    spectrum = np.fft.rfft(x, 2 * len(x))
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: min(longest, len(x) // 2)]
    negative = np.flatnonzero(acf < 0)
    first = int(negative[0]) if negative.size else 4
    return first + int(np.argmax(acf[first:]))


def as_series(values, name="series") -> dict:
    """`values` as an example dict of `pipelines.datasets.series` (integer steps)."""
    return {
        "unique_id": name,
        "start": "0",
        "freq": "1",
        "y": np.asarray(values, np.float64),
        "covariates": np.zeros((len(values), 0), np.float32),
        "covariate_names": "",
        "first_row": -1,
    }


def train_detector(values, cell="lstm", context=64, epochs=10, steps=100, batch_size=64, seed=0):
    """(model, layout) trained one step ahead on the normal `values`."""
    import keras

    from pipelines.forecast import windows_stream
    from zoo.models.distributions import ForecastLoss
    from zoo.models.forecaster import from_size

    series = [as_series(values)]
    layout = fit_layout(series, "1", [1], lags=default_lags([period_of(values)]))
    keras.utils.set_random_seed(seed)
    model = from_size("small", layout.width, cell=cell)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0), loss=ForecastLoss("student_t")
    )
    stream, _ = windows_stream(layout, series, context + 1, context, 1, batch_size, seed, 0)
    model.fit(
        stream,
        epochs=epochs,
        steps_per_epoch=steps,
        shuffle=False,  # seeded stream
        verbose=0,
    )
    return model, layout


def residuals(model, layout, values, context=64, batch=512) -> np.ndarray:
    """r_t for every t of `values` (NaN for the first reach + context steps)."""
    series = as_series(values)
    known = known_inputs(layout, series)[None]
    values = np.asarray(values, np.float64)[None]
    first = layout.reach + context
    scores = np.full(values.shape[1], np.nan)
    for start in range(first, values.shape[1], batch):
        targets = np.arange(start, min(start + batch, values.shape[1]))
        rows = len(targets)
        x, y = window(
            layout,
            np.repeat(values, rows, 0),
            np.repeat(known, rows, 0),
            targets - context,
            context,
            1,
        )
        params = np.asarray(model(x))[:, -1]
        scores[targets] = np.abs(y[:, -1, 0] - params[:, 0]) / params[:, 1]
    return scores


def _stretches(flags) -> list[tuple[int, int]]:
    """[start, end) of every run of True in `flags`."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def dynamic_threshold(errors, z_values=Z_VALUES, prune=0.13) -> np.ndarray:
    """Hundman et al.'s threshold: epsilon = mean + z std of the smoothed errors e, the z that
    maximises (dmu / mu + dsigma / sigma) / (|e_a| + |E_seq|^2), where dmu and dsigma are the
    drops in mean and std when the errors above epsilon (e_a, in E_seq stretches) are left
    out; then stretches whose peak stands less than `prune` above the next lower peak (or the
    highest unflagged error) are dropped. Returns the flags (bool per point)."""
    e = np.asarray(errors, np.float64)
    mean, std = e.mean(), e.std()
    best, flags = -np.inf, np.zeros(len(e), bool)
    for z in z_values:
        above = e > mean + z * std
        if not above.any() or above.all():
            continue
        kept = e[~above]
        gain = ((mean - kept.mean()) / mean + (std - kept.std()) / std) / (
            above.sum() + len(_stretches(above)) ** 2
        )
        if gain > best:
            best, flags = gain, above
    stretches = _stretches(flags)
    if not stretches:
        return flags
    peaks = np.array([e[a:b].max() for a, b in stretches])
    order = np.argsort(-peaks)
    ladder = np.concatenate([peaks[order], [e[~flags].max()]])
    drops = (ladder[:-1] - ladder[1:]) / ladder[:-1]
    keep = np.flatnonzero(drops > prune)
    kept = set(order[: keep.max() + 1]) if keep.size else set()
    result = np.zeros(len(e), bool)
    for i in kept:
        result[stretches[i][0] : stretches[i][1]] = True
    return result


def detect(scores, smoothing=5) -> np.ndarray:
    """Flags of the residual `scores` (NaN where unscored): EWMA-smoothed, then thresholded."""
    import pandas as pd

    scored = np.isfinite(scores)
    smoothed = pd.Series(scores[scored]).ewm(span=smoothing).mean().to_numpy()
    flags = np.zeros(len(scores), bool)
    flags[scored] = dynamic_threshold(smoothed)
    return flags


def evaluate(name, cell="lstm", epochs=10, steps=100, seed=0) -> dict:
    """Train on dataset `name`'s train split, flag its test split; F1 scores and times."""
    from aeon.benchmarking.metrics.anomaly_detection import range_f_score
    from sklearn.metrics import f1_score

    train = datasets.examples(DATASETS[name], "train")[0]
    test = datasets.examples(DATASETS[name], "test")[0]
    wall, cpu = time.monotonic(), time.process_time()
    model, layout = train_detector(train["y"], cell, epochs=epochs, steps=steps, seed=seed)
    flags = detect(residuals(model, layout, test["y"]))
    labels = test["is_anomaly"].astype(bool)
    return {
        "dataset": name,
        "cell": cell,
        "points": int(len(labels)),
        "labelled": int(labels.sum()),
        "flagged": int(flags.sum()),
        "point_f1": float(f1_score(labels, flags, zero_division=0)),
        "range_f1": float(range_f_score(labels.astype(int), flags.astype(int))),
        "wall_s": time.monotonic() - wall,
        "cpu_s": time.process_time() - cpu,
    }


def main(argv=None):
    """`python -m pipelines.anomaly` (see the module docstring)."""
    from pipelines import script_flags

    def define_flags(flags, values):
        flags.DEFINE_list("datasets", list(DATASETS), "Labelled series.", flag_values=values)
        flags.DEFINE_string("cell", "lstm", "The forecaster's cell.", flag_values=values)
        flags.DEFINE_integer("epochs", 10, "Training epochs.", lower_bound=1, flag_values=values)
        flags.DEFINE_integer("steps", 100, "Steps per epoch.", lower_bound=1, flag_values=values)
        flags.DEFINE_string(
            "out", None, "Write the results as JSON to this file.", flag_values=values
        )

    args = script_flags.parse(argv, "python -m pipelines.anomaly", __doc__, define_flags)
    results = [evaluate(name, args.cell, args.epochs, args.steps) for name in args.datasets]
    lines = [
        "| series | points | labelled | flagged | point F1 | range F1 | wall s | CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['dataset']} | {r['points']} | {r['labelled']} | {r['flagged']} | "
        f"{r['point_f1']:.3f} | {r['range_f1']:.3f} | {r['wall_s']:.0f} | "
        f"{r['cpu_s']:.0f} |"
        for r in results
    ]
    print("\n".join(lines))
    if args.out:
        from zoo.files import atomic_write

        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        atomic_write(args.out, json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
