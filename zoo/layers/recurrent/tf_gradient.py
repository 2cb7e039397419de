"""Hoisted loop with TF's gradient: one `cell.project_inputs` matmul over all steps, then a
`tf.while_loop` over `cell.step` alone.

Taken by every zoo cell where the own gradient (`own_gradient`) is not: at inference (it
keeps less per step), for a cell without a single recurrent product (`recurrent_state` None,
e.g. mLSTM, GRU without reset_after) and for a step that draws random numbers when training.
"""

from __future__ import annotations

from zoo.cells.base import RecurrentCell
from zoo.layers.recurrent.loop import while_loop


def applies(layer, sequences, mask, training):
    return isinstance(layer.cell, RecurrentCell)


def run(layer, sequences, initial_state, mask, training):
    cell = layer.cell

    def step(x, states):
        return cell.step(x, cell.recurrent_term(states), states, training=training)

    return while_loop(step, cell.project_inputs(sequences), initial_state, mask, layer)
