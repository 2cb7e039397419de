"""Sequence labelling without alignment: a recurrent encoder trained with CTC.

model = CTCModel(num_labels=26, cell="lstm", units=128)
model.compile(optimizer="adam")               # the CTC loss is built in
model.fit({"features": x, "lengths": n}, labels)   # labels: (batch, L), 1..26, 0 = padding
model.decode({"features": x, "lengths": n}, strategy="beam_search")   # lists of labels
"""

from __future__ import annotations

import keras
from keras import ops

from zoo import cells
from zoo.cells.base import check_units
from zoo.layers import sequence_layer
from zoo.layers.recurrent import stack_initial_state, stack_sequence, stack_step
from zoo.models.protocol import StepModel

BLANK = 0  # class 0 of the logits is CTC's blank; labels are 1..num_labels, 0 pads them


def ctc_loss(labels, logits, logit_lengths):
    """Per-sequence CTC loss -log p(labels | logits) (Graves et al. 2006).

    labels: (batch, L) ints in 1..K, padded with 0; logits: (batch, time, K + 1) with the
    blank at index 0; logit_lengths: (batch,) valid frames.
    """
    labels = ops.cast(labels, "int32")
    label_lengths = ops.sum(ops.cast(labels != BLANK, "int32"), axis=-1)
    return ops.ctc_loss(
        labels, logits, label_lengths, ops.cast(logit_lengths, "int32"), mask_index=BLANK
    )


def ctc_decode(logits, logit_lengths, strategy="greedy", beam_width=16):
    """Best labelling of each sequence, greedy (best path) or by beam search, as lists of ints."""
    if strategy not in ("greedy", "beam_search"):
        raise ValueError(
            'Argument `strategy` must be "greedy" or "beam_search". '
            f"Received: strategy={strategy!r}"
        )
    decoded, _ = ops.ctc_decode(
        logits,
        ops.cast(logit_lengths, "int32"),
        strategy=strategy,
        beam_width=beam_width,
        top_paths=1,
        mask_index=BLANK,
    )
    return [[int(v) for v in row if v > BLANK] for row in ops.convert_to_numpy(decoded[0])]


def edit_distance(reference, hypothesis):
    """Levenshtein distance between two sequences (insertions, deletions, substitutions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def label_error_rate(references, hypotheses):
    """Total edit distance over total reference length (Graves et al. 2006's LER)."""
    total = sum(len(r) for r in references)
    if total == 0:
        raise ValueError("label_error_rate needs at least one non-empty reference labelling.")
    return sum(edit_distance(r, h) for r, h in zip(references, hypotheses, strict=True)) / total


@keras.saving.register_keras_serializable(package="zoo")
class CTCModel(keras.Model, StepModel):
    """Stacked (by default bidirectional) recurrent layers of any cell -> per-frame logits, CTC.

        h_t = RNN(x_1..x_T)_t
        y_t = softmax(W h_t + b)                          over the labels {blank, 1..K}
        loss = -log Σ_{paths π: B(π) = l} Π_t y_t[π_t]    (B removes repeats, then blanks)

    Inputs are a dict {"features": (batch, time, F), "lengths": (batch,)} (or only the
    features tensor: every frame valid); frames past a sequence's length are masked. Targets
    are label ids 1..num_labels padded with 0. `compile` needs no loss.

    Args:
        num_labels: K, the number of labels (the blank comes on top).
        cell: name of a registered cell.
        units: hidden size of every recurrent layer (per direction).
        layers: number of stacked recurrent layers.
        bidirectional: read each sequence both ways (labelling may look ahead).
        cell_kwargs: extra arguments of the cell.

    Paper: A. Graves, S. Fernández, F. Gomez, J. Schmidhuber, "Connectionist Temporal
    Classification: Labelling Unsegmented Sequence Data with Recurrent Neural Networks",
    ICML 2006.
    """

    def __init__(
        self,
        num_labels,
        cell="lstm",
        units=64,
        layers=1,
        bidirectional=True,
        cell_kwargs=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("num_labels", num_labels), ("units", units), ("layers", layers)):
            check_units(name, value)
        self.num_labels, self.cell, self.units, self.num_layers = num_labels, cell, units, layers
        self.bidirectional = bool(bidirectional)
        self.cell_kwargs = dict(cell_kwargs or {})
        self.recurrent = [
            sequence_layer(
                cells.create(cell, units, **self.cell_kwargs),
                bidirectional=self.bidirectional,
                name=f"recurrent_{i}",
            )
            for i in range(layers)
        ]
        self.head = keras.layers.Dense(num_labels + 1, dtype="float32", name="logits")

    @property
    def streams(self):
        """A bidirectional model reads the whole window: no streaming step."""
        return not self.bidirectional

    @property
    def step_input(self):
        """The features of one frame (F,), once built."""
        layer = self.recurrent[0]
        cell = layer.forward_layer.cell if self.bidirectional else layer.cell
        return "float32", (int(cell.kernel.shape[0]),)

    def initial_state(self, batch_size):
        """Zero states of every layer (none for a bidirectional model, which starts each
        window from zero states both ways)."""
        return [] if self.bidirectional else stack_initial_state(self.recurrent, batch_size)

    def step(self, features, states):
        """One frame (batch, F) -> per-label logits and new states (unidirectional only)."""
        if self.bidirectional:
            raise ValueError("A bidirectional CTCModel reads whole windows: it has no step")
        x, states = stack_step(self.recurrent, features, states)
        return self.head(x), states

    def prefill(self, features, states):
        """Frames (batch, time, F), all valid, -> per-frame logits and the final states."""
        if self.bidirectional:
            return self(features), []
        x, states = stack_sequence(self.recurrent, features, states)
        return self.head(x), states

    @staticmethod
    def unpack(inputs):
        """(features, lengths) from the model inputs."""
        if isinstance(inputs, dict):
            return inputs["features"], inputs["lengths"]
        shape = ops.shape(inputs)
        return inputs, ops.full((shape[0],), shape[1], dtype="int32")

    def call(self, inputs, training=False):
        x, lengths = self.unpack(inputs)
        mask = ops.arange(ops.shape(x)[1])[None, :] < ops.cast(lengths, "int32")[:, None]
        for layer in self.recurrent:
            x = layer(x, mask=mask, training=training)
        return self.head(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The mean CTC loss of the batch (plus any regularisation losses); `y` holds the labels."""
        loss = ops.mean(ctc_loss(y, y_pred, self.unpack(x)[1]))
        for extra in self.losses:
            loss = loss + extra
        return loss

    def decode(self, inputs, strategy="greedy", beam_width=16):
        """Label lists of a batch of inputs; `strategy` "greedy" or "beam_search"."""
        logits = self(inputs, training=False)
        return ctc_decode(logits, self.unpack(inputs)[1], strategy, beam_width)

    def get_config(self):
        return {
            **super().get_config(),
            "num_labels": self.num_labels,
            "cell": self.cell,
            "units": self.units,
            "layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "cell_kwargs": self.cell_kwargs,
        }
