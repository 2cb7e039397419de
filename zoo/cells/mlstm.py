"""xLSTM's matrix-memory LSTM (mLSTM): the recurrent cell and its chunk-wise parallel form."""

import math

from keras import ops

from zoo.cells.base import RecurrentCell
from zoo.cells.slstm import check_heads, exponential_gates
from zoo.registry import CELLS

_NEG = -1e30  # log of a gate that is "off" (exp underflows to 0 without inf arithmetic)


@CELLS.register("mlstm")
class MLSTMCell(RecurrentCell):
    """mLSTM cell: a (d x d) matrix memory per head, written with key-value outer products.

        q_t = W_q x_t + b_q,  k_t = (W_k x_t + b_k) / √d,  v_t = W_v x_t + b_v
        ĩ_t, f̃_t = w_i x_t + b_i, w_f x_t + b_f               (one scalar per head)
        o_t = σ(W_o x_t + b_o)
        m_t = max(log σ(f̃_t) + m_{t-1}, ĩ_t)
        i'_t = exp(ĩ_t - m_t),  f'_t = exp(log σ(f̃_t) + m_{t-1} - m_t)
        C_t = f'_t C_{t-1} + i'_t v_t k_tᵀ,   n_t = f'_t n_{t-1} + i'_t k_t
        h_t = o_t ⊙ C_t q_t / max(|n_tᵀ q_t|, exp(-m_t))

    C and n are the paper's states scaled by exp(-m_t), so the bound exp(-m_t) is the paper's
    max(|nᵀq|, 1). There is no recurrence into the gates: `parallel` computes a whole sequence
    chunk by chunk with the same outputs and final states.

    States (flat, for keras.layers.RNN): C (heads*d*d), n (units), m (heads).
    Weights: `kernel` (X, 4H + 2*heads) and `bias`, blocks q, k, v, o (H each), then ĩ and f̃
    (heads each); no recurrent kernel.

    Args:
        units: size of h (= heads * d).
        num_heads: number of heads (must divide units).
        **kwargs: see `RecurrentCell` (`recurrent_activation` is the output gate's σ;
            `activation` is unused: the mLSTM has no squashing).

    Example:
        cell = MLSTMCell(64, num_heads=4)
        y = keras.layers.RNN(cell, return_sequences=True)(x)     # step by step
        y, states = cell.parallel(x)                              # the same, chunk-wise

    Paper: M. Beck et al., "xLSTM: Extended Long Short-Term Memory", NeurIPS 2024.
    """

    paper = "Beck et al. 2024, xLSTM: Extended Long Short-Term Memory"
    gates = ("q", "k", "v", "o")

    def __init__(self, units, num_heads=1, **kwargs):
        super().__init__(units, **kwargs)
        self.num_heads = check_heads(self.units, num_heads)

    @property
    def head_size(self):
        return self.units // self.num_heads

    @property
    def state_size(self):
        return [self.num_heads * self.head_size**2, self.units, self.num_heads]

    @property
    def output_size(self):
        return self.units

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                "MLSTMCell expects inputs of rank 2 (batch, features) per time step. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        width = 4 * self.units + 2 * self.num_heads
        self.kernel = self.add_cell_weight("kernel", (input_shape[-1], width), "kernel")
        self.bias = self.add_cell_weight("bias", (width,), "bias") if self.use_bias else None
        self.built = True

    def _split(self, projected):
        """q, k, v, o (..., heads, d) and ĩ, log f (..., heads) from projected inputs."""
        units, heads = self.units, self.num_heads
        q, k, v, o, i, f = ops.split(
            projected, [units, 2 * units, 3 * units, 4 * units, 4 * units + heads], axis=-1
        )
        shape = (*ops.shape(projected)[:-1], heads, self.head_size)
        q, k, v, o = (ops.reshape(t, shape) for t in (q, k, v, o))
        return q, k / math.sqrt(self.head_size), v, o, i, ops.log_sigmoid(f)

    recurrent_state = None  # no recurrent kernel: C and n carry the past

    def step(self, projected, recurrent, states, training=False):
        heads, d = self.num_heads, self.head_size
        C = ops.reshape(states[0], (-1, heads, d, d))
        n = ops.reshape(states[1], (-1, heads, d))
        q, k, v, o, i_pre, log_f = self._split(projected)
        i, f, m = exponential_gates(i_pre, log_f, states[2])
        C = f[..., None, None] * C + i[..., None, None] * v[..., :, None] * k[..., None, :]
        n = f[..., None] * n + i[..., None] * k
        numerator = ops.einsum("bhvk,bhk->bhv", C, q)
        denominator = ops.maximum(ops.abs(ops.sum(n * q, axis=-1)), ops.exp(-m))
        h = self.recurrent_activation(o) * numerator / denominator[..., None]
        h = ops.reshape(h, (-1, self.units))
        return h, [ops.reshape(C, (-1, heads * d * d)), ops.reshape(n, (-1, self.units)), m]

    def parallel(self, inputs, initial_state=None, mask=None, chunk_size=32):
        """All outputs of a (batch, time, features) sequence at once, chunk by chunk.

        Equal to running the cell in `keras.layers.RNN(return_sequences=True,
        return_state=True)`; masked steps leave the state unchanged (their outputs are not
        defined). Returns (outputs (batch, time, units), [C, n, m]). It trains several times
        faster than the recurrent loop on a CPU (benchmarks/attempts.md).
        """
        heads, d = self.num_heads, self.head_size
        q, k, v, o, i_pre, log_f = self._split(self.project_inputs(inputs))
        if mask is not None:
            mask = ops.cast(mask, "bool")[..., None]
            i_pre = ops.where(mask, i_pre, _NEG)
            log_f = ops.where(mask, log_f, 0.0)
        batch = ops.shape(inputs)[0]
        if initial_state is None:
            initial_state = self.get_initial_state(batch)
        C0 = ops.reshape(initial_state[0], (-1, heads, d, d))
        n0 = ops.reshape(initial_state[1], (-1, heads, d))
        heads_first = [ops.moveaxis(t, 1, 2) for t in (q, k, v, i_pre, log_f)]
        h, (C, n, m) = mlstm_chunkwise(*heads_first, (C0, n0, initial_state[2]), chunk_size)
        h = ops.reshape(ops.moveaxis(h, 1, 2), (batch, ops.shape(inputs)[1], self.units))
        outputs = self.recurrent_activation(ops.reshape(o, ops.shape(h))) * h
        return outputs, [ops.reshape(C, (-1, heads * d * d)), ops.reshape(n, (-1, self.units)), m]

    def parameter_formula(self):
        """N: number of heads."""
        bias = " + 4*H + 2*N" if self.use_bias else ""
        return f"X*(4*H + 2*N){bias}"

    def parameter_symbols(self):
        return {**super().parameter_symbols(), "N": self.num_heads}

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}


def mlstm_chunkwise(q, k, v, i_pre, log_f, state, chunk_size=32):
    """The mLSTM recurrence over whole chunks: quadratic inside a chunk, recurrent across.

    q, k, v: (batch, heads, time, d) (k already scaled by 1/√d); i_pre, log_f: (batch, heads,
    time); state: (C (batch, heads, d, d), n (batch, heads, d), m (batch, heads)), stabilised
    as in `MLSTMCell`. With b_t the cumulative log forget gate inside a chunk, step t sees
    D_ts = b_t - b_s + ĩ_s for the steps s <= t of its chunk and b_t + m_0 for the state the chunk
    started from; m_t = max of these is exactly the recurrent stabiliser.

    Returns (h̃ (batch, heads, time, d), final state), h̃ before the output gate.
    """
    steps = ops.shape(q)[2]
    pad = (-steps) % chunk_size
    if pad:
        q, k, v = (ops.pad(t, [(0, 0), (0, 0), (0, pad), (0, 0)]) for t in (q, k, v))
        i_pre = ops.pad(i_pre, [(0, 0), (0, 0), (0, pad)], constant_values=_NEG)
        log_f = ops.pad(log_f, [(0, 0), (0, 0), (0, pad)])
    batch, heads, d = ops.shape(q)[0], ops.shape(q)[1], ops.shape(q)[3]

    def chunked(t):
        return ops.reshape(t, (batch, heads, -1, chunk_size, *ops.shape(t)[3:]))

    q, k, v, i_pre, log_f = (chunked(t) for t in (q, k, v, i_pre, log_f))
    b = ops.cumsum(log_f, axis=-1)  # (batch, heads, chunks, L)

    # What each chunk adds to the state, stabilised by its own maximum.
    total = b[..., -1]
    weight = total[..., None] - b + i_pre
    m_local = ops.max(weight, axis=-1)
    weight = ops.exp(weight - m_local[..., None])
    C_chunk = ops.einsum("bhcl,bhclv,bhclk->bhcvk", weight, v, k)
    n_chunk = ops.einsum("bhcl,bhclk->bhck", weight, k)

    def carry_over(carry, chunk):
        C, n, m = carry
        total, m_local, n_chunk, C_chunk = ops.split(chunk, [1, 2, 2 + d], axis=-1)
        total, m_local = total[..., 0], m_local[..., 0]
        m_new = ops.maximum(total + m, m_local)
        old, new = ops.exp(total + m - m_new), ops.exp(m_local - m_new)
        carried = (
            old[..., None, None] * C + new[..., None, None] * ops.reshape(C_chunk, ops.shape(C)),
            old[..., None] * n + new[..., None] * n_chunk,
            m_new,
        )
        return carried, (C, n, m)

    # One tensor per chunk (keras.ops.scan needs a single sequence when the length is dynamic).
    C_chunk = ops.reshape(C_chunk, (batch, heads, -1, d * d))
    per_chunk = ops.concatenate([total[..., None], m_local[..., None], n_chunk, C_chunk], axis=-1)
    final, entering = ops.scan(carry_over, tuple(state), ops.moveaxis(per_chunk, 2, 0))
    C0, n0, m0 = (ops.moveaxis(t, 0, 2) for t in entering)  # state entering each chunk

    causal = ops.tril(ops.ones((chunk_size, chunk_size), dtype="bool"))
    D = ops.where(causal, b[..., :, None] - b[..., None, :] + i_pre[..., None, :], _NEG)
    inter = b + m0[..., None]
    m = ops.maximum(ops.max(D, axis=-1), inter)
    scores = ops.einsum("bhctd,bhcsd->bhcts", q, k) * ops.exp(D - m[..., None])
    inter_scale = ops.exp(inter - m)
    numerator = ops.einsum("bhcts,bhcsd->bhctd", scores, v) + inter_scale[..., None] * ops.einsum(
        "bhcvk,bhctk->bhctv", C0, q
    )
    denominator = ops.sum(scores, axis=-1) + inter_scale * ops.einsum("bhck,bhctk->bhct", n0, q)
    h = numerator / ops.maximum(ops.abs(denominator), ops.exp(-m))[..., None]
    h = ops.reshape(h, (batch, heads, -1, d))[:, :, :steps]
    return h, final
