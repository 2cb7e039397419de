"""The peephole LSTM: gates look at the cell state instead of the hidden state."""

import keras

from zoo.cells.base import RecurrentCell, get_activation
from zoo.registry import CELLS


@CELLS.register("peephole_lstm")
class PeepholeLSTMCell(RecurrentCell):
    """Peephole LSTM cell: the gates read c_{t-1} through full matrices U; no h recurrence.

        f_t = σ(W_f x_t + U_f c_{t-1} + b_f)
        i_t = σ(W_i x_t + U_i c_{t-1} + b_i)
        o_t = σ(W_o x_t + U_o c_{t-1} + b_o)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ σ_c(W_c x_t + b_c)
        h_t = o_t ⊙ σ_h(c_t)

    Weights: `kernel` (X, 4H) and `bias` (4H), blocks i, f, c, o; `recurrent_kernel` (H, 3H)
    acting on c_{t-1}, blocks i, f, o.

    Args:
        units: size of h and c.
        output_activation: σ_h, "tanh" (default) or "linear" (identity), as the peephole paper
            suggests.
        **kwargs: see `RecurrentCell` (`activation` is σ_c).

    Example:
        keras.layers.RNN(PeepholeLSTMCell(64, output_activation="linear"))

    Paper: F. A. Gers, J. Schmidhuber, "Recurrent Nets that Time and Count", IJCNN 2000;
    F. A. Gers, N. N. Schraudolph, J. Schmidhuber, "Learning Precise Timing with LSTM
    Recurrent Networks", JMLR 3, 2002.
    """

    paper = "Gers & Schmidhuber 2000, Recurrent Nets that Time and Count"
    recurrent_kernel_gates = ("i", "f", "o")
    recurrent_state = 1  # the recurrent kernel multiplies c_{t-1}

    def __init__(self, units, output_activation="tanh", **kwargs):
        super().__init__(units, **kwargs)
        self.output_activation = get_activation("output_activation", output_activation)

    def step(self, projected, recurrent, states, training=False):
        c_prev = states[1]
        x = self.split_gates(projected)
        u = self.split_gates(recurrent, self.recurrent_kernel_gates)
        sigma = self.recurrent_activation
        c = sigma(x["f"] + u["f"]) * c_prev + sigma(x["i"] + u["i"]) * self.activation(x["c"])
        h = sigma(x["o"] + u["o"]) * self.output_activation(c)
        return h, [h, c]

    def parameter_formula(self):
        bias = " + 4*H" if self.use_bias else ""
        return f"4*X*H + 3*H*H{bias}"

    def get_config(self):
        return {
            **super().get_config(),
            "output_activation": keras.activations.serialize(self.output_activation),
        }
