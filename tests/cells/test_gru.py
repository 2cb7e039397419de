"""`gru` (Cho et al. 2014) against NumPy, in both reset orders, and against keras.layers.GRUCell."""

import keras
import numpy as np
import pytest

from tests.cells.reference import assert_matches_reference, blocks, sigmoid
from zoo import cells, testing


def numpy_gru(reset_after):
    def step(w, x, states):
        (h,) = states
        W_z, W_r, W_h = blocks(w["kernel"], 3)
        U_z, U_r, U_h = blocks(w["recurrent_kernel"], 3)
        if reset_after:
            (b_z, b_r, b_h), (c_z, c_r, c_h) = blocks(w["bias"][0], 3), blocks(w["bias"][1], 3)
        else:
            (b_z, b_r, b_h), (c_z, c_r, c_h) = blocks(w["bias"], 3), (0, 0, 0)
        z = sigmoid(x @ W_z + h @ U_z + b_z + c_z)
        r = sigmoid(x @ W_r + h @ U_r + b_r + c_r)
        if reset_after:
            candidate = np.tanh(x @ W_h + r * (h @ U_h + c_h) + b_h)
        else:
            candidate = np.tanh(x @ W_h + (r * h) @ U_h + b_h)  # the paper's order
        h = z * h + (1 - z) * candidate
        return h, [h]

    return step


@pytest.mark.parametrize("reset_after", [True, False])
def test_matches_numpy(reset_after):
    assert_matches_reference("gru", numpy_gru(reset_after), reset_after=reset_after)


@pytest.mark.parametrize("reset_after", [True, False])
def test_matches_keras_gru_cell_with_copied_weights(reset_after):
    x = np.random.default_rng(0).normal(size=(4, 7, 3)).astype("float32")
    ours = keras.layers.RNN(cells.create("gru", 5, reset_after=reset_after), return_sequences=True)
    theirs = keras.layers.RNN(
        keras.layers.GRUCell(5, reset_after=reset_after), return_sequences=True
    )
    ours.build(x.shape)
    theirs.build(x.shape)
    testing.randomize_weights(theirs)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
