"""The original LSTM (Hochreiter & Schmidhuber 1997): no forget gate."""

from zoo.cells.base import RecurrentCell
from zoo.cells.structure import LSTMStructure
from zoo.registry import CELLS


@CELLS.register("lstm_1997")
class LSTM1997Cell(RecurrentCell):
    """LSTM cell without forget gate: the constant error carousel.

        i_t = σ(W_i x_t + U_i h_{t-1} + b_i)
        o_t = σ(W_o x_t + U_o h_{t-1} + b_o)
        c_t = c_{t-1} + i_t ⊙ tanh(W_c x_t + U_c h_{t-1} + b_c)
        h_t = o_t ⊙ tanh(c_t)

    Weights: `kernel` (X, 3H), `recurrent_kernel` (H, 3H), `bias` (3H), blocks i, c, o.
    c_t is never reset, so it can grow without bound on long sequences: that is what the
    forget gate (`lstm`) fixed.

    Example:
        keras.layers.RNN(LSTM1997Cell(64))

    Paper: S. Hochreiter, J. Schmidhuber, "Long Short-Term Memory", Neural Computation 9(8), 1997.
    """

    gates = ("i", "c", "o")
    paper = "Hochreiter & Schmidhuber 1997, Long Short-Term Memory"

    @property
    def structure(self):
        return LSTMStructure(gates=self.gates, **self.activation_names())

    def step(self, projected, recurrent, states, training=False):
        c_prev = states[1]
        z = self.split_gates(projected + recurrent)
        c = c_prev + self.recurrent_activation(z["i"]) * self.activation(z["c"])
        h = self.recurrent_activation(z["o"]) * self.activation(c)
        return h, [h, c]
