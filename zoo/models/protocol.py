"""The step protocol of the zoo's task models: what decoding and the export ask of a model.

A model that generates or streams offers its fixed-length forward pass (`model(x)`) and one
step of it, with the states made explicit:

    states = model.initial_state(batch_size)       # a list of state groups (one per layer, ...)
    output, states = model.step(x_t, states)       # x_t: (batch,) ids or (batch, *frame)
    outputs, states = model.prefill(x, states)     # x: (batch, time, ...): `step` over time

`zoo.decoding` (sampling, beam search) runs `step` in a graph loop and `zoo.export` exports it
as the streaming `step` signature; `prefill` reads a prompt, or scores a long text window by
window, in one call. `LanguageModel`, `TimeAwareMelodyModel` and `PolyphonicModel`
implement it; `runs_layers_in_order` says whether the forward pass is the model's layers in
order (then the export may rebuild it layer by layer and fuse its LSTM layers) or more (then
the export runs `step` itself). The translator has its own pair, `encode` and `decode_step`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class StepModel(Protocol):
    """A model with an explicit-state step (see the module docstring)."""

    runs_layers_in_order: bool

    def initial_state(self, batch_size: int) -> list[list[Any]]:
        """Zero states of a batch: one group per recurrent layer (or the model's own)."""

    def step(self, inputs: Any, states: list[list[Any]]) -> tuple[Any, list[list[Any]]]:
        """(output, new states) of one step; inputs (batch,) ids or (batch, *frame)."""

    def prefill(self, inputs: Any, states: list[list[Any]]) -> tuple[Any, list[list[Any]]]:
        """(outputs, states after the last step) of `step` over inputs (batch, time, ...)."""

    def __call__(self, inputs: Any, training: bool = False) -> Any: ...
