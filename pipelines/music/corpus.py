"""Music corpora: Bach chorales and folk melodies parsed once, cached, with fixed splits.

Sources: the Bach chorales of the music21 corpus (Riemenschneider numbering, the S, A, T and B
parts of every chorale that has them) as SATB grids; folk tunes in ABC from the music21 corpus
(O'Neill's 1850, Ryan's Mammoth Collection, Aird's Airs), converted by Debian's `abc2midi`, as
melody events; or any folder of MIDI files (the four highest notes of each step, or the
highest note at each onset). Parsing is done once and cached as a `Corpus` (.npz) in
`default_cache_dir()`; every piece has a fixed train/validation/test split derived from its
name, saved with the data.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipelines.music.midi import (
    STEPS_PER_QUARTER,
    VOICES,
    fold,
    midi_to_events,
    midi_to_roll,
    read_midi,
    roll_to_grid,
)
from pipelines.rundir import default_cache_dir
from zoo.files import atomic_path
from zoo.models.melody import EventVocabulary

log = logging.getLogger("pipelines.music")

FOLK_BOOKS = ("oneills1850", "ryansMammoth", "airdsAirs")
SPLITS = ("train", "validation", "test")
FORMATS = ("chorales", "melody")  # what `load_midi_folder` reads a MIDI file as
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
        """The corpus cached at `path`; ValueError naming the file if its format is older."""
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
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
            # an older format, or a file cut short by a full disk or a killed process
            log.warning("Rebuilding the corpus cache %s: unreadable (%s)", path, error)
    corpus = build()
    try:
        corpus.save(path)
    except OSError as error:  # an unwritable cache costs a parse next time, not this run
        log.warning("Cannot cache the corpus at %s: %s", path, error)
    return corpus


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


def splits_of(corpus, data, split=True):
    """The corpus's pieces by split name ("train", "validation", "test", or only "all"
    without `split`); ValueError naming the data for an empty one."""
    names = SPLITS if split else ("all",)
    pieces = {name: corpus.split(name) for name in names}
    for name, chosen in pieces.items():
        if not chosen:
            raise ValueError(f"{data or 'the corpus'}: the {name} split is empty "
                             f"({len(corpus.names)} pieces); use more data (--limit)")
    return pieces
