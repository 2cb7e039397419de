"""The forecasting benchmark at tiny settings: the zoo's model and statsforecast's peers on
the same windows, one table (the neural peers are left to the full run)."""

import json

import pytest


def test_tiny_benchmark_writes_the_table_and_csv(tmp_path, monkeypatch):
    pytest.importorskip("statsforecast")
    from benchmarks import forecast

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    forecast.main(
        [
            "--datasets=air_passengers",
            "--epochs=1",
            "--steps=2",
            "--samples=5",
            "--batch_size=16",
            "--windows=2",
            "--noneural",
            f"--out={tmp_path}",
        ]
    )
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["datasets"]["air_passengers"]["rows"]
    assert [r["model"] for r in rows] == ["SeasonalNaive", "zoo_lstm", "AutoETS", "AutoARIMA"]
    naive = rows[0]
    assert naive["relative_mase"] == pytest.approx(1.0) and naive["relative_wql"] == 1.0
    assert all(0 < r["mase"] < 50 for r in rows)
    table = (tmp_path / "results.md").read_text()
    assert "| AutoARIMA |" in table and "Geometric means" in table
    assert (tmp_path / "results.csv").read_text().startswith("dataset,model,")
