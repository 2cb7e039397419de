import numpy as np
import pytest

from zoo.models.language_model import LanguageModel
from zoo.models.melody import DURATIONS, REST, EventVocabulary, melody_model


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
    np.testing.assert_array_equal(vocabulary.fold([30, 48, REST, 100, 121]),
                                  [54, 48, REST, 88, 97 - 12])


def test_out_of_range_pitches_are_an_error():
    with pytest.raises(ValueError, match="48..96"):
        EventVocabulary().encode([[40, 0]])


def test_melody_model_is_a_language_model_over_events():
    model = melody_model(preset="tiny", cell="gru")
    assert isinstance(model, LanguageModel)
    assert model.vocab_size == EventVocabulary().size and model.cell == "gru"
    with pytest.raises(KeyError, match="huge"):
        melody_model(preset="huge")
