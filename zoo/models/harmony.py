"""Four-part harmony as a token sequence: an SATB chord is five successive tokens, so a language
model over any cell gives the JOINT distribution of each chord (Walder 2016; Liang 2016).

A chorale at one step per quarter note (or finer) is the token sequence

    SEP, m_1, s_1, a_1, t_1, b_1, m_2, s_2, a_2, t_2, b_2, ...

with m_t a frame marker (FRAME, or FERMATA where a phrase ends) and s, a, t, b one token per
voice and pitch (or rest). Soprano comes first in a frame, so harmonising a melody is forcing
the soprano tokens and sampling the others (BachBot's trick). The grammar is fixed: every
token admits only one kind of successor, and the model's softmax runs over those alone, so
the chord's probability is the product of its tokens' and

    NLL per step = -sum_t [log p(m_t) + log p(s_t) + log p(a_t) + log p(t_t) + log p(b_t)]
                   / number of frames

is the exact negative log-likelihood per time step of the chords (and their fermatas).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from zoo.decoding import draw
from zoo.models.language_model import LanguageModel

VOICE_COUNT = 4  # soprano, alto, tenor, bass
SIZES = {
    "tiny": {"embedding_dim": 16, "units": 32, "layers": 1},
    "small": {"embedding_dim": 64, "units": 256, "layers": 2},
    "medium": {"embedding_dim": 128, "units": 512, "layers": 2},
}


@dataclass(frozen=True)
class SATBVocabulary:
    """Tokens of serialised SATB frames: 0 pads, 1 separates chorales, 2 and 3 start a frame
    (3 under a fermata), then one token per (voice, pitch), the pitch 0 (a rest) or
    lowest..highest:

        token = 4 + voice * (highest - lowest + 2) + (0 if rest else pitch - lowest + 1)
    """

    lowest: int = 36
    highest: int = 81

    PAD, SEP, FRAME, FERMATA = 0, 1, 2, 3

    @property
    def pitches(self):
        """Tokens per voice: a rest and every pitch in range."""
        return self.highest - self.lowest + 2

    @property
    def size(self):
        return 4 + VOICE_COUNT * self.pitches

    def encode(self, grid, fermatas=None):
        """SATB frames (n, 4) of MIDI pitches (0 = rest) and fermata flags (n,) -> tokens
        (5 n,): marker, soprano, alto, tenor, bass per frame. ValueError for a pitch out of
        range."""
        grid = np.asarray(grid, dtype=np.int64).reshape(-1, VOICE_COUNT)
        sounding = grid > 0
        if np.any(sounding & ((grid < self.lowest) | (grid > self.highest))):
            raise ValueError(
                f"Pitches must lie in {self.lowest}..{self.highest} (or be 0, a "
                f"rest). Received: {sorted(set(grid[sounding].tolist()))}"
            )
        index = np.where(sounding, grid - self.lowest + 1, 0)
        voices = 4 + np.arange(VOICE_COUNT) * self.pitches + index
        fermatas = np.zeros(len(grid), bool) if fermatas is None else np.asarray(fermatas, bool)
        markers = np.where(fermatas, self.FERMATA, self.FRAME)
        return np.concatenate([markers[:, None], voices], 1).reshape(-1).astype(np.int32)

    def decode(self, tokens):
        """Tokens (a whole number of frames after any SEP) -> (grid (n, 4), fermatas (n,))."""
        tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
        tokens = tokens[tokens != self.SEP].reshape(-1, VOICE_COUNT + 1)
        index = tokens[:, 1:] - 4 - np.arange(VOICE_COUNT) * self.pitches
        if np.any((index < 0) | (index >= self.pitches)):
            raise ValueError("Tokens out of the SATB grammar (a voice token out of place)")
        grid = np.where(index > 0, index - 1 + self.lowest, 0).astype(np.int16)
        return grid, tokens[:, 0] == self.FERMATA

    def metadata(self):
        """The layout as plain data, what a device encodes a melody with (an export's metadata;
        `from_metadata` reads it back)."""
        return {
            "lowest": self.lowest,
            "highest": self.highest,
            "pad": self.PAD,
            "sep": self.SEP,
            "frame": self.FRAME,
            "fermata": self.FERMATA,
            "voices": ["soprano", "alto", "tenor", "bass"],
            "token": "4 + voice * (highest - lowest + 2) + (0 if rest else pitch - lowest + 1)",
            "frame_tokens": "marker, soprano, alto, tenor, bass",
        }

    @classmethod
    def from_metadata(cls, metadata):
        """The vocabulary `metadata()` describes."""
        return cls(int(metadata["lowest"]), int(metadata["highest"]))

    def voice_tokens(self, voice):
        """The token ids of `voice` (0 soprano .. 3 bass)."""
        start = 4 + voice * self.pitches
        return np.arange(start, start + self.pitches)

    def grammar(self):
        """Boolean (size, size): allowed[w, v] when token v may follow token w. A marker is
        followed by a soprano token, soprano by alto, alto by tenor, tenor by bass, bass by a
        marker or SEP, SEP by a marker; padding by anything (it is never scored)."""
        allowed = np.zeros((self.size, self.size), bool)
        markers = [self.FRAME, self.FERMATA]
        allowed[self.PAD] = True
        allowed[self.SEP, markers] = True
        allowed[np.ix_(markers, self.voice_tokens(0))] = True
        for voice in range(1, VOICE_COUNT):
            allowed[np.ix_(self.voice_tokens(voice - 1), self.voice_tokens(voice))] = True
        allowed[np.ix_(self.voice_tokens(VOICE_COUNT - 1), [*markers, self.SEP])] = True
        return allowed


@keras.saving.register_keras_serializable(package="zoo")
class SerialChoraleModel(LanguageModel):
    """A `LanguageModel` over `SATBVocabulary` tokens whose softmax covers only the tokens the
    grammar allows after the current one:

        p(w_{t+1} | w_{<=t}) = softmax(W h_t + b + log G[w_t])      G = `grammar()`, 0/1

    so each chord's tokens (marker, soprano, alto, tenor, bass) are five categorical draws
    whose probabilities multiply to the chord's. The logits of disallowed tokens are -1e9
    (in an exported file too: the mask is part of `step` and `prefill`).

    Args:
        vocab_size: `SATBVocabulary().size` (the grammar is that vocabulary's).
        lowest, highest: the vocabulary's pitch range.
        **kwargs: see `LanguageModel` (cell, units, layers, embedding_dim, dropout).

    Reference: C. Walder, "Modelling Symbolic Music: Beyond the Piano Roll", ACML 2016;
    F. Liang, "BachBot: Automatic composition in the style of Bach chorales", 2016.
    """

    def __init__(self, vocab_size=None, lowest=36, highest=81, **kwargs):
        self.vocabulary = SATBVocabulary(lowest, highest)
        super().__init__(vocab_size or self.vocabulary.size, **kwargs)
        if self.vocab_size != self.vocabulary.size:
            raise ValueError(
                f"Argument `vocab_size` must be {self.vocabulary.size} for pitches "
                f"{lowest}..{highest}. Received: vocab_size={vocab_size}"
            )
        # A token's successors depend on its kind alone (PAD, SEP, marker or a voice): one
        # penalty row per kind and each token's kind, not a (vocab, vocab) matrix, which
        # would be a tenth of an exported float32 file.
        rows, kinds = np.unique(self.vocabulary.grammar(), axis=0, return_inverse=True)
        self.penalty = np.where(rows, 0.0, -1e9).astype(np.float32)  # (kinds, vocab)
        self.kind = kinds.reshape(-1).astype(np.int32)  # (vocab,)

    def _masked(self, ids, logits):
        kind = ops.take(ops.convert_to_tensor(self.kind), ops.cast(ids, "int32"), axis=0)
        return logits + ops.take(ops.convert_to_tensor(self.penalty), kind, axis=0)

    def call(self, ids, training=False):
        return self._masked(ids, super().call(ids, training=training))

    def step(self, ids, states):
        """One token: ids (batch,) and per-layer states -> masked logits (batch, vocab)."""
        logits, states = super().step(ids, states)
        return self._masked(ids, logits), states

    def prefill(self, ids, states):
        """Tokens (batch, time) from per-layer states -> masked logits and final states."""
        logits, states = super().prefill(ids, states)
        return self._masked(ids, logits), states

    def quality(self, outputs, inputs, reference):
        """Nats per quarter-note step (`nll_per_step`) of `outputs` on token windows `inputs`."""
        nll = nll_per_step(np.asarray(inputs)[:, 1:], np.asarray(outputs)[:, :-1], self.vocabulary)
        return "nats_per_step", nll

    def get_config(self):
        return {
            **super().get_config(),
            "lowest": self.vocabulary.lowest,
            "highest": self.vocabulary.highest,
        }


def nll_per_step(targets, logits, vocabulary=None):
    """NumPy: NLL in nats per frame of next-token `logits` (..., vocab) on `targets` (...):
    the sum over every scored token (all but PAD and SEP) divided by the frames (markers)."""
    vocabulary = vocabulary or SATBVocabulary()
    logits = np.asarray(logits, np.float64)
    log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    targets = np.asarray(targets)
    nll = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
    scored = targets > vocabulary.SEP
    frames = np.isin(targets, [vocabulary.FRAME, vocabulary.FERMATA]).sum()
    return float(np.where(scored, nll, 0.0).sum() / max(frames, 1))


@keras.saving.register_keras_serializable(package="zoo")
class SerialNLLPerStep(keras.metrics.Metric):
    """NLL per time step in nats over all frames seen: the summed NLL of every token but PAD
    and SEP, divided by the frame markers among the targets (exact over an epoch)."""

    def __init__(self, name="nll", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable((), initializer="zeros", name="total")
        self.count = self.add_variable((), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        vocabulary = SATBVocabulary
        targets = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        nll = -ops.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
        scored = ops.cast(targets > vocabulary.SEP, "float32")
        markers = ops.logical_or(targets == vocabulary.FRAME, targets == vocabulary.FERMATA)
        self.total.assign_add(ops.sum(nll * scored))
        self.count.assign_add(ops.sum(ops.cast(markers, "float32")))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


def serial_model(size="small", vocabulary=None, **overrides):
    """A `SerialChoraleModel` of the named size; `overrides` replace any of its arguments."""
    vocabulary = vocabulary or SATBVocabulary()
    if size not in SIZES:
        raise KeyError(f"Unknown size {size!r}. Known sizes: {', '.join(SIZES)}")
    return SerialChoraleModel(
        vocabulary.size, vocabulary.lowest, vocabulary.highest, **{**SIZES[size], **overrides}
    )


def vocabulary_of(model) -> SATBVocabulary:
    """The SATB vocabulary of a `SerialChoraleModel`, or of an exported file's step model
    (`zoo.export.TFLiteStepModel`) from the `satb_vocabulary` its export wrote into the file;
    ValueError for any other model."""
    if isinstance(getattr(model, "vocabulary", None), SATBVocabulary):
        return model.vocabulary
    described = (getattr(model, "metadata", None) or {}).get("satb_vocabulary")
    if described is None:
        raise ValueError(
            f"{type(model).__name__} is no SATB chorale model: it has no SATB vocabulary "
            "(nor an exported file's `satb_vocabulary` metadata)"
        )
    return SATBVocabulary.from_metadata(described)


def fill_chorale(model, template, temperature=1.0, seed=None, batch_size=1, allowed=None):
    """Complete serialised frames: `template` (frames, 5) of tokens (marker, soprano, alto,
    tenor, bass), -1 where the model draws the token. Forcing the soprano harmonises a melody;
    forcing the first frames continues an opening. Returns tokens (batch, frames, 5).

    `model` is anything with the step protocol (`zoo.models.protocol`) over SATB tokens
    (`vocabulary_of`): a `SerialChoraleModel`, or an exported .tflite file's `step` through
    `zoo.export.TFLiteStepModel` (its batch size, 1 by default). Tokens are read one at a time
    through `model.step` from SEP; a drawn token comes from the model's grammar-masked softmax
    (logits / `temperature`; 0 = the most likely), SEP excluded, so every frame is complete.
    `allowed(tokens, frame, column)`, if given, narrows a draw further: tokens (batch,
    frames, 5) drawn so far -> boolean (batch, vocab) of the tokens that may be drawn (None:
    any); a row that allows nothing is left unmasked.
    """
    vocabulary = vocabulary_of(model)
    template = check_template(template, vocabulary, temperature)
    step = model.step
    if isinstance(model, keras.Layer):  # one graph per token; a LiteRT file steps as it is
        import tensorflow as tf

        step = tf.function(model.step, reduce_retracing=True)
    rng = np.random.default_rng(seed)
    states = model.initial_state(batch_size)
    ids = np.full(batch_size, vocabulary.SEP, np.int32)
    out = np.zeros((batch_size, len(template), VOICE_COUNT + 1), np.int32)
    for frame, tokens in enumerate(template):
        for column, token in enumerate(tokens):
            logits, states = step(ids, states)
            if token >= 0:
                ids = np.full(batch_size, token, np.int32)
            else:
                logits = np.asarray(logits, np.float64)
                logits[:, vocabulary.SEP] = -np.inf
                narrow(logits, None if allowed is None else allowed(out, frame, column))
                ids = draw(logits, temperature, rng)
            out[:, frame, column] = ids
    return out


def check_template(template, vocabulary, temperature=1.0):
    """`template` as int64 (frames, 5), checked: ValueError naming the first given token that
    is not of its column's kind (marker, soprano, alto, tenor, bass), or a negative
    `temperature`."""
    template = np.asarray(template, dtype=np.int64).reshape(-1, VOICE_COUNT + 1)
    expected = [
        np.array([vocabulary.FRAME, vocabulary.FERMATA]),
        *(vocabulary.voice_tokens(v) for v in range(VOICE_COUNT)),
    ]
    for column, kind in enumerate(expected):
        given = template[:, column]
        wrong = (given != -1) & ~np.isin(given, kind)
        if wrong.any():
            raise ValueError(
                f"Frame {int(np.argmax(wrong))}, token {column}: "
                f"{int(given[wrong][0])} is not a "
                f"{('marker', 'soprano', 'alto', 'tenor', 'bass')[column]} token"
            )
    if temperature < 0:
        raise ValueError(f"`temperature` must be >= 0. Received: temperature={temperature}")
    return template


def narrow(logits, mask):
    """Set the logits (batch, vocab) outside `mask` (boolean, the same shape; None: all
    allowed) to -inf in place, except in a row that the mask allows nothing."""
    if mask is not None:
        logits[mask.any(-1)[:, None] & ~mask] = -np.inf
