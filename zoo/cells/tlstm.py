"""The time-aware LSTM (Baytas et al. 2017) for irregularly spaced sequences."""

import math

from keras import ops

from zoo.cells.lstm import LSTMCell
from zoo.registry import CELLS


@CELLS.register("tlstm")
class TLSTMCell(LSTMCell):
    """Time-aware LSTM: the short-term part of the memory decays with the elapsed time Δt.

        c^S_{t-1} = tanh(W_d c_{t-1} + b_d)                  short-term memory
        c*_{t-1} = (c_{t-1} - c^S_{t-1}) + c^S_{t-1} · g(Δt)  long-term + discounted short-term
        g(Δt) = 1 / log(e + Δt)
        c_t = f_t ⊙ c*_{t-1} + i_t ⊙ tanh(W_c x_t + U_c h_{t-1} + b_c)   an LSTM on c*_{t-1}
        h_t = o_t ⊙ tanh(c_t)

    Input convention: the LAST feature of each step is Δt >= 0, the time elapsed since the
    previous element (any unit; 0 for the first step; negative values count as 0); the other X
    features are x_t. With
    Δt = 0, g = 1 and the cell is exactly `LSTMCell` with the same weights. Masked steps leave
    the state unchanged (keras.layers.RNN); Δt of the next unmasked step should then count
    from the last unmasked one.

    Weights: those of `LSTMCell` for the X features (`kernel` (X, 4H), `recurrent_kernel`,
    `bias`), plus `decomposition_kernel` W_d (H, H) and `decomposition_bias` b_d (H).

    Args:
        units: size of h and c.
        **kwargs: see `LSTMCell`.

    Example:
        x = ops.concatenate([features, delta_t[..., None]], axis=-1)   # (batch, time, X + 1)
        keras.layers.RNN(TLSTMCell(64))(x)

    Paper: I. M. Baytas, C. Xiao, X. Zhang, F. Wang, A. K. Jain, J. Zhou, "Patient Subtyping
    via Time-Aware LSTM Networks", KDD 2017.
    """

    paper = "Baytas et al. 2017, Patient Subtyping via Time-Aware LSTM Networks"

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                "TLSTMCell expects inputs of rank 2 (batch, features + Δt) per time step. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        if input_shape[-1] is not None and input_shape[-1] < 2:
            raise ValueError(
                "TLSTMCell needs at least one feature besides Δt (the last feature). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        super().build((input_shape[0], input_shape[-1] - 1))

    def build_extra_weights(self, input_dim):
        self.decomposition_kernel = self.add_cell_weight(
            "decomposition_kernel", (self.units, self.units), "recurrent"
        )
        self.decomposition_bias = self.add_cell_weight("decomposition_bias", (self.units,), "bias")

    def project_inputs(self, inputs):
        """x @ kernel + bias with Δt appended as the last column; any leading axes."""
        return ops.concatenate(
            [super().project_inputs(inputs[..., :-1]), inputs[..., -1:]], axis=-1
        )

    def step(self, projected, recurrent, states, training=False):
        projected, delta_t = projected[..., :-1], projected[..., -1:]
        c_prev = states[1]
        short = ops.tanh(ops.matmul(c_prev, self.decomposition_kernel) + self.decomposition_bias)
        discount = 1.0 / ops.log(math.e + ops.maximum(delta_t, 0.0))
        adjusted = c_prev - short + short * discount
        return super().step(projected, recurrent, [states[0], adjusted], training=training)

    def parameter_formula(self):
        """X: input features without Δt."""
        return f"{super().parameter_formula()} + H*H + H"
