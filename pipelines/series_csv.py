"""A user's CSV of series in the long format (`unique_id, ds, y` plus covariate columns), read
with every problem named in one line: file, line, column and value.

    unique_id,ds,y,temperature
    store_1,2024-01-01,112,3.5
    store_1,2024-01-02,118,4.0
    ...

`ds` holds timestamps (any format pandas reads) or integer steps; within a series the rows are
sorted by time, evenly spaced (one pandas frequency shared by every series) and without
duplicates or gaps. `y` and every other column are numbers, none missing; the other columns
are covariates known in advance (a holiday flag, a price, a temperature forecast).
"""

from __future__ import annotations

import csv
import os

import numpy as np

REQUIRED = ("unique_id", "ds", "y")


def _where(path, line, column, value=None) -> str:
    shown = "" if value is None else f" {str(value)[:40]!r}"
    return f"{path}: line {line}, column {column}{':' if value is None else ' value' + shown}"


def _read_table(path):
    """The CSV as a pandas frame of strings; a one-line error for what is not a CSV."""
    import pandas as pd

    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: not a regular file, expected a CSV")
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8"
        )
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: file is empty") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except (pd.errors.ParserError, csv.Error) as error:
        raise ValueError(
            f"{path}: not a valid CSV ({str(error).strip().splitlines()[-1]})"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: line 1: missing column {missing[0]!r} (the long format "
            f"needs {', '.join(REQUIRED)}; found {', '.join(frame.columns)})"
        )
    if frame.empty:
        raise ValueError(f"{path}: holds a header but no rows")
    return frame


def _numbers(path, frame, column) -> np.ndarray:
    """Column `column` as float64; ValueError naming the first line that is not a number."""
    import pandas as pd

    text = frame[column].str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        value = text.iloc[bad[0]]
        what = "missing value" if value == "" else f"not a finite number: {value[:40]!r}"
        raise ValueError(f"{_where(path, bad[0] + 2, column)} {what}")
    return values


def _timestamps(path, frame):
    """`ds` as int64 steps or pandas timestamps; ValueError naming an unreadable one."""
    import pandas as pd

    text = frame["ds"].str.strip()
    if text.str.fullmatch(r"-?\d+").all():
        return text.astype(np.int64).to_numpy(), True
    stamps = pd.to_datetime(text, errors="coerce", format="mixed")
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if bad.size:
        raise ValueError(
            f"{_where(path, bad[0] + 2, 'ds')} not a timestamp: {text.iloc[bad[0]][:40]!r}"
        )
    return pd.DatetimeIndex(stamps), False


def _frequency(path, name, stamps, lines, integer) -> str:
    """The series' pandas frequency ('1' for integer steps); ValueError naming the line of the
    first unsorted, duplicate or missing step."""
    import pandas as pd

    steps = np.diff(np.asarray(stamps, dtype=np.int64))
    for kind, bad in (("duplicate", steps == 0), ("unsorted", steps < 0)):
        if bad.any():
            line = lines[np.flatnonzero(bad)[0] + 1]
            raise ValueError(
                f"{_where(path, line, 'ds')} {kind} timestamp "
                f"{str(stamps[np.flatnonzero(bad)[0] + 1])!r} in series {name!r} "
                "(rows of a series must be sorted by time, each time once)"
            )
    if integer:
        freq, expected = "1", stamps[0] + np.arange(len(stamps))
    else:
        freq = pd.infer_freq(stamps) if len(stamps) >= 3 else None
        for first in range(len(stamps) - 2) if not freq else ():  # the first regular triple
            freq = pd.infer_freq(stamps[first : first + 3])
            if freq:
                break
        if not freq:
            raise ValueError(
                f"{_where(path, lines[0], 'ds')} series {name!r}: cannot tell "
                "its frequency (fewer than 3 points, or irregular steps)"
            )
        expected = pd.date_range(stamps[0], periods=len(stamps), freq=freq)
    wrong = np.flatnonzero(np.asarray(expected) != np.asarray(stamps))
    if wrong.size:
        i = wrong[0]
        raise ValueError(
            f"{_where(path, lines[i], 'ds')} gap in series {name!r}: "
            f"{str(stamps[i])!r} follows {str(stamps[i - 1])!r}, expected "
            f"{str(expected[i])!r} (steps of {freq})"
        )
    return freq


def read_series_csv(path) -> list[dict]:
    """The series of the long-format CSV at `path` as example dicts of `zoo_series_csv` (see
    `pipelines.datasets.series`), in order of first appearance."""
    path = os.fspath(path)
    frame = _read_table(path)
    covariates = [c for c in frame.columns if c not in REQUIRED]
    values = {c: _numbers(path, frame, c) for c in ("y", *covariates)}
    stamps, integer = _timestamps(path, frame)
    ids = frame["unique_id"].str.strip()
    empty = np.flatnonzero((ids == "").to_numpy())
    if empty.size:
        raise ValueError(f"{_where(path, empty[0] + 2, 'unique_id')} missing value")
    series, freqs = [], {}  # the first series' frequency
    for name in dict.fromkeys(ids):
        rows = np.flatnonzero((ids == name).to_numpy())
        lines = rows + 2
        freq = _frequency(path, name, stamps[rows], lines, integer)
        first, first_freq = freqs.setdefault("first", (name, freq))
        if freq != first_freq:
            raise ValueError(
                f"{_where(path, lines[0], 'ds')} series {name!r} has steps of "
                f"{freq}, series {first!r} of {first_freq}: every series needs "
                "the same frequency"
            )
        start = str(stamps[rows[0]]) if integer else stamps[rows[0]].isoformat()
        series.append(
            {
                "unique_id": name,
                "start": start,
                "freq": freq,
                "y": values["y"][rows],
                "covariates": np.stack([values[c][rows] for c in covariates], -1).astype(np.float32)
                if covariates
                else np.zeros((len(rows), 0), np.float32),
                "covariate_names": "\n".join(covariates),
                "first_row": int(lines[0]),
            }
        )
    return series
