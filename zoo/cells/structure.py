"""What a cell declares about its step, so that fast paths and the export read, not guess.

A zoo cell answers three questions for the sequence layer (`zoo.layers.Recurrent`):

- `recurrent_state`: which of its states the step multiplies by the recurrent kernel (the
  layer computes that product and passes it to `step`), or None when the step has no such
  single product;
- `stochastic`: whether the step draws random numbers when training;
- `input_rank`: the axes of one step's input after the batch axis (1 for vectors);

and one for the fast kernels and the TFLite fusion: `structure`, the canonical description
of its arithmetic below (or None when it is neither an LSTM nor a GRU in these terms). Both
`zoo.layers.recurrent` (cuDNN, TF's BlockLSTM) and `zoo.export.fusion` (TFLite's fused LSTM
op) decide from it alone.
"""

from __future__ import annotations

import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class LSTMStructure:
    """An LSTM-family step in the common terms (z = W x_t + R r_{t-1}, per gate block):

        i_t = σ(z_i + p_i ⊙ c_{t-1} + b_i)           1 without an input gate
        f_t = σ(z_f + p_f ⊙ c_{t-1} + b_f)           1 without, 1 - i_t when `coupled`
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g(z_c + b_c)     g = activation, or identity
        o_t = σ(z_o + p_o ⊙ c_t + b_o)               1 without an output gate
        h_t = o_t ⊙ h(c_t),  r_t = h_t P             h = activation, or identity; P optional

    With `epsilon` (ε of a layer norm), each gate's z is layer-normalised and scaled by its block of
    `gate_gamma` before the bias; `cell_norm` also normalises c_t before h.

    Weights, by name on the cell: `kernel`, `recurrent_kernel`, `bias` with the blocks of
    `gates` in that order; `peephole_<g>` for the gates in `peepholes`; `projection_kernel`
    (H, R) with `projection`; `gate_gamma` with layer norm. Greff et al.'s full gate
    recurrence is outside these terms (such a cell declares no structure).
    """

    gates: tuple[str, ...] = ("i", "f", "c", "o")
    peepholes: tuple[str, ...] = ()
    coupled: bool = False
    input_activation: bool = True
    output_activation: bool = True
    projection: bool = False
    epsilon: float | None = None
    cell_norm: bool = False
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"

    @property
    def plain(self) -> bool:
        """Whether this is exactly `keras.layers.LSTMCell`'s arithmetic (cuDNN's LSTM)."""
        return self == LSTMStructure()

    @property
    def block_lstm(self) -> bool:
        """Whether TF's BlockLSTM op computes it (a missing gate held open by its bias)."""
        return (
            not (self.coupled or self.projection or self.epsilon is not None)
            and self.input_activation
            and self.output_activation
            and "c" in self.gates
            and self._standard_activations
        )

    @property
    def _standard_activations(self) -> bool:
        return self.activation == "tanh" and self.recurrent_activation == "sigmoid"


@dataclasses.dataclass(frozen=True)
class GRUStructure:
    """A GRU step (Cho et al. 2014), gate blocks z, r, h; `reset_after` as in Keras."""

    reset_after: bool = True
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"

    @property
    def plain(self) -> bool:
        """Whether this is exactly cuDNN's GRU (`keras.layers.GRUCell(reset_after=True)`)."""
        return self == GRUStructure()


def activation_name(function) -> str:
    """The registered name of an activation function ("tanh"), or its repr if it has none."""
    try:
        return keras.activations.serialize(function)
    except ValueError:
        return repr(function)


def structure_of(cell) -> LSTMStructure | GRUStructure | None:
    """The declared structure of a zoo cell, or that of a Keras LSTM/GRU cell; else None."""
    declared = getattr(cell, "structure", None)
    if declared is not None:
        return declared
    if type(cell) not in (keras.layers.LSTMCell, keras.layers.GRUCell):
        return None  # a subclass may change the arithmetic
    if cell.dropout or cell.recurrent_dropout:
        return None  # a random step, not these equations
    activations = {
        "activation": activation_name(cell.activation),
        "recurrent_activation": activation_name(cell.recurrent_activation),
    }
    if type(cell) is keras.layers.LSTMCell:
        return LSTMStructure(**activations)
    return GRUStructure(reset_after=cell.reset_after, **activations)
