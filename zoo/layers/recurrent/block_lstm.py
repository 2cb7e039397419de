"""TF's fused BlockLSTM kernel, opt-in (`Recurrent(..., fused=True)`): the whole sequence as
one op forward and one backward.

For a cell whose declared structure TF's op computes (`LSTMStructure.block_lstm`: sigmoid
gates, tanh, optional diagonal peepholes; a gate the cell lacks is held at exactly 1 by a
bias of 30), in float32, without a mask, outside XLA. Off by default: on a CPU TF's Eigen
kernel trains slower than the hoisted loop's oneDNN matmuls (the table in
`zoo.layers.recurrent`). We use `BlockLSTM` with `forget_bias=0, cell_clip=-1` rather than
`BlockLSTMV2`: in TF 2.21 V2's registered gradient runs the V1 gradient kernel, whose gate
layout (i, c, f, o) is not V2's forward layout (i, f, c, o), so V2's weight gradients are
wrong (checked against autodiff of the same math).
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from zoo.cells.structure import LSTMStructure, structure_of
from zoo.compat import in_xla_context
from zoo.layers.recurrent.loop import time_major

# Pre-activation of a gate a cell does not have: sigmoid(30) is exactly 1.0 in float32.
ALWAYS_OPEN = 30.0
ORDER = ("i", "c", "f", "o")  # gate layout of tf.raw_ops.BlockLSTM


def applies(layer, sequences, mask, training):
    """With `fused=True`, unmasked, float32, outside XLA, for structures BlockLSTM computes."""
    structure = structure_of(layer.cell)
    return (
        layer.fused
        and mask is None
        and isinstance(structure, LSTMStructure)
        and structure.block_lstm
        and layer.cell.compute_dtype == "float32"
        and sequences.dtype == tf.float32
        and not in_xla_context()
    )


def run(layer, sequences, initial_state, mask, training):
    """(last output, outputs, final states) of TF's BlockLSTM op on the cell's weights."""
    cell, structure = layer.cell, structure_of(layer.cell)
    units, gates = cell.units, structure.gates
    blocks = lambda weight: dict(
        zip(gates, ops.split(ops.convert_to_tensor(weight), len(gates), axis=-1))
    )
    kernel, recurrent = blocks(cell.kernel), blocks(cell.recurrent_kernel)
    bias = blocks(cell.bias) if cell.use_bias else {}
    input_dim = sequences.shape[-1]
    columns, biases = [], []
    for gate in ORDER:
        if gate in kernel:
            columns.append(tf.concat([kernel[gate], recurrent[gate]], axis=0))
            biases.append(bias[gate] if bias else tf.zeros([units]))
        else:
            columns.append(tf.zeros([input_dim + units, units]))
            biases.append(tf.fill([units], ALWAYS_OPEN))
    peepholes = [
        ops.convert_to_tensor(getattr(cell, f"peephole_{gate}"))
        if gate in structure.peepholes
        else tf.zeros([units])
        for gate in ("i", "f", "o")
    ]
    x = time_major(sequences, layer.go_backwards)
    h0, c0 = initial_state
    _, cs, _, _, _, _, h = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.cast(tf.shape(x)[0], tf.int64),
        x=x,
        cs_prev=c0,
        h_prev=h0,
        w=tf.concat(columns, axis=1),
        wci=peepholes[0],
        wcf=peepholes[1],
        wco=peepholes[2],
        b=tf.concat(biases, axis=0),
        forget_bias=0.0,
        cell_clip=-1.0,
        use_peephole=bool(structure.peepholes),
    )
    return h[-1], tf.transpose(h, [1, 0, 2]), [h[-1], cs[-1]]
