"""The forecasting benchmark: the zoo's forecaster against seasonal naive, AutoETS, AutoARIMA
(statsforecast) and neuralforecast's LSTM and DeepAR on the same rolling-origin windows of
every packaged series, in one run.

    python -m benchmarks.forecast                          # the table of docs/tasks/forecasting.md
    python -m benchmarks.forecast --datasets=air_passengers --epochs=2 --steps=5 --noneural

For each dataset the zoo's model trains first (`lstm-zoo train --task=forecast`, its wall and
process CPU time recorded); the neural peers then get the same wall time each (see
`benchmarks.forecast_peers`). Scores (`pipelines.backtest.evaluate`) are averaged over
series, relative scores are geometric means over series of the ratio to seasonal naive, and
the last table gives their geometric means over the datasets.

Writes results.csv (one row per dataset and model), results.json and results.md to `--out`.
neuralforecast (PyTorch) is optional (`pip install -e .[forecast-bench]`): without it, or with
--noneural, those rows are left out.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import json
import os
import platform
import sys
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "forecast")
# Forecast-task settings the command line may override (None: the task's own).
OVERRIDES = ("epochs", "steps", "samples", "batch_size", "patience", "context", "windows")
COLUMNS = {
    "mase": "MASE",
    "relative_mase": "rel. MASE",
    "smape": "sMAPE %",
    "mape": "MAPE %",
    "wql": "wQL",
    "relative_wql": "rel. wQL",
    "coverage_80": "80% cov.",
    "coverage_90": "90% cov.",
    "mape_last_step": "MAPE % (h-th step)",
}


def _timed(function, *args, **kwargs):
    wall, cpu = time.monotonic(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.monotonic() - wall, time.process_time() - cpu


def train_zoo(dataset, out, cell, overrides):
    """Train the zoo's forecaster on `dataset`; (model, prepared data, config, wall, cpu)."""
    from pipelines import rundir
    from pipelines.forecast import ForecastConfig
    from pipelines.train import get_task, load_checkpoint, train

    config = ForecastConfig(
        dataset=dataset, cell=cell, run_dir=os.path.join(out, "runs", dataset), **overrides
    )
    _, wall, cpu = _timed(train, config, verbose=0)
    data = rundir.prepare_existing(get_task("forecast"), config, config.run_dir)
    return load_checkpoint(config.run_dir), data, config, wall, cpu


def benchmark(dataset, out, cell="lstm", neural=True, **overrides) -> dict:
    """Every model's scores on `dataset`: {"table": rows, "seconds": {...}, "settings"}."""
    from benchmarks import forecast_peers
    from pipelines import backtest

    model, data, config, wall, cpu = train_zoo(dataset, out, cell, overrides)
    series, settings = data.info["test_series"], data.info["settings"]
    name, freq = f"zoo_{cell}", series[0]["freq"]
    seconds = {name: (wall, cpu)}
    frame, *took = _timed(
        backtest.run,
        model,
        data.info["layout"],
        series,
        settings,
        config.samples,
        config.seed,
        config.head,
        name,
    )
    seconds["zoo backtest"] = tuple(took)
    stats, *took = _timed(forecast_peers.statistical, series, settings, freq)
    seconds["statsforecast (3 models, every origin)"] = tuple(took)
    frame = frame.merge(
        stats.drop(columns=[c for c in stats.columns if c == "y" or c.startswith(backtest.NAIVE)]),
        on=["unique_id", "ds", "cutoff"],
    )
    models = [backtest.NAIVE, name, "AutoETS", "AutoARIMA"]
    if neural:
        peers, *took = _timed(forecast_peers.neural, series, settings, freq, wall, config.seed)
        peers, trained = peers
        seconds.update(
            {f"neuralforecast {k} (train + forecast)": (v, None) for k, v in trained.items()}
        )
        frame = frame.merge(
            peers.drop(columns=["y"], errors="ignore"), on=["unique_id", "ds", "cutoff"]
        )
        models += ["LSTM", "DeepAR"]
    table = backtest.evaluate(
        frame, series, settings["season"], models, point_only=["LSTM"] if neural else ()
    )
    rows = [
        {
            "dataset": dataset,
            "model": model_name,
            **{k: float(v) for k, v in table.loc[model_name].items()},
        }
        for model_name in models
    ]
    return {
        "rows": rows,
        "seconds": seconds,
        "settings": {k: v for k, v in settings.items() if k != "seasons"},
        "series": len(series),
        "config": dataclasses.asdict(config),
    }


def geometric_means(rows) -> dict:
    """{model: {relative metric: geometric mean over the datasets}}."""
    found = {}
    for row in rows:
        for metric in ("relative_mase", "relative_wql", "relative_smape"):
            found.setdefault(row["model"], {}).setdefault(metric, []).append(row[metric])
    return {
        model: {m: float(np.exp(np.mean(np.log(v)))) for m, v in metrics.items()}
        for model, metrics in found.items()
    }


def _cell(value):
    return "" if value is None or not np.isfinite(value) else f"{value:.3f}"


def markdown(results) -> str:
    """The results as Markdown tables: one per dataset, then the geometric means."""
    lines = [f"Run {results['date']} on {results['machine']}; command: `{results['command']}`", ""]
    for name, found in results["datasets"].items():
        s = found["settings"]
        lines += [
            f"### {name} ({found['series']} series; horizon {s['horizon']}, "
            f"{s['windows']} windows, stride {s['stride']}, season {s['season']})",
            "",
            "| model | " + " | ".join(COLUMNS.values()) + " |",
            "|---" * (len(COLUMNS) + 1) + "|",
        ]
        lines += [
            "| " + row["model"] + " | " + " | ".join(_cell(row[k]) for k in COLUMNS) + " |"
            for row in found["rows"]
        ]
        lines += [
            "",
            "Time (wall s / process CPU s): "
            + "; ".join(
                f"{k} {w:.0f}" + ("" if c is None else f" / {c:.0f}")
                for k, (w, c) in found["seconds"].items()
            ),
            "",
        ]
    lines += [
        "### Geometric means over the datasets (relative to seasonal naive)",
        "",
        "| model | rel. MASE | rel. sMAPE | rel. wQL |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {model} | {_cell(m['relative_mase'])} | {_cell(m['relative_smape'])} | "
        f"{_cell(m['relative_wql'])} |"
        for model, m in results["overall"].items()
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    """`python -m benchmarks.forecast` (see the module docstring)."""
    import pandas as pd

    from pipelines import script_flags as flags
    from pipelines.forecast import DATASETS
    from zoo.files import atomic_write

    def define_flags(flags, values):
        flags.DEFINE_list("datasets", list(DATASETS), "Datasets.", flag_values=values)
        flags.DEFINE_string("cell", "lstm", "The zoo's cell.", flag_values=values)
        for name in OVERRIDES:
            flags.DEFINE_integer(
                name,
                None,
                f"The forecast task's --{name} (default: its own).",
                lower_bound=1,
                flag_values=values,
            )
        flags.DEFINE_boolean(
            "neural", True, "Include neuralforecast's models (--noneural: not).", flag_values=values
        )
        flags.DEFINE_string("out", RESULTS, "Results folder.", flag_values=values)

    args = flags.parse(argv, "python -m benchmarks.forecast", __doc__, define_flags)
    overrides = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k) is not None}
    neural = args.neural and importlib.util.find_spec("neuralforecast") is not None
    results = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "command": "python -m benchmarks.forecast "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "datasets": {},
    }
    for dataset in args.datasets:
        print(f"{dataset}: training and backtesting", flush=True)
        results["datasets"][dataset] = benchmark(dataset, args.out, args.cell, neural, **overrides)
    rows = [row for found in results["datasets"].values() for row in found["rows"]]
    results["overall"] = geometric_means(rows)
    os.makedirs(args.out, exist_ok=True)
    atomic_write(os.path.join(args.out, "results.json"), json.dumps(results, indent=2))
    atomic_write(os.path.join(args.out, "results.csv"), pd.DataFrame(rows).to_csv(index=False))
    table = markdown(results)
    atomic_write(os.path.join(args.out, "results.md"), table)
    print(table)


if __name__ == "__main__":
    main()
