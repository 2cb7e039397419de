"""xLSTM's scalar-memory LSTM (sLSTM): exponential gating with a stabiliser, and heads."""

from keras import ops

from zoo.cells.base import RecurrentCell, check_units
from zoo.registry import CELLS


def check_heads(units, num_heads):
    """`num_heads` as a positive int dividing `units`, or a ValueError naming it."""
    num_heads = check_units("num_heads", num_heads)
    if units % num_heads:
        raise ValueError(
            f"Argument `num_heads` must divide `units`. Received: num_heads={num_heads}, "
            f"units={units}"
        )
    return num_heads


def exponential_gates(i_pre, log_f, m_prev, empty=None):
    """Stabilised exponential gating of xLSTM (Beck et al. 2024, eq. 15-17).

        m_t = max(log f_t + m_{t-1}, ĩ_t)
        i'_t = exp(ĩ_t - m_t),  f'_t = exp(log f_t + m_{t-1} - m_t)

    Where `empty` (a boolean tensor) marks a memory that holds nothing yet, m_t = ĩ_t and
    f'_t = 0, as in the authors' code: a large forget gate must not push i'_t to 0 there.
    Returns (i', f', m_t); the states scaled by exp(-m_t) never overflow.
    """
    m = ops.maximum(log_f + m_prev, i_pre)
    if empty is not None:
        m = ops.where(empty, i_pre, m)
    f = ops.exp(ops.minimum(log_f + m_prev - m, 0.0))
    if empty is not None:
        f = ops.where(empty, 0.0, f)
    return ops.exp(i_pre - m), f, m


@CELLS.register("slstm")
class SLSTMCell(RecurrentCell):
    """sLSTM cell: exponential input gate, normaliser state, block-diagonal (per-head) recurrence.

        z̃, ĩ, f̃, õ = W x_t + R h_{t-1} + b              (R block-diagonal, one block per head)
        m_t = max(log f_t + m_{t-1}, ĩ_t)               (log f_t = log σ(f̃) or f̃ if exponential;
                                                         m_t = ĩ_t while n_{t-1} = 0)
        i'_t = exp(ĩ_t - m_t),   f'_t = exp(log f_t + m_{t-1} - m_t)
        c_t = f'_t ⊙ c_{t-1} + i'_t ⊙ tanh(z̃_t)
        n_t = f'_t ⊙ n_{t-1} + i'_t
        h_t = σ(õ_t) ⊙ c_t / n_t

    The stabiliser m_t rescales c and n alike, so h_t is that of the unstabilised
    c_t = f_t c_{t-1} + i_t z_t, n_t = f_t n_{t-1} + i_t with i_t = exp(ĩ_t).
    States: h, c, n, m, each (batch, units).

    Weights: `kernel` (X, 4H) and `bias` (4H), blocks i, f, c (= z), o; `recurrent_kernel`
    (heads, H/heads, 4H/heads): per head, the blocks i, f, c, o of its recurrent matrix.

    Args:
        units: size of h.
        num_heads: number of heads (must divide units); memory mixes only within a head.
        exponential_forget: f_t = exp(f̃) instead of σ(f̃).
        **kwargs: see `RecurrentCell` (`activation` squashes z̃; gates are fixed by the paper).

    Example:
        keras.layers.RNN(SLSTMCell(128, num_heads=4), return_sequences=True)

    Paper: M. Beck, K. Pöppel, M. Spanring, A. Auer, O. Prudnikova, M. Kopp, G. Klambauer,
    J. Brandstetter, S. Hochreiter, "xLSTM: Extended Long Short-Term Memory", NeurIPS 2024.
    """

    paper = "Beck et al. 2024, xLSTM: Extended Long Short-Term Memory"

    def __init__(self, units, num_heads=1, exponential_forget=False, **kwargs):
        super().__init__(units, **kwargs)
        self.num_heads = check_heads(self.units, num_heads)
        self.exponential_forget = bool(exponential_forget)

    @property
    def head_size(self):
        return self.units // self.num_heads

    @property
    def state_size(self):
        return [self.units] * 4

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                "SLSTMCell expects inputs of rank 2 (batch, features) per time step. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        width = 4 * self.units
        self.kernel = self.add_cell_weight("kernel", (input_shape[-1], width), "kernel")
        self.recurrent_kernel = self.add_cell_weight(
            "recurrent_kernel", (self.num_heads, self.head_size, 4 * self.head_size), "recurrent"
        )
        self.bias = self.add_cell_weight("bias", (width,), "bias") if self.use_bias else None
        self.built = True

    def multiply_recurrent(self, recurrent_input, kernel):
        """R h for the block-diagonal R, as (batch, 4H) in gate-major order i, f, c, o."""
        heads, size = self.num_heads, self.head_size
        h = ops.reshape(recurrent_input, (-1, heads, size))
        per_head = ops.einsum("bhd,hde->bhe", h, kernel)
        per_gate = ops.transpose(ops.reshape(per_head, (-1, heads, 4, size)), (0, 2, 1, 3))
        return ops.reshape(per_gate, (-1, 4 * self.units))

    def step(self, projected, recurrent, states, training=False):
        c_prev, n_prev, m_prev = states[1:4]
        z = self.split_gates(projected + recurrent)
        log_f = z["f"] if self.exponential_forget else ops.log_sigmoid(z["f"])
        i, f, m = exponential_gates(z["i"], log_f, m_prev, empty=n_prev == 0)
        c = f * c_prev + i * self.activation(z["c"])
        n = f * n_prev + i
        h = self.recurrent_activation(z["o"]) * c / n
        return h, [h, c, n, m]

    def parameter_formula(self):
        """N: number of heads."""
        bias = " + 4*H" if self.use_bias else ""
        return f"4*X*H + 4*H*H//N{bias}"

    def parameter_symbols(self):
        return {**super().parameter_symbols(), "N": self.num_heads}

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "exponential_forget": self.exponential_forget,
        }
