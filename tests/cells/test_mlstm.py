"""mLSTM cell: NumPy reference of xLSTM's matrix-memory equations; parallel form == recurrent."""

import keras
import numpy as np
import pytest

from tests.cells.reference import assert_matches_reference, sigmoid
from zoo.cells.mlstm import MLSTMCell


def log_sigmoid(x):
    return -np.logaddexp(0, -x)


def make_step(units, heads):
    d = units // heads

    def step(w, x, states):
        """One mLSTM step, head by head, written from the paper's equations."""
        z = x @ w["kernel"] + w["bias"]
        q, k, v, o = (z[:, g * units : (g + 1) * units] for g in range(4))
        i_pre, f_pre = z[:, 4 * units : 4 * units + heads], z[:, 4 * units + heads :]
        C = states[0].reshape(-1, heads, d, d)
        n = states[1].reshape(-1, heads, d)
        m_prev = states[2]
        h = np.zeros_like(q)
        C_new, n_new, m_new = np.zeros_like(C), np.zeros_like(n), np.zeros_like(m_prev)
        for b in range(x.shape[0]):
            for j in range(heads):
                part = slice(j * d, (j + 1) * d)
                qh, kh, vh = q[b, part], k[b, part] / np.sqrt(d), v[b, part]
                log_f = log_sigmoid(f_pre[b, j])
                m = max(log_f + m_prev[b, j], i_pre[b, j])
                i, f = np.exp(i_pre[b, j] - m), np.exp(log_f + m_prev[b, j] - m)
                C_new[b, j] = f * C[b, j] + i * np.outer(vh, kh)
                n_new[b, j] = f * n[b, j] + i * kh
                m_new[b, j] = m
                h_tilde = C_new[b, j] @ qh / max(abs(n_new[b, j] @ qh), np.exp(-m))
                h[b, part] = sigmoid(o[b, part]) * h_tilde
        return h, [C_new.reshape(len(x), -1), n_new.reshape(len(x), -1), m_new]

    return step


@pytest.mark.parametrize("heads", [1, 2])
def test_matches_numpy_reference(heads):
    assert_matches_reference("mlstm", make_step(6, heads), units=6, num_heads=heads)


def _recurrent_and_parallel(mask=None, chunk_size=4, steps=11, seed=0):
    rng = np.random.default_rng(seed)
    cell = MLSTMCell(6, num_heads=2)
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    x = rng.normal(size=(3, steps, 5)).astype("float32")
    layer(x)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.7, size=weight.shape))
    initial = [rng.normal(size=(3, s)).astype("float32") for s in cell.state_size]
    recurrent = layer(x, initial_state=initial, mask=mask)
    outputs, states = cell.parallel(x, initial_state=initial, mask=mask, chunk_size=chunk_size)
    return recurrent, (outputs, *states)


@pytest.mark.parametrize("chunk_size", [1, 4, 16])
def test_parallel_form_equals_recurrent_form(chunk_size):
    recurrent, parallel = _recurrent_and_parallel(chunk_size=chunk_size)
    for r, p in zip(recurrent, parallel):
        np.testing.assert_allclose(p, r, rtol=2e-4, atol=2e-5)


def test_parallel_form_with_mask_keeps_final_states():
    mask = np.ones((3, 11), bool)
    mask[0, 7:] = False
    mask[1, 2:5] = False
    recurrent, parallel = _recurrent_and_parallel(mask=mask)
    for r, p in zip(recurrent[1:], parallel[1:]):
        np.testing.assert_allclose(p, r, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(parallel[0][mask], recurrent[0][mask], rtol=2e-4, atol=2e-5)


def test_parallel_form_is_differentiable():
    import tensorflow as tf

    cell = MLSTMCell(4, num_heads=2)
    x = tf.random.normal((2, 9, 3))
    cell.build(x.shape[::2])
    with tf.GradientTape() as tape:
        outputs, _ = cell.parallel(x, chunk_size=4)
        loss = tf.reduce_sum(outputs**2)
    for grad in tape.gradient(loss, cell.trainable_weights):
        assert np.all(np.isfinite(grad)) and np.any(grad != 0)
