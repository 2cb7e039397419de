"""A classifier's graphs and its export: a whole-window `classify` file and a streaming `step`
file.

    classify(x (1, T, C) float32, length (1,) int32) -> {"probabilities": (1, K)}
    step(x (1, C), state_0_0, ...) -> {"probabilities": (1, K), "state_0_0": ..., ...}

The model is a `zoo.models.protocol.Classifier`: `classify` is its own `classify` of a window
of T samples of which the first `length` are the sequence (the rest is padding it never reads),
traced inside an export scope (`zoo.layers.recurrent.exported`) that runs its recurrent layers
as TFLite's fused LSTM op where the cell allows, else unrolled. `step` is its streaming step:
one sample in, the class distribution of everything read so far out (a model that `streams`
only). The quality gate is the model's `quality`: accuracy points lost on labelled sequences.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from zoo.export import conversion
from zoo.export.manifest import (
    EXPORT_FORMAT,
    FORMATS,
    MANIFEST,
    as_list,
    atomic_directory,
    check_out_dir,
    write_gated,
)
from zoo.export.metadata import JSON_ENTRY, with_metadata
from zoo.export.parity import check_parity, quality_error
from zoo.export.runtime import classify_file, window
from zoo.layers.recurrent.exported import exporting

KIND = "classifier"
SIGNATURES = ("classify", "step")


def classifier_filename(signature, quantize) -> str:
    """model[_<quantize>].tflite for `classify`, streaming[_<quantize>].tflite for `step`."""
    stem = "model" if signature == "classify" else "streaming"
    return f"{stem}.tflite" if quantize == "none" else f"{stem}_{quantize}.tflite"


class ClassifierModule(tf.Module):
    """One signature of a `Classifier` (`classify` or `step`) as a tf.Module for the converter.

    Args:
        model: a built `zoo.models.protocol.Classifier` (e.g. `SequenceClassifier`).
        seq_len: T, the window of `classify`.
        signature: "classify" or "step".
        fuse: which LSTM layers `classify` runs as the fused op: "all" those the op computes,
            "standard" plain ones only (what the quantisers accept), or "none".
    """

    def __init__(self, model, seq_len=128, signature="classify", fuse="all"):
        super().__init__(name="zoo_classifier")
        if signature not in SIGNATURES:
            raise ValueError(
                f"Argument `signature` must be one of {', '.join(SIGNATURES)}. "
                f"Received: signature={signature!r}"
            )
        keras_variables = list(model.variables)
        self.weights = [tf.Variable(v.value, trainable=False, name=v.name) for v in keras_variables]
        values = {id(v): w.numpy() for v, w in zip(keras_variables, self.weights)}
        self.signature, self.seq_len, self.fused_specs = signature, seq_len, ()
        dtype, features = model.step_input

        def stateless():
            values = [w.read_value() for w in self.weights]
            return keras.StatelessScope(state_mapping=list(zip(keras_variables, values)))

        if signature == "classify":

            def classify(x, length):
                with stateless(), exporting(fuse, share_weights=False, values=values) as scope:
                    logits = model.classify(x, length)
                self.fused_specs = scope.fused_specs
                return {"probabilities": tf.nn.softmax(logits)}

            self.classify = tf.function(
                classify,
                autograph=False,
                input_signature=[
                    tf.TensorSpec((1, seq_len, *features), dtype, name="x"),
                    tf.TensorSpec((1,), tf.int32, name="length"),
                ],
            )
            self.classify.get_concrete_function()  # traced now: its fused layers
            return
        groups = model.initial_state(1)
        sizes = [len(group) for group in groups]
        self.state_names = tuple(
            f"state_{g}_{i}" for g, size in enumerate(sizes) for i in range(size)
        )
        self.initial_states = {
            name: keras.ops.convert_to_numpy(s)
            for name, s in zip(self.state_names, (s for group in groups for s in group))
        }

        def step(x, *states):
            grouped, flat = [], list(states)
            for size in sizes:
                grouped, flat = grouped + [flat[:size]], flat[size:]
            with stateless(), exporting("none", share_weights=False, values=values):
                logits, new = model.step(x, grouped)
            new = [s for group in new for s in group]
            return {"probabilities": tf.nn.softmax(logits), **dict(zip(self.state_names, new))}

        self.step = tf.function(
            step,
            autograph=False,
            input_signature=[
                tf.TensorSpec((1, *features), dtype, name="x"),
                *(
                    tf.TensorSpec(value.shape, tf.float32, name=name)
                    for name, value in self.initial_states.items()
                ),
            ],
        )

    def signatures(self) -> dict:
        """The one signature's name -> its concrete function."""
        return {self.signature: getattr(self, self.signature).get_concrete_function()}

    def calibration_samples(self, sequences, max_steps=1000):
        """int8 calibration inputs from real (x (T, C), length) pairs: each window once for
        `classify`; for `step`, every sample with the states the model reaches there, until
        `max_steps` samples (sequences in turn: each step costs a converter invocation)."""

        def generate():
            budget = max_steps
            for x, length in sequences:
                if self.signature == "classify":
                    yield (
                        "classify",
                        {
                            "x": window(x, self.seq_len)[None],
                            "length": np.array([min(length, self.seq_len)], np.int32),
                        },
                    )
                    continue
                length, budget = min(length, budget), budget - min(length, budget)
                if length == 0:
                    return
                states = dict(self.initial_states)
                for t in range(length):
                    inputs = {"x": np.asarray(x[t : t + 1], np.float32), **states}
                    yield "step", inputs
                    outputs = self.step(*inputs.values())
                    states = {name: outputs[name].numpy() for name in self.state_names}

        return generate


def export_classifier(
    model,
    out_dir,
    sequences,
    labels,
    quantize="none",
    seq_len=None,
    streaming=True,
    calibration=None,
    metadata=None,
    tolerance=1e-4,
    max_quality_loss=1.0,
    allow_quality_loss=False,
    format=FORMATS,
) -> dict:
    """Export a trained `Classifier` as TFLite files; returns the manifest.

    Writes into `out_dir` (new, empty or an earlier classifier export, replaced once all
    succeeded): model[_<q>].tflite (`classify`, LSTM layers fused where the op computes them;
    dynamic and int8 fuse plain LSTM layers only, int8 in the op's integer kernel) and, for a
    model that `streams` with `streaming`, streaming[_<q>].tflite (`step`), one per
    quantisation in `quantize` ("none", "dynamic", "float16", "int8"), and manifest.json.
    Every file is run in LiteRT on the labelled `sequences` ((x (T, C), length) pairs) and
    `labels`: the float32 files must match Keras's probabilities within `tolerance`; a
    quantised file that loses more than `max_quality_loss` accuracy points against Keras (the
    model's `quality`) is not written (unless `allow_quality_loss`), and `QualityError` names
    it. `calibration`: (x, length) pairs for int8 (default `sequences`); `seq_len`: the window
    T of `classify` (default the longest sequence). `format`: "tflite" and/or
    "saved_model" (saved_model/ with the `classify` signature, unfused).
    """
    formats = as_list(format, "format", FORMATS)
    quantizations = as_list(quantize, "quantize", conversion.QUANTIZATIONS)
    check_out_dir(out_dir, KIND)  # before any conversion work
    seq_len = seq_len or max(int(n) for _, n in sequences)
    # Every file is judged on the sequences' first seq_len steps, what `classify` reads.
    sequences = [(np.asarray(x, np.float32)[:seq_len], min(int(n), seq_len)) for x, n in sequences]
    reference = np.concatenate(
        [
            keras.ops.convert_to_numpy(
                keras.ops.softmax(model.classify(window(x, seq_len)[None], np.array([n], np.int32)))
            )
            for x, n in sequences
        ]
    )
    metric, keras_score = model.quality(reference, labels)
    signatures = ["classify"] + (["step"] if streaming and model.streams else [])
    manifest = {
        "format": EXPORT_FORMAT,
        "kind": KIND,
        "model": model.name,
        "classes": int(model.num_classes),
        "seq_len": seq_len,
        "files": {},
        "rejected": {},
        "keras_accuracy": 1.0 - keras_score / 100.0,
        "sequences": len(sequences),
        "quality_gate": {
            "max_loss": max_quality_loss,
            "metric": metric,
            "unit": "accuracy points",
            "allowed": bool(allow_quality_loss),
        },
        "metadata": metadata or {},
    }
    rejected = {}
    with atomic_directory(out_dir, KIND) as staging:
        if "saved_model" in formats:
            manifest["files"]["saved_model"] = _saved_model(
                ClassifierModule(model, seq_len, "classify", fuse="none"),
                os.path.join(staging, "saved_model"),
                sequences[0],
            )
        for signature in signatures if "tflite" in formats else ():
            for q in quantizations:
                fuse = "all" if q in ("none", "float16") else "standard"
                module = ClassifierModule(model, seq_len, signature, fuse)
                # An int8 window runs its plain LSTM layers in the fused op's integer kernel:
                # unrolled, every step's tensors would repeat T times in the file.
                flatbuffer = conversion.convert(
                    module, q, calibration or sequences, integer_lstm=signature == "classify"
                )
                name = classifier_filename(signature, q)
                flatbuffer = with_metadata(
                    flatbuffer,
                    {
                        JSON_ENTRY: {
                            "kind": KIND,
                            "signature": signature,
                            "metadata": metadata or {},
                        }
                    },
                )
                probabilities = classify_file(flatbuffer, sequences, signature=signature)
                score = {
                    "metric": metric,
                    "keras": keras_score,
                    "tflite": model.quality(probabilities, labels)[1],
                }
                report = {
                    "max_abs_diff": {signature: float(np.abs(probabilities - reference).max())},
                    "sequences": len(sequences),
                    "score": score,
                }
                if q == "none":
                    check_parity(report, tolerance, name)
                write_gated(
                    staging,
                    manifest,
                    rejected,
                    q,
                    flatbuffer,
                    report,
                    max_quality_loss,
                    allow_quality_loss,
                    name=name,
                    signature=signature,
                    fused_lstm_layers=len(module.fused_specs),
                    accuracy=1.0 - score["tflite"] / 100.0,
                )
        with open(os.path.join(staging, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
    if rejected and not allow_quality_loss:
        raise quality_error(rejected, max_quality_loss, out_dir)
    return manifest


def _saved_model(module, path, sequence) -> dict:
    """Write `module`'s `classify` as a SavedModel; the reloaded signature's max abs
    difference from the module on `sequence` (x, length)."""
    tf.saved_model.save(module, path, signatures=module.signatures())
    inputs = {
        "x": tf.constant(window(sequence[0], module.seq_len)[None]),
        "length": tf.constant([min(sequence[1], module.seq_len)], tf.int32),
    }
    reloaded = tf.saved_model.load(path).signatures["classify"](**inputs)["probabilities"]
    expected = module.classify(**inputs)["probabilities"]
    return {"reload_max_abs_diff": float(np.abs(reloaded.numpy() - expected.numpy()).max())}
