"""`Recurrent`: the fast sequence layer that runs any zoo cell.

It is `keras.layers.RNN` (same arguments, config, masking, states, `Bidirectional` support)
with its own time loop on the TensorFlow backend, picked per call:

1. cuDNN, on a GPU, for `lstm` and `gru` (reset_after) with tanh/sigmoid and no mask:
   Keras's own `backend.lstm` / `backend.gru`, as keras.layers.LSTM/GRU use them.
2. The cell's whole-sequence form, `cell.parallel` (mLSTM's chunk-wise form), where there is
   no mask, the cell runs in float32 and the length is static.
3. Hoisted loop with its own gradient, when training or under a gradient tape: one matmul
   `cell.project_inputs` over all steps, then a `tf.while_loop` over `cell.step` alone. Every
   cell whose step takes one product with its recurrent kernel (`recurrent_product`, on any
   of its states; all zoo cells but mLSTM) gets our backward pass (`tf.custom_gradient`), with
   or without masks, in float32 or mixed precision: the forward loop keeps m_t = r_{t-1} U
   and the states; the backward loop differentiates the step's element-wise part (a tape on
   one step, m_t given) and does dm_t U^T with U^T transposed once (oneDNN runs a transposed
   operand at half speed); dU = sum_t r_{t-1}^T dm_t is one (P, T*B)(T*B, G*H) matmul after
   it (for another product, sLSTM's per-head blocks or ConvLSTM's convolution, one gradient
   over all T*B rows). The step runs again in the backward pass, so a step that draws random
   numbers keeps TF's loop gradient. On a CPU, a batch of a static size of at least
   MIN_SPLIT_BATCH runs as two such loops over its halves, side by side on the CPU's threads,
   so that one loop's small element-wise ops overlap the other's matmul.
4. Hoisted loop with TF's gradient: inference (less to keep per step), and the cells 3 skips.
5. Per-step loop: any other Keras cell, a list of cells (stacked), or a cell whose
   `project_inputs` cannot take (batch, time, ...) inputs: `cell(x_t, states)` in the same loop.
6. Fused block LSTM, opt-in (`fused=True`). Cells whose math is TF's block LSTM (sigmoid
   gates, tanh, optional diagonal peepholes; a gate the cell lacks is held at exactly 1 by a
   bias of 30) run the whole sequence as one `BlockLSTM` op forward and one backward:
   `lstm`, `lstm_1997`, `vanilla_lstm`, `nig_lstm`, `nfg_lstm`, `nog_lstm`, `np_lstm`; float32,
   no mask, outside XLA. We use `BlockLSTM` with `forget_bias=0, cell_clip=-1` rather than
   `BlockLSTMV2`: in TF 2.21 V2's registered gradient runs the V1 gradient kernel, whose gate
   layout (i, c, f, o) is not V2's forward layout (i, f, c, o), so V2's weight gradients are
   wrong (checked against autodiff of the same math).

Decisions, by measurement: benchmarks/results/rounds (2-core AMD EPYC, quiet machine,
TF 2.21, char-LM X=64, batch 64, length 100, fwd+bwd+Adam, medians of 3 interleaved rounds of
5 x 3 steps, each case in its own process), training tokens/s at H=256 / H=512:

    keras.layers.LSTM                         41.8k / 15.1k
    Recurrent(lstm), own gradient (3)         51.6k / 25.5k   (293 / 481 MiB)
    keras.layers.RNN(lstm), TF's gradient     36.7k / 14.8k   (251 / 258 MiB)
    Recurrent(lstm, fused=True), BlockLSTM    25.5k /  9.2k   (TF's Eigen kernel loses to
                                                               oneDNN matmuls in the loop)
    torch nn.LSTM (oneDNN's fused RNN kernel) 61.3k / 19.7k
    torch nn.LSTM with oneDNN off             42.1k / 11.6k

The own gradient against TF's loop gradient: lstm 1.40x / 1.73x, gru 1.19x / 1.27x,
peephole_lstm 1.06x / 1.20x, for 1.2-1.9x the training memory, so it is on for every cell it
applies to. Running the batch as two half-batch loops took a Recurrent(lstm) layer's fwd+bwd
from 86-87 to 71-74 ms at H=256 and from 200 to 183-195 ms at H=512 (a bare forward loop:
23.9 ms as one loop, 19.6 as two, 29.1 as four).

PyTorch's lead at H=256 is oneDNN's fused LSTM primitive (packed weights, one kernel per
sequence): without it PyTorch is 0.82x / 0.45x of Recurrent. Here the forward loop is bound by
TF's matmul: at H=256 one step's h @ U (64x256x1024) takes about 200 us, 20 ms of the 34 ms
forward pass, while oneDNN's kernel does the whole step in 120 us (12 ms per pass); the
backward pass (54 ms, one loop) is on par with PyTorch's (52 ms). XLA is not used: it made
recurrent training slower on this CPU (0.67-0.87x); compiling only the step's
element-wise part in the loop made the forward loop slower too (27.3 vs 24.8 ms), and the cuDNN
and BlockLSTM paths step aside inside XLA.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf
from keras import ops, tree
from keras.src import backend as keras_backend  # lstm/gru: Keras's cuDNN kernels
from tensorflow.python.eager.record import could_possibly_record
from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext

from zoo.cells.base import RecurrentCell, supplied_product
from zoo.cells.greff import (
    NFGLSTMCell,
    NIGLSTMCell,
    NOGLSTMCell,
    NPLSTMCell,
    VanillaLSTMCell,
)
from zoo.cells.gru import GRUCell
from zoo.cells.lstm import LSTMCell
from zoo.cells.lstm_1997 import LSTM1997Cell

# Cells that are exactly TF's block LSTM (exact classes: a subclass may change the math).
BLOCK_LSTM_CELLS = (
    LSTMCell,
    LSTM1997Cell,
    VanillaLSTMCell,
    NIGLSTMCell,
    NFGLSTMCell,
    NOGLSTMCell,
    NPLSTMCell,
)
# On a CPU, the own-gradient loop runs as two loops over the halves of a batch of at least
# this many (see the module docstring).
MIN_SPLIT_BATCH = 16
# Pre-activation of a gate a cell does not have: sigmoid(30) is exactly 1.0 in float32.
ALWAYS_OPEN = 30.0
BLOCK_LSTM_ORDER = ("i", "c", "f", "o")  # gate layout of tf.raw_ops.BlockLSTM


@keras.saving.register_keras_serializable(package="zoo")
class Recurrent(keras.layers.RNN):
    """Sequence layer for any cell: `keras.layers.RNN` with a fast loop (fused or hoisted).

    Args:
        cell: a cell instance (any zoo cell or Keras RNN cell), or a list of cells (stacked,
            run per step).
        return_sequences: return the output of every step, not only the last.
        return_state: also return the final states.
        go_backwards: process the sequence in reverse (outputs come in processing order).
        fused: use TF's fused `BlockLSTM` kernel where the cell's math allows it (see the
            module docstring; slower than the loop on CPU, so off by default).
        **kwargs: see `keras.layers.RNN` (stateful, unroll, zero_output_for_mask, ...).

    Masks work as in `keras.layers.RNN`: a masked step keeps the states and repeats the
    previous output (zeros with `zero_output_for_mask=True`).

    Example:
        layer = Recurrent(zoo.cells.create("vanilla_lstm", 256), return_sequences=True)
        keras.layers.Bidirectional(Recurrent(zoo.cells.create("gru", 64)))
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 fused=False, **kwargs):
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, **kwargs)
        self.fused = bool(fused)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if self.unroll or keras.backend.backend() != "tensorflow":
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if tree.is_nested(mask):
            mask = mask[0]
        result = None if mask is not None else _cudnn(self, sequences, initial_state)
        if result is not None:
            return result
        if self.fused and mask is None and _block_lstm_ready(self.cell, sequences):
            return _block_lstm(self.cell, sequences, initial_state, self.go_backwards)
        cell = self.cell
        if _parallel_ready(cell, sequences, mask):
            return _parallel(self, sequences, initial_state)
        inputs = _project(cell, sequences)
        if inputs is None:  # per-step fallback, as keras.layers.RNN calls the cell
            inputs = sequences
            kwargs = {"training": training} if cell._call_has_training_arg else {}

            def step(x, states):
                output, new_states = cell(x, states, **kwargs)
                return output, new_states if tree.is_nested(new_states) else [new_states]
        else:
            index = None
            if training or could_possibly_record():  # it keeps more per step: only to learn
                index = _recurrent_state_index(cell, inputs, initial_state, training)
            if index is not None:
                return _hoisted_gradient_loop(cell, inputs, initial_state, mask, index, self,
                                              training)

            def step(x, states):
                return cell.step(x, states, training=training)

        return _loop(
            step,
            inputs,
            initial_state,
            mask,
            go_backwards=self.go_backwards,
            return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask,
        )

    def get_config(self):
        return {**super().get_config(), "fused": self.fused}


def _cudnn(layer, sequences, initial_state):
    """Keras's cuDNN LSTM/GRU for `lstm` and `gru` on a GPU; None where it does not apply."""
    cell = layer.cell
    if type(cell) is LSTMCell:
        kernel, states, extra = keras_backend.lstm, initial_state[:2], {}
    elif type(cell) is GRUCell and cell.reset_after:
        kernel, states, extra = keras_backend.gru, initial_state[:1], {"reset_after": True}
    else:
        return None
    try:
        result = kernel(
            sequences, *states, None, kernel=cell.kernel, recurrent_kernel=cell.recurrent_kernel,
            bias=cell.bias, activation=cell.activation,
            recurrent_activation=cell.recurrent_activation,
            return_sequences=layer.return_sequences, go_backwards=layer.go_backwards, **extra,
        )
    except NotImplementedError:  # no GPU, or arguments cuDNN does not support
        return None
    layer.supports_jit = False  # cuDNN ops do not compile with XLA
    return result


def _parallel_ready(cell, sequences, mask):
    """Whether the cell's own whole-sequence form (`cell.parallel`, e.g. mLSTM's chunk-wise
    form) applies: no mask (it leaves masked outputs undefined), float32, a static length."""
    return (hasattr(cell, "parallel") and mask is None and cell.compute_dtype == "float32"
            and sequences.shape[1] is not None)


def _parallel(layer, sequences, initial_state):
    """All steps at once through `cell.parallel(inputs, initial_state) -> (outputs, states)`."""
    if layer.go_backwards:
        sequences = tf.reverse(sequences, [1])
    outputs, states = layer.cell.parallel(sequences, initial_state)
    last = outputs[:, -1]
    return last, outputs if layer.return_sequences else last[:, None], states


def sequence_layer(cell, bidirectional=False, **kwargs):
    """The layer every zoo model runs its cells in: `Recurrent(cell, return_sequences=True)`,
    wrapped in `keras.layers.Bidirectional` when `bidirectional` (encoders only)."""
    layer = Recurrent(cell, return_sequences=True, **kwargs)
    return keras.layers.Bidirectional(layer) if bidirectional else layer


def stack_initial_state(layers, batch_size):
    """Zero states of a stack of recurrent layers: one list of (batch, size) per layer."""
    return [layer.cell.get_initial_state(batch_size) for layer in layers]


def stack_step(layers, x, states):
    """One time step through a stack of recurrent layers: x (batch, features) -> output of the
    last layer and the new states of every layer (for generation with explicit state)."""
    new_states = []
    for layer, state in zip(layers, states):
        x, state = layer.cell(x, state)
        new_states.append(list(state))
    return x, new_states


def _project(cell, sequences):
    """`cell.project_inputs` over all steps at once, or None where the cell cannot do that."""
    if not isinstance(cell, RecurrentCell):
        return None
    try:
        return cell.project_inputs(sequences)
    except (ValueError, TypeError):  # e.g. a cell whose projection is rank-specific
        return None


def _loop(step, inputs, initial_state, mask, go_backwards, return_sequences,
          zero_output_for_mask):
    """A `tf.while_loop` of `step(x_t, states) -> (output, states)` over (batch, time, ...)."""
    time_major = tree.map_structure(lambda x: _time_major(x, go_backwards), inputs)
    flat_inputs = tree.flatten(time_major)
    length = tf.shape(flat_inputs[0])[0]
    input_tas = [
        tf.TensorArray(x.dtype, size=length, element_shape=x.shape[1:]).unstack(x)
        for x in flat_inputs
    ]
    if mask is not None:
        mask = _time_major(ops.cast(mask, "bool"), go_backwards)
    states = tree.flatten(initial_state)
    zeros = _zero_output(step, inputs, initial_state)
    # Only a TensorArray that is written: an unwritten one breaks XLA's gradient.
    outputs_ta = [tf.TensorArray(zeros.dtype, size=length)] if return_sequences else []

    def body(t, prev_output, states, outputs_ta):
        x = tree.pack_sequence_as(time_major, [ta.read(t) for ta in input_tas])
        output, new_states = step(x, tree.pack_sequence_as(initial_state, states))
        new_states = tree.flatten(new_states)
        if mask is not None:
            keep = mask[t]
            output = _where(keep, output, zeros if zero_output_for_mask else prev_output)
            new_states = [_where(keep, new, old) for new, old in zip(new_states, states)]
        return t + 1, output, new_states, [ta.write(t, output) for ta in outputs_ta]

    _, last_output, states, outputs_ta = tf.while_loop(
        lambda t, *_: t < length,
        body,
        (tf.constant(0), zeros, states, outputs_ta),
        maximum_iterations=length,
    )
    if return_sequences:
        outputs = tf.transpose(outputs_ta[0].stack(), _swap(len(zeros.shape) + 1))
    else:
        outputs = last_output[:, None]
    return last_output, outputs, tree.pack_sequence_as(initial_state, states)


def _zero_output(step, inputs, initial_state):
    """Zeros shaped like one output of `step` (traced on symbolic inputs, never run)."""
    symbolic = lambda x, drop: keras.KerasTensor((None, *x.shape[1 + drop:]), x.dtype)
    spec, _ = keras_backend.compute_output_spec(
        step,
        tree.map_structure(lambda x: symbolic(x, 1), inputs),
        tree.map_structure(lambda x: symbolic(x, 0), initial_state),
    )
    batch = tf.shape(tree.flatten(initial_state)[0])[:1]
    return tf.zeros(tf.concat([batch, spec.shape[1:]], axis=0), spec.dtype)


def _where(keep, new, old):
    """`new` where the (batch,) bool `keep` holds, else `old`."""
    return tf.where(tf.reshape(keep, [-1] + [1] * (len(new.shape) - 1)), new, old)


def _swap(rank):
    return [1, 0, *range(2, rank)]


def _time_major(x, go_backwards):
    x = tf.transpose(x, _swap(len(x.shape)))
    return tf.reverse(x, [0]) if go_backwards else x


# Op types that make a step non-deterministic (dropout, noise): the own gradient, which runs
# the step again in the backward pass, steps aside for them.
RANDOM_OPS = ("Random", "Multinomial", "Shuffle")


def _recurrent_state_index(cell, inputs, initial_state, training):
    """The index of the state whose product with the recurrent kernel the step takes, where
    `_hoisted_gradient_loop` applies: a zoo cell whose step calls `recurrent_product` once,
    on one of its states, and draws no random numbers. None where it does not apply."""
    if not isinstance(cell, RecurrentCell):
        return None
    calls = []

    def step(x, *states):
        def product(r):
            calls.append(next((k for k, s in enumerate(states) if r is s), None))
            return cell.multiply_recurrent(r, ops.cast(cell.recurrent_kernel, r.dtype))

        with supplied_product(cell, product):
            return cell.step(x, tree.pack_sequence_as(initial_state, states), training=training)

    spec = lambda x: tf.TensorSpec(x.shape, x.dtype)
    states = tree.flatten(initial_state)
    graph = tf.function(step, autograph=False).get_concrete_function(
        spec(inputs[:, 0]), *map(spec, states)).graph
    if any(word in op.type for op in graph.get_operations() for word in RANDOM_OPS):
        return None
    return calls[0] if len(calls) == 1 else None


def _hoisted_gradient_loop(cell, inputs, initial_state, mask, index, layer, training):
    """The hoisted loop with its own gradient (`_own_gradient_loop`), over the whole batch or,
    on a CPU, as two loops over its halves that run side by side on the CPU's threads."""
    projected = _time_major(inputs, layer.go_backwards)
    keep = None if mask is None else _time_major(ops.cast(mask, "bool"), layer.go_backwards)
    kernel = ops.cast(cell.recurrent_kernel, cell.compute_dtype)
    states = tree.flatten(initial_state)
    loop = functools.partial(_own_gradient_loop, cell, index, layer, training, kernel, inputs,
                             initial_state)
    if _split_batch(projected):
        batch = projected.shape[1]
        sizes = [batch // 2, batch - batch // 2]
        halves = zip(
            tf.split(projected, sizes, axis=1),
            [None, None] if keep is None else tf.split(keep, sizes, axis=1),
            zip(*[tf.split(s, sizes) for s in states]),
        )
        results = [loop(p, k, list(s)) for p, k, s in halves]
        outputs = tf.concat([o for o, _ in results], axis=1 if layer.return_sequences else 0)
        final_states = [tf.concat(s, 0) for s in zip(*[f for _, f in results])]
    else:
        outputs, final_states = loop(projected, keep, states)
    if layer.return_sequences:
        last, outputs = outputs[-1], tf.transpose(outputs, _swap(len(outputs.shape)))
    else:
        last, outputs = outputs, outputs[:, None]
    return last, outputs, tree.pack_sequence_as(initial_state, final_states)


def _own_gradient_loop(cell, index, layer, training, kernel, inputs, initial_state, projected,
                       keep, states):
    """The loop with its own gradient over time-major `projected` (T, B, ...), the (T, B) mask
    `keep` or None, and the flat `states`: (outputs, final states). With r = states[index] and
    U the recurrent kernel, the forward loop keeps m_t = r_{t-1} U and the states; the backward
    loop does the per-step work only (the step's element-wise gradients, a tape on one step
    with m_t given, and dm_t U^T, with U^T transposed once), and dU = sum_t r_{t-1}^T dm_t is
    one (P, T*B) @ (T*B, G*H) matmul after it (for another `multiply_recurrent`, one product's
    gradient over all T*B rows). Masked steps keep the states and the output as `_loop` does."""
    length = tf.shape(projected)[0]
    pack = lambda flat: tree.pack_sequence_as(initial_state, flat)
    matmul = type(cell).multiply_recurrent is RecurrentCell.multiply_recurrent
    step = lambda x, states: cell.step(x, states, training=training)
    autocast = keras_backend.get_autocast_scope()  # mixed precision: re-entered for backward
    r = states[index]
    spec = keras_backend.compute_output_spec(lambda r: cell.multiply_recurrent(r, kernel),
                                             keras.KerasTensor(r.shape, r.dtype))
    product_like = tf.zeros(tf.concat([tf.shape(r)[:1], spec.shape[1:]], 0), spec.dtype)

    def array(like):
        return tf.TensorArray(like.dtype, size=length, element_shape=like.shape,
                              clear_after_read=False)  # read forward and backward

    @tf.custom_gradient
    def run(projected, kernel, *states):
        states = list(states)
        inputs_ta = array(projected[0]).unstack(projected)
        zeros = _zero_output(step, inputs, pack(states))
        outputs_ta = [array(zeros)] if layer.return_sequences else []

        def body(t, prev_output, states, outputs_ta, products_ta, states_tas):
            products = []

            def product(r):
                products.append(cell.multiply_recurrent(r, kernel))
                return products[-1]

            with supplied_product(cell, product):
                output, new_states = step(inputs_ta.read(t), pack(states))
            new_states = tree.flatten(new_states)
            if keep is not None:
                masked = zeros if layer.zero_output_for_mask else prev_output
                output = _where(keep[t], output, masked)
                new_states = [_where(keep[t], new, old) for new, old in zip(new_states, states)]
            return (
                t + 1,
                output,
                new_states,
                [ta.write(t, output) for ta in outputs_ta],
                products_ta.write(t, products[0]),
                [ta.write(t, s) for ta, s in zip(states_tas, states)],
            )

        _, last, final_states, outputs_ta, products_ta, states_tas = tf.while_loop(
            lambda t, *_: t < length,
            body,
            (tf.constant(0), zeros, states, outputs_ta, array(product_like),
             [array(s) for s in states]),
            maximum_iterations=length,
        )
        outputs = outputs_ta[0].stack() if layer.return_sequences else last

        def grad(d_outputs, *d_states, variables=None):
            reads_variables = variables is not None
            d_states = [tf.zeros_like(s) if d is None else d for d, s in zip(d_states, states)]
            d_outputs = tf.zeros_like(outputs) if d_outputs is None else d_outputs
            d_outputs_ta = array(zeros).unstack(d_outputs) if layer.return_sequences else None
            d_last = tf.zeros_like(zeros) if layer.return_sequences else d_outputs
            variables = list(variables or [])
            kernel_t = tf.transpose(kernel) if matmul else None  # transposed operands are slow

            def d_recurrent_input(d_m, r):
                """dm_t -> dr_{t-1} through the product (linear in r)."""
                if matmul:
                    return tf.matmul(d_m, kernel_t)
                with tf.GradientTape() as tape:
                    tape.watch(r)
                    m = cell.multiply_recurrent(r, kernel)
                return tape.gradient(m, r, output_gradients=d_m)

            def step_gradients(x, m, prev, d_output, d_states):
                """Gradients of one step w.r.t. x_t, m_t, the states and the variables."""
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch([x, m, *prev, *variables])
                    with supplied_product(cell, lambda r: m), keras_backend.AutocastScope(
                            autocast and autocast.dtype):
                        output, new_states = step(x, pack(prev))
                sources = [x, m, *prev, *variables]
                n = 2 + len(prev)
                grads = tape.gradient([output, *tree.flatten(new_states)], sources,
                                      output_gradients=[d_output, *d_states])
                grads[:n] = [tf.zeros_like(s) if g is None else g
                             for g, s in zip(grads, sources)]
                return grads  # None for a variable the step does not use

            def back(t, d_carry, d_states, d_variables, d_inputs_ta, d_products_ta):
                t = t - 1
                x, m = inputs_ta.read(t), products_ta.read(t)
                prev = [ta.read(t) for ta in states_tas]
                if layer.return_sequences:
                    d_carry = d_carry + d_outputs_ta.read(t)
                d_output, d_carry = d_carry, tf.zeros_like(d_carry)
                passed = [tf.zeros_like(d) for d in d_states]
                if keep is not None:  # a masked step passes its gradients on unchanged
                    masked = lambda d: _where(keep[t], tf.zeros_like(d), d)
                    if not layer.zero_output_for_mask:
                        d_carry = masked(d_output)
                    passed = [masked(d) for d in d_states]
                    d_output = _where(keep[t], d_output, tf.zeros_like(d_output))
                    d_states = [_where(keep[t], d, tf.zeros_like(d)) for d in d_states]
                d_x, d_m, *grads = step_gradients(x, m, prev, d_output, d_states)
                d_prev = [d + p for d, p in zip(grads[:len(prev)], passed)]
                d_prev[index] = d_prev[index] + d_recurrent_input(d_m, prev[index])
                d_vars = grads[len(prev):]
                d_variables = [a if d is None else a + d for a, d in zip(d_variables, d_vars)]
                return (t, d_carry, d_prev, d_variables, d_inputs_ta.write(t, d_x),
                        d_products_ta.write(t, d_m))

            _, _, d_initial, d_variables, d_inputs_ta, d_products_ta = tf.while_loop(
                lambda t, *_: t > 0,
                back,
                (length, d_last, d_states, [tf.zeros_like(v) for v in variables],
                 array(projected[0]), array(products_ta.read(0))),
                maximum_iterations=length,
            )
            rows = lambda ta: tf.reshape(ta.stack(),
                                         tf.concat([[-1], tf.shape(ta.read(0))[1:]], 0))
            r, d_m = rows(states_tas[index]), rows(d_products_ta)
            if matmul:
                d_kernel = tf.matmul(r, d_m, transpose_a=True)
            else:
                with tf.GradientTape() as tape:
                    tape.watch(kernel)
                    m = cell.multiply_recurrent(r, kernel)
                d_kernel = tape.gradient(m, kernel, output_gradients=d_m)
            d_inputs = [d_inputs_ta.stack(), d_kernel, *d_initial]
            return (d_inputs, d_variables) if reads_variables else d_inputs

        return (outputs, *final_states), grad

    outputs, *final_states = run(projected, kernel, *states)
    return outputs, final_states


def _split_batch(projected):
    """Whether to run the batch as two loops: on a CPU (no GPU visible), for a batch of a
    static size of at least MIN_SPLIT_BATCH (training streams drop their last partial batch)."""
    batch = projected.shape[1]
    return batch is not None and batch >= MIN_SPLIT_BATCH and not tf.config.list_logical_devices(
        "GPU")


def _block_lstm_ready(cell, sequences):
    """Whether `cell` on `sequences` is exactly TF's BlockLSTM, and the op can run here."""
    return (
        type(cell) in BLOCK_LSTM_CELLS
        and cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
        and getattr(cell, "input_activation", True)
        and getattr(cell, "output_activation", True)
        and cell.compute_dtype == "float32"
        and sequences.dtype == tf.float32
        and not GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())
    )


def _block_lstm(cell, sequences, initial_state, go_backwards):
    """The whole sequence through `tf.raw_ops.BlockLSTM` (one op forward, one backward)."""
    units = cell.units
    kernel = cell.split_gates(ops.convert_to_tensor(cell.kernel))
    recurrent = cell.split_gates(ops.convert_to_tensor(cell.recurrent_kernel))
    bias = cell.split_gates(ops.convert_to_tensor(cell.bias)) if cell.use_bias else {}
    input_dim = sequences.shape[-1]
    columns, biases = [], []
    for gate in BLOCK_LSTM_ORDER:
        if gate in kernel:
            columns.append(tf.concat([kernel[gate], recurrent[gate]], axis=0))
            biases.append(bias[gate] if bias else tf.zeros([units]))
        else:
            columns.append(tf.zeros([input_dim + units, units]))
            biases.append(tf.fill([units], ALWAYS_OPEN))
    peephole_gates = getattr(cell, "peephole_gates", ())
    peepholes = [
        ops.convert_to_tensor(getattr(cell, f"peephole_{gate}"))
        if gate in peephole_gates
        else tf.zeros([units])
        for gate in ("i", "f", "o")
    ]
    x = _time_major(sequences, go_backwards)
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
        use_peephole=bool(peephole_gates),
    )
    return h[-1], tf.transpose(h, [1, 0, 2]), [h[-1], cs[-1]]
