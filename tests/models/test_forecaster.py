"""The forecaster: its heads' likelihoods and quantiles against SciPy, its step protocol, any
cell."""

import keras
import numpy as np
import pytest
from scipy import stats

from zoo import cells
from zoo.models import distributions
from zoo.models.forecaster import Forecaster, weighted_quantile_loss

RNG = np.random.default_rng(0)


def targets(values, scale=1.0):
    values = np.asarray(values, np.float32)
    return np.stack([values / scale, np.full_like(values, scale)], -1)


@pytest.mark.parametrize("head", ["normal", "student_t", "negative_binomial"])
def test_negative_log_likelihood_is_scipys(head):
    scale, y = 4.0, np.array([[3.0, 0.0, 7.0]], np.float32)
    raw = RNG.standard_normal((1, 3, distributions.HEADS[head])).astype(np.float32)
    params = np.asarray(distributions.constrain(head, raw))
    loss = np.asarray(distributions.negative_log_likelihood(head, params, targets(y, scale)))
    if head == "normal":
        expected = -stats.norm.logpdf(y / scale, params[..., 0], params[..., 1])
    elif head == "student_t":
        expected = -stats.t.logpdf(y / scale, params[..., 2], params[..., 0], params[..., 1])
    else:
        mean, alpha = params[..., 0] * scale, params[..., 1] / np.sqrt(scale)
        expected = -stats.nbinom.logpmf(y, 1 / alpha, (1 / alpha) / (1 / alpha + mean))
    np.testing.assert_allclose(loss, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("head", ["normal", "student_t", "negative_binomial"])
def test_samples_follow_the_quantiles(head):
    params = np.asarray(
        distributions.constrain(head, np.full((20_000, distributions.HEADS[head]), 0.5, np.float32))
    )
    draws = distributions.sample(head, params, np.random.default_rng(1), scale=3.0)
    expected = distributions.quantiles(head, params[0], (0.1, 0.5, 0.9), scale=3.0)
    np.testing.assert_allclose(
        np.quantile(draws * 3.0, (0.1, 0.5, 0.9)), expected, rtol=0.06, atol=0.1
    )


def test_quantile_head_is_ordered_and_trained_by_pinball_loss():
    params = np.asarray(distributions.constrain("quantile", RNG.standard_normal((5, 9)) * 3))
    assert (np.diff(params, axis=-1) > 0).all()
    loss = distributions.negative_log_likelihood("quantile", params, targets(np.zeros(5)))
    q = np.asarray(distributions.QUANTILES)
    np.testing.assert_allclose(loss, np.maximum(q * -params, (q - 1) * -params).sum(-1), rtol=1e-5)


def test_weighted_quantile_loss_is_gluontss_definition():
    y = np.array([10.0, 20.0])
    q = np.stack([y - 1, y + 2], -1)  # two levels: 1 under, then 2 over
    levels = (0.2, 0.8)
    # q=0.2 under by 1 on both: 2*(0.2*1*2)/30; q=0.8 over by 2: 2*(0.2*2*2)/30
    expected = np.mean([2 * 0.4 / 30, 2 * 0.8 / 30])
    assert weighted_quantile_loss(q, y, levels) == pytest.approx(expected)


@pytest.mark.parametrize("cell", ["lstm", "gru", "peephole_lstm", "slstm"])
def test_step_and_prefill_equal_the_forward_pass_for_any_cell(cell):
    model = Forecaster(features=5, cell=cell, units=8, layers=2, head="student_t")
    x = RNG.standard_normal((3, 7, 5)).astype(np.float32)
    whole = np.asarray(model(x))
    prefilled, states = model.prefill(x[:, :4], model.initial_state(3))
    stepped = []
    for t in range(4, 7):
        params, states = model.step(x[:, t], states)
        stepped.append(np.asarray(params))
    np.testing.assert_allclose(np.asarray(prefilled), whole[:, :4], atol=1e-5)
    np.testing.assert_allclose(np.stack(stepped, 1), whole[:, 4:], atol=1e-5)
    assert (whole[..., 1] > 0).all() and (whole[..., 2] > 2).all()


def test_it_declares_its_step_input_and_scores_its_quality_in_quantile_loss():
    from zoo.models.protocol import StepModel, as_step_model

    model = Forecaster(features=5, cell="lstm", units=8, layers=1, head="normal")
    assert isinstance(model, StepModel) and as_step_model(model) is model
    assert model.step_input == ("float32", (5,))
    x = RNG.standard_normal((2, 6, 5)).astype(np.float32)
    outputs = np.asarray(model(x))
    metric, value = model.quality(outputs, x, outputs)
    levels = distributions.QUANTILES
    quantiles = stats.norm.ppf(levels, outputs[:, :-1, :1], outputs[:, :-1, 1:2])
    assert metric == "weighted_quantile_loss"
    assert value == pytest.approx(weighted_quantile_loss(quantiles, x[:, 1:, 0]), rel=1e-4)


def test_every_token_cell_builds_a_forecaster():
    for name in cells.names():
        if cells.get(name).input_rank != 1:
            with pytest.raises(ValueError, match="rank 3 per step, not feature vectors"):
                Forecaster(features=3, cell=name, units=4, layers=1)
            continue
        model = Forecaster(features=3, cell=name, units=4, layers=1, head="normal")
        assert model(np.zeros((2, 3, 3), np.float32)).shape == (2, 3, 2)


def test_saved_and_loaded_with_its_loss(tmp_path):
    model = Forecaster(features=4, units=8, layers=1, head="negative_binomial")
    model.compile(optimizer="adam", loss=distributions.ForecastLoss("negative_binomial"))
    x = RNG.standard_normal((2, 5, 4)).astype(np.float32)
    model.fit(x, targets(RNG.integers(0, 9, (2, 5)), 2.0), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="head"):
        Forecaster(features=3, head="poisson")
    with pytest.raises(ValueError, match="target_feature"):
        Forecaster(features=3, target_feature=3)
