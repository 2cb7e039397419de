"""The LSTM with a recurrent projection layer, LSTMP (Sak, Senior & Beaufays 2014)."""

from keras import ops

from zoo.cells.base import RecurrentCell, accepts_old_names, check_units
from zoo.cells.structure import LSTMStructure
from zoo.registry import CELLS


@CELLS.register("projection_lstm")
class ProjectionLSTMCell(RecurrentCell):
    """LSTM whose output is projected to a smaller recurrent state (LSTMP).

        i_t = σ(W_ix x_t + W_ir r_{t-1} [+ p_i ⊙ c_{t-1}] + b_i)
        f_t = σ(W_fx x_t + W_fr r_{t-1} [+ p_f ⊙ c_{t-1}] + b_f)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ tanh(W_cx x_t + W_cr r_{t-1} + b_c)
        o_t = σ(W_ox x_t + W_or r_{t-1} [+ p_o ⊙ c_t] + b_o)
        m_t = o_t ⊙ tanh(c_t)
        r_t = W_rm m_t                                   (output and recurrent state)

    Weights: `kernel` (X, 4H), `recurrent_kernel` (P, 4H), `bias` (4H), blocks i, f, c, o;
    `projection_kernel` (H, P); with peepholes `peephole_i`, `peephole_f`, `peephole_o` (H,).
    States: [r (P), c (H)]; output r (P). The same layout as TFLite's LSTM op with projection.

    Args:
        units: H, size of the cell state.
        projection_units: P, size of the projected output and recurrent state (`units` of
            the projection, as Keras names a layer's output size; `proj_size` is accepted as
            the same argument so that configs saved under that name load).
        use_peepholes: the diagonal peepholes of the paper (off by default, as in
            `tf.compat.v1.nn.rnn_cell.LSTMCell`).
        **kwargs: see `RecurrentCell`.

    Example:
        keras.layers.RNN(ProjectionLSTMCell(1024, projection_units=256))

    Paper: H. Sak, A. Senior, F. Beaufays, "Long Short-Term Memory Recurrent Neural Network
    Architectures for Large Scale Acoustic Modeling", Interspeech 2014.
    """

    paper = "Sak, Senior & Beaufays 2014, LSTM RNN Architectures for Large Scale Acoustic Modeling"

    @accepts_old_names(proj_size="projection_units")
    def __init__(self, units, projection_units=None, use_peepholes=False, **kwargs):
        super().__init__(units, **kwargs)
        self.projection_units = check_units(
            "projection_units", units // 2 if projection_units is None else projection_units
        )
        self.use_peepholes = bool(use_peepholes)

    @property
    def recurrent_size(self):
        return self.projection_units

    def build_extra_weights(self, input_dim):
        self.projection_kernel = self.add_cell_weight(
            "projection_kernel", (self.units, self.projection_units), "kernel"
        )
        if self.use_peepholes:
            self.add_peepholes(("i", "f", "o"))

    def _peep(self, preactivation, gate, cell):
        if self.use_peepholes:
            preactivation = preactivation + getattr(self, f"peephole_{gate}") * cell
        return self.recurrent_activation(preactivation)

    @property
    def structure(self):
        return LSTMStructure(
            peepholes=("i", "f", "o") if self.use_peepholes else (),
            projection=True,
            **self.activation_names(),
        )

    def step(self, projected, recurrent, states, training=False):
        c_prev = states[1]
        z = self.split_gates(projected + recurrent)
        i = self._peep(z["i"], "i", c_prev)
        f = self._peep(z["f"], "f", c_prev)
        c = f * c_prev + i * self.activation(z["c"])
        o = self._peep(z["o"], "o", c)
        r = ops.matmul(o * self.activation(c), self.projection_kernel)
        return r, [r, c]

    def parameter_formula(self):
        bias = " + H" if self.use_bias else ""
        peepholes = " + 3*H" if self.use_peepholes else ""
        return f"4*(X*H + P*H{bias}) + H*P{peepholes}"

    def parameter_symbols(self):
        return {**super().parameter_symbols(), "P": self.projection_units}

    def get_config(self):
        return {
            **super().get_config(),
            "projection_units": self.projection_units,
            "use_peepholes": self.use_peepholes,
        }
