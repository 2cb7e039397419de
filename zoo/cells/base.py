"""What every zoo cell shares: argument checks, gate-blocked weights, config, and the gate helpers.

A cell computes one time step in three parts so that sequence layers can hoist the first out
of the time loop and own the second:

    projected = cell.project_inputs(x_t)                 # x_t @ kernel + bias (no recurrence)
    recurrent = cell.recurrent_term(states)              # r @ recurrent_kernel, r = the
                                                         # state `cell.recurrent_state`
    output, new_states = cell.step(projected, recurrent, states)   # the rest, a pure function

`call(inputs, states)` chains the three: the Keras cell interface. What else a cell declares
for the fast paths and the export (`stochastic`, `input_rank`, `structure`) is described in
`zoo.cells.structure`.
"""

from __future__ import annotations

import functools
import inspect

import keras
from keras import ops

from zoo.cells.structure import activation_name

# Gate names used in weight layouts: input, forget, cell input (candidate), output.
LSTM_GATES = ("i", "f", "c", "o")


def add_bias(x, bias):
    """x + bias over the last axis, with a fast and exact bias gradient on TensorFlow.

    A broadcast add's gradient is a Sum over the leading axes, slow on a CPU. In float32 this
    is `tf.nn.bias_add`, whose gradient kernel (BiasAddGrad) is several times faster;
    BiasAddGrad accumulates in the tensor's dtype, 6.5% off in bfloat16, so there the gradient
    is a matmul of a row of ones with the output gradient (float32 accumulation, as exact as
    the Sum and faster). The timings are in benchmarks/attempts.md."""
    if keras.backend.backend() != "tensorflow":
        return x + bias
    import tensorflow as tf  # the backend in use

    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype == "float32":
        return tf.nn.bias_add(x, bias)

    @tf.custom_gradient
    def bias_add(x, bias):
        def gradient(d_y):
            rows = tf.reshape(d_y, [-1, d_y.shape[-1]])
            ones = tf.ones(tf.stack([1, tf.shape(rows)[0]]), d_y.dtype)
            return d_y, tf.reshape(tf.matmul(ones, rows), tf.shape(bias))

        return tf.nn.bias_add(x, bias), gradient

    return bias_add(x, ops.cast(bias, dtype))


def check_units(name: str, value) -> int:
    """`value` as a positive int, or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"Argument `{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return value


def get_activation(name: str, value):
    """`keras.activations.get(value)` with an error that names the argument."""
    try:
        return keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"Unknown activation for argument `{name}`. Received: {name}={value!r}"
        ) from None


def accepts_old_names(**new_names):
    """Decorate a cell's `__init__` to take each old argument name as its new one, so that
    configs saved under the old name (`.keras` files, presets) load unchanged.

    Example: `@accepts_old_names(proj_size="projection_units")`."""

    def decorate(init):
        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            for old, new in new_names.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(
                            f"{type(self).__name__}: got both `{old}` and `{new}`, "
                            f"two names of one argument; pass `{new}` only"
                        )
                    kwargs[new] = kwargs.pop(old)
            init(self, *args, **kwargs)

        # Keras reads the signature to record a layer's arguments: show it the real one.
        __init__.__signature__ = inspect.signature(init)
        return __init__

    return decorate


class RecurrentCell(keras.layers.Layer):
    """Base class of the zoo's cells (not registered itself).

    Subclasses set `gates` (the order of the blocks in `kernel`, `recurrent_kernel` and
    `bias`; `recurrent_kernel_gates` if the recurrent kernel has fewer), `paper`, and
    implement `step`; they add weights beyond the three standard ones in
    `build_extra_weights`, and declare what differs from the defaults of `recurrent_state`
    (0: the step multiplies h_{t-1}), `stochastic` (False), `input_rank` (1), `structure`
    (None, see `zoo.cells.structure`) and `parallel` (None: no whole-sequence form).

    Args:
        units: positive int, size of the hidden state.
        activation: cell-input and output activation (tanh).
        recurrent_activation: gate activation (sigmoid).
        use_bias: whether the gates have a bias.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of the
            input weights, the recurrent weights and the biases.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: their regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: their constraints.
    """

    gates: tuple[str, ...] = LSTM_GATES
    paper: str = ""
    # The declared contract (zoo.cells.structure): which state the recurrent kernel
    # multiplies (None: the step takes no such single product), whether the step draws random
    # numbers when training, the axes of one step's input after the batch axis, and the
    # sequence layer the cell needs beyond `keras.layers.RNN` (None: any, e.g. `Recurrent`), and
    # the cell's own whole-sequence form `parallel(inputs, initial_state) -> (outputs, states)`
    # that `Recurrent` runs instead of the loop (None: none; a method, as mLSTM's chunk-wise form).
    recurrent_state: int | None = 0
    stochastic: bool = False
    input_rank: int = 1
    sequence_layer: type | None = None
    parallel = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A subclass that changes the arithmetic without declaring its structure has none: the
        # inherited declaration describes its parent's step.
        changes = ("step", "project_inputs", "multiply_recurrent", "recurrent_term")
        if any(name in cls.__dict__ for name in changes) and "structure" not in cls.__dict__:
            cls.structure = None

    @property
    def structure(self):
        """The canonical description of the step's arithmetic (`zoo.cells.structure`), read
        by cuDNN, TF's BlockLSTM and the TFLite fusion; None: none of them applies."""
        return None

    def activation_names(self) -> dict:
        """`activation` and `recurrent_activation` by name, as a structure records them."""
        return {
            "activation": activation_name(self.activation),
            "recurrent_activation": activation_name(self.recurrent_activation),
        }

    @property
    def recurrent_kernel_gates(self) -> tuple[str, ...]:
        """The gate blocks of `recurrent_kernel` (all gates, unless a cell says otherwise)."""
        return self.gates

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_units("units", units)
        self.activation = get_activation("activation", activation)
        self.recurrent_activation = get_activation("recurrent_activation", recurrent_activation)
        self.use_bias = bool(use_bias)
        self._weight_args = {}
        for kind, initializer, regularizer, constraint in (
            ("kernel", kernel_initializer, kernel_regularizer, kernel_constraint),
            ("recurrent", recurrent_initializer, recurrent_regularizer, recurrent_constraint),
            ("bias", bias_initializer, bias_regularizer, bias_constraint),
        ):
            self._weight_args[kind] = {
                "initializer": keras.initializers.get(initializer),
                "regularizer": keras.regularizers.get(regularizer),
                "constraint": keras.constraints.get(constraint),
            }

    # -- sizes -------------------------------------------------------------------------------
    @property
    def recurrent_size(self) -> int:
        """Width of the recurrent input of the gates (the hidden state, unless projected)."""
        return self.units

    @property
    def state_size(self):
        return [self.recurrent_size, self.units]

    @property
    def output_size(self):
        return self.recurrent_size

    # -- weights -----------------------------------------------------------------------------
    def add_cell_weight(self, name, shape, kind, initializer=None):
        """A weight using the settings of `kind`: "kernel", "recurrent" or "bias"."""
        args = dict(self._weight_args[kind])
        if initializer is not None:
            args["initializer"] = initializer
        return self.add_weight(name=name, shape=shape, **args)

    def build(self, input_shape):
        if len(input_shape) != 1 + self.input_rank:
            raise ValueError(
                f"{type(self).__name__} expects inputs of rank {1 + self.input_rank} (batch, "
                f"features) per time step. Received: input_shape={tuple(input_shape)}"
            )
        input_dim = input_shape[-1]
        width = len(self.gates) * self.units
        self.kernel = self.add_cell_weight("kernel", (input_dim, width), "kernel")
        self.recurrent_kernel = self.add_cell_weight(
            "recurrent_kernel",
            (self.recurrent_size, len(self.recurrent_kernel_gates) * self.units),
            "recurrent",
        )
        self.bias = (
            self.add_cell_weight("bias", self.bias_shape(width), "bias", self.initial_bias())
            if self.use_bias
            else None
        )
        self.build_extra_weights(input_dim)
        self.built = True

    def bias_shape(self, width):
        """Shape of `bias` for `width` gate units (GRU with reset_after has two rows)."""
        return (width,)

    @property
    def input_bias(self):
        """The bias added to the input projection (None without bias)."""
        return self.bias

    def initial_bias(self):
        """Initializer of `bias`: ones on the forget-gate block if the cell has
        `unit_forget_bias` set (Jozefowicz et al. 2015), the bias initializer elsewhere."""
        if not getattr(self, "unit_forget_bias", False):
            return None
        base = self._weight_args["bias"]["initializer"]
        units, before = self.units, self.gates.index("f")
        after = len(self.gates) - before - 1

        def initializer(shape, dtype=None):
            return ops.concatenate(
                [
                    base((before * units,), dtype=dtype),
                    keras.initializers.Ones()((units,), dtype=dtype),
                    base((after * units,), dtype=dtype),
                ]
            )

        return initializer

    def build_extra_weights(self, input_dim):
        """Weights beyond kernel, recurrent_kernel and bias (peepholes, norms, projections)."""

    def add_peepholes(self, gate_names):
        """Diagonal peephole weights `peephole_<gate>`, each (units,), for the given gates."""
        for gate in gate_names:
            setattr(
                self,
                f"peephole_{gate}",
                self.add_cell_weight(
                    f"peephole_{gate}", (self.units,), "recurrent", keras.initializers.Zeros()
                ),
            )

    # -- computation ---------------------------------------------------------------------------
    def project_inputs(self, inputs):
        """The input part of every gate pre-activation: inputs @ kernel + bias.

        Works on one step (batch, features) and on a sequence (batch, time, features) alike:
        part of the contract, sequence layers project all steps at once.
        """
        projected = ops.matmul(inputs, self.kernel)
        return projected if self.input_bias is None else add_bias(projected, self.input_bias)

    def split_gates(self, preactivation, gates=None):
        """Split a (batch, G*units) tensor into a dict gate name -> (batch, units)."""
        gates = self.gates if gates is None else gates
        return dict(zip(gates, ops.split(preactivation, len(gates), axis=-1)))

    def multiply_recurrent(self, recurrent_input, kernel):
        """The product of a state with the recurrent kernel, `recurrent_input @ kernel`.

        Linear in both arguments and batched over any leading axes; cells whose recurrence is
        another product (per-head blocks, a convolution) override it.
        """
        return ops.matmul(recurrent_input, kernel)

    def recurrent_term(self, states):
        """The step's product with the recurrent kernel: `states[recurrent_state]` times
        `recurrent_kernel` (None for a cell without `recurrent_state`)."""
        if self.recurrent_state is None:
            return None
        return self.multiply_recurrent(states[self.recurrent_state], self.recurrent_kernel)

    def step(self, projected, recurrent, states, training=False):
        """One step from `project_inputs`'s output, `recurrent_term(states)` and the previous
        states: (output, new states). A pure function of its arguments and the weights."""
        raise NotImplementedError

    def call(self, inputs, states, training=False):
        return self.step(
            self.project_inputs(inputs), self.recurrent_term(states), states, training=training
        )

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, n), dtype=self.compute_dtype) for n in self.state_size]

    # -- documentation ---------------------------------------------------------------------------
    def parameter_formula(self) -> str:
        """Number of parameters as a Python expression in X (input width) and H (units)."""
        gates = len(self.gates)
        bias = " + H" if self.use_bias else ""
        return f"{gates}*(X*H + H*H{bias})"

    def parameter_symbols(self) -> dict:
        """Values of the symbols of `parameter_formula()` for this built cell."""
        return {"X": int(self.kernel.shape[-2]), "H": self.units}

    # -- config --------------------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation),
            recurrent_activation=keras.activations.serialize(self.recurrent_activation),
            use_bias=self.use_bias,
        )
        for kind, prefix in (("kernel", "kernel"), ("recurrent", "recurrent"), ("bias", "bias")):
            args = self._weight_args[kind]
            config[f"{prefix}_initializer"] = keras.initializers.serialize(args["initializer"])
            config[f"{prefix}_regularizer"] = keras.regularizers.serialize(args["regularizer"])
            config[f"{prefix}_constraint"] = keras.constraints.serialize(args["constraint"])
        return config
