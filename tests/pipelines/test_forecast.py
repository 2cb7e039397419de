"""The forecast task at tiny settings: a user's CSV trains, backtests against seasonal naive,
forecasts a CSV of quantiles and a PNG, and exports with parity; metrics as the field defines
them; bad input is one line with nothing written."""

import os

import numpy as np
import pandas as pd
import pytest

from pipelines import backtest, cli
from pipelines.forecast import ForecastConfig
from pipelines.train import load_checkpoint, sample, train

SCORES = (
    "mase",
    "relative_mase",
    "smape",
    "mape",
    "wql",
    "relative_wql",
    "coverage_80",
    "coverage_90",
)


def series_csv(path, count=2, length=120):
    """Daily series with a weekly cycle, a trend and a known covariate (a promotion flag)."""
    days = pd.date_range("2023-01-02", periods=length, freq="D")
    rng = np.random.default_rng(0)
    rows = []
    for k in range(count):
        promo = (np.arange(length) % 11 == 0).astype(float)
        y = (
            50
            + 10 * k
            + 8 * np.sin(2 * np.pi * np.arange(length) / 7)
            + 0.05 * np.arange(length)
            + 6 * promo
            + rng.normal(0, 1, length)
        )
        rows += [(f"s{k}", d.date(), round(v, 3), p) for d, v, p in zip(days, y, promo)]
    pd.DataFrame(rows, columns=["unique_id", "ds", "y", "promo"]).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forecast")
    os.environ["TFDS_DATA_DIR"] = str(folder / "tfds")
    config = ForecastConfig(
        data=series_csv(folder / "sales.csv"),
        run_dir=str(folder / "run"),
        size="tiny",
        epochs=2,
        steps=5,
        batch_size=8,
        horizon=7,
        samples=20,
        learning_rate=1e-2,
    )
    model, metrics = train(config, verbose=0)
    yield config, model, metrics
    os.environ.pop("TFDS_DATA_DIR")


def test_a_csv_trains_and_is_backtested_against_seasonal_naive(trained):
    config, _, metrics = trained
    test = metrics["test"]
    assert all(np.isfinite(test[name]) for name in SCORES)
    assert 0 <= test["coverage_80"] <= test["coverage_90"] <= 1
    assert test["naive_mase"] > 0 and test["relative_mase"] > 0
    assert os.path.isfile(os.path.join(config.run_dir, "features.json"))


def test_sample_writes_quantiles_and_a_plot(trained):
    config, _, _ = trained
    stem = os.path.join(os.path.dirname(config.run_dir), "out")
    line = sample(config.run_dir, output=stem, seed=1)
    frame = pd.read_csv(f"{stem}.csv")
    assert "wrote" in line and os.path.getsize(f"{stem}.png") > 1000
    assert list(frame["unique_id"].unique()) == ["s0", "s1"] and len(frame) == 14
    quantiles = frame[[c for c in frame.columns if c.startswith("q")]].to_numpy()
    assert (np.diff(quantiles, axis=1) >= 0).all()  # 0.05 <= ... <= 0.95
    assert frame["ds"].iloc[0] == "2023-04-25"  # the last 7 steps: covariates known there


def test_the_export_streams_with_parity_and_a_quantile_loss_gate(trained, tmp_path):
    pytest.importorskip("ai_edge_litert")
    from pipelines.export import export_run

    config, _, _ = trained
    manifest = export_run(
        config.run_dir,
        out_dir=str(tmp_path / "export"),
        format="tflite",
        quantize=["none", "float16"],
    )
    entry = manifest["files"]["model.tflite"]
    assert max(entry["parity"]["max_abs_diff"].values()) < 1e-4
    assert entry["quality_metric"] == "weighted_quantile_loss"
    assert abs(manifest["files"]["model_float16.tflite"]["quality_loss"]) < 0.01
    step = manifest["signatures"]["step"]
    assert step["inputs"]["x"]["shape"] == [1, len(manifest["metadata"]["features"])]
    assert step["outputs"]["output"]["shape"] == [1, 3]  # Student-t: mu, sigma, nu


def test_metrics_are_the_fields_definitions():
    """MASE over the in-sample seasonal-naive error, sMAPE as M4 (x200), MAPE in %,
    wQL as GluonTS, interval coverage."""
    history = [
        {
            "unique_id": "a",
            "start": "2024-01-01",
            "freq": "D",
            "y": np.array([1.0, 2, 3, 4, 6, 8]),
            "covariate_names": "",
        }
    ]
    quantiles = np.array([[[5.0] * 5 + [6.0] + [7.0] * 5, [6.0] * 5 + [8.0] + [9.0] * 5]])
    frame = backtest.as_frame("m", history, [4], quantiles)
    naive = backtest.as_frame(backtest.NAIVE, history, [4], np.full((1, 2, 11), 4.0))
    frame = frame.merge(naive.drop(columns="y"), on=["unique_id", "ds", "cutoff"])
    table = backtest.evaluate(frame, history, 1, [backtest.NAIVE, "m"])
    assert table.loc["m", "mase"] == pytest.approx(0.0)  # the median is exact
    assert table.loc[backtest.NAIVE, "mase"] == pytest.approx((2 + 4) / 2 / 1.0)
    assert table.loc[backtest.NAIVE, "smape"] == pytest.approx(100 * (2 / 10 + 4 / 12))
    assert table.loc[backtest.NAIVE, "mape"] == pytest.approx(100 * (2 / 6 + 4 / 8) / 2)
    # Seasonal naive's quantiles are all 4: wQL = mean_q 2 sum rho_q / sum |y| = sum|e|/sum|y|
    assert table.loc[backtest.NAIVE, "wql"] == pytest.approx(6 / 14)
    assert table.loc["m", "coverage_80"] == 1.0 and table.loc[backtest.NAIVE, "coverage_80"] == 0.0


def test_windows_past_the_held_out_end_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    data = series_csv(tmp_path / "s.csv", count=1, length=60)
    run_dir = tmp_path / "run"
    status = cli.run(
        [
            "train",
            "--task=forecast",
            f"--data={data}",
            "--horizon=7",
            "--windows=3",
            f"--run_dir={run_dir}",
        ]
    )
    error = capsys.readouterr().err.strip()
    assert status == 1 and "\n" not in error
    assert "span 21 steps, more than the 6 held out" in error and data in error
    assert not run_dir.exists() or not any(run_dir.iterdir())


def test_a_bad_csv_is_refused_by_train_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    bad = tmp_path / "bad.csv"
    bad.write_text("unique_id,ds,y\na,2024-01-01,1\na,2024-01-01,2\na,2024-01-02,3\n")
    run_dir = tmp_path / "run"
    status = cli.run(["train", "--task=forecast", f"--data={bad}", f"--run_dir={run_dir}"])
    error = capsys.readouterr().err.strip()
    assert status == 1 and error == (
        f"lstm-zoo: error: {bad}: line 3, column ds: duplicate "
        "timestamp '2024-01-01 00:00:00' in series 'a' (rows of "
        "a series must be sorted by time, each time once)"
    )
    assert not run_dir.exists() or not any(run_dir.iterdir())


def test_the_trained_checkpoint_reloads(trained):
    config, model, _ = trained
    x = np.zeros((1, 3, model.features), np.float32)
    np.testing.assert_allclose(np.asarray(load_checkpoint(config.run_dir)(x)).shape, (1, 3, 3))


def test_a_series_too_short_for_its_context_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    data = tmp_path / "two.csv"
    series_csv(data, count=1, length=120)
    short = pd.read_csv(data).head(40).assign(unique_id="b")
    pd.concat([pd.read_csv(data), short]).to_csv(data, index=False)
    status = cli.run(
        [
            "train",
            "--task=forecast",
            f"--data={data}",
            "--horizon=4",
            "--context=30",
            f"--run_dir={tmp_path / 'run'}",
        ]
    )
    error = capsys.readouterr().err.strip()
    assert status == 1 and "\n" not in error
    assert f"{data}: line 122, column y: series 'b' has 40 points, fewer than the 48" in error
