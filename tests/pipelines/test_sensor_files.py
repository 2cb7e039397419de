"""Readers of .ts and long-format CSV sequences: what they read, and one line for bad input."""

import numpy as np
import pytest

from pipelines.datasets import sensor_files, sensors

TS_HEADER = "@problemName toy\n@univariate false\n@dimensions 2\n@classLabel true a b\n@data\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def csv_text(rows, header="sequence_id,t,x,y,label"):
    return header + "\n" + "\n".join(rows) + "\n"


def test_ts_reads_variable_length_multivariate_sequences(tmp_path):
    path = write(tmp_path, "toy.ts", "# comment\n" + TS_HEADER + "1,2,3:4,5,6:a\n7,8:9,10:b\n")
    first, second = sensor_files.read_ts(path)
    assert first["series"].shape == (3, 2) and second["series"].shape == (2, 2)
    np.testing.assert_array_equal(first["series"][:, 1], [4, 5, 6])
    assert (first["label"], first["row"], second["row"]) == ("a", 7, 8)


def test_csv_orders_readings_by_t_and_groups_by_sequence(tmp_path):
    path = write(
        tmp_path, "toy.csv", csv_text(["s1,1,3,30,a", "s2,0,5,50,b", "s1,0,1,10,a", "s1,2,4,40,a"])
    )
    first, second = sensor_files.read_csv(path)
    assert first["id"] == "s1" and first["row"] == 2
    np.testing.assert_array_equal(first["series"], [[1, 10], [3, 30], [4, 40]])
    assert second["series"].shape == (1, 2) and second["label"] == "b"


@pytest.mark.parametrize(
    "body, expected",
    [
        ("1,2:3:a\n", "line 6: channels of different lengths [1, 2] (ragged channels)"),
        ("1,2:a\n", "line 6: 1 channels, expected 2 (ragged channels)"),
        ("1,nan:3,4:a\n", "line 6: channel 1, reading 2: 'nan' (NaN"),
        ("1,?:3,4:a\n", "line 6: channel 1: '?' is not a number"),
        ("1,2:3,4:c\n", "line 6: label 'c' is not among the @classLabel labels a b"),
        (":3,4:a\n", "line 6: channel 1 is an empty sequence"),
        ("1,2:3,4:\n", "line 6: the label (after the last ':') is missing"),
    ],
)
def test_bad_ts_lines_are_one_line_naming_file_and_line(tmp_path, body, expected):
    path = write(tmp_path, "bad.ts", TS_HEADER + body)
    with pytest.raises(ValueError) as error:
        sensor_files.read_ts(path)
    assert str(error.value).startswith(f"{path}: ") and expected in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "rows, header, expected",
    [
        (["s1,0,1,a"], None, "row 2: 4 fields, the header has 5 (ragged channels)"),
        (["s1,0,1,nan,a"], None, "row 2: column y: 'nan' (NaN"),
        (["s1,0,1,,a"], None, "row 2: column y is empty"),
        (["s1,0,1,2,a", "s1,1,1,2,b"], None, "row 3: sequence 's1' has label 'b' here"),
        (["s1,0,1,2"], "sequence_id,t,x,y", "row 1: no 'label' column in the header"),
        ([], None, "holds a header but no readings (an empty sequence)"),
        (["s1,0,1,2,a", "s1,0,3,4,a"], None, "row 3: sequence 's1' has two readings at t=0"),
    ],
)
def test_bad_csv_rows_are_one_line_naming_file_and_row(tmp_path, rows, header, expected):
    path = write(tmp_path, "bad.csv", csv_text(rows, header or "sequence_id,t,x,y,label"))
    with pytest.raises(ValueError) as error:
        sensor_files.read_csv(path)
    assert str(error.value).startswith(f"{path}: ") and expected in str(error.value)


def test_an_unknown_test_label_names_the_test_file_and_row(tmp_path):
    folder = tmp_path / "pair"
    folder.mkdir()
    write(folder, "toy_TRAIN.csv", csv_text([f"s{i},0,1,2,{'ab'[i % 2]}" for i in range(6)]))
    test = write(folder, "toy_TEST.csv", csv_text(["t1,0,1,2,a", "t2,0,1,2,zebra"]))
    with pytest.raises(ValueError, match=f"^{test}: row 3: label 'zebra' never occurs"):
        sensors.local_splits(str(folder))


def test_carving_keeps_every_class_in_training_and_does_not_depend_on_order():
    sequences = [{"id": f"s{i}", "label": "ab"[i % 2], "row": i} for i in range(20)]
    kept, held = sensor_files.carve(sequences, 0.2)
    assert len(held) == 4 and {s["label"] for s in kept} == {"a", "b"}
    again = sensor_files.carve(list(reversed(sequences)), 0.2)[1]
    assert sorted(s["id"] for s in again) == sorted(s["id"] for s in held)


def test_a_single_file_is_split_three_ways_by_class(tmp_path):
    rows = [f"s{i},{t},{i},{t},{'abc'[i % 3]}" for i in range(30) for t in range(4)]
    splits = sensors.local_splits(write(tmp_path, "all.csv", csv_text(rows)))
    assert {k: len(v) for k, v in splits.items()} == {"train": 21, "validation": 3, "test": 6}
    assert all({s["label"] for s in part} == {"a", "b", "c"} for part in splits.values())
