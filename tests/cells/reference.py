"""Helpers for comparing a zoo cell with an independent NumPy implementation of its equations."""

import keras
import numpy as np

from zoo import cells, testing


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def blocks(matrix, count):
    """Split the last axis of a weight into `count` gate blocks (W_i, W_f, ... of the paper)."""
    return np.split(matrix, count, axis=-1)


def run_reference(step, weights, x, initial_states, mask):
    """Run `step(weights, x_t, states) -> (y_t, states)` over time with Keras's masking rules:
    a masked step keeps the states and repeats the previous output (zeros at the start)."""
    states = [s.copy() for s in initial_states]
    output = None
    outputs = []
    for t in range(x.shape[1]):
        y, new_states = step(weights, x[:, t], states)
        if output is None:
            output = np.zeros_like(y)
        keep = mask[:, t][:, None]
        output = np.where(keep, y, output)
        states = [np.where(keep, new, old) for new, old in zip(new_states, states)]
        outputs.append(output)
    return np.stack(outputs, axis=1), states


def assert_matches_reference(name, step, units=5, input_dim=3, time=6, batch=4, seed=0, **kwargs):
    """Random weights, inputs, initial states and mask; the cell in keras.layers.RNN must match
    `step`, run with NumPy, at every time step and in the final states."""
    rng = np.random.default_rng(seed)
    cell = cells.create(name, units, **kwargs)
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    x = rng.normal(size=(batch, time, input_dim)).astype("float32")
    layer.build(x.shape)
    testing.randomize_weights(layer, seed=seed)
    sizes = testing.as_list(cell.state_size)
    initial = [rng.normal(size=(batch, s)).astype("float32") for s in sizes]
    mask = rng.random((batch, time)) > 0.25
    mask[:, 0] = True
    outputs, *states = layer(x, initial_state=initial, mask=mask)
    weights = {w.name: w.numpy().astype("float64") for w in layer.weights}
    expected_outputs, expected_states = run_reference(
        step, weights, x.astype("float64"), [s.astype("float64") for s in initial], mask
    )
    np.testing.assert_allclose(outputs, expected_outputs, rtol=2e-5, atol=2e-5)
    for actual, expected in zip(states, expected_states):
        np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=2e-5)
    return layer
