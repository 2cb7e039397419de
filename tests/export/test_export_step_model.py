"""A task model written here against the `StepModel` protocol alone exports through
`zoo.export.export`: a fused file with parity, a `step` signature for streaming, and quantised
files gated by the score the model declares, all with nothing in `zoo.export` that knows it."""

import json

import keras
import numpy as np
import pytest
from pmdarima.datasets import load_sunspots

from zoo import cells
from zoo.export import QualityError, export
from zoo.layers import Recurrent
from zoo.models.protocol import StepModel

WINDOW = 48  # four years of monthly counts


class NextMonth(keras.Model, StepModel):
    """Reads a monthly series and predicts each next month's value: an LSTM and a linear head,
    one value per step in and out. Its declared score is the mean absolute error of its
    one-step forecasts, in the series' scaled units."""

    def __init__(self, units=16, **kwargs):
        super().__init__(**kwargs)
        self.lstm = Recurrent(cells.create("lstm", units), return_sequences=True)
        self.head = keras.layers.Dense(1)

    @property
    def step_input(self):
        return "float32", (1,)

    def call(self, x):
        return self.prefill(x, self.initial_state(keras.ops.shape(x)[0]))[0]

    def initial_state(self, batch_size):
        return [self.lstm.cell.get_initial_state(batch_size)]

    def step(self, x, states):
        h, state = self.lstm.step(x, states[0])
        return self.head(h), [state]

    def prefill(self, x, states):
        h, *state = self.lstm(x, initial_state=list(states[0]), return_state=True)
        return self.head(h), [state]

    def quality(self, outputs, inputs, reference):
        forecasts, observed = np.asarray(outputs)[:, :-1, 0], np.asarray(inputs)[:, 1:, 0]
        return "mean_absolute_error", float(np.abs(forecasts - observed).mean())


def _windows(series):
    """Non-overlapping (n, WINDOW, 1) windows of a 1-D series."""
    usable = len(series) // WINDOW * WINDOW
    return series[:usable].reshape(-1, WINDOW, 1).astype("float32")


@pytest.fixture(scope="module")
def trained():
    """NextMonth trained briefly on the first 80% of the monthly sunspot numbers (1749-1983)
    and its held-out windows of the last 20%, scaled by the training months' std."""
    series = np.asarray(load_sunspots(), np.float64)
    split = int(len(series) * 0.8)
    scale = series[:split].std()
    train = _windows(series[:split] / scale)
    train = np.concatenate([train, _windows(series[WINDOW // 2 : split] / scale)])  # shifted too
    test = _windows(series[split:] / scale)
    keras.utils.set_random_seed(0)
    model = NextMonth()
    model.compile(keras.optimizers.Adam(1e-2), "mae")
    model.fit(train[:, :-1], train[:, 1:], epochs=40, batch_size=16, verbose=0)
    return model, [w[None] for w in test], float(series[:split].mean() / scale)


def test_a_model_implementing_only_the_step_protocol_exports_with_parity_and_a_gate(
    trained, tmp_path
):
    model, held_out, trained_mean = trained
    windows = np.concatenate(held_out)
    keras_mae = model.quality(model(windows), windows, None)[1]
    # Monthly sunspots: the naive forecast (next month = this month) is hard to beat, the
    # training months' mean is far off (0.388 and 1.315 here; the model: 0.381).
    persistence = float(np.abs(windows[:, 1:] - windows[:, :-1]).mean())
    climatology = float(np.abs(windows[:, 1:] - trained_mean).mean())
    assert keras_mae < min(1.02 * persistence, 0.35 * climatology)

    manifest = export(
        model,
        tmp_path / "ok",
        representative_data=held_out,
        seq_len=WINDOW,
        quantize=["none", "int8"],
        max_quality_loss=0.5 * keras_mae,
    )
    assert set(manifest["files"]) == {"saved_model", "model.tflite", "model_int8.tflite"}
    assert set(manifest["signatures"]) == {"step", "predict"}
    assert manifest["signatures"]["step"]["inputs"]["x"] == {"shape": [1, 1], "dtype": "float32"}
    assert manifest["files"]["model.tflite"]["fused_lstm_layers"] == 1
    parity = manifest["files"]["model.tflite"]["parity"]
    assert max(parity["max_abs_diff"].values()) < 1e-4  # predict, step and predict's states
    assert parity["score"]["keras"] == pytest.approx(keras_mae, rel=1e-5)
    gate = json.loads((tmp_path / "ok" / "manifest.json").read_text())["quality_gate"]
    assert gate["metric"] == gate["unit"] == "mean_absolute_error"  # the model's own metric
    int8_loss = manifest["files"]["model_int8.tflite"]["quality_loss"]
    assert manifest["files"]["model_int8.tflite"]["quality_metric"] == "mean_absolute_error"
    assert abs(int8_loss) < 0.5 * keras_mae

    # The same int8 file against a gate just under its own loss: refused, not written.
    with pytest.raises(QualityError, match="model_int8.tflite .* mean_absolute_error"):
        export(
            model,
            tmp_path / "tight",
            format="tflite",
            representative_data=held_out,
            seq_len=WINDOW,
            quantize=["none", "int8"],
            max_quality_loss=int8_loss - 1e-4,
        )
    assert sorted(p.name for p in (tmp_path / "tight").iterdir()) == [
        "manifest.json",
        "model.tflite",
    ]
