"""Serialised SATB chorales: the encoding, the grammar, the exact NLL per step, harmonising."""

import numpy as np
import pytest

from pipelines import cli
from pipelines.music.harmony import chorale_frames, continue_chorale, harmonize, read_line
from pipelines.music.midi import LOWEST, midi_to_roll, read_midi
from zoo.models import harmony
from zoo.models.harmony import SATBVocabulary, nll_per_step


def test_encoding_round_trips_with_fermatas_and_rests():
    vocabulary = SATBVocabulary()
    grid = np.array([[72, 67, 64, 48], [74, 0, 65, 36], [81, 69, 60, 41]])
    fermatas = np.array([False, True, False])
    tokens = vocabulary.encode(grid, fermatas)
    assert tokens.shape == (15,) and tokens[5] == vocabulary.FERMATA
    decoded, held = vocabulary.decode(np.concatenate([[vocabulary.SEP], tokens]))
    np.testing.assert_array_equal(decoded, grid)
    np.testing.assert_array_equal(held, fermatas)


def test_grammar_admits_the_encoded_sequence_only():
    vocabulary = SATBVocabulary()
    tokens = np.concatenate([[vocabulary.SEP], vocabulary.encode([[72, 67, 64, 48]] * 3)])
    allowed = vocabulary.grammar()
    assert allowed[tokens[:-1], tokens[1:]].all()
    assert not allowed[tokens[1], tokens[3]]  # a marker never precedes alto


def test_nll_sums_the_tokens_of_each_frame():
    vocabulary = SATBVocabulary()
    targets = vocabulary.encode([[72, 67, 64, 48], [74, 67, 65, 47]])[None]
    logits = np.random.default_rng(0).normal(size=(*targets.shape, vocabulary.size))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, targets[..., None], -1).sum() / 2
    assert np.isclose(nll_per_step(targets, logits, vocabulary), expected)
    metric = harmony.SerialNLLPerStep()
    metric.update_state(targets, logits.astype("float32"))
    assert np.isclose(float(metric.result()), expected, rtol=1e-5)


def test_model_masks_and_harmonizes_keeping_the_soprano():
    model = harmony.serial_model("tiny")
    vocabulary = model.vocabulary
    ids = np.concatenate([[vocabulary.SEP], vocabulary.encode([[72, 67, 64, 48]] * 2)])[None]
    logits = np.asarray(model(ids))
    assert (logits[0, 0, vocabulary.voice_tokens(0)] < -1e8).all()  # after SEP: a marker
    melody = np.repeat([72, 74, 76, 0, 77, 76], 4)
    melody[5] = 73  # a 16th note between quarter onsets stays in the soprano
    grid = harmonize(model, melody, seed=1)
    np.testing.assert_array_equal(grid[:, 0], melody)
    frames, _ = chorale_frames(grid)
    assert grid.shape == (len(melody), 4) and frames.shape == (6, 4)


def test_continuation_keeps_the_opening_exactly_then_writes_whole_chords():
    model = harmony.serial_model("tiny")
    opening = np.repeat([[72, 67, 64, 48], [74, 67, 65, 47], [76, 67, 60, 48]], 4, axis=0)
    opening[5] = [73, 67, 65, 47]  # a passing 16th note between quarter onsets
    grid = continue_chorale(model, opening, length=8, seed=2)
    assert grid.shape == (8 * 4, 4)
    np.testing.assert_array_equal(grid[: len(opening)], opening)
    assert ((grid[len(opening) :] == 0) | (grid[len(opening) :] >= LOWEST)).all()


@pytest.mark.slow
def test_cli_trains_then_harmonises_a_corpus_chorale_keeping_its_soprano(tmp_path):
    run_dir, output = tmp_path / "run", tmp_path / "bwv269"
    assert (
        cli.run(
            [
                "train",
                "--task=harmony",
                "--units=16",
                "--layers=1",
                "--embedding_dim=8",
                "--epochs=1",
                "--steps=2",
                "--seq_len=16",
                "--batch_size=4",
                f"--run_dir={run_dir}",
            ]
        )
        == 0
    )
    assert (
        cli.run(["sample", f"--run_dir={run_dir}", "--melody=bach/bwv269", f"--output={output}"])
        == 0
    )
    soprano = read_line("bach/bwv269")[0][:, 0]
    roll = midi_to_roll(read_midi(f"{output}.mid"))
    steps = np.flatnonzero(soprano[: len(roll)] > 0)
    assert len(steps) > 0.9 * np.count_nonzero(soprano)
    assert roll[steps, soprano[steps] - LOWEST].all()
    assert (tmp_path / "bwv269.png").stat().st_size > 0
