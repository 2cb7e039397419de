"""The classification benchmark: a peer from aeon scored on unequal-length sequences, and the
report's three files (tiny data; the full run is `python -m benchmarks.classify`)."""

import json

import numpy as np

from benchmarks import classify


def rows(count, seed):
    rng = np.random.default_rng(seed)
    return [
        {
            "series": (
                np.sin(np.arange(n) * (1 + i % 2))[:, None] + 0.05 * rng.normal(size=(n, 1))
            ).astype("float32"),
            "label": "ab"[i % 2],
        }
        for i, n in enumerate(rng.integers(8, 14, count))
    ]


def test_a_peer_on_unequal_lengths_and_the_report(tmp_path):
    row = classify.run_peer("dtw", rows(8, 0), rows(6, 1))
    assert row["accuracy"] == 1.0 and row["inference_us_per_sequence"] > 0
    device = [
        {
            "file": "model.tflite",
            "runtime": "LiteRT",
            "accuracy": 1.0,
            "bytes": 2048,
            "peak_memory_bytes": 4096,
            "latency_us": 12.0,
        }
    ]
    report = {
        "machine": "test",
        "date": "today",
        "settings": {},
        "datasets": {
            "toy": {"models": [row, {"model": "rocket", "error": "E: x"}], "device": device}
        },
    }
    classify.save(report, tmp_path)
    assert json.loads((tmp_path / "classify.json").read_text()) == report
    text = (tmp_path / "classify.md").read_text()
    assert "| dtw | 1.0000 |" in text and "failed: E: x" in text and "model.tflite" in text
    assert (tmp_path / "classify.csv").read_text().startswith("dataset,")
