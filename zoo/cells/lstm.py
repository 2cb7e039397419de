"""The LSTM with a forget gate (Gers, Schmidhuber & Cummins 2000)."""

from zoo.cells.base import RecurrentCell
from zoo.cells.structure import LSTMStructure
from zoo.registry import CELLS


@CELLS.register("lstm")
class LSTMCell(RecurrentCell):
    """LSTM cell with a forget gate; the same math and weights as `keras.layers.LSTMCell`.

        i_t = σ(W_i x_t + U_i h_{t-1} + b_i)
        f_t = σ(W_f x_t + U_f h_{t-1} + b_f)
        o_t = σ(W_o x_t + U_o h_{t-1} + b_o)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ tanh(W_c x_t + U_c h_{t-1} + b_c)
        h_t = o_t ⊙ tanh(c_t)

    Weights: `kernel` (X, 4H), `recurrent_kernel` (H, 4H), `bias` (4H), blocks i, f, c, o.

    Args:
        units: size of h and c.
        unit_forget_bias: initialise the forget-gate bias to 1 (Jozefowicz et al. 2015).
        **kwargs: see `RecurrentCell`.

    Example:
        keras.layers.RNN(LSTMCell(128), return_sequences=True)

    Paper: F. A. Gers, J. Schmidhuber, F. Cummins, "Learning to Forget: Continual Prediction
    with LSTM", Neural Computation 12(10), 2000.
    """

    paper = "Gers, Schmidhuber & Cummins 2000, Learning to Forget"

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def structure(self):
        return LSTMStructure(**self.activation_names())

    def step(self, projected, recurrent, states, training=False):
        c_prev = states[1]
        z = self.split_gates(projected + recurrent)
        sigma = self.recurrent_activation
        c = sigma(z["f"]) * c_prev + sigma(z["i"]) * self.activation(z["c"])
        h = sigma(z["o"]) * self.activation(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}
