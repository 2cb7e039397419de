import numpy as np
import pytest
from keras import ops

from zoo import decoding

LOGITS = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], "float32"))


def kept(logits):
    return set(np.flatnonzero(ops.convert_to_numpy(logits)[0] > -1e8))


def test_top_k_and_top_p_keep_the_right_tokens():
    assert kept(decoding.filter_logits(LOGITS, top_k=2)) == {0, 1}
    assert kept(decoding.filter_logits(LOGITS, top_p=0.5)) == {0}
    assert kept(decoding.filter_logits(LOGITS, top_p=0.6)) == {0, 1}
    assert kept(decoding.filter_logits(LOGITS, top_p=0.9)) == {0, 1, 2}
    assert kept(decoding.filter_logits(LOGITS, top_k=2, top_p=0.99)) == {0, 1}


def test_sampling_is_seeded_and_greedy_at_zero_temperature():
    logits = np.tile(LOGITS, (64, 1))
    a, b = (ops.convert_to_numpy(decoding.sample_logits(logits, seed=7)) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert len(set(a)) > 1
    assert set(ops.convert_to_numpy(decoding.sample_logits(logits, 0.0))) == {0}
    assert set(ops.convert_to_numpy(decoding.sample_logits(logits, top_k=1))) == {0}


def test_generate_feeds_back_its_samples():
    def step(ids, count):  # a "model" that predicts id + 1
        return ops.one_hot((ids + 1) % 5, 5) * 50.0, count + 1

    out = decoding.generate(step, 0, np.array([[0, 2]]), 4, temperature=0.5, seed=1)
    np.testing.assert_array_equal(out, [[3, 4, 0, 1]])
    assert decoding.generate(step, 0, np.array([[0]]), 0).shape == (1, 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": -1}, "temperature=-1"),
        ({"top_k": 0}, "top_k=0"),
        ({"top_p": 1.5}, "top_p=1.5"),
        ({"top_p": 0.0}, "top_p=0.0"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        decoding.sample_logits(LOGITS, **kwargs)
