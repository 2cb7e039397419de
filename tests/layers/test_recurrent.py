"""zoo.layers.Recurrent gives keras.layers.RNN's outputs and gradients for every cell."""

import functools
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import cells, testing
from zoo.cells.base import RecurrentCell
from zoo.layers import Recurrent
from zoo.layers.recurrent import own_gradient

TOLERANCE = 1e-5
# Cells whose math is TF's BlockLSTM (used with fused=True).
FUSED = {"lstm", "lstm_1997", "vanilla_lstm", "nig_lstm", "nfg_lstm", "nog_lstm", "np_lstm"}
# Cells without a product with a recurrent kernel: TF's loop gradient (all others: our own).
PLAIN_GRADIENT = {"mlstm"}


def _numpy(values):
    return [keras.ops.convert_to_numpy(v) for v in tf.nest.flatten(values)]


def assert_close(actual, expected):
    actual, expected = _numpy(actual), _numpy(expected)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, atol=TOLERANCE, rtol=TOLERANCE)


def outputs_and_gradients(layer, x, unknown_batch=False, **call_kwargs):
    """Outputs, and gradients of a loss over all outputs w.r.t. the weights and the inputs."""
    spec = [tf.TensorSpec((None, *x.shape[1:]), "float32")] if unknown_batch else None

    @functools.partial(tf.function, input_signature=spec)
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, **call_kwargs)
            loss = sum(tf.reduce_sum(tf.sin(o)) for o in tf.nest.flatten(outputs))
        return outputs, tape.gradient(loss, [*layer.trainable_variables, x])

    return run(tf.constant(x))


def built_pair(name, **kwargs):
    """keras.layers.RNN and Recurrent sharing one cell with random weights, and inputs."""
    cell = cells.create(name, testing.UNITS)
    x = testing.example_inputs(cell)
    reference = keras.layers.RNN(cell, **kwargs)
    reference(x)
    testing.randomize_weights(reference)
    return reference, Recurrent(cell, **kwargs), x


def uses_op(layer, x, op_type, training=True):
    call = tf.function(lambda x: layer(x, training=training))
    graph = call.get_concrete_function(tf.constant(x)).graph
    return any(op.type == op_type for op in graph.get_operations())


def uses_block_lstm(layer, x):
    return uses_op(layer, x, "BlockLSTM")


@pytest.mark.parametrize("name", cells.names())
def test_same_outputs_and_gradients_as_keras_rnn(name):
    kwargs = {"return_sequences": True, "return_state": True}
    reference, fast, x = built_pair(name, **kwargs)
    expected = outputs_and_gradients(reference, x)
    assert_close(outputs_and_gradients(fast, x), expected)
    # tf.custom_gradient shows as an IdentityN op: the loop with its own backward pass, taken
    # where a gradient may follow (training, or under a tape), not for inference.
    assert uses_op(fast, x, "IdentityN") == (name not in PLAIN_GRADIENT)
    assert not uses_op(fast, x, "IdentityN", training=False)
    fused = Recurrent(fast.cell, fused=True, **kwargs)
    assert uses_block_lstm(fused, x) == (name in FUSED)
    if name in FUSED:
        assert_close(outputs_and_gradients(fused, x), expected)


@pytest.mark.parametrize("name", cells.names())
def test_mask_initial_state_and_go_backwards(name):
    reference, fast, x = built_pair(
        name, return_sequences=True, return_state=True, go_backwards=True
    )
    mask = np.ones(x.shape[:2], bool)
    mask[0, 3:] = False  # right padding
    mask[1, :2] = False  # left padding
    states = reference.get_initial_state(x.shape[0])
    rng = np.random.default_rng(1)
    states = [rng.normal(size=s.shape).astype("float32") for s in states]
    kwargs = {"mask": tf.constant(mask), "initial_state": [tf.constant(s) for s in states]}
    assert_close(
        outputs_and_gradients(fast, x, **kwargs), outputs_and_gradients(reference, x, **kwargs)
    )


@pytest.mark.parametrize("name", ["vanilla_lstm", "projection_lstm"])
def test_own_gradient_eagerly_with_last_output_and_initial_state(name):
    reference, fast, x = built_pair(name)
    states = [np.full(s.shape, 0.3, "float32") for s in reference.get_initial_state(x.shape[0])]
    x = tf.constant(x)
    results = []
    for layer in (reference, fast):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(layer(x, initial_state=states)))
        results.append(tape.gradient(loss, [*layer.trainable_variables, x]))
    assert_close(*results)


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_last_output_only_and_zero_output_for_mask(name):
    for kwargs in ({}, {"zero_output_for_mask": True, "return_sequences": True}):
        reference, fast, x = built_pair(name, **kwargs)
        mask = tf.constant(np.arange(x.shape[1]) < [[2], [5], [0]])
        assert_close(
            outputs_and_gradients(fast, x, mask=mask),
            outputs_and_gradients(reference, x, mask=mask),
        )


def test_fused_kernel_only_where_asked_and_the_math_matches():
    x = np.zeros((2, 3, 4), "float32")
    assert not uses_block_lstm(Recurrent(cells.create("lstm", 5)), x)
    assert not uses_block_lstm(Recurrent(cells.create("lstm", 5, activation="relu"), fused=True), x)
    mask = np.ones((2, 3), bool)
    assert uses_block_lstm(Recurrent(cells.create("lstm", 5), fused=True), x)
    graph = (
        tf.function(Recurrent(cells.create("lstm", 5), fused=True))
        .get_concrete_function(tf.constant(x), mask=tf.constant(mask))
        .graph
    )
    assert not any(op.type == "BlockLSTM" for op in graph.get_operations())


def test_keras_cells_and_stacked_cells():
    x = testing.example_inputs(cells.create("lstm", 4))
    for cell in (
        keras.layers.LSTMCell(5),
        keras.layers.LSTMCell(5, dropout=0.5),  # random only when training
        [cells.create("gru", 5), cells.create("projection_lstm", 6, projection_units=3)],
    ):
        reference = keras.layers.RNN(cell, return_sequences=True, return_state=True)
        reference(x)
        testing.randomize_weights(reference)
        fast = Recurrent(reference.cell, return_sequences=True, return_state=True)
        assert_close(outputs_and_gradients(fast, x), outputs_and_gradients(reference, x))


def test_bidirectional_and_saving():
    inputs = keras.Input((None, testing.FEATURES))
    masked = keras.layers.Masking()(inputs)
    layer = keras.layers.Bidirectional(
        Recurrent(cells.create("vanilla_lstm", 5), return_sequences=True)
    )
    model = keras.Model(inputs, layer(masked))
    testing.randomize_weights(model)
    reference = keras.layers.Bidirectional(
        keras.layers.RNN(cells.create("vanilla_lstm", 5), return_sequences=True)
    )
    reference_model = keras.Model(inputs, reference(masked))
    reference_model.set_weights(model.get_weights())
    x = testing.example_inputs(cells.create("lstm", 4))
    x[0, 3:] = 0.0  # masked steps
    expected = keras.ops.convert_to_numpy(reference_model(x))
    np.testing.assert_allclose(model(x), expected, atol=TOLERANCE)
    assert type(layer.backward_layer) is Recurrent and layer.backward_layer.go_backwards

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(x), expected, atol=TOLERANCE)
    assert isinstance(restored.layers[-1].forward_layer.cell, RecurrentCell)


def test_trains_under_xla_and_mixed_precision():
    x = testing.example_inputs(cells.create("lstm", 4))
    y = np.zeros((x.shape[0], 1), "float32")
    for policy, jit_compile in (("float32", True), ("mixed_bfloat16", False)):
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = keras.Sequential(
                [
                    keras.Input(x.shape[1:]),
                    Recurrent(cells.create("lstm", 5)),
                    keras.layers.Dense(1),
                ]
            )
            model.compile("adam", "mse", jit_compile=jit_compile)
            loss = model.train_on_batch(x, y)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        assert np.isfinite(loss)


def test_bad_cell_is_refused():
    with pytest.raises(ValueError, match="cell"):
        Recurrent("lstm")


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_own_gradient_under_mixed_precision(name):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        reference, fast, x = built_pair(name, return_sequences=True)
        assert uses_op(fast, x, "IdentityN")
        expected, actual = (_numpy(outputs_and_gradients(layer, x)) for layer in (reference, fast))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for a, e in zip(actual, expected):
        assert a.dtype == e.dtype
        np.testing.assert_allclose(a.astype("float32"), e.astype("float32"), atol=0.05, rtol=0.05)


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("training", [True, False])
def test_mixed_precision_runs_the_step_in_float32(name, training):
    """bfloat16 matmuls, float32 gate math and states: nearer the float32 layer than an
    all-bfloat16 loop (keras.layers.RNN over the same cell) in outputs and gradients."""
    results = {}
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            keras.utils.set_random_seed(0)
            cell = cells.create(name, 64)
            x = tf.random.normal((8, 50, 16), seed=1)
            for kind, layer in (
                ("zoo", Recurrent(cell, return_sequences=True)),
                ("keras", keras.layers.RNN(cell, return_sequences=True)),
            ):
                with tf.GradientTape() as tape:
                    y = layer(x, training=training)
                    loss = tf.reduce_sum(tf.cast(y, "float32") ** 2)
                gradients = tape.gradient(loss, cell.trainable_variables)
                results[policy, kind] = [np.asarray(tf.cast(t, "float32")) for t in (y, *gradients)]
        finally:
            keras.mixed_precision.set_global_policy("float32")
    truth = results["float32", "keras"]
    error = {
        kind: max(
            np.linalg.norm(a - t) / np.linalg.norm(t)
            for a, t in zip(results["mixed_bfloat16", kind], truth)
        )
        for kind in ("zoo", "keras")
    }
    assert error["zoo"] < 0.7 * error["keras"], error


class DropoutLSTMCell(cells.get("lstm")):
    """A user's cell that draws random numbers in its step, and says so."""

    stochastic = True

    def step(self, projected, recurrent, states, training=False):
        h, new_states = super().step(projected, recurrent, states, training)
        return keras.random.dropout(h, 0.5, seed=self.seed) if training else h, new_states

    def build(self, input_shape):
        super().build(input_shape)
        self.seed = keras.random.SeedGenerator(0)


def test_a_random_step_keeps_the_loop_gradient():
    cell = DropoutLSTMCell(testing.UNITS)
    x = tf.constant(testing.example_inputs(cell))
    layer = Recurrent(cell)
    layer(x)
    assert not uses_op(layer, x, "IdentityN")
    with tf.GradientTape():  # a gradient may follow, and the step draws no random numbers
        assert uses_op(layer, x, "IdentityN", training=False)


@pytest.mark.parametrize("name", ["lstm", "gru", "peephole_lstm", "conv_lstm"])
def test_halves_of_the_batch_give_the_same_outputs_and_gradients(name, monkeypatch):
    monkeypatch.setattr(own_gradient, "MIN_SPLIT_BATCH", 2)  # batch 3: halves of 1 and 2
    reference, fast, x = built_pair(
        name, return_sequences=True, return_state=True, go_backwards=True
    )
    graph = tf.function(lambda x: fast(x, training=True)).get_concrete_function(x).graph
    assert [op.type for op in graph.get_operations()].count("IdentityN") == 2  # two loops
    mask = np.ones(x.shape[:2], bool)
    mask[0, 3:] = mask[2, :2] = False
    states = [
        np.random.default_rng(1).normal(size=s.shape).astype("float32")
        for s in reference.get_initial_state(x.shape[0])
    ]
    kwargs = {"mask": tf.constant(mask), "initial_state": [tf.constant(s) for s in states]}
    assert_close(
        outputs_and_gradients(fast, x, **kwargs), outputs_and_gradients(reference, x, **kwargs)
    )
    # A batch of unknown size runs as one loop.
    assert_close(
        outputs_and_gradients(fast, x, unknown_batch=True), outputs_and_gradients(reference, x)
    )
