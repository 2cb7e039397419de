"""A polyphonic music model over any registered cell: piano roll in, a Bernoulli per pitch out."""

from __future__ import annotations

import math

import keras
from keras import ops

from zoo import cells, metrics
from zoo.cells.base import check_units
from zoo.layers.recurrent import stack_initial_state, stack_layers, stack_sequence, stack_step
from zoo.models.protocol import StepModel

# Named sizes. Data, not code: a size is a dict of `PolyphonicModel` arguments.
SIZES = {
    "tiny": {"units": 16, "layers": 1},
    "small": {"units": 128, "layers": 1},
    "medium": {"units": 256, "layers": 2},
}


def frame_nll(rolls, logits):
    """Negative log-likelihood of each frame in nats, (batch, time): the sum over pitches of

        -[v_k log p_k + (1 - v_k) log(1 - p_k)],  p = sigmoid(logits)

    the per-time-step NLL reported for JSB Chorales (Boulanger-Lewandowski et al. 2012).
    Frames whose first entry is negative are padding and score 0.
    """
    rolls = ops.cast(rolls, logits.dtype)
    # log sigmoid(z) = -softplus(-z); log(1 - sigmoid(z)) = -softplus(z)
    nll = ops.sum(rolls * ops.softplus(-logits) + (1 - rolls) * ops.softplus(logits), axis=-1)
    return ops.where(rolls[..., 0] < 0, 0.0, nll)


def _total_and_count(rolls, logits):
    return ops.sum(frame_nll(rolls, logits)), ops.sum(ops.cast(rolls[..., 0] >= 0, logits.dtype))


def uniform_nll(pitches):
    """The NLL per frame of a model that gives every pitch probability 1/2: pitches * log 2."""
    return pitches * math.log(2.0)


@keras.saving.register_keras_serializable(package="zoo")
class FrameNLL(keras.losses.Loss):
    """Mean `frame_nll` over the frames of a batch that are not padding (target rows of -1)."""

    def __init__(self, name="frame_nll", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        total, count = _total_and_count(y_true, y_pred)
        return total / ops.maximum(count, 1.0)


@keras.saving.register_keras_serializable(package="zoo")
class NLLPerStep(keras.metrics.Metric):
    """NLL per time step in nats over all frames seen (padding excluded): exact over an epoch."""

    def __init__(self, name="nll", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable((), initializer="zeros", name="total")
        self.count = self.add_variable((), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        total, count = _total_and_count(y_true, ops.cast(y_pred, "float32"))
        self.total.assign_add(total)
        self.count.assign_add(count)

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="zoo")
class PolyphonicModel(keras.Model, StepModel):
    """Piano roll -> `layers` stacked recurrent layers of any cell -> a sigmoid per pitch.

        h^1_t = cell_1(v_{t-1}, h^1_{t-1});  ...;  P(v_t[k] = 1 | v_{<t}) = sigmoid(W h^L_t + b)_k

    `v_t` is the multi-hot vector of the pitches sounding at step t; the pitches of a frame are
    independent given the past (the RNN baseline of Boulanger-Lewandowski et al.). Inputs are
    the frames shifted by one (a zero frame first), targets the frames themselves; train with
    `frame_nll` (nats per time step).

    Args:
        pitches: width of a frame (46 for the range 36..81).
        cell: name of a registered cell (`zoo.cells.names()`).
        units: hidden size of every recurrent layer.
        layers: number of stacked recurrent layers.
        dropout: dropout rate after every recurrent layer.
        input_noise: standard deviation of the Gaussian noise added to the input frames in
            training (Greff et al.'s input noise); 0 = none.
        cell_kwargs: extra arguments of the cell.

    Example:
        model = PolyphonicModel(46, cell="cifg_lstm", units=128)
        logits = model(previous_frames)                       # (batch, time, 46)
        rolls = sample(model, steps=64, batch_size=2)        # (2, 64, 46), <= 4 notes a step

    Reference: N. Boulanger-Lewandowski, Y. Bengio, P. Vincent, "Modeling Temporal Dependencies
    in High-Dimensional Sequences: Application to Polyphonic Music Generation and
    Transcription", ICML 2012; K. Greff et al., "LSTM: A Search Space Odyssey", 2015.
    """

    def __init__(
        self,
        pitches=46,
        cell="lstm",
        units=128,
        layers=1,
        dropout=0.0,
        input_noise=0.0,
        cell_kwargs=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("pitches", pitches), ("units", units), ("layers", layers)):
            check_units(name, value)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Argument `dropout` must be in [0, 1). Received: dropout={dropout}")
        if not input_noise >= 0.0:
            raise ValueError(
                f"Argument `input_noise` must be >= 0. Received: input_noise={input_noise}"
            )
        self.pitches, self.cell, self.units = pitches, cell, units
        self.num_layers, self.dropout_rate, self.input_noise = layers, dropout, input_noise
        self.cell_kwargs = dict(cell_kwargs or {})
        cells.get(cell)  # a clear error listing the known cells
        self.recurrent = stack_layers(cell, units, layers, self.cell_kwargs)
        self.dropout = keras.layers.Dropout(dropout, name="dropout")
        self.noise = keras.layers.GaussianNoise(input_noise, name="input_noise")
        self.head = keras.layers.Dense(pitches, dtype="float32", name="logits")

    @property
    def step_input(self):
        """A multi-hot frame of the pitches per step."""
        return "float32", (self.pitches,)

    def call(self, frames, training=False):
        x = self.noise(frames, training=training) if self.input_noise else frames
        for layer in self.recurrent:
            x = self.dropout(layer(x, training=training), training=training)
        return self.head(x)

    def initial_state(self, batch_size):
        """Zero states of every layer: a list (one per layer) of lists of (batch, size)."""
        return stack_initial_state(self.recurrent, batch_size)

    def step(self, frames, states):
        """One step: frames (batch, pitches), states of each layer -> logits, new states."""
        frames = ops.convert_to_tensor(frames, self.compute_dtype)
        x, states = stack_step(self.recurrent, frames, states)
        return self.head(x), states

    def prefill(self, frames, states):
        """Many steps at once: frames (batch, time, pitches) from states -> logits (batch,
        time, pitches) and the final states (`step` over the time axis, in the fast loop)."""
        frames = ops.convert_to_tensor(frames, self.compute_dtype)
        x, states = stack_sequence(self.recurrent, frames, states)
        return self.head(x), states

    def quality(self, outputs, inputs, reference):
        """Nats per step of the next-frame `outputs` on the piano rolls `inputs`."""
        return "nats_per_step", metrics.nats_per_step(outputs, inputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            pitches=self.pitches,
            cell=self.cell,
            units=self.units,
            layers=self.num_layers,
            dropout=self.dropout_rate,
            input_noise=self.input_noise,
            cell_kwargs=self.cell_kwargs,
        )
        return config


def sample(model, steps, batch_size=1, primer=None, temperature=1.0, max_voices=4, seed=None):
    """Piano rolls (batch, steps, pitches) of 0/1 drawn frame by frame from `model`.

    Each pitch is drawn from its Bernoulli (logits divided by `temperature`; 0 takes every
    pitch with p > 1/2); if more than `max_voices` pitches sound, only the `max_voices` most
    likely of them are kept, so a generated chorale never has more voices than the real ones.
    `primer` (batch or 1, time, pitches) is fed first and not returned.
    """
    check_units("steps", steps)
    check_units("max_voices", max_voices)
    if temperature < 0:
        raise ValueError(f"`temperature` must be >= 0. Received: temperature={temperature}")
    seeds = keras.random.SeedGenerator(seed)
    states = model.initial_state(batch_size)
    frame = ops.zeros((batch_size, model.pitches))
    if primer is not None:
        primer = ops.broadcast_to(
            ops.convert_to_tensor(primer, "float32"), (batch_size, *ops.shape(primer)[1:])
        )
        for t in range(primer.shape[1]):
            _, states = model.step(frame, states)
            frame = primer[:, t]
    frames = []
    for _ in range(steps):
        logits, states = model.step(frame, states)
        probs = ops.sigmoid(logits / temperature) if temperature else ops.sigmoid(logits)
        if temperature:
            on = keras.random.uniform(ops.shape(probs), seed=seeds) < probs
        else:
            on = probs > 0.5
        top = ops.top_k(ops.where(on, probs, -1.0), min(max_voices, model.pitches))[1]
        frame = ops.cast(on, "float32") * ops.max(ops.one_hot(top, model.pitches), axis=1)
        frames.append(frame)
    return ops.convert_to_numpy(ops.stack(frames, axis=1)).astype("uint8")
