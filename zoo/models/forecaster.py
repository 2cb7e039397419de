"""A DeepAR-style probabilistic forecaster over any registered cell."""

from __future__ import annotations

import keras
import numpy as np

from zoo import cells
from zoo.cells.base import check_units
from zoo.layers.recurrent import stack_initial_state, stack_layers, stack_sequence, stack_step
from zoo.models import distributions
from zoo.models.distributions import HEADS, QUANTILES, check_head, constrain
from zoo.models.protocol import StepModel

# Named sizes: dicts of `Forecaster` arguments (DeepAR's defaults are 2 layers of 40 units).
SIZES = {
    "tiny": {"units": 16, "layers": 1},
    "small": {"units": 40, "layers": 2},
    "medium": {"units": 128, "layers": 2},
}


def weighted_quantile_loss(quantiles, targets, levels=QUANTILES) -> float:
    """GluonTS's mean weighted quantile loss: mean over the levels q of
    2 sum_t rho_q(y_t - yhat_t^q) / sum_t |y_t|, with rho_q(e) = max(q e, (q - 1) e).
    quantiles (..., len(levels)), targets (...)."""
    levels = np.asarray(levels, np.float64)
    error = np.asarray(targets, np.float64)[..., None] - np.asarray(quantiles, np.float64)
    pinball = np.maximum(levels * error, (levels - 1) * error).reshape(-1, len(levels))
    return float(np.mean(2 * pinball.sum(0) / max(np.abs(targets).sum(), 1e-12)))


@keras.saving.register_keras_serializable(package="zoo")
class Forecaster(keras.Model, StepModel):
    """Stacked recurrent layers of any cell over per-step features -> the parameters of the
    next value's distribution (DeepAR, Salinas et al. 2020):

        h_t = cell(x_t, h_{t-1})          x_t = [y_{t-l} / s for each lag l, covariates_t,
                                                 calendar_t, log s]
        theta_t = head(W h_t + b)         y_t / s ~ p(. | theta_t)

    s is the series' scale (its mean |y| over the context). Trained by the negative
    log-likelihood of y_t / s (`distributions.ForecastLoss`); forecasts are sample paths,
    each draw fed back as the next step's lags (`zoo.models.distributions.sample`).

    Args:
        features: F, the width of x_t (the task's feature layout).
        cell: name of a registered cell (`zoo.cells.names()`).
        units, layers: hidden size and depth of the recurrent stack.
        head: "student_t", "normal", "negative_binomial" or "quantile" (see
            `zoo.models.distributions`).
        dropout: dropout between the recurrent layers.
        target_feature: the column of x_t that holds y_{t-1} / s (`quality` scores step t
            against column `target_feature` of step t + 1).
        cell_kwargs: extra arguments of the cell.

    Example:
        model = Forecaster(features=12, cell="gru", head="student_t")
        params = model(x)                                  # (batch, time, 3): mu, sigma, nu
        params, states = model.prefill(x, model.initial_state(batch))
        params_t, states = model.step(x[:, -1], states)

    Reference: D. Salinas, V. Flunkert, J. Gasthaus, T. Januschowski, "DeepAR: Probabilistic
    forecasting with autoregressive recurrent networks", Int. J. Forecasting 36(3), 2020.
    """

    def __init__(
        self,
        features,
        cell="lstm",
        units=40,
        layers=2,
        head="student_t",
        dropout=0.1,
        target_feature=0,
        cell_kwargs=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("features", features), ("units", units), ("layers", layers)):
            check_units(name, value)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Argument `dropout` must be in [0, 1). Received: dropout={dropout}")
        if not 0 <= target_feature < features:
            raise ValueError(
                f"Argument `target_feature` must be a column of the {features} "
                f"features. Received: target_feature={target_feature}"
            )
        if cells.get(cell).input_rank != 1:  # the cell's declaration, read before building
            raise ValueError(
                f"Cell {cell!r} takes inputs of rank {cells.get(cell).input_rank} "
                f"per step, not feature vectors. Received: cell={cell!r}"
            )
        self.features, self.cell, self.units, self.num_layers = features, cell, units, layers
        self.head, self.dropout_rate = check_head(head), dropout
        self.target_feature, self.cell_kwargs = target_feature, dict(cell_kwargs or {})
        self.recurrent = stack_layers(cell, units, layers, self.cell_kwargs)
        self.dropout = keras.layers.Dropout(dropout, name="dropout")
        self.projection = keras.layers.Dense(HEADS[head], dtype="float32", name="head")

    @property
    def step_input(self):
        """The F features of one step."""
        return "float32", (self.features,)

    def _params(self, hidden):
        return constrain(self.head, self.projection(hidden))

    def call(self, x, training=False):
        for layer in self.recurrent:
            x = self.dropout(layer(x, training=training), training=training)
        return self._params(x)

    def initial_state(self, batch_size):
        """Zero states of every layer: a list (one per layer) of lists of (batch, size)."""
        return stack_initial_state(self.recurrent, batch_size)

    def step(self, x, states):
        """One step: features x (batch, F) -> parameters (batch, P), new states."""
        hidden, states = stack_step(self.recurrent, x, states)
        return self._params(hidden), states

    def prefill(self, x, states):
        """Features x (batch, time, F) from `states` -> parameters (batch, time, P) and the
        final states: the context read in one call before sampling step by step."""
        hidden, states = stack_sequence(self.recurrent, x, states)
        return self._params(hidden), states

    def quality(self, outputs, inputs, reference):
        """("weighted_quantile_loss", value): the distributions `outputs` (B, T, P) of steps
        0..T-2 scored on the observations the next steps' inputs (B, T, F) carry, over
        QUANTILES (in units of the series' scale): what a quantised export may lose."""
        predicted = distributions.quantiles(self.head, np.asarray(outputs)[:, :-1])
        observed = np.asarray(inputs)[:, 1:, self.target_feature]
        return "weighted_quantile_loss", weighted_quantile_loss(predicted, observed)

    def get_config(self):
        config = super().get_config()
        config.update(
            features=self.features,
            cell=self.cell,
            units=self.units,
            layers=self.num_layers,
            head=self.head,
            dropout=self.dropout_rate,
            target_feature=self.target_feature,
            cell_kwargs=self.cell_kwargs,
        )
        return config


def from_size(size, features, **overrides):
    """A `Forecaster` of the named size; `overrides` replace any of its arguments."""
    if size not in SIZES:
        raise KeyError(f"Unknown size {size!r}. Known sizes: {', '.join(SIZES)}")
    return Forecaster(features, **{**SIZES[size], **overrides})
