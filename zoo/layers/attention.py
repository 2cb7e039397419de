"""Attention over an encoder's outputs (the memory): additive (Bahdanau) and multiplicative (Luong).

Both layers compute, for queries q_t (decoder outputs) and memory h_s (encoder outputs),

    a_t(s) = softmax_s(score(q_t, h_s))      over the non-padded source positions s
    c_t    = Σ_s a_t(s) h_s                  the context vector

and differ only in `score`. The key part of the score depends on the memory alone, so
decoders compute it once per sentence with `keys(memory)` and pass it to every step.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from zoo.cells.base import check_units
from zoo.registry import ATTENTIONS


class _Attention(keras.layers.Layer):
    """Masked softmax attention; subclasses define `score(query, keys)`."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = check_units("units", units)
        self.key_dense = keras.layers.Dense(self.units, use_bias=False, name="key")

    def call(self, query, memory, memory_mask=None, keys=None):
        """Context vectors and attention weights.

        Args:
            query: (batch, units_q) for one step or (batch, time, units_q).
            memory: (batch, source_time, units_m).
            memory_mask: (batch, source_time) booleans, True at real (non-padded) positions.
            keys: `keys(memory)`, if already computed.

        Returns:
            (context, weights): (batch, [time,] units_m) and (batch, [time,] source_time).
        """
        one_step = len(query.shape) == 2
        if one_step:
            query = query[:, None, :]
        if keys is None:
            keys = self.keys(memory)
        scores = self.score(query, keys)
        if memory_mask is not None:
            floor = -65500.0 if scores.dtype == "float16" else -1e9
            scores = ops.where(ops.cast(memory_mask, "bool")[:, None, :], scores, floor)
        weights = ops.softmax(scores, axis=-1)
        context = ops.matmul(weights, ops.cast(memory, weights.dtype))
        if one_step:
            return context[:, 0], weights[:, 0]
        return context, weights

    def keys(self, memory):
        """The memory's part of the score, W_k h_s: (batch, source_time, units)."""
        return self.key_dense(memory)

    def compute_mask(self, query, memory, memory_mask=None, keys=None):
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@ATTENTIONS.register("bahdanau")
class BahdanauAttention(_Attention):
    """Additive attention: score(q_t, h_s) = vᵀ tanh(W_q q_t + W_k h_s).

    Args:
        units: width of the hidden layer of the score.

    Example:
        context, weights = BahdanauAttention(128)(decoder_outputs, encoder_outputs, mask)

    Paper: D. Bahdanau, K. Cho, Y. Bengio, "Neural Machine Translation by Jointly Learning to
    Align and Translate", ICLR 2015.
    """

    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        self.query_dense = keras.layers.Dense(self.units, use_bias=False, name="query")

    def build(self, query_shape, memory_shape, *args, **kwargs):
        self.query_dense.build(query_shape)
        if not self.key_dense.built:
            self.key_dense.build(memory_shape)
        self.v = self.add_weight(name="v", shape=(self.units,), initializer="glorot_uniform")

    def score(self, query, keys):
        """Scores (batch, time, source_time): vᵀ tanh(W_q q_t + W_k h_s), `keys` = W_k h_s."""
        hidden = ops.tanh(self.query_dense(query)[:, :, None, :] + keys[:, None, :, :])
        return ops.einsum("btsu,u->bts", hidden, ops.cast(self.v, hidden.dtype))


@ATTENTIONS.register("luong")
class LuongAttention(_Attention):
    """Multiplicative ("general") attention: score(q_t, h_s) = q_tᵀ W h_s, divided by
    sqrt(units) when `scaled` (Vaswani et al. 2017's scaled dot product).

    Args:
        units: width of the queries (W maps the memory to it).
        scaled: divide the scores by sqrt(units), so that they start near zero whatever the
            width and the size of the encoder's outputs.

    Example:
        context, weights = LuongAttention(256)(decoder_outputs, encoder_outputs, mask)

    Paper: M.-T. Luong, H. Pham, C. D. Manning, "Effective Approaches to Attention-based
    Neural Machine Translation", EMNLP 2015.
    """

    def __init__(self, units, scaled=False, **kwargs):
        super().__init__(units, **kwargs)
        self.scaled = bool(scaled)

    def build(self, query_shape, memory_shape, *args, **kwargs):
        if query_shape[-1] != self.units:
            raise ValueError(
                f"LuongAttention needs queries of width units={self.units}. "
                f"Received: query_shape={tuple(query_shape)}"
            )
        if not self.key_dense.built:
            self.key_dense.build(memory_shape)

    def score(self, query, keys):
        """Scores (batch, time, source_time): q_tᵀ W h_s (`keys` = W h_s), over sqrt(units) if
        `scaled`."""
        scores = ops.matmul(query, ops.transpose(keys, (0, 2, 1)))
        return scores / math.sqrt(self.units) if self.scaled else scores

    def get_config(self):
        return {**super().get_config(), "scaled": self.scaled}


@ATTENTIONS.register("scaled_luong")
class ScaledLuongAttention(LuongAttention):
    """`LuongAttention` with `scaled=True`: score(q_t, h_s) = q_tᵀ W h_s / sqrt(units)."""

    def __init__(self, units, scaled=True, **kwargs):
        super().__init__(units, scaled=scaled, **kwargs)
