"""The tf.data benchmark measures every task's stream and model on the real corpora (quick)."""

import math

from benchmarks import pipelines


def test_measure_quick():
    results = pipelines.measure(quick=True)
    assert set(results) == set(pipelines.CASES)
    for name, row in results.items():
        assert row["unit"] == pipelines.CASES[name].unit
        for key in ("pipeline_per_s", "model_per_s", "ratio"):
            assert math.isfinite(row[key]) and row[key] > 0, (name, key, row[key])
        assert math.isclose(row["ratio"], row["pipeline_per_s"] / row["model_per_s"])
        assert row["model_steps"] <= row["batches"]
    table = pipelines.markdown(results)
    assert all(f"| {name} |" in table for name in results)


def test_counts_skip_padding():
    import numpy as np

    targets = np.full((2, 3, 46), -1.0)
    targets[0, :2] = 0.0
    assert pipelines._frames(None, targets) == 2
    assert pipelines._target_tokens(None, np.array([[5, 3, 0], [4, 0, 0]])) == 3
    assert pipelines._tokens(None, np.zeros((4, 7))) == 28
