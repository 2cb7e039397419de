"""Anomalies from forecasts: the dynamic threshold flags what stands out and prunes the rest;
the labelled series are datasets; a tiny detector scores a series end to end."""

import numpy as np
import pytest

from pipelines import anomaly, datasets


def test_the_dynamic_threshold_flags_a_burst_and_nothing_else():
    errors = np.abs(np.random.default_rng(0).normal(0, 1, 2000))
    errors[1200:1210] += 12
    flags = anomaly.dynamic_threshold(errors)
    assert flags[1200:1210].all() and flags.sum() == 10


def test_a_peak_barely_above_the_rest_is_pruned():
    errors = np.abs(np.random.default_rng(1).normal(0, 1, 2000))
    errors[500] = errors.max() * 1.05  # 5% above the highest ordinary error: under 13%
    assert not anomaly.dynamic_threshold(errors)[500]


def test_period_of_finds_the_cycle():
    t = np.arange(3000)
    assert anomaly.period_of(np.sin(2 * np.pi * t / 137)) == 137


@pytest.mark.parametrize("name", sorted(anomaly.DATASETS.values()))
def test_labelled_series_ship_offline(name, tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    train, test = (datasets.examples(name, split)[0] for split in ("train", "test"))
    assert not train["is_anomaly"].any() and test["is_anomaly"].any()
    assert len(test["y"]) == len(test["is_anomaly"])


def test_a_tiny_detector_scores_every_point_after_its_context():
    t = np.arange(600)
    values = np.sin(2 * np.pi * t / 25) + 0.05 * np.random.default_rng(2).normal(size=600)
    model, layout = anomaly.train_detector(
        values[:400], context=16, epochs=1, steps=3, batch_size=8
    )
    scores = anomaly.residuals(model, layout, values, context=16)
    first = layout.reach + 16
    assert np.isnan(scores[:first]).all() and np.isfinite(scores[first:]).all()
    assert anomaly.detect(scores).shape == values.shape
