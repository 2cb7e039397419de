"""Music: Bach chorales and folk melodies as arrays, tf.data pipelines, MIDI and PNG files.

Two tasks, each in its own module:

- `chorales` (`pipelines.music.chorales`): SATB grids of the Bach chorales as piano rolls for
  a polyphonic model; test metric NLL per time step.
- `melody` (`pipelines.music.melody`): folk tunes as (pitch, duration) events for a melody
  language model; test metric bits per event.

`pipelines.music.midi` converts between grids, rolls, events and MIDI files and draws piano
rolls; `pipelines.music.corpus` parses and caches the corpora. This package re-exports their
public names, so `from pipelines import music; music.read_midi(...)` works.
"""

from pipelines.music.chorales import (
    ChoralesConfig,
    ChoralesTask,
    chorale_dataset,
    chorale_pairs,
    chorale_train_stream,
    chorale_windows,
    frames,
    transposed_grids,
)
from pipelines.music.common import MusicConfig, MusicTask
from pipelines.music.corpus import (
    FOLK_BOOKS,
    FORMATS,
    SPLITS,
    Corpus,
    abc_files,
    abc_to_midi,
    chorale_names,
    load_chorales,
    load_melodies,
    load_midi_folder,
    midi_files,
    parse_chorale,
    split_of,
    splits_of,
)
from pipelines.music.melody import (
    MelodyConfig,
    MelodyTask,
    generate_melody,
    melody_tokens,
    transpose,
)
from pipelines.music.midi import (
    HIGHEST,
    LOWEST,
    PITCHES,
    STEPS_PER_QUARTER,
    VOICES,
    events_to_midi,
    fold,
    grid_to_midi,
    grid_to_roll,
    midi_to_events,
    midi_to_roll,
    plot_roll,
    read_midi,
    roll_to_grid,
    roll_to_midi,
    write_midi,
)

__all__ = [
    "FOLK_BOOKS", "FORMATS", "HIGHEST", "LOWEST", "PITCHES", "SPLITS", "STEPS_PER_QUARTER",
    "VOICES",
    "ChoralesConfig", "ChoralesTask", "Corpus", "MelodyConfig", "MelodyTask", "MusicConfig",
    "MusicTask", "abc_files", "abc_to_midi", "chorale_dataset", "chorale_names",
    "chorale_pairs", "chorale_train_stream", "chorale_windows", "events_to_midi", "fold",
    "frames", "generate_melody", "grid_to_midi", "grid_to_roll", "load_chorales",
    "load_melodies", "load_midi_folder", "melody_tokens", "midi_files", "midi_to_events",
    "midi_to_roll", "parse_chorale", "plot_roll", "read_midi", "roll_to_grid", "roll_to_midi",
    "split_of", "splits_of", "transpose", "transposed_grids", "write_midi",
]
