"""`lstm_1997` (Hochreiter & Schmidhuber 1997) against NumPy."""

import numpy as np

from tests.cells.reference import assert_matches_reference, blocks, sigmoid
from zoo import cells


def numpy_lstm_1997(w, x, states):
    h, c = states
    W_i, W_c, W_o = blocks(w["kernel"], 3)
    U_i, U_c, U_o = blocks(w["recurrent_kernel"], 3)
    b_i, b_c, b_o = blocks(w["bias"], 3)
    i = sigmoid(x @ W_i + h @ U_i + b_i)
    o = sigmoid(x @ W_o + h @ U_o + b_o)
    c = c + i * np.tanh(x @ W_c + h @ U_c + b_c)  # constant error carousel
    h = o * np.tanh(c)
    return h, [h, c]


def test_matches_numpy():
    assert_matches_reference("lstm_1997", numpy_lstm_1997)


def test_weight_layout_has_three_gate_blocks():
    cell = cells.create("lstm_1997", 4)
    cell.build((None, 3))
    shapes = {w.name: tuple(w.shape) for w in cell.weights}
    assert shapes == {"kernel": (3, 12), "recurrent_kernel": (4, 12), "bias": (12,)}
