"""The forecasting peers, each from its own library, on the backtest windows of the zoo's
forecaster: statsforecast's SeasonalNaive, AutoETS and AutoARIMA (refit at every origin) and
neuralforecast's LSTM and DeepAR (PyTorch; trained once on the steps before the first origin,
like the zoo's model), with their documented defaults except for the training budget, which
is the zoo model's wall time on the same data (Lightning's `max_time`).

Every function returns a frame in statsforecast's cross-validation layout (unique_id, ds,
cutoff, y, <model>, <model>-lo-<level>, <model>-hi-<level>).
"""

from __future__ import annotations

import logging
import os
import warnings

from pipelines.backtest import LEVELS, long_frame

# AutoARIMA's search on a long half-hourly series takes minutes a fit (season 48: about a
# minute of CPU on 4 weeks, measured): it and AutoETS fit the last MAX_FIT points before every
# origin (statsforecast's `input_size`) where a series is longer (two weeks of half-hours).
MAX_FIT = 672


def frame_of(series):
    """The series (with their covariate columns) as one long frame."""
    frame = long_frame(series)
    names = [n for n in series[0]["covariate_names"].split("\n") if n]
    for k, name in enumerate(names):
        frame[name] = [v for row in series for v in row["covariates"][:, k]]
    return frame, names


def statistical(series, settings, freq):
    """SeasonalNaive, AutoETS and AutoARIMA (statsforecast), refit at every origin."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, SeasonalNaive

    season = settings["season"]
    frame = long_frame(series)
    longest = max(len(row["y"]) for row in series)
    found = None
    # Each peer with whether its fit reads at most the last MAX_FIT observations.
    for model, windowed in (
        (SeasonalNaive(season), False),
        (AutoETS(season_length=season), True),
        (AutoARIMA(season_length=season), True),
    ):
        fit_window = MAX_FIT if longest > MAX_FIT and windowed else None
        part = StatsForecast(models=[model], freq=freq, n_jobs=1).cross_validation(
            df=frame,
            h=settings["horizon"],
            n_windows=settings["windows"],
            step_size=settings["stride"],
            level=list(LEVELS),
            input_size=fit_window,
        )
        part = part.reset_index() if "unique_id" not in part.columns else part
        found = (
            part
            if found is None
            else found.merge(part.drop(columns="y"), on=["unique_id", "ds", "cutoff"])
        )
    return found


def neural(series, settings, freq, seconds, seed=0):
    """neuralforecast's LSTM and DeepAR with their defaults, each trained for `seconds` at
    most (or its default max_steps, whichever ends first), known covariates as
    `futr_exog_list`. Returns (frame, {model: seconds trained})."""
    import time

    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import DistributionLoss
    from neuralforecast.models import LSTM, DeepAR

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    frame, names = frame_of(series)
    horizon = settings["horizon"]
    trainer = {
        "max_time": {"seconds": max(1, int(seconds))},
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "accelerator": "cpu",
        "random_seed": seed,
    }  # the models' own argument, the rest Lightning's
    exog = {"futr_exog_list": names} if names else {}
    found, times = None, {}
    for model in (
        LSTM(h=horizon, **exog, **trainer),
        DeepAR(h=horizon, loss=DistributionLoss("StudentT", level=list(LEVELS)), **exog, **trainer),
    ):
        start = time.monotonic()
        part = NeuralForecast(models=[model], freq=freq).cross_validation(
            df=frame, n_windows=settings["windows"], step_size=settings["stride"], refit=False
        )
        times[type(model).__name__] = time.monotonic() - start
        part = part.reset_index() if "unique_id" not in part.columns else part
        keep = ["unique_id", "ds", "cutoff"] + [
            c for c in part.columns if c.startswith(type(model).__name__)
        ]
        part = part[keep + (["y"] if found is None else [])]
        found = part if found is None else found.merge(part, on=["unique_id", "ds", "cutoff"])
    return found, times
