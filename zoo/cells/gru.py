"""The gated recurrent unit (Cho et al. 2014)."""

from keras import ops

from zoo.cells.base import RecurrentCell
from zoo.cells.structure import GRUStructure
from zoo.registry import CELLS


@CELLS.register("gru")
class GRUCell(RecurrentCell):
    """Gated recurrent unit; the same math and weights as `keras.layers.GRUCell`.

        z_t = σ(W_z x_t + U_z h_{t-1} + b_z)                      update gate
        r_t = σ(W_r x_t + U_r h_{t-1} + b_r)                      reset gate
        h̃_t = tanh(W_h x_t + U_h (r_t ⊙ h_{t-1}) + b_h)           reset_after=False (the paper)
        h̃_t = tanh(W_h x_t + r_t ⊙ (U_h h_{t-1} + b'_h) + b_h)     reset_after=True (cuDNN)
        h_t = z_t ⊙ h_{t-1} + (1 - z_t) ⊙ h̃_t

    Weights: `kernel` (X, 3H), `recurrent_kernel` (H, 3H), blocks z, r, h; `bias` (3H), or
    (2, 3H) with reset_after (row 0 input bias, row 1 recurrent bias b').

    Args:
        units: size of h.
        reset_after: apply the reset gate after the recurrent matmul (Keras's and cuDNN's
            default) instead of before it (the paper).
        **kwargs: see `RecurrentCell`.

    Example:
        keras.layers.RNN(GRUCell(128, reset_after=False))

    Paper: K. Cho, B. van Merriënboer, C. Gulcehre, D. Bahdanau, F. Bougares, H. Schwenk,
    Y. Bengio, "Learning Phrase Representations using RNN Encoder-Decoder for Statistical
    Machine Translation", EMNLP 2014.
    """

    gates = ("z", "r", "h")
    paper = "Cho et al. 2014, Learning Phrase Representations using RNN Encoder-Decoder"

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    @property
    def state_size(self):
        return [self.units]

    def bias_shape(self, width):
        return (2, width) if self.reset_after else (width,)

    @property
    def input_bias(self):
        if self.bias is not None and self.reset_after:
            return self.bias[0]
        return self.bias

    @property
    def recurrent_state(self):
        """h_{t-1}; None without reset_after, whose step multiplies r ⊙ h_{t-1} as well."""
        return 0 if self.reset_after else None

    @property
    def structure(self):
        return GRUStructure(reset_after=self.reset_after, **self.activation_names())

    def step(self, projected, recurrent, states, training=False):
        h_prev = states[0]
        x = self.split_gates(projected)
        if self.reset_after:
            inner = recurrent
            if self.use_bias:
                inner = inner + self.bias[1]
            u = self.split_gates(inner)
        else:
            zr_kernel = self.recurrent_kernel[:, : 2 * self.units]
            u = self.split_gates(ops.matmul(h_prev, zr_kernel), ("z", "r"))
        z = self.recurrent_activation(x["z"] + u["z"])
        r = self.recurrent_activation(x["r"] + u["r"])
        if self.reset_after:
            recurrent_h = r * u["h"]
        else:
            recurrent_h = ops.matmul(r * h_prev, self.recurrent_kernel[:, 2 * self.units :])
        candidate = self.activation(x["h"] + recurrent_h)
        h = z * h_prev + (1.0 - z) * candidate
        return h, [h]

    def parameter_formula(self):
        bias = (" + 2*H" if self.reset_after else " + H") if self.use_bias else ""
        return f"3*(X*H + H*H{bias})"

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}
