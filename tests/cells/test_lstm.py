"""`lstm` (Gers et al. 2000) against NumPy and against keras.layers.LSTMCell."""

import keras
import numpy as np

from tests.cells.reference import assert_matches_reference, blocks, sigmoid
from zoo import cells, testing


def numpy_lstm(w, x, states):
    h, c = states
    W_i, W_f, W_c, W_o = blocks(w["kernel"], 4)
    U_i, U_f, U_c, U_o = blocks(w["recurrent_kernel"], 4)
    b_i, b_f, b_c, b_o = blocks(w["bias"], 4)
    i = sigmoid(x @ W_i + h @ U_i + b_i)
    f = sigmoid(x @ W_f + h @ U_f + b_f)
    o = sigmoid(x @ W_o + h @ U_o + b_o)
    c = f * c + i * np.tanh(x @ W_c + h @ U_c + b_c)
    h = o * np.tanh(c)
    return h, [h, c]


def test_matches_numpy():
    assert_matches_reference("lstm", numpy_lstm)


def test_matches_keras_lstm_cell_with_copied_weights():
    x = np.random.default_rng(0).normal(size=(4, 7, 3)).astype("float32")
    ours = keras.layers.RNN(cells.create("lstm", 5), return_sequences=True, return_state=True)
    theirs = keras.layers.RNN(keras.layers.LSTMCell(5), return_sequences=True, return_state=True)
    ours.build(x.shape)
    theirs.build(x.shape)
    testing.randomize_weights(theirs)
    ours.set_weights(theirs.get_weights())
    for a, b in zip(ours(x), theirs(x)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_unit_forget_bias_initialises_the_forget_block_to_one():
    cell = cells.create("lstm", 3)
    cell.build((None, 2))
    np.testing.assert_array_equal(cell.bias.numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    cell = cells.create("lstm", 3, unit_forget_bias=False)
    cell.build((None, 2))
    np.testing.assert_array_equal(cell.bias.numpy(), np.zeros(12))
