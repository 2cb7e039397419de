"""What `lstm-zoo sample` writes for a forecaster: a CSV of quantiles and a PNG of every
series' recent history, median forecast and 80% / 90% bands.

Series without covariates are forecast `horizon` steps past their end. Series with covariates
need those covariates over the horizon, which the data do not hold past their end: they are
forecast over their last `horizon` steps instead (the CSV and the plot show the actual
values beside the forecast).
"""

from __future__ import annotations

import io
import os

import numpy as np

from pipelines import backtest
from pipelines.figures import new_figure, save_png
from pipelines.forecast_features import LAYOUT, Layout
from zoo.files import atomic_write

PLOTTED = 4  # series drawn in the PNG (the CSV holds them all)


def forecast(task, config, run_dir, model, seed=0):
    """(frame of quantiles per series and step, history rows, origins): see the module
    docstring. Columns: unique_id, ds, y (actual, NaN past the end), then one per quantile
    (`backtest.level_quantiles()`, named like "q0.05")."""
    import pandas as pd

    from pipelines.forecast import protocol

    layout = Layout.load(os.path.join(run_dir, LAYOUT))
    series = task.read(config, "test")
    settings = protocol(config, series)
    horizon = settings["horizon"]
    ahead = not layout.covariates
    rows, cutoffs = [], []
    for row in series:
        length = len(row["y"])
        if ahead:  # the future has no covariates to know: the calendar is all it needs
            row = {
                **row,
                "y": np.concatenate([row["y"], np.full(horizon, np.nan)]),
                "covariates": np.zeros((length + horizon, 0), np.float32),
            }
        rows.append(row)
        cutoffs.append(length if ahead else length - horizon)
    quantiles = backtest.forecast_quantiles(
        model,
        layout,
        rows,
        cutoffs,
        settings["context"],
        horizon,
        config.samples,
        config.seed if seed is None else seed,
        config.head,
    )
    names = [f"q{q:g}" for q in backtest.level_quantiles()]
    parts = []
    for row, cutoff, q in zip(rows, cutoffs, quantiles):
        part = pd.DataFrame(q, columns=names)
        part.insert(0, "unique_id", row["unique_id"])
        part.insert(1, "ds", backtest.timestamps(row, cutoff, horizon))
        part.insert(2, "y", np.asarray(row["y"])[cutoff : cutoff + horizon])
        parts.append(part)
    return pd.concat(parts, ignore_index=True), rows, cutoffs


def plot(frame, rows, cutoffs, path, history):
    """The PNG: for the first PLOTTED series, `history` steps before the origin, the
    median, the 80% and 90% bands, and the actual values where known; written atomically."""
    shown = list(zip(rows, cutoffs))[:PLOTTED]
    figure, axes = new_figure(len(shown), 1, figsize=(9, 2.6 * len(shown)), squeeze=False)
    for axis, (row, cutoff) in zip(axes[:, 0], shown):
        part = frame[frame["unique_id"] == row["unique_id"]]
        first = max(0, cutoff - history)
        known = np.isfinite(np.asarray(row["y"], np.float64))
        steps = backtest.timestamps(row, first, len(row["y"]) - first)
        axis.plot(
            steps[known[first:]],
            np.asarray(row["y"])[first:][known[first:]],
            color="black",
            lw=1,
            label="actual",
        )
        axis.fill_between(
            part["ds"], part["q0.05"], part["q0.95"], color="C0", alpha=0.2, label="90% interval"
        )
        axis.fill_between(
            part["ds"], part["q0.1"], part["q0.9"], color="C0", alpha=0.35, label="80% interval"
        )
        axis.plot(part["ds"], part["q0.5"], color="C0", lw=1.5, label="median")
        axis.set_title(row["unique_id"], fontsize=9)
        axis.tick_params(labelsize=8)
    axes[0, 0].legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    save_png(figure, path, dpi=90, tight=False)


def write(task, config, run_dir, model, output=None, seed=None) -> str:
    """Forecast (see `forecast`), then write <output>.csv and <output>.png (default
    run_dir/forecast.*); returns a line naming both."""
    frame, rows, cutoffs = forecast(task, config, run_dir, model, seed)
    stem = output or os.path.join(run_dir, "forecast")
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.6g")
    horizon = len(frame) // len(rows)
    plot(frame, rows, cutoffs, f"{stem}.png", history=4 * horizon)
    atomic_write(f"{stem}.csv", buffer.getvalue())
    return f"wrote {stem}.csv ({len(frame)} rows of quantiles) and {stem}.png"
