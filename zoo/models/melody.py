"""A melody model: a language model over note events, each event a (pitch, duration) pair.

An event is one categorical token, so the model is `LanguageModel` and every decoder of
`zoo.decoding` (temperature, top-k, top-p, beam search) generates melodies unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from zoo.layers.recurrent import stack_initial_state
from zoo.models.language_model import LanguageModel

# Note lengths in quarter notes: 16th, 8th triplet, 8th, quarter triplet, dotted 8th, quarter,
# dotted quarter, half, dotted half, whole. Others snap to the nearest (on a log scale).
DURATIONS = (0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
REST = 0  # the pitch of a rest event
# Named sizes: dicts of `LanguageModel` arguments.
SIZES = {
    "tiny": {"embedding_dim": 16, "units": 32, "layers": 1},
    "small": {"embedding_dim": 64, "units": 256, "layers": 2},
}


@dataclass(frozen=True)
class EventVocabulary:
    """Tokens of note events: 0 pads, 1 separates tunes, then one token per (pitch, duration).

        token = 2 + pitch_index * len(durations) + duration_index

    with pitch_index 0 for a rest and `pitch - lowest + 1` for MIDI pitches lowest..highest.
    Events are int arrays (n, 2) of (MIDI pitch or REST, duration index).
    """

    lowest: int = 48
    highest: int = 96
    durations: tuple = DURATIONS

    PAD = 0
    END = 1

    @property
    def size(self):
        return 2 + (self.highest - self.lowest + 2) * len(self.durations)

    def duration_index(self, quarters):
        """Index of the nearest of `durations` to each length in quarter notes (log scale)."""
        quarters = np.maximum(np.asarray(quarters, dtype=float), 1e-6)
        return np.abs(np.log(quarters)[..., None] - np.log(self.durations)).argmin(-1)

    def encode(self, events):
        """Events (n, 2) -> tokens (n,). Pitches must lie in lowest..highest (see `fold`)."""
        events = np.asarray(events, dtype=np.int64).reshape(-1, 2)
        pitch, duration = events[:, 0], events[:, 1]
        sounding = pitch != REST
        if np.any(sounding & ((pitch < self.lowest) | (pitch > self.highest))):
            raise ValueError(
                f"Pitches must lie in {self.lowest}..{self.highest} (or be a rest). "
                f"Received: {sorted(set(pitch[sounding].tolist()))}"
            )
        index = np.where(sounding, pitch - self.lowest + 1, 0)
        return (2 + index * len(self.durations) + duration).astype(np.int32)

    def decode(self, tokens):
        """Tokens -> events (n, 2); padding and separators are dropped."""
        tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
        tokens = tokens[tokens >= 2] - 2
        index, duration = np.divmod(tokens, len(self.durations))
        pitch = np.where(index == 0, REST, index - 1 + self.lowest)
        return np.stack([pitch, duration], axis=1).astype(np.int32)

    def gaps(self):
        """Length in quarter notes of every token's event (0 for padding and separators)."""
        return np.concatenate([[0.0, 0.0], np.tile(self.durations, self.highest - self.lowest + 2)])

    def fold(self, pitches):
        """Pitches moved by octaves into lowest..highest (rests stay rests)."""
        pitches = np.asarray(pitches, dtype=np.int64)
        folded = pitches.copy()
        while np.any(low := (folded != REST) & (folded < self.lowest)):
            folded[low] += 12
        while np.any(high := folded > self.highest):
            folded[high] -= 12
        return folded


@keras.saving.register_keras_serializable(package="zoo")
class TimeAwareMelodyModel(LanguageModel):
    """A melody `LanguageModel` whose every recurrent layer also reads the time since the
    previous event, Δt_t = length of event t-1 in quarter notes (0 at the start and after a
    tune separator), as its last input feature: the input convention of `tlstm`.

        x^l_t = [h^{l-1}_t, Δt_t]  (h^0_t = E[w_t])

    Events sit at irregular times (a sixteenth or a whole note apart), which the T-LSTM uses to
    discount its short-term memory. Any other cell reads Δt as one more feature.

    Args:
        gaps: the event length of every token (`EventVocabulary.gaps()`).
        **kwargs: see `LanguageModel`.
    """

    def __init__(self, vocab_size, gaps, **kwargs):
        super().__init__(vocab_size, **kwargs)
        self.gaps = [float(g) for g in gaps]
        if len(self.gaps) != vocab_size:
            raise ValueError(
                f"Argument `gaps` needs one length per token ({vocab_size}). "
                f"Received: {len(self.gaps)} lengths"
            )

    def _gap(self, ids):
        table = ops.convert_to_tensor(self.gaps, self.compute_dtype)
        return ops.take(table, ops.cast(ids, "int32"))[..., None]

    def call(self, ids, training=False):
        gap = self._gap(ids)
        delta_t = ops.pad(gap[:, :-1], [[0, 0], [1, 0], [0, 0]])  # the previous event's length
        x = self.dropout(self.embedding(ids), training=training)
        for layer in self.recurrent:
            x = ops.concatenate([x, delta_t], -1)
            x = self.dropout(layer(x, training=training), training=training)
        return self.head(x)

    def initial_state(self, batch_size):
        """Zero states of every layer, then [Δt of the next step]."""
        return [
            *stack_initial_state(self.recurrent, batch_size),
            [ops.zeros((batch_size, 1), self.compute_dtype)],
        ]

    def step(self, ids, states):
        *states, (delta_t,) = states
        x, new_states = self.embedding(ids), []
        for layer, state in zip(self.recurrent, states):
            x, state = layer.step(ops.concatenate([x, delta_t], -1), state)
            new_states.append(list(state))
        return self.head(x), [*new_states, [self._gap(ids)]]

    def prefill(self, ids, states):
        *states, (delta_t,) = states
        gap = self._gap(ids)
        delta_t = ops.concatenate([delta_t[:, None], gap[:, :-1]], 1)
        x, new_states = self.embedding(ids), []
        for layer, state in zip(self.recurrent, states):
            x, *state = layer(
                ops.concatenate([x, delta_t], -1), initial_state=list(state), return_state=True
            )
            new_states.append(state)
        return self.head(x), [*new_states, [gap[:, -1]]]

    def get_config(self):
        return {**super().get_config(), "gaps": self.gaps}


def melody_model(vocabulary=None, size="small", time_aware=False, **overrides):
    """A `LanguageModel` over the tokens of `vocabulary` (an `EventVocabulary`); with
    `time_aware` (automatic for `tlstm`), a `TimeAwareMelodyModel`."""
    vocabulary = vocabulary or EventVocabulary()
    if size not in SIZES:
        raise KeyError(f"Unknown size {size!r}. Known sizes: {', '.join(SIZES)}")
    arguments = {**SIZES[size], **overrides}
    if time_aware or arguments.get("cell") == "tlstm":
        return TimeAwareMelodyModel(vocabulary.size, vocabulary.gaps(), **arguments)
    return LanguageModel(vocabulary.size, **arguments)
