"""`layer_norm_lstm` (Ba et al. 2016) against NumPy."""

import numpy as np
import pytest

from tests.cells.reference import assert_matches_reference, blocks, sigmoid

EPSILON = 1e-5


def layer_norm(a):
    return (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + EPSILON)


def numpy_layer_norm_lstm(cell_norm):
    def step(w, x, states):
        h, c = states
        W = blocks(w["kernel"], 4)
        U = blocks(w["recurrent_kernel"], 4)
        gamma = blocks(w["gate_gamma"], 4)
        beta = blocks(w["bias"], 4)
        i, f, g, o = (gamma[k] * layer_norm(x @ W[k] + h @ U[k]) + beta[k] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        shown = w["cell_gamma"] * layer_norm(c) + w["cell_beta"] if cell_norm else c
        h = sigmoid(o) * np.tanh(shown)
        return h, [h, c]

    return step


@pytest.mark.parametrize("cell_norm", [True, False])
def test_matches_numpy(cell_norm):
    assert_matches_reference(
        "layer_norm_lstm", numpy_layer_norm_lstm(cell_norm), cell_norm=cell_norm, epsilon=EPSILON
    )


def test_bad_epsilon_is_named():
    from zoo import cells

    with pytest.raises(ValueError, match="epsilon=0"):
        cells.create("layer_norm_lstm", 4, epsilon=0)
