"""Music corpora read from their sources, in a fixed order: what the music datasets hold.

The Bach chorales of the music21 corpus (Riemenschneider order, the S, A, T and B parts of
every chorale that has them) become SATB grids; the folk tunes of its ABC books (O'Neill's 1850,
Ryan's Mammoth Collection, Aird's Airs), converted by Debian's `abc2midi`, melody events; and
any folder of MIDI files either (the four highest notes of each step, or the highest note at
each onset). Each piece is a dict of its name, the position of its source file in the corpus
(`file_index`: `--limit=N` keeps the pieces of the first N files) and its arrays. The datasets
of `pipelines.datasets.music` are generated from these readers and fix the splits; the tasks
read those datasets.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
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
from zoo.models.melody import EventVocabulary

log = logging.getLogger("pipelines.music")

FOLK_BOOKS = ("oneills1850", "ryansMammoth", "airdsAirs")
SPLITS = ("train", "validation", "test")  # the splits of every music dataset
FORMATS = ("chorales", "melody")  # what `read_midi_folder` reads a MIDI file as


# -- a folder of MIDI files -------------------------------------------------------------------
def midi_files(folder) -> list[Path]:
    """The .mid/.midi files under `folder` (recursively, hidden ones left out), sorted; a
    one-line error naming the folder if it is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        if folder.exists():
            raise ValueError(f"{folder}: not a folder; --data takes a folder of MIDI files")
        raise FileNotFoundError(f"{folder}: no such folder")
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in (".mid", ".midi")
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise FileNotFoundError(f"{folder}: no .mid or .midi files in this folder")
    return files


def read_midi_folder(folder, music_format="chorales", voices=4) -> list[dict]:
    """Every readable MIDI file under `folder` as a piece {"name" (its path in the folder),
    "file_index", "grid" (steps, voices) or "events" (n, 2)}, read as `music_format`.

    An unreadable, empty or absurdly long file is skipped with a warning naming it; a folder of
    none but those is one ValueError naming the folder.
    """
    if music_format not in FORMATS:
        raise ValueError(f"Unknown music format {music_format!r}. Known: {', '.join(FORMATS)}")
    folder, files, vocabulary, pieces = Path(folder), midi_files(folder), EventVocabulary(), []
    for index, path in enumerate(files):
        midi = read_midi(path)
        if midi is None:
            continue  # read_midi warned, naming the file
        piece = {"name": str(path.relative_to(folder)), "file_index": index}
        if music_format == "chorales":
            piece["grid"] = roll_to_grid(midi_to_roll(midi), voices)
        else:
            piece["events"] = midi_to_events(midi, vocabulary)
        pieces.append(piece)
    if not pieces:
        raise ValueError(f"{folder}: none of its {len(files)} MIDI files could be read")
    if len(pieces) < len(files):
        log.warning(
            "Skipped %d of %d MIDI files under %s", len(files) - len(pieces), len(files), folder
        )
    return pieces


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


def _steps(note, steps_per_quarter):
    """The grid steps start:end a music21 note sounds (at least one)."""
    start = int(float(note.offset) * steps_per_quarter)
    end = int(round(float(note.offset + note.quarterLength) * steps_per_quarter))
    return slice(start, max(end, start + 1))


def parse_chorale(score, steps_per_quarter=STEPS_PER_QUARTER):
    """SATB grid (steps, 4) of a music21 chorale score, pitches folded into 36..81; or None."""
    parts = _satb_parts(score)
    if parts is None:
        return None
    steps = int(np.ceil(float(score.highestTime) * steps_per_quarter))
    grid = np.zeros((steps, 4), dtype=np.int16)
    for voice, part in enumerate(parts):
        for note in part.flatten().notes:
            grid[_steps(note, steps_per_quarter), voice] = max(p.midi for p in note.pitches)
    grid[grid > 0] = fold(grid[grid > 0])
    return grid


def chorale_fermatas(score, steps_per_quarter=STEPS_PER_QUARTER):
    """Bool (steps,) of a music21 chorale score: the steps under a fermata in any of its S, A, T
    and B parts (the ends of its phrases), aligned with `parse_chorale`'s grid; or None."""
    from music21 import expressions

    parts = _satb_parts(score)
    if parts is None:
        return None
    held = np.zeros(int(np.ceil(float(score.highestTime) * steps_per_quarter)), dtype=bool)
    for part in parts:
        for note in part.flatten().notes:
            if any(isinstance(e, expressions.Fermata) for e in note.expressions):
                held[_steps(note, steps_per_quarter)] = True
    return held


def chorale_numbers() -> dict[str, int]:
    """music21 corpus path -> Riemenschneider number of every Bach chorale, in that order.

    The 371 numbers name 350 distinct files (some chorales are numbered twice); each keeps its
    first number, so no chorale counts twice.
    """
    from music21 import corpus

    numbers = {}
    names = corpus.chorales.Iterator(numberingSystem="riemenschneider", returnType="filename")
    for number, name in enumerate(names, start=1):  # the iterator walks the numbers 1..371
        numbers.setdefault(name, number)
    return numbers


def chorale_names(limit=None) -> list[str]:
    """music21 corpus paths of the Bach chorales in Riemenschneider order (the first `limit`)."""
    return list(chorale_numbers())[:limit]


def read_chorales(limit=None) -> list[dict]:
    """The Bach chorales (the first `limit`) as pieces {"name", "file_index",
    "riemenschneider", "grid" (steps, 4), "fermata" (steps,)}; a chorale without soprano, alto,
    tenor and bass parts is skipped with a warning. Parsing all takes about a minute."""
    from music21 import corpus

    numbers, pieces = chorale_numbers(), []
    names = list(numbers)[:limit]
    for index, name in enumerate(tqdm(names, desc="Parsing chorales", disable=len(names) < 50)):
        score = corpus.parse(name)
        grid = parse_chorale(score)
        if grid is None:
            log.warning("Skipping chorale %s: no soprano, alto, tenor and bass parts", name)
            continue
        pieces.append(
            {
                "name": name,
                "file_index": index,
                "riemenschneider": numbers[name],
                "grid": grid,
                "fermata": chorale_fermatas(score),
            }
        )
    return pieces


# -- folk melodies (ABC via abc2midi) ---------------------------------------------------------
def abc_files(books=FOLK_BOOKS) -> list[Path]:
    """The .abc files of the named music21 corpus folders, book by book, sorted."""
    from music21 import corpus

    root = Path(corpus.__file__).parent
    files = [p for book in books for p in sorted((root / book).glob("*.abc"))]
    if not files:
        raise FileNotFoundError(f"No ABC files in the music21 corpus for books {books}")
    return files


def abc_to_midi(abc_file, out_dir) -> list[Path]:
    """Convert every tune of an ABC file with Debian's `abc2midi`; the MIDI paths, in tune order.

    abc2midi writes `<stem><X>.mid` for each tune numbered X next to its input, so the input is
    copied into `out_dir` first.
    """
    if shutil.which("abc2midi") is None:
        raise RuntimeError("`abc2midi` not found: install the Debian package `abcmidi`")
    copy = Path(out_dir) / "tunes.abc"
    shutil.copyfile(abc_file, copy)
    subprocess.run(
        ["abc2midi", copy.name, "-silent", "-NGRA", "-NGUI", "-NFNP", "-NCOM"],
        cwd=out_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    files = sorted(copy.parent.glob("tunes*.mid"), key=lambda p: int(p.stem[5:] or 0))
    copy.unlink()
    return files


def read_folk_tunes(books=FOLK_BOOKS, limit=None) -> list[dict]:
    """The folk tunes of the music21 ABC `books` (those of the first `limit` files) as pieces
    {"name" (book/file#X), "file_index", "tune" (its X: number), "events" (n, 2)}, in file and
    tune order; a tune abc2midi makes no readable MIDI of is skipped with a warning."""
    vocabulary, pieces = EventVocabulary(), []
    files = abc_files(books)[:limit]
    for index, abc_file in enumerate(
        tqdm(files, desc="Parsing folk tunes", unit="file", disable=len(files) < 50)
    ):
        with tempfile.TemporaryDirectory() as tmp:
            for midi_file in abc_to_midi(abc_file, tmp):
                midi = read_midi(midi_file)
                if midi is not None:
                    tune = midi_file.stem[5:]
                    pieces.append(
                        {
                            "name": f"{abc_file.parent.name}/{abc_file.stem}#{tune}",
                            "file_index": index,
                            "tune": int(tune or 0),
                            "events": midi_to_events(midi, vocabulary),
                        }
                    )
    return pieces


def corpus_order(pieces) -> list[dict]:
    """Pieces in the order of their corpus (by source file, then tune), whatever their split."""
    return sorted(pieces, key=lambda piece: (int(piece["file_index"]), int(piece.get("tune", 0))))
