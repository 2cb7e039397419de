"""A plain Keras model as a `StepModel`: the one place that looks at a model's layers.

The model is a chain of step-wise layers (Embedding, Dense, Dropout, Activation,
LayerNormalization, GaussianNoise, TimeDistributed) and recurrent layers (any
`keras.layers.RNN` with a single cell: `keras.layers.LSTM`, `zoo.layers.Recurrent`, ConvRNN,
...), in order, as a `keras.Sequential` or a functional model builds it. A
`keras.layers.Bidirectional` layer reads the whole window both ways: such a chain has no
streaming step (`streams` is False) and `prefill` runs from zero states.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo import metrics
from zoo.layers.recurrent import exported
from zoo.models.protocol import StepModel

STEPWISE_LAYERS = (
    keras.layers.Activation,
    keras.layers.Dense,
    keras.layers.Dropout,
    keras.layers.Embedding,
    keras.layers.GaussianNoise,
    keras.layers.InputLayer,
    keras.layers.LayerNormalization,
    keras.layers.TimeDistributed,
)
SKIPPED_AT_INFERENCE = (keras.layers.Dropout, keras.layers.GaussianNoise, keras.layers.InputLayer)


def _chain(model) -> list:
    """The layers of `model` that compute, in order; ValueError for one that cannot run
    step-wise."""
    chain = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            if layer.merge_mode not in ("concat", "sum", "ave", "mul"):
                raise ValueError(
                    f"Cannot export Bidirectional layer {layer.name!r} with "
                    f"merge_mode={layer.merge_mode!r}"
                )
            chain.append(layer)
        elif isinstance(layer, keras.layers.RNN):
            if layer.go_backwards or isinstance(layer.cell, keras.layers.StackedRNNCells):
                raise ValueError(
                    f"Cannot export recurrent layer {layer.name!r}: only forward layers with a "
                    f"single cell stream. Received: go_backwards={layer.go_backwards}, "
                    f"cell={type(layer.cell).__name__}"
                )
            chain.append(layer)
        elif isinstance(layer, STEPWISE_LAYERS):
            if not isinstance(layer, SKIPPED_AT_INFERENCE):
                chain.append(layer)
        else:
            raise ValueError(
                f"Cannot export layer {layer.name!r} ({type(layer).__name__}): only step-wise "
                f"layers ({', '.join(t.__name__ for t in STEPWISE_LAYERS)}) and recurrent "
                "layers can run one step at a time."
            )
    if not any(
        isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)) for layer in chain
    ):
        raise ValueError(f"Model {model.name!r} has no recurrent layer to export.")
    return chain


def _per_step(layer, x, sequence):
    """A step-wise layer on one step (B, ...) or on a sequence (B, T, ...): a TimeDistributed
    layer applies its inner layer to every step (time merged into the batch)."""
    if not isinstance(layer, keras.layers.TimeDistributed):
        return layer(x)
    if not sequence:
        return layer.layer(x)
    batch, time = x.shape[0], x.shape[1]
    y = layer.layer(tf.reshape(x, (batch * time, *x.shape[2:])))
    return tf.reshape(y, (batch, time, *y.shape[1:]))


def _both_ways(layer, x):
    """A Bidirectional layer over the whole window from zero states, unrolled both ways."""
    batch = x.shape[0]
    zeros = [
        tf.nest.flatten(part.cell.get_initial_state(batch))
        for part in (layer.forward_layer, layer.backward_layer)
    ]
    _, forward, _ = exported.unrolled(layer.forward_layer.cell, x, zeros[0])
    _, backward, _ = exported.unrolled(layer.backward_layer.cell, tf.reverse(x, [1]), zeros[1])
    backward = tf.reverse(backward, [1])
    if layer.merge_mode == "concat":
        return tf.concat([forward, backward], -1)
    merged = forward + backward if layer.merge_mode != "mul" else forward * backward
    return merged / 2 if layer.merge_mode == "ave" else merged


class LayerChain(StepModel):
    """`model`, a chain of step-wise and recurrent layers (module docstring), as a
    `StepModel`: one state group per recurrent layer."""

    def __init__(self, model):
        self.model, self.chain = model, _chain(model)
        self.recurrent = [layer for layer in self.chain if isinstance(layer, keras.layers.RNN)]
        self.streams = not any(
            isinstance(layer, keras.layers.Bidirectional) for layer in self.chain
        )
        self.name = model.name

    @property
    def step_input(self):
        if isinstance(self.chain[0], keras.layers.Embedding):
            return "int32", ()
        inputs = getattr(self.model, "inputs", None) or []
        if len(inputs) != 1:
            raise ValueError(
                f"Cannot tell the input of model {self.model.name!r}: export needs an Embedding "
                "first layer or a single `keras.Input`, or a model that declares its "
                "`step_input` (zoo.models.protocol.StepModel). Received: inputs="
                f"{[tuple(i.shape) for i in inputs]}"
            )
        dtype = "int32" if "int" in str(inputs[0].dtype) else "float32"
        return dtype, tuple(inputs[0].shape[2:])

    def initial_state(self, batch_size):
        return [
            tf.nest.flatten(layer.cell.get_initial_state(batch_size)) for layer in self.recurrent
        ]

    def _run(self, x, states, sequence):
        states, new_states = list(states), []
        for layer in self.chain:
            if isinstance(layer, keras.layers.Bidirectional):
                x = _both_ways(layer, x)
            elif isinstance(layer, keras.layers.RNN):
                own = states.pop(0)
                x, own = (
                    exported.sequence(layer, x, own)
                    if sequence
                    else exported.step(layer.cell, x, own)
                )
                new_states.append(list(own))
            else:
                x = _per_step(layer, x, sequence)
        return x, new_states

    def step(self, inputs, states):
        if not self.streams:
            raise ValueError(
                f"Model {self.model.name!r} reads its window both ways: it has no streaming step"
            )
        return self._run(inputs, states, sequence=False)

    def prefill(self, inputs, states):
        return self._run(inputs, states, sequence=True)

    def __call__(self, inputs, training=False):
        return self.model(inputs, training=training)

    @property
    def variables(self):
        return self.model.variables

    def quality(self, outputs, inputs, reference):
        """Bits per token for a model of token ids, nats per step for one that predicts its
        next binary frame, else None (the KL divergence from Keras)."""
        inputs = np.asarray(inputs)
        if np.issubdtype(inputs.dtype, np.integer) and inputs.ndim == 2:
            return "bits_per_token", metrics.bits_per_token(outputs, inputs)
        if np.shape(reference) == inputs.shape and np.isin(inputs, (0.0, 1.0)).all():
            return "nats_per_step", metrics.nats_per_step(outputs, inputs)
        return None
