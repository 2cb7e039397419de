"""Music data: Bach chorales and folk melodies as arrays, tf.data pipelines, MIDI and PNG files.

Two encodings of a piece:

- chorales: an SATB grid, int (steps, 4) of MIDI pitches per 16th note (0 = rest), soprano
  first; its piano roll is the multi-hot (steps, 46) of the pitches 36..81 (the range of the JSB
  Chorales benchmark). Source: the Bach chorales of the music21 corpus (Riemenschneider
  numbering, the S, A, T and B parts of every chorale that has them) or any folder of MIDI files
  (the four highest notes of each step).
- melody: note events, int (n, 2) of (MIDI pitch or 0 for a rest, duration index into
  `zoo.models.melody.DURATIONS`). Source: folk tunes in ABC from the music21 corpus (O'Neill's
  1850, Ryan's Mammoth Collection, Aird's Airs), converted by Debian's `abc2midi`, or any folder of
  MIDI files (the highest note at each onset).

Parsing is done once and cached as a `Corpus` (.npz) in `default_cache_dir()`; every piece has a
fixed train/validation/test split derived from its name, saved with the data.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipelines import text
from pipelines.configs import TrainConfig, option
from pipelines.rundir import default_cache_dir
from pipelines.train import Task, TaskData, bits, register_task
from zoo import decoding
from zoo.files import atomic_path
from zoo.models import melody, polyphonic
from zoo.models.melody import REST, EventVocabulary

log = logging.getLogger(__name__)

LOWEST, HIGHEST = 36, 81  # pitch range of the piano roll (JSB Chorales)
PITCHES = HIGHEST - LOWEST + 1
STEPS_PER_QUARTER = 4  # the grid is in 16th notes
VOICES = ("Soprano", "Alto", "Tenor", "Bass")
FOLK_BOOKS = ("oneills1850", "ryansMammoth", "airdsAirs")
SPLITS = ("train", "validation", "test")
_FORMAT = 2  # bump when the cached encoding changes


def split_of(name):
    """The fixed split of a piece, from a hash of its name: 80% train, 10% validation, 10% test."""
    bucket = zlib.crc32(name.encode()) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


@dataclass
class Corpus:
    """Named pieces (arrays of one encoding) with their splits; saved as one .npz file."""

    names: list
    pieces: list
    splits: list = field(default_factory=list)
    skipped: int = 0  # files that could not be read

    def __post_init__(self):
        self.splits = list(self.splits) or [split_of(name) for name in self.names]

    def split(self, name):
        """The pieces of one split ("train", "validation", "test" or "all")."""
        if name != "all" and name not in SPLITS:
            raise ValueError(f"Unknown split {name!r}. Known splits: all, {', '.join(SPLITS)}")
        return [p for p, s in zip(self.pieces, self.splits) if name in ("all", s)]

    def save(self, path):
        """Write atomically (a temporary file, then os.replace)."""
        lengths = np.array([len(p) for p in self.pieces], dtype=np.int64)
        with atomic_path(path) as tmp:
            np.savez_compressed(
                tmp, format=_FORMAT, names=np.array(self.names, dtype=str),
                splits=np.array(self.splits, dtype=str), lengths=lengths, skipped=self.skipped,
                data=np.concatenate(self.pieces) if self.pieces else np.zeros((0, 4)))

    @classmethod
    def load(cls, path):
        with np.load(path) as f:
            if int(f["format"]) != _FORMAT:
                raise ValueError(f"{path}: cache format {int(f['format'])}, expected {_FORMAT}")
            pieces = np.split(f["data"], np.cumsum(f["lengths"])[:-1]) if len(f["lengths"]) else []
            return cls(f["names"].tolist(), pieces, f["splits"].tolist(), int(f["skipped"]))


def _cached(path, build, refresh=False):
    """The corpus cached at `path`, built (and saved) by `build()` if missing."""
    if Path(path).exists() and not refresh:
        try:
            return Corpus.load(path)
        except ValueError as error:  # an older cache format: rebuild it
            log.warning("Rebuilding %s", error)
    corpus = build()
    try:
        corpus.save(path)
    except OSError as error:  # an unwritable cache costs a parse next time, not this run
        log.warning("Cannot cache the corpus at %s: %s", path, error)
    return corpus


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
    tracks = [[(a / steps_per_quarter, b / steps_per_quarter, p) for a, b, p in _runs(voice)]
              for voice in grid.T]
    return write_midi(path, tracks, tempo=tempo, names=names)


def roll_to_midi(roll, path, voices=4, steps_per_quarter=STEPS_PER_QUARTER, lowest=LOWEST,
                 tempo=90.0):
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
    notes = sorted((n for inst in midi.instruments if not inst.is_drum for n in inst.notes),
                   key=lambda n: (n.start, -n.pitch))
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


def midi_files(folder):
    """The .mid/.midi files under `folder`, sorted; a clear error if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"--data: no such folder: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    if not files:
        raise FileNotFoundError(f"--data: no .mid or .midi files under {folder}")
    return files


def load_midi_folder(folder, music_format="chorales", voices=4):
    """A Corpus of every readable MIDI file under `folder` (unreadable ones skipped and counted)."""
    folder, vocabulary, names, pieces, skipped = Path(folder), EventVocabulary(), [], [], 0
    for path in midi_files(folder):
        midi = read_midi(path)
        if midi is None:
            skipped += 1
            continue
        names.append(str(path.relative_to(folder)))
        pieces.append(roll_to_grid(midi_to_roll(midi), voices) if music_format == "chorales"
                      else midi_to_events(midi, vocabulary))
    if skipped:
        log.warning("Skipped %d of %d MIDI files under %s", skipped, skipped + len(names), folder)
    if not names:
        raise ValueError(f"--data: none of the MIDI files under {folder} could be read")
    return Corpus(names, pieces, skipped=skipped)


# -- Bach chorales (music21) ------------------------------------------------------------------
def _satb_parts(score):
    """The soprano, alto, tenor and bass parts of a chorale, or None.

    Four-part scores are taken as they are (ordered high to low); larger scores by part name
    ("Soprano 1", "Bass Continuo" match; the first match wins).
    """
    parts = list(score.parts)
    if len(parts) == 4:
        def height(part):
            return np.mean([n.pitches[0].midi for n in part.flatten().notes] or [0])

        return sorted(parts, key=height, reverse=True)
    chosen = []
    for voice in VOICES:
        match = [p for p in parts if (p.partName or p.id or "").split()[0:1] == [voice]]
        if not match:
            return None
        chosen.append(match[0])
    return chosen


def parse_chorale(score, steps_per_quarter=STEPS_PER_QUARTER):
    """SATB grid (steps, 4) of a music21 chorale score, pitches folded into 36..81; or None."""
    parts = _satb_parts(score)
    if parts is None:
        return None
    steps = int(np.ceil(float(score.highestTime) * steps_per_quarter))
    grid = np.zeros((steps, 4), dtype=np.int16)
    for voice, part in enumerate(parts):
        for note in part.flatten().notes:
            start = int(float(note.offset) * steps_per_quarter)
            end = int(round(float(note.offset + note.quarterLength) * steps_per_quarter))
            grid[start:max(end, start + 1), voice] = max(p.midi for p in note.pitches)
    grid[grid > 0] = fold(grid[grid > 0])
    return grid


def chorale_names(limit=None):
    """music21 corpus paths of the Bach chorales in Riemenschneider order (the first `limit`).

    The 371 numbers name 350 distinct files (some chorales are numbered twice); each is kept
    once, so no chorale counts twice.
    """
    from music21 import corpus

    names = corpus.chorales.Iterator(numberingSystem="riemenschneider", returnType="filename")
    return list(dict.fromkeys(names))[:limit]


def load_chorales(limit=None, cache_dir=None, refresh=False):
    """The Bach chorales as a Corpus of SATB grids, parsed once (~1 min) and then cached."""
    cache = Path(cache_dir or default_cache_dir()) / f"chorales{f'-{limit}' if limit else ''}.npz"
    return _cached(cache, lambda: _parse_chorales(chorale_names(limit)), refresh)


def _parse_chorales(names):
    from music21 import corpus

    kept, grids, skipped = [], [], 0
    for name in tqdm(names, desc="Parsing chorales", disable=len(names) < 50):
        grid = parse_chorale(corpus.parse(name))
        if grid is None:
            log.warning("Skipping chorale %s: no soprano, alto, tenor and bass parts", name)
            skipped += 1
        else:
            kept.append(name)
            grids.append(grid)
    return Corpus(kept, grids, skipped=skipped)


# -- folk melodies (ABC via abc2midi) ---------------------------------------------------------
def abc_files(books=FOLK_BOOKS):
    """The .abc files of the named music21 corpus folders."""
    from music21 import corpus

    root = Path(corpus.__file__).parent
    files = [p for book in books for p in sorted((root / book).glob("*.abc"))]
    if not files:
        raise FileNotFoundError(f"No ABC files in the music21 corpus for books {books}")
    return files


def abc_to_midi(abc_file, out_dir):
    """Convert every tune of an ABC file with Debian's `abc2midi`; the MIDI paths, in tune order.

    abc2midi writes `<stem><X>.mid` for each tune numbered X next to its input, so the input is
    copied into `out_dir` first.
    """
    if shutil.which("abc2midi") is None:
        raise RuntimeError("`abc2midi` not found: install the Debian package `abcmidi`")
    copy = Path(out_dir) / "tunes.abc"
    shutil.copyfile(abc_file, copy)
    subprocess.run(["abc2midi", copy.name, "-silent", "-NGRA", "-NGUI", "-NFNP", "-NCOM"],
                   cwd=out_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    files = sorted(copy.parent.glob("tunes*.mid"), key=lambda p: int(p.stem[5:] or 0))
    copy.unlink()
    return files


def load_melodies(books=FOLK_BOOKS, limit=None, cache_dir=None, refresh=False):
    """Folk tunes of the music21 corpus as a Corpus of melody events (the first `limit` files)."""
    key = "+".join(books) + (f"-{limit}" if limit else "")
    cache = Path(cache_dir or default_cache_dir()) / f"melodies-{key}.npz"
    return _cached(cache, lambda: _parse_abc(abc_files(books)[:limit]), refresh)


def _parse_abc(files):
    vocabulary, names, pieces, skipped = EventVocabulary(), [], [], 0
    for abc_file in tqdm(files, desc="Parsing folk tunes", unit="file", disable=len(files) < 50):
        with tempfile.TemporaryDirectory() as tmp:
            for midi_file in abc_to_midi(abc_file, tmp):
                midi = read_midi(midi_file)
                skipped += midi is None
                if midi is not None:
                    names.append(f"{abc_file.parent.name}/{abc_file.stem}#{midi_file.stem[5:]}")
                    pieces.append(midi_to_events(midi, vocabulary))
    return Corpus(names, pieces, skipped=skipped)


def transpose(events, semitones, vocabulary=None):
    """Melody events shifted by `semitones`, or None if a pitch would leave the range."""
    vocabulary = vocabulary or EventVocabulary()
    events = np.array(events, copy=True)
    sounding = events[:, 0] != REST
    events[sounding, 0] += semitones
    shifted = events[sounding, 0]
    inside = np.all((shifted >= vocabulary.lowest) & (shifted <= vocabulary.highest))
    return events if inside else None


def transposed_grids(grids, transpositions):
    """Every SATB grid shifted by each of -transpositions..transpositions semitones that keeps
    its pitches in LOWEST..HIGHEST (augmentation; shift 0 is the grid itself)."""
    shifted = []
    for grid in grids:
        sounding = grid > 0
        for shift in range(-transpositions, transpositions + 1):
            pitches = grid[sounding] + shift
            if pitches.size and (pitches.min() < LOWEST or pitches.max() > HIGHEST):
                continue
            moved = grid.copy()
            moved[sounding] = pitches
            shifted.append(moved)
    return shifted


# -- tf.data ----------------------------------------------------------------------------------
def frames(grid, steps_per_quarter=STEPS_PER_QUARTER):
    """Piano roll of a grid at a coarser resolution (a divisor of STEPS_PER_QUARTER)."""
    if STEPS_PER_QUARTER % steps_per_quarter:
        raise ValueError(f"`steps_per_quarter` must divide {STEPS_PER_QUARTER}. "
                         f"Received: steps_per_quarter={steps_per_quarter}")
    return grid_to_roll(np.asarray(grid)[:: STEPS_PER_QUARTER // steps_per_quarter])


def chorale_pairs(grid, steps_per_quarter=STEPS_PER_QUARTER):
    """(inputs, targets) of one chorale: the piano roll, and the roll shifted by a zero frame."""
    roll = frames(grid, steps_per_quarter).astype(np.float32)
    return np.concatenate([np.zeros_like(roll[:1]), roll[:-1]]), roll


def chorale_windows(grids, window, steps_per_quarter=STEPS_PER_QUARTER):
    """Arrays (n, window, P) of inputs and targets: every chorale cut into windows (truncated
    BPTT); the last window of a chorale is padded (inputs with 0, targets with -1)."""
    inputs, targets = [], []
    for grid in grids:
        x, y = chorale_pairs(grid, steps_per_quarter)
        pad = -len(x) % window
        inputs.append(np.pad(x, ((0, pad), (0, 0))).reshape(-1, window, x.shape[1]))
        targets.append(np.pad(y, ((0, pad), (0, 0)), constant_values=-1)
                       .reshape(-1, window, y.shape[1]))
    return np.concatenate(inputs).astype(np.int8), np.concatenate(targets).astype(np.int8)


def chorale_train_stream(grids, window, batch_size, seed, start_step=0,
                         steps_per_quarter=STEPS_PER_QUARTER):
    """Endless (inputs, targets) batches of shuffled chorale windows, (batch, window, P) each,
    in the order of `streams.shuffled_batches` (batch n is the same from any `start_step`)."""
    import tensorflow as tf

    from pipelines.streams import shuffled_batches

    inputs, targets = (tf.constant(a) for a in chorale_windows(grids, window, steps_per_quarter))
    if inputs.shape[0] < batch_size:
        raise ValueError(f"The chorales give {inputs.shape[0]} windows of {window} steps, fewer "
                         f"than one batch of --batch_size={batch_size}")

    def gather(batch):
        return (tf.cast(tf.gather(inputs, batch), tf.float32),
                tf.cast(tf.gather(targets, batch), tf.float32))

    return (shuffled_batches(inputs.shape[0], batch_size, seed, start_step).map(gather)
            .prefetch(tf.data.AUTOTUNE))


def chorale_dataset(grids, batch_size=16, steps_per_quarter=STEPS_PER_QUARTER):
    """Whole chorales once, in order, as padded batches (inputs padded with 0, targets with -1)."""
    import tensorflow as tf

    pairs = [chorale_pairs(grid, steps_per_quarter) for grid in grids]
    if not pairs:
        raise ValueError("No chorales to batch (an empty split?)")
    spec = tf.TensorSpec((None, PITCHES), tf.float32)
    data = tf.data.Dataset.from_generator(lambda: iter(pairs), output_signature=(spec, spec))
    batches = -(-len(pairs) // batch_size)
    return (data.padded_batch(batch_size, padding_values=(0.0, -1.0))
            .apply(tf.data.experimental.assert_cardinality(batches)).cache()
            .prefetch(tf.data.AUTOTUNE))


def melody_tokens(pieces, vocabulary=None, transpositions=0):
    """One token stream: END, tune, END, tune, ..., END; each tune also transposed by every
    shift in -transpositions..transpositions that keeps it in range (augmentation)."""
    vocabulary = vocabulary or EventVocabulary()
    stream = [np.array([vocabulary.END], dtype=np.int32)]
    for events in pieces:
        for shift in range(-transpositions, transpositions + 1):
            moved = transpose(events, shift, vocabulary)
            if moved is not None and len(moved):
                stream += [vocabulary.encode(moved), stream[0]]
    return np.concatenate(stream)


# -- pictures ---------------------------------------------------------------------------------
def plot_roll(roll, path=None, ax=None, title=None, steps_per_quarter=STEPS_PER_QUARTER,
              lowest=LOWEST):
    """Draw a piano roll (steps, P), time across and pitch up, on `ax` (default: a new figure);
    save the figure as a PNG if `path`. Returns the axes."""
    from matplotlib.figure import Figure

    roll = np.asarray(roll)
    if ax is None:
        ax = Figure(figsize=(min(16, max(4, len(roll) / 24)), 3)).subplots()
    ax.imshow(roll.T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
              extent=(0, len(roll) / steps_per_quarter, lowest - .5, lowest + roll.shape[1] - .5))
    ax.set(xlabel="quarter notes", ylabel="MIDI pitch")
    if title:
        ax.set_title(title)
    if path is not None:
        with atomic_path(path) as tmp:
            ax.figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return ax


# -- the `music` task -------------------------------------------------------------------------
FORMATS = ("chorales", "melody")


@dataclass
class MusicConfig(TrainConfig):
    """Music: polyphonic Bach chorales (piano rolls) or folk melodies (note events)."""

    task: str = option("music", "Task to train (see `lstm-zoo list`).")
    validation_steps: int | None = option(0, "Validation batches per epoch; 0 = all.")
    music_format: str = option("chorales", "chorales (piano roll, NLL per step) or melody.")
    data: str | None = option(None, "Folder of MIDI files; default the music21 corpus.")
    limit: int | None = option(None, "Parse only the first N chorales / ABC files (quick runs).")
    steps_per_quarter: int = option(4, "Chorale time steps per quarter note: 4, 2 or 1.")
    seq_len: int = option(64, "Steps (chorales) or events (melody) per training window.")
    transpositions: int = option(0, "Augmentation: also train on the training pieces "
                                 "transposed by -N..N semitones.")
    cell: str = option("lstm", "Registered cell name.")
    size: str = option("small", "Model size: a key of the model's SIZES.")
    units: int | None = option(None, "Hidden units per layer; default the size's.")
    layers: int | None = option(None, "Stacked recurrent layers; default the size's.")
    embedding_dim: int | None = option(None, "Event embedding width (melody); default size's.")
    dropout: float = option(0.0, "Dropout after every recurrent layer.")
    input_noise: float = option(0.0, "Chorales: std of Gaussian noise added to the input "
                                "frames in training.")
    time_aware: bool = option(False, "Melody: every layer also reads the time since the previous "
                              "event (quarters) as its last feature; automatic for tlstm.")


def load_corpus(config):
    """The Corpus `config` names: a MIDI folder, or the music21 chorales / folk tunes."""
    if config.music_format not in FORMATS:
        raise ValueError(f"Unknown music format. Received: --music_format="
                         f"{config.music_format!r}; expected chorales or melody")
    if config.data:
        return load_midi_folder(config.data, config.music_format)
    if config.music_format == "chorales":
        return load_chorales(config.limit)
    return load_melodies(limit=config.limit)


@register_task
class MusicTask(Task):
    """Music composition: Bach chorales (polyphonic) or folk melodies; see `MusicConfig`."""

    name, config_class = "music", MusicConfig

    def prepare(self, config, run_dir, split=True):
        corpus = load_corpus(config)
        names = ("train", "validation", "test") if split else ("all",)
        pieces = dict(zip(names, (corpus.split(n) for n in names)))
        for name, chosen in pieces.items():
            if not chosen:
                raise ValueError(f"{config.data or 'the corpus'}: the {name} split is empty "
                                 f"({len(corpus.names)} pieces); use more data (--limit)")
        batch, window = config.batch_size, config.seq_len
        if config.music_format == "chorales":
            spq = config.steps_per_quarter
            grids = transposed_grids(pieces.get("train", []), config.transpositions)
            train = (lambda step: chorale_train_stream(grids, window, batch, config.seed, step,
                                                       spq))
            evaluation = {n: chorale_dataset(p, batch, spq) for n, p in pieces.items()}
            windows = sum(-(-len(frames(g, spq)) // window) for g in grids)
        else:
            tokens = {n: melody_tokens(p) for n, p in pieces.items()}
            if split:
                tokens["train"] = melody_tokens(pieces["train"], None, config.transpositions)
            for name, ids in tokens.items():
                if len(ids) <= window:
                    raise ValueError(f"The {name} split has {len(ids)} events, fewer than one "
                                     f"window of --seq_len={window}")
            train = (lambda step: text.train_stream(tokens["train"], window, batch,
                                                    config.seed, step))
            evaluation = {n: text.eval_dataset(ids, window, batch) for n, ids in tokens.items()}
            windows = len(tokens.get("train", [])) // window
        return TaskData(
            train=train if split else None,
            validation=evaluation.get("validation"),
            test=evaluation["test" if split else "all"],
            steps_per_pass=max(1, windows // batch),
            info={"pieces": {n: len(p) for n, p in pieces.items()}, "skipped": corpus.skipped},
        )

    def build_model(self, config, data):
        sizes = {k: getattr(config, k) for k in ("units", "layers", "embedding_dim")
                 if getattr(config, k) is not None}
        if config.music_format == "melody":
            return melody.melody_model(size=config.size, cell=config.cell,
                                       dropout=config.dropout, time_aware=config.time_aware,
                                       **sizes)
        sizes.pop("embedding_dim", None)
        if config.size not in polyphonic.SIZES:
            raise KeyError(f"Unknown size {config.size!r}. Known sizes: "
                           f"{', '.join(polyphonic.SIZES)}")
        return polyphonic.PolyphonicModel(PITCHES, cell=config.cell, dropout=config.dropout,
                                          input_noise=config.input_noise,
                                          **{**polyphonic.SIZES[config.size], **sizes})

    def loss(self, config):
        if config.music_format == "melody":
            return super().loss(config)
        return polyphonic.FrameNLL()

    def metrics(self, config):
        return [] if config.music_format == "melody" else [polyphonic.NLLPerStep()]

    def headline(self, config):
        return ("nll" if config.music_format == "chorales" else "bits_per_event"), True

    def summarize(self, config, logs):
        if config.music_format == "chorales":
            return {}
        return {f"{prefix}bits_per_event": bits(logs[f"{prefix}loss"])
                for prefix in ("", "val_") if f"{prefix}loss" in logs}

    def sample(self, config, run_dir, model, prompt=None, length=None, temperature=1.0,
               top_k=None, top_p=None, seed=None, beam_size=None, output=None):
        """Write a generated piece as MIDI and piano-roll PNG; returns their paths.

        `prompt` is an optional MIDI file whose notes start the piece; `length` counts steps
        (chorales, default 16 bars) or events (melody, default 128); `beam_size` (melody)
        searches for the most likely continuation instead of sampling.
        """
        stem = Path(output or Path(run_dir) / "samples" / f"{config.music_format}-{seed or 0}")
        primer = read_midi(prompt) if prompt else None
        if prompt and primer is None:
            raise ValueError(f"--prompt: cannot read a MIDI primer from {prompt}")
        if config.music_format == "chorales":
            spq = config.steps_per_quarter
            roll = polyphonic.sample(
                model, length or 64 * spq, primer=None if primer is None else
                frames(roll_to_grid(midi_to_roll(primer)), spq)[None],
                temperature=temperature, max_voices=len(VOICES), seed=seed)[0]
            midi_path = roll_to_midi(roll, stem.with_suffix(".mid"), steps_per_quarter=spq)
        else:
            events = generate_melody(model, primer=None if primer is None else
                                     midi_to_events(primer), length=length or 128,
                                     temperature=temperature, top_k=top_k, top_p=top_p,
                                     seed=seed, beam_size=beam_size)
            midi_path = events_to_midi(events, stem.with_suffix(".mid"))
            vocabulary = EventVocabulary()
            roll = midi_to_roll(read_midi(midi_path), lowest=vocabulary.lowest,
                                highest=vocabulary.highest)
            spq = STEPS_PER_QUARTER
        png_path = stem.with_suffix(".png")
        plot_roll(roll, png_path, title=f"{config.cell}: generated {config.music_format}",
                  steps_per_quarter=spq, lowest=LOWEST if config.music_format == "chorales"
                  else EventVocabulary().lowest)
        return f"Wrote {midi_path} and {png_path}"


def generate_melody(model, primer=None, length=128, temperature=1.0, top_k=None, top_p=None,
                    seed=None, beam_size=None, vocabulary=None):
    """Melody events (n, 2) from a melody `LanguageModel`, continuing `primer` events if given.

    Samples (temperature, top-k, top-p) `length` events, or with `beam_size` finds the most
    likely continuation by beam search; stops at the end of the tune.
    """
    import tensorflow as tf

    vocabulary = vocabulary or EventVocabulary()
    start = [vocabulary.END]
    if primer is not None and len(primer):
        start += vocabulary.encode(primer).tolist()
    ids = np.array([start], dtype=np.int32)
    step = tf.function(model.step, reduce_retracing=True)
    if beam_size:
        states = model.initial_state(1)
        for t in range(ids.shape[1] - 1):
            _, states = step(ids[:, t], states)
        tokens, _ = decoding.beam_search(step, states, ids[:, -1], vocabulary.END, length,
                                         beam_size=beam_size, pad_id=vocabulary.PAD)
        tokens = np.asarray(tokens)[0]
    else:
        tokens = decoding.generate(step, model.initial_state(1), ids, length, temperature,
                                   top_k, top_p, seed)[0]
    ends = np.flatnonzero(tokens == vocabulary.END)
    tokens = tokens[: ends[0]] if len(ends) else tokens
    return np.concatenate([vocabulary.decode(start), vocabulary.decode(tokens)])
