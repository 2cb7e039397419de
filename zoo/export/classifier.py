"""Export of a sequence classifier: a whole-window `classify` file and a streaming `step` file.

    classify(x (1, T, C) float32, length (1,) int32) -> {"probabilities": (1, K)}
    step(x (1, C), state_0_0, ...) -> {"probabilities": (1, K), "state_0_0": ..., ...}

`classify` reads a window of T samples of which the first `length` are the sequence (the rest
is padding the model never reads: it asks the model's own `classify` with a recurrent runner
that fuses LSTM layers into TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM op where the op computes the
cell, see `zoo.export.fused`, and unrolls the others; a backward direction reverses each
sequence's own steps first). `step` is the model's streaming step (`zoo.models.protocol`): one
sample in, the class distribution of everything read so far out, a forward model only.

A model declares what this needs: `classify(x, lengths, run_recurrent=...)`, `recurrent` (its
sequence layers), and the step protocol (`initial_state`, `step`, `step_input_shape`).
The quality gate is the task's own unit: accuracy points lost on labelled sequences.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from zoo.export import fused, tflite
from zoo.export.export import atomic_directory, check_out_dir
from zoo.export.metadata import JSON_ENTRY, with_metadata
from zoo.export.module import _unrolled

KIND = "classifier"
SIGNATURES = ("classify", "step")


def classifier_filename(signature, quantize) -> str:
    """model[_<quantize>].tflite for `classify`, streaming[_<quantize>].tflite for `step`."""
    stem = "model" if signature == "classify" else "streaming"
    return f"{stem}.tflite" if quantize == "none" else f"{stem}_{quantize}.tflite"


def _specs(cell, fuse):
    spec = None if fuse == "none" else fused.lstm_spec(cell)
    return spec if spec is None or fuse == "all" or spec.standard else None


class ClassifierModule(tf.Module):
    """One signature of a classifier (`classify` or `step`) as a tf.Module for the converter.

    Args:
        model: a built `zoo.models.classifier.SequenceClassifier` (or a model with the same
            declared methods, see the module docstring).
        seq_len: T, the window of `classify`.
        signature: "classify" or "step".
        fuse: "all" LSTM layers the op computes, "standard" plain ones only (what the
            quantisers accept), or "none".
    """

    def __init__(self, model, seq_len=128, signature="classify", fuse="all"):
        super().__init__(name="zoo_classifier")
        if signature not in SIGNATURES:
            raise ValueError(f"Argument `signature` must be one of {', '.join(SIGNATURES)}. "
                             f"Received: signature={signature!r}")
        keras_variables = list(model.variables)
        self.weights = [tf.Variable(v.value, trainable=False, name=v.name) for v in keras_variables]
        self.signature, self.seq_len, self.fused_specs = signature, seq_len, ()
        # An int8 `classify` file runs its fused LSTM layers in the op's integer kernel: a
        # window unrolled over T steps would repeat every step's tensors T times in the file.
        self.integer_lstm = True
        channels = tuple(model.step_input_shape)

        def scope():
            values = [w.read_value() for w in self.weights]
            return keras.StatelessScope(state_mapping=list(zip(keras_variables, values)))

        if signature == "classify":
            runners, specs = [], []
            for layer in model.recurrent:
                directions = ([layer.forward_layer, layer.backward_layer]
                              if isinstance(layer, keras.layers.Bidirectional) else [layer])
                found = [_specs(d.cell, fuse) for d in directions]
                runners.append([(d.cell, s, s and fused.fused_lstm_function(d.cell))
                                for d, s in zip(directions, found)])
                specs += [s for s in found if s]
            self.fused_specs = tuple(specs)

            def run_recurrent(index, layer, x, mask):
                lengths = tf.reduce_sum(tf.cast(mask, tf.int32), 1)
                # Zero states computed from the input: the fused op keeps constant initial
                # states as variables and would carry its last state into the next call; each
                # its own tensor (a distinct factor), since the op overwrites them.
                zero = tf.cast(lengths[:, None] * 0, tf.float32)
                outputs = []
                for direction, (cell, spec, function) in enumerate(runners[index]):
                    h = x if direction == 0 else tf.reverse_sequence(x, lengths, 1, 0)
                    zeros = [tf.zeros(s.shape) + zero * float(10 * index + 2 * direction + k + 1)
                             for k, s in enumerate(tf.nest.flatten(
                                 cell.get_initial_state(x.shape[0])))]
                    h = (fused.fused_sequence(function, spec, h, zeros) if spec
                         else _unrolled(cell, h, zeros)[0])
                    outputs.append(h if direction == 0 else tf.reverse_sequence(h, lengths, 1, 0))
                return tf.concat(outputs, -1) if len(outputs) > 1 else outputs[0]

            def classify(x, length):
                with scope():
                    logits = model.classify(x, length, run_recurrent=run_recurrent)
                return {"probabilities": tf.nn.softmax(logits)}

            self.classify = tf.function(classify, autograph=False, input_signature=[
                tf.TensorSpec((1, seq_len, *channels), tf.float32, name="x"),
                tf.TensorSpec((1,), tf.int32, name="length")])
            return
        groups = model.initial_state(1)
        shapes = [tuple(s.shape) for group in groups for s in group]
        sizes = [len(group) for group in groups]
        self.state_names = tuple(f"state_{g}_{i}" for g, size in enumerate(sizes)
                                 for i in range(size))
        self.initial_states = {name: keras.ops.convert_to_numpy(s) for name, s in
                               zip(self.state_names, (s for group in groups for s in group))}

        def step(x, *states):
            packed, flat = [], list(states)
            for size in sizes:
                packed, flat = packed + [flat[:size]], flat[size:]
            with scope():
                logits, new = model.step(x, packed)
            new = [s for group in new for s in group]
            return {"probabilities": tf.nn.softmax(logits), **dict(zip(self.state_names, new))}

        self.step = tf.function(step, autograph=False, input_signature=[
            tf.TensorSpec((1, *channels), tf.float32, name="x"),
            *(tf.TensorSpec(shape, tf.float32, name=name)
              for name, shape in zip(self.state_names, shapes))])

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
                if self.signature == "step":
                    length, budget = min(length, budget), budget - min(length, budget)
                    if length == 0:
                        return
                if self.signature == "classify":
                    yield "classify", {"x": window(x, self.seq_len)[None],
                                       "length": np.array([min(length, self.seq_len)], np.int32)}
                    continue
                states = dict(self.initial_states)
                for t in range(length):
                    inputs = {"x": np.asarray(x[t:t + 1], np.float32), **states}
                    yield "step", inputs
                    outputs = self.step(*inputs.values())
                    states = {name: outputs[name].numpy() for name in self.state_names}

        return generate


def window(x, seq_len) -> np.ndarray:
    """The first seq_len steps of x (T, C), zero-padded to seq_len."""
    x = np.asarray(x, np.float32)[:seq_len]
    return np.pad(x, [(0, seq_len - len(x)), (0, 0)])


def classify_file(interpreter_or_path, sequences, num_threads=1, signature=None) -> np.ndarray:
    """Class probabilities (N, K) of a classifier .tflite file (its `classify` or, for a
    streaming file, `step` signature fed one sample at a time) over (x, length) pairs."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = (Interpreter(model_content=bytes(interpreter_or_path), num_threads=num_threads)
                   if isinstance(interpreter_or_path, (bytes, bytearray)) else
                   Interpreter(model_path=str(interpreter_or_path), num_threads=num_threads))
    names = interpreter.get_signature_list()
    signature = signature or ("classify" if "classify" in names else "step")
    runner = interpreter.get_signature_runner(signature)
    details = runner.get_input_details()
    results = []
    for x, length in sequences:
        if signature == "classify":
            seq_len = details["x"]["shape"][1]
            results.append(runner(x=window(x, seq_len)[None], length=np.array(
                [min(length, seq_len)], np.int32))["probabilities"][0])
            continue
        states = {n: np.zeros(d["shape"], d["dtype"]) for n, d in details.items() if n != "x"}
        for t in range(length):
            outputs = runner(x=np.asarray(x[t:t + 1], np.float32), **states)
            states = {n: outputs[n] for n in states}
        results.append(outputs["probabilities"][0])
    return np.array(results)


def _accuracy(probabilities, labels) -> float:
    return float(np.mean(np.argmax(probabilities, -1) == np.asarray(labels)))


def export_classifier(model, out_dir, sequences, labels, quantize="none", seq_len=None,
                      streaming=True, calibration=None, metadata=None, tolerance=1e-4,
                      max_quality_loss=1.0, allow_quality_loss=False) -> dict:
    """Export a trained classifier as TFLite files; returns the manifest.

    Writes into `out_dir` (new, empty or an earlier classifier export, replaced once all
    succeeded): model[_<q>].tflite (`classify`, LSTM layers fused where the op computes them;
    dynamic and int8 fuse plain LSTM layers only, int8 in the op's integer kernel) and, for a
    forward model with `streaming`, streaming[_<q>].tflite (`step`), one per quantisation in
    `quantize` ("none", "dynamic",
    "float16", "int8"), and manifest.json. Every file is run in LiteRT on the labelled
    `sequences` ((x (T, C), length) pairs) and `labels`: the float32 files must match Keras's
    probabilities within `tolerance`; a quantised file that loses more than
    `max_quality_loss` accuracy points against Keras is not written (unless
    `allow_quality_loss`), and `QualityError` names it. `calibration`: (x, length) pairs for
    int8 (default `sequences`); `seq_len`: the window T of `classify` (default the longest
    sequence).
    """
    from zoo.export.parity import ParityError, QualityError

    quantizations = [quantize] if isinstance(quantize, str) else list(quantize)
    for q in quantizations:
        tflite.check_quantize(q)
    check_out_dir(out_dir, KIND)
    seq_len = seq_len or max(int(n) for _, n in sequences)
    # Every file is judged on the sequences' first seq_len steps, what `classify` reads.
    sequences = [(np.asarray(x, np.float32)[:seq_len], min(int(n), seq_len)) for x, n in sequences]
    keras_probabilities = np.concatenate([
        keras.ops.convert_to_numpy(keras.ops.softmax(model.classify(
            window(x, seq_len)[None], np.array([min(n, seq_len)], np.int32))))
        for x, n in sequences])
    keras_accuracy = _accuracy(keras_probabilities, labels)
    signatures = ["classify"] + (["step"] if streaming and not model.bidirectional else [])
    manifest = {"format": "lstm-zoo-export", "kind": KIND, "model": model.name,
                "classes": int(model.num_classes), "seq_len": seq_len, "files": {},
                "rejected": {}, "keras_accuracy": keras_accuracy, "sequences": len(sequences),
                "quality_gate": {"max_loss": max_quality_loss, "unit": "accuracy points",
                                 "allowed": bool(allow_quality_loss)},
                "metadata": metadata or {}}
    rejected = []
    with atomic_directory(out_dir, KIND) as staging:
        for signature in signatures:
            for q in quantizations:
                fuse = ("all" if q in ("none", "float16") else
                        "standard" if signature == "classify" else "none")
                module = ClassifierModule(model, seq_len, signature, fuse)
                flatbuffer = tflite.convert(module, q, calibration or sequences)
                name = classifier_filename(signature, q)
                flatbuffer = with_metadata(flatbuffer, {JSON_ENTRY: {
                    "kind": KIND, "signature": signature, "metadata": metadata or {}}})
                probabilities = classify_file(flatbuffer, sequences, signature=signature)
                accuracy = _accuracy(probabilities, labels)
                entry = {"signature": signature, "quantize": q, "bytes": len(flatbuffer),
                         "ops": tflite.ops_used(flatbuffer),
                         "fused_lstm_layers": len(module.fused_specs), "accuracy": accuracy,
                         "quality_loss": round(100 * (keras_accuracy - accuracy), 4),
                         "parity": {"max_abs_diff": {signature: float(np.abs(
                             probabilities - keras_probabilities).max())},
                             "sequences": len(sequences)}}
                difference = entry["parity"]["max_abs_diff"][signature]
                if q == "none" and difference > tolerance:
                    raise ParityError(f"{name}: differs from Keras by {difference:.3g} (max abs),"
                                      f" more than the tolerance {tolerance:g}")
                if q != "none" and entry["quality_loss"] > max_quality_loss:
                    rejected.append(f"{name} {100 * accuracy:.2f}% against "
                                    f"{100 * keras_accuracy:.2f}% in Keras")
                    if not allow_quality_loss:
                        manifest["rejected"][name] = entry
                        continue
                with open(os.path.join(staging, name), "wb") as f:
                    f.write(flatbuffer)
                manifest["files"][name] = entry
        with open(os.path.join(staging, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
    if rejected and not allow_quality_loss:
        raise QualityError(f"{'; '.join(rejected)}: more than the allowed loss of "
                           f"{max_quality_loss:g} accuracy points, so not written (the other files"
                           f" are in {out_dir}); use --quantize=float16, or pass "
                           "--allow_quality_loss to keep it")
    return manifest
