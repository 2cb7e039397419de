"""Property-based fuzzing of the corpus readers: any bytes give documents, pieces or one clear
error naming the file or folder, never another exception type (no TensorFlow in the loop)."""

import io
import shutil
import tempfile
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import music, text

FAST = settings(max_examples=100, deadline=None, database=None)


def _tune():
    """The bytes of a small valid two-track MIDI file (the seed of the mutations)."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=100)
    for program, notes in ((0, [(0, 0.5, 60), (0.5, 1.5, 64), (2, 3, 67)]), (32, [(0, 3, 43)])):
        inst = pretty_midi.Instrument(program)
        inst.notes = [pretty_midi.Note(90, p, a, b) for a, b, p in notes]
        midi.instruments.append(inst)
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


TUNE = _tune()


def _mutate(edits, length):
    data = bytearray(TUNE[:length])
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data)


def _midi(ticks_per_beat, messages):
    """A well-formed MIDI file of arbitrary notes and timing (overlaps, empty, absurdly long)."""
    track = mido.MidiTrack(
        mido.Message(
            "note_on" if on else "note_off",
            channel=channel,
            note=note,
            velocity=velocity,
            time=delta,
        )
        for on, channel, note, velocity, delta in messages
    )
    buffer = io.BytesIO()
    mido.MidiFile(ticks_per_beat=ticks_per_beat, tracks=[track]).save(file=buffer)
    return buffer.getvalue()


MIDI_BYTES = st.one_of(
    st.binary(max_size=256),
    st.binary(max_size=64).map(lambda tail: b"MThd" + tail),
    st.builds(
        _mutate,
        st.lists(st.tuples(st.integers(0, len(TUNE)), st.integers(0, 255)), max_size=6),
        st.integers(1, len(TUNE)),
    ),
    st.builds(
        _midi,
        st.integers(1, 960),
        st.lists(
            st.tuples(
                st.booleans(),
                st.integers(0, 15),
                st.integers(0, 127),
                st.integers(0, 127),
                st.integers(0, 2**16),
            ),
            max_size=12,
        ),
    ),
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _one_line_naming(error, path):
    message = str(error)
    assert "\n" not in message and str(path) in message, message


@FAST
@given(raw=st.one_of(st.binary(max_size=512), st.text(max_size=200).map(str.encode)))
def test_any_bytes_as_a_text_file_give_a_document_or_one_clear_error(scratch, raw):
    path = scratch / "doc.txt"
    path.write_bytes(raw)
    try:
        documents = text.load_documents(str(path))
    except (ValueError, OSError) as error:
        _one_line_naming(error, path)
    else:
        assert list(documents) == ["doc.txt"] and isinstance(documents["doc.txt"], str)
        assert documents["doc.txt"].strip() or raw.strip()


@FAST
@given(
    files=st.lists(MIDI_BYTES, min_size=1, max_size=3), music_format=st.sampled_from(music.FORMATS)
)
def test_any_bytes_as_midi_files_give_a_corpus_or_one_clear_error(scratch, files, music_format):
    folder = Path(tempfile.mkdtemp(dir=scratch))
    try:
        for i, raw in enumerate(files):
            (folder / f"{i}.mid").write_bytes(raw)
        try:
            pieces = music.read_midi_folder(folder, music_format)
        except ValueError as error:
            _one_line_naming(error, folder)
            return
        assert {p["name"] for p in pieces} <= {f"{i}.mid" for i in range(len(files))}
        width, feature = (4, "grid") if music_format == "chorales" else (2, "events")
        for piece in pieces:
            notes = piece[feature]
            assert (
                notes.ndim == 2
                and notes.shape[1] == width
                and np.issubdtype(notes.dtype, np.integer)
            )
    finally:
        shutil.rmtree(folder)


def test_the_seed_tune_is_readable():
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "tune.mid").write_bytes(TUNE)
        pieces = music.read_midi_folder(folder, "melody")
    assert len(pieces) == 1 and pieces[0]["events"][:, 0].tolist() == [60, 64, 0, 67]
