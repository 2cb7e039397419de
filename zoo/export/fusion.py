"""LSTM layers as one TFLite UNIDIRECTIONAL_SEQUENCE_LSTM op.

The TFLite converter replaces a tf.function carrying `api_implements="lstm_<uuid>"` (the
annotation tf-keras 2 put on its LSTM) by one fused op when the function keeps tf-keras's
`standard_lstm` contract:

    (inputs (B, T, X), init_h (B, R), init_c (B, H), kernel (X, 4H), recurrent_kernel (R, 4H),
     bias (4H)) -> (last_output, outputs (B, T, R), h, c, runtime)

gate blocks i, f, c, o, static state shapes, and only `outputs` used by the caller. It emits a
plain LSTM (sigmoid gates, tanh) with the cell state clipped to ±10. The op itself does more:
its kernel (tensorflow/lite/kernels/lstm_eval.cc) computes, per gate g in i, f, o,

    g_t = σ(LN_g(W_g x_t + R_g r_{t-1} + p_g ⊙ c) + b_g)       c = c_{t-1} for i, f; c_t for o
    i_t = 1 - f_t                                              (CIFG: no input-gate weights)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ tanh(LN_c(W_c x_t + R_c r_{t-1}) + b_c),  clipped if cell_clip > 0
    r_t = P (o_t ⊙ tanh(c_t))   (projection; r_t = o_t ⊙ tanh(c_t) without)

where LN_g(a) = γ_g ⊙ (a - mean(a)) / sqrt(var(a) + 1e-8) with layer norm, the identity
without. `completed` writes the peepholes p, the projection P and the layer-norm γ that the
converter cannot express into the converted file and turns the clipping off. Which cells
fuse is read from their declared structure (`zoo.cells.structure`, see `fusible`); of the
zoo's cells, besides `lstm` these fuse exactly (float32 and float16 files):

    np_lstm           the same equations as lstm
    vanilla_lstm      diagonal peepholes p_i, p_f, p_o
    cifg_lstm         Greff's f = 1 - i_ours: TFLite's computed gate is f = σ(-z_i), so its
                      forget weights, bias and peephole are the negated input-gate ones
    projection_lstm   P = projection_kernel^T, with or without peepholes
    layer_norm_lstm   with cell_norm=False and ε <= 1e-5 (the op's ε is 1e-8: measured
                      max |Δ| 7e-5 at the default 1e-5, 6e-3 at 1e-3)
    keras.layers.LSTMCell

The traced function body runs the cell's own `call` on constant weights, so the graph stays
correct (and builtin-only, unrolled) should the converter not fuse it; `completed` checks that
it did.
"""

from __future__ import annotations

import dataclasses
import uuid

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from zoo.cells.base import LSTM_GATES
from zoo.cells.structure import LSTMStructure, structure_of
from zoo.export.flatbuffer import pack, unpack
from zoo.layers.recurrent.exported import unrolled

FUSED_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"
FUSED_CODE = schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
# Input slots of the TFLite op (tensorflow/lite/kernels/lstm_shared.h).
INPUT_GATE_SLOTS = (1, 5, 12)  # input_to_input, recurrent_to_input, input_gate_bias
PEEPHOLE_SLOTS = (9, 10, 11)  # cell_to_input, cell_to_forget, cell_to_output
PROJECTION_SLOT = 16
LAYER_NORM_SLOTS = (20, 21, 22, 23)  # i, f, c, o
# The op normalises with ε = 1e-8; a cell's larger ε changes outputs by about ε / (2 var).
MAX_LAYER_NORM_EPSILON = 1e-5


@dataclasses.dataclass
class FusedLSTM:
    """One LSTM layer in the op's terms: converter-facing weights plus what surgery adds.

    `kernel`, `recurrent_kernel`, `bias` have four gate blocks i, f, c, o (the i blocks are
    dropped again when `cifg`); `peepholes` are (p_i or None, p_f, p_o); `projection` is
    (R, H); `layer_norm` the four γ of i, f, c, o.
    """

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray
    cifg: bool = False
    peepholes: tuple | None = None
    projection: np.ndarray | None = None
    layer_norm: tuple | None = None

    @property
    def standard(self) -> bool:
        """Whether the converter alone produces this op (no surgery but the clip)."""
        return not (self.cifg or self.peepholes or self.projection is not None or self.layer_norm)


def _gate_blocks(gates, weight):
    return dict(zip(gates, np.split(weight, len(gates), axis=-1)))


def fusible(structure) -> bool:
    """Whether the op computes a cell of this declared structure exactly."""
    return (
        isinstance(structure, LSTMStructure)
        and structure.activation == "tanh"
        and structure.recurrent_activation == "sigmoid"
        and structure.input_activation
        and structure.output_activation
        and structure.gates == (("i", "c", "o") if structure.coupled else LSTM_GATES)
        and structure.peepholes in ((), tuple(g for g in structure.gates if g != "c"))
        and not structure.cell_norm
        and (structure.epsilon or 0.0) <= MAX_LAYER_NORM_EPSILON
    )


def lstm_spec(cell, value=keras.ops.convert_to_numpy) -> FusedLSTM | None:
    """The fused-op form of `cell`, read from its declared structure
    (`zoo.cells.structure`), or None if the op cannot compute it exactly. `value(variable)`:
    a weight's NumPy value (an export reads them from its snapshot while it traces)."""
    structure = structure_of(cell)
    if not fusible(structure):
        return None
    gates = structure.gates
    kernel = _gate_blocks(gates, value(cell.kernel))
    recurrent = _gate_blocks(gates, value(cell.recurrent_kernel))
    bias = (
        _gate_blocks(gates, value(cell.bias))
        if cell.use_bias
        else {g: np.zeros(cell.units, np.float32) for g in gates}
    )
    peep = {g: value(getattr(cell, f"peephole_{g}")) for g in structure.peepholes}
    spec = {}
    if structure.coupled:
        # f_ours = 1 - i_ours = σ(-z_i): the op's computed forget gate is the negated input gate.
        for blocks in (kernel, recurrent, bias):
            blocks["f"] = -blocks["i"]
        spec["cifg"] = True
        if peep:
            spec["peepholes"] = (None, -peep["i"], peep["o"])
    elif peep:
        spec["peepholes"] = tuple(peep.get(g) for g in "ifo")
    if structure.projection:
        spec["projection"] = value(cell.projection_kernel).T
    if structure.epsilon is not None:
        spec["layer_norm"] = tuple(np.split(value(cell.gate_gamma), 4))

    def join(blocks):
        return np.concatenate([blocks[g] for g in "ifco"], axis=-1).astype(np.float32)

    return FusedLSTM(join(kernel), join(recurrent), join(bias), **spec)


def fused_lstm_function(cell, value=keras.ops.convert_to_numpy):
    """A tf.function, annotated for fusion, that runs `cell` over a sequence (`value`: as
    in `lstm_spec`).

    Its body runs the cell unrolled (`zoo.layers.recurrent.exported.unrolled`) with the cell's
    weights as constants (snapshotted now), so it captures nothing and keeps the six arguments
    the converter expects.
    """
    variables = list(cell.variables)
    values = [value(v) for v in variables]

    def sequence(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        mapping = [(v, tf.constant(value)) for v, value in zip(variables, values)]
        with keras.StatelessScope(state_mapping=mapping):
            output, outputs, states = unrolled(cell, inputs, [init_h, init_c])
        return output, outputs, states[0], states[1], tf.constant(1.0)

    return tf.function(
        sequence,
        autograph=False,
        experimental_attributes={
            "api_implements": f"lstm_{uuid.uuid4()}",
            "api_preferred_device": "CPU",
            "time_major": False,
            "go_backwards": False,
        },
    )


def _private_copy(tensor, inputs, index):
    """`tensor`, through an op the converter cannot fold away (max with a float32 far below
    any state, distinct per `index` so that two copies never merge). A constant `tensor`
    (zero states the layer made itself) is first tied to the `inputs` (plus 0 · x): the
    converter would fold any op of a constant alone into one more constant, and the op would
    then keep the states it wrote into the next call."""
    if tf.get_static_value(tensor) is not None:
        tensor += 0.0 * tf.reshape(inputs[:, 0, 0], (-1, 1))
    return tf.maximum(tensor, np.finfo(np.float32).min / (index + 1))


def fused_sequence(function, spec, inputs, states):
    """`outputs` (B, T, R) of the fused `function` over `inputs` from `states` [r, c].

    The op takes its initial states as variable tensors and overwrites them with its final
    ones, so it gets private copies: anything else reading `states` (`final_states`) would
    otherwise read them after the op ran, and the next call would start from them.
    """
    return function(
        inputs,
        _private_copy(states[0], inputs, 0),
        _private_copy(states[1], inputs, 1),
        spec.kernel,
        spec.recurrent_kernel,
        spec.bias,
    )[1]


def _op_gates(spec, per_gate=True):
    """The op's gate equations (module docstring) on `spec`'s weights, for any leading shape:
    `linear(x, r)` -> the four W_g x + R_g r, `gate(z, index, name, c)` -> a gate's
    pre-activation, `cell_update(z, c)` -> (f, i ⊙ g). The matmuls read one weight tensor per
    gate block, as the converted op does (`per_gate`), or one over all four gates, as the
    cell's own step does: whichever the file already holds, so that it stores each weight once
    (the converter merges equal float constants; a quantiser quantises each op's own)."""
    blocks = {
        g: np.split(w, 4, axis=-1)
        for g, w in (("x", spec.kernel), ("r", spec.recurrent_kernel), ("b", spec.bias))
    }
    peepholes = dict(zip("ifo", spec.peepholes or (None,) * 3))
    norms = dict(zip("ifco", spec.layer_norm or (None,) * 4))

    def linear(x, r, indices=range(4)):
        if not per_gate:
            z = tf.split(tf.matmul(x, spec.kernel) + tf.matmul(r, spec.recurrent_kernel), 4, -1)
            return {i: z[i] for i in indices}
        return {i: tf.matmul(x, blocks["x"][i]) + tf.matmul(r, blocks["r"][i]) for i in indices}

    def gate(z, index, name, cell=None):
        if peepholes.get(name) is not None:
            z += peepholes[name] * cell
        if norms[name] is not None:
            mean, variance = tf.nn.moments(z, axes=[-1], keepdims=True)
            z = (z - mean) * tf.math.rsqrt(variance + 1e-8) * norms[name]
        return z + blocks["b"][index]

    def cell_update(z, c):
        f = tf.sigmoid(gate(z[1], 1, "f", c))
        i = 1.0 - f if spec.cifg else tf.sigmoid(gate(z[0], 0, "i", c))
        return f, i * tf.tanh(gate(z[2], 2, "c"))

    return linear, gate, cell_update


def op_step(spec, x, states):
    """One step of the TFLite op's equations (module docstring) on `spec`'s weights.

    The streaming `step` signature of a fused layer uses this rather than the cell, so its
    weights are byte for byte the fused op's per-gate tensors and the converter stores them
    once for both signatures. Measured on a 2-layer H=512 language model: 13.3 MB instead of
    26.4 MB, for a step about 10% slower (179 against 161 µs p50, 2 threads, loaded machine)
    than one matmul over all four gates.
    """
    r, c = states
    linear, gate, cell_update = _op_gates(spec)
    z = linear(x, r)
    f, update = cell_update(z, c)
    c = f * c + update
    h = tf.sigmoid(gate(z[3], 3, "o", c)) * tf.tanh(c)
    if spec.projection is not None:
        h = tf.matmul(h, spec.projection.T)
    return h, [h, c]


def final_states(spec, inputs, outputs, states, per_gate=True):
    """The op's final states [r_T, c_T] after `outputs` (B, T, R) from `states` [r_0, c_0].

    The op returns r_t only and keeps c internal, so c_T is recomputed from what it
    returned: the gates' matmuls for every step at once from x_t and r_{t-1} (one
    FULLY_CONNECTED per gate over B·T rows), then c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t unrolled
    element-wise over the T steps (with peepholes the gates read c_{t-1}, so they are
    computed inside that loop too). The output gate is not needed. `per_gate`: see `_op_gates`.
    """
    r, c = states
    batch, time = outputs.shape[0], outputs.shape[1]
    previous = tf.concat([r[:, None], outputs[:, :-1]], axis=1)
    linear, _, cell_update = _op_gates(spec, per_gate)
    z = linear(
        tf.reshape(inputs, (batch * time, -1)),
        tf.reshape(previous, (batch * time, -1)),
        indices=range(3),
    )
    z = {i: tf.reshape(value, (batch, time, -1)) for i, value in z.items()}
    if spec.peepholes:
        for t in range(time):
            f, update = cell_update({i: value[:, t] for i, value in z.items()}, c)
            c = f * c + update
    else:
        forgets, updates = cell_update(z, None)
        for f, update in zip(tf.unstack(forgets, axis=1), tf.unstack(updates, axis=1)):
            c = f * c + update
    return [outputs[:, -1], c]


def _constant(model, subgraph, value, name):
    """Append a float32 constant tensor (and its buffer) to a ModelT; return its index."""
    value = np.ascontiguousarray(value, np.float32)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(value.tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.shape, tensor.type = list(value.shape), schema.TensorType.FLOAT32
    tensor.buffer, tensor.name = len(model.buffers) - 1, name
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def _drop_unused_constants(model, subgraph, tensors):
    """Empty the buffers of `tensors` that no op and no other tensor use any more."""
    used = {i for op in subgraph.operators for i in op.inputs}
    buffers = [t.buffer for t in subgraph.tensors]
    for index in tensors - used - {-1}:
        buffer = buffers[index]
        if buffer > 0 and buffers.count(buffer) == 1:
            model.buffers[buffer].data = None


def completed(flatbuffer: bytes, specs) -> bytes:
    """`flatbuffer` with each fused LSTM op completed from `specs` (one per op, in order).

    Adds the peephole, projection and layer-norm tensors, drops the input gate of CIFG
    layers (and its weights), and sets cell_clip to 0 (no clipping, as in Keras). Raises if
    the converter did not fuse every layer of `specs`.
    """
    model = unpack(flatbuffer)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    for subgraph in model.subgraphs:
        ops = [op for op in subgraph.operators if codes[op.opcodeIndex] == FUSED_CODE]
        if not ops:
            continue
        if len(ops) != len(specs):
            raise RuntimeError(
                f"The converter fused {len(ops)} of {len(specs)} LSTM layers; the others "
                "would run with the wrong equations."
            )
        dropped = set()
        for index, (op, spec) in enumerate(zip(ops, specs)):
            op.builtinOptions.cellClip = 0.0
            inputs = list(op.inputs)
            extras = []
            if spec.peepholes:
                extras += zip(
                    PEEPHOLE_SLOTS, spec.peepholes, ("peephole_i", "peephole_f", "peephole_o")
                )
            if spec.projection is not None:
                extras.append((PROJECTION_SLOT, spec.projection, "projection"))
            if spec.layer_norm:
                extras += zip(LAYER_NORM_SLOTS, spec.layer_norm, ("ln_i", "ln_f", "ln_c", "ln_o"))
            for slot, value, name in extras:
                if value is not None:
                    inputs[slot] = _constant(model, subgraph, value, f"lstm_{index}/{name}")
            if spec.cifg:
                dropped.update(inputs[slot] for slot in INPUT_GATE_SLOTS)
                for slot in INPUT_GATE_SLOTS:
                    inputs[slot] = -1
            op.inputs = inputs
        _drop_unused_constants(model, subgraph, dropped)
    return pack(model, len(flatbuffer))
