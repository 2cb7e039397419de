"""A new cell gets the fast training path and the fused TFLite op from its declarations alone."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from zoo import cells, export
from zoo.cells.base import RecurrentCell, add_bias
from zoo.cells.structure import LSTMStructure, structure_of
from zoo.layers import Recurrent
from zoo.layers.recurrent import block_lstm, own_gradient, tf_gradient
from zoo.testing import randomize_weights

UNITS, FEATURES, TIME = 6, 4, 5


class PeepholeForgetLSTMCell(RecurrentCell):
    """A throwaway cell written from scratch: a forget-gate LSTM with diagonal peepholes,

        c_t = σ(z_f + p_f c) c_{t-1} + σ(z_i + p_i c) tanh(z_c),  h_t = σ(z_o + p_o c_t) tanh(c_t)

    declared, not registered anywhere else."""

    structure = LSTMStructure(peepholes=("i", "f", "o"))

    def build_extra_weights(self, input_dim):
        self.add_peepholes(("i", "f", "o"))

    def step(self, projected, recurrent, states, training=False):
        z = self.split_gates(projected + recurrent)
        c_prev = states[1]
        i = ops.sigmoid(z["i"] + self.peephole_i * c_prev)
        f = ops.sigmoid(z["f"] + self.peephole_f * c_prev)
        c = f * c_prev + i * ops.tanh(z["c"])
        h = ops.sigmoid(z["o"] + self.peephole_o * c) * ops.tanh(c)
        return h, [h, c]


class SquashedOutputCell(PeepholeForgetLSTMCell):
    """Changes the step and declares nothing: it must not inherit the parent's structure."""

    def step(self, projected, recurrent, states, training=False):
        h, states = super().step(projected, recurrent, states, training)
        return 0.5 * h, states


def model_of(layer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, FEATURES)), layer, keras.layers.Dense(3)])
    randomize_weights(model)
    return model


def outputs_and_gradients(model, x):
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        loss = tf.reduce_sum(tf.sin(outputs))
    return [outputs, *tape.gradient(loss, model.trainable_variables)]


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(3, TIME, FEATURES)).astype("float32")


def test_the_new_cell_trains_on_the_fast_paths_with_keras_rnn_results(x):
    fast = model_of(Recurrent(PeepholeForgetLSTMCell(UNITS), return_sequences=True))
    reference = model_of(keras.layers.RNN(PeepholeForgetLSTMCell(UNITS), return_sequences=True))
    reference.set_weights(fast.get_weights())
    layer = fast.layers[0]
    assert layer.strategy(x, training=True) is own_gradient
    assert layer.strategy(x, training=False) is tf_gradient
    reference_results = outputs_and_gradients(reference, x)
    for actual, expected in zip(outputs_and_gradients(fast, x), reference_results):
        np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)
    fused = Recurrent(layer.cell, return_sequences=True, fused=True)
    assert fused.strategy(x) is block_lstm
    np.testing.assert_allclose(fused(x), layer(x), atol=1e-5)


def test_the_new_cell_exports_as_the_fused_tflite_op(x):
    model = model_of(Recurrent(PeepholeForgetLSTMCell(UNITS), return_sequences=True))
    flatbuffer = export.convert(export.InferenceModule(model, seq_len=TIME))
    assert export.fusion.FUSED_OP in export.ops_used(flatbuffer)
    report = export.parity(model, flatbuffer, [x[:1]])
    assert max(report["max_abs_diff"].values()) <= 1e-4, report


def test_a_subclass_that_changes_the_step_must_declare_its_structure(x):
    cell = SquashedOutputCell(UNITS)
    assert structure_of(cell) is None
    model = model_of(Recurrent(cell, return_sequences=True, fused=True))
    assert model.layers[0].strategy(x) is not block_lstm
    flatbuffer = export.convert(export.InferenceModule(model, seq_len=TIME))
    assert export.fusion.FUSED_OP not in export.ops_used(flatbuffer)
    report = export.parity(model, flatbuffer, [x[:1]])
    assert max(report["max_abs_diff"].values()) <= 1e-4, report


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-6), ("bfloat16", 1e-2)])
def test_add_bias_gradient_is_the_sum_over_every_row(dtype, tolerance):
    """`add_bias`: x + bias, and a bias
    gradient that sums the output gradient over all leading axes, to float32 precision or
    within 1% in bfloat16 (TF's BiasAddGrad in bfloat16 was 7% off)."""
    rng = np.random.default_rng(0)
    as_dtype = lambda a: tf.cast(tf.constant(a, "float32"), dtype)
    x, bias, upstream = (
        as_dtype(rng.normal(size=shape)) for shape in ((50, 16, 64), (64,), (50, 16, 64))
    )
    with tf.GradientTape() as tape:
        tape.watch(bias)
        y = add_bias(x, bias)
    d_bias = tape.gradient(y, bias, output_gradients=upstream)
    exact = lambda t: np.asarray(tf.cast(t, "float64"))
    np.testing.assert_allclose(exact(y), exact(x) + exact(bias), rtol=tolerance, atol=tolerance)
    expected = exact(upstream).sum(axis=(0, 1))
    assert np.linalg.norm(exact(d_bias) - expected) / np.linalg.norm(expected) < tolerance


LSTM_STRUCTURED = [
    name
    for name in cells.names()
    if isinstance(structure_of(cells.create(name, UNITS)), LSTMStructure)
]


@pytest.mark.parametrize("name", LSTM_STRUCTURED)
def test_an_lstm_structure_step_reads_its_two_terms_only_as_their_sum(name):
    """What `Recurrent`'s backward pass relies on for a cell declaring an `LSTMStructure`
    (z = W x_t + R r_{t-1}): the step's gradient w.r.t. the projected inputs is its gradient
    w.r.t. the recurrent term."""
    cell = cells.create(name, UNITS)
    cell.build((None, FEATURES))
    randomize_weights(cell)
    rng = np.random.default_rng(1)
    normal = lambda *shape: tf.constant(rng.normal(size=shape).astype("float32"))
    width = len(cell.gates) * UNITS
    projected, recurrent = normal(3, width), normal(3, width)
    states = [normal(3, size) for size in cell.state_size]
    with tf.GradientTape() as tape:
        tape.watch([projected, recurrent])
        output, new_states = cell.step(projected, recurrent, states)
        loss = tf.reduce_sum(tf.sin(output)) + sum(tf.reduce_sum(s * s) for s in new_states)
    d_projected, d_recurrent = tape.gradient(loss, [projected, recurrent])
    np.testing.assert_allclose(d_projected, d_recurrent, rtol=1e-6, atol=1e-6)
    assert np.abs(d_projected).max() > 1e-3
