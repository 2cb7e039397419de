"""xLSTM blocks: shapes, causality, step-by-step == whole sequence, saving."""

import keras
import numpy as np
import pytest

from zoo.layers.xlstm import HeadwiseNorm, MLSTMBlock, SLSTMBlock

BLOCKS = [
    lambda: SLSTMBlock(num_heads=2),
    lambda: MLSTMBlock(num_heads=2, chunk_size=4),
]


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(2, 7, 8)).astype("float32")


@pytest.mark.parametrize("make", BLOCKS, ids=["slstm", "mlstm"])
def test_causal_and_steps_equal_the_sequence(make, x):
    block = make()
    y = np.asarray(block(x))
    assert y.shape == x.shape
    changed = x.copy()
    changed[:, 4:] += 1.0
    np.testing.assert_allclose(block(changed)[:, :4], y[:, :4], atol=1e-5)
    states = block.get_initial_state(2)
    for t in range(x.shape[1]):
        out, states = block.step(x[:, t], states)
        np.testing.assert_allclose(out, y[:, t], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("make", BLOCKS, ids=["slstm", "mlstm"])
def test_stacked_blocks_have_gradients_and_save(make, x, tmp_path):
    import tensorflow as tf

    inputs = keras.Input((None, 8))
    model = keras.Model(inputs, keras.layers.Dense(1)(make()(make()(inputs))))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - np.cumsum(x[..., :1], axis=1)) ** 2)
    for weight, grad in zip(model.trainable_weights, tape.gradient(loss, model.trainable_weights)):
        assert grad is not None and np.all(np.isfinite(grad)), weight.path
        assert np.any(np.asarray(grad) != 0), weight.path
    path = tmp_path / "blocks.keras"
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x), model(x), atol=1e-5)


def test_headwise_norm_normalises_each_head_per_step():
    y = np.asarray(HeadwiseNorm(2)(np.arange(16.0).reshape(1, 2, 8)))
    np.testing.assert_allclose(y.reshape(1, 2, 2, 4).mean(-1), 0, atol=1e-6)
    np.testing.assert_allclose(y.reshape(1, 2, 2, 4).std(-1), 1, atol=1e-3)
