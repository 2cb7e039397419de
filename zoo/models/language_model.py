"""A token-level language model over any registered cell, with named sizes."""

from __future__ import annotations

import keras

from zoo import cells, metrics
from zoo.cells.base import check_units
from zoo.layers.recurrent import stack_initial_state, stack_layers, stack_sequence, stack_step
from zoo.models.protocol import StepModel

# Named sizes. Data, not code: a size is a dict of `LanguageModel` arguments.
SIZES = {
    "tiny": {"embedding_dim": 16, "units": 32, "layers": 1},
    "small": {"embedding_dim": 64, "units": 256, "layers": 2},
    "medium": {"embedding_dim": 128, "units": 512, "layers": 2},
    "large": {"embedding_dim": 256, "units": 1024, "layers": 3},
}


def token_cells() -> list[str]:
    """Registered cells that take vectors per step (all but spatial ones such as conv_lstm)."""
    return [name for name in cells.names() if cells.get(name).input_rank == 1]


@keras.saving.register_keras_serializable(package="zoo")
class LanguageModel(keras.Model, StepModel):
    """Embedding -> `layers` stacked recurrent layers of any cell -> Dense over the vocabulary.

        e_t = E[w_t],  h^1_t = cell_1(e_t, h^1_{t-1}),  ...,  h^L_t = cell_L(h^{L-1}_t, h^L_{t-1})
        p(w_{t+1} | w_1..w_t) = softmax(W h^L_t + b)

    The model is causal: the logits at t depend on tokens up to t only. That is why it has no
    bidirectional option: a backward layer would read w_{t+1}, the very token it must predict,
    and the loss would collapse to zero without learning anything usable for generation.

    Args:
        vocab_size: number of tokens (including the out-of-vocabulary token).
        cell: name of a registered cell (`zoo.cells.names()`).
        units: hidden size of every recurrent layer.
        layers: number of stacked recurrent layers.
        embedding_dim: width of the token embedding.
        dropout: dropout rate on the embedding and after every recurrent layer.
        cell_kwargs: extra arguments of the cell (e.g. `{"reset_after": False}`).

    Example:
        model = LanguageModel(vocab_size=80, cell="cifg_lstm", units=256, layers=2)
        logits = model(ids)                                    # (batch, time, vocab)
        logits, states = model.step(ids[:, 0], model.initial_state(batch_size))
        logits, states = model.prefill(ids, model.initial_state(batch_size))  # and the states

    Reference: A. Graves, "Generating Sequences With Recurrent Neural Networks", 2013;
    A. Karpathy, J. Johnson, L. Fei-Fei, "Visualizing and Understanding Recurrent Networks", 2015.
    """

    def __init__(
        self,
        vocab_size,
        cell="lstm",
        units=256,
        layers=2,
        embedding_dim=64,
        dropout=0.0,
        cell_kwargs=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("vocab_size", vocab_size),
            ("units", units),
            ("layers", layers),
            ("embedding_dim", embedding_dim),
        ):
            check_units(name, value)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Argument `dropout` must be in [0, 1). Received: dropout={dropout}")
        self.vocab_size, self.cell, self.units = vocab_size, cell, units
        self.num_layers, self.embedding_dim, self.dropout_rate = layers, embedding_dim, dropout
        self.cell_kwargs = dict(cell_kwargs or {})
        if cells.get(cell).input_rank != 1:  # get: an error listing the cells
            raise ValueError(
                f"Cell {cell!r} takes inputs of rank {cells.get(cell).input_rank} per step, not "
                f"token vectors. Received: cell={cell!r}; use one of {token_cells()}"
            )
        policy = self.dtype_policy  # the model's (e.g. mixed_bfloat16), kept in its config
        self.embedding = keras.layers.Embedding(
            vocab_size, embedding_dim, dtype=policy, name="embedding"
        )
        self.recurrent = stack_layers(cell, units, layers, self.cell_kwargs, policy)
        self.dropout = keras.layers.Dropout(dropout, dtype=policy, name="dropout")
        # float32 logits keep the softmax stable under mixed precision.
        self.head = keras.layers.Dense(vocab_size, dtype="float32", name="logits")

    step_input = ("int32", ())  # a token id per step

    def call(self, ids, training=False):
        x = self.dropout(self.embedding(ids), training=training)
        for layer in self.recurrent:
            x = self.dropout(layer(x, training=training), training=training)
        return self.head(x)

    def initial_state(self, batch_size):
        """Zero states of every layer: a list (one per layer) of lists of (batch, size)."""
        return stack_initial_state(self.recurrent, batch_size)

    def step(self, ids, states):
        """One step: ids (batch,) and per-layer states -> logits (batch, vocab), new states."""
        x, states = stack_step(self.recurrent, self.embedding(ids), states)
        return self.head(x), states

    def prefill(self, ids, states):
        """Many steps at once: ids (batch, time) from per-layer states -> logits (batch, time,
        vocab) and the final states. Equal to `step` over the time axis, in the fast loop: a
        prompt read in one call, or a long text scored window by window with its state."""
        x, states = stack_sequence(self.recurrent, self.embedding(ids), states)
        return self.head(x), states

    def quality(self, outputs, inputs, reference):
        """Bits per token of the next-token `outputs` on the token windows `inputs`."""
        return "bits_per_token", metrics.bits_per_token(outputs, inputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            cell=self.cell,
            units=self.units,
            layers=self.num_layers,
            embedding_dim=self.embedding_dim,
            dropout=self.dropout_rate,
            cell_kwargs=self.cell_kwargs,
        )
        return config


def parameter_count(
    vocab_size, cell="lstm", units=256, layers=2, embedding_dim=64, cell_kwargs=None
):
    """Weights of `LanguageModel(...)` with these arguments, counted without building it."""
    count, width = vocab_size * embedding_dim, embedding_dim  # the embedding
    for _ in range(layers):
        layer = cells.create(cell, units, **(cell_kwargs or {}))
        layer.build((None, width))
        count, width = count + layer.count_params(), layer.output_size
    return count + (width + 1) * vocab_size  # the output layer


def units_for_parameters(
    parameters, vocab_size, cell="lstm", layers=2, embedding_dim=64, cell_kwargs=None
):
    """The units (a multiple of the cell's `num_heads`) whose `LanguageModel` has the parameter
    count nearest to `parameters`: for comparing cells at equal size.

    Example:
        target = parameter_count(vocab, "lstm", units=256)
        LanguageModel(vocab, "mlstm", units=units_for_parameters(target, vocab, "mlstm"))
    """
    check_units("parameters", parameters)
    step = (cell_kwargs or {}).get("num_heads", 1)

    def count(multiple):
        return parameter_count(
            vocab_size, cell, multiple * step, layers, embedding_dim, cell_kwargs
        )

    low, high = 1, 2  # bisect for the smallest multiple with count >= parameters
    while count(high) < parameters:
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count(middle) < parameters else (low, middle)
    best = min((low, high), key=lambda m: abs(count(m) - parameters))
    return best * step


def from_size(size, vocab_size, **overrides):
    """A `LanguageModel` of the named size; `overrides` replace any of its arguments."""
    if size not in SIZES:
        raise KeyError(f"Unknown size {size!r}. Known sizes: {', '.join(SIZES)}")
    return LanguageModel(vocab_size, **{**SIZES[size], **overrides})
