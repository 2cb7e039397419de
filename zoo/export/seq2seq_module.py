"""The translator's (`zoo.models.seq2seq.Seq2Seq`) inference graphs: `encode` and `decode_step`.

An encoder-decoder is not a chain of layers, so it gets its own module with two signatures
(B = batch_size, S = max_source_len, decoder states named `state_<layer>_<index>`):

    encode(source (B, S) int32, 0 = padding)
        -> {"memory": (B, S, M), "keys": (B, S, A), "source_mask": (B, S) float32 (1 = token),
            "state_0_0": ..., ...}                             the decoder's initial states
    decode_step(ids (B,), memory, keys, source_mask, state_0_0, ...)
        -> {"logits": (B, V), "attention": (B, S), "state_0_0": ..., ...}

The source ids carry the mask (id 0 is padding), so a sentence is padded to S. `encode` runs
the (bidirectional) encoder unrolled over the S steps and `decode_step` one decoder step with
explicit states: the .tflite file holds builtin ops only, no loop and no variables. The
SavedModel adds `translate(source) -> ids (B, max_length)`, `Seq2Seq.generate`'s greedy search
in one graph loop.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf

from zoo.export.module import state_shapes
from zoo.layers.recurrent import stack_step


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
        self.start_id = start_id
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

    def calibration_samples(self, pairs):
        """int8 calibration samples for both signatures from real (source ids, target ids)
        pairs (the target ending with the end token): `encode` of each source, then
        `decode_step` along its reference translation (teacher forcing from the start token),
        fed the states and attention memory the model really reaches there. `encode` also
        sees the sources run together to fill all S positions: every unrolled encoder step
        then calibrates on real tokens, not only those short sentences reach."""
        pairs = [(list(source), list(target)) for source, target in pairs]

        def generate():
            for source, target in pairs:
                inputs = {"source": self.pad(source)}
                yield "encode", inputs
                encoded = {k: v.numpy() for k, v in self.run("encode", inputs).items()}
                for token in [self.start_id, *target[:-1]]:
                    inputs = {"ids": np.array([token], np.int32), **encoded}
                    yield "decode_step", inputs
                    outputs = self.run("decode_step", inputs)
                    encoded.update({name: outputs[name].numpy() for name in self.state_names})
            tokens = [token for source, _ in pairs for token in source]
            windows = max(1, len(tokens) // self.max_source_len)
            filled = np.resize(np.asarray(tokens, np.int32), (windows, self.max_source_len))
            for window in filled:
                yield "encode", {"source": window[None]}

        return generate

    def pad(self, source_ids):
        """One sentence's ids as the (1, S) `encode` input; raises if it is longer than S."""
        return pad_source(source_ids, self.max_source_len)


def pad_source(source_ids, max_source_len):
    """Source ids as the (1, max_source_len) int32 input of `encode`, zero-padded; ValueError
    if they do not fit."""
    source_ids = np.asarray(source_ids, np.int32).reshape(-1)
    if len(source_ids) > max_source_len:
        raise ValueError(f"The source holds {len(source_ids)} tokens, more than the exported "
                         f"max_source_len={max_source_len}")
    padded = np.zeros((1, max_source_len), np.int32)
    padded[0, :len(source_ids)] = source_ids
    return padded


__all__ = ["Seq2SeqModule", "decode", "pad_source"]
