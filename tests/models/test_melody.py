import keras
import numpy as np
import pytest

from zoo.models.language_model import LanguageModel
from zoo.models.melody import DURATIONS, REST, EventVocabulary, TimeAwareMelodyModel, melody_model


def test_events_round_trip_through_tokens():
    vocabulary = EventVocabulary()
    events = np.array([[48, 0], [REST, 3], [96, len(DURATIONS) - 1], [72, 5]])
    tokens = vocabulary.encode(events)
    assert tokens.min() >= 2 and tokens.max() < vocabulary.size
    assert vocabulary.size == 2 + 50 * len(DURATIONS)
    np.testing.assert_array_equal(vocabulary.decode(tokens), events)
    padded = np.concatenate([[vocabulary.END], tokens, [vocabulary.END, vocabulary.PAD]])
    np.testing.assert_array_equal(vocabulary.decode(padded), events)


def test_durations_snap_and_pitches_fold():
    vocabulary = EventVocabulary()
    snapped = vocabulary.duration_index([0.25, 0.26, 1 / 3, 1.0, 1.1, 7.0])
    assert [DURATIONS[i] for i in snapped] == [0.25, 0.25, 1 / 3, 1.0, 1.0, 4.0]
    np.testing.assert_array_equal(
        vocabulary.fold([30, 48, REST, 100, 121]), [54, 48, REST, 88, 97 - 12]
    )


def test_out_of_range_pitches_are_an_error():
    with pytest.raises(ValueError, match="48..96"):
        EventVocabulary().encode([[40, 0]])


def test_melody_model_is_a_language_model_over_events():
    model = melody_model(size="tiny", cell="gru")
    assert isinstance(model, LanguageModel)
    assert model.vocab_size == EventVocabulary().size and model.cell == "gru"
    with pytest.raises(KeyError, match="huge"):
        melody_model(size="huge")


def test_time_aware_model_reads_the_previous_event_length(tmp_path):
    vocabulary = EventVocabulary()
    gaps = vocabulary.gaps()
    assert gaps[[vocabulary.PAD, vocabulary.END]].tolist() == [0, 0]
    np.testing.assert_array_equal(gaps[vocabulary.encode([[60, 5], [REST, 7]])], [1.0, 2.0])
    assert type(melody_model(size="tiny", cell="lstm")) is LanguageModel
    model = melody_model(size="tiny", cell="tlstm", layers=2)
    assert isinstance(model, TimeAwareMelodyModel)
    ids = vocabulary.encode([[60, 5], [62, 2], [REST, 9], [64, 0]])[None]
    logits = keras.ops.convert_to_numpy(model(ids))
    states, stepwise = model.initial_state(1), []
    for t in range(ids.shape[1]):
        step_logits, states = model.step(ids[:, t], states)
        stepwise.append(keras.ops.convert_to_numpy(step_logits))
    np.testing.assert_allclose(np.stack(stepwise, 1), logits, rtol=1e-5, atol=1e-6)
    first, carried = model.prefill(ids[:, :2], model.initial_state(1))  # Δt carried too
    rest, carried = model.prefill(ids[:, 2:], carried)
    np.testing.assert_allclose(np.concatenate([first, rest], 1), logits, rtol=1e-5, atol=1e-6)
    for a, b in zip(keras.tree.flatten(carried), keras.tree.flatten(states)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Δt of each step is the previous event's length in quarters (0 for the first).
    layer = melody_model(size="tiny", cell="tlstm")
    delta_t = np.array([0, DURATIONS[5], DURATIONS[2], DURATIONS[9]], "float32")[None, :, None]
    x = np.concatenate([keras.ops.convert_to_numpy(layer.embedding(ids)), delta_t], -1)
    expected = keras.ops.convert_to_numpy(layer.head(layer.recurrent[0](x)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(ids)), expected, rtol=1e-6)
    model.save(tmp_path / "melody.keras")
    restored = keras.models.load_model(tmp_path / "melody.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(ids)), logits, rtol=1e-6)
    with pytest.raises(ValueError, match="one length per token"):
        TimeAwareMelodyModel(5, [0.0] * 4)
