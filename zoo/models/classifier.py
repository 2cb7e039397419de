"""Sequence classification over any registered cell: last state or attention, LSTM-FCN."""

from __future__ import annotations

import keras
from keras import ops

from zoo import cells
from zoo.cells.base import check_units
from zoo.layers import sequence_layer
from zoo.models.protocol import Classifier

POOLINGS = ("last", "attention")
# The convolutional branch of LSTM-FCN (Karim et al. 2017): filters and kernel sizes.
FCN_FILTERS, FCN_KERNELS = (128, 256, 128), (8, 5, 3)


def _per_channel(values, channels, name, default):
    values = [float(default)] * channels if values is None else [float(v) for v in values]
    if len(values) != channels:
        raise ValueError(
            f"Argument `{name}` must hold one value per channel ({channels}). "
            f"Received: {name} of length {len(values)}"
        )
    return values


@keras.saving.register_keras_serializable(package="zoo")
class SequenceClassifier(keras.Model, Classifier):
    """Recurrent layers of any cell over a multivariate sequence -> class logits.

        x̂_t = (x_t - μ) / σ                                   per channel, training statistics
        h_t = RNN(x̂_1..x̂_T)_t                                 stacked, optionally bidirectional
        last:       z = h_L                                    L = the sequence's length
        attention:  e_t = vᵀ tanh(W h_t + b),  α = softmax_{t ≤ L}(e),  z = Σ_t α_t h_t
        LSTM-FCN:   u = mean_{t ≤ L} ReLU(BN(conv(...ReLU(BN(conv(x̂)))...)))   (3 blocks)
                    z ← [z; u]
        logits = W_o z + b_o

    Inputs are {"features": (batch, time, channels), "lengths": (batch,)} (or the features
    alone: every step valid). Steps past a sequence's length never reach the output: they are
    zeroed, the recurrent layers read only each sequence's own steps, pooling and batch-norm
    statistics skip them, and the convolutions are causal (a valid step reads only earlier
    ones), so padding cannot leak.

    A forward model also classifies as it reads (`step`): one sample in, the class logits of
    the prefix so far out, every running quantity (cell states, the attention's online softmax,
    the convolutions' last inputs, the pooled sums) in explicit states.

    Args:
        num_classes: number of classes.
        channels: readings per step.
        cell: name of a registered cell.
        units: hidden size of every recurrent layer (per direction).
        layers: stacked recurrent layers.
        bidirectional: read each sequence both ways (no streaming `step` then).
        pooling: "last" (the state at the sequence's last step; the backward direction's
            at its first) or "attention" (Bahdanau-style scores over the valid steps).
        conv_filters, conv_kernels: the convolutional branch beside the recurrent one (LSTM-FCN:
            `FCN_FILTERS`, `FCN_KERNELS`); empty for none. Kernels of at least 2 steps.
        dropout: dropout after every recurrent layer and before the output layer.
        mean, std: per-channel statistics of the training data (default 0 and 1).
        cell_kwargs: extra arguments of the cell.

    Example:
        model = SequenceClassifier(4, channels=6, cell="lstm", units=64, pooling="attention",
                                   conv_filters=FCN_FILTERS, conv_kernels=FCN_KERNELS)
        logits = model({"features": x, "lengths": n})             # (batch, classes)
        logits, states = model.step(x[:, 0], model.initial_state(batch))

    Papers: F. Karim, S. Majumdar, H. Darabi, S. Chen, "LSTM Fully Convolutional Networks for
    Time Series Classification", IEEE Access 2017 (the recurrent branch here reads the time
    steps; the paper's dimension shuffle, which feeds it the whole series as one step, can
    neither stream nor take variable lengths); C. Raffel, D. Ellis, "Feed-Forward Networks with
    Attention Can Solve Some Long-Term Memory Problems", 2015 (attention pooling).
    """

    def __init__(
        self,
        num_classes,
        channels,
        cell="lstm",
        units=64,
        layers=1,
        bidirectional=False,
        pooling="last",
        conv_filters=(),
        conv_kernels=(),
        dropout=0.0,
        mean=None,
        std=None,
        cell_kwargs=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("num_classes", num_classes),
            ("channels", channels),
            ("units", units),
            ("layers", layers),
        ):
            check_units(name, value)
        if pooling not in POOLINGS:
            raise ValueError(
                f"Argument `pooling` must be one of {', '.join(POOLINGS)}. "
                f"Received: pooling={pooling!r}"
            )
        if len(conv_filters) != len(conv_kernels) or any(k < 2 for k in conv_kernels):
            raise ValueError(
                "Arguments `conv_filters` and `conv_kernels` must be of equal "
                "length, kernels of at least 2 steps. Received: conv_filters="
                f"{list(conv_filters)}, conv_kernels={list(conv_kernels)}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Argument `dropout` must be in [0, 1). Received: dropout={dropout}")
        self.num_classes, self.channels, self.cell, self.units = num_classes, channels, cell, units
        self.num_layers, self.bidirectional, self.pooling = layers, bool(bidirectional), pooling
        self.conv_filters, self.conv_kernels = list(conv_filters), list(conv_kernels)
        self.dropout_rate, self.cell_kwargs = dropout, dict(cell_kwargs or {})
        self.mean = _per_channel(mean, channels, "mean", 0.0)
        self.std = _per_channel(std, channels, "std", 1.0)
        if min(self.std) <= 0:
            raise ValueError(f"Argument `std` must be positive. Received: std={self.std}")
        rank = cells.create(cell, units, **self.cell_kwargs).input_rank
        if rank != 1:
            raise ValueError(
                f"Cell {cell!r} takes inputs of rank {rank} per step, not vectors "
                f"of readings. Received: cell={cell!r}"
            )
        self.recurrent = [
            sequence_layer(
                cells.create(cell, units, **self.cell_kwargs),
                bidirectional=self.bidirectional,
                name=f"recurrent_{i}",
            )
            for i in range(layers)
        ]
        self.dropout = keras.layers.Dropout(dropout, name="dropout")
        if pooling == "attention":
            self.score_hidden = keras.layers.Dense(units, activation="tanh", name="score_hidden")
            self.score = keras.layers.Dense(1, use_bias=False, name="score")
        self.convs = [
            keras.layers.Conv1D(f, k, padding="causal", use_bias=False, name=f"conv_{i}")
            for i, (f, k) in enumerate(zip(conv_filters, conv_kernels))
        ]
        self.norms = [
            keras.layers.BatchNormalization(name=f"conv_norm_{i}") for i in range(len(self.convs))
        ]
        self.head = keras.layers.Dense(num_classes, dtype="float32", name="logits")

    @property
    def step_input(self):
        """("float32", (channels,)): the readings of one step."""
        return "float32", (self.channels,)

    @property
    def streams(self):
        """A forward model classifies as it reads; a bidirectional one needs whole sequences."""
        return not self.bidirectional

    @staticmethod
    def unpack(inputs):
        """(features, lengths) from the model inputs."""
        if isinstance(inputs, dict):
            return inputs["features"], ops.cast(inputs["lengths"], "int32")
        shape = ops.shape(inputs)
        return inputs, ops.full((shape[0],), shape[1], dtype="int32")

    def normalize(self, x):
        """(x - μ) / σ per channel."""
        return (
            ops.cast(x, self.compute_dtype) - ops.array(self.mean, self.compute_dtype)
        ) / ops.array(self.std, self.compute_dtype)

    def build(self, input_shape=None):
        """Create every weight by classifying a dummy sequence of two steps."""
        self.classify(ops.zeros((1, 2, self.channels)), ops.full((1,), 2, "int32"))
        self.built = True

    def call(self, inputs, training=False):
        x, lengths = self.unpack(inputs)
        return self.classify(x, lengths, training=training)

    def classify(self, x, lengths, training=False):
        """Logits (batch, classes) of sequences x (batch, time, channels) of `lengths` steps."""
        mask = ops.arange(ops.shape(x)[1])[None, :] < lengths[:, None]
        x = ops.where(mask[..., None], self.normalize(x), 0.0)  # padding never computes
        h = x
        for layer in self.recurrent:
            h = self.dropout(_read(layer, h, lengths, training), training=training)
        features = [self._pool(h, mask, lengths)]
        if self.convs:
            c, weights = x, ops.cast(mask, x.dtype)[..., None]
            for conv, norm in zip(self.convs, self.norms):
                c = ops.relu(norm(conv(c), training=training, mask=mask))
            features.append(ops.sum(c * weights, 1) / ops.sum(weights, 1))
        z = ops.concatenate(features, -1) if len(features) > 1 else features[0]
        return self.head(self.dropout(z, training=training))

    def _pool(self, h, mask, lengths):
        if self.pooling == "attention":
            e = self.score(self.score_hidden(h))[..., 0]
            e = ops.where(mask, e, ops.full_like(e, -1e9))
            return ops.sum(ops.softmax(e, axis=-1)[..., None] * h, 1)
        last = ops.take_along_axis(h, ops.reshape(lengths - 1, (-1, 1, 1)), axis=1)[:, 0]
        if not self.bidirectional:
            return last
        half = ops.shape(h)[-1] // 2  # the backward direction ends at the first step
        return ops.concatenate([last[:, :half], h[:, 0, half:]], -1)

    def initial_state(self, batch_size):
        """Zero states of `step`: each recurrent layer's, then the pooling's (attention: the
        online softmax's running max score m, sum s and weighted sum), then each convolution's
        last k-1 inputs, then the convolutional branch's running sum and step count."""
        if self.bidirectional:
            raise ValueError(
                "A bidirectional classifier reads whole sequences: it has no "
                "streaming step (train with bidirectional=False to stream)"
            )
        groups = [list(layer.cell.get_initial_state(batch_size)) for layer in self.recurrent]
        if self.pooling == "attention":
            width = self.recurrent[-1].cell.output_size
            # m_0 = 0 is exact (s_0 = 0 weighs it out) and keeps every state zero at the start;
            # exp(e - m) cannot underflow since |e| <= ||v||_1 (a tanh feeds the score).
            groups.append(
                [
                    ops.zeros((batch_size, 1)),
                    ops.zeros((batch_size, 1)),
                    ops.zeros((batch_size, width)),
                ]
            )
        width = self.channels
        for filters, kernel in zip(self.conv_filters, self.conv_kernels):
            groups.append([ops.zeros((batch_size, kernel - 1, width))])
            width = filters
        if self.convs:
            groups.append([ops.zeros((batch_size, width)), ops.zeros((batch_size, 1))])
        return groups

    def step(self, x, states):
        """One sample x (batch, channels) -> the logits of the sequence read so far and the
        new states (see `initial_state`); equal to `classify` of that prefix."""
        x = self.normalize(x)
        states, new = list(states), []
        h = x
        for layer in self.recurrent:
            h, state = layer.step(h, states.pop(0))
            new.append(list(state))
        features = [h]
        if self.pooling == "attention":
            top, total, weighted = states.pop(0)
            e = self.score(self.score_hidden(h))
            m = ops.maximum(top, e)
            scale, weight = ops.exp(top - m), ops.exp(e - m)
            total, weighted = total * scale + weight, weighted * scale + weight * h
            new.append([m, total, weighted])
            features = [weighted / total]
        if self.convs:
            c = x
            for conv, norm in zip(self.convs, self.norms):
                window = ops.concatenate([states.pop(0)[0], c[:, None]], 1)
                new.append([window[:, 1:]])
                c = ops.relu(_batch_norm(norm, ops.einsum("bkc,kcf->bf", window, conv.kernel)))
            running, count = states.pop(0)
            running, count = running + c, count + 1.0
            new.append([running, count])
            features.append(running / count)
        z = ops.concatenate(features, -1) if len(features) > 1 else features[0]
        return self.head(z), new

    def prefill(self, x, states):
        """`step` over the time axis of x (batch, time, channels) from `states`: the logits
        after every step (batch, time, classes) and the final states (static time only)."""
        outputs = []
        for t in range(x.shape[1]):
            logits, states = self.step(x[:, t], states)
            outputs.append(logits)
        return ops.stack(outputs, 1), states

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "channels": self.channels,
            "cell": self.cell,
            "units": self.units,
            "layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "pooling": self.pooling,
            "conv_filters": self.conv_filters,
            "conv_kernels": self.conv_kernels,
            "dropout": self.dropout_rate,
            "mean": self.mean,
            "std": self.std,
            "cell_kwargs": self.cell_kwargs,
        }


def _read(layer, h, lengths, training):
    """A recurrent layer's outputs over h (batch, time, features) at each sequence's valid
    steps. Padding trails, so a forward direction needs no mask: a valid step's output never
    reads a later step. The backward one reads each sequence reversed within its own length,
    forward, and its outputs are put back in place. Unmasked, every direction runs in its
    fastest strategy (and in an export, as the fused LSTM op where the cell allows)."""
    if not isinstance(layer, keras.layers.Bidirectional):
        return layer(h, training=training)
    forward = layer.forward_layer(h, training=training)
    # The backward layer reverses its whole input: given it flipped, it reads it in order.
    backward = layer.backward_layer(ops.flip(_reversed(h, lengths), 1), training=training)
    return ops.concatenate([forward, _reversed(backward, lengths)], -1)


def _reversed(h, lengths):
    """h (batch, time, ...) with each sequence's first `lengths` steps in reverse order."""
    t = ops.arange(ops.shape(h)[1])[None, :]
    index = ops.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return ops.take_along_axis(h, ops.expand_dims(index, -1), axis=1)


def _batch_norm(layer, x):
    """A BatchNormalization layer's inference transform on x (batch, features): the layer's
    own call expects the rank it was built for."""
    scale = ops.rsqrt(layer.moving_variance + layer.epsilon) * layer.gamma
    return (x - layer.moving_mean) * scale + layer.beta
