"""`projection_lstm` (LSTMP, Sak et al. 2014) against NumPy."""

import numpy as np
import pytest

from tests.cells.reference import assert_matches_reference, blocks, sigmoid
from zoo import cells


def numpy_lstmp(use_peepholes):
    def step(w, x, states):
        r, c = states
        W_ix, W_fx, W_cx, W_ox = blocks(w["kernel"], 4)
        W_ir, W_fr, W_cr, W_or = blocks(w["recurrent_kernel"], 4)
        b_i, b_f, b_c, b_o = blocks(w["bias"], 4)
        p_i, p_f, p_o = (
            (w["peephole_i"], w["peephole_f"], w["peephole_o"]) if use_peepholes else (0, 0, 0)
        )
        i = sigmoid(x @ W_ix + r @ W_ir + p_i * c + b_i)
        f = sigmoid(x @ W_fx + r @ W_fr + p_f * c + b_f)
        c = f * c + i * np.tanh(x @ W_cx + r @ W_cr + b_c)
        o = sigmoid(x @ W_ox + r @ W_or + p_o * c + b_o)
        m = o * np.tanh(c)
        r = m @ w["projection_kernel"]
        return r, [r, c]

    return step


@pytest.mark.parametrize("use_peepholes", [False, True])
def test_matches_numpy(use_peepholes):
    assert_matches_reference(
        "projection_lstm",
        numpy_lstmp(use_peepholes),
        units=6,
        projection_units=3,
        use_peepholes=use_peepholes,
    )


def test_states_and_output_sizes():
    cell = cells.create("projection_lstm", 8, projection_units=3)
    assert cell.state_size == [3, 8] and cell.output_size == 3
    with pytest.raises(ValueError, match="projection_units=0"):
        cells.create("projection_lstm", 8, projection_units=0)
