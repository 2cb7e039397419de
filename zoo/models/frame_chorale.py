"""Four-part harmony one chord per recurrent step: the recurrence reads whole SATB frames, and an
autoregressive head within the frame (NADE/MADE-style) gives the JOINT distribution of the next
chord as the product of its five tokens' conditionals (Boulanger-Lewandowski et al. 2012):

    x_t = [E[m_t], E[s_t], E[a_t], E[t_t], E[b_t]]            (the frame's tokens, concatenated)
    h_t = cell(x_t, h_{t-1})                                    (any zoo cell, stacked)
    p(y_k | h_t, y_<k) = softmax_k(W_k [h_t, E[y_0], ..., E[y_{k-1}]] + c_k)

or, with `head_units` > 0 (the default, 64), through a tanh layer of its own per position (as
NADE's hidden layer), so that the earlier tokens and the context interact (a cadence: the
fermata marker with the key in h_t):

    p(y_k | h_t, y_<k) = softmax_k(V_k tanh(W_k [h_t, E[y_0], ..., E[y_{k-1}]] + c_k) + d_k)

with y = (m, s, a, t, b) the tokens of frame t+1 (`SATBVocabulary`) and softmax_k over the
tokens allowed at position k only (the markers FRAME, FERMATA and SEP; the pitches and rest of
one voice), so

    NLL per step = -sum_t sum_k log p(y_{t+1,k} | h_t, y_{t+1,<k}) / number of frames

is the exact negative log-likelihood per time step of the chords, in the unit of the serialised
model (`zoo.models.harmony`). The recurrence runs once per chord, five times fewer steps than the
serialised model's; soprano comes first in a frame, so harmonising a melody is forcing the
soprano and drawing the rest (`fill_frames`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from zoo import cells
from zoo.cells.base import check_units
from zoo.layers.recurrent import stack_initial_state, stack_layers, stack_sequence, stack_step
from zoo.models.harmony import SIZES, VOICE_COUNT, SATBVocabulary
from zoo.models.protocol import StepModel

FRAME_WIDTH = VOICE_COUNT + 1  # marker, soprano, alto, tenor, bass
NEGATIVE = -1e9  # the logit of a token the position does not admit


def frame_of_separator(vocabulary=None):
    """The frame that starts a chorale (and ends the one before): SEP, then PAD for the voices."""
    vocabulary = vocabulary or SATBVocabulary()
    return np.array([vocabulary.SEP] + [vocabulary.PAD] * VOICE_COUNT, np.int32)


def position_tokens(vocabulary, position):
    """(first id, count) of the tokens admitted at `position` of a frame: SEP, FRAME and
    FERMATA for the marker (0), the rest and the pitches of voice `position - 1` after it."""
    if position == 0:
        return vocabulary.SEP, 3
    return int(vocabulary.voice_tokens(position - 1)[0]), vocabulary.pitches


@keras.saving.register_keras_serializable(package="zoo")
class FrameChoraleModel(keras.Model, StepModel):
    """Frames of `SATBVocabulary` tokens -> the next frame's token logits, one recurrent step per
    frame and an autoregressive head within it (see the module docstring).

        logits = model(frames)          # frames (batch, T + 1, 5) -> (batch, T, 5, vocab):
                                        #   the logits of frames 1..T, teacher-forced
        context, states = model.step(frame, states)          # frame (batch, 5) -> (batch, U)
        logits = model.token_logits(context, next_frame, k)  # (batch, vocab), reads y_<k only

    Logits of tokens a position does not admit are -1e9.

    Args:
        lowest, highest: the vocabulary's pitch range.
        cell: name of a registered cell (`zoo.cells.names()`).
        units: hidden size of every recurrent layer.
        layers: number of stacked recurrent layers.
        embedding_dim: width of a token's embedding (a frame reads five, concatenated).
        dropout: dropout rate on the frame embedding and after every recurrent layer.
        cell_kwargs: extra arguments of the cell.
        head_units: width of each position's tanh layer in the head; 0: none (logits linear
            in the context and the earlier tokens).

    Reference: N. Boulanger-Lewandowski, Y. Bengio, P. Vincent, "Modeling Temporal
    Dependencies in High-Dimensional Sequences: Application to Polyphonic Music Generation
    and Transcription", ICML 2012 (RNN-NADE); M. Germain et al., "MADE: Masked Autoencoder
    for Distribution Estimation", ICML 2015.
    """

    def __init__(
        self,
        lowest=36,
        highest=81,
        cell="lstm",
        units=256,
        layers=1,
        embedding_dim=32,
        dropout=0.0,
        cell_kwargs=None,
        head_units=64,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("units", units), ("layers", layers), ("embedding_dim", embedding_dim)):
            check_units(name, value)
        if head_units < 0:
            raise ValueError(f"Argument `head_units` must be >= 0. Received: {head_units}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Argument `dropout` must be in [0, 1). Received: dropout={dropout}")
        if cells.get(cell).input_rank != 1:
            raise ValueError(
                f"Cell {cell!r} takes inputs of rank {cells.get(cell).input_rank} per step, "
                "not frame vectors."
            )
        self.vocabulary = SATBVocabulary(lowest, highest)
        self.cell, self.units, self.num_layers = cell, units, layers
        self.embedding_dim, self.dropout_rate = embedding_dim, dropout
        self.cell_kwargs, self.head_units = dict(cell_kwargs or {}), head_units
        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(
            self.vocabulary.size, embedding_dim, dtype=policy, name="embedding"
        )
        self.recurrent = stack_layers(cell, units, layers, self.cell_kwargs, policy)
        self.dropout = keras.layers.Dropout(dropout, dtype=policy, name="dropout")
        # One softmax per position over the tokens it admits; float32 keeps them stable.
        self.hidden = [
            keras.layers.Dense(head_units, "tanh", dtype="float32", name=f"hidden_{k}")
            for k in range(FRAME_WIDTH if head_units else 0)
        ]
        self.heads = [
            keras.layers.Dense(
                position_tokens(self.vocabulary, k)[1], dtype="float32", name=f"token_{k}"
            )
            for k in range(FRAME_WIDTH)
        ]

    step_input = ("int32", (FRAME_WIDTH,))  # a frame of five token ids per step

    def _frame_vectors(self, frames, training=False):
        """(..., 5) ids -> (..., 5 E): the tokens' embeddings side by side."""
        x = self.embedding(ops.cast(frames, "int32"))
        x = ops.reshape(x, (*ops.shape(x)[:-2], FRAME_WIDTH * self.embedding_dim))
        return self.dropout(x, training=training)

    def contexts(self, frames, training=False):
        """The recurrence over frames (batch, T, 5) from zero states: h (batch, T, units)."""
        x = self._frame_vectors(frames, training)
        for layer in self.recurrent:
            x = self.dropout(layer(x, training=training), training=training)
        return x

    def token_logits(self, context, frame, position):
        """Logits (..., vocab) of token `position` of a frame given the context h (..., units)
        and the frame's tokens before `position` (`frame` (..., 5): later tokens unread)."""
        inputs = [ops.cast(context, "float32")]
        if position:
            prefix = ops.cast(self.embedding(ops.cast(frame[..., :position], "int32")), "float32")
            inputs.append(
                ops.reshape(prefix, (*ops.shape(prefix)[:-2], position * self.embedding_dim))
            )
        x = ops.concatenate(inputs, -1)
        small = self.heads[position](self.hidden[position](x) if self.hidden else x)
        first, count = position_tokens(self.vocabulary, position)
        pad = [(0, 0)] * (len(small.shape) - 1) + [(first, self.vocabulary.size - first - count)]
        return ops.pad(small, pad, constant_values=NEGATIVE)

    def head(self, context, frames):
        """Logits (..., 5, vocab) of every token of `frames` (..., 5), teacher-forced."""
        return ops.stack(
            [self.token_logits(context, frames, k) for k in range(FRAME_WIDTH)], axis=-2
        )

    def call(self, frames, training=False):
        return self.head(self.contexts(frames[:, :-1], training), frames[:, 1:])

    def initial_state(self, batch_size):
        """Zero states of every layer: a list (one per layer) of lists of (batch, size)."""
        return stack_initial_state(self.recurrent, batch_size)

    def step(self, frame, states):
        """One frame (batch, 5) and per-layer states -> the context of the next frame's head
        (batch, units) and the new states."""
        return stack_step(self.recurrent, self._frame_vectors(frame), states)

    def prefill(self, frames, states):
        """Frames (batch, T, 5) from per-layer states -> contexts (batch, T, units) and the
        final states: `step` over the time axis, in the fast loop."""
        return stack_sequence(self.recurrent, self._frame_vectors(frames), states)

    def get_config(self):
        return {
            **super().get_config(),
            "lowest": self.vocabulary.lowest,
            "highest": self.vocabulary.highest,
            "cell": self.cell,
            "units": self.units,
            "layers": self.num_layers,
            "embedding_dim": self.embedding_dim,
            "dropout": self.dropout_rate,
            "cell_kwargs": self.cell_kwargs,
            "head_units": self.head_units,
        }


def frame_model(size="small", vocabulary=None, **overrides):
    """A `FrameChoraleModel` of the named size (`zoo.models.harmony.SIZES`); `overrides`
    replace any of its arguments."""
    vocabulary = vocabulary or SATBVocabulary()
    if size not in SIZES:
        raise KeyError(f"Unknown size {size!r}. Known sizes: {', '.join(SIZES)}")
    return FrameChoraleModel(vocabulary.lowest, vocabulary.highest, **{**SIZES[size], **overrides})


def fill_frames(model, template, temperature=1.0, seed=None, batch_size=1, allowed=None):
    """`zoo.models.harmony.fill_chorale` for a `FrameChoraleModel`: complete `template`
    (frames, 5), -1 where the model draws a token, one recurrent step per frame and the head's
    tokens in order (marker, soprano, alto, tenor, bass), a forced token read as given. A drawn
    marker is never SEP, so every frame is complete; `allowed` narrows a draw as in
    `fill_chorale`. Returns tokens (batch, frames, 5)."""
    import tensorflow as tf

    from zoo.decoding import draw
    from zoo.models.harmony import check_template, narrow

    vocabulary = model.vocabulary
    template = check_template(template, vocabulary, temperature)
    step = tf.function(model.step, reduce_retracing=True)
    rng = np.random.default_rng(seed)
    states = model.initial_state(batch_size)
    previous = np.tile(frame_of_separator(vocabulary), (batch_size, 1))
    out = np.zeros((batch_size, len(template), FRAME_WIDTH), np.int32)
    for index, tokens in enumerate(template):
        context, states = step(previous, states)
        frame = out[:, index]  # a view: the head reads the tokens drawn so far, zeros after
        for k, token in enumerate(tokens):
            if token >= 0:
                frame[:, k] = token
            else:
                logits = np.asarray(model.token_logits(context, frame, k), np.float64)
                logits[:, vocabulary.SEP] = -np.inf
                narrow(logits, None if allowed is None else allowed(out, index, k))
                frame[:, k] = draw(logits, temperature, rng)
        previous = frame.copy()
    return out
