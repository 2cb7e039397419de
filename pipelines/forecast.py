"""Forecasting: a probabilistic global model of one or many series, the `forecast` task.

    lstm-zoo train --task=forecast --dataset=elecdemand --cell=lstm
    lstm-zoo train --task=forecast --data=my_series.csv --horizon=14
    lstm-zoo sample --run_dir=runs/forecast-...          # CSV of quantiles + PNG

The corpora are `pipelines.datasets.series` (AirPassengers, Victoria's electricity demand with
temperature, 145 US employment series) or a user's long-format CSV (`zoo_series_csv`). The
model is `zoo.models.forecaster.Forecaster` over any cell, trained DeepAR's way on windows of
`context + horizon` steps drawn from the training end of every series; its test score is the
rolling-origin backtest on the held-out ends (`pipelines.backtest`) against seasonal naive.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

import numpy as np
import tensorflow as tf

from pipelines import datasets
from pipelines.configs import TrainConfig, option
from pipelines.datasets.series import unflatten
from pipelines.forecast_features import LAYOUT, Layout, fit_layout, known_inputs, seasons_of, window
from pipelines.streams import shuffled_batches
from pipelines.tasks import Task, TaskData, register_task
from zoo.models.distributions import HEADS, ForecastLoss
from zoo.models.forecaster import from_size

# Packaged datasets by their --dataset name.
DATASETS = {
    "air_passengers": "zoo_air_passengers",
    "elecdemand": "zoo_elecdemand",
    "us_employment": "zoo_us_employment",
}


@dataclass
class ForecastConfig(TrainConfig):
    """A probabilistic forecaster (DeepAR-style) of one or many series."""

    task: str = option("forecast", "Task to train (see `lstm-zoo list`).")
    dataset: str = option("air_passengers", "Packaged series (without --data).", tuple(DATASETS))
    data: str | None = option(None, "Long-format CSV: unique_id, ds, y and covariate columns.")
    cell: str = option("lstm", "Registered cell name.")
    size: str = option(
        "small", "Model size: a key of zoo.models.forecaster.SIZES.", "zoo.models.forecaster:SIZES"
    )
    units: int | None = option(
        None, "Hidden units per layer; default the size's.", between=(1, 65_536)
    )
    layers: int | None = option(
        None, "Stacked recurrent layers; default the size's.", between=(1, 64)
    )
    head: str = option(
        "student_t",
        "Output distribution: student_t, normal, "
        "negative_binomial (counts) or quantile (0.1..0.9).",
        tuple(HEADS),
    )
    dropout: float = option(0.1, "Dropout between the recurrent layers.", between=(0.0, 0.95))
    horizon: int | None = option(
        None,
        "Steps forecast from each origin; default the dataset's (a season for a CSV).",
        between=(1, 100_000),
    )
    windows: int | None = option(
        None,
        "Rolling origins of the backtest; default the dataset's (1 for a CSV).",
        between=(1, 10_000),
    )
    stride: int | None = option(
        None,
        "Steps between origins; default the dataset's (the horizon for a CSV).",
        between=(1, 100_000),
    )
    context: int | None = option(
        None,
        "Steps the model reads before forecasting (and "
        "trains on before the horizon); default max(2 horizon, "
        "the first season).",
        between=(1, 100_000),
    )
    season: int | None = option(
        None,
        "Seasonal period of MASE and seasonal naive; default "
        "the dataset's (from the CSV's frequency).",
        between=(1, 100_000),
    )
    samples: int = option(100, "Sample paths per forecast.", between=(1, 100_000))
    epochs: int = option(30, "Number of epochs (an epoch is `steps` batches).")
    steps: int | None = option(50, "Batches per epoch; 0 = one pass over the training windows.")
    validation_steps: int | None = option(0, "Validation batches per epoch; 0 = all.")
    batch_size: int = option(64, "Global batch size (split over replicas).")
    patience: int | None = option(
        8, "Stop after this many epochs without a better validation loss (early stopping)."
    )
    learning_rate: float = option(1e-3, "Learning rate (the peak, with a schedule).")


def dataset_name(config) -> str:
    """The dataset `config` reads: the CSV builder over --data, else the packaged one."""
    return "zoo_series_csv" if config.data else DATASETS[config.dataset]


def protocol(config, series) -> dict:
    """The backtest and feature settings of `config` with the dataset's defaults filled in:
    {horizon, windows, stride, context, seasons, season, held_out}."""
    builder = datasets.register_all()[dataset_name(config)]
    if config.data:
        freq = series[0]["freq"]
        seasons = [m for m in seasons_of(freq) if m > 1] or [1]
        shortest = min(len(row["y"]) for row in series)
        held_out = max(1, int(np.ceil(0.1 * shortest)))
        defaults = (min(seasons[0], held_out), 1, min(seasons[0], held_out))
    else:
        seasons, held_out, defaults = list(builder.SEASONS), builder.HOLDOUT, builder.BACKTEST
    horizon = config.horizon or defaults[0]
    season = config.season or seasons[0]
    if config.season:
        seasons = sorted({config.season, *seasons} - {1}) or [1]
    context = config.context or max(2 * horizon, seasons[0])
    return {
        "horizon": horizon,
        "windows": config.windows or defaults[1],
        "stride": config.stride or (horizon if config.data else defaults[2]),
        "context": context,
        "seasons": seasons,
        "season": season,
        "held_out": held_out,
    }


def check_protocol(config, series, settings):
    """Refuse backtest windows that reach past the held-out end, or series too short."""
    source = config.data or dataset_name(config)
    span = settings["horizon"] + (settings["windows"] - 1) * settings["stride"]
    if span > settings["held_out"]:
        raise ValueError(
            f"{source}: --horizon={settings['horizon']}, --windows="
            f"{settings['windows']} and --stride={settings['stride']} span {span} "
            f"steps, more than the {settings['held_out']} held out at the end of "
            "each series"
        )
    for row in series:
        if len(row["y"]) < settings["horizon"]:
            where = f"line {row['first_row']}, column y: " if row["first_row"] >= 0 else ""
            raise ValueError(
                f"{source}: {where}series {row['unique_id']!r} has "
                f"{len(row['y'])} training points, fewer than --horizon="
                f"{settings['horizon']}"
            )


def check_history(config, series, train, layout, settings):
    """Refuse series too short to forecast their first held-out window from the longest lag
    and the context before it, and data with no series long enough for a training window."""
    source = config.data or dataset_name(config)
    held_out = settings["horizon"] + (settings["windows"] - 1) * settings["stride"]
    advice = "use a smaller --context, --horizon or --windows"
    need = layout.reach + settings["context"] + held_out
    for row in series:
        if len(row["y"]) < need:
            where = f"line {row['first_row']}, column y: " if row["first_row"] >= 0 else ""
            raise ValueError(
                f"{source}: {where}series {row['unique_id']!r} has "
                f"{len(row['y'])} points, fewer than the {need} its longest lag "
                f"({layout.reach}), --context={settings['context']} and the "
                f"backtest ({held_out} steps) need; {advice}"
            )
    window = layout.reach + settings["context"] + settings["horizon"]
    if not any(len(row["y"]) >= window for row in train):
        raise ValueError(
            f"{source}: no series has the {window} training points one window "
            f"needs (its longest lag, --context and --horizon); {advice}"
        )


def windows_stream(layout, series, length, context, horizon, batch_size, seed, start_step):
    """Endless (x, targets) training batches of windows drawn uniformly from every series'
    positions (`streams.shuffled_batches`: batch n is the same from any start_step)."""
    starts = [
        (i, s)
        for i, row in enumerate(series)
        for s in range(layout.reach, len(row["y"]) - length + 1)
    ]
    index = np.asarray(starts, np.int64)
    values = [np.asarray(row["y"], np.float64) for row in series]
    known = [known_inputs(layout, row) for row in series]

    def build(slots):
        pairs = index[slots]
        x, y = zip(
            *(
                window(layout, values[i][None], known[i][None], [s], context, horizon)
                for i, s in pairs
            )
        )
        return np.concatenate(x), np.concatenate(y)

    width = layout.width

    def batch(slots):
        x, y = tf.numpy_function(build, [slots], (tf.float32, tf.float32))
        return tf.ensure_shape(x, (batch_size, length, width)), tf.ensure_shape(
            y, (batch_size, length, 2)
        )

    return (
        shuffled_batches(len(index), batch_size, seed, start_step)
        .map(batch)
        .prefetch(tf.data.AUTOTUNE)
    ), len(index)


def held_out_dataset(layout, series, region, context, horizon, stride, batch_size):
    """(x, targets, weights) batches of the windows whose forecast steps fall in the last
    `region` steps of every series, one origin every `stride` steps; weights are 1 on the
    forecast steps only, so the loss scores what the backtest forecasts."""
    xs, ys = [], []
    for row in series:
        values, known = np.asarray(row["y"], np.float64)[None], known_inputs(layout, row)[None]
        for origin in range(len(row["y"]) - region, len(row["y"]) - horizon + 1, stride):
            x, y = window(layout, values, known, [origin - context], context, horizon)
            xs.append(x)
            ys.append(y)
    weights = np.concatenate([np.zeros(context), np.ones(horizon)]).astype(np.float32)
    weights = np.broadcast_to(weights, (len(xs), context + horizon))
    return tf.data.Dataset.from_tensor_slices(
        (np.concatenate(xs), np.concatenate(ys), weights)
    ).batch(batch_size)


def export_metadata(config, layout, settings) -> dict:
    """What a device needs to forecast with the exported step: the feature columns and how
    they are scaled, the head and its parameters (see `pipelines.forecast_features`)."""
    from zoo.models.distributions import QUANTILES

    return {
        "features": layout.names(),
        "layout": asdict(layout),
        "head": config.head,
        "quantiles": list(QUANTILES) if config.head == "quantile" else None,
        "context": settings["context"],
        "horizon": settings["horizon"],
        "scale": "mean |y| over the context steps (1 where 0); outputs are in units of y / scale",
    }


@register_task
class ForecastTask(Task):
    """Probabilistic forecasting; see `ForecastConfig` for the settings."""

    name, config_class = "forecast", ForecastConfig

    def dataset(self, config):
        return dataset_name(config)

    def inputs(self, config, split=True):
        return (LAYOUT,)

    def sequence_length(self, config):
        """Steps of a training window: context + horizon."""
        settings = protocol(config, self.read(config, "test"))
        return settings["context"] + settings["horizon"]

    def read(self, config, split):
        """The series of `split` (example dicts of `pipelines.datasets.series`)."""
        return [
            unflatten(row) for row in datasets.examples(self.dataset(config), split, config.data)
        ]

    def prepare(self, config, run_dir, split=True):
        test, train = self.read(config, "test"), self.read(config, "train")
        settings = protocol(config, test)
        check_protocol(config, train, settings)
        path = os.path.join(run_dir, LAYOUT)
        if os.path.isfile(path):
            layout = Layout.load(path)
        else:
            layout = fit_layout(train, test[0]["freq"], settings["seasons"])
            layout.save(path)
        check_history(config, test, train, layout, settings)
        context, horizon, batch = settings["context"], settings["horizon"], config.batch_size
        length = context + horizon
        train = [row for row in train if len(row["y"]) >= layout.reach + length]
        _, count = windows_stream(layout, train, length, context, horizon, batch, config.seed, 0)
        validation = self.read(config, "validation")
        held_out = len(validation[0]["y"]) - len(self.read(config, "train")[0]["y"])
        test_region = horizon + (settings["windows"] - 1) * settings["stride"]
        return TaskData(
            train=(
                lambda step: windows_stream(
                    layout, train, length, context, horizon, batch, config.seed, step
                )[0]
            )
            if split
            else None,
            validation=held_out_dataset(
                layout, validation, held_out, context, horizon, horizon, batch
            )
            if split
            else None,
            test=held_out_dataset(
                layout, test, test_region, context, horizon, settings["stride"], batch
            ),
            steps_per_pass=max(1, count // batch),
            examples=count,
            info={"layout": layout, "settings": settings, "test_series": test},
        )

    def build_model(self, config, data):
        sizes = {k: getattr(config, k) for k in ("units", "layers") if getattr(config, k)}
        return from_size(
            config.size,
            data.info["layout"].width,
            cell=config.cell,
            head=config.head,
            dropout=config.dropout,
            **sizes,
        )

    def loss(self, config):
        return ForecastLoss(config.head)

    def headline(self, config):
        return "relative_wql", True

    def score(self, config, model, data):
        """The rolling-origin backtest of the held-out ends against seasonal naive (see
        `pipelines.backtest`): MASE, sMAPE, MAPE, wQL, coverage, and each relative."""
        from pipelines import backtest

        frame = backtest.run(
            model,
            data.info["layout"],
            data.info["test_series"],
            data.info["settings"],
            config.samples,
            config.seed,
            head=config.head,
        )
        return backtest.summary(frame, data.info["test_series"], data.info["settings"])

    def export_options(self, config, data, count, seq_len=None):
        """The default export options (`Task.export_options`: `count` validation windows for
        int8 calibration, parity and the quality gate, the task and settings), drawn from the
        (features, targets) of the held-out windows without their loss weights, and
        `export_metadata`: what a device needs to build the step's features."""

        def pairs(dataset):
            return (
                None if dataset is None else dataset.map(lambda x, targets, weights: (x, targets))
            )

        windows = replace(data, validation=pairs(data.validation), test=pairs(data.test))
        options = super().export_options(config, windows, count, seq_len)
        options["metadata"].update(
            export_metadata(config, data.info["layout"], data.info["settings"])
        )
        return options

    def sample(self, config, run_dir, model, output=None, seed=None):
        """Forecasts `horizon` steps past the end of every series (see
        `pipelines.forecast_output`): writes a CSV of quantiles and a PNG of the history,
        median and 80% and 90% bands at `output` (a path stem; default run_dir/forecast)."""
        from pipelines import forecast_output

        return forecast_output.write(self, config, run_dir, model, output, seed)
