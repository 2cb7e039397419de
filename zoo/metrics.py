"""Scores of a model's outputs in NumPy, in the units the zoo reports: what an export's quality
gate compares between Keras and a converted file (`zoo.models.protocol.StepModel.quality`)."""

from __future__ import annotations

import numpy as np


def log_probabilities(outputs):
    """Log-probabilities from logits or from probabilities (a softmax output layer)."""
    outputs = np.asarray(outputs, np.float64)
    if outputs.min() >= 0 and np.allclose(outputs.sum(-1), 1.0, atol=1e-3):
        return np.log(np.maximum(outputs, 1e-12))
    shifted = outputs - outputs.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def bits_per_token(outputs, tokens) -> float:
    """Mean -log2 p(tokens[:, t+1] | tokens[:, :t+1]) from next-token outputs (B, T, V)."""
    log_probs = log_probabilities(outputs)[:, :-1]
    targets = np.asarray(tokens)[:, 1:, None]
    return float(-np.take_along_axis(log_probs, targets, -1).mean() / np.log(2))


def nats_per_step(outputs, frames) -> float:
    """Mean -log p(frames[:, t+1] | frames[:, :t+1]) in nats, summed over a frame's units:
    next-frame logits (B, T, ...) scored against binary frames (piano rolls, pixels)."""
    logits = np.asarray(outputs, np.float64)[:, :-1]
    targets = np.asarray(frames, np.float64)[:, 1:]
    nll = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return float(nll.reshape(*nll.shape[:2], -1).sum(-1).mean())


def kl_bits_per_step(reference, outputs) -> float:
    """Mean KL(p_reference || p_outputs) in bits per step, between the distributions over the
    last axis (logits or probabilities): how far a file moves a model's own predictions, for a
    model whose inputs hold no target to score it on (a CTC model's labels per frame)."""
    p, q = log_probabilities(reference), log_probabilities(outputs)
    return float((np.exp(p) * (p - q)).sum(-1).mean() / np.log(2))
