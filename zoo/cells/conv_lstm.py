"""The peephole convolutional LSTM (Shi et al. 2015) for 1-D, 2-D and 3-D inputs."""

import math

import keras
from keras import ops

from zoo.cells.base import RecurrentCell, accepts_old_names, add_bias
from zoo.registry import CELLS


def _tuple(name, value, rank):
    """`value` (int or sequence of `rank` ints) as a tuple of positive ints, or a ValueError."""
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(values) != rank or not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(
            f"Argument `{name}` must be a positive int or {rank} positive ints. "
            f"Received: {name}={value!r}"
        )
    return values


@keras.saving.register_keras_serializable(package="zoo")
class ConvRNN(keras.layers.RNN):
    """`keras.layers.RNN` for cells whose states are feature maps (`ConvLSTMCell`).

    The same layer, plus the output shape computed from the cell, so that it also works in
    functional models and inside `keras.layers.Bidirectional`.
    """

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        state = self.cell.compute_output_shape((batch, *sequences_shape[2:]))
        output = (batch, steps, *state[1:]) if self.return_sequences else state
        return (output, state, state) if self.return_state else output

    def compute_mask(self, _, mask):
        mask = keras.tree.flatten(mask)[0] if mask is not None else None
        output_mask = mask if self.return_sequences else None
        return [output_mask, None, None] if self.return_state else output_mask


@CELLS.register("conv_lstm")
class ConvLSTMCell(RecurrentCell):
    """Convolutional LSTM cell with Hadamard peepholes; states are feature maps.

        i_t = σ(W_i * x_t + U_i * h_{t-1} + V_i ⊙ c_{t-1} + b_i)
        f_t = σ(W_f * x_t + U_f * h_{t-1} + V_f ⊙ c_{t-1} + b_f)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ tanh(W_c * x_t + U_c * h_{t-1} + b_c)
        o_t = σ(W_o * x_t + U_o * h_{t-1} + V_o ⊙ c_t + b_o)
        h_t = o_t ⊙ tanh(c_t)

    `*` is a convolution (`U * h` always with "same" padding and stride 1), `⊙` the
    element-wise product. Inputs per step are channels-last maps (batch, *spatial, channels)
    with `rank` spatial axes; h and c are (batch, *state_spatial, filters).

    Weights (Keras's ConvLSTM layout, blocks i, f, c, o on the last axis): `kernel`
    (*kernel_size, channels, 4F), `recurrent_kernel` (*kernel_size, F, 4F), `bias` (4F);
    with `use_peepholes`, `peephole_i`, `peephole_f`, `peephole_o`, each of the state's full
    shape (*state_spatial, F), so the spatial input size must be known when building.
    With `use_peepholes=False` the cell computes exactly `keras.layers.ConvLSTM{1,2,3}D`.

    `keras.layers.RNN` runs the cell eagerly; symbolic (functional) models need `ConvRNN`,
    which knows the spatial output shape.

    Args:
        filters: number of feature maps F of h and c.
        kernel_size: int or `rank` ints, the window of both convolutions.
        rank: 1, 2 or 3 spatial axes.
        strides, padding, dilation_rate: of the input convolution W * x.
        use_peepholes: whether to use the V ⊙ c terms (`peepholes` is accepted as the same
            argument so that configs saved under that name load).
        unit_forget_bias: initialise the forget-gate bias to 1.
        **kwargs: see `RecurrentCell`.

    Example:
        ConvRNN(ConvLSTMCell(16, 3), return_sequences=True)   # on (batch, time, 32, 32, 1)

    Paper: X. Shi, Z. Chen, H. Wang, D.-Y. Yeung, W. Wong, W. Woo, "Convolutional LSTM
    Network: A Machine Learning Approach for Precipitation Nowcasting", NeurIPS 2015.
    """

    paper = "Shi et al. 2015, Convolutional LSTM Network"
    example_input_shape = (8, 8, 2)  # the shape zoo.testing's checks feed one step
    input_rank = 3  # (*spatial, channels) at the default rank 2; set for each cell's rank
    sequence_layer = ConvRNN  # its states are feature maps

    @accepts_old_names(peepholes="use_peepholes")
    def __init__(
        self,
        filters,
        kernel_size=3,
        rank=2,
        strides=1,
        padding="same",
        dilation_rate=1,
        use_peepholes=True,
        unit_forget_bias=True,
        **kwargs,
    ):
        super().__init__(filters, **kwargs)
        if rank not in (1, 2, 3):
            raise ValueError(f"Argument `rank` must be 1, 2 or 3. Received: rank={rank!r}")
        if str(padding).lower() not in ("same", "valid"):
            raise ValueError(
                f'Argument `padding` must be "same" or "valid". Received: padding={padding!r}'
            )
        self.rank = rank
        self.kernel_size = _tuple("kernel_size", kernel_size, rank)
        self.strides = _tuple("strides", strides, rank)
        self.dilation_rate = _tuple("dilation_rate", dilation_rate, rank)
        self.padding = str(padding).lower()
        self.use_peepholes = bool(use_peepholes)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.example_input_shape = (8,) * rank + (2,)
        self.input_rank = rank + 1

    @property
    def filters(self):
        return self.units

    # -- shapes ----------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        """Shape of h (and c) for a per-step input shape (batch, *spatial, channels)."""
        spatial = []
        for size, k, s, d in zip(
            input_shape[1:-1], self.kernel_size, self.strides, self.dilation_rate
        ):
            if size is None:
                spatial.append(None)
            elif self.padding == "same":
                spatial.append(-(-size // s))
            else:
                spatial.append((size - d * (k - 1) - 1) // s + 1)
        return (input_shape[0], *spatial, self.filters)

    @property
    def state_size(self):
        """Flat sizes of h and c (the RNN layer needs ints; the real shapes are maps)."""
        size = math.prod(self.state_shape) if getattr(self, "state_shape", None) else -1
        return [size, size]

    @property
    def output_size(self):
        return self.state_size[0]

    def get_initial_state(self, batch_size=None):
        shape = (batch_size, *self.state_shape)
        return [ops.zeros(shape, dtype=self.compute_dtype) for _ in range(2)]

    # -- weights ---------------------------------------------------------------------------------
    def build(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"ConvLSTMCell(rank={self.rank}) expects inputs of rank {self.rank + 2} "
                f"(batch, *spatial, channels) per step. Received: input_shape={tuple(input_shape)}"
            )
        channels = input_shape[-1]
        self.state_shape = self.compute_output_shape(input_shape)[1:]
        if None in self.state_shape or channels is None:
            raise ValueError(
                "ConvLSTMCell needs static spatial and channel sizes. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        width = 4 * self.filters
        self.kernel = self.add_cell_weight("kernel", (*self.kernel_size, channels, width), "kernel")
        self.recurrent_kernel = self.add_cell_weight(
            "recurrent_kernel", (*self.kernel_size, self.filters, width), "recurrent"
        )
        self.bias = (
            self.add_cell_weight("bias", (width,), "bias", self.initial_bias())
            if self.use_bias
            else None
        )
        if self.use_peepholes:
            for gate in ("i", "f", "o"):
                setattr(
                    self,
                    f"peephole_{gate}",
                    self.add_cell_weight(
                        f"peephole_{gate}",
                        self.state_shape,
                        "recurrent",
                        keras.initializers.Zeros(),
                    ),
                )
        self.built = True

    # -- computation -----------------------------------------------------------------------------
    def project_inputs(self, inputs):
        """W * x + b on (batch, *spatial, channels) or (batch, time, *spatial, channels)."""
        shape = ops.shape(inputs)
        timed = len(inputs.shape) == self.rank + 3
        if timed:
            inputs = ops.reshape(inputs, (-1, *inputs.shape[2:]))
        projected = ops.conv(
            inputs,
            self.kernel,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
        )
        if self.bias is not None:
            projected = add_bias(projected, self.bias)
        if timed:
            projected = ops.reshape(projected, (shape[0], shape[1], *projected.shape[1:]))
        return projected

    def multiply_recurrent(self, recurrent_input, kernel):
        """The recurrent convolution U * h ("same" padding, stride 1)."""
        return ops.conv(recurrent_input, kernel, padding="same")

    def step(self, projected, recurrent, states, training=False):
        c_prev = states[1]
        z = projected + recurrent
        z = dict(zip(self.gates, ops.split(z, 4, axis=-1)))
        sigma = self.recurrent_activation
        if self.use_peepholes:
            z["i"] = z["i"] + self.peephole_i * c_prev
            z["f"] = z["f"] + self.peephole_f * c_prev
        c = sigma(z["f"]) * c_prev + sigma(z["i"]) * self.activation(z["c"])
        o = sigma(z["o"] + self.peephole_o * c if self.use_peepholes else z["o"])
        h = o * self.activation(c)
        return h, [h, c]

    # -- documentation and config ------------------------------------------------------------------
    def parameter_formula(self):
        """X: input channels, H: filters, K: kernel volume, S: state map size (rows*cols*...)."""
        bias = " + 4*H" if self.use_bias else ""
        peepholes = " + 3*S*H" if self.use_peepholes else ""
        return f"4*K*X*H + 4*K*H*H{bias}{peepholes}"

    def parameter_symbols(self):
        state_map = math.prod(self.state_shape[:-1])
        return {**super().parameter_symbols(), "K": math.prod(self.kernel_size), "S": state_map}

    def get_config(self):
        config = super().get_config()
        config["filters"] = config.pop("units")
        config.update(
            kernel_size=self.kernel_size,
            rank=self.rank,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            use_peepholes=self.use_peepholes,
            unit_forget_bias=self.unit_forget_bias,
        )
        return config
