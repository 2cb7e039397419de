"""cuDNN on a GPU: Keras's own `lstm` / `gru` kernels, as keras.layers.LSTM and GRU use them.

For a cell whose declared structure is exactly cuDNN's (`plain`: the standard LSTM, or the
GRU with reset_after, tanh and sigmoid) with a bias, and no mask. The ops do not compile with
XLA: a layer that may run them declares `supports_jit = False` when it is made (`eligible`).
"""

from __future__ import annotations

import tensorflow as tf

from zoo.cells.structure import GRUStructure, LSTMStructure, structure_of
from zoo.compat import cudnn_gru, cudnn_lstm


def eligible(cell) -> bool:
    """Whether a GPU is visible and the cell's declared structure is exactly cuDNN's (with a
    bias)."""
    structure = structure_of(cell)
    return (
        structure is not None
        and structure.plain
        and getattr(cell, "use_bias", False)
        and bool(tf.config.list_logical_devices("GPU"))
    )


def applies(layer, sequences, mask, training):
    """Unmasked, for an `eligible` cell."""
    return mask is None and eligible(layer.cell)


def run(layer, sequences, initial_state, mask, training):
    """The outputs, or None where Keras's kernel declines (no cuDNN op on this GPU)."""
    cell, structure = layer.cell, structure_of(layer.cell)
    if isinstance(structure, LSTMStructure):
        kernel, states, extra = cudnn_lstm, initial_state[:2], {}
    elif isinstance(structure, GRUStructure):
        kernel, states, extra = cudnn_gru, initial_state[:1], {"reset_after": True}
    try:
        result = kernel(
            sequences,
            *states,
            None,
            kernel=cell.kernel,
            recurrent_kernel=cell.recurrent_kernel,
            bias=cell.bias,
            activation=cell.activation,
            recurrent_activation=cell.recurrent_activation,
            return_sequences=layer.return_sequences,
            go_backwards=layer.go_backwards,
            **extra,
        )
    except NotImplementedError:
        return None
    return result
