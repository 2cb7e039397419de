"""Batches of variable-length multivariate sequences for the `classify` task: zero-padded
arrays, cut per batch to the longest sequence (rounded up to a few bucket sizes so the training
step is traced a few times, not once per batch), and per-class weights."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipelines.streams import shuffled_batches


def padded(sequences, multiple=1):
    """(features (N, T, C) float32 zero-padded, lengths (N,) int32) of sequences; T is the
    longest length rounded up to a multiple of `multiple`."""
    lengths = np.array([len(s) for s in sequences], np.int32)
    steps = -(-int(lengths.max()) // multiple) * multiple
    features = np.zeros((len(sequences), steps, sequences[0].shape[1]), np.float32)
    for row, sequence in zip(features, sequences):
        row[: len(sequence)] = sequence
    return features, lengths


# Batches are cut to their longest sequence rounded up to a multiple of this many steps: few
# distinct shapes, so the training step is traced a few times, not once per batch.
BUCKET = 32


def _trimmed(features, lengths, labels, *rest):
    """A batch cut to its longest sequence (rounded up to a multiple of BUCKET steps: the
    arrays are padded to one)."""
    steps = -(-tf.reduce_max(lengths) // BUCKET) * BUCKET
    return ({"features": features[:, :steps], "lengths": lengths}, labels, *rest)


def train_stream(features, lengths, labels, weights, batch_size, seed, start_step=0):
    """Endless (inputs, labels, class weights) batches in `streams.shuffled_batches` order."""
    tensors = [tf.constant(a) for a in (features, lengths, labels, weights)]
    return (
        shuffled_batches(len(labels), batch_size, seed, start_step)
        .map(
            lambda index: _trimmed(*(tf.gather(t, index) for t in tensors)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )


def eval_dataset(features, lengths, labels, batch_size) -> tf.data.Dataset:
    """Every sequence once, in order: (inputs, labels) batches."""
    return (
        tf.data.Dataset.from_tensor_slices((features, lengths, labels))
        .batch(batch_size)
        .map(_trimmed)
        .prefetch(tf.data.AUTOTUNE)
    )


def class_weights(labels, classes: int) -> np.ndarray:
    """Per-class weights n / (K n_c) (1 for a class absent from `labels`)."""
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    return np.where(counts > 0, len(labels) / (classes * np.maximum(counts, 1)), 1.0)


def sequences_of(dataset, limit=None) -> list[tuple]:
    """(features (T, C), length, label) of every sequence of a dataset of batches."""
    found = []
    for inputs, labels, *_ in dataset:
        for x, n, y in zip(
            np.asarray(inputs["features"]), np.asarray(inputs["lengths"]), np.asarray(labels)
        ):
            found.append((x[:n], int(n), int(y)))
    return found[:limit]
