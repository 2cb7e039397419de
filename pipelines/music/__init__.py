"""Music: Bach chorales and folk melodies as arrays, tf.data pipelines, MIDI and PNG files.

Two tasks, each in its own module:

- `chorales` (`pipelines.music.chorales`): SATB grids of the Bach chorales as piano rolls for
  a polyphonic model; test metric NLL per time step.
- `melody` (`pipelines.music.melody`): folk tunes as (pitch, duration) events for a melody
  language model; test metric bits per event.

`pipelines.music.midi` converts between grids, rolls, events and MIDI files and draws piano
rolls; `pipelines.music.corpus` reads the corpora, from which the datasets of
`pipelines.datasets.music` are generated (`zoo_bach_chorales`, `zoo_folk_tunes`, and a MIDI
folder's `zoo_midi_chorales` or `zoo_midi_melodies`); the tasks read those datasets
(`read_pieces`). `pipelines.music.voice_leading` counts the rules a harmony textbook checks
(parallel fifths and octaves, crossings, ranges, chord kinds, cadences) and
`pipelines.music.rule_check` prints them for a harmony model beside Bach's held-out chorales.
This package re-exports their public names, so
`from pipelines import music; music.read_midi(...)` works.
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
from pipelines.music.common import MusicConfig, MusicTask, read_pieces
from pipelines.music.corpus import (
    FOLK_BOOKS,
    FORMATS,
    SPLITS,
    abc_files,
    abc_to_midi,
    chorale_fermatas,
    chorale_names,
    chorale_numbers,
    corpus_order,
    midi_files,
    parse_chorale,
    read_chorales,
    read_folk_tunes,
    read_midi_folder,
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
    "FOLK_BOOKS",
    "FORMATS",
    "HIGHEST",
    "LOWEST",
    "PITCHES",
    "SPLITS",
    "STEPS_PER_QUARTER",
    "VOICES",
    "ChoralesConfig",
    "ChoralesTask",
    "MelodyConfig",
    "MelodyTask",
    "MusicConfig",
    "MusicTask",
    "abc_files",
    "abc_to_midi",
    "chorale_dataset",
    "chorale_fermatas",
    "chorale_names",
    "chorale_numbers",
    "chorale_pairs",
    "chorale_train_stream",
    "chorale_windows",
    "corpus_order",
    "events_to_midi",
    "fold",
    "frames",
    "generate_melody",
    "grid_to_midi",
    "grid_to_roll",
    "melody_tokens",
    "midi_files",
    "midi_to_events",
    "midi_to_roll",
    "parse_chorale",
    "plot_roll",
    "read_chorales",
    "read_folk_tunes",
    "read_midi",
    "read_midi_folder",
    "read_pieces",
    "roll_to_grid",
    "roll_to_midi",
    "transpose",
    "transposed_grids",
    "write_midi",
]
