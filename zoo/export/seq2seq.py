"""Export of the translator (`zoo.models.seq2seq.Seq2Seq`): `encode` and `decode_step`.

An encoder-decoder is not a chain of layers, so it gets its own module with two signatures
(B = batch_size, S = max_source_len, decoder states named `state_<layer>_<index>`):

    encode(source (B, S) int32, 0 = padding)
        -> {"memory": (B, S, M), "keys": (B, S, A), "source_mask": (B, S) float32 (1 = token),
            "state_0_0": ..., ...}                             the decoder's initial states
    decode_step(ids (B,), memory, keys, source_mask, state_0_0, ...)
        -> {"logits": (B, V), "attention": (B, S), "state_0_0": ..., ...}

The source ids carry the mask (id 0 is padding), so a sentence is padded to S. `encode` runs
the (bidirectional) encoder unrolled over the S steps and `decode_step` one decoder step with
explicit states: the .tflite file holds builtin ops only, no loop and no variables. Greedy or
beam search runs on the device, one `decode_step` per token (`TFLiteTranslator.greedy`). The
SavedModel adds `translate(source) -> ids (B, max_length)`, `Seq2Seq.generate`'s greedy search
in one graph loop.

    manifest = export_seq2seq(model, "exports/translator", sources, start_id=2, end_id=3,
                              quantize=["none", "dynamic"])
"""

from __future__ import annotations

import contextlib
import json
import os

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from zoo.export import tflite
from zoo.export.export import (
    EXPORT_FORMAT,
    MANIFEST,
    _as_list,
    _signature_shapes,
    atomic_directory,
    check_out_dir,
    tflite_filename,
)
from zoo.export.metadata import JSON_ENTRY, with_metadata
from zoo.export.module import state_shapes
from zoo.export.parity import ParityError
from zoo.layers.recurrent import stack_step

QUANTIZATIONS = ("none", "dynamic", "float16")  # int8 would need calibration of both signatures


def decode(model, ids, encoded):
    """`Seq2Seq.decode_step` that also returns the attention weights:
    (logits (B, V), new states [[...] per layer], attention (B, S))."""
    x, states = stack_step(model.decoder, model.target_embedding(ids), encoded["states"])
    logits, weights = model._readout(x, {**encoded, "states": states})
    return logits, states, weights


def _unrolled_loop(layer):
    """`layer.inner_loop` as a Python loop over the static time steps: a graph with no loop op.

    A masked step keeps the states and repeats the last output, as `keras.layers.RNN` does
    (Keras's own `unroll=True` mishandles masks of backward layers in Keras 3.15).
    """

    def inner_loop(sequences, initial_state, mask, training=False):
        mask = mask[0] if isinstance(mask, (list, tuple)) else mask
        steps = range(sequences.shape[1])
        states, output, outputs = list(initial_state), None, []
        for t in reversed(steps) if layer.go_backwards else steps:
            new_output, new_states = layer.cell(sequences[:, t], states, training=training)
            new_states = tf.nest.flatten(new_states)
            if mask is not None:
                keep = mask[:, t, None]
                new_states = [tf.where(keep, n, s) for n, s in zip(new_states, states)]
                new_output = tf.where(keep, new_output,
                                      tf.zeros_like(new_output) if output is None else output)
            states, output = new_states, new_output
            outputs.append(output)
        return output, tf.stack(outputs, axis=1), states

    return inner_loop


@contextlib.contextmanager
def _unrolled(layers):
    """Run the recurrent (and bidirectional) `layers` unrolled (see `_unrolled_loop`)."""
    rnns = [part for layer in layers for part in (
        (layer.forward_layer, layer.backward_layer)
        if isinstance(layer, keras.layers.Bidirectional) else (layer,))]
    for rnn in rnns:
        rnn.inner_loop = _unrolled_loop(rnn)
    try:
        yield
    finally:
        for rnn in rnns:
            del rnn.inner_loop


class Seq2SeqModule(tf.Module):
    """A `Seq2Seq`'s inference graphs over plain tf.Variable copies of its weights.

    Args:
        model: a built `Seq2Seq`.
        max_source_len: S, the static source length of both signatures.
        batch_size: B, the static batch size (1 for on-device translation).
        start_id, end_id, max_length: the greedy search of the SavedModel's `translate`.
    """

    def __init__(self, model, max_source_len=64, batch_size=1, start_id=2, end_id=3,
                 max_length=100):
        super().__init__(name="zoo_seq2seq")
        for name, value in (("max_source_len", max_source_len), ("batch_size", batch_size),
                            ("max_length", max_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"Argument `{name}` must be a positive integer. Received: {name}={value!r}"
                )
        if not model.built:
            model.build()
        keras_variables = list(model.variables)
        self.weights = [tf.Variable(v.value, trainable=False, name=v.name) for v in keras_variables]
        self.max_source_len, self.batch_size = max_source_len, batch_size
        shapes = [state_shapes(layer.cell, batch_size) for layer in model.decoder]
        self.state_names = tuple(f"state_{i}_{j}" for i, layer in enumerate(shapes)
                                 for j in range(len(layer)))

        def scope():
            values = [w.read_value() for w in self.weights]
            return keras.StatelessScope(state_mapping=list(zip(keras_variables, values)))

        def nested(states):
            states, layers = list(states), []
            for layer in shapes:
                layers.append(states[:len(layer)])
                states = states[len(layer):]
            return layers

        def named(states):
            return dict(zip(self.state_names, tf.nest.flatten(states)))

        def encode(source):
            with scope(), _unrolled(model.encoder):
                encoded = model.encode(source)
            return {"memory": encoded["memory"], "keys": encoded["keys"],
                    "source_mask": tf.cast(encoded["mask"], tf.float32),
                    **named(encoded["states"])}

        def decode_step(ids, memory, keys, source_mask, *states):
            encoded = {"memory": memory, "keys": keys, "mask": source_mask,
                       "states": nested(states)}
            with scope():
                logits, states, weights = decode(model, ids, encoded)
            return {"logits": logits, "attention": weights, **named(states)}

        def translate(source):
            with scope():
                ids, _ = model._search(source, start_id, end_id, max_length, 1, 0.0)
            return {"ids": ids}

        source_spec = tf.TensorSpec((batch_size, max_source_len), tf.int32, name="source")
        self.encode = tf.function(encode, input_signature=[source_spec], autograph=False)
        outputs = self.encode.get_concrete_function().structured_outputs
        step_spec = [tf.TensorSpec((batch_size,), tf.int32, name="ids")] + [
            tf.TensorSpec(outputs[name].shape, tf.float32, name=name)
            for name in ("memory", "keys", "source_mask", *self.state_names)]
        self.decode_step = tf.function(decode_step, input_signature=step_spec, autograph=False)
        self.translate = tf.function(translate, input_signature=[source_spec])
        self.fused_specs = ()  # no fused LSTM op: `tflite.convert` completes nothing

    def signatures(self) -> dict:
        """The TFLite signatures: `encode` and `decode_step`."""
        return {"encode": self.encode.get_concrete_function(),
                "decode_step": self.decode_step.get_concrete_function()}

    def run(self, signature, inputs) -> dict:
        """Call `encode` or `decode_step` with inputs given by name, as in TFLite."""
        function = getattr(self, signature)
        return function(*(inputs[spec.name] for spec in function.input_signature))

    def pad(self, source_ids):
        """One sentence's ids as the (1, S) `encode` input; raises if it is longer than S."""
        return pad_source(source_ids, self.max_source_len)


def pad_source(source_ids, max_source_len):
    source_ids = np.asarray(source_ids, np.int32).reshape(-1)
    if len(source_ids) > max_source_len:
        raise ValueError(f"The source holds {len(source_ids)} tokens, more than the exported "
                         f"max_source_len={max_source_len}")
    padded = np.zeros((1, max_source_len), np.int32)
    padded[0, :len(source_ids)] = source_ids
    return padded


class TFLiteTranslator:
    """The `encode` and `decode_step` signatures of a .tflite file, in LiteRT (NumPy only).

    Example:
        translator = TFLiteTranslator("model.tflite")
        ids = translator.greedy(source_ids, start_id=2, end_id=3)
    """

    def __init__(self, model, num_threads=2):
        if isinstance(model, (str, os.PathLike)):
            if not os.path.isfile(model):
                raise FileNotFoundError(f"No .tflite file at model={str(model)!r}")
            interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
        else:
            interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
        missing = {"encode", "decode_step"} - set(interpreter.get_signature_list())
        if missing:
            raise ValueError(f"The model lacks the signature(s) {sorted(missing)} of a "
                             "translator export")
        self.encode_runner = interpreter.get_signature_runner("encode")
        self.step_runner = interpreter.get_signature_runner("decode_step")
        self.max_source_len = int(self.encode_runner.get_input_details()["source"]["shape"][1])

    def encode(self, source_ids):
        """`encode` of one sentence's ids (unpadded): memory, keys, source_mask and states."""
        return self.encode_runner(source=pad_source(source_ids, self.max_source_len))

    def step(self, token, encoded):
        """`decode_step` from `encode`'s (or the last step's) outputs: logits, attention and
        new states; returns the outputs and the dict for the next step."""
        outputs = self.step_runner(ids=np.array([token], np.int32), **encoded)
        states = {name: outputs[name] for name in encoded if name.startswith("state_")}
        return outputs, {**encoded, **states}

    def greedy(self, source_ids, start_id, end_id, max_length=100, pad_id=0, on_step=None):
        """Greedy translation: the ids after `start_id` up to and including `end_id`.
        `on_step(token, outputs)`, if given, sees every step's input token and outputs."""
        encoded, token, ids = self.encode(source_ids), start_id, []
        while len(ids) < max_length and token != end_id:
            outputs, encoded = self.step(token, encoded)
            if on_step is not None:
                on_step(token, outputs)
            token = next_token(outputs["logits"], pad_id)
            ids.append(token)
        return ids


def next_token(logits, pad_id=0):
    """The most likely token other than padding, as `zoo.decoding.greedy_search` picks it."""
    logits = np.array(logits, np.float64).reshape(-1)
    logits[pad_id] = -np.inf
    return int(np.argmax(logits))


def _max_diff(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def parity(model, flatbuffer, sources, start_id, end_id, max_length=100):
    """Compare a translator .tflite file with `model` on sentences (lists of source ids).

    Each sentence is encoded by both (memory, keys and states compared at its real
    positions), then decoded greedily by the file, with Keras's `decode` fed the same tokens
    (logits, states and attention compared at every step); the file's greedy ids are compared
    with `model.generate(..., beam_size=1)`. Returns max_abs_diff per signature and the share
    of sentences whose greedy translations are equal token for token.
    """
    if not sources:
        raise ValueError("Parity needs at least one source sentence. Received: sources=[]")
    translator = TFLiteTranslator(flatbuffer)
    diffs = {"encode": 0.0, "decode_step": 0.0}
    equal = sum(_sentence_parity(model, translator, source, start_id, end_id, max_length, diffs)
                for source in sources)
    return {"max_abs_diff": diffs, "sentences": len(sources),
            "greedy_equal": equal / len(sources)}


def _sentence_parity(model, translator, source, start_id, end_id, max_length, diffs):
    """`parity` of one sentence: updates `diffs`; True if the greedy ids equal Keras's."""
    n, source = len(source), np.asarray(source, np.int32)
    encoded = model.encode(source[None])
    exported = translator.encode(source)
    diffs["encode"] = max(
        diffs["encode"],
        _max_diff(exported["memory"][:, :n], encoded["memory"]),
        _max_diff(exported["keys"][:, :n], encoded["keys"]),
        *(_max_diff(exported[name], s) for name, s in
          zip(_state_keys(exported), tf.nest.flatten(encoded["states"]))),
    )

    def compare(token, outputs):
        nonlocal encoded
        logits, states, weights = decode(model, np.array([token], np.int32), encoded)
        encoded = {**encoded, "states": states}
        diffs["decode_step"] = max(
            diffs["decode_step"], _max_diff(outputs["logits"], logits),
            _max_diff(outputs["attention"][:, :n], weights),
            *(_max_diff(outputs[name], s) for name, s in
              zip(_state_keys(outputs), tf.nest.flatten(states))),
        )

    ids = translator.greedy(source, start_id, end_id, max_length, on_step=compare)
    expected, _ = model.generate(source[None], start_id, end_id, max_length=max_length)
    return ids == [int(t) for t in expected[0] if t != 0]


def _state_keys(outputs):
    """State names in layer, index order (state_1_0 before state_10_0)."""
    names = [name for name in outputs if name.startswith("state_")]
    return sorted(names, key=lambda name: tuple(int(i) for i in name.split("_")[1:]))


def check_parity(report, tolerance, name):
    worst = max(report["max_abs_diff"].items(), key=lambda item: item[1])
    if worst[1] > tolerance:
        raise ParityError(f"{name}: the {worst[0]!r} signature differs from Keras by "
                          f"{worst[1]:.3g} (max abs), more than the tolerance {tolerance:g}")
    if report["greedy_equal"] < 1.0:
        raise ParityError(f"{name}: greedy translations differ from Seq2Seq.generate on "
                          f"{1 - report['greedy_equal']:.0%} of the sentences")


def export_seq2seq(model, out_dir, sources, start_id, end_id, format=("saved_model", "tflite"),
                   quantize="none", max_source_len=64, max_length=100, tolerance=1e-4,
                   metadata=None, files=None):
    """Export a `Seq2Seq` for serving and for mobile; returns the manifest.

    Writes into `out_dir` (new, empty or an earlier export: see `check_out_dir`) `saved_model/`
    (`encode`, `decode_step`, `translate`), `model.tflite` (float32) and
    `model_<quantize>.tflite` (see the module docstring for the signatures), `files`
    (name -> bytes, e.g. the SentencePiece model) and `manifest.json`. Each .tflite file also
    holds the files and the manifest's device settings as metadata (`zoo.export.metadata`),
    so it is enough on its own. Every .tflite file is
    checked in LiteRT on `sources` (see `parity`); the float32 file must match Keras within
    `tolerance` and give the same greedy translations, or the export fails.

    Args:
        model: a `Seq2Seq`.
        out_dir: the export directory.
        sources: real source sentences, lists of ids (at most `max_source_len` each).
        start_id, end_id: the decoder's start token and the end token.
        format: "saved_model", "tflite", or both (a list).
        quantize: one or several of "none", "dynamic", "float16".
        max_source_len, max_length: the static source length, the longest translation.
        tolerance: the largest float32 max-abs difference from Keras accepted.
        metadata: JSON-serialisable extras for the device (tokenizer, ids, task).
        files: extra files to write beside the model, name -> bytes.
    """
    formats = _as_list(format, "format", ("saved_model", "tflite"))
    quantizations = _as_list(quantize, "quantize", QUANTIZATIONS)
    extra_files = sorted(files or {})
    check_out_dir(out_dir, "seq2seq", extra_files)  # before any conversion work
    sources = [list(map(int, source)) for source in sources]
    module = Seq2SeqModule(model, max_source_len, 1, int(start_id), int(end_id), max_length)
    for source in sources:
        module.pad(source)  # a clear error for a sentence longer than max_source_len
    manifest = {
        "format": EXPORT_FORMAT, "kind": "seq2seq",
        "model": model.name,
        "config": {k: v for k, v in model.get_config().items() if k != "dtype"},
        "start_id": int(start_id),
        "end_id": int(end_id),
        "max_source_len": max_source_len,
        "max_length": max_length,
        "signatures": {name: _signature_shapes(getattr(module, name))
                       for name in ("encode", "decode_step")},
        "files": {},
        "extra_files": extra_files,
        "metadata": metadata or {},
    }
    with atomic_directory(out_dir, "seq2seq", extra_files) as staging:
        if "saved_model" in formats:
            path = os.path.join(staging, "saved_model")
            tf.saved_model.save(module, path, signatures={
                **module.signatures(), "translate": module.translate.get_concrete_function()})
            manifest["files"]["saved_model"] = _reload_check(module, path, sources, model,
                                                             start_id, end_id, max_length)
        if "tflite" in formats:
            device = {JSON_ENTRY: {k: v for k, v in manifest.items() if k != "files"},
                      **(files or {})}
            for q in quantizations:
                flatbuffer = with_metadata(tflite.convert(module, q), device)
                name = tflite_filename(q)
                report = parity(model, flatbuffer, sources, start_id, end_id, max_length)
                if q == "none":
                    check_parity(report, tolerance, name)
                with open(os.path.join(staging, name), "wb") as f:
                    f.write(flatbuffer)
                manifest["files"][name] = {"quantize": q, "bytes": len(flatbuffer),
                                           "ops": tflite.ops_used(flatbuffer), "parity": report}
        for name, data in (files or {}).items():
            with open(os.path.join(staging, name), "wb") as f:
                f.write(data)
        with open(os.path.join(staging, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
    return manifest


def _reload_check(module, path, sources, model, start_id, end_id, max_length):
    """Reload the SavedModel as a user would: its `encode` against the module's, and its
    `translate` against `Seq2Seq.generate`, on the first sentence."""
    reloaded = tf.saved_model.load(path).signatures
    source = tf.constant(module.pad(sources[0]))
    memory = reloaded["encode"](source=source)["memory"]
    ids = reloaded["translate"](source=source)["ids"].numpy()
    expected, _ = model.generate(source, start_id, end_id, max_length=max_length)
    return {"reload_max_abs_diff": _max_diff(memory, module.encode(source)["memory"]),
            "translate_equal": bool(np.array_equal(ids, expected))}


__all__ = ["QUANTIZATIONS", "Seq2SeqModule", "TFLiteTranslator", "decode", "export_seq2seq",
           "parity"]
