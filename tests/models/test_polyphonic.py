import math

import keras
import numpy as np
import pytest

from zoo.models import polyphonic
from zoo.models.polyphonic import FrameNLL, NLLPerStep, PolyphonicModel, frame_nll

PITCHES = 12


def _rolls(batch=4, time=16, seed=0):
    """Random multi-hot rolls with two notes a step, and the inputs shifted by a zero frame."""
    rng = np.random.default_rng(seed)
    rolls = np.zeros((batch, time, PITCHES), "float32")
    for b, t in np.ndindex(batch, time):
        rolls[b, t, rng.choice(PITCHES, 2, replace=False)] = 1
    inputs = np.concatenate([np.zeros_like(rolls[:, :1]), rolls[:, :-1]], axis=1)
    return inputs, rolls


def test_frame_nll_is_the_summed_binary_cross_entropy():
    _, rolls = _rolls()
    logits = np.random.default_rng(1).normal(size=rolls.shape).astype("float32")
    p = 1 / (1 + np.exp(-logits))
    expected = -(rolls * np.log(p) + (1 - rolls) * np.log(1 - p)).sum(-1)
    np.testing.assert_allclose(frame_nll(rolls, logits), expected, rtol=1e-5)


def test_a_uniform_model_scores_pitches_times_log_2_and_padding_is_ignored():
    inputs, rolls = _rolls(batch=2, time=8)
    rolls[1, 5:] = -1  # padding
    model = PolyphonicModel(PITCHES, cell="gru", units=8)
    model(inputs)
    model.head.set_weights([np.zeros_like(w) for w in model.head.get_weights()])  # p = 1/2
    logits = model(inputs)
    uniform = polyphonic.uniform_nll(PITCHES)
    assert uniform == pytest.approx(PITCHES * math.log(2))
    assert float(FrameNLL()(rolls, logits)) == pytest.approx(uniform, rel=1e-6)
    metric = NLLPerStep()
    metric.update_state(rolls, logits)
    metric.update_state(rolls[:1], logits[:1])
    assert float(metric.result()) == pytest.approx(uniform, rel=1e-6)
    assert float(metric.count) == 13 + 8


def test_short_training_lowers_the_nll():
    inputs, rolls = _rolls(batch=8, time=12)
    rolls[:, :, :3] = 1  # three pitches always sound: learnable from the bias alone
    keras.utils.set_random_seed(0)
    model = PolyphonicModel(PITCHES, cell="vanilla_lstm", units=8)
    model.compile(keras.optimizers.Adam(0.05), loss=FrameNLL())
    losses = [float(model.train_on_batch(inputs, rolls)) for _ in range(10)]
    assert losses[-1] < losses[0] - 2.0


def test_step_equals_the_sequence_and_the_model_round_trips(tmp_path):
    inputs, _ = _rolls(batch=2, time=5)
    model = PolyphonicModel(PITCHES, cell="cifg_lstm", units=6, layers=2)
    full = model(inputs)
    states = model.initial_state(2)
    for t in range(5):
        logits, states = model.step(inputs[:, t], states)
    np.testing.assert_allclose(logits, full[:, -1], atol=1e-5)
    first, carried = model.prefill(inputs[:, :3], model.initial_state(2))
    rest, carried = model.prefill(inputs[:, 3:], carried)
    np.testing.assert_allclose(np.concatenate([first, rest], 1), full, atol=1e-5)
    for a, b in zip(keras.tree.flatten(carried), keras.tree.flatten(states)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_config()["cell"] == "cifg_lstm" and loaded.num_layers == 2
    np.testing.assert_allclose(loaded(inputs), full, atol=1e-6)


def test_sampling_keeps_at_most_max_voices_and_is_seeded():
    model = PolyphonicModel(PITCHES, units=4)
    model(np.zeros((1, 1, PITCHES), "float32"))
    bias = model.head.bias
    bias.assign(np.full(PITCHES, 3.0, "float32"))  # every pitch likely: the cap must bite
    rolls = polyphonic.sample(model, steps=6, batch_size=2, max_voices=4, seed=1)
    assert rolls.shape == (2, 6, PITCHES) and set(np.unique(rolls)) <= {0, 1}
    assert rolls.sum(-1).max() == 4
    again = polyphonic.sample(model, steps=6, batch_size=2, max_voices=4, seed=1)
    np.testing.assert_array_equal(rolls, again)
    primed = polyphonic.sample(model, steps=3, primer=rolls[:1], temperature=0, max_voices=2)
    assert primed.shape == (1, 3, PITCHES) and (primed.sum(-1) == 2).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="units=0"):
        PolyphonicModel(PITCHES, units=0)
    with pytest.raises(ValueError, match="dropout"):
        PolyphonicModel(PITCHES, dropout=1.0)
    with pytest.raises(KeyError, match="no_such_cell"):
        PolyphonicModel(PITCHES, cell="no_such_cell")
