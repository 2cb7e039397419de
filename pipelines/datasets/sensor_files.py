"""Readers of labelled multivariate sequences: the archive's `.ts` files and long-format CSV.

A sequence is {"id", "row", "series" (time, channels) float32, "label"}: `row` is the line of
the file it starts on (1-based), so every later error can still name it.

    .ts   the UCR/UEA archive's format: `@` header lines (`@dimensions`, `@classLabel true a b`,
          `@data`), `#` comments, then one sequence per line, channels separated by `:`,
          readings by `,`, the class label last.
    .csv  long format, one reading per row, a header naming the columns:
          `sequence_id, t, <channel>..., label`; a sequence's rows are ordered by `t`.

aeon's own `.ts` loader reads the same files, but stops at bad input without naming the file's
row and column; here every refusal is one line naming the file, the row and the value.
"""

from __future__ import annotations

import csv
import math
import os
import zlib

import numpy as np

# Fractions of each class held out by `carve`: for validation from a training file, and for
# test and validation from a single file.
VALIDATION_FRACTION = 0.15
TEST_FRACTION = 0.2


def _floats(text, where, column):
    """The readings of one channel of a .ts line; ValueError naming a bad or missing one."""
    values = text.split(",")
    if values == [""] or not text.strip():
        raise ValueError(f"{where}: channel {column} is an empty sequence")
    try:
        array = np.array(values, dtype=np.float64)
    except ValueError:
        bad = next(v for v in values if not _is_float(v))
        raise ValueError(f"{where}: channel {column}: {bad.strip()!r} is not a number") from None
    if not np.isfinite(array).all():
        index = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(
            f"{where}: channel {column}, reading {index + 1}: {values[index]!r} "
            "(NaN or infinite readings are not accepted; fill or drop them)"
        )
    return array


def _is_float(text) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, expected a .ts or .csv file") from None


def read_ts(path) -> list[dict]:
    """The sequences of an archive `.ts` file (see the module docstring)."""
    header, sequences, channels, in_data = {}, [], None, False
    for number, line in enumerate(_lines(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}: line {number}"
        if not in_data:
            if not line.startswith("@"):
                raise ValueError(f"{where}: expected a @ header line or @data, found {line[:40]!r}")
            key, _, value = line[1:].partition(" ")
            header[key.lower()] = value.strip()
            in_data = key.lower() == "data"
            if key.lower() == "timestamps" and value.strip().lower() == "true":
                raise ValueError(f"{where}: time-stamped .ts files are not supported")
            continue
        *fields, label = line.split(":")
        label = label.strip()
        if not fields:
            raise ValueError(f"{where}: no readings before the label {label!r}")
        if not label:
            raise ValueError(f"{where}: the label (after the last ':') is missing")
        series = [_floats(text, where, column) for column, text in enumerate(fields, 1)]
        channels = channels or int(header.get("dimensions") or len(series))
        if len(series) != channels:
            raise ValueError(
                f"{where}: {len(series)} channels, expected {channels} (ragged channels)"
            )
        lengths = {len(s) for s in series}
        if len(lengths) > 1:
            raise ValueError(
                f"{where}: channels of different lengths {sorted(lengths)} (ragged channels)"
            )
        sequences.append(
            {
                "id": f"{os.path.basename(path)}:{number}",
                "row": number,
                "series": np.stack(series, 1).astype(np.float32),
                "label": label,
            }
        )
    if not in_data:
        raise ValueError(f"{path}: no @data line: not a .ts file")
    if not sequences:
        raise ValueError(f"{path}: holds no sequence after @data")
    _check_labels(path, sequences, header.get("classlabel", ""))
    return sequences


def _check_labels(path, sequences, declared):
    """Refuse a label the file's `@classLabel true ...` line does not list."""
    words = declared.split()
    if not words or words[0].lower() != "true":
        return
    known = set(words[1:])
    for sequence in sequences:
        if sequence["label"] not in known:
            raise ValueError(
                f"{path}: line {sequence['row']}: label {sequence['label']!r} is "
                f"not among the @classLabel labels {' '.join(words[1:])}"
            )


def read_csv(path) -> list[dict]:
    """The sequences of a long-format CSV file (see the module docstring), in order of first
    appearance of their `sequence_id`."""
    text = _lines(path)
    rows = list(csv.reader(text))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(f"{path}: file is empty")
    columns = [c.strip() for c in rows[0]]
    if "label" not in columns:
        raise ValueError(
            f"{path}: row 1: no 'label' column in the header (columns: "
            f"{', '.join(columns)}); expected sequence_id, t, channels..., label"
        )
    if columns[:2] != ["sequence_id", "t"] or columns[-1] != "label" or len(columns) < 4:
        raise ValueError(
            f"{path}: row 1: header {', '.join(columns)}; expected sequence_id, t, "
            "at least one channel, label (in that order)"
        )
    names = columns[2:-1]
    groups: dict[str, dict] = {}
    for number, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}: row {number}"
        if len(row) != len(columns):
            raise ValueError(
                f"{where}: {len(row)} fields, the header has {len(columns)} (ragged channels)"
            )
        key, label = row[0].strip(), row[-1].strip()
        if not key:
            raise ValueError(f"{where}: column sequence_id is empty")
        if not label:
            raise ValueError(f"{where}: column label is empty")
        values = [_csv_number(cell, where, name) for cell, name in zip(row[1:-1], ["t", *names])]
        group = groups.setdefault(key, {"row": number, "label": label, "readings": []})
        if group["label"] != label:
            raise ValueError(
                f"{where}: sequence {key!r} has label {label!r} here and "
                f"{group['label']!r} on row {group['row']}"
            )
        group["readings"].append((values[0], number, values[1:]))
    if not groups:
        raise ValueError(f"{path}: holds a header but no readings (an empty sequence)")
    sequences = []
    for key, group in groups.items():
        readings = sorted(group["readings"], key=lambda r: r[0])
        for (t, _, _), (u, number, _) in zip(readings, readings[1:]):
            if t == u:
                raise ValueError(
                    f"{path}: row {number}: sequence {key!r} has two readings at t={t:g}"
                )
        sequences.append(
            {
                "id": key,
                "row": group["row"],
                "label": group["label"],
                "series": np.array([r[2] for r in readings], np.float32),
            }
        )
    return sequences


def _csv_number(cell, where, column):
    cell = cell.strip()
    if not cell:
        raise ValueError(f"{where}: column {column} is empty")
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{where}: column {column}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(
            f"{where}: column {column}: {cell!r} (NaN or infinite readings are not "
            "accepted; fill or drop them)"
        )
    return value


def read_sequences(path) -> list[dict]:
    """The sequences of a `.ts` or `.csv` file, by its suffix."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".ts":
        return read_ts(path)
    if suffix == ".csv":
        return read_csv(path)
    raise ValueError(
        f"{path}: expected a .ts or .csv file (or a folder of *_TRAIN and *_TEST ones)"
    )


def check_known_labels(path, sequences, known) -> None:
    """Refuse a sequence whose label is not in `known` (labels of the training data)."""
    for sequence in sequences:
        if sequence["label"] not in known:
            raise ValueError(
                f"{path}: row {sequence['row']}: label {sequence['label']!r} never "
                f"occurs in the training data (labels: {', '.join(sorted(known))})"
            )


def carve(sequences, fraction, salt="") -> tuple[list[dict], list[dict]]:
    """(kept, held out): of each class, round(fraction * n) sequences (at least one when the
    class has three or more) held out, chosen by a CRC32 of their ids, so the split depends
    neither on the file's order nor on chance. Both parts keep the file's order."""
    by_class: dict[str, list[int]] = {}
    for index, sequence in enumerate(sequences):
        by_class.setdefault(sequence["label"], []).append(index)
    held = set()
    for indices in by_class.values():
        count = round(fraction * len(indices))
        count = max(count, 1) if len(indices) >= 3 else 0
        ranked = sorted(
            indices, key=lambda i: (zlib.crc32(f"{salt}{sequences[i]['id']}".encode()), i)
        )
        held.update(ranked[:count])
    return (
        [s for i, s in enumerate(sequences) if i not in held],
        [s for i, s in enumerate(sequences) if i in held],
    )


def archive_splits(train, test, test_path) -> dict[str, list[dict]]:
    """The train, validation (carved from train) and test splits of an archive pair of files;
    a test label that training never saw is refused, naming `test_path` and its row."""
    check_known_labels(test_path, test, {s["label"] for s in train})
    kept, validation = carve(train, VALIDATION_FRACTION)
    return {"train": kept, "validation": validation, "test": test}


def single_file_splits(sequences) -> dict[str, list[dict]]:
    """The three splits of one file: test carved first, then validation from the rest."""
    rest, test = carve(sequences, TEST_FRACTION, salt="test:")
    kept, validation = carve(rest, VALIDATION_FRACTION)
    return {"train": kept, "validation": validation, "test": test}
