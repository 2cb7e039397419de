"""SequenceClassifier: no padding leaks, streaming equals the whole-sequence pass, any cell."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import cells
from zoo.models.classifier import SequenceClassifier
from zoo.models.language_model import token_cells

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 9, 2)).astype("float32")
LENGTHS = np.array([9, 5, 2], "int32")


def small(**overrides):
    arguments = dict(
        num_classes=3,
        channels=2,
        units=6,
        layers=2,
        conv_filters=(4, 5),
        conv_kernels=(3, 2),
        mean=[0.5, -1.0],
        std=[2.0, 0.5],
        **overrides,
    )
    model = SequenceClassifier(**arguments)
    model({"features": X, "lengths": LENGTHS})
    return model


def garbage_padded(x, lengths, extra=4):
    """x with NaN and huge values after each length, and `extra` more garbage steps."""
    padded = np.concatenate([x, np.zeros((len(x), extra, x.shape[2]), "float32")], 1)
    for row, n in zip(padded, lengths):
        row[n:] = np.where(RNG.random(row[n:].shape) < 0.5, np.nan, 1e6)
    return padded


@pytest.mark.parametrize("pooling", ["last", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_reaches_the_output(pooling, bidirectional):
    model = small(pooling=pooling, bidirectional=bidirectional)
    clean = np.asarray(model({"features": X, "lengths": LENGTHS}))
    noisy = np.asarray(model({"features": garbage_padded(X, LENGTHS), "lengths": LENGTHS}))
    np.testing.assert_allclose(noisy, clean, atol=1e-6)
    for i, n in enumerate(LENGTHS):  # alone, unpadded
        alone = model({"features": X[i : i + 1, :n], "lengths": LENGTHS[i : i + 1]})
        np.testing.assert_allclose(np.asarray(alone)[0], clean[i], atol=1e-5)


def test_padding_never_reaches_a_training_step():
    """Loss and gradients (batch-norm statistics included) ignore padded steps."""
    model, labels = small(pooling="attention", dropout=0.0), np.array([0, 1, 2])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def gradients(x):
        with tf.GradientTape() as tape:
            value = loss(labels, model({"features": x, "lengths": LENGTHS}, training=True))
        return [value, *tape.gradient(value, model.trainable_variables)]

    for clean, noisy in zip(gradients(X), gradients(garbage_padded(X, LENGTHS))):
        np.testing.assert_allclose(np.asarray(noisy), np.asarray(clean), atol=1e-5)


@pytest.mark.parametrize("pooling", ["last", "attention"])
def test_streaming_step_equals_the_whole_prefix(pooling):
    model = small(pooling=pooling)
    states, outputs = model.initial_state(3), []
    for t in range(X.shape[1]):
        logits, states = model.step(X[:, t], states)
        outputs.append(np.asarray(logits))
    for t in (0, 3, 8):
        prefix = model({"features": X[:, : t + 1], "lengths": np.full(3, t + 1, "int32")})
        np.testing.assert_allclose(outputs[t], np.asarray(prefix), atol=1e-5)
    prefilled, _ = model.prefill(X, model.initial_state(3))
    np.testing.assert_allclose(np.asarray(prefilled), np.stack(outputs, 1), atol=1e-6)


@pytest.mark.parametrize("cell", token_cells())
def test_any_registered_cell_classifies_and_saves(cell, tmp_path):
    model = SequenceClassifier(
        3,
        channels=2,
        cell=cell,
        units=8,
        pooling="attention",
        **(
            {"cell_kwargs": {"num_heads": 2}}
            if "num_heads" in cells.get(cell)(8).get_config()
            else {}
        ),
    )
    logits = np.asarray(model({"features": X, "lengths": LENGTHS}))
    assert logits.shape == (3, 3) and np.isfinite(logits).all()
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        np.asarray(again({"features": X, "lengths": LENGTHS})), logits, atol=1e-6
    )


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="pooling"):
        SequenceClassifier(3, channels=2, pooling="max")
    with pytest.raises(ValueError, match="kernels of at least 2"):
        SequenceClassifier(3, channels=2, conv_filters=(4,), conv_kernels=(1,))
    with pytest.raises(ValueError, match="one value per channel"):
        SequenceClassifier(3, channels=2, mean=[0.0])
    with pytest.raises(ValueError, match="no streaming step"):
        SequenceClassifier(3, channels=2, bidirectional=True).initial_state(1)
