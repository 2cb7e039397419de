"""Sentence pairs as datasets: the English-Spanish Bible verses (`zoo_en_es_verses`) and a
user's TSV file of source<TAB>target lines (`zoo_sentence_pairs`).

An example is a pair {"source", "target"} (from a file also its "line" number). Validation
and test hold HOLDOUT pairs each (a tenth each for a corpus of fewer than 10 * HOLDOUT pairs,
at least one), drawn by a permutation seeded with 0; the rest train. Each split keeps the
corpus order.

    import tensorflow_datasets as tfds
    import pipelines.datasets.translation  # defines, so registers, its builders
    tfds.load("zoo_en_es_verses", split="test")    # 1,000 held-out verse pairs
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import tensorflow_datasets as tfds

from pipelines import sword
from pipelines.datasets.base import ZooBuilder
from zoo.files import atomic_write

HOLDOUT = 1000  # pairs held out for validation, and again for test
SPLITS = ("train", "validation", "test")


def read_numbered_tsv(path, warn=True) -> list[tuple[int, str, str]]:
    """(line number, source, target) of each pair of a tab-separated UTF-8 file (columns after
    the second ignored).

    Lines without a tab, with an empty side or not in UTF-8 are skipped with one warning giving
    their count and the first one; byte-order marks are dropped. A file that cannot be read, is
    not text (a NUL byte, UTF-16) or holds no valid pair is an OSError or ValueError whose one
    line names it.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: a folder, not a TSV file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: not a regular file (a device, FIFO or socket)")
    try:
        with open(path, "rb") as f:
            pairs, bad, first, size = _parse_tsv(path, f)
    except OSError as error:
        raise type(error)(f"{path}: {(error.strerror or str(error)).lower()}") from None
    if not pairs:
        why = (
            (f"line {first[0]}: {first[1]}" if bad else "blank lines only")
            if size
            else "empty file"
        )
        raise ValueError(
            f"{path}: no valid source<TAB>target pair (UTF-8, both sides non-empty); {why}"
        )
    if bad and warn:
        warnings.warn(
            f"{path}: skipped {bad} malformed line(s) (no tab, an empty side or "
            f"invalid UTF-8); the first is line {first[0]} ({first[1]})",
            stacklevel=2,
        )
    return pairs


def read_tsv(path, warn=True) -> list[tuple[str, str]]:
    """The (source, target) pairs of a TSV file; see `read_numbered_tsv`."""
    return [(source, target) for _, source, target in read_numbered_tsv(path, warn)]


def _parse_tsv(path, lines):
    """Numbered pairs, malformed-line count, (number, reason) of the first and bytes read."""
    pairs, bad, first, size = [], 0, None, 0
    for number, raw in enumerate(lines, 1):
        size += len(raw)
        if number == 1 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise ValueError(f"{path}: UTF-16 text (byte-order mark); save it as UTF-8")
        if b"\0" in raw:
            raise ValueError(f"{path}: line {number}: NUL byte; binary data, not UTF-8 text")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            reason = f"not UTF-8 (byte {error.start + 1})"
        else:
            # Byte-order marks (U+FEFF) that editors write, also mid-file after `cat a b`.
            fields = [f.replace("\ufeff", "").strip() for f in text.rstrip("\r\n").split("\t")]
            if len(fields) >= 2 and fields[0] and fields[1]:
                pairs.append((number, fields[0], fields[1]))
                continue
            if not "".join(fields):
                continue  # a blank line
            reason = (
                "no tab" if len(fields) < 2 else "empty source" if not fields[0] else "empty target"
            )
        bad, first = bad + 1, first or (number, reason)
    return pairs, bad, first, size


def write_tsv(path, pairs):
    """Write pairs as TSV, atomically (tabs and newlines inside a side become spaces)."""
    clean = lambda s: " ".join(s.split())
    atomic_write(path, "".join(f"{clean(s)}\t{clean(t)}\n" for s, t in pairs))


def split_indices(count, holdout=HOLDOUT, seed=0) -> dict[str, np.ndarray]:
    """Sorted indices of the train, validation and test pairs among `count` (at least 3):
    `holdout` each for the last two (a tenth each when that is fewer, at least one), chosen by
    a seeded permutation."""
    holdout = max(1, min(holdout, count // 10))
    order = np.random.default_rng(seed).permutation(count)
    parts = {
        "train": order[2 * holdout :],
        "validation": order[:holdout],
        "test": order[holdout : 2 * holdout],
    }
    return {split: np.sort(index) for split, index in parts.items()}


class ZooEnEsVerses(ZooBuilder):
    """English-Spanish Bible verse pairs: the King James Version and the Reina-Valera 1909
    (Debian `sword-text-kjv` and `sword-text-sparv`, public domain) paired verse by verse;
    1,000 pairs each for validation and test, the rest (about 29k) to train."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "The verse pairs of Debian sword-text-kjv 14.3 and sword-text-sparv "
        "2.60 read by pipelines.sword; 1,000 held out each for validation "
        "and test by a permutation seeded with 0 (the split of the "
        "en_es_lstm and en_es_gru presets)."
    }
    HOMEPAGE = "https://packages.debian.org/sword-text-kjv"
    LICENSE = "Public domain"
    CITATION = (
        "@misc{kjv1769, title={The Holy Bible, King James Version (eBible.org "
        "eng-kjv2006, SWORD module KJV)}, note={Public domain}}\n"
        "@misc{rv1909, title={La Santa Biblia, Reina-Valera 1909 (eBible.org "
        "spaRV1909, SWORD module SpaRV)}, note={Public domain}}"
    )

    def features(self):
        return tfds.features.FeaturesDict(
            {
                "source": tfds.features.Text(doc="The English verse (King James Version)."),
                "target": tfds.features.Text(doc="The Spanish verse (Reina-Valera 1909)."),
            }
        )

    def _split_generators(self, dl_manager):
        pairs = sword.verse_pairs()
        return {
            split: self._generate_examples(pairs, index)
            for split, index in split_indices(len(pairs)).items()
        }

    def _generate_examples(self, pairs, index):
        for i in index:
            source, target = pairs[i]
            yield int(i), {"source": source, "target": target}


class ZooSentencePairs(ZooBuilder):
    """A user's TSV file of source<TAB>target lines (--data of the translation task), split as
    zoo_en_es_verses; malformed lines are skipped with one warning."""

    LOCAL = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Pairs of a local TSV file, split as zoo_en_es_verses."}

    def features(self):
        return tfds.features.FeaturesDict(
            {
                "source": tfds.features.Text(doc="The source sentence."),
                "target": tfds.features.Text(doc="Its translation."),
                "line": tfds.features.Scalar(np.int64, doc="The pair's line number in the file."),
            }
        )

    def _split_generators(self, dl_manager):
        rows = read_numbered_tsv(self.local_path)
        if len(rows) < len(SPLITS):
            raise ValueError(
                f"{self.local_path}: {len(rows)} valid pair(s); a corpus needs at "
                "least 3, one each for train, validation and test"
            )
        return {
            split: self._generate_examples(rows, index)
            for split, index in split_indices(len(rows)).items()
        }

    def _generate_examples(self, rows, index):
        for i in index:
            line, source, target = rows[i]
            yield line, {"source": source, "target": target, "line": line}
