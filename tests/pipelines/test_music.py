"""The music tasks: their datasets (the chorales, the folk tunes, a MIDI folder), the arrays
and MIDI files they become, training and sampling."""

import json
import logging
import os

import mido
import numpy as np
import pretty_midi
import pytest
import tensorflow_datasets as tfds

from pipelines import cli, configs, datasets, music, train
from pipelines.datasets.music import split_of
from pipelines.music import ChoralesConfig, MelodyConfig
from zoo.models import melody
from zoo.models.language_model import LanguageModel
from zoo.models.melody import EventVocabulary


@pytest.fixture(scope="session")
def chorales():
    """The first 16 chorales of `zoo_bach_chorales`, prepared once in TFDS's data directory."""
    return music.read_pieces("zoo_bach_chorales", limit=16, split=False)["all"]


@pytest.fixture(scope="session")
def melodies():
    """The tunes of the first O'Neill's file (50) of `zoo_folk_tunes`."""
    return music.read_pieces("zoo_folk_tunes", limit=1, split=False)["all"]


def grids(pieces):
    return [piece["grid"] for piece in pieces]


def test_chorales_are_satb_grids_in_range_with_their_fermatas(chorales):
    assert [c["name"] for c in chorales] == music.chorale_names(16)
    assert [c["file_index"] for c in chorales] == list(range(16))
    assert chorales[0]["name"] == "bach/bwv269" and chorales[0]["riemenschneider"] == 1
    for chorale in chorales:
        grid = chorale["grid"]
        assert grid.shape[1] == 4 and len(grid) > 32 and grid.dtype == np.int16
        sounding = grid[grid > 0]
        assert sounding.min() >= music.LOWEST and sounding.max() <= music.HIGHEST
        assert (grid[:, 0] >= grid[:, 3]).mean() > 0.95  # soprano above bass
        assert chorale["fermata"].shape == (len(grid),) and 0 < chorale["fermata"].mean() < 0.3
    from music21 import corpus  # the dataset holds what the reader makes of the score

    score = corpus.parse("bach/bwv269")
    np.testing.assert_array_equal(chorales[0]["grid"], music.parse_chorale(score))
    held = np.flatnonzero(music.chorale_fermatas(score)) / music.STEPS_PER_QUARTER
    assert set(held.astype(int).tolist()) >= {10, 19, 28, 40, 52, 61}  # its six phrase ends


def test_the_splits_are_fixed_by_the_dataset_and_a_limit_filters_it(monkeypatch):
    sizes = {
        name: split.num_examples
        for name, split in datasets.prepare("zoo_bach_chorales").info.splits.items()
    }
    assert sizes == {"train": 289, "validation": 29, "test": 32}

    def no_work(self, *args, **kwargs):
        raise AssertionError("prepared again")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_work)
    splits = music.read_pieces("zoo_bach_chorales", limit=40)  # no dataset of its own
    for name, pieces in splits.items():
        assert pieces and all(split_of(p["name"]) == name for p in pieces)
        assert all(p["file_index"] < 40 for p in pieces)
    assert sum(map(len, splits.values())) == 40
    with pytest.raises(ValueError, match="the validation split is empty.*first 3 files"):
        music.read_pieces("zoo_bach_chorales", limit=3)


def test_chorale_piano_roll_midi_round_trip(chorales, tmp_path):
    for i, grid in enumerate(grids(chorales[:4])):
        roll = music.grid_to_roll(grid)
        assert roll.shape == (len(grid), music.PITCHES)
        path = music.roll_to_midi(roll, tmp_path / f"{i}.mid")
        midi = pretty_midi.PrettyMIDI(str(path))
        assert [inst.name for inst in midi.instruments] == list(music.VOICES)
        back = music.midi_to_roll(midi)
        end = roll.any(1).nonzero()[0].max() + 1  # trailing rests leave no trace in MIDI
        np.testing.assert_array_equal(back, roll[:end])


def test_chorale_windows_shift_inputs_and_pad_targets(chorales):
    first3 = grids(chorales[:3])
    x, y = music.chorale_windows(first3, window=40)
    steps = sum(len(g) for g in first3)
    assert x.shape == y.shape and x.shape[1:] == (40, music.PITCHES)
    assert (y[:, :, 0] >= 0).sum() == steps  # every step once, the rest is padding (-1)
    first = music.grid_to_roll(first3[0])
    np.testing.assert_array_equal(y[0], first[:40])
    np.testing.assert_array_equal(x[0, 1:], first[:39])
    assert not x[0, 0].any()
    coarse = music.frames(first3[0], steps_per_quarter=1)
    np.testing.assert_array_equal(coarse, first[::4])
    with pytest.raises(ValueError, match="steps_per_quarter=3"):
        music.frames(first3[0], steps_per_quarter=3)


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
    stream = music.chorale_train_stream(grids(chorales), 32, batch_size=4, seed=5)
    batches = [x.numpy() for x, _ in stream.take(6)]
    resumed = music.chorale_train_stream(grids(chorales), 32, batch_size=4, seed=5, start_step=4)
    np.testing.assert_array_equal(next(iter(resumed))[0].numpy(), batches[4])


def test_folk_tunes_become_events_that_round_trip_through_midi(melodies, tmp_path):
    vocabulary = EventVocabulary()
    assert len(melodies) == 50 and melodies[0]["name"] == "oneills1850/0001-0050#1"
    assert [tune["tune"] for tune in melodies] == list(range(1, 51))
    tunes = [tune["events"] for tune in melodies]
    first = tunes[0]
    assert first[0].tolist() == [67, vocabulary.duration_index(0.75)]  # "G3-A" at L:1/16
    for events in tunes[:5]:
        vocabulary.encode(events)  # in range
        path = music.events_to_midi(events, tmp_path / "tune.mid")
        np.testing.assert_array_equal(music.midi_to_events(music.read_midi(path)), events)
    tokens = music.melody_tokens(tunes[:2], transpositions=1)
    plain = music.melody_tokens(tunes[:2])
    assert tokens[0] == vocabulary.END and len(tokens) == 3 * len(plain) - 2
    assert music.transpose(np.array([[96, 0]]), 1) is None


def _write_tune(path, pitches):
    music.write_midi(path, [[(i, i + 1, p) for i, p in enumerate(pitches)]])


@pytest.fixture
def tfds_dir(tmp_path, monkeypatch):
    """A TFDS data directory of the test's own for the datasets of its MIDI folders."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    return tmp_path / "tfds"


def _prepared_files(tfds_dir):
    return [f for _, _, files in os.walk(tfds_dir) for f in files if not f.endswith(".lock")]


def test_a_midi_folder_is_a_local_dataset_that_skips_bad_files_naming_them(
    tmp_path, tfds_dir, caplog
):
    folder = tmp_path / "midi"
    for i in range(12):
        _write_tune(folder / f"tune{i:02d}.mid", [60 + i, 62, 64, 65, 67])
    _write_tune(folder / "sub" / "b.MIDI", [72, 71, 69])
    _write_tune(folder / ".hidden" / "c.mid", [50])  # hidden: left out, as by the fingerprint
    (folder / "corrupt.mid").write_bytes(b"MThd\x00\x00garbage")
    music.write_midi(folder / "empty.mid", [[]])
    with caplog.at_level(logging.WARNING, logger="pipelines.music"):
        tunes = music.read_pieces("zoo_midi_melodies", folder, split=False)["all"]
    warnings = [r.getMessage() for r in caplog.records]
    assert any(str(folder / "corrupt.mid") in w for w in warnings)
    assert any(str(folder / "empty.mid") in w for w in warnings)
    assert not any("\n" in w for w in warnings)
    names = [t["name"] for t in tunes]
    assert names == ["sub/b.MIDI"] + [f"tune{i:02d}.mid" for i in range(12)]
    assert [t["file_index"] for t in tunes] == list(range(2, 15))  # after corrupt and empty
    assert tunes[1]["events"][:, 0].tolist() == [60, 62, 64, 65, 67]
    prepared = datasets.prepare("zoo_midi_melodies", folder)
    assert prepared.data_dir.startswith(str(tfds_dir))
    assert set(prepared.info.splits) == {split_of(name) for name in names}
    for split in prepared.info.splits:
        assert {row["name"] for row in datasets.examples("zoo_midi_melodies", split, folder)} == {
            name for name in names if split_of(name) == split
        }
    chorales = music.read_pieces("zoo_midi_chorales", folder, split=False)["all"]
    assert chorales[0]["grid"].shape == (12, 4) and chorales[0]["grid"][0].tolist() == [72, 0, 0, 0]
    config = ChoralesConfig(data=str(folder))
    assert music.ChoralesTask().dataset(config) == "zoo_midi_chorales"
    assert music.MelodyTask().dataset(MelodyConfig()) == "zoo_folk_tunes"
    assert (
        music.read_pieces("zoo_midi_chorales", folder, limit=5, split=False)["all"][-1]["name"]
        == "tune01.mid"
    )


def test_a_folder_too_small_to_split_is_refused_naming_it_yet_scores_whole(
    tmp_path, tfds_dir, capsys
):
    folder = tmp_path / "two"
    _write_tune(folder / "a.mid", [60, 62, 64, 65, 67])
    _write_tune(folder / "b.mid", [72, 71, 69])
    run_dir = tmp_path / "run"
    assert cli.run(["train", "--task=melody", f"--data={folder}", f"--run_dir={run_dir}"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    missing = ({"train", "validation", "test"} - {split_of("a.mid"), split_of("b.mid")}).pop()
    assert error == (
        f"lstm-zoo: error: {folder}: the {missing} split is empty (2 pieces); use "
        "more data (or a larger --limit)"
    )
    assert len(music.read_pieces("zoo_midi_chorales", folder, split=False)["all"]) == 2


def _absurdly_long(path):
    mid = mido.MidiFile(ticks_per_beat=1)  # 9 million quarters in 37 bytes: a 12 GiB roll
    mid.tracks.append(
        mido.MidiTrack(
            [
                mido.Message("note_on", note=60, time=0),
                mido.Message("note_off", note=60, time=9_000_000),
            ]
        )
    )
    mid.save(path)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: None, "{d}: no such file or folder"),
        (lambda d: d.mkdir(), "{d}: no .mid or .midi files in this folder"),
        (lambda d: d.write_text("MThd"), "{d}: not a folder; --data takes a folder of MIDI files"),
        (
            lambda d: (
                d.mkdir(),
                (d / "junk.mid").write_bytes(b"\x00" * 10),
                (d / "dir.mid").mkdir(),
                os.mkfifo(d / "fifo.mid"),
                _absurdly_long(d / "long.mid"),
            ),
            "{d}: none of its 4 MIDI files could be read",
        ),
    ],
)
@pytest.mark.parametrize("dataset", ["zoo_midi_chorales", "zoo_midi_melodies"])
def test_a_bad_midi_folder_is_one_line_naming_it_and_nothing_is_prepared(
    tmp_path, tfds_dir, dataset, make, message
):
    folder = tmp_path / "data"
    make(folder)
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        music.read_pieces(dataset, folder)
    assert str(error.value) == message.format(d=folder)
    assert not _prepared_files(tfds_dir)


def test_piano_roll_png(chorales, tmp_path):
    path = tmp_path / "roll.png"
    music.plot_roll(music.grid_to_roll(chorales[0]["grid"]), path, title="BWV 269")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_train_and_sample_chorales_with_four_voices(chorales, tmp_path):
    config = ChoralesConfig(
        run_dir=str(tmp_path / "run"),
        limit=16,
        size="tiny",
        seq_len=32,
        batch_size=4,
        epochs=2,
        steps=8,
        learning_rate=0.02,
        cell="cifg_lstm",
    )
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
    config = MelodyConfig(
        run_dir=str(tmp_path / "run"),
        limit=1,
        size="tiny",
        seq_len=32,
        batch_size=8,
        epochs=1,
        steps=4,
        transpositions=1,
    )
    train.train(config, verbose=0)
    primer = tmp_path / "primer.mid"
    music.events_to_midi(melodies[0]["events"][:4], primer)
    for options in ({"top_k": 5, "seed": 1}, {"beam_size": 2}):
        out = tmp_path / "tune"
        train.sample(config.run_dir, prompt=str(primer), length=12, output=str(out), **options)
        events = music.midi_to_events(music.read_midi(out.with_suffix(".mid")))
        assert len(music.read_midi(out.with_suffix(".mid")).instruments) == 1
        np.testing.assert_array_equal(events[:4], melodies[0]["events"][:4])


def test_tlstm_melodies_read_the_time_between_events(melodies):
    task, config = music.MelodyTask(), MelodyConfig(cell="gru", size="tiny")
    assert type(task.build_model(config, None)) is LanguageModel
    config.time_aware = True
    assert isinstance(task.build_model(config, None), melody.TimeAwareMelodyModel)
    config.cell, config.time_aware = "tlstm", False
    model = task.build_model(config, None)
    assert isinstance(model, melody.TimeAwareMelodyModel)
    primer = melodies[0]["events"][:3]
    for options in ({"seed": 1}, {"beam_size": 2}):  # Δt travels in the decoders' states
        events = music.generate_melody(model, primer=primer, length=4, **options)
        np.testing.assert_array_equal(events[:3], primer)


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(KeyError, match="--task=chorales or --task=melody"):
        train.get_task("music")
    with pytest.raises(ValueError, match="Unknown music format 'midi'"):
        music.read_midi_folder(tmp_path, "midi")


@pytest.mark.parametrize(
    "music_format, kept, dropped",
    [("chorales", "steps_per_quarter", "time_aware"), ("melody", "time_aware", "input_noise")],
)
def test_runs_of_the_former_music_task_load_as_chorales_or_melody(
    tmp_path, music_format, kept, dropped
):
    saved = {
        "config": "MusicConfig",
        "task": "music",
        "music_format": music_format,
        "steps_per_quarter": 1,
        "input_noise": 0.1,
        "embedding_dim": None,
        "time_aware": False,
        "cell": "gru",
        "size": "tiny",
    }
    (tmp_path / "config.json").write_text(json.dumps(saved))
    config = train.load_config(tmp_path)
    assert config.task == music_format and type(config).__name__.lower().startswith(
        music_format[:5]
    )
    assert hasattr(config, kept) and not hasattr(config, dropped)
    assert configs.migrated(saved)["task"] == music_format
