"""Piano rolls, SATB grids, melody events and MIDI files: conversions, reading, writing, plots.

A chorale is an SATB grid, int (steps, 4) of MIDI pitches per 16th note (0 = rest), soprano
first; its piano roll is the multi-hot (steps, 46) of the pitches 36..81 (the range of the JSB
Chorales benchmark). A melody is note events, int (n, 2) of (MIDI pitch or 0 for a rest,
duration index into `zoo.models.melody.DURATIONS`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from pipelines.figures import new_figure, save_png
from zoo.files import atomic_path
from zoo.models.melody import REST, EventVocabulary

log = logging.getLogger("pipelines.music")

LOWEST, HIGHEST = 36, 81  # pitch range of the piano roll (JSB Chorales)
PITCHES = HIGHEST - LOWEST + 1
STEPS_PER_QUARTER = 4  # the grid is in 16th notes
VOICES = ("Soprano", "Alto", "Tenor", "Bass")


# -- pitch helpers ----------------------------------------------------------------------------
def fold(pitches, lowest=LOWEST, highest=HIGHEST):
    """MIDI pitches moved by octaves into lowest..highest; 0 (a rest) stays 0."""
    return EventVocabulary(lowest, highest).fold(pitches)


def grid_to_roll(grid, lowest=LOWEST, highest=HIGHEST):
    """SATB grid (steps, voices) of MIDI pitches (0 = rest) -> multi-hot piano roll (steps, P)."""
    grid = np.asarray(grid)
    roll = np.zeros((len(grid), highest - lowest + 1), dtype=np.uint8)
    steps, voices = np.nonzero(grid)
    roll[steps, grid[steps, voices] - lowest] = 1
    return roll


def roll_to_grid(roll, voices=4, lowest=LOWEST):
    """Piano roll (steps, P) -> grid (steps, voices): the highest `voices` pitches, top down."""
    roll = np.asarray(roll) > 0
    pitches = np.where(roll, np.arange(roll.shape[1]) + lowest, 0)
    top = -np.sort(-pitches, axis=1)[:, :voices]
    return np.pad(top, ((0, 0), (0, voices - top.shape[1]))).astype(np.int16)


# -- MIDI -------------------------------------------------------------------------------------
def read_midi(path, max_quarters=20_000):
    """A `pretty_midi.PrettyMIDI`, or None (with a warning naming the file) if unreadable, empty
    or longer than `max_quarters` (2 h at 160 bpm: a corrupt length would fill memory)."""
    import pretty_midi

    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO would block the read
        log.warning("Skipping %s: not a regular file", path)
        return None
    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # mido and pretty_midi raise many types on corrupt files
        log.warning("Skipping unreadable MIDI file %s: %s", path, repr(error))
        return None
    if not any(inst.notes for inst in midi.instruments if not inst.is_drum):
        log.warning("Skipping MIDI file without notes: %s", path)
        return None
    if midi.time_to_tick(midi.get_end_time()) > max_quarters * midi.resolution:
        log.warning("Skipping MIDI file longer than %d quarter notes: %s", max_quarters, path)
        return None
    return midi


def _quarters(midi, seconds):
    """Times in seconds -> quarter notes (tempo-independent, from the MIDI ticks)."""
    return np.array([midi.time_to_tick(t) for t in seconds], dtype=float) / midi.resolution


def midi_to_roll(midi, steps_per_quarter=STEPS_PER_QUARTER, lowest=LOWEST, highest=HIGHEST):
    """Piano roll (steps, P) of every non-drum note, pitches folded into lowest..highest."""
    notes = [n for inst in midi.instruments if not inst.is_drum for n in inst.notes]
    starts = np.round(_quarters(midi, [n.start for n in notes]) * steps_per_quarter).astype(int)
    ends = np.round(_quarters(midi, [n.end for n in notes]) * steps_per_quarter).astype(int)
    pitches = fold([n.pitch for n in notes], lowest, highest) - lowest
    roll = np.zeros((max(ends.max(initial=0), 1), highest - lowest + 1), dtype=np.uint8)
    for start, end, pitch in zip(starts, np.maximum(ends, starts + 1), pitches):
        roll[start:end, pitch] = 1
    return roll


def _runs(line):
    """(start, end, value) of the runs of equal nonzero values in a 1-D int array."""
    change = np.flatnonzero(np.diff(line, prepend=-1, append=-1)) if len(line) else []
    return [(a, b, int(line[a])) for a, b in zip(change[:-1], change[1:]) if line[a]]


def write_midi(path, notes_per_track, tempo=90.0, program=52, names=None):
    """Write tracks of (start, end, pitch) in quarter notes as a MIDI file, atomically.

    `program` is the General MIDI instrument (52: choir aahs); one track per entry.
    """
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    seconds = 60.0 / tempo
    for i, notes in enumerate(notes_per_track):
        inst = pretty_midi.Instrument(program, name=names[i] if names else f"voice {i + 1}")
        inst.notes = [pretty_midi.Note(80, int(p), a * seconds, b * seconds) for a, b, p in notes]
        midi.instruments.append(inst)
    with atomic_path(path) as tmp:
        midi.write(tmp)
    return Path(path)


def grid_to_midi(grid, path, steps_per_quarter=STEPS_PER_QUARTER, tempo=90.0):
    """Write an SATB grid (steps, voices) as a MIDI file with one track per voice.

    A run of the same pitch in a voice is one held note (the grid cannot tell a repeated note).
    """
    grid = np.asarray(grid)
    names = list(VOICES) if grid.shape[1] == len(VOICES) else None
    tracks = [
        [(a / steps_per_quarter, b / steps_per_quarter, p) for a, b, p in _runs(voice)]
        for voice in grid.T
    ]
    return write_midi(path, tracks, tempo=tempo, names=names)


def roll_to_midi(
    roll, path, voices=4, steps_per_quarter=STEPS_PER_QUARTER, lowest=LOWEST, tempo=90.0
):
    """Write a piano roll as a MIDI file with `voices` tracks (its top `voices` notes)."""
    return grid_to_midi(roll_to_grid(roll, voices, lowest), path, steps_per_quarter, tempo)


def events_to_midi(events, path, durations=None, tempo=120.0, program=73):
    """Write melody events (n, 2) as a one-track MIDI file (program 73: flute)."""
    durations = np.asarray(durations or EventVocabulary().durations)
    events = np.asarray(events).reshape(-1, 2)
    lengths = durations[events[:, 1]]
    starts = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    notes = [(a, a + d, p) for a, d, p in zip(starts, lengths, events[:, 0]) if p != REST]
    return write_midi(path, [notes], tempo=tempo, program=program, names=["melody"])


def midi_to_events(midi, vocabulary=None):
    """Melody events of a MIDI file: the highest note at each onset, lasting until the next.

    Rests fill the gaps; lengths snap to the vocabulary's durations; pitches fold into range.
    """
    vocabulary = vocabulary or EventVocabulary()
    notes = sorted(
        (n for inst in midi.instruments if not inst.is_drum for n in inst.notes),
        key=lambda n: (n.start, -n.pitch),
    )
    starts = _quarters(midi, [n.start for n in notes])
    ends = _quarters(midi, [n.end for n in notes])
    first = np.flatnonzero(np.diff(starts, prepend=-1.0) > 1e-3)  # the top note of each onset
    starts, ends = starts[first], ends[first]
    pitches = vocabulary.fold([notes[i].pitch for i in first])
    ends = np.minimum(ends, np.append(starts[1:], np.inf))
    shortest = min(vocabulary.durations)
    events = []
    for i, (start, end, pitch) in enumerate(zip(starts, ends, pitches)):
        if i and start - ends[i - 1] >= shortest / 2:
            events.append((REST, vocabulary.duration_index(start - ends[i - 1])))
        events.append((pitch, vocabulary.duration_index(end - start)))
    return np.array(events, dtype=np.int16).reshape(-1, 2)


# -- pictures ---------------------------------------------------------------------------------
def plot_roll(
    roll, path=None, ax=None, title=None, steps_per_quarter=STEPS_PER_QUARTER, lowest=LOWEST
):
    """Draw a piano roll (steps, P), time across and pitch up, on `ax` (default: a new figure);
    save the figure as a PNG if `path`. Returns the axes."""
    roll = np.asarray(roll)
    if ax is None:
        ax = new_figure(figsize=(min(16, max(4, len(roll) / 24)), 3))[1]
    ax.imshow(
        roll.T,
        origin="lower",
        aspect="auto",
        cmap="Greys",
        interpolation="nearest",
        extent=(0, len(roll) / steps_per_quarter, lowest - 0.5, lowest + roll.shape[1] - 0.5),
    )
    ax.set(xlabel="quarter notes", ylabel="MIDI pitch")
    if title:
        ax.set_title(title)
    if path is not None:
        save_png(ax.figure, path)
    return ax
