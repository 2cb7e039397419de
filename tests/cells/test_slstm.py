"""sLSTM cell: NumPy reference of xLSTM's stabilised equations, stabiliser invariance, long runs."""

import keras
import numpy as np
import pytest

from tests.cells.reference import assert_matches_reference, sigmoid
from zoo.cells.slstm import SLSTMCell


def log_sigmoid(x):
    return -np.logaddexp(0, -x)


def block_recurrence(h, recurrent_kernel):
    """R h with one (H/heads, 4H/heads) block per head, regrouped gate-major (i, f, z, o)."""
    heads = np.split(h, len(recurrent_kernel), axis=-1)
    per_head = [np.split(v @ r, 4, axis=-1) for v, r in zip(heads, recurrent_kernel)]
    return np.concatenate([np.concatenate([p[g] for p in per_head], -1) for g in range(4)], -1)


def make_step(exponential_forget=False):
    def step(w, x, states):
        h, c, n, m = states
        zi, zf, zz, zo = np.split(
            x @ w["kernel"] + w["bias"] + block_recurrence(h, w["recurrent_kernel"]), 4, axis=-1
        )
        log_f = zf if exponential_forget else log_sigmoid(zf)
        empty = n == 0  # nothing stored yet: the stabiliser follows the input gate
        m_new = np.where(empty, zi, np.maximum(log_f + m, zi))
        i, f = np.exp(zi - m_new), np.where(empty, 0.0, np.exp(log_f + m - m_new))
        c = f * c + i * np.tanh(zz)
        n = f * n + i
        h = sigmoid(zo) * c / n
        return h, [h, c, n, m_new]

    return step


@pytest.mark.parametrize("num_heads, exponential_forget", [(1, False), (2, True)])
def test_matches_numpy_reference(num_heads, exponential_forget):
    assert_matches_reference(
        "slstm",
        make_step(exponential_forget),
        units=6,
        num_heads=num_heads,
        exponential_forget=exponential_forget,
    )


def test_stabiliser_leaves_outputs_of_unstabilised_equations():
    """From zero states, h_t equals that of c = f c + i z, n = f n + i with i = exp(ĩ)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 8, 3)).astype("float32")
    layer = keras.layers.RNN(SLSTMCell(4, num_heads=2), return_sequences=True)
    layer(x)
    weights = {w.name: w.numpy().astype("float64") for w in layer.weights}
    h = c = n = np.zeros((2, 4))
    for t in range(8):
        rec = block_recurrence(h, weights["recurrent_kernel"])
        zi, zf, zz, zo = np.split(x[:, t] @ weights["kernel"] + weights["bias"] + rec, 4, -1)
        c = sigmoid(zf) * c + np.exp(zi) * np.tanh(zz)
        n = sigmoid(zf) * n + np.exp(zi)
        h = sigmoid(zo) * c / n
    np.testing.assert_allclose(layer(x)[:, -1], h, rtol=1e-4, atol=1e-5)


def test_finite_over_a_thousand_steps_of_large_inputs():
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    x = np.full((2, 1000, 3), 100.0, dtype="float32")
    x[1] *= -1
    layer = keras.layers.RNN(SLSTMCell(4, num_heads=2, exponential_forget=True), return_state=True)
    outputs, *states = tf.function(layer)(x)  # a graph loop: 1,000 eager steps are slow
    gate_inputs = np.abs(x[:, 0] @ layer.cell.kernel.numpy()[:, :8])  # ĩ and f̃ of step 1
    assert gate_inputs.max() > 89  # exp() of it overflows float32 without the stabiliser
    for tensor in (outputs, *states):
        assert np.all(np.isfinite(tensor))
    assert np.all(np.abs(outputs) <= 1.0 + 1e-5)  # |c/n| <= 1 when |z| <= 1


def test_heads_must_divide_units():
    with pytest.raises(ValueError, match="num_heads=4, units=6"):
        SLSTMCell(6, num_heads=4)
