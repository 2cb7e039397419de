"""The `harmony` task's data as whole frames, for `--head=frame` (`zoo.models.frame_chorale`):
the same chorales, splits, transpositions and tokens as the serialised stream, each chorale's
SEP made a frame of its own (SEP, then PAD for the voices), so that a window of `seq_len`
frames holds the tokens of a serialised window of `5 seq_len` tokens and the same frames are
scored in the same unit."""

from __future__ import annotations

import numpy as np

from pipelines.streams import token_window_stream
from zoo.models.frame_chorale import FRAME_WIDTH, frame_of_separator


def as_frames(sequence):
    """A serialised chorale (SEP, then 5 tokens a frame) -> frames (1 + n, 5), SEP's first."""
    sequence = np.asarray(sequence, np.int32)
    return np.concatenate([frame_of_separator()[None], sequence[1:].reshape(-1, FRAME_WIDTH)])


def _with_next(window, targets):
    """(frames 0..T-1, frames 1..T) -> (frames 0..T, frames 1..T): the model reads the frames
    it scores (its head reads each frame's earlier tokens) and the one before them."""
    import tensorflow as tf

    return tf.concat([window, targets[:, -1:]], 1), targets


def frame_window_stream(sequences, seq_len, batch_size, seed, start_step=0):
    """Endless (frames (batch, seq_len + 1, 5), targets (batch, seq_len, 5)) batches of the
    serialised `sequences` as frames, in `token_window_stream`'s seeded order."""
    frames = np.concatenate([as_frames(s) for s in sequences])
    return token_window_stream(frames, seq_len, batch_size, seed, start_step).map(_with_next)


def frame_batches(sequences, batch_size):
    """Whole chorales once, in order, as padded (frames, targets) batches: frames (SEP's
    first) (batch, 1 + n, 5), targets the frames but the first; PAD frames are never scored."""
    import tensorflow as tf

    if not sequences:
        raise ValueError("No chorales to batch (an empty split?)")
    pairs = [(f, f[1:]) for f in map(as_frames, sequences)]
    spec = tf.TensorSpec((None, FRAME_WIDTH), tf.int32)
    data = tf.data.Dataset.from_generator(lambda: iter(pairs), output_signature=(spec, spec))
    return (
        data.padded_batch(batch_size)
        .apply(tf.data.experimental.assert_cardinality(-(-len(pairs) // batch_size)))
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )
