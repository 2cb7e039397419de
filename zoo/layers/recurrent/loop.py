"""The time loop every loop strategy shares: a `tf.while_loop` over time-major inputs."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops, tree

from zoo.compat import compute_output_spec


def step_dtype(cell) -> str:
    """The dtype a loop runs `cell.step` and carries the states in: float32 under a mixed
    precision policy (bfloat16 or float16 compute), the cell's compute dtype otherwise. The
    matmuls stay in the compute dtype; the element-wise gate math and the cell state gain
    precision and, on a CPU, speed (benchmarks/attempts.md)."""
    return "float32" if cell.compute_dtype in ("bfloat16", "float16") else cell.compute_dtype


def swap(rank):
    """The permutation that swaps the first two axes of a tensor of `rank` axes."""
    return [1, 0, *range(2, rank)]


def time_major(x, go_backwards):
    """(batch, time, ...) -> (time, batch, ...), reversed in time for `go_backwards`."""
    x = tf.transpose(x, swap(len(x.shape)))
    return tf.reverse(x, [0]) if go_backwards else x


def where(keep, new, old):
    """`new` where the (batch,) bool `keep` holds, else `old`."""
    return tf.where(tf.reshape(keep, [-1] + [1] * (len(new.shape) - 1)), new, old)


def zero_output(step, inputs, initial_state):
    """Zeros shaped like one output of `step(x_t, states)` (traced symbolically, never run),
    for `inputs` of all steps, batch- or time-major alike."""
    symbolic = lambda x, drop: keras.KerasTensor((None, *x.shape[1 + drop :]), x.dtype)
    spec, _ = compute_output_spec(
        step,
        tree.map_structure(lambda x: symbolic(x, 1), inputs),
        tree.map_structure(lambda x: symbolic(x, 0), initial_state),
    )
    batch = tf.shape(tree.flatten(initial_state)[0])[:1]
    return tf.zeros(tf.concat([batch, spec.shape[1:]], axis=0), spec.dtype)


def while_loop(step, inputs, initial_state, mask, layer):
    """`step(x_t, states) -> (output, states)` over (batch, time, ...) `inputs` in one
    `tf.while_loop`, with TF's gradient: (last output, outputs, final states) as
    `keras.layers.RNN.inner_loop` returns them. Masked steps keep the states and repeat the
    previous output (zeros with the layer's `zero_output_for_mask`)."""
    major = tree.map_structure(lambda x: time_major(x, layer.go_backwards), inputs)
    flat_inputs = tree.flatten(major)
    length = tf.shape(flat_inputs[0])[0]
    input_tas = [
        tf.TensorArray(x.dtype, size=length, element_shape=x.shape[1:]).unstack(x)
        for x in flat_inputs
    ]
    if mask is not None:
        mask = time_major(ops.cast(mask, "bool"), layer.go_backwards)
    states = tree.flatten(initial_state)
    zeros = zero_output(step, inputs, initial_state)
    # Only a TensorArray that is written: an unwritten one breaks XLA's gradient.
    outputs_ta = [tf.TensorArray(zeros.dtype, size=length)] if layer.return_sequences else []

    def body(t, prev_output, states, outputs_ta):
        x = tree.pack_sequence_as(major, [ta.read(t) for ta in input_tas])
        output, new_states = step(x, tree.pack_sequence_as(initial_state, states))
        new_states = tree.flatten(new_states)
        if mask is not None:
            keep = mask[t]
            output = where(keep, output, zeros if layer.zero_output_for_mask else prev_output)
            new_states = [where(keep, new, old) for new, old in zip(new_states, states)]
        return t + 1, output, new_states, [ta.write(t, output) for ta in outputs_ta]

    _, last_output, states, outputs_ta = tf.while_loop(
        lambda t, *_: t < length,
        body,
        (tf.constant(0), zeros, states, outputs_ta),
        maximum_iterations=length,
    )
    if layer.return_sequences:
        outputs = tf.transpose(outputs_ta[0].stack(), swap(len(zeros.shape) + 1))
    else:
        outputs = last_output[:, None]
    return last_output, outputs, tree.pack_sequence_as(initial_state, states)
