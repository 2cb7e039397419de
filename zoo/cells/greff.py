"""Greff et al. 2015's vanilla LSTM and its eight variants, as one parameterised cell.

Each variant is a subclass that changes class attributes only; the arithmetic is shared.
"""

from keras import ops

from zoo.cells.base import RecurrentCell
from zoo.cells.structure import LSTMStructure
from zoo.registry import CELLS

GREFF_PAPER = "Greff et al. 2015, LSTM: A Search Space Odyssey"


@CELLS.register("vanilla_lstm")
class VanillaLSTMCell(RecurrentCell):
    """Greff et al.'s vanilla LSTM: forget gate and diagonal peepholes.

        z_t = g(W_z x_t + R_z y_{t-1} + b_z)                          cell input
        i_t = σ(W_i x_t + R_i y_{t-1} + p_i ⊙ c_{t-1} + b_i)          input gate
        f_t = σ(W_f x_t + R_f y_{t-1} + p_f ⊙ c_{t-1} + b_f)          forget gate
        c_t = z_t ⊙ i_t + c_{t-1} ⊙ f_t
        o_t = σ(W_o x_t + R_o y_{t-1} + p_o ⊙ c_t + b_o)              output gate
        y_t = h(c_t) ⊙ o_t                                            g = h = tanh

    Weights: `kernel` (X, 4H), `recurrent_kernel` (H, 4H), `bias` (4H), blocks i, f, c (= z), o,
    and `peephole_i`, `peephole_f`, `peephole_o`, each (H,). The variants drop the blocks and
    peepholes of the gates they remove (NIG: f, c, o; NFG and CIFG: i, c, o; NOG: i, f, c).

    The variants (subclasses, one registry name each): NIG (i_t = 1), NFG (f_t = 1), NOG
    (o_t = 1), NIAF (g = identity), NOAF (h = identity), NP (no peepholes), CIFG
    (f_t = 1 - i_t), FGR (full gate recurrence: i, f, o of step t-1 feed i, f, o of step t
    through the extra (3H, 3H) `gate_recurrent_kernel`, rows and columns in order i, f, o).

    Example:
        keras.layers.RNN(zoo.cells.get("cifg_lstm")(128))

    Paper: K. Greff, R. K. Srivastava, J. Koutník, B. R. Steunebrink, J. Schmidhuber,
    "LSTM: A Search Space Odyssey", IEEE TNNLS 28(10), 2017 (arXiv:1503.04069, 2015).
    """

    paper = GREFF_PAPER
    input_gate = True
    forget_gate = "learned"  # or "none" (f = 1) or "coupled" (f = 1 - i)
    output_gate = True
    use_peepholes = True
    input_activation = True  # False: g = identity
    output_activation = True  # False: h = identity
    full_gate_recurrence = False

    @property
    def gates(self):
        present = {
            "i": self.input_gate,
            "f": self.forget_gate == "learned",
            "c": True,
            "o": self.output_gate,
        }
        return tuple(gate for gate, keep in present.items() if keep)

    @property
    def peephole_gates(self):
        return tuple(g for g in self.gates if g != "c") if self.use_peepholes else ()

    @property
    def state_size(self):
        extra = [3 * self.units] if self.full_gate_recurrence else []
        return [self.units, self.units, *extra]

    def build_extra_weights(self, input_dim):
        self.add_peepholes(self.peephole_gates)
        if self.full_gate_recurrence:
            self.gate_recurrent_kernel = self.add_cell_weight(
                "gate_recurrent_kernel", (3 * self.units, 3 * self.units), "recurrent"
            )

    def _gate(self, z, gate, cell):
        if gate not in z:
            return 1.0
        if gate in self.peephole_gates:
            return self.recurrent_activation(z[gate] + getattr(self, f"peephole_{gate}") * cell)
        return self.recurrent_activation(z[gate])

    @property
    def structure(self):
        if self.full_gate_recurrence:
            return None
        return LSTMStructure(
            gates=self.gates,
            peepholes=self.peephole_gates,
            coupled=self.forget_gate == "coupled",
            input_activation=self.input_activation,
            output_activation=self.output_activation,
            **self.activation_names(),
        )

    def step(self, projected, recurrent, states, training=False):
        c_prev = states[1]
        z = self.split_gates(projected + recurrent)
        if self.full_gate_recurrence:
            previous = ops.matmul(states[2], self.gate_recurrent_kernel)
            for gate, term in self.split_gates(previous, ("i", "f", "o")).items():
                z[gate] = z[gate] + term
        i = self._gate(z, "i", c_prev)
        f = 1.0 - i if self.forget_gate == "coupled" else self._gate(z, "f", c_prev)
        g = self.activation(z["c"]) if self.input_activation else z["c"]
        c = f * c_prev + i * g
        o = self._gate(z, "o", c)
        h = o * (self.activation(c) if self.output_activation else c)
        if self.full_gate_recurrence:
            return h, [h, c, ops.concatenate([i, f, o], axis=-1)]
        return h, [h, c]

    def parameter_formula(self):
        formula = super().parameter_formula()
        if self.peephole_gates:
            formula += f" + {len(self.peephole_gates)}*H"
        if self.full_gate_recurrence:
            formula += " + 9*H*H"
        return formula


@CELLS.register("nig_lstm")
class NIGLSTMCell(VanillaLSTMCell):
    """Greff's NIG variant: no input gate, i_t = 1. See `VanillaLSTMCell`."""

    input_gate = False


@CELLS.register("nfg_lstm")
class NFGLSTMCell(VanillaLSTMCell):
    """Greff's NFG variant: no forget gate, f_t = 1. See `VanillaLSTMCell`."""

    forget_gate = "none"


@CELLS.register("nog_lstm")
class NOGLSTMCell(VanillaLSTMCell):
    """Greff's NOG variant: no output gate, o_t = 1. See `VanillaLSTMCell`."""

    output_gate = False


@CELLS.register("niaf_lstm")
class NIAFLSTMCell(VanillaLSTMCell):
    """Greff's NIAF variant: no input activation function, g(x) = x. See `VanillaLSTMCell`."""

    input_activation = False


@CELLS.register("noaf_lstm")
class NOAFLSTMCell(VanillaLSTMCell):
    """Greff's NOAF variant: no output activation function, h(x) = x. See `VanillaLSTMCell`."""

    output_activation = False


@CELLS.register("np_lstm")
class NPLSTMCell(VanillaLSTMCell):
    """Greff's NP variant: no peepholes. See `VanillaLSTMCell`."""

    use_peepholes = False


@CELLS.register("cifg_lstm")
class CIFGLSTMCell(VanillaLSTMCell):
    """Greff's CIFG variant: coupled input and forget gate, f_t = 1 - i_t. See `VanillaLSTMCell`."""

    forget_gate = "coupled"


@CELLS.register("fgr_lstm")
class FGRLSTMCell(VanillaLSTMCell):
    """Greff's FGR variant: full gate recurrence (9 extra H x H matrices). See `VanillaLSTMCell`."""

    full_gate_recurrence = True
