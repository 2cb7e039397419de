"""The forecaster's output heads: a distribution's parameters (or quantiles) per step, its
negative log-likelihood (or pinball loss) for training, and its quantiles and samples.

Heads, with the parameters `Forecaster` outputs per step, in units of the series' scale s
(values are y / s):

    student_t          (mu, sigma, nu): a Student-t, heavy tails (DeepAR's default in GluonTS)
    normal             (mu, sigma)
    negative_binomial  (m, a): counts y ~ NB with mean s m and shape 1 / (a / sqrt(s)), as in
                       DeepAR (Salinas et al. 2020, eq. 3)
    quantile           the QUANTILES of y / s, kept in order (pinball loss; no sampling:
                       forecasts feed the median back)

The loss takes targets (batch, time, 2): [y / s, s] (s for the negative binomial's counts).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
HEADS = {"student_t": 3, "normal": 2, "negative_binomial": 2, "quantile": len(QUANTILES)}
MIN_SCALE = 1e-3  # smallest sigma (in units of s): keeps the likelihood finite


def check_head(head: str) -> str:
    """`head` if it is one of HEADS, else a ValueError listing them."""
    if head not in HEADS:
        raise ValueError(
            f"Argument `head` must be one of {', '.join(HEADS)}. Received: head={head!r}"
        )
    return head


def constrain(head, raw):
    """A head's parameters from the unconstrained outputs `raw` (..., HEADS[head])."""
    if head == "quantile":  # the median, then positive steps down and up: ordered quantiles
        middle = len(QUANTILES) // 2
        steps = ops.softplus(raw) + 1e-4
        below = -ops.flip(ops.cumsum(ops.flip(steps[..., :middle], -1), -1), -1)
        above = ops.cumsum(steps[..., middle + 1 :], -1)
        centre = raw[..., middle : middle + 1]
        return ops.concatenate([centre + below, centre, centre + above], -1)
    positive = ops.softplus(raw[..., 1:]) + MIN_SCALE
    if head == "student_t":
        return ops.concatenate([raw[..., :1], positive[..., :1], 2.0 + positive[..., 1:]], -1)
    if head == "negative_binomial":
        return ops.concatenate([ops.softplus(raw[..., :1]) + 1e-6, positive], -1)
    return ops.concatenate([raw[..., :1], positive], -1)


def _lgamma(x):
    import tensorflow as tf  # keras.ops has no log-gamma

    return tf.math.lgamma(x)


def negative_log_likelihood(head, params, targets):
    """Per-step loss (batch, time): the NLL of y / s (the pinball loss summed over QUANTILES
    for the quantile head), from targets (batch, time, 2) = [y / s, s]."""
    value, scale = targets[..., 0], targets[..., 1]
    if head == "quantile":
        q = ops.convert_to_tensor(QUANTILES, params.dtype)
        error = value[..., None] - params
        return ops.sum(ops.maximum(q * error, (q - 1.0) * error), -1)
    if head == "normal":
        mu, sigma = params[..., 0], params[..., 1]
        z = (value - mu) / sigma
        return 0.5 * z * z + ops.log(sigma) + 0.5 * math.log(2 * math.pi)
    if head == "student_t":
        mu, sigma, nu = params[..., 0], params[..., 1], params[..., 2]
        z = (value - mu) / sigma
        return (
            _lgamma(nu / 2)
            - _lgamma((nu + 1) / 2)
            + 0.5 * ops.log(nu * math.pi)
            + ops.log(sigma)
            + (nu + 1) / 2 * ops.log1p(z * z / nu)
        )
    mean, alpha = params[..., 0] * scale, params[..., 1] / ops.sqrt(scale)  # negative binomial
    counts, r = ops.maximum(value * scale, 0.0), 1.0 / alpha
    return -(
        _lgamma(counts + r)
        - _lgamma(counts + 1)
        - _lgamma(r)
        + r * ops.log(r / (r + mean))
        + counts * ops.log(mean / (r + mean))
    )


@keras.saving.register_keras_serializable(package="zoo")
class ForecastLoss(keras.losses.Loss):
    """The training loss of a head: `negative_log_likelihood`, averaged over steps."""

    def __init__(self, head="student_t", name="forecast_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.head = check_head(head)

    def call(self, y_true, y_pred):
        return negative_log_likelihood(self.head, y_pred, ops.cast(y_true, y_pred.dtype))

    def get_config(self):
        return {**super().get_config(), "head": self.head}


def quantiles(head, params, levels=QUANTILES, scale=1.0) -> np.ndarray:
    """The `levels` quantiles (..., len(levels)) of the distribution `params` (..., P), in
    the units of y (times `scale`, broadcast over the leading axes)."""
    from scipy import stats

    params = np.asarray(params, np.float64)
    scale = np.asarray(scale, np.float64)[..., None]
    levels = np.asarray(levels, np.float64)
    if head == "quantile":
        found = np.stack(
            [np.interp(levels, QUANTILES, row) for row in params.reshape(-1, params.shape[-1])]
        ).reshape(*params.shape[:-1], -1)
        return found * scale
    if head == "normal":
        return (params[..., :1] + params[..., 1:2] * stats.norm.ppf(levels)) * scale
    if head == "student_t":
        return (params[..., :1] + params[..., 1:2] * stats.t.ppf(levels, params[..., 2:3])) * scale
    mean, alpha = params[..., :1] * scale, params[..., 1:2] / np.sqrt(scale)
    r = 1.0 / alpha
    return stats.nbinom.ppf(levels, r, r / (r + mean))


def sample(head, params, rng, scale=1.0) -> np.ndarray:
    """One draw (...) per row of `params` (..., P), in units of y / s (the quantile head
    returns its median)."""
    params = np.asarray(params, np.float64)
    if head == "quantile":
        return params[..., len(QUANTILES) // 2]
    if head == "normal":
        return params[..., 0] + params[..., 1] * rng.standard_normal(params.shape[:-1])
    if head == "student_t":
        return params[..., 0] + params[..., 1] * rng.standard_t(params[..., 2])
    scale = np.broadcast_to(np.asarray(scale, np.float64), params.shape[:-1])
    mean, r = params[..., 0] * scale, np.sqrt(scale) / params[..., 1]
    return rng.negative_binomial(r, r / (r + mean)) / scale
