"""The layer-normalised LSTM (Ba, Kiros & Hinton 2016)."""

import keras
from keras import ops

from zoo.cells.base import RecurrentCell
from zoo.cells.structure import LSTMStructure
from zoo.registry import CELLS


@CELLS.register("layer_norm_lstm")
class LayerNormLSTMCell(RecurrentCell):
    """LSTM with layer normalisation of each gate's pre-activation and of the cell state.

        a_t = W x_t + U h_{t-1}                                   (4H, blocks i, f, c, o)
        (i, f, g, o) = γ ⊙ LN(a_t, per gate block) + b
        c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
        h_t = σ(o) ⊙ tanh(γ_c ⊙ LN(c_t) + β_c)                     (cell_norm=True)

    LN(a) = (a - mean(a)) / sqrt(var(a) + ε) over the H units of one gate. Ba et al. normalise
    the input and recurrent terms separately; like TF Addons and TFLite's layer-norm LSTM we
    normalise their sum, per gate. With `cell_norm=False` the cell is exactly TFLite's fused
    layer-norm LSTM.

    Weights: `kernel` (X, 4H), `recurrent_kernel` (H, 4H), `bias` (4H, the β of the gates),
    `gate_gamma` (4H); with cell_norm, `cell_gamma` and `cell_beta` (H).

    Args:
        units: size of h and c.
        cell_norm: also normalise c_t before the output activation (as in the paper).
        epsilon: ε of the normalisation.
        **kwargs: see `RecurrentCell`.

    Example:
        keras.layers.RNN(LayerNormLSTMCell(256))

    Paper: J. L. Ba, J. R. Kiros, G. E. Hinton, "Layer Normalization", arXiv:1607.06450, 2016.
    """

    paper = "Ba, Kiros & Hinton 2016, Layer Normalization"

    def __init__(self, units, cell_norm=True, epsilon=1e-5, **kwargs):
        super().__init__(units, **kwargs)
        self.cell_norm = bool(cell_norm)
        if not epsilon > 0:
            raise ValueError(f"Argument `epsilon` must be positive. Received: epsilon={epsilon!r}")
        self.epsilon = float(epsilon)

    def build_extra_weights(self, input_dim):
        ones = keras.initializers.Ones()
        width = 4 * self.units
        self.gate_gamma = self.add_weight(name="gate_gamma", shape=(width,), initializer=ones)
        if self.cell_norm:
            shape = (self.units,)
            self.cell_gamma = self.add_weight(name="cell_gamma", shape=shape, initializer=ones)
            self.cell_beta = self.add_weight(name="cell_beta", shape=shape, initializer="zeros")

    def _normalize(self, x):
        mean, variance = ops.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * ops.rsqrt(variance + self.epsilon)

    def project_inputs(self, inputs):
        # The bias is added after normalisation, so it stays out of the hoisted projection.
        return ops.matmul(inputs, self.kernel)

    @property
    def structure(self):
        return LSTMStructure(
            epsilon=self.epsilon, cell_norm=self.cell_norm, **self.activation_names()
        )

    def step(self, projected, recurrent, states, training=False):
        c_prev = states[1]
        blocks = self.split_gates(projected + recurrent)
        normalized = ops.concatenate([self._normalize(blocks[g]) for g in self.gates], axis=-1)
        normalized = normalized * self.gate_gamma
        if self.use_bias:
            normalized = normalized + self.bias
        z = self.split_gates(normalized)
        sigma = self.recurrent_activation
        c = sigma(z["f"]) * c_prev + sigma(z["i"]) * self.activation(z["c"])
        shown = self._normalize(c) * self.cell_gamma + self.cell_beta if self.cell_norm else c
        h = sigma(z["o"]) * self.activation(shown)
        return h, [h, c]

    def parameter_formula(self):
        return super().parameter_formula() + " + 4*H" + (" + 2*H" if self.cell_norm else "")

    def get_config(self):
        return {**super().get_config(), "cell_norm": self.cell_norm, "epsilon": self.epsilon}
