"""Parity of an exported .tflite file with the Keras model it came from, in LiteRT."""

from __future__ import annotations

import numpy as np

from zoo.export.runtime import TFLiteStepper


class ParityError(RuntimeError):
    """The exported model's outputs differ from Keras's by more than the tolerance."""


class QualityError(ParityError):
    """A quantised file scores worse than the Keras model by more than the allowed loss."""


def _log_probs(outputs):
    """Log-probabilities from logits or from probabilities (a softmax output layer)."""
    outputs = np.asarray(outputs, np.float64)
    if outputs.min() >= 0 and np.allclose(outputs.sum(-1), 1.0, atol=1e-3):
        return np.log(np.maximum(outputs, 1e-12))
    shifted = outputs - outputs.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def bits_per_token(outputs, tokens):
    """Mean -log2 p(tokens[:, t+1] | tokens[:, :t+1]) from next-token outputs (B, T, V)."""
    log_probs = _log_probs(outputs)[:, :-1]
    targets = np.asarray(tokens)[:, 1:, None]
    return float(-np.take_along_axis(log_probs, targets, -1).mean() / np.log(2))


def parity(model, flatbuffer, sequences, num_threads=2):
    """Compare a .tflite flatbuffer's `predict` and `step` signatures with `model` on inputs.

    Every sequence (B, T) of `sequences` runs through Keras (`model(x)`), through `predict`,
    and token by token through `step` from zero states. Returns max_abs_diff per signature
    and, for token models, bits per token of Keras and of the file.
    """
    predict = TFLiteStepper(flatbuffer, num_threads, signature="predict")
    step = TFLiteStepper(flatbuffer, num_threads, signature="step")
    diffs = {"predict": 0.0, "step": 0.0}
    keras_outputs, tflite_outputs, inputs = [], [], []
    for sequence in sequences:
        sequence = np.asarray(sequence)
        expected = np.asarray(model(sequence, training=False))
        streamed = []
        step.reset()
        for t in range(sequence.shape[1]):
            streamed.append(step(sequence[:, t]))
        predicted = predict(sequence)
        diffs["predict"] = max(diffs["predict"], float(np.abs(predicted - expected).max()))
        diffs["step"] = max(
            diffs["step"], float(np.abs(np.stack(streamed, 1) - expected).max())
        )
        keras_outputs.append(expected)
        tflite_outputs.append(predicted)
        inputs.append(sequence)
    if not inputs:
        raise ValueError("Parity needs at least one input sequence. Received: sequences=[]")
    report = {"max_abs_diff": diffs, "sequences": len(inputs)}
    if np.issubdtype(inputs[0].dtype, np.integer) and inputs[0].ndim == 2:
        tokens = np.concatenate(inputs)
        report["bits_per_token"] = {
            "keras": bits_per_token(np.concatenate(keras_outputs), tokens),
            "tflite": bits_per_token(np.concatenate(tflite_outputs), tokens),
        }
    return report


def check_parity(report, tolerance=1e-4, name="model.tflite"):
    """Raise `ParityError` if a signature of `report` (from `parity`) exceeds `tolerance`."""
    worst = max(report["max_abs_diff"].items(), key=lambda item: item[1])
    if worst[1] > tolerance:
        raise ParityError(
            f"{name}: the {worst[0]!r} signature differs from Keras by {worst[1]:.3g} "
            f"(max abs), more than the tolerance {tolerance:g}"
        )


def quality_loss(report):
    """Bits per token a file loses against Keras on the parity data (None: not a token model)."""
    scores = report.get("bits_per_token")
    return None if scores is None else scores["tflite"] - scores["keras"]
