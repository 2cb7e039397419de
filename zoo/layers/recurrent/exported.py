"""How recurrent layers run while a model is traced for export: the `exporting` scope.

    with exporting(fuse="all", share_weights=True) as scope:
        outputs, states = model.prefill(x, states)    # every Recurrent layer: fused or unrolled
    scope.layers                                      # what ran, in order (for the manifest)

Inside the scope a recurrent layer's whole sequence (the `exported` strategy of `Recurrent`)
is one TFLite LSTM op where `fuse` allows and the cell's declared structure is one the op
computes (`zoo.export.fusion`), else the `unrolled` loop: a graph with no loop op, no
variable, builtin ops only. A step (`Recurrent.step`) is the cell's own step, or the op's
equations on the op's per-gate weights (`share_weights`: the file then stores each weight
once for both signatures). Outside the scope nothing changes.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses

import keras
import tensorflow as tf

FUSE_MODES = ("all", "standard", "none")
_SCOPE: contextvars.ContextVar[ExportScope | None] = contextvars.ContextVar(
    "zoo_export_scope", default=None
)


@dataclasses.dataclass
class RunLayer:
    """One recurrent layer as it ran in the scope: its cell, the fused op's form of it (None
    when unrolled), and its state shapes."""

    cell: object
    spec: object | None
    state_shapes: list


@dataclasses.dataclass
class ExportScope:
    """What the scope asks (`fuse`, `share_weights`), the weights' values it reads (`values`,
    a snapshot: while a graph is traced the variables are symbolic) and what ran (`layers`,
    in call order)."""

    fuse: str = "all"
    share_weights: bool = True
    values: dict = dataclasses.field(default_factory=dict)  # id(variable) -> NumPy value
    layers: list = dataclasses.field(default_factory=list)
    _functions: dict = dataclasses.field(default_factory=dict)

    def spec(self, cell):
        """The fused op's form of `cell` if this scope fuses it, else None."""
        if self.fuse == "none":
            return None
        from zoo.export import fusion  # the TFLite op's math: only when exporting

        spec = fusion.lstm_spec(cell, self.value)
        return spec if spec is not None and (self.fuse == "all" or spec.standard) else None

    def function(self, cell):
        """The converter-facing fused function of `cell` (one per cell and scope)."""
        from zoo.export import fusion

        if id(cell) not in self._functions:
            self._functions[id(cell)] = fusion.fused_lstm_function(cell, self.value)
        return self._functions[id(cell)]

    def value(self, variable):
        """The NumPy value of a Keras variable: from the snapshot, else read now."""
        found = self.values.get(id(variable))
        return found if found is not None else keras.ops.convert_to_numpy(variable)

    @property
    def fused_specs(self) -> tuple:
        """The specs of the fused layers, in op order (for `fusion.completed`)."""
        return tuple(layer.spec for layer in self.layers if layer.spec is not None)


@contextlib.contextmanager
def exporting(fuse: str = "all", share_weights: bool = True, values=None):
    """Run recurrent layers as exports need them (module docstring) inside the block;
    `values`: {id(variable): NumPy value} of the model's weights, for a block that traces."""
    if fuse not in FUSE_MODES:
        raise ValueError(
            f"Argument `fuse` must be one of {', '.join(FUSE_MODES)}. Received: fuse={fuse!r}"
        )
    scope = ExportScope(fuse, share_weights, dict(values or {}))
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def current() -> ExportScope | None:
    """The active export scope, or None."""
    return _SCOPE.get()


def unrolled(cell, sequences, initial_state, mask=None, go_backwards=False):
    """(last output, outputs (B, T, ...), final states) of `cell` over the static T steps of
    `sequences`, as a Python loop. A masked step keeps the states and repeats the previous
    output, as `keras.layers.RNN` does; outputs come in processing order."""
    steps = range(sequences.shape[1])
    states, output, outputs = list(initial_state), None, []
    for t in reversed(steps) if go_backwards else steps:
        new_output, new_states = cell(sequences[:, t], states, training=False)
        new_states = tf.nest.flatten(new_states)
        if mask is not None:
            keep = mask[:, t, None]
            new_states = [tf.where(keep, n, s) for n, s in zip(new_states, states)]
            new_output = tf.where(
                keep, new_output, tf.zeros_like(new_output) if output is None else output
            )
        states, output = new_states, new_output
        outputs.append(output)
    return output, tf.stack(outputs, axis=1), states


def applies(layer, sequences, mask, training):
    """Inside an export scope, for sequences of a static length."""
    return current() is not None and sequences.shape[1] is not None


def run(layer, sequences, initial_state, mask, training):
    """(last output, outputs, final states): the fused op, or the unrolled loop."""
    outputs, states = _exported(layer.cell, sequences, initial_state, mask, layer.go_backwards)
    last = outputs[:, -1]
    return last, outputs if layer.return_sequences else last[:, None], states


def sequence(layer, sequences, states) -> tuple:
    """(outputs (B, T, ...), final states) of any recurrent layer (a `keras.layers.RNN`, a
    `Recurrent`) over `sequences` from `states`: as the export scope asks inside one, the
    layer's own call outside."""
    if current() is None:
        outputs, *final = layer(sequences, initial_state=list(states), return_state=True)
        return outputs, final
    return _exported(layer.cell, sequences, list(states), None, layer.go_backwards)


def _exported(cell, sequences, initial_state, mask, go_backwards):
    scope = current()
    spec = scope.spec(cell) if mask is None else None
    scope.layers.append(RunLayer(cell, spec, [tuple(s.shape) for s in initial_state]))
    if spec is None:
        _, outputs, states = unrolled(cell, sequences, initial_state, mask, go_backwards)
        return outputs, states
    from zoo.export import fusion  # the TFLite op's math: only for a fused layer

    if go_backwards:  # the op reads forward; outputs come in processing order either way
        sequences = tf.reverse(sequences, [1])
    outputs = fusion.fused_sequence(scope.function(cell), spec, sequences, initial_state)
    return outputs, fusion.final_states(
        spec, sequences, outputs, initial_state, scope.share_weights
    )


def step(cell, x, states):
    """One step of `cell`: the fused op's equations on its per-gate weights where the scope
    fuses the cell and shares weights, else the cell's own step."""
    scope = current()
    spec = None if scope is None or not scope.share_weights else scope.spec(cell)
    if spec is None:
        output, new_states = cell(x, states, training=False) if scope else cell(x, states)
        return output, tf.nest.flatten(new_states)
    from zoo.export import fusion

    return fusion.op_step(spec, x, states)
