"""Endless, seeded training streams whose batch n never depends on where the stream started
(indices, and windows of a token sequence: text, melodies); and windows drawn from a finite
dataset (an export's representative data)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def shuffled_order(count: int, seed: int) -> tf.data.Dataset:
    """Endless int64 indices into `count` items: pass p visits every item once, in the order
    `stateless_shuffle(range(count), (seed, p))`, so element n depends on nothing else."""
    items = tf.range(count, dtype=tf.int64)
    return tf.data.Dataset.counter().flat_map(
        lambda p: tf.data.Dataset.from_tensor_slices(
            tf.random.experimental.stateless_shuffle(
                items, seed=tf.stack([tf.cast(seed, tf.int64), p])
            )
        )
    )


def shuffled_batches(count: int, batch_size: int, seed: int, start_step: int = 0):
    """`shuffled_order` in batches of (batch_size,) indices (batches straddle passes), from
    batch `start_step` on: batch n is the same whether the stream starts at 0 or at n, which is
    what makes a resumed run see the batches of an uninterrupted one."""
    return shuffled_order(count, seed).batch(batch_size, drop_remainder=True).skip(start_step)


def window_starts(ids, seq_len):
    """Start offsets of the non-overlapping windows of seq_len + 1 tokens."""
    return np.arange(0, len(ids) - seq_len, seq_len, dtype=np.int64)


def _to_examples(ids, seq_len):
    ids = tf.constant(ids)
    offsets = tf.range(seq_len + 1, dtype=tf.int64)

    def gather(starts):
        window = tf.gather(ids, starts[:, None] + offsets)
        return window[:, :-1], window[:, 1:]

    return gather


def token_window_stream(ids, seq_len, batch_size, seed, start_step=0, random_crops=False):
    """Endless (inputs, targets) batches of shuffled windows of the token sequence `ids`,
    (batch, seq_len) each, in the order of `shuffled_batches` (batch n is the same from any
    `start_step`).

    The text is cut into slots of seq_len tokens. A window starts at the start of its slot, or
    with `random_crops` at a uniform offset into it drawn afresh for each batch (seeded by
    (seed, n)): every pass then sees other windows and other first tokens read from zero
    states, which the model cannot memorise as easily.
    """
    if not random_crops:
        starts, span = window_starts(ids, seq_len), 1
    else:  # the last slot must still hold a whole window at its largest offset
        starts = np.arange(0, max(1, len(ids) - 2 * seq_len + 1), seq_len, dtype=np.int64)
        span = min(seq_len, len(ids) - seq_len - int(starts[-1]))
    starts, examples = tf.constant(starts), _to_examples(ids, seq_len)

    def batch(n, slots):
        offsets = tf.random.stateless_uniform(
            [batch_size],
            seed=tf.stack([tf.cast(seed, tf.int64), n]),
            minval=0,
            maxval=span,
            dtype=tf.int64,
        )
        return examples(tf.gather(starts, slots) + offsets)

    return (
        shuffled_batches(len(starts), batch_size, seed, start_step)
        .enumerate(start_step)
        .map(batch, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def token_windows(ids, seq_len, batch_size) -> tf.data.Dataset:
    """Every window once, in order, batched (a gather per batch: cheaper than a cache that
    `validation_steps` would leave half-read)."""
    return (
        tf.data.Dataset.from_tensor_slices(window_starts(ids, seq_len))
        .batch(batch_size)
        .map(_to_examples(ids, seq_len))
        .prefetch(tf.data.AUTOTUNE)
    )


def representative_windows(dataset, count, seq_len):
    """`count` input windows (1, seq_len) from a dataset of (inputs, targets) batches; inputs
    given as {"features", "lengths"} (utterances) are padded with zeros to seq_len frames."""
    windows = []
    for inputs, _ in dataset:
        if isinstance(inputs, dict):
            inputs = np.asarray(inputs["features"])[:, :seq_len]
            inputs = np.pad(inputs, [(0, 0), (0, seq_len - inputs.shape[1]), (0, 0)])
        inputs = np.asarray(inputs)
        if inputs.shape[1] < seq_len:
            raise ValueError(
                f"The pipeline's windows hold {inputs.shape[1]} steps, fewer than "
                f"seq_len={seq_len}; export with a smaller --seq_len"
            )
        windows.extend(row[None, :seq_len] for row in inputs)
        if len(windows) >= count:
            return windows[:count]
    if not windows:
        raise ValueError("The run's validation split holds no window to calibrate on")
    return windows
