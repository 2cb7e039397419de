import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import tree

from zoo import cells
from zoo.layers import Recurrent, sequence_layer
from zoo.models import language_model
from zoo.models.language_model import SIZES, LanguageModel, from_size, token_cells

VOCAB = 11


def stepwise_logits(model, ids, with_states=False):
    states = model.initial_state(ids.shape[0])
    logits = []
    for t in range(ids.shape[1]):
        step_logits, states = model.step(ids[:, t], states)
        logits.append(keras.ops.convert_to_numpy(step_logits))
    return (np.stack(logits, axis=1), states) if with_states else np.stack(logits, axis=1)


def flat(states):
    return np.concatenate([np.ravel(keras.ops.convert_to_numpy(s)) for s in tree.flatten(states)])


@pytest.mark.parametrize("cell", token_cells())
def test_any_cell_steps_and_prefills_like_the_sequence_model(cell):
    model = LanguageModel(VOCAB, cell=cell, units=4, layers=2, embedding_dim=3)
    ids = np.random.default_rng(0).integers(0, VOCAB, (2, 5))
    logits = keras.ops.convert_to_numpy(model(ids))
    assert logits.shape == (2, 5, VOCAB)
    stepwise, final = stepwise_logits(model, ids, with_states=True)
    np.testing.assert_allclose(stepwise, logits, rtol=1e-4, atol=1e-5)
    # prefill: the same sequence in two calls, the states carried between them
    first, states = model.prefill(ids[:, :2], model.initial_state(2))
    rest, states = model.prefill(ids[:, 2:], states)
    np.testing.assert_allclose(np.concatenate([first, rest], 1), logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(flat(states), flat(final), rtol=1e-4, atol=1e-5)


def test_causal_future_tokens_do_not_change_past_logits():
    model = LanguageModel(VOCAB, units=8, layers=1, embedding_dim=4)
    ids = np.random.default_rng(1).integers(0, VOCAB, (1, 6))
    changed = ids.copy()
    changed[0, 4:] = (changed[0, 4:] + 1) % VOCAB
    a, b = (keras.ops.convert_to_numpy(model(x)) for x in (ids, changed))
    np.testing.assert_allclose(a[:, :4], b[:, :4], rtol=1e-6)
    assert not np.allclose(a[:, 4:], b[:, 4:])


def test_keras_file_round_trip(tmp_path):
    model = from_size("tiny", VOCAB, cell="gru", dropout=0.1)
    ids = np.arange(8).reshape(2, 4) % VOCAB
    expected = keras.ops.convert_to_numpy(model(ids))
    model.save(tmp_path / "lm.keras")
    restored = keras.models.load_model(tmp_path / "lm.keras")
    assert restored.get_config() == model.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(ids)), expected, rtol=1e-6)


def test_sizes_are_data_and_overridable():
    assert all(set(p) == {"embedding_dim", "units", "layers"} for p in SIZES.values())
    model = from_size("tiny", VOCAB, units=5)
    assert (model.units, model.num_layers) == (5, SIZES["tiny"]["layers"])
    with pytest.raises(KeyError, match="Known sizes: tiny"):
        from_size("huge", VOCAB)


def test_stacked_layers_and_dropout_in_training_only():
    model = LanguageModel(VOCAB, cell="cifg_lstm", units=4, layers=2, embedding_dim=4, dropout=0.5)
    assert len(model.recurrent) == 2
    ids = np.random.default_rng(2).integers(0, VOCAB, (4, 6))
    run = lambda training: keras.ops.convert_to_numpy(model(ids, training=training))
    np.testing.assert_array_equal(run(False), run(False))
    assert not np.allclose(run(True), run(True))


def test_models_run_their_cells_in_the_fast_layer():
    model = language_model.LanguageModel(VOCAB, cell="gru", units=4, layers=2)
    assert all(isinstance(layer, Recurrent) and layer.return_sequences for layer in model.recurrent)
    both = sequence_layer(cells.create("lstm", 3), bidirectional=True)
    assert isinstance(both, keras.layers.Bidirectional)
    assert isinstance(both.forward_layer, Recurrent)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 0}, "units=0"),
        ({"layers": 1.5}, "layers=1.5"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"cell": "nope"}, "Unknown cell 'nope'"),
        ({"cell": "conv_lstm"}, "not token vectors"),
    ],
)
def test_bad_arguments(kwargs, message):
    if "conv_lstm" in kwargs.values() and "conv_lstm" not in cells.names():
        pytest.skip("no conv_lstm cell")
    with pytest.raises((ValueError, KeyError), match=message):
        LanguageModel(VOCAB, **kwargs)


def test_mixed_precision_logits_are_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = from_size("tiny", VOCAB)
        assert keras.backend.standardize_dtype(model(np.zeros((1, 3), "int32")).dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    "cell, kwargs", [("lstm", {}), ("projection_lstm", {}), ("mlstm", {"num_heads": 2})]
)
def test_parameter_count_matches_the_built_model(cell, kwargs):
    model = LanguageModel(VOCAB, cell=cell, units=6, layers=2, embedding_dim=3, cell_kwargs=kwargs)
    model(np.zeros((1, 2), "int32"))
    count = language_model.parameter_count(VOCAB, cell, 6, 2, 3, kwargs)
    assert count == model.count_params()


@pytest.mark.parametrize("cell, heads", [("gru", 1), ("slstm", 2), ("mlstm", 4)])
def test_units_for_parameters_gives_the_nearest_size(cell, heads):
    target = language_model.parameter_count(VOCAB, "lstm", 16, 2, 8)
    kwargs = {"num_heads": heads} if heads > 1 else None
    units = language_model.units_for_parameters(target, VOCAB, cell, 2, 8, kwargs)
    assert units % heads == 0
    error = [
        abs(language_model.parameter_count(VOCAB, cell, u, 2, 8, kwargs) - target)
        for u in (units - heads, units, units + heads)
    ]
    assert error[1] <= min(error) and error[1] < 0.1 * target
    with pytest.raises(ValueError, match="parameters=0"):
        language_model.units_for_parameters(0, VOCAB, cell)


def test_mlstm_trains_in_its_parallel_form(monkeypatch):
    model = LanguageModel(VOCAB, cell="mlstm", units=4, layers=2, embedding_dim=3)
    ids = np.random.default_rng(3).integers(0, VOCAB, (2, 5))
    model(ids)
    states, stepwise = model.initial_state(2), []
    for t in range(ids.shape[1]):  # the recurrent form, one step at a time
        logits, states = model.step(ids[:, t], states)
        stepwise.append(keras.ops.convert_to_numpy(logits))
    stepwise = np.stack(stepwise, axis=1)
    calls = []
    parallel = type(model.recurrent[0].cell).parallel
    monkeypatch.setattr(
        type(model.recurrent[0].cell),
        "parallel",
        lambda cell, x, *a: calls.append(x.shape) or parallel(cell, x, *a),
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(ids)), stepwise, rtol=1e-5, atol=1e-6
    )
    assert calls == [(2, 5, 3), (2, 5, 4)]
    # Traced with an unknown batch (validation), or unknown length (then the loop runs).
    monkeypatch.undo()
    for shape in ((None, 5), (None, None)):
        traced = tf.function(model, input_signature=[tf.TensorSpec(shape, "int32")])
        np.testing.assert_allclose(traced(ids), stepwise, rtol=1e-5, atol=1e-6)


def test_the_generating_models_follow_the_step_protocol():
    from zoo.models import StepModel
    from zoo.models.ctc import CTCModel
    from zoo.models.melody import melody_model
    from zoo.models.polyphonic import PolyphonicModel

    for model in (
        LanguageModel(10, units=4, embedding_dim=3, layers=1),
        melody_model(size="tiny", cell="tlstm"),
        PolyphonicModel(6, units=4),
    ):
        assert isinstance(model, StepModel), type(model).__name__
    bidirectional, forward = CTCModel(3, units=4), CTCModel(3, units=4, bidirectional=False)
    assert isinstance(bidirectional, StepModel) and not bidirectional.streams
    assert forward.streams and bidirectional.initial_state(2) == []
