"""T-LSTM cell: NumPy reference of Baytas et al.'s equations; Δt = 0 gives the plain LSTM."""

import math

import keras
import numpy as np

from tests.cells.reference import assert_matches_reference, blocks, sigmoid
from zoo import cells


def step(w, x, states):
    x, delta_t = x[:, :-1], np.maximum(x[:, -1:], 0)
    h, c = states
    short = np.tanh(c @ w["decomposition_kernel"] + w["decomposition_bias"])
    c_star = (c - short) + short / np.log(math.e + delta_t)
    zi, zf, zc, zo = blocks(x @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"], 4)
    c = sigmoid(zf) * c_star + sigmoid(zi) * np.tanh(zc)
    h = sigmoid(zo) * np.tanh(c)
    return h, [h, c]


def test_matches_numpy_reference():
    assert_matches_reference("tlstm", step, units=5, input_dim=4)


def _pair(delta_t):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    timed = np.concatenate([x, np.full((3, 6, 1), delta_t, "float32")], axis=-1)
    tlstm = keras.layers.RNN(cells.create("tlstm", 5), return_sequences=True)
    lstm = keras.layers.RNN(cells.create("lstm", 5), return_sequences=True)
    tlstm(timed)
    lstm(x)
    for weight in tlstm.weights:
        weight.assign(rng.normal(scale=0.5, size=weight.shape))
    shared = {w.name: w for w in tlstm.weights}
    lstm.set_weights([shared[w.name].numpy() for w in lstm.weights])
    return tlstm(timed), lstm(x)


def test_zero_elapsed_time_is_the_lstm_with_the_same_weights():
    timed, plain = _pair(0.0)
    np.testing.assert_allclose(timed, plain, rtol=1e-5, atol=1e-6)
    timed, plain = _pair(5.0)
    assert np.abs(np.asarray(timed) - np.asarray(plain)).max() > 1e-3


def test_projection_carries_elapsed_time_over_the_time_axis():
    cell = cells.create("tlstm", 3)
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
    cell.build((None, 3))
    projected = cell.project_inputs(x)
    assert projected.shape == (2, 4, 13)
    np.testing.assert_array_equal(projected[..., -1], x[..., -1])
