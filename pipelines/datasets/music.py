"""Music corpora as datasets: the Bach chorales (`zoo_bach_chorales`), the folk tunes
(`zoo_folk_tunes`), and a user's folder of MIDI files read as chorales (`zoo_midi_chorales`) or
as melodies (`zoo_midi_melodies`).

An example is a piece: its name, `file_index` (the position of its source file in the corpus:
Riemenschneider order for the chorales, book and file order for the tunes, path order for a
folder; the tasks' `--limit=N` keeps the pieces of the first N files) and its notes, an SATB
grid (steps, 4) of MIDI pitches per 16th note (0 = rest) or melody events (n, 2) of (MIDI pitch
or 0 for a rest, duration index into `zoo.models.melody.DURATIONS`). Every piece's split is
fixed by a CRC32 of its name: 80% train, 10% validation, 10% test; within a split, pieces keep
their corpus order. A split no piece falls into is left out (a small folder may lack one).

    import pipelines.datasets.music, tensorflow_datasets as tfds
    tfds.load("zoo_bach_chorales", split="test")    # the 32 held-out chorales

The readers are `pipelines.music.corpus`'s (imported when a dataset is generated, not before).
"""

from __future__ import annotations

import zlib

import numpy as np
import tensorflow_datasets as tfds

from pipelines.datasets.base import ZooBuilder

SPLITS = ("train", "validation", "test")
MUSIC21 = "https://music21.org/music21docs/about/referenceCorpus.html"
MUSIC21_CITATION = """@inproceedings{cuthbert2010music21,
  title={music21: A Toolkit for Computer-Aided Musicology and Symbolic Music Data},
  author={Cuthbert, Michael Scott and Ariza, Christopher},
  booktitle={Proceedings of the 11th International Society for Music Information Retrieval
             Conference (ISMIR)}, pages={637--642}, year={2010}}"""
MUSIC21_LICENSE = (
    "The encodings of the music21 corpus (PyPI music21), distributed with music21 "
    "by permission of their encoders (music21/corpus/license.txt); the music "
    "itself is in the public domain."
)


def split_of(name: str) -> str:
    """The split of a piece from a CRC32 of its name: 80% train, 10% validation, 10% test."""
    bucket = zlib.crc32(name.encode()) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def _name_and_file(what):
    return {
        "name": tfds.features.Text(doc=f"The piece's name ({what})."),
        "file_index": tfds.features.Scalar(
            np.int32,
            doc="The position of its source file in the corpus (--limit=N keeps the first N).",
        ),
    }


def _grid():
    return tfds.features.Tensor(
        shape=(None, 4),
        dtype=np.int16,
        doc=(
            "SATB grid: the MIDI pitch (36..81, 0 = rest) of soprano, alto, tenor and bass at "
            "every 16th note."
        ),
    )


def _events():
    return tfds.features.Tensor(
        shape=(None, 2),
        dtype=np.int16,
        doc=("Melody events: (MIDI pitch, 0 = rest; index into zoo.models.melody.DURATIONS)."),
    )


class _MusicBuilder(ZooBuilder, skip_registration=True):
    def pieces(self) -> list[dict]:
        """Every piece of the corpus, in corpus order (see `pipelines.music.corpus`)."""
        raise NotImplementedError

    def _split_generators(self, dl_manager):
        pieces = self.pieces()
        chosen = {split: [p for p in pieces if split_of(p["name"]) == split] for split in SPLITS}
        # TFDS writes no empty split: a small folder may lack one (its readers see it empty)
        return {split: self._generate_examples(chosen[split]) for split in SPLITS if chosen[split]}

    def _generate_examples(self, pieces):
        for piece in pieces:
            yield piece["name"], piece


class ZooBachChorales(_MusicBuilder):
    """The 350 distinct four-part Bach chorales of the music21 corpus, in Riemenschneider
    order, as SATB grids per 16th note with their fermatas; 289 train, 29 validation and 32
    test chorales."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "The chorales of music21 10.5, split by a CRC32 of their corpus "
        "paths (the split of lstm-zoo's chorales task since its start)."
    }
    HOMEPAGE = MUSIC21
    LICENSE = MUSIC21_LICENSE
    CITATION = MUSIC21_CITATION

    def features(self):
        return tfds.features.FeaturesDict(
            {
                **_name_and_file("its music21 corpus path, e.g. bach/bwv269"),
                "riemenschneider": tfds.features.Scalar(
                    np.int32,
                    doc=("Its number in Riemenschneider's edition (the first, if numbered twice)."),
                ),
                "grid": _grid(),
                "fermata": tfds.features.Tensor(
                    shape=(None,),
                    dtype=np.bool_,
                    doc=("Whether a fermata holds at each 16th note (the phrase ends)."),
                ),
            }
        )

    def pieces(self):
        from pipelines.music.corpus import read_chorales

        return read_chorales()


class ZooFolkTunes(_MusicBuilder):
    """The folk tunes of the music21 corpus's ABC books (O'Neill's 1850, Ryan's Mammoth
    Collection, Aird's Airs), converted to MIDI by Debian's abc2midi, as melody events: the
    highest note at each onset, rests between."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "The tunes of music21 10.5 through abcmidi 4.84, split by a CRC32 of "
        "their names (the split of lstm-zoo's melody task since its start)."
    }
    HOMEPAGE = MUSIC21
    LICENSE = MUSIC21_LICENSE + " The ABC transcriptions name their transcribers in their Z: lines."
    CITATION = MUSIC21_CITATION

    def features(self):
        return tfds.features.FeaturesDict(
            {
                **_name_and_file("book/ABC file#X, e.g. oneills1850/0001-0050#1"),
                "tune": tfds.features.Scalar(np.int32, doc="Its X: number in its ABC file."),
                "events": _events(),
            }
        )

    def pieces(self):
        from pipelines.music.corpus import read_folk_tunes

        return read_folk_tunes()


class ZooMidiChorales(_MusicBuilder):
    """A user's folder of MIDI files (--data of the chorales task) as SATB grids: the four
    highest pitches sounding at each 16th note, folded into 36..81."""

    LOCAL = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The MIDI files of a local folder, split as zoo_bach_chorales."}

    def features(self):
        return tfds.features.FeaturesDict(
            {**_name_and_file("its path in the folder"), "grid": _grid()}
        )

    def pieces(self):
        from pipelines.music.corpus import read_midi_folder

        return read_midi_folder(self.local_path, "chorales")


class ZooMidiMelodies(_MusicBuilder):
    """A user's folder of MIDI files (--data of the melody task) as melody events: the highest
    note at each onset, rests between."""

    LOCAL = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The MIDI files of a local folder, split as zoo_folk_tunes."}

    def features(self):
        return tfds.features.FeaturesDict(
            {**_name_and_file("its path in the folder"), "events": _events()}
        )

    def pieces(self):
        from pipelines.music.corpus import read_midi_folder

        return read_midi_folder(self.local_path, "melody")
