"""The protocol of the zoo's task models: what decoding, streaming and the export ask of them.

A model that runs step by step is a `StepModel`: its fixed-length forward pass and one step of
it, with the states made explicit, as public methods:

    states = model.initial_state(batch_size)       # a list of state groups (one per layer, ...)
    output, states = model.step(x_t, states)       # x_t: (batch,) ids or (batch, *features)
    outputs, states = model.prefill(x, states)     # x: (batch, time, ...): `step` over time

plus what it declares: `step_input` (the dtype and per-step shape of x_t), `streams` (False
for a model that reads a whole window both ways: `prefill` from zero states only) and
`quality` (the score, in the task's own unit, that an export's quantised file may lose).
`zoo.decoding` (sampling, beam search) runs `step` in a graph loop, and `zoo.export` exports
`step` and `prefill` as the `step` and `predict` signatures, under a scope that chooses how
recurrent layers run (`zoo.layers.recurrent.exported`). A model with more than one stage is an
`EncoderDecoder`: its named stages, `encode` and `decode_step`, and its search. A model that
reads a whole sequence to one class distribution is a `Classifier`: its stage
`classify(x, lengths)`, and its step for streaming.

A plain Keras model (a chain of step-wise and recurrent layers) becomes a `StepModel` through
`as_step_model` (`zoo.models.layer_chain`), the one place that looks at a model's layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class StepModel:
    """A model with an explicit-state step (see the module docstring); mix it into a
    `keras.Model` and implement the methods."""

    streams: bool = True

    @property
    def step_input(self) -> tuple[str, tuple[int, ...]]:
        """(dtype, shape) of one step's input for one sequence: ("int32", ()) for token ids,
        ("float32", (F,)) for a frame of F features."""
        raise NotImplementedError(f"{type(self).__name__} does not declare `step_input`")

    def initial_state(self, batch_size: int) -> list[list[Any]]:
        """Zero states: a list of state groups, each a list of (batch, ...) tensors."""
        raise NotImplementedError

    def step(self, inputs: Any, states: list[list[Any]]) -> tuple[Any, list[list[Any]]]:
        """One step: inputs (batch, ...) and states -> (outputs (batch, ...), new states)."""
        raise NotImplementedError

    def prefill(self, inputs: Any, states: list[list[Any]]) -> tuple[Any, list[list[Any]]]:
        """`step` over the time axis of inputs (batch, time, ...): (outputs, final states)."""
        raise NotImplementedError

    def quality(self, outputs, inputs, reference) -> tuple[str, float] | None:
        """(metric, value) of `outputs` (NumPy, (batch, time, ...)) on `inputs`, lower is
        better: what a quantised export may lose against `reference` (the Keras model's own
        outputs). None: the export scores the KL divergence from `reference` instead."""
        return None


class EncoderDecoder:
    """A model of two stages: `encode` a source, then `decode_step` token by token.

    encoded = model.encode(source)                          # a dict: memory, keys, mask,
    logits, encoded = model.decode_step(ids, encoded)       #   states (one group a layer)
    logits, encoded, attention = model.decode_step(ids, encoded, attention=True)
    ids, scores = model.search(source, start_id, end_id, max_length, beam_size, penalty)
    """

    def encode(self, source) -> dict:
        """What the decoder needs from a batch of source ids."""
        raise NotImplementedError

    def decode_step(self, ids, encoded, attention=False):
        """One decoding step (with the attention weights when `attention`)."""
        raise NotImplementedError

    def search(self, source, start_id, end_id, max_length, beam_size=1, length_penalty=0.0):
        """Greedy (`beam_size` 1) or beam search in one graph: (ids, scores)."""
        raise NotImplementedError


class Classifier(StepModel):
    """A step model that reads a sequence to one class distribution:

        logits = model.classify(x, lengths)        # x (batch, time, ...), lengths (batch,)
        logits, states = model.step(x_t, states)   # the logits of the prefix read so far

    `classify` reads the first `lengths` steps of each sequence (the rest is padding it never
    reads); `step` (a model with `streams`) classifies as it reads. Its `quality` is the
    share misclassified, in percent: a quantised export may lose `max_quality_loss` accuracy
    points against the model.
    """

    num_classes: int

    def classify(self, x, lengths):
        """Class logits (batch, classes) of sequences x of `lengths` valid steps."""
        raise NotImplementedError

    def quality(self, outputs, labels, reference=None) -> tuple[str, float]:
        """("error_percent", 100 · share of argmax(outputs) ≠ labels): outputs (N, classes)
        are logits or probabilities, labels (N,) class ids; lower is better."""
        wrong = np.argmax(np.asarray(outputs), -1) != np.asarray(labels)
        return "error_percent", float(100.0 * wrong.mean())


def as_step_model(model) -> StepModel:
    """`model` itself if it is a `StepModel`, else the `LayerChain` adapter of a plain Keras
    chain of step-wise and recurrent layers (ValueError naming what cannot run step-wise)."""
    if isinstance(model, StepModel):
        return model
    from zoo.models.layer_chain import LayerChain

    return LayerChain(model)
