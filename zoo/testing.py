"""Shared checks that every registered cell must pass (used by tests/test_all_cells.py).

A new cell is covered by calling `run_cell_test(name)`; cells whose per-step input is not a flat
vector declare `example_input_shape` (e.g. (8, 8, 2) for a 2-D ConvLSTM).
"""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np

from zoo import cells

BATCH, TIME, FEATURES, UNITS = 3, 5, 4, 6


def example_inputs(cell, batch=BATCH, time=TIME, seed=0):
    """Random inputs (batch, time, *step_shape) for `cell`."""
    step_shape = getattr(cell, "example_input_shape", (FEATURES,))
    return np.random.default_rng(seed).normal(size=(batch, time, *step_shape)).astype("float32")


def randomize_weights(layer_or_model, seed=0, scale=0.5):
    """Overwrite every weight with N(0, scale²) draws (so zero-initialised peepholes count)."""
    rng = np.random.default_rng(seed)
    for weight in layer_or_model.weights:
        weight.assign(rng.normal(scale=scale, size=weight.shape).astype(weight.dtype))


def as_list(sizes):
    """`sizes` as a list (a cell's state_size may be one size or several)."""
    return list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]


def _flat_size(size):
    if isinstance(size, int):
        return size
    return int(np.prod([int(d) for d in size]))


def rnn(cell, **kwargs):
    """The sequence layer for `cell`: keras.layers.RNN unless the cell names its own
    `sequence_layer` (e.g. one that knows the shape of feature-map states)."""
    first = cell[0] if isinstance(cell, (list, tuple)) else cell
    return (getattr(first, "sequence_layer", None) or keras.layers.RNN)(cell, **kwargs)


def _sequence_model(cell, inputs, **rnn_kwargs):
    x = keras.Input(inputs.shape[1:])
    y = rnn(cell, **rnn_kwargs)(x)
    return keras.Model(x, y)


def _random_layer(name, units, **rnn_kwargs):
    """The cell registered as `name` in its sequence layer, built on example inputs, with
    random weights; returns (layer, inputs)."""
    cell = cells.create(name, units)
    x = example_inputs(cell)
    layer = rnn(cell, **rnn_kwargs)
    layer(x)
    randomize_weights(layer)
    return layer, x


def check_shapes_and_weights(name, units=UNITS):
    """Output and state shapes match output_size and state_size; the weight count matches
    `parameter_formula()`."""
    cell = cells.create(name, units)
    x = example_inputs(cell)
    outputs, *states = rnn(cell, return_sequences=True, return_state=True)(x)
    assert outputs.shape[:2] == (BATCH, TIME), outputs.shape
    assert _flat_size(outputs.shape[2:]) == _flat_size(cell.output_size)
    assert len(states) == len(as_list(cell.state_size))
    for state, size in zip(states, as_list(cell.state_size)):
        assert _flat_size(state.shape[1:]) == _flat_size(size), (state.shape, size)
    expected = eval(cell.parameter_formula(), {}, cell.parameter_symbols())  # noqa: S307
    assert cell.count_params() == expected, (cell.parameter_formula(), cell.count_params())


def check_config_and_saving(name, units=UNITS):
    """get_config/from_config round-trips, the class is registered for `.keras` files, and a
    saved and reloaded model gives the same outputs."""
    cell = cells.create(name, units)
    x = example_inputs(cell)
    model = _sequence_model(cell, x, return_sequences=True)
    randomize_weights(model)
    expected = model(x)

    clone = type(cell).from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
    assert keras.saving.get_registered_object(f"zoo>{type(cell).__name__}") is type(cell)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    restored_cell = restored.layers[-1].cell
    assert type(restored_cell) is type(cell)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x)), expected)


def check_gradients(name, units=UNITS):
    """Every trainable weight gets a finite, non-zero gradient."""
    import tensorflow as tf

    layer, x = _random_layer(name, units, return_sequences=True)
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(keras.ops.square(layer(x)))
    grads = tape.gradient(loss, layer.trainable_weights)
    for weight, grad in zip(layer.trainable_weights, grads):
        assert grad is not None, f"{name}: no gradient for {weight.name}"
        grad = keras.ops.convert_to_numpy(grad)
        assert np.all(np.isfinite(grad)), f"{name}: non-finite gradient for {weight.name}"
        assert np.any(grad != 0), f"{name}: zero gradient for {weight.name}"


def check_training_step(name, units=UNITS):
    """Three Adam steps lower an MSE loss and change every trainable weight."""
    cell = cells.create(name, units)
    x = example_inputs(cell, batch=8)
    model = _sequence_model(cell, x)
    y = np.random.default_rng(1).normal(size=model.output_shape[1:]).astype("float32")
    y = np.broadcast_to(y, (8, *y.shape))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert np.isfinite(first)
    assert model.evaluate(x, y, verbose=0) < first, f"{name}: training did not lower the loss"
    assert all(np.any(b != w.numpy()) for b, w in zip(before, model.trainable_weights))


def check_masking(name, units=UNITS):
    """Trailing masked steps leave the final state exactly as the unpadded sequence leaves it."""
    layer, x = _random_layer(name, units, return_state=True)
    mask = np.ones((BATCH, TIME), dtype=bool)
    mask[0, 3:] = False
    mask[1, 1:] = False
    _, *masked_states = layer(x, mask=mask)
    for row, length in ((0, 3), (1, 1), (2, TIME)):
        _, *states = layer(x[row : row + 1, :length])
        for masked, plain in zip(masked_states, states):
            np.testing.assert_allclose(masked[row : row + 1], plain, rtol=1e-5, atol=1e-5)


def check_bidirectional_and_stacked(name, units=UNITS):
    """The cell works in keras.layers.Bidirectional (also saved and reloaded) and stacked,
    as layers and as a list of cells."""
    cell_class = cells.get(name)
    x = example_inputs(cell_class(units))
    bidirectional = keras.layers.Bidirectional(rnn(cell_class(units)))
    stacked = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            rnn(cell_class(units), return_sequences=True),
            rnn(cell_class(units), return_sequences=True),
        ]
    )
    assert bidirectional(x).shape[0] == BATCH
    assert stacked(x).shape[:2] == (BATCH, TIME)
    if cell_class.input_rank == 1:  # vector states: a list of cells works too
        assert rnn([cell_class(units), cell_class(units)])(x).shape[0] == BATCH
    model = keras.Sequential([keras.Input(x.shape[1:]), bidirectional])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bidirectional.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x)), model(x))


def check_bad_arguments(name):
    """Bad units, an unknown activation and an input of the wrong rank raise ValueErrors that
    name them."""
    cell_class = cells.get(name)
    for bad in (0, -3):
        try:
            cell_class(bad)
        except ValueError as error:
            assert f"units={bad}" in str(error), error
        else:
            raise AssertionError(f"{name}: units={bad} was accepted")
    try:
        cell_class(4, activation="no_such_activation")
    except ValueError as error:
        assert "activation='no_such_activation'" in str(error), error
    else:
        raise AssertionError(f"{name}: an unknown activation was accepted")
    cell = cell_class(4)
    step_rank = 1 + len(getattr(cell, "example_input_shape", (FEATURES,)))
    wrong_shape = (2,) * (step_rank + 1)
    try:
        cell.build(wrong_shape)
    except ValueError as error:
        assert "input_shape" in str(error), error
    else:
        raise AssertionError(f"{name}: input of rank {step_rank + 1} was accepted")


ALL_CHECKS = (
    check_shapes_and_weights,
    check_config_and_saving,
    check_gradients,
    check_training_step,
    check_masking,
    check_bidirectional_and_stacked,
)


def run_cell_test(name):
    """Every shared check on the cell registered as `name`; raises AssertionError on failure."""
    for check in ALL_CHECKS:
        check(name)
    check_bad_arguments(name)
