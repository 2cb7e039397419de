"""An encoder-decoder's inference graphs: `encode` and `decode_step`.

The model is a `zoo.models.protocol.EncoderDecoder` (the translator, `zoo.models.seq2seq`);
its two stages become two signatures (B = batch_size, S = max_source_len, decoder states named
`state_<layer>_<index>`):

    encode(source (B, S) int32, 0 = padding)
        -> {"memory": (B, S, M), "keys": (B, S, A), "source_mask": (B, S) float32 (1 = token),
            "state_0_0": ..., ...}                             the decoder's initial states
    decode_step(ids (B,), memory, keys, source_mask, state_0_0, ...)
        -> {"logits": (B, V), "attention": (B, S), "state_0_0": ..., ...}

The source ids carry the mask (id 0 is padding), so a sentence is padded to S. `encode` runs
the (bidirectional) encoder unrolled over the S steps (an export scope,
`zoo.layers.recurrent.exported`) and `decode_step` one decoder step with explicit states: the
.tflite file holds builtin ops only, no loop and no variables. The SavedModel adds
`translate(source) -> ids (B, max_length)`, the model's greedy `search` in one graph loop.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo.export.runtime import pad_source
from zoo.layers.recurrent.exported import exporting
from zoo.models.protocol import EncoderDecoder


class Seq2SeqModule(tf.Module):
    """An `EncoderDecoder`'s inference graphs over plain tf.Variable copies of its weights.

    Args:
        model: a built `EncoderDecoder` Keras model (e.g. `Seq2Seq`).
        max_source_len: S, the static source length of both signatures.
        batch_size: B, the static batch size (1 for on-device translation).
        start_id, end_id, max_length: the greedy search of the SavedModel's `translate`.
    """

    def __init__(
        self, model, max_source_len=64, batch_size=1, start_id=2, end_id=3, max_length=100
    ):
        super().__init__(name="zoo_seq2seq")
        for name, value in (
            ("max_source_len", max_source_len),
            ("batch_size", batch_size),
            ("max_length", max_length),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"Argument `{name}` must be a positive integer. Received: {name}={value!r}"
                )
        if not isinstance(model, EncoderDecoder):
            raise TypeError(
                f"{type(model).__name__} is not an EncoderDecoder "
                "(zoo.models.protocol): export it with `export_model`"
            )
        if not model.built:
            model.build()
        keras_variables = list(model.variables)
        self.weights = [tf.Variable(v.value, trainable=False, name=v.name) for v in keras_variables]
        self.max_source_len, self.batch_size = max_source_len, batch_size
        self.start_id = start_id
        probe = model.encode(np.ones((batch_size, max_source_len), np.int32))["states"]
        shapes = [[tuple(state.shape) for state in group] for group in probe]
        self.state_names = tuple(
            f"state_{i}_{j}" for i, layer in enumerate(shapes) for j in range(len(layer))
        )

        def scope():
            values = [w.read_value() for w in self.weights]
            return keras.StatelessScope(state_mapping=list(zip(keras_variables, values)))

        def nested(states):
            states, layers = list(states), []
            for layer in shapes:
                layers.append(states[: len(layer)])
                states = states[len(layer) :]
            return layers

        def named(states):
            return dict(zip(self.state_names, tf.nest.flatten(states)))

        def encode(source):
            with scope(), exporting(fuse="none"):
                encoded = model.encode(source)
            return {
                "memory": encoded["memory"],
                "keys": encoded["keys"],
                "source_mask": tf.cast(encoded["mask"], tf.float32),
                **named(encoded["states"]),
            }

        def decode_step(ids, memory, keys, source_mask, *states):
            encoded = {
                "memory": memory,
                "keys": keys,
                "mask": source_mask,
                "states": nested(states),
            }
            with scope():
                logits, encoded, weights = model.decode_step(ids, encoded, attention=True)
            return {"logits": logits, "attention": weights, **named(encoded["states"])}

        def translate(source):
            with scope():
                ids, _ = model.search(source, start_id, end_id, max_length)
            return {"ids": ids}

        source_spec = tf.TensorSpec((batch_size, max_source_len), tf.int32, name="source")
        self.encode = tf.function(encode, input_signature=[source_spec], autograph=False)
        outputs = self.encode.get_concrete_function().structured_outputs
        step_spec = [tf.TensorSpec((batch_size,), tf.int32, name="ids")] + [
            tf.TensorSpec(outputs[name].shape, tf.float32, name=name)
            for name in ("memory", "keys", "source_mask", *self.state_names)
        ]
        self.decode_step = tf.function(decode_step, input_signature=step_spec, autograph=False)
        self.translate = tf.function(translate, input_signature=[source_spec])
        self.fused_specs = ()  # no fused LSTM op: `tflite.convert` completes nothing

    def signatures(self) -> dict:
        """The TFLite signatures: `encode` and `decode_step`."""
        return {
            "encode": self.encode.get_concrete_function(),
            "decode_step": self.decode_step.get_concrete_function(),
        }

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


__all__ = ["Seq2SeqModule"]
