"""A Keras recurrent model as a tf.Module with a streaming `step` and a sequence `predict`.

The model is a chain of step-wise layers (Embedding, Dense, Dropout, Activation,
LayerNormalization) and recurrent layers (`keras.layers.RNN(cell)`, LSTM, GRU or any layer
with a `.cell`). The module holds plain tf.Variable copies of the weights and runs the Keras
layers inside a `keras.StatelessScope` that maps each Keras variable to its copy, so the traced
graphs contain no Keras variables: SavedModel stores the copies, and the TFLite converter
freezes them into constants.

Signatures (B = batch_size, T = seq_len, state tensors named `state_<layer>_<index>`):
    step(x (B,) or (B, X), state_0_0, ...) -> {"output": (B, O), "state_0_0": ..., ...}
    predict(x (B, T) or (B, T, X), state_0_0, ...) -> {"output": (B, T, O), "state_0_0": ...}

`step` has no loop: on-device generation calls it once per token and feeds the states back.
`predict` returns the states after its T steps too, so a prompt is read in one call and
continued with `step` (a model with a bidirectional layer returns its outputs only).
`predict` runs LSTM layers the TFLite op can compute through the fused sequence function
(see `fused`) and every other cell unrolled over the T steps: builtin TFLite ops only.

A model whose forward pass is more than its layers in order (it says so with
`runs_layers_in_order = False`, e.g. the time-aware melody model) is exported through its own
step protocol (`zoo.models.protocol.StepModel`) instead: `initial_state(batch_size)` (a list
of state groups), `step(x_t, states) -> (output, states)`, and optionally `step_input_shape`
for float inputs; `step` is that step, `predict` unrolls it over the T steps, and nothing is
fused.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo.export import fused

STEPWISE_LAYERS = (
    keras.layers.Activation,
    keras.layers.Dense,
    keras.layers.Dropout,
    keras.layers.Embedding,
    keras.layers.GaussianNoise,
    keras.layers.InputLayer,
    keras.layers.LayerNormalization,
)
SKIPPED_AT_INFERENCE = (keras.layers.Dropout, keras.layers.GaussianNoise, keras.layers.InputLayer)
# A plan entry for a Bidirectional layer: it runs in `predict` only (no streaming `step`).
BIDIRECTIONAL = "bidirectional"


def _per_step(layer, x, sequence):
    """A step-wise layer on one step (B, ...) or on a sequence (B, T, ...): a TimeDistributed
    layer applies its inner layer to every step (time merged into the batch)."""
    if not isinstance(layer, keras.layers.TimeDistributed):
        return layer(x)
    if not sequence:
        return layer.layer(x)
    batch, time = x.shape[0], x.shape[1]
    y = layer.layer(tf.reshape(x, (batch * time, *x.shape[2:])))
    return tf.reshape(y, (batch, time, *y.shape[1:]))
FUSE_MODES = ("all", "standard", "none")


def _plan(model):
    """[(layer, cell or None)] for the layers of `model` that compute, in order."""
    plan = []
    for layer in model.layers:
        cell = getattr(layer, "cell", None)
        if isinstance(layer, keras.layers.Bidirectional):
            plan.append((layer, BIDIRECTIONAL))
        elif cell is not None:
            if getattr(layer, "go_backwards", False) or isinstance(
                cell, keras.layers.StackedRNNCells
            ):
                raise ValueError(
                    f"Cannot export recurrent layer {layer.name!r}: only forward layers with a "
                    f"single cell stream. Received: go_backwards={layer.go_backwards}, "
                    f"cell={type(cell).__name__}"
                )
            plan.append((layer, cell))
        elif isinstance(layer, STEPWISE_LAYERS) or isinstance(layer, keras.layers.TimeDistributed):
            if not isinstance(layer, SKIPPED_AT_INFERENCE):
                plan.append((layer, None))
        else:
            raise ValueError(
                f"Cannot export layer {layer.name!r} ({type(layer).__name__}): only step-wise "
                f"layers ({', '.join(t.__name__ for t in STEPWISE_LAYERS)}, TimeDistributed) "
                "and recurrent layers can run one step at a time."
            )
    if not any(cell is not None for _, cell in plan):
        raise ValueError(f"Model {model.name!r} has no recurrent layer to export.")
    return plan


def _unrolled(cell, x, states):
    """Outputs (B, T, ...) of `cell` over the T steps of `x` from `states`, unrolled, and its
    final states."""
    projected = cell.project_inputs(x) if hasattr(cell, "project_inputs") else None
    outputs = []
    for t in range(x.shape[1]):
        if projected is not None:
            output, states = cell.step(projected[:, t], cell.recurrent_term(states), states,
                                       training=False)
        else:
            output, states = cell.call(x[:, t], states, training=False)
        states = tf.nest.flatten(states)
        outputs.append(output)
    return tf.stack(outputs, axis=1), states


def _bidirectional(layer, x):
    """A Bidirectional layer over the whole window from zero states, unrolled both ways."""
    if layer.merge_mode not in ("concat", "sum", "ave", "mul"):
        raise ValueError(f"Cannot export Bidirectional layer {layer.name!r} with "
                         f"merge_mode={layer.merge_mode!r}")
    batch = x.shape[0]
    forward, _ = _unrolled(layer.forward_layer.cell, x,
                           tf.nest.flatten(layer.forward_layer.cell.get_initial_state(batch)))
    backward, _ = _unrolled(layer.backward_layer.cell, tf.reverse(x, [1]), tf.nest.flatten(
        layer.backward_layer.cell.get_initial_state(batch)))
    backward = tf.reverse(backward, [1])
    if layer.merge_mode == "concat":
        return tf.concat([forward, backward], -1)
    merged = forward + backward if layer.merge_mode != "mul" else forward * backward
    return merged / 2 if layer.merge_mode == "ave" else merged


def state_shapes(cell, batch_size) -> list[tuple[int, ...]]:
    """The shapes of a cell's state tensors (feature maps for convolutional cells)."""
    return [tuple(state.shape) for state in tf.nest.flatten(cell.get_initial_state(batch_size))]


def input_spec(model, plan):
    """(dtype, per-step feature shape) of the model's input: token ids after an Embedding."""
    if isinstance(plan[0][0], keras.layers.Embedding):
        return tf.int32, ()
    if hasattr(model, "step_input_shape"):  # a subclassed model of float frames says its shape
        return tf.float32, tuple(model.step_input_shape)
    try:
        inputs = model.inputs
    except AttributeError:
        inputs = None
    if not inputs or len(inputs) != 1:
        raise ValueError(
            f"Cannot tell the input of model {model.name!r}: export needs an Embedding first "
            "layer, a single `keras.Input` or a `step_input_shape` attribute. Received: inputs="
            f"{[tuple(i.shape) for i in inputs or []]}"
        )
    dtype = tf.int32 if "int" in str(inputs[0].dtype) else tf.float32
    return dtype, tuple(inputs[0].shape[2:])


def runs_its_layers_in_order(model) -> bool:
    """Whether `model`'s forward pass is its layers in order (a Sequential or functional chain,
    or a zoo model that declares `runs_layers_in_order`); otherwise the export runs the model's
    own step protocol (`initial_state(batch)`, `step(x_t, states)`)."""
    declared = getattr(model, "runs_layers_in_order", None)
    if declared is not None:
        return bool(declared)
    return not (hasattr(model, "step") and hasattr(model, "initial_state"))


def _layout(cells, fused_flags, shapes):
    """Plain data on the recurrent layers (tracked Keras objects would enter the SavedModel)."""
    return tuple((getattr(cell, "registry_name", type(cell).__name__), int(cell.units), f, s)
                 for cell, f, s in zip(cells, fused_flags, shapes))


def _layer_chain(model, batch_size, fuse, share_weights, scope):
    """The signatures' bodies for a chain of step-wise and recurrent layers: recurrent layers
    the TFLite op computes run fused in `predict` (see `fused`), the others unrolled."""
    plan = _plan(model)
    cells = [cell for _, cell in plan if cell is not None and cell != BIDIRECTIONAL]
    specs = [None if fuse == "none" else fused.lstm_spec(cell) for cell in cells]
    if fuse == "standard":
        specs = [spec if spec and spec.standard else None for spec in specs]
    functions = [spec and fused.fused_lstm_function(cell) for cell, spec in zip(cells, specs)]
    shapes = [state_shapes(cell, batch_size) for cell in cells]

    def run(x, states, recurrent):
        states, new_states, index = list(states), [], -1
        with scope():
            for layer, cell in plan:
                if cell is None:
                    x = _per_step(layer, x, sequence=recurrent is sequence_cell)
                    continue
                if cell == BIDIRECTIONAL:
                    x = _bidirectional(layer, x)
                    continue
                index += 1
                count = len(shapes[index])
                own, states = states[:count], states[count:]
                x, own = recurrent(index, cell, x, own)
                new_states.extend(own)
        return x, new_states

    def step_cell(index, cell, x, states):
        if share_weights and specs[index]:
            return fused.op_step(specs[index], x, states)
        output, new_states = cell.call(x, states, training=False)
        return output, tf.nest.flatten(new_states)

    def sequence_cell(index, cell, x, states):
        if specs[index]:
            outputs = fused.fused_sequence(functions[index], specs[index], x, states)
            return outputs, fused.final_states(specs[index], x, outputs, states, share_weights)
        return _unrolled(cell, x, states)

    streaming = not any(cell == BIDIRECTIONAL for _, cell in plan)
    return (input_spec(model, plan), shapes,
            (lambda x, states: run(x, states, step_cell)) if streaming else None,
            lambda x, states: run(x, states, sequence_cell),
            _layout(cells, [spec is not None for spec in specs], shapes),
            tuple(spec for spec in specs if spec))  # in op order, for `fused.completed`


def _step_protocol(model, batch_size, fuse, share_weights, scope):
    """The signatures' bodies from the model's own step: `step` is `model.step`, `predict`
    unrolls it over the T steps; nothing is fused. For models whose forward pass is more than
    their layers in order (e.g. `TimeAwareMelodyModel`, which feeds Δt to every layer)."""
    groups = [list(group) for group in model.initial_state(batch_size)]
    shapes = [[tuple(state.shape) for state in group] for group in groups]
    sizes = [len(group) for group in shapes]

    def pack(flat):
        flat, packed = list(flat), []
        for size in sizes:
            packed.append(flat[:size])
            flat = flat[size:]
        return packed

    def step(x, states):
        with scope():
            output, new_states = model.step(x, pack(states))
        return output, [s for group in new_states for s in group]

    def predict(x, states):
        outputs = []
        for t in range(x.shape[1]):
            output, states = step(x[:, t], states)
            outputs.append(output)
        return tf.stack(outputs, axis=1), states

    shape = getattr(model, "step_input_shape", None)
    spec = (tf.int32, ()) if shape is None else (tf.float32, tuple(shape))
    cells = [layer.cell for layer in model.layers if hasattr(layer, "cell")]
    return spec, shapes, step, predict, _layout(cells, [False] * len(cells), shapes), ()


class InferenceModule(tf.Module):
    """`model`'s inference graphs: `step` (streaming) and `predict` (fixed length).

    Args:
        model: a built Keras model (see the module docstring for the layers it may hold).
        batch_size: B, the static batch size of both signatures (1 for on-device generation).
        seq_len: T, the static length of `predict`.
        fuse: which LSTM layers `predict` runs as the fused TFLite op: "all" those the op
            can compute (`fused.lstm_spec`; the converted file then needs `fused.completed`),
            "standard" only plain LSTMs (what the converter fuses alone, for dynamic and
            int8 quantisation), or "none" (a plain TensorFlow graph, for SavedModel).
        share_weights: `step` of a fused layer runs the op's equations on its per-gate
            weights (`fused.op_step`), so the file stores them once for both signatures.
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
        keras_variables = list(model.variables)
        self.weights = [tf.Variable(v.value, trainable=False, name=v.name) for v in keras_variables]
        self.batch_size, self.seq_len = batch_size, seq_len

        def scope():
            values = [w.read_value() for w in self.weights]
            return keras.StatelessScope(state_mapping=list(zip(keras_variables, values)))

        if runs_its_layers_in_order(model):
            build = _layer_chain
        else:
            build = _step_protocol
        (dtype, features), shapes, step_outputs, predict_outputs, self.layout, \
            self.fused_specs = build(model, batch_size, fuse, share_weights, scope)
        self.state_names = tuple(
            f"state_{group}_{index}"
            for group, group_shapes in enumerate(shapes)
            for index in range(len(group_shapes))
        )
        state_specs = [
            tf.TensorSpec(shape, tf.float32, name=name)
            for name, shape in zip(self.state_names, (s for group in shapes for s in group))
        ]
        step_spec = [tf.TensorSpec((batch_size, *features), dtype, name="x"), *state_specs]
        predict_spec = [tf.TensorSpec((batch_size, seq_len, *features), dtype, name="x"),
                        *state_specs]

        self.streaming = step_outputs is not None

        def step(x, *states):
            output, new_states = step_outputs(x, states)
            return {"output": output, **dict(zip(self.state_names, new_states))}

        def predict(x, *states):
            output, new_states = predict_outputs(x, states)
            if not self.streaming:  # (a bidirectional model's states are not carried)
                return {"output": output}
            return {"output": output, **dict(zip(self.state_names, new_states))}

        self.predict = tf.function(predict, input_signature=predict_spec, autograph=False)
        if self.streaming:  # (a model with a bidirectional layer has `predict` only)
            self.step = tf.function(step, input_signature=step_spec, autograph=False)

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
