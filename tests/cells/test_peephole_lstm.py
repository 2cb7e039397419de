"""`peephole_lstm` (gates read c_{t-1} through matrices U) against NumPy."""

import numpy as np
import pytest

from tests.cells.reference import assert_matches_reference, blocks, sigmoid
from zoo import cells


def numpy_peephole_lstm(output_activation):
    def step(w, x, states):
        _, c = states
        W_i, W_f, W_c, W_o = blocks(w["kernel"], 4)
        U_i, U_f, U_o = blocks(w["recurrent_kernel"], 3)
        b_i, b_f, b_c, b_o = blocks(w["bias"], 4)
        f = sigmoid(x @ W_f + c @ U_f + b_f)
        i = sigmoid(x @ W_i + c @ U_i + b_i)
        o = sigmoid(x @ W_o + c @ U_o + b_o)
        c = f * c + i * np.tanh(x @ W_c + b_c)
        h = o * output_activation(c)
        return h, [h, c]

    return step


@pytest.mark.parametrize(
    "name, function", [("tanh", np.tanh), ("linear", lambda c: c)], ids=["tanh", "identity"]
)
def test_matches_numpy(name, function):
    assert_matches_reference("peephole_lstm", numpy_peephole_lstm(function), output_activation=name)


def test_recurrent_kernel_acts_on_the_cell_for_three_gates():
    cell = cells.create("peephole_lstm", 4)
    cell.build((None, 3))
    assert tuple(cell.recurrent_kernel.shape) == (4, 12)
    assert tuple(cell.kernel.shape) == (3, 16)
