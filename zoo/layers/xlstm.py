"""xLSTM residual blocks: the sLSTM block (post up-projection) and the mLSTM block (pre).

Both map (batch, time, width) to (batch, time, width), are causal, accept a time mask, and
run one step at a time with `step` for generation, so a language model can stack them as it
stacks recurrent layers. The paper's causal convolutions in front of the gates are left out
(they would add a convolution buffer to the step state); everything else follows Fig. 9-10 of
Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory".
"""

from __future__ import annotations

import keras
from keras import ops

from zoo.cells.base import check_units
from zoo.cells.mlstm import MLSTMCell
from zoo.cells.slstm import SLSTMCell
from zoo.layers.recurrent import Recurrent


@keras.saving.register_keras_serializable(package="zoo")
class HeadwiseNorm(keras.layers.Layer):
    """Layer normalisation of each head's channels separately, per step (xLSTM's GroupNorm).

    Unlike `keras.layers.GroupNormalization` on (batch, time, channels) it never mixes time
    steps, so it stays causal.
    """

    def __init__(self, num_heads, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_units("num_heads", num_heads)
        self.epsilon = epsilon

    def build(self, input_shape):
        width = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(width,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(width,), initializer="zeros")

    def call(self, x):
        shape = ops.shape(x)
        heads = ops.reshape(x, (*shape[:-1], self.num_heads, -1))
        mean, variance = ops.moments(heads, axes=[-1], keepdims=True)
        heads = (heads - mean) * ops.rsqrt(variance + self.epsilon)
        return ops.reshape(heads, shape) * self.gamma + self.beta

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "epsilon": self.epsilon}


class _XLSTMBlock(keras.layers.Layer):
    """Shared argument checks, config and the residual-width check of the two blocks."""

    def __init__(self, num_heads=4, projection_factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_units("num_heads", num_heads)
        if not projection_factor > 0:
            raise ValueError(
                "Argument `projection_factor` must be positive. "
                f"Received: projection_factor={projection_factor!r}"
            )
        self.projection_factor = float(projection_factor)
        self.supports_masking = True

    def inner_width(self, width):
        """The up-projected width, rounded up to a multiple of the heads."""
        inner = round(self.projection_factor * width)
        return -(-inner // self.num_heads) * self.num_heads

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_initial_state(self, batch_size):
        return self.cell.get_initial_state(batch_size)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "projection_factor": self.projection_factor,
        }


@keras.saving.register_keras_serializable(package="zoo")
class SLSTMBlock(_XLSTMBlock):
    """Residual sLSTM block with a gated feed-forward network after it (post up-projection).

        y = x + HeadwiseNorm(sLSTM(LayerNorm(x)))
        out = y + W_down (GELU(W_a LayerNorm(y)) ⊙ W_b LayerNorm(y))

    Args:
        num_heads: heads of the sLSTM (must divide the input width).
        projection_factor: width of the feed-forward network over the input width (4/3 in
            the paper).
        **kwargs: keras.layers.Layer arguments.

    Example:
        x = SLSTMBlock(num_heads=4)(keras.ops.ones((2, 10, 64)))
    """

    def __init__(self, num_heads=4, projection_factor=4 / 3, **kwargs):
        super().__init__(num_heads, projection_factor, **kwargs)

    def build(self, input_shape):
        width = input_shape[-1]
        self.cell = SLSTMCell(width, num_heads=self.num_heads, name="slstm")
        self.rnn = Recurrent(self.cell, return_sequences=True, name="rnn")
        self.norm = keras.layers.LayerNormalization(name="norm")
        self.head_norm = HeadwiseNorm(self.num_heads, name="head_norm")
        self.ffn_norm = keras.layers.LayerNormalization(name="ffn_norm")
        self.up = keras.layers.Dense(2 * self.inner_width(width), name="up")
        self.down = keras.layers.Dense(width, name="down")
        self.rnn.build(input_shape)
        for layer in (self.norm, self.head_norm, self.ffn_norm):
            layer.build(input_shape)
        self.up.build(input_shape)
        self.down.build((*input_shape[:-1], self.inner_width(width)))

    def _feed_forward(self, y):
        a, b = ops.split(self.up(self.ffn_norm(y)), 2, axis=-1)
        return y + self.down(keras.activations.gelu(a) * b)

    def call(self, x, mask=None, training=False):
        y = x + self.head_norm(self.rnn(self.norm(x), mask=mask, training=training))
        return self._feed_forward(y)

    def step(self, x, states):
        """One step: x (batch, width) and the sLSTM states -> (output, new states)."""
        h, states = self.cell(self.norm(x), states)
        return self._feed_forward(x + self.head_norm(h)), states


@keras.saving.register_keras_serializable(package="zoo")
class MLSTMBlock(_XLSTMBlock):
    """Residual mLSTM block inside an up-projection (pre up-projection).

        a, z = split(W_up LayerNorm(x))                  (each projection_factor * width)
        out = x + W_down ((HeadwiseNorm(mLSTM(a)) + s ⊙ a) ⊙ swish(z))

    with a learnable per-channel skip s. Sequences run in the mLSTM's chunk-wise parallel
    form (`MLSTMCell.parallel`), steps in its recurrent form: both give the same outputs.

    Args:
        num_heads: heads of the mLSTM.
        projection_factor: up-projection factor (2 in the paper).
        chunk_size: chunk length of the parallel form.
        **kwargs: keras.layers.Layer arguments.

    Example:
        x = MLSTMBlock(num_heads=4)(keras.ops.ones((2, 10, 64)))
    """

    def __init__(self, num_heads=4, projection_factor=2.0, chunk_size=32, **kwargs):
        super().__init__(num_heads, projection_factor, **kwargs)
        self.chunk_size = check_units("chunk_size", chunk_size)

    def build(self, input_shape):
        width, inner = input_shape[-1], self.inner_width(input_shape[-1])
        self.norm = keras.layers.LayerNormalization(name="norm")
        self.up = keras.layers.Dense(2 * inner, name="up")
        self.cell = MLSTMCell(inner, num_heads=self.num_heads, name="mlstm")
        self.head_norm = HeadwiseNorm(self.num_heads, name="head_norm")
        self.down = keras.layers.Dense(width, name="down")
        self.norm.build(input_shape)
        self.up.build(input_shape)
        inner_shape = (*input_shape[:-1], inner)
        self.cell.build((input_shape[0], inner))
        self.head_norm.build(inner_shape)
        self.down.build(inner_shape)
        self.skip = self.add_weight(name="skip", shape=(inner,), initializer="ones")

    def _mix(self, x, a, z, h):
        return x + self.down((self.head_norm(h) + self.skip * a) * keras.activations.silu(z))

    def call(self, x, mask=None, training=False):
        a, z = ops.split(self.up(self.norm(x)), 2, axis=-1)
        h, _ = self.cell.parallel(a, mask=mask, chunk_size=self.chunk_size)
        return self._mix(x, a, z, h)

    def step(self, x, states):
        """One step: x (batch, width) and the mLSTM states -> (output, new states)."""
        a, z = ops.split(self.up(self.norm(x)), 2, axis=-1)
        h, states = self.cell(a, states)
        return self._mix(x, a, z, h), states

    def get_config(self):
        return {**super().get_config(), "chunk_size": self.chunk_size}
