"""Parity of an exported .tflite file with the Keras model it came from, in LiteRT, and the
quality gate's score: a step model's (`parity`) and an encoder-decoder's
(`translator_parity`)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo import metrics
from zoo.export.runtime import TFLiteStepper, TFLiteTranslator
from zoo.models.protocol import as_step_model


class ParityError(RuntimeError):
    """The exported model's outputs differ from Keras's by more than the tolerance."""


class QualityError(ParityError):
    """A quantised file scores worse than the Keras model by more than the allowed loss."""


def parity(model, flatbuffer: bytes, sequences, num_threads: int = 2) -> dict:
    """Compare a .tflite flatbuffer's `predict` and `step` signatures with `model` on inputs.

    Every sequence (B, T) of `sequences` runs through Keras (`model(x)`), through `predict`,
    and token by token through `step` from zero states. Returns max_abs_diff per signature
    (`predict_states`: `predict`'s final states against those `step` reaches, relative to
    the larger of 1 and the state's largest magnitude, see `_scaled_diff`), and the
    `score` of Keras and of the file: the model's own `quality` (bits per token for a
    language model, nats per step for one that predicts its next binary frame, ...), else the
    KL divergence from Keras in bits per step for outputs that are distributions (0 for Keras
    itself).
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
            diffs["predict_states"] = max(
                diffs["predict_states"],
                max(
                    _scaled_diff(predict.states[name], step.states[name])
                    for name in step.state_names
                ),
            )
        keras_outputs.append(expected)
        tflite_outputs.append(predicted)
        inputs.append(sequence)
    if not inputs:
        raise ValueError("Parity needs at least one input sequence. Received: sequences=[]")
    report = {"max_abs_diff": diffs, "sequences": len(inputs)}
    data, expected = np.concatenate(inputs), np.concatenate(keras_outputs)
    score = _scorer(as_step_model(model), data, expected)
    if score is not None:
        metric, function = score
        report["score"] = {
            "metric": metric,
            "keras": function(expected),
            "tflite": function(np.concatenate(tflite_outputs)),
        }
        report[metric] = {k: report["score"][k] for k in ("keras", "tflite")}
    return report


def _scaled_diff(states, reference) -> float:
    """max |states - reference| / max(1, max |reference|): float32 resolves a state relative
    to its size, and an LSTM's cell state grows without bound over a long window (on the
    trained `harmony_lstm`, 640 tokens take it to 130, where Keras's own `prefill` and `step`
    differ by 2e-4); states within [-1, 1] are compared absolutely."""
    reference = np.asarray(reference, np.float64)
    scale = max(1.0, float(np.abs(reference).max()))
    return float(np.abs(np.asarray(states, np.float64) - reference).max()) / scale


def gate_metric(model, sequences) -> str | None:
    """The metric the quality gate scores `model`'s files in on `sequences` (as `parity`
    does): the one its `quality` declares, else "kl_bits_per_step"; None for outputs that
    are no distribution (no score, no gate)."""
    sequences = [np.asarray(sequence) for sequence in sequences]
    expected = np.concatenate([np.asarray(model(s, training=False)) for s in sequences])
    score = _scorer(as_step_model(model), np.concatenate(sequences), expected)
    return None if score is None else score[0]


def _scorer(model, inputs, expected):
    """(metric, function of outputs) of the quality gate: the model's own `quality`, else the
    KL divergence from Keras's `expected` outputs; None for outputs that are no
    distribution."""
    declared = model.quality(expected, inputs, expected)
    if declared is not None:
        return declared[0], lambda outputs: model.quality(outputs, inputs, expected)[1]
    if expected.ndim >= 2 and expected.shape[-1] > 1:
        return "kl_bits_per_step", lambda outputs: metrics.kl_bits_per_step(expected, outputs)
    return None


def check_parity(report: dict, tolerance: float = 1e-4, name: str = "model.tflite") -> None:
    """Raise `ParityError` if a signature of `report` (from `parity`) exceeds `tolerance`."""
    worst = max(report["max_abs_diff"].items(), key=lambda item: item[1])
    if worst[1] > tolerance:
        raise ParityError(
            f"{name}: the {worst[0]!r} signature differs from Keras by {worst[1]:.3g} "
            f"(max abs), more than the tolerance {tolerance:g}"
        )


UNITS = {
    "bits_per_token": "bits/token",
    "nats_per_step": "nats/step",
    "kl_bits_per_step": "bits/step of KL divergence from Keras",
    "error_percent": "% misclassified",
}


def unit_of(metric: str | None) -> str | None:
    """How a metric's unit reads: UNITS' words for the zoo's metrics; a model's own metric
    (`StepModel.quality`) as it names it."""
    return None if metric is None else UNITS.get(metric, metric)


def quality_error(rejected: dict, max_quality_loss: float, out_dir) -> QualityError:
    """The `QualityError` for the quantised files in `rejected` (file name -> its report's
    `score`): which file, by how much, and what to try."""
    worst = ", ".join(
        f"{name} {s['tflite']:.3f} {unit_of(s['metric'])} against "
        f"{s['keras']:.3f} in Keras (+{s['tflite'] - s['keras']:.3f})"
        for name, s in rejected.items()
    )
    return QualityError(
        f"{worst}: more than the allowed loss of {max_quality_loss:g}, so not written (the "
        f"other files are in {out_dir}); use --quantize=dynamic or float16, or pass "
        "--allow_quality_loss to keep it"
    )


def quality_loss(report: dict) -> float | None:
    """What a file loses against Keras on the parity data, in its score's unit (`unit_of`
    its metric); None for a model without a score."""
    score = report.get("score")
    return None if score is None else score["tflite"] - score["keras"]


def _max_diff(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def translator_parity(
    model, flatbuffer, sources, start_id, end_id, max_length=100, targets=None, bleu=None
):
    """Compare a translator .tflite file with `model` on sentences (lists of source ids).

    Each sentence is encoded by both (memory, keys and states compared at its real
    positions), then decoded greedily by the file, with Keras's `decode_step` fed the same tokens
    (logits, states and attention compared at every step); the file's greedy ids are compared
    with `model.generate(..., beam_size=1)`. Returns max_abs_diff per signature and the share
    of sentences whose greedy translations are equal token for token.

    With `targets` (each sentence's reference ids, ending with `end_id`), the report's
    `score` is the bits per target token of Keras and of the file, teacher-forced along the
    references (the file's `decode_step` fed the reference tokens): what `quality_loss`
    gates. With `bleu` (a function of greedy translations, lists of ids, to a corpus BLEU),
    it also holds the BLEU of both greedy translations.
    """
    if not sources:
        raise ValueError("Parity needs at least one source sentence. Received: sources=[]")
    if targets is not None and len(targets) != len(sources):
        raise ValueError(f"Parity got {len(targets)} targets for {len(sources)} sources")
    translator = TFLiteTranslator(flatbuffer)
    diffs = {"encode": 0.0, "decode_step": 0.0}
    translations = [
        _sentence_parity(model, translator, source, start_id, end_id, max_length, diffs)
        for source in sources
    ]
    report = {
        "max_abs_diff": diffs,
        "sentences": len(sources),
        "greedy_equal": sum(ids == expected for ids, expected in translations) / len(sources),
    }
    if targets is not None:
        bits = np.array(
            [
                _teacher_forced_bits(model, translator, source, target, start_id)
                for source, target in zip(sources, targets)
            ]
        )
        tokens = sum(len(target) for target in targets)
        report["score"] = {
            "metric": "bits_per_token",
            "keras": bits[:, 0].sum() / tokens,
            "tflite": bits[:, 1].sum() / tokens,
        }
        report["bits_per_token"] = {k: report["score"][k] for k in ("keras", "tflite")}
    if bleu is not None:
        report["bleu_greedy"] = {
            "keras": float(bleu([e for _, e in translations])),
            "tflite": float(bleu([ids for ids, _ in translations])),
        }
    return report


def _sentence_parity(model, translator, source, start_id, end_id, max_length, diffs):
    """`parity` of one sentence: updates `diffs`; the file's and Keras's greedy ids."""
    n, source = len(source), np.asarray(source, np.int32)
    encoded = model.encode(source[None])
    exported = translator.encode(source)
    diffs["encode"] = max(
        diffs["encode"],
        _max_diff(exported["memory"][:, :n], encoded["memory"]),
        _max_diff(exported["keys"][:, :n], encoded["keys"]),
        *(
            _max_diff(exported[name], s)
            for name, s in zip(_state_keys(exported), tf.nest.flatten(encoded["states"]))
        ),
    )

    def compare(token, outputs):
        nonlocal encoded
        logits, encoded, weights = model.decode_step(
            np.array([token], np.int32), encoded, attention=True
        )
        states = encoded["states"]
        diffs["decode_step"] = max(
            diffs["decode_step"],
            _max_diff(outputs["logits"], logits),
            _max_diff(outputs["attention"][:, :n], weights),
            *(
                _max_diff(outputs[name], s)
                for name, s in zip(_state_keys(outputs), tf.nest.flatten(states))
            ),
        )

    ids = translator.greedy(source, start_id, end_id, max_length, on_step=compare)
    expected, _ = model.generate(source[None], start_id, end_id, max_length=max_length)
    return ids, [int(t) for t in expected[0] if t != 0]


def _teacher_forced_bits(model, translator, source, target, start_id):
    """-log2 p(target) summed over its tokens, in Keras and in the file, each fed the
    reference prefix (the start token, then the target but its last token)."""
    target = np.asarray(target, np.int32)
    target_in = np.concatenate([[start_id], target[:-1]]).astype(np.int32)
    logits = np.asarray(model((np.asarray(source, np.int32)[None], target_in[None])))[0]
    encoded, steps = translator.encode(source), []
    for token in target_in:
        outputs, encoded = translator.step(int(token), encoded)
        steps.append(outputs["logits"][0])

    def bits(outputs):
        picked = np.take_along_axis(metrics.log_probabilities(outputs), target[:, None], -1)
        return float(-picked.sum() / np.log(2))

    return bits(logits), bits(np.stack(steps))


def _state_keys(outputs):
    """State names in layer, index order (state_1_0 before state_10_0)."""
    names = [name for name in outputs if name.startswith("state_")]
    return sorted(names, key=lambda name: tuple(int(i) for i in name.split("_")[1:]))


def check_translator_parity(report, tolerance, name):
    """Raise `ParityError` if a signature of `report` exceeds `tolerance` or a greedy
    translation differs from Keras's."""
    worst = max(report["max_abs_diff"].items(), key=lambda item: item[1])
    if worst[1] > tolerance:
        raise ParityError(
            f"{name}: the {worst[0]!r} signature differs from Keras by "
            f"{worst[1]:.3g} (max abs), more than the tolerance {tolerance:g}"
        )
    if report["greedy_equal"] < 1.0:
        raise ParityError(
            f"{name}: greedy translations differ from Seq2Seq.generate on "
            f"{1 - report['greedy_equal']:.0%} of the sentences"
        )
