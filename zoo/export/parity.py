"""Parity of an exported .tflite file with the Keras model it came from, in LiteRT."""

from __future__ import annotations

import numpy as np

from zoo.export.runtime import TFLiteStepper


class ParityError(RuntimeError):
    """The exported model's outputs differ from Keras's by more than the tolerance."""


class QualityError(ParityError):
    """A quantised file scores worse than the Keras model by more than the allowed loss."""


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


def _scorer(inputs, expected, model=None):
    """(metric name, function of a model's outputs) that scores outputs on these inputs: the
    model's own `quality_score(inputs, outputs) -> (name, value)` where it declares one (a
    forecaster's quantile loss), bits per token for a token model, nats per step for a model
    that predicts its next binary input frame, else the KL divergence from Keras's outputs
    `expected` in bits per step; None for outputs that are no distribution."""
    declared = getattr(model, "quality_score", None)
    if callable(declared):
        return declared(inputs, expected)[0], lambda outputs: declared(inputs, outputs)[1]
    if np.issubdtype(inputs.dtype, np.integer) and inputs.ndim == 2:
        return "bits_per_token", lambda outputs: bits_per_token(outputs, inputs)
    if expected.shape == inputs.shape and np.isin(inputs, (0.0, 1.0)).all():
        return "nats_per_step", lambda outputs: nats_per_step(outputs, inputs)
    if expected.ndim >= 2 and expected.shape[-1] > 1:
        return "kl_bits_per_step", lambda outputs: kl_bits_per_step(expected, outputs)
    return None


def parity(model, flatbuffer: bytes, sequences, num_threads: int = 2) -> dict:
    """Compare a .tflite flatbuffer's `predict` and `step` signatures with `model` on inputs.

    Every sequence (B, T) of `sequences` runs through Keras (`model(x)`), through `predict`,
    and token by token through `step` from zero states. Returns max_abs_diff per signature
    (`predict_states`: `predict`'s final states against those `step` reaches), and the
    `score` of Keras and of the file where the model has one: bits per token for a
    token model, nats per step for a model that predicts its next binary frame, the KL
    divergence from Keras in bits per step for other distributions (0 for Keras itself), or
    the model's own `quality_score`.
    """
    predict = TFLiteStepper(flatbuffer, num_threads, signature="predict")
    streaming = "step" in predict.signatures  # a bidirectional model has `predict` only
    step = TFLiteStepper(flatbuffer, num_threads, signature="step") if streaming else None
    diffs = {"predict": 0.0}
    if streaming:
        diffs.update(step=0.0, predict_states=0.0)
    keras_outputs, tflite_outputs, inputs = [], [], []
    for sequence in sequences:
        sequence = np.asarray(sequence)
        expected = np.asarray(model(sequence, training=False))
        predict.reset()
        predicted = predict(sequence)
        diffs["predict"] = max(diffs["predict"], float(np.abs(predicted - expected).max()))
        if streaming:
            step.reset()
            streamed = np.stack([step(sequence[:, t]) for t in range(sequence.shape[1])], 1)
            diffs["step"] = max(diffs["step"], float(np.abs(streamed - expected).max()))
            diffs["predict_states"] = max(diffs["predict_states"], max(
                float(np.abs(predict.states[name] - step.states[name]).max())
                for name in step.state_names))
        keras_outputs.append(expected)
        tflite_outputs.append(predicted)
        inputs.append(sequence)
    if not inputs:
        raise ValueError("Parity needs at least one input sequence. Received: sequences=[]")
    report = {"max_abs_diff": diffs, "sequences": len(inputs)}
    data, expected = np.concatenate(inputs), np.concatenate(keras_outputs)
    score = _scorer(data, expected, model)
    if score is not None:
        metric, function = score
        report["score"] = {"metric": metric, "keras": function(expected),
                           "tflite": function(np.concatenate(tflite_outputs))}
        report[metric] = {k: report["score"][k] for k in ("keras", "tflite")}
    return report


def check_parity(report: dict, tolerance: float = 1e-4, name: str = "model.tflite") -> None:
    """Raise `ParityError` if a signature of `report` (from `parity`) exceeds `tolerance`."""
    worst = max(report["max_abs_diff"].items(), key=lambda item: item[1])
    if worst[1] > tolerance:
        raise ParityError(
            f"{name}: the {worst[0]!r} signature differs from Keras by {worst[1]:.3g} "
            f"(max abs), more than the tolerance {tolerance:g}"
        )


UNITS = {"bits_per_token": "bits/token", "nats_per_step": "nats/step",
         "kl_bits_per_step": "bits/step of KL divergence from Keras"}


def quality_error(rejected: dict, max_quality_loss: float, out_dir) -> QualityError:
    """The `QualityError` for the quantised files in `rejected` (file name -> its report's
    `score`): which file, by how much, and what to try."""
    worst = ", ".join(f"{name} {s['tflite']:.3f} {UNITS.get(s['metric'], s['metric'])} against "
                      f"{s['keras']:.3f} in Keras (+{s['tflite'] - s['keras']:.3f})"
                      for name, s in rejected.items())
    return QualityError(
        f"{worst}: more than the allowed loss of {max_quality_loss:g}, so not written (the "
        f"other files are in {out_dir}); use --quantize=dynamic or float16, or pass "
        "--allow_quality_loss to keep it")


def quality_loss(report: dict) -> float | None:
    """What a file loses against Keras on the parity data, in its score's unit (bits per
    token, nats per step, or bits per step of KL divergence); None for a model without a
    score."""
    score = report.get("score")
    return None if score is None else score["tflite"] - score["keras"]
