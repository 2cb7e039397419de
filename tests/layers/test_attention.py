"""Bahdanau and Luong attention against NumPy, with masking, one-step calls and configs."""

import keras
import numpy as np
import pytest

from zoo.layers.attention import BahdanauAttention, LuongAttention

RNG = np.random.default_rng(0)
QUERY = RNG.normal(size=(2, 3, 4)).astype("float32")
MEMORY = RNG.normal(size=(2, 5, 6)).astype("float32")
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)


def reference(layer, query, memory, mask):
    """NumPy attention: masked softmax of the layer's score, then the weighted memory."""
    keys = memory @ layer.key_dense.kernel.numpy()
    if isinstance(layer, BahdanauAttention):
        q = query @ layer.query_dense.kernel.numpy()
        scores = np.tanh(q[:, :, None] + keys[:, None]) @ layer.v.numpy()
    else:
        scores = query @ keys.transpose(0, 2, 1)
    scores = np.where(mask[:, None], scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return weights @ memory, weights


@pytest.mark.parametrize("cls", [BahdanauAttention, LuongAttention])
def test_matches_numpy_and_ignores_padding(cls):
    layer = cls(4)
    context, weights = (np.asarray(t) for t in layer(QUERY, MEMORY, MASK))
    expected_context, expected_weights = reference(layer, QUERY, MEMORY, MASK)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-5)
    np.testing.assert_allclose(context, expected_context, atol=1e-5)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert np.all(weights[0, :, 3:] == 0.0)
    # Padded memory positions do not change anything.
    changed = MEMORY.copy()
    changed[0, 3:] = 100.0
    np.testing.assert_allclose(np.asarray(layer(QUERY, changed, MASK)[0]), context, atol=1e-5)


@pytest.mark.parametrize("cls", [BahdanauAttention, LuongAttention])
def test_one_step_equals_sequence_and_precomputed_keys(cls):
    layer = cls(4)
    context, weights = layer(QUERY, MEMORY, MASK)
    keys = layer.keys(MEMORY)
    step_context, step_weights = layer(QUERY[:, 1], MEMORY, MASK, keys=keys)
    np.testing.assert_allclose(np.asarray(step_context), np.asarray(context)[:, 1], atol=1e-6)
    np.testing.assert_allclose(np.asarray(step_weights), np.asarray(weights)[:, 1], atol=1e-6)


def test_config_round_trip_and_errors():
    layer = BahdanauAttention(7, name="att")
    clone = BahdanauAttention.from_config(layer.get_config())
    assert (clone.units, clone.name) == (7, "att")
    with pytest.raises(ValueError, match="units=0"):
        LuongAttention(0)
    with pytest.raises(ValueError, match="queries of width units=5"):
        LuongAttention(5)(QUERY, MEMORY)
    assert keras.saving.get_registered_name(LuongAttention) == "zoo>LuongAttention"
