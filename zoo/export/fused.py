"""The sequence function that the TFLite converter fuses into UNIDIRECTIONAL_SEQUENCE_LSTM.

The converter replaces any tf.function carrying the attribute `api_implements="lstm_<uuid>"`
(the annotation tf-keras 2 put on its LSTM) by one fused op, provided the function keeps
tf-keras's `standard_lstm` contract:

    (inputs (B, T, X), init_h (B, H), init_c (B, H), kernel (X, 4H), recurrent_kernel (H, 4H),
     bias (4H)) -> (last_output, outputs (B, T, H), h, c, runtime)

with gate blocks i, f, c, o, sigmoid gates, tanh activations, static state shapes, and only
`outputs` (or `last_output`) used by the caller. The body below computes exactly that, so the
same function runs in TensorFlow (SavedModel) and, unrolled, is builtin-only even if fusion
does not happen.
"""

from __future__ import annotations

import uuid

import keras
import tensorflow as tf

# Zoo cells whose arithmetic is the standard LSTM above (np_lstm is Greff's LSTM without
# peepholes: the same equations).
STANDARD_LSTM_CELLS = frozenset({"lstm", "np_lstm"})


def fusable(cell) -> bool:
    """Whether `cell` computes the standard LSTM that the converter fuses."""
    standard = (
        getattr(cell, "registry_name", None) in STANDARD_LSTM_CELLS
        or type(cell) is keras.layers.LSTMCell
    )
    return (
        standard
        and cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
    )


def _standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
    h, c = init_h, init_c
    projected = tf.matmul(inputs, kernel) + bias
    outputs = []
    for t in range(inputs.shape[1]):
        z = projected[:, t] + tf.matmul(h, recurrent_kernel)
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        outputs.append(h)
    return h, tf.stack(outputs, axis=1), h, c, tf.constant(1.0)


def fused_lstm_function():
    """A new tf.function for one LSTM layer, annotated so that the converter fuses it."""
    return tf.function(
        _standard_lstm,
        autograph=False,
        experimental_attributes={
            "api_implements": f"lstm_{uuid.uuid4()}",
            "api_preferred_device": "CPU",
            "time_major": False,
            "go_backwards": False,
        },
    )


def fused_sequence(function, cell, inputs, states):
    """Run `cell` over `inputs` (B, T, X) from `states` [h, c] with the fused `function`."""
    # `.value` reads the weight through the enclosing keras.StatelessScope.
    kernel = cell.kernel.value
    bias = cell.bias.value if cell.use_bias else tf.zeros((4 * cell.units,), kernel.dtype)
    return function(inputs, states[0], states[1], kernel, cell.recurrent_kernel.value, bias)[1]
