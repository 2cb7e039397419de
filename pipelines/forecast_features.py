"""The forecaster's per-step features, the same for training windows, backtests, forecasts and
the exported step: lags of the target in units of the window's scale, known covariates,
calendar phases and the log of the scale.

    x_t = [y_{t-l} / s for l in lags, (c_t - mean) / std, sin/cos(2 pi phase_m(t)) for each
           season m, (log(1 + s) - mean) / std]

s is the mean |y| over the window's context (DeepAR's scale; 1 where it is 0). A season's
phase is the step's absolute position (months since 1970 for monthly data, half-hours since
1970-01-01 00:00 for half-hourly ones) modulo m, divided by m: the month of the year, the
half-hour of the day or of the week.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from zoo.files import atomic_write, read_json

LAYOUT = "features.json"


def seasons_of(freq: str) -> tuple[int, ...]:
    """The seasonal periods of a pandas frequency: a day and a week for sub-daily steps, a
    week for days, a year for weeks, months and quarters; (1,) when there is none."""
    import pandas as pd

    if freq == "1":
        return (1,)
    offset = pd.tseries.frequencies.to_offset(freq)
    nanos = getattr(offset, "nanos", None) if isinstance(offset, pd.offsets.Tick) else None
    if nanos:
        per_day = 86_400 * 10**9 / nanos
        if per_day > 1 and per_day == int(per_day):
            return (int(per_day), 7 * int(per_day))
        return (7,) if per_day == 1 else (1,)
    name = offset.name.upper()
    for prefix, period in (("W", 52), ("Q", 4), ("B", 5), ("M", 12), ("SM", 24)):
        if name.startswith(prefix):
            return (period,)
    return (1,)


def positions(start: str, freq: str, length: int) -> np.ndarray:
    """Absolute step numbers (int64) of `length` steps from `start` (see the module
    docstring): what the calendar phases are taken modulo."""
    import pandas as pd

    if freq == "1":
        return int(start) + np.arange(length, dtype=np.int64)
    offset = pd.tseries.frequencies.to_offset(freq)
    first = pd.Timestamp(start)
    if isinstance(offset, pd.offsets.Tick):
        base = (first - pd.Timestamp(0)) // pd.Timedelta(offset.nanos, "ns")
    else:
        months = first.year * 12 + first.month - 1
        name = offset.name.upper()
        base = (
            months // 3
            if name.startswith("Q")
            else first.year
            if name.startswith(("Y", "A"))
            else (first - pd.Timestamp(0)).days // 7
            if name.startswith("W")
            else months
        )
    return int(base) + np.arange(length, dtype=np.int64)


@dataclasses.dataclass
class Layout:
    """The feature layout of a run (saved as features.json beside its weights)."""

    lags: list[int]
    seasons: list[int]
    covariates: list[str]
    covariate_mean: list[float]
    covariate_std: list[float]
    log_scale_mean: float
    log_scale_std: float
    freq: str

    @property
    def width(self) -> int:
        """F, the number of features per step."""
        return len(self.lags) + len(self.covariates) + 2 * len(self.seasons) + 1

    @property
    def reach(self) -> int:
        """The longest lag: steps of history before a window's first step."""
        return max(self.lags)

    def names(self) -> list[str]:
        """The name of every feature column, in order (for the export's metadata)."""
        return (
            [f"y_lag_{lag}/scale" for lag in self.lags]
            + list(self.covariates)
            + [f"{f}(season_{m})" for m in self.seasons for f in ("sin", "cos")]
            + ["log1p(scale)"]
        )

    def save(self, path):
        """Write the layout as JSON, atomically."""
        atomic_write(path, json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def load(cls, path) -> Layout:
        """The layout saved at `path`."""
        values = read_json(path, expect=dict)
        try:
            return cls(**values)
        except TypeError as error:
            raise ValueError(f"{path}: not a feature layout ({error})") from None


def default_lags(seasons) -> list[int]:
    """Lags 1, 2, 3 and one and two of every season (as DeepAR takes lags by frequency)."""
    return sorted({1, 2, 3} | {k * m for m in seasons if m > 1 for k in (1, 2)})


def fit_layout(series, freq, seasons, lags=None) -> Layout:
    """The layout of a run, its standardisation measured on the training `series` (example
    dicts of `pipelines.datasets.series`)."""
    names = [n for n in series[0]["covariate_names"].split("\n") if n]
    covariates = np.concatenate([row["covariates"] for row in series]).astype(np.float64)
    scales = np.log1p([np.abs(row["y"]).mean() for row in series])
    spread = covariates.std(0) if len(names) else np.zeros(0)
    return Layout(
        lags=list(lags or default_lags(seasons)),
        seasons=list(seasons),
        covariates=names,
        covariate_mean=covariates.mean(0).tolist() if names else [],
        covariate_std=np.where(spread > 0, spread, 1.0).tolist(),
        log_scale_mean=float(scales.mean()),
        log_scale_std=float(scales.std()) if scales.std() > 0 else 1.0,
        freq=freq,
    )


def known_inputs(layout: Layout, row, length=None) -> np.ndarray:
    """The features known in advance for every step of a series (T, K + 2 S): standardised
    covariates and calendar phases; `length` steps (more than the series' own for future
    steps whose covariates the caller appends to `row["covariates"]`)."""
    length = length or len(row["y"])
    covariates = np.asarray(row["covariates"], np.float64)[:length]
    covariates = (covariates - layout.covariate_mean) / layout.covariate_std
    steps = positions(row["start"], row["freq"], length)
    phases = [2 * math.pi * (steps % m) / m for m in layout.seasons]
    calendar = np.stack([f(p) for p in phases for f in (np.sin, np.cos)], -1)
    return np.concatenate([covariates, calendar], -1).astype(np.float32)


def context_scale(values) -> np.ndarray:
    """DeepAR's scale of each row of `values` (N, C): mean |y|, 1 where that is 0."""
    scale = np.abs(np.asarray(values, np.float64)).mean(-1)
    return np.where(scale > 0, scale, 1.0)


def inputs(layout: Layout, history, known, scale) -> np.ndarray:
    """Features (N, L, F) of the L steps that follow `history` (N, P) minus the last L - 1
    values: step i reads history[:, P - L + i - lag + 1]. Pass history up to the step before
    the last one wanted (its own value is not read). known (N, L, K + 2 S), scale (N,)."""
    history = np.asarray(history, np.float64)
    count = known.shape[1]
    end = history.shape[1] + 1  # the position of the step after the history
    first = end - count
    lagged = np.stack([history[:, first - lag : end - lag] for lag in layout.lags], -1)
    scale = np.asarray(scale, np.float64)
    log_scale = (np.log1p(scale) - layout.log_scale_mean) / layout.log_scale_std
    return np.concatenate(
        [
            lagged / scale[:, None, None],
            known,
            np.broadcast_to(log_scale[:, None, None], (len(scale), count, 1)),
        ],
        -1,
    ).astype(np.float32)


def window(layout: Layout, values, known, start, context, horizon):
    """(x (N, L, F), targets (N, L, 2)) of the windows [start, start + context + horizon) of
    rows `values` (N, T) with known features (N, T, K + 2 S); start >= layout.reach."""
    length = context + horizon
    rows = np.arange(len(values))[:, None]
    span = np.asarray(start)[:, None] + np.arange(length)
    scale = context_scale(values[rows, span[:, :context]])
    reach = np.asarray(start)[:, None] - layout.reach + np.arange(layout.reach + length - 1)
    x = inputs(layout, values[rows, reach], known[rows, span], scale)
    targets = np.stack(
        [values[rows, span] / scale[:, None], np.broadcast_to(scale[:, None], span.shape)], -1
    )
    return x, targets.astype(np.float32)
