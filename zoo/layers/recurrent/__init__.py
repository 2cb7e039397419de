"""`Recurrent`: the fast sequence layer that runs any zoo cell.

It is `keras.layers.RNN` (same arguments, config, masking, states, `Bidirectional` support)
whose time loop, on the TensorFlow backend, is the first of these strategies that applies;
each is a module with `applies(layer, sequences, mask, training)` and `run(layer, sequences,
initial_state, mask, training)`, and its reason in its docstring (the speeds are below):

0. `exported`: inside an export's scope (`exported.exporting`), the fused TFLite LSTM op
   or the unrolled loop, as the scope asks.
1. `cudnn`: Keras's cuDNN LSTM/GRU on a GPU, for a cell whose declared structure is cuDNN's.
2. `block_lstm`: TF's fused BlockLSTM op, opt-in (`fused=True`), for the structures it computes.
3. `parallel`: the cell's own whole-sequence form (mLSTM's chunk-wise form).
4. `own_gradient`: hoisted input projection and a loop with our backward pass, when training
   a cell with a declared recurrent product and a deterministic step.
5. `tf_gradient`: the same hoisted loop with TF's gradient (inference, the other zoo cells).
6. `step_loop`: `cell(x_t, states)` per step, for any Keras cell or a list of cells.

The strategies read what the cell declares (`zoo.cells.structure`); none traces the cell.

Measured (benchmarks/results/rounds, 2026-11-29; 2-core CPU, TF 2.21 with its default thread
pools, char-LM X=64, batch 64, length 100, fwd+bwd+Adam, medians of 3 interleaved rounds),
training tokens/s at H=256 / H=512:

    keras.layers.LSTM                         65.9k / 25.4k
    Recurrent(lstm), own gradient             97.1k / 38.7k   (253 / 348 MiB)
    keras.layers.RNN(lstm), TF's gradient     65.4k / 25.9k   (254 / 255 MiB)
    Recurrent(lstm, fused=True), BlockLSTM    42.8k / 16.1k
    torch nn.LSTM (oneDNN's fused RNN kernel) 109.0k / 34.0k
    torch nn.LSTM with oneDNN off             61.0k / 19.4k

Against TF's loop gradient the own gradient trains lstm 1.49x / 1.49x, gru 1.05x / 1.32x and
peephole_lstm 1.13x / 1.22x faster, for 1.0-1.5x the training memory (same rounds).
With one TF thread per op and two side by side (benchmarks/results/tf-threads-1-2)
Recurrent(lstm) is 1.16x / 1.29x torch's fused kernel. The loops are bound by the step-shaped
matmul (at H=512 in bfloat16, 194 us of a loop step's ~270 us on one core); every speed-up
tried, kept or rejected, is in benchmarks/attempts.md. XLA is not used: it makes recurrent
training slower on this CPU, and so does compiling only the step's element-wise part.
"""

from __future__ import annotations

import keras
from keras import tree

from zoo.layers.recurrent import (
    block_lstm,
    cudnn,
    exported,
    own_gradient,
    parallel,
    step_loop,
    tf_gradient,
)

# In order of preference; a strategy's `run` may return None to decline at run time.
STRATEGIES = (exported, cudnn, block_lstm, parallel, own_gradient, tf_gradient, step_loop)


@keras.saving.register_keras_serializable(package="zoo")
class Recurrent(keras.layers.RNN):
    """Sequence layer for any cell: `keras.layers.RNN` with a fast loop (fused or hoisted).

    Args:
        cell: a cell instance (any zoo cell or Keras RNN cell), or a list of cells (stacked,
            run per step).
        return_sequences: return the output of every step, not only the last.
        return_state: also return the final states.
        go_backwards: process the sequence in reverse (outputs come in processing order).
        fused: use TF's fused `BlockLSTM` kernel where the cell's math allows it (see
            `zoo.layers.recurrent.block_lstm`; slower than the loop on CPU, so off by default).
        **kwargs: see `keras.layers.RNN` (stateful, unroll, zero_output_for_mask, ...).

    Masks work as in `keras.layers.RNN`: a masked step keeps the states and repeats the
    previous output (zeros with `zero_output_for_mask=True`).

    Example:
        layer = Recurrent(zoo.cells.create("vanilla_lstm", 256), return_sequences=True)
        keras.layers.Bidirectional(Recurrent(zoo.cells.create("gru", 64)))
    """

    def __init__(
        self,
        cell,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        fused: bool = False,
        **kwargs,
    ):
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            **kwargs,
        )
        self.fused = bool(fused)
        if not isinstance(cell, (list, tuple)) and cudnn.eligible(cell):
            self.supports_jit = False  # cuDNN's kernels do not compile with XLA

    def call(
        self,
        sequences,
        initial_state=None,
        mask=None,
        training=False,
        return_state: bool | None = None,
    ):
        """`keras.layers.RNN.call`; `return_state` overrides the layer's setting for this call
        (eager or in a `tf.function`: e.g. to carry the states from one window to the next)."""
        if return_state is None or return_state == self.return_state:
            return super().call(sequences, initial_state, mask, training)
        kept, self.return_state = self.return_state, return_state
        try:
            return super().call(sequences, initial_state, mask, training)
        finally:
            self.return_state = kept

    def step(self, x, states) -> tuple:
        """One time step from explicit states: x (batch, features) -> (output, new states as
        a list); inside an export scope, the step the export asks for (`exported.step`)."""
        return exported.step(self.cell, x, states)

    def strategy(self, sequences, mask=None, training=False):
        """The first strategy module that applies to these inputs (see the module docstring)."""
        return next(s for s in STRATEGIES if s.applies(self, sequences, mask, training))

    def inner_loop(self, sequences, initial_state, mask, training=False):
        """The time loop: the first of STRATEGIES that applies (Keras's own loop when unrolled or
        off TensorFlow). Returns (last output, outputs, final states), as keras.layers.RNN."""
        if self.unroll or keras.backend.backend() != "tensorflow":
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if tree.is_nested(mask):
            mask = mask[0]
        for strategy in STRATEGIES:
            if strategy.applies(self, sequences, mask, training):
                result = strategy.run(self, sequences, initial_state, mask, training)
                if result is not None:
                    return result
        raise AssertionError("step_loop applies to every cell")

    def get_config(self):
        return {**super().get_config(), "fused": self.fused}


def sequence_layer(cell, bidirectional: bool = False, **kwargs) -> keras.layers.Layer:
    """The layer every zoo model runs its cells in: `Recurrent(cell, return_sequences=True)`,
    wrapped in `keras.layers.Bidirectional` when `bidirectional` (encoders only)."""
    layer = Recurrent(cell, return_sequences=True, **kwargs)
    return keras.layers.Bidirectional(layer) if bidirectional else layer


def stack_layers(cell: str, units: int, count: int, cell_kwargs=None, dtype=None) -> list:
    """`count` sequence layers `recurrent_0`, `recurrent_1`, ... of the registered cell `cell`
    with `units` units (and `cell_kwargs`), cell and layer in `dtype` (a dtype policy; None:
    Keras's global one): the stack the task models run with the `stack_*` helpers."""
    from zoo import cells

    return [
        sequence_layer(
            cells.create(cell, units, dtype=dtype, **dict(cell_kwargs or {})),
            dtype=dtype,
            name=f"recurrent_{i}",
        )
        for i in range(count)
    ]


def stack_initial_state(layers, batch_size: int) -> list:
    """Zero states of a stack of recurrent layers: one list of (batch, size) per layer."""
    return [layer.cell.get_initial_state(batch_size) for layer in layers]


def stack_sequence(layers, x, states) -> tuple:
    """A whole sequence through a stack of recurrent layers from explicit states: x (batch,
    time, features) -> outputs of the last layer and the final states of every layer (the
    sequence form of `stack_step`, each layer in its fast loop)."""
    final = []
    for layer, state in zip(layers, states):
        x, *state = layer(x, initial_state=list(state), return_state=True)
        final.append(state)
    return x, final


def stack_step(layers, x, states) -> tuple:
    """One time step through a stack of recurrent layers: x (batch, features) -> output of the
    last layer and the new states of every layer (for generation with explicit state)."""
    new_states = []
    for layer, state in zip(layers, states):
        x, state = layer.step(x, state)
        new_states.append(list(state))
    return x, new_states
