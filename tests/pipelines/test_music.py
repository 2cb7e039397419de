import json
import logging
import re
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from pipelines import configs, music, train
from pipelines.music import ChoralesConfig, Corpus, MelodyConfig, corpus
from zoo.models import melody
from zoo.models.language_model import LanguageModel
from zoo.models.melody import EventVocabulary


@pytest.fixture(scope="session")
def chorales():
    """The first 16 chorales, parsed once and cached in the user cache (reused across runs)."""
    return music.load_chorales(limit=16)


@pytest.fixture(scope="session")
def melodies():
    """The first O'Neill's file (50 tunes) via abc2midi, cached in the user cache."""
    return music.load_melodies(books=("oneills1850",), limit=1)


def test_chorales_are_satb_grids_in_range_with_fixed_splits(chorales, tmp_path):
    assert len(chorales.names) == 16 and chorales.skipped == 0
    for grid in chorales.pieces:
        assert grid.shape[1] == 4 and len(grid) > 32
        sounding = grid[grid > 0]
        assert sounding.min() >= music.LOWEST and sounding.max() <= music.HIGHEST
        assert (grid[:, 0] >= grid[:, 3]).mean() > 0.95  # soprano above bass
    assert chorales.splits == [music.split_of(n) for n in chorales.names]
    assert set(chorales.splits) <= set(music.SPLITS) and "train" in chorales.splits
    chorales.save(tmp_path / "c.npz")
    loaded = Corpus.load(tmp_path / "c.npz")
    assert loaded.names == chorales.names and loaded.splits == chorales.splits
    for a, b in zip(loaded.pieces, chorales.pieces):
        np.testing.assert_array_equal(a, b)


def test_chorale_piano_roll_midi_round_trip(chorales, tmp_path):
    for i, grid in enumerate(chorales.pieces[:4]):
        roll = music.grid_to_roll(grid)
        assert roll.shape == (len(grid), music.PITCHES)
        path = music.roll_to_midi(roll, tmp_path / f"{i}.mid")
        midi = pretty_midi.PrettyMIDI(str(path))
        assert [inst.name for inst in midi.instruments] == list(music.VOICES)
        back = music.midi_to_roll(midi)
        end = roll.any(1).nonzero()[0].max() + 1  # trailing rests leave no trace in MIDI
        np.testing.assert_array_equal(back, roll[:end])


def test_chorale_windows_shift_inputs_and_pad_targets(chorales):
    grids = chorales.pieces[:3]
    x, y = music.chorale_windows(grids, window=40)
    steps = sum(len(g) for g in grids)
    assert x.shape == y.shape and x.shape[1:] == (40, music.PITCHES)
    assert (y[:, :, 0] >= 0).sum() == steps  # every step once, the rest is padding (-1)
    first = music.grid_to_roll(grids[0])
    np.testing.assert_array_equal(y[0], first[:40])
    np.testing.assert_array_equal(x[0, 1:], first[:39])
    assert not x[0, 0].any()
    coarse = music.frames(grids[0], steps_per_quarter=1)
    np.testing.assert_array_equal(coarse, first[::4])
    with pytest.raises(ValueError, match="steps_per_quarter=3"):
        music.frames(grids[0], steps_per_quarter=3)


def test_chorale_transpositions_stay_in_range_and_keep_rests():
    grid = np.array([[72, 67, 60, 48], [74, 0, 59, 43], [79, 71, 62, 38]])
    shifted = music.transposed_grids([grid], 3)
    # 38 - 3 would fall below 36 and 79 + 3 above 81: those two shifts are left out
    assert [int(g[0, 0]) - 72 for g in shifted] == [-2, -1, 0, 1, 2]
    np.testing.assert_array_equal(shifted[2], grid)
    for g in shifted:
        assert g[1, 1] == 0 and ((g == 0) | ((g >= music.LOWEST) & (g <= music.HIGHEST))).all()
        np.testing.assert_array_equal(np.diff(g[grid > 0]), np.diff(grid[grid > 0]))
    assert len(music.transposed_grids([grid], 0)) == 1


def test_chorale_stream_resumes_on_the_same_batches(chorales):
    stream = music.chorale_train_stream(chorales.pieces, 32, batch_size=4, seed=5)
    batches = [x.numpy() for x, _ in stream.take(6)]
    resumed = music.chorale_train_stream(chorales.pieces, 32, batch_size=4, seed=5, start_step=4)
    np.testing.assert_array_equal(next(iter(resumed))[0].numpy(), batches[4])


def test_folk_tunes_become_events_that_round_trip_through_midi(melodies, tmp_path):
    vocabulary = EventVocabulary()
    assert len(melodies.names) == 50 and melodies.names[0] == "oneills1850/0001-0050#1"
    first = melodies.pieces[0]
    assert first[0].tolist() == [67, vocabulary.duration_index(0.75)]  # "G3-A" at L:1/16
    for events in melodies.pieces[:5]:
        vocabulary.encode(events)  # in range
        path = music.events_to_midi(events, tmp_path / "tune.mid")
        np.testing.assert_array_equal(music.midi_to_events(music.read_midi(path)), events)
    tokens = music.melody_tokens(melodies.pieces[:2], transpositions=1)
    plain = music.melody_tokens(melodies.pieces[:2])
    assert tokens[0] == vocabulary.END and len(tokens) == 3 * len(plain) - 2
    assert music.transpose(np.array([[96, 0]]), 1) is None


def _write_tune(path, pitches):
    music.write_midi(path, [[(i, i + 1, p) for i, p in enumerate(pitches)]])


def test_midi_folders_skip_corrupt_and_empty_files_with_a_warning(tmp_path, caplog):
    folder = tmp_path / "midi"
    _write_tune(folder / "a.mid", [60, 62, 64, 65, 67])
    _write_tune(folder / "sub" / "b.MIDI", [72, 71, 69])
    (folder / "corrupt.mid").write_bytes(b"MThd\x00\x00garbage")
    music.write_midi(folder / "empty.mid", [[]])
    with caplog.at_level(logging.WARNING, logger="pipelines.music"):
        corpus = music.load_midi_folder(folder, "melody")
    assert corpus.names == ["a.mid", "sub/b.MIDI"] and corpus.skipped == 2
    assert "corrupt.mid" in caplog.text and "empty.mid" in caplog.text
    assert corpus.pieces[0][:, 0].tolist() == [60, 62, 64, 65, 67]
    grids = music.load_midi_folder(folder, "chorales")
    assert grids.pieces[1].shape == (12, 4) and grids.pieces[1][0].tolist() == [72, 0, 0, 0]
    (tmp_path / "nothing").mkdir()
    with pytest.raises(FileNotFoundError, match="no .mid or .midi files"):
        music.load_midi_folder(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        music.load_midi_folder(tmp_path / "missing")


def test_piano_roll_png(chorales, tmp_path):
    path = tmp_path / "roll.png"
    music.plot_roll(music.grid_to_roll(chorales.pieces[0]), path, title="BWV 269")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_train_and_sample_chorales_with_four_voices(chorales, tmp_path):
    config = ChoralesConfig(run_dir=str(tmp_path / "run"), limit=16, size="tiny", seq_len=32,
                         batch_size=4, epochs=2, steps=8, learning_rate=0.02, cell="cifg_lstm")
    _, metrics = train.train(config, verbose=0)
    history = metrics["history"]
    assert history[-1]["val_nll"] < history[0]["val_nll"] < music.PITCHES * np.log(2)
    assert metrics["test"]["nll"] > 0
    message = train.sample(config.run_dir, length=24, seed=3, output=str(tmp_path / "gen"))
    assert "gen.mid" in message and (tmp_path / "gen.png").exists()
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "gen.mid"))
    assert len(midi.instruments) == 4
    roll = music.midi_to_roll(midi)
    assert roll.sum(1).max() <= 4 and roll.shape[1] == music.PITCHES


@pytest.mark.slow
def test_train_and_sample_melodies_by_sampling_and_beam_search(melodies, tmp_path):
    config = MelodyConfig(run_dir=str(tmp_path / "run"), limit=1, size="tiny", seq_len=32,
                          batch_size=8, epochs=1, steps=4, transpositions=1)
    train.train(config, verbose=0)
    primer = tmp_path / "primer.mid"
    music.events_to_midi(melodies.pieces[0][:4], primer)
    for options in ({"top_k": 5, "seed": 1}, {"beam_size": 2}):
        out = tmp_path / "tune"
        train.sample(config.run_dir, prompt=str(primer), length=12, output=str(out), **options)
        events = music.midi_to_events(music.read_midi(out.with_suffix(".mid")))
        assert len(music.read_midi(out.with_suffix(".mid")).instruments) == 1
        np.testing.assert_array_equal(events[:4], melodies.pieces[0][:4])


def test_tlstm_melodies_read_the_time_between_events(melodies):
    task, config = music.MelodyTask(), MelodyConfig(cell="gru", size="tiny")
    assert type(task.build_model(config, None)) is LanguageModel
    config.time_aware = True
    assert isinstance(task.build_model(config, None), melody.TimeAwareMelodyModel)
    config.cell, config.time_aware = "tlstm", False
    model = task.build_model(config, None)
    assert isinstance(model, melody.TimeAwareMelodyModel)
    primer = melodies.pieces[0][:3]
    for options in ({"seed": 1}, {"beam_size": 2}):  # Δt travels in the decoders' states
        events = music.generate_melody(model, primer=primer, length=4, **options)
        np.testing.assert_array_equal(events[:3], primer)


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(KeyError, match="--task=chorales or --task=melody"):
        train.get_task("music")
    with pytest.raises(ValueError, match="split 'dev'"):
        Corpus(["a"], [np.zeros((1, 4))]).split("dev")


@pytest.mark.parametrize("music_format, kept, dropped", [
    ("chorales", "steps_per_quarter", "time_aware"), ("melody", "time_aware", "input_noise")])
def test_runs_of_the_former_music_task_load_as_chorales_or_melody(tmp_path, music_format, kept,
                                                                   dropped):
    saved = {"config": "MusicConfig", "task": "music", "music_format": music_format,
             "steps_per_quarter": 1, "input_noise": 0.1, "embedding_dim": None,
             "time_aware": False, "cell": "gru", "size": "tiny"}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    config = train.load_config(tmp_path)
    assert config.task == music_format and type(config).__name__.lower().startswith(
        music_format[:5])
    assert hasattr(config, kept) and not hasattr(config, dropped)
    assert configs.migrated(saved)["task"] == music_format


@pytest.mark.parametrize("env, expected", [
    ({"LSTM_ZOO_CACHE": "{tmp}/mine", "XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/mine"),
    ({"XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/xdg/lstm-zoo"),
    ({"XDG_CACHE_HOME": "relative/xdg"}, "{tmp}/home/.cache/lstm-zoo"),  # invalid: ignored
    ({}, "{tmp}/home/.cache/lstm-zoo"),
])
def test_corpora_are_cached_in_the_user_cache_folder(tmp_path, monkeypatch, env, expected):
    for name in ("LSTM_ZOO_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    chorale = Corpus(["a"], [np.array([[72, 64, 55, 48]], dtype=np.int16)])
    monkeypatch.setattr(corpus, "_parse_chorales", lambda names: chorale)  # no music21 parse
    monkeypatch.setattr(corpus, "chorale_names", lambda limit: ["a"])
    assert corpus.default_cache_dir() == Path(expected.format(tmp=tmp_path))
    assert music.load_chorales(limit=1).names == ["a"]
    assert (corpus.default_cache_dir() / "chorales-1.npz").is_file()


def test_an_unwritable_cache_warns_and_still_returns_the_corpus(tmp_path, monkeypatch, caplog):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("LSTM_ZOO_CACHE", str(tmp_path / "file" / "cache"))
    tune = Corpus(["a"], [np.array([[60, 3]], dtype=np.int16)])
    monkeypatch.setattr(corpus, "_parse_abc", lambda files: tune)
    monkeypatch.setattr(corpus, "abc_files", lambda books: [])
    with caplog.at_level(logging.WARNING, logger="pipelines.music"):
        assert music.load_melodies(limit=1) is tune
    assert "Cannot cache the corpus" in caplog.text


def test_a_folder_of_unreadable_or_absurdly_long_midi_files_is_one_clear_error(tmp_path):
    folder = tmp_path / "midi"
    mid = mido.MidiFile(ticks_per_beat=1)  # 9 million quarters in 37 bytes: a 12 GiB roll
    mid.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, time=0),
                                      mido.Message("note_off", note=60, time=9_000_000)]))
    folder.mkdir()
    mid.save(folder / "long.mid")
    (folder / "junk.mid").write_bytes(b"\x00" * 10)
    (folder / "dir.mid").mkdir()
    for music_format in ("melody", "chorales"):  # a regression fails on melody, before the roll
        with pytest.raises(ValueError, match=re.escape(f"under {folder} could be")):
            music.load_midi_folder(folder, music_format)
