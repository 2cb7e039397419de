"""Hoisted loop with TF's gradient: one `cell.project_inputs` matmul over all steps, then a
`tf.while_loop` over `cell.step` alone.

Taken by every zoo cell where the own gradient (`own_gradient`) is not: at inference (it
keeps less per step), for a cell without a single recurrent product (`recurrent_state` None,
e.g. mLSTM, GRU without reset_after) and for a step that draws random numbers when training.
Like `own_gradient`, it runs the step of a cell with a recurrent product in
`loop.step_dtype`, so training and inference compute alike.
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops, tree

from zoo.cells.base import RecurrentCell
from zoo.compat import autocast_scope
from zoo.layers.recurrent.loop import step_dtype, while_loop


def applies(layer, sequences, mask, training):
    """Any zoo cell (`RecurrentCell`)."""
    return isinstance(layer.cell, RecurrentCell)


def run(layer, sequences, initial_state, mask, training):
    """(last output, outputs, final states) of the hoisted loop; TF differentiates it."""
    cell = layer.cell
    projected = cell.project_inputs(sequences)
    if cell.recurrent_state is None:  # the step's own matmuls: all in the compute dtype

        def step(x, states):
            return cell.step(x, None, states, training=training)

        return while_loop(step, projected, initial_state, mask, layer)
    # A recurrent product in the compute dtype, the rest of the step and the states in
    # `loop.step_dtype` (float32 under a mixed policy), as in `own_gradient`.
    dtype, kernel = step_dtype(cell), ops.cast(cell.recurrent_kernel, cell.compute_dtype)

    def wide_step(x, states):
        r = tf.cast(states[cell.recurrent_state], kernel.dtype)
        with autocast_scope(dtype):
            m = tf.cast(cell.multiply_recurrent(r, kernel), dtype)
            return cell.step(x, m, states, training=training)

    last, outputs, states = while_loop(
        wide_step,
        tf.cast(projected, dtype),
        tree.map_structure(lambda s: tf.cast(s, dtype), initial_state),
        mask,
        layer,
    )
    back = lambda x: tf.cast(x, projected.dtype)
    return back(last), back(outputs), tree.map_structure(back, states)
