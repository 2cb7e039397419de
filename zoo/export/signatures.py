"""A step model's inference graphs, `step` and `predict`, as a tf.Module for SavedModel and TFLite.

The model is any `zoo.models.protocol.StepModel` (every zoo task model, or a plain Keras chain
of step-wise and recurrent layers through `as_step_model`): the graphs call its `step` and
`prefill` and nothing else, inside an export scope (`zoo.layers.recurrent.exported`) that runs
its recurrent layers as the fused TFLite LSTM op where `fuse` allows, else unrolled. The module
holds plain tf.Variable copies of the weights and runs the model inside a
`keras.StatelessScope` that maps each Keras variable to its copy, so the traced graphs contain
no Keras variables: SavedModel stores the copies, and the converter freezes them into
constants.

Signatures (B = batch_size, T = seq_len, state tensors named `state_<group>_<index>`):
    step(x (B,) or (B, X), state_0_0, ...) -> {"output": (B, O), "state_0_0": ..., ...}
    predict(x (B, T) or (B, T, X), state_0_0, ...) -> {"output": (B, T, O), "state_0_0": ...}

`step` has no loop: on-device generation calls it once per token and feeds the states back.
`predict` returns the states after its T steps too, so a prompt is read in one call and
continued with `step`. A model that reads its window both ways (`streams` False) has
`predict` only, from zero states.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo.layers.recurrent.exported import FUSE_MODES, exporting
from zoo.models.protocol import as_step_model


def _layout(scope) -> tuple:
    """Plain data on the recurrent layers that ran (tracked Keras objects would enter the
    SavedModel): (cell name, units, fused, state shapes) each, in call order."""
    return tuple(
        (
            getattr(layer.cell, "registry_name", type(layer.cell).__name__),
            int(getattr(layer.cell, "units", getattr(layer.cell, "filters", 0))),
            layer.spec is not None,
            tuple(layer.state_shapes),
        )
        for layer in scope.layers
    )


class InferenceModule(tf.Module):
    """`model`'s inference graphs: `step` (streaming) and `predict` (fixed length).

    Args:
        model: a built `StepModel`, or a plain Keras chain (`zoo.models.layer_chain`).
        batch_size: B, the static batch size of both signatures (1 for on-device generation).
        seq_len: T, the static length of `predict`.
        fuse: which LSTM layers `predict` runs as the fused TFLite op: "all" those the op
            can compute (`fusion.lstm_spec`; the converted file then needs
            `fusion.completed`), "standard" only plain LSTMs (what the converter fuses alone,
            for dynamic and int8 quantisation), or "none" (a plain TensorFlow graph, for
            SavedModel).
        share_weights: `step` of a fused layer runs the op's equations on its per-gate
            weights (`fusion.op_step`), so the file stores them once for both signatures.
            Quantisers quantise each signature's copy differently, so dynamic and int8 files
            use False: the cell's own step, one matmul over all gates, about 15% faster.

    Example:
        module = InferenceModule(model, seq_len=64)
        outputs = module.run("step", {"x": x_t, **module.zero_states()})
    """

    def __init__(self, model, batch_size=1, seq_len=32, fuse="all", share_weights=True):
        super().__init__(name="zoo_inference")
        for name, value in (("batch_size", batch_size), ("seq_len", seq_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"Argument `{name}` must be a positive integer. Received: {name}={value!r}"
                )
        if fuse not in FUSE_MODES:
            raise ValueError(
                f"Argument `fuse` must be one of {', '.join(FUSE_MODES)}. Received: fuse={fuse!r}"
            )
        steps = as_step_model(model)
        keras_variables = list(model.variables)
        self.weights = [tf.Variable(v.value, trainable=False, name=v.name) for v in keras_variables]
        values = {id(v): w.numpy() for v, w in zip(keras_variables, self.weights)}
        self.batch_size, self.seq_len, self.streaming = batch_size, seq_len, steps.streams

        def stateless():
            values = [w.read_value() for w in self.weights]
            return keras.StatelessScope(state_mapping=list(zip(keras_variables, values)))

        shapes = [[tuple(s.shape) for s in group] for group in steps.initial_state(batch_size)]
        sizes = [len(group) for group in shapes]
        self.state_names = tuple(
            f"state_{group}_{index}" for group, size in enumerate(sizes) for index in range(size)
        )

        def grouped(flat):
            flat, groups = list(flat), []
            for size in sizes:
                groups.append(flat[:size])
                flat = flat[size:]
            return groups

        def named(output, states):
            flat = [s for group in states for s in group]
            return {"output": output, **dict(zip(self.state_names, flat))}

        def predict(x, *states):
            with stateless(), exporting(fuse, share_weights, values) as scope:
                output, new_states = steps.prefill(x, grouped(states))
            self.layout, self.fused_specs = _layout(scope), scope.fused_specs
            return named(output, new_states) if self.streaming else {"output": output}

        def step(x, *states):
            with stateless(), exporting(fuse, share_weights, values):
                output, new_states = steps.step(x, grouped(states))
            return named(output, new_states)

        dtype, features = steps.step_input
        state_specs = [
            tf.TensorSpec(shape, tf.float32, name=name)
            for name, shape in zip(self.state_names, (s for group in shapes for s in group))
        ]
        self.predict = tf.function(
            predict,
            autograph=False,
            input_signature=[
                tf.TensorSpec((batch_size, seq_len, *features), dtype, name="x"),
                *state_specs,
            ],
        )
        self.predict.get_concrete_function()  # traced now: its layout and fused layers
        if self.streaming:
            self.step = tf.function(
                step,
                autograph=False,
                input_signature=[
                    tf.TensorSpec((batch_size, *features), dtype, name="x"),
                    *state_specs,
                ],
            )

    def signatures(self) -> dict:
        """Signature name -> concrete function, for SavedModel and the TFLite converter."""
        names = ("step", "predict") if self.streaming else ("predict",)
        return {name: getattr(self, name).get_concrete_function() for name in names}

    def run(self, signature, inputs) -> dict:
        """Call the `step` or `predict` function with inputs given by name, as in TFLite."""
        function = getattr(self, signature)
        return function(*(inputs[spec.name] for spec in function.input_signature))

    def zero_states(self) -> dict:
        """Signature inputs name -> zero array for every state tensor."""
        return {
            spec.name: tf.zeros(spec.shape, spec.dtype).numpy()
            for spec in self.predict.input_signature[1:]
        }

    def calibration_samples(self, sequences):
        """int8 calibration samples for both signatures, drawn from real input sequences.

        Each sequence (B, T) feeds `step` at every position with the states the model really
        reaches there, and `predict` once from the states the previous sequence ended in
        (all-zero initial states would calibrate the state inputs to a zero range), so that
        the int8 ranges of the state tensors are those seen in use.
        """

        def generate():
            carried = self.zero_states()
            for sequence in sequences:
                sequence = np.asarray(sequence)
                yield "predict", {"x": sequence, **carried}
                if not self.streaming:
                    continue
                states = self.zero_states()
                for t in range(sequence.shape[1]):
                    inputs = {"x": sequence[:, t], **states}
                    yield "step", inputs
                    outputs = self.run("step", inputs)
                    states = {name: outputs[name].numpy() for name in states}
                carried = states

        return generate
