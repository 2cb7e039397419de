"""Hoisted loop with its own gradient: the training path of every zoo cell with a recurrent
product (`cell.recurrent_state` set; all zoo cells but mLSTM).

One `cell.project_inputs` matmul over all steps, then a forward `tf.while_loop` that keeps
m_t = r_{t-1} U (r = the declared recurrent state, U the recurrent kernel) and the states.
The backward loop (`tf.custom_gradient`) does the per-step work only: the step's element-wise
gradients (a tape on one `cell.step`, m_t given) and dm_t U^T with U^T transposed once (oneDNN
runs a transposed operand at half speed); dU = sum_t r_{t-1}^T dm_t is one (P, T*B)(T*B, G*H)
matmul after it (for another `multiply_recurrent`, sLSTM's per-head blocks or ConvLSTM's
convolution, one product's gradient over all T*B rows). The step runs again in the backward
pass, so a cell that declares its step `stochastic` keeps TF's loop gradient when training.

On a CPU, a batch of a static size of at least MIN_SPLIT_BATCH runs as two such loops over
its halves, side by side on the CPU's threads, so that one loop's small element-wise ops
overlap the other's matmul (two loops beat one and four). Each half projects its own inputs,
so the projections and their gradients run side by side too rather than one ahead of both
loops. Both choices are measured in `benchmarks/attempts.md`.

Under a mixed precision policy the step runs and the states are carried in float32, the
product m_t in the compute dtype (`loop.step_dtype`).

Its speed against TF's loop gradient is the table in `zoo.layers.recurrent`.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops, tree

from zoo.cells.base import RecurrentCell
from zoo.cells.structure import LSTMStructure, structure_of
from zoo.compat import autocast_scope, compute_output_spec, could_record_gradient
from zoo.layers.recurrent.loop import step_dtype, swap, time_major, where, zero_output

# On a CPU, a batch of at least this static size runs as two loops over its halves.
MIN_SPLIT_BATCH = 16


def applies(layer, sequences, mask, training):
    """When training (or recording gradients) a cell with a declared recurrent product and a
    deterministic step."""
    cell = layer.cell
    return (
        isinstance(cell, RecurrentCell)
        and cell.recurrent_state is not None
        and not (training and cell.stochastic)
        and bool(training or could_record_gradient())
    )  # it keeps more per step


def run(layer, sequences, initial_state, mask, training):
    """(last output, outputs, final states) of the loop with its own backward pass, in two
    half-batch loops side by side on a CPU."""
    cell = layer.cell
    sequences = time_major(sequences, layer.go_backwards)
    keep = None if mask is None else time_major(ops.cast(mask, "bool"), layer.go_backwards)
    states = tree.flatten(initial_state)
    loop = _OwnGradientLoop(layer, training, initial_state)
    if _split_batch(sequences):
        batch = sequences.shape[1]
        sizes = [batch // 2, batch - batch // 2]
        halves = zip(
            tf.split(sequences, sizes, axis=1),
            [None, None] if keep is None else tf.split(keep, sizes, axis=1),
            zip(*[tf.split(s, sizes) for s in states]),
        )
        results = [loop(cell.project_inputs(x), k, list(s)) for x, k, s in halves]
        outputs = tf.concat([o for o, _ in results], axis=1 if layer.return_sequences else 0)
        final_states = [tf.concat(s, 0) for s in zip(*[f for _, f in results])]
    else:
        outputs, final_states = loop(cell.project_inputs(sequences), keep, states)
    if layer.return_sequences:
        last, outputs = outputs[-1], tf.transpose(outputs, swap(len(outputs.shape)))
    else:
        last, outputs = outputs, outputs[:, None]
    return last, outputs, tree.pack_sequence_as(initial_state, final_states)


def _split_batch(sequences):
    """Whether to run the (time-major) batch as two loops: on a CPU (no GPU visible), for a
    batch of a static size of at least MIN_SPLIT_BATCH (training streams drop their last
    partial batch)."""
    batch = sequences.shape[1]
    return (
        batch is not None and batch >= MIN_SPLIT_BATCH and not tf.config.list_logical_devices("GPU")
    )


def _array(like, length):
    """A TensorArray of `length` tensors like `like`, read forward and backward."""
    return tf.TensorArray(like.dtype, size=length, element_shape=like.shape, clear_after_read=False)


class _OwnGradientLoop:
    """`loop(projected, keep, states) -> (outputs, final states)` over time-major projected
    inputs (T, B, ...), the (T, B) mask `keep` or None and the flat states; the outputs are
    all steps' (time-major) or the last. Masked steps keep the states and the output as
    `loop.while_loop` does."""

    def __init__(self, layer, training, initial_state):
        self.layer, self.cell, self.training = layer, layer.cell, training
        self.index = self.cell.recurrent_state
        self.state_layout = initial_state  # the nesting of the states
        self.kernel = ops.cast(self.cell.recurrent_kernel, self.cell.compute_dtype)
        self.dtype = step_dtype(self.cell)
        # A plain matmul product: its input gradient is one matmul with U^T, made once (oneDNN
        # runs a transposed float32 operand at half speed).
        self.matmul = type(self.cell).multiply_recurrent is RecurrentCell.multiply_recurrent
        self.kernel_t = tf.transpose(self.kernel) if self.matmul else None
        # An LSTM-structure step reads x_t and m_t only as their sum (z = W x_t + R r_{t-1},
        # `LSTMStructure`), so dm_t is dx_t: the backward loop keeps one array for both
        # (fwd+bwd at H=256 / 512, bfloat16: 39.8-40.1 -> 38.5-39.1 ms, 105.4-105.8 -> 101.3-102.6).
        self.summed = isinstance(structure_of(self.cell), LSTMStructure)

    def pack(self, flat):
        return tree.pack_sequence_as(self.state_layout, flat)

    def step(self, x, m, states):
        """The cell's step with its variables read in `self.dtype`, in the forward loop and
        again in the backward pass (which runs outside the layer's autocast scope)."""
        with autocast_scope(self.dtype):
            return self.cell.step(x, m, self.pack(states), training=self.training)

    def __call__(self, projected, keep, states):
        loop, dtype = self, projected.dtype

        @tf.custom_gradient
        def run(projected, kernel, *states):
            outputs, final_states, saved = loop.forward(projected, keep, list(states))
            return (outputs, *final_states), lambda *d, variables=None: loop.backward(
                saved, keep, *d, variables=variables
            )

        # The step and the states in `self.dtype` (see `loop.step_dtype`); TF differentiates
        # the casts around the loop.
        outputs, *final_states = run(
            tf.cast(projected, self.dtype), self.kernel, *(tf.cast(s, self.dtype) for s in states)
        )
        return tf.cast(outputs, dtype), [tf.cast(s, dtype) for s in final_states]

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, projected, keep, states):
        """The loop, keeping per step the product m_t and the states it started from."""
        length = tf.shape(projected)[0]
        inputs_ta = _array(projected[0], length).unstack(projected)
        zeros = zero_output(
            lambda x, s: self.step(x, self.product(s[self.index]), s), projected, states
        )
        r = states[self.index]
        spec = compute_output_spec(self.product, keras.KerasTensor(r.shape, r.dtype))
        product_like = tf.zeros(tf.concat([tf.shape(r)[:1], spec.shape[1:]], 0), spec.dtype)
        outputs_ta = [_array(zeros, length)] if self.layer.return_sequences else []

        def body(t, prev_output, states, outputs_ta, products_ta, states_tas):
            m = self.product(states[self.index])
            output, new_states = self.step(inputs_ta.read(t), m, states)
            new_states = tree.flatten(new_states)
            if keep is not None:
                masked = zeros if self.layer.zero_output_for_mask else prev_output
                output = where(keep[t], output, masked)
                new_states = [where(keep[t], new, old) for new, old in zip(new_states, states)]
            return (
                t + 1,
                output,
                new_states,
                [ta.write(t, output) for ta in outputs_ta],
                products_ta.write(t, m),
                [ta.write(t, s) for ta, s in zip(states_tas, states)],
            )

        _, last, final_states, outputs_ta, products_ta, states_tas = tf.while_loop(
            lambda t, *_: t < length,
            body,
            (
                tf.constant(0),
                zeros,
                states,
                outputs_ta,
                _array(product_like, length),
                [_array(s, length) for s in states],
            ),
            maximum_iterations=length,
        )
        outputs = outputs_ta[0].stack() if self.layer.return_sequences else last
        saved = {
            "length": length,
            "inputs": inputs_ta,
            "products": products_ta,
            "states": states_tas,
            "zeros": zeros,
            "outputs": outputs,
            "initial": states,
        }
        return outputs, final_states, saved

    def product(self, r):
        """m = r U in the kernel's dtype, returned in the step's. A bfloat16 matmul multiplies
        by U^T transposed back: 194 against 223 us per 32 x 512 x 2048 step on one core (the
        float32 one would be 35% slower so)."""
        r = tf.cast(r, self.kernel.dtype)
        if self.matmul and self.kernel.dtype == tf.bfloat16:
            m = tf.matmul(r, self.kernel_t, transpose_b=True)
        else:
            m = self.cell.multiply_recurrent(r, self.kernel)
        return tf.cast(m, self.dtype)

    # -- backward --------------------------------------------------------------------------------
    def backward(self, saved, keep, d_outputs, *d_states, variables=None):
        """Gradients w.r.t. the projected inputs, the kernel, the initial states (and the
        cell's other variables the step reads)."""
        length, zeros, outputs = saved["length"], saved["zeros"], saved["outputs"]
        initial = saved["initial"]
        sequences = self.layer.return_sequences
        d_states = [tf.zeros_like(s) if d is None else d for d, s in zip(d_states, initial)]
        d_outputs = tf.zeros_like(outputs) if d_outputs is None else d_outputs
        d_outputs_ta = _array(zeros, length).unstack(d_outputs) if sequences else None
        d_last = tf.zeros_like(zeros) if sequences else d_outputs
        var_list = list(variables or [])

        def back(t, d_carry, d_states, d_variables, d_arrays):
            t = t - 1
            x, m = saved["inputs"].read(t), saved["products"].read(t)
            prev = [ta.read(t) for ta in saved["states"]]
            if sequences:
                d_carry = d_carry + d_outputs_ta.read(t)
            d_output, d_carry = d_carry, tf.zeros_like(d_carry)
            passed = [tf.zeros_like(d) for d in d_states]
            if keep is not None:  # a masked step passes its gradients on unchanged
                masked = lambda d: where(keep[t], tf.zeros_like(d), d)
                if not self.layer.zero_output_for_mask:
                    d_carry = masked(d_output)
                passed = [masked(d) for d in d_states]
                d_output = where(keep[t], d_output, tf.zeros_like(d_output))
                d_states = [where(keep[t], d, tf.zeros_like(d)) for d in d_states]
            d_x, d_m, *grads = self.step_gradients(x, m, prev, d_output, d_states, var_list)
            d_prev = [d + p for d, p in zip(grads[: len(prev)], passed)]
            d_prev[self.index] += self.d_recurrent_input(d_m, prev[self.index])
            d_variables = [
                a if d is None else a + d for a, d in zip(d_variables, grads[len(prev) :])
            ]
            return (
                t,
                d_carry,
                d_prev,
                d_variables,
                [ta.write(t, d) for ta, d in zip(d_arrays, (d_x, d_m))],
            )

        # dx_t, and dm_t unless it is dx_t (`self.summed`).
        d_arrays = [
            _array(saved[name].read(0), length)
            for name in ("inputs", "products")[: 1 if self.summed else 2]
        ]
        _, _, d_initial, d_variables, d_arrays = tf.while_loop(
            lambda t, *_: t > 0,
            back,
            (length, d_last, d_states, [tf.zeros_like(v) for v in var_list], d_arrays),
            maximum_iterations=length,
        )
        d_projected = d_arrays[0].stack()
        d_products = d_projected if self.summed else d_arrays[1].stack()
        d_kernel = self.d_kernel(_rows(saved["states"][self.index].stack()), _rows(d_products))
        d_inputs = [d_projected, d_kernel, *d_initial]
        return (d_inputs, d_variables) if variables is not None else d_inputs

    def step_gradients(self, x, m, prev, d_output, d_states, variables):
        """Gradients of one step w.r.t. x_t, m_t, the states and the variables (None for a
        variable the step does not read)."""
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([x, m, *prev, *variables])
            output, new_states = self.step(x, m, prev)  # in its own autocast scope
        sources = [x, m, *prev, *variables]
        grads = tape.gradient(
            [output, *tree.flatten(new_states)], sources, output_gradients=[d_output, *d_states]
        )
        n = 2 + len(prev)
        grads[:n] = [tf.zeros_like(s) if g is None else g for g, s in zip(grads, sources)]
        return grads

    def d_recurrent_input(self, d_m, r):
        """dm_t -> dr_{t-1} through the product (linear in r)."""
        if self.matmul:
            return tf.cast(tf.matmul(tf.cast(d_m, self.kernel.dtype), self.kernel_t), self.dtype)
        with tf.GradientTape() as tape:
            tape.watch(r)
            m = self.product(r)
        return tape.gradient(m, r, output_gradients=d_m)

    def d_kernel(self, r, d_m):
        """dU = sum over all T*B rows of the product's gradient w.r.t. U."""
        r, d_m = tf.cast(r, self.kernel.dtype), tf.cast(d_m, self.kernel.dtype)
        if self.matmul:
            return tf.matmul(r, d_m, transpose_a=True)
        with tf.GradientTape() as tape:
            tape.watch(self.kernel)
            m = self.cell.multiply_recurrent(r, self.kernel)
        return tape.gradient(m, self.kernel, output_gradients=d_m)


def _rows(stacked):
    """A (T, B, ...) tensor as (T*B, ...)."""
    return tf.reshape(stacked, tf.concat([[-1], tf.shape(stacked)[2:]], 0))
