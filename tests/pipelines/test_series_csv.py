"""A user's long-format CSV of series: read through `zoo_series_csv`, bad rows named in one
line (file, line, column), nothing prepared for a refused file."""

import numpy as np
import pytest

from pipelines import datasets
from pipelines.series_csv import read_series_csv

HEADER = "unique_id,ds,y,price\n"
LOCK = ".lstm-zoo-prepare.lock"  # the data layer's lock, taken before reading


def rows(name, start=0, count=30, step="D"):
    import pandas as pd

    days = pd.date_range("2024-01-01", periods=count, freq=step)
    return "".join(
        f"{name},{d.date() if step == 'D' else d.isoformat()},{10 + i % 7},{i / 10}\n"
        for i, d in enumerate(days[start:])
    )


def write(tmp_path, text, name="series.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_good_csv_becomes_series_with_held_out_ends(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    path = write(tmp_path, HEADER + rows("a") + rows("b", count=40))
    series = read_series_csv(path)
    assert [s["unique_id"] for s in series] == ["a", "b"]
    assert series[0]["freq"] == "D" and series[1]["first_row"] == 32
    assert series[0]["covariates"].shape == (30, 1)
    train = datasets.examples("zoo_series_csv", "train", path)
    test = datasets.examples("zoo_series_csv", "test", path)
    assert [len(s["y"]) for s in test] == [30, 40]
    assert [len(s["y"]) for s in train] == [24, 34]  # 3 test + 3 validation points held out
    np.testing.assert_array_equal(test[1]["y"][:34], train[1]["y"])


def test_integer_steps_are_a_frequency_of_one(tmp_path):
    text = "unique_id,ds,y\n" + "".join(f"s,{t},{t * 2}\n" for t in range(5, 20))
    (series,) = read_series_csv(write(tmp_path, text))
    assert series["freq"] == "1" and series["start"] == "5"


BAD = {
    "missing column": ("unique_id,ds,value\na,2024-01-01,1\n", "line 1: missing column 'y'"),
    "duplicate": (
        HEADER + rows("a", count=5) + "a,2024-01-05,3,1\n",
        "line 7, column ds: duplicate timestamp",
    ),
    "unsorted": (
        HEADER + "a,2024-01-02,1,0\na,2024-01-01,2,0\na,2024-01-03,2,0\n",
        "line 3, column ds: unsorted timestamp",
    ),
    "gap": (
        HEADER
        + "".join(
            line + "\n" for line in rows("a", count=10).splitlines() if "2024-01-06" not in line
        ),
        "line 7, column ds: gap in series 'a'",
    ),
    "non-numeric": (
        HEADER + rows("a", count=5).replace(",12,", ",twelve,"),
        "line 4, column y: not a finite number: 'twelve'",
    ),
    "missing value": (
        HEADER + rows("a", count=5).replace(",0.2\n", ",\n"),
        "line 4, column price: missing value",
    ),
    "bad timestamp": (
        HEADER + rows("a", count=5).replace("2024-01-03", "soon"),
        "line 4, column ds: not a timestamp: 'soon'",
    ),
    "short series": (
        HEADER + rows("a") + rows("b", count=3),
        "line 32, column unique_id: series 'b' has 3 points",
    ),
    "mixed frequencies": (
        HEADER + rows("a") + rows("b", step="h"),
        "line 32, column ds: series 'b' has steps of h",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_csv_is_one_line_naming_file_line_and_column(case, tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    text, expected = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as error:
        datasets.examples("zoo_series_csv", "train", path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message
    written = [f for f in (tmp_path / "tfds").rglob("*") if f.is_file() and f.name != LOCK]
    assert not written, "nothing is prepared from a refused file"
