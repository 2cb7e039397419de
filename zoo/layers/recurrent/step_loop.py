"""Per-step loop: any Keras RNN cell, or a list of cells (stacked), called as
`keras.layers.RNN` calls it, `cell(x_t, states)`, in one `tf.while_loop`.

The strategy of last resort: it applies to every cell, and is the only one for cells that
are not zoo cells (whose input projection cannot be hoisted out of the loop).
"""

from __future__ import annotations

import inspect

from keras import tree

from zoo.layers.recurrent.loop import while_loop


def applies(layer, sequences, mask, training):
    """Always: the fallback for any Keras cell or list of cells."""
    return True


def run(layer, sequences, initial_state, mask, training):
    """(last output, outputs, final states) of `cell(x_t, states)` over the steps."""
    cell = layer.cell
    takes_training = "training" in inspect.signature(cell.call).parameters
    kwargs = {"training": training} if takes_training else {}

    def step(x, states):
        output, new_states = cell(x, states, **kwargs)
        return output, new_states if tree.is_nested(new_states) else [new_states]

    return while_loop(step, sequences, initial_state, mask, layer)
