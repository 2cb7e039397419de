"""Endless, seeded training streams whose batch n never depends on where the stream started;
and windows drawn from a finite dataset (an export's representative data)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def shuffled_order(count: int, seed: int) -> tf.data.Dataset:
    """Endless int64 indices into `count` items: pass p visits every item once, in the order
    `stateless_shuffle(range(count), (seed, p))`, so element n depends on nothing else."""
    items = tf.range(count, dtype=tf.int64)
    return tf.data.Dataset.counter().flat_map(lambda p: tf.data.Dataset.from_tensor_slices(
        tf.random.experimental.stateless_shuffle(items, seed=tf.stack(
            [tf.cast(seed, tf.int64), p]))))


def shuffled_batches(count: int, batch_size: int, seed: int, start_step: int = 0):
    """`shuffled_order` in batches of (batch_size,) indices (batches straddle passes), from
    batch `start_step` on: batch n is the same whether the stream starts at 0 or at n, which is
    what makes a resumed run see the batches of an uninterrupted one."""
    return shuffled_order(count, seed).batch(batch_size, drop_remainder=True).skip(start_step)


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
