"""ConvLSTM cell: NumPy reference of Shi et al.'s equations, Keras ConvLSTM parity, shapes."""

import itertools

import keras
import numpy as np
import pytest

from zoo.cells.conv_lstm import ConvLSTMCell, ConvRNN


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def conv_same(x, w):
    """Cross-correlation with "same" padding, stride 1: x (B, *S, Cin), w (*K, Cin, Cout)."""
    kernel = w.shape[:-2]
    pads = [(0, 0)] + [((k - 1) // 2, k // 2) for k in kernel] + [(0, 0)]
    padded = np.pad(x, pads)
    spatial = x.shape[1:-1]
    out = np.zeros(x.shape[:-1] + (w.shape[-1],))
    for offset in itertools.product(*(range(k) for k in kernel)):
        window = padded[(slice(None),) + tuple(slice(o, o + s) for o, s in zip(offset, spatial))]
        out += window @ w[offset]
    return out


def reference(x, mask, kernel, recurrent, bias, peep):
    """Step-by-step NumPy ConvLSTM (peephole form); masked steps keep state and output."""
    batch, steps = x.shape[:2]
    filters = kernel.shape[-1] // 4
    h = np.zeros(x.shape[:-1] + (filters,))[:, 0]
    c = np.zeros_like(h)
    outputs = []
    for t in range(steps):
        z = conv_same(x[:, t], kernel) + conv_same(h, recurrent) + bias
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        i = sigmoid(zi + peep["i"] * c)
        f = sigmoid(zf + peep["f"] * c)
        c_new = f * c + i * np.tanh(zc)
        o = sigmoid(zo + peep["o"] * c_new)
        h_new = o * np.tanh(c_new)
        keep = mask[:, t].reshape((batch,) + (1,) * (h.ndim - 1))
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        outputs.append(h)
    return np.stack(outputs, 1), h, c


@pytest.mark.parametrize("rank", [1, 2])
def test_matches_numpy_reference_with_peepholes_and_mask(rank):
    rng = np.random.default_rng(0)
    spatial, channels, filters, kernel_size = (5,) * rank, 2, 3, 3
    x = rng.normal(size=(2, 4, *spatial, channels)).astype("float32")
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
    cell = ConvLSTMCell(filters, kernel_size, rank=rank)
    layer = ConvRNN(cell, return_sequences=True, return_state=True)
    layer(x)
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(weights)
    out, h, c = (np.asarray(v) for v in layer(x, mask=mask))
    names = [w.path.split("/")[-1] for w in layer.weights]
    by_name = dict(zip(names, weights))
    peep = {g: by_name[f"peephole_{g}"] for g in "ifo"}
    ref_out, ref_h, ref_c = reference(
        x, mask, by_name["kernel"], by_name["recurrent_kernel"], by_name["bias"], peep
    )
    np.testing.assert_allclose(h, ref_h, atol=1e-5)
    np.testing.assert_allclose(c, ref_c, atol=1e-5)
    np.testing.assert_allclose(out[mask], ref_out[mask], atol=1e-5)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_equals_keras_conv_lstm2d_without_peepholes(padding):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 6, 6, 2)).astype("float32")
    ours = ConvRNN(ConvLSTMCell(4, 3, padding=padding, use_peepholes=False), return_sequences=True)
    keras_layer = keras.layers.ConvLSTM2D(4, 3, padding=padding, return_sequences=True)
    ours(x)
    keras_layer(x)
    keras_layer.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), keras_layer(x), atol=1e-6)


def test_functional_model_roundtrip_and_shapes(tmp_path):
    inputs = keras.Input((3, 8, 8, 2))
    outputs = ConvRNN(ConvLSTMCell(4, (3, 3), padding="valid"), return_sequences=True)(inputs)
    model = keras.Model(inputs, outputs)
    assert model.output.shape == (None, 3, 6, 6, 4)
    x = np.random.default_rng(2).normal(size=(2, 3, 8, 8, 2)).astype("float32")
    path = tmp_path / "conv.keras"
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x), model(x), atol=1e-6)
    cell = model.layers[1].cell
    assert cell.project_inputs(x).shape == (2, 3, 6, 6, 16)
    assert cell.state_size == [6 * 6 * 4] * 2


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"rank": 4}, "rank=4"),
        ({"padding": "causal"}, "padding='causal'"),
        ({"kernel_size": (3, 3, 3)}, "kernel_size=(3, 3, 3)"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word.replace("(", r"\(").replace(")", r"\)")):
        ConvLSTMCell(4, **kwargs)
