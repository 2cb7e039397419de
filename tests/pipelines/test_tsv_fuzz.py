"""The TSV reader of the sentence-pairs dataset on bad input: every problem is one line naming the
file (ValueError or OSError), fuzzed with arbitrary bytes (no TensorFlow work in the loop); and
the same lines from the translation task that reads it."""

import errno
import io
import os
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import cli
from pipelines.datasets import translation as tr

FAST = settings(max_examples=200, deadline=None, database=None)
# The bytes that matter to the reader: tabs, line ends, spaces, NUL, byte-order marks, bytes that
# are not UTF-8, Unicode line separators, and text.
PIECES = st.sampled_from(
    [
        b"\t",
        b"\n",
        b"\r\n",
        b"\r",
        b" ",
        b"\0",
        b"\xef\xbb\xbf",
        b"\xff\xfe",
        b"\xff",
        b"\xc3",
        "é".encode(),
        "\u2028".encode(),
        b"\x1c",
        b"a",
        b"hola",
        b"\t\t",
    ]
)
FIELD = st.lists(st.one_of(PIECES, st.text(max_size=6).map(str.encode)), max_size=4).map(b"".join)
LINE = st.builds(lambda source, target: source + b"\t" + target + b"\n", FIELD, FIELD)
TSV_BYTES = st.one_of(
    st.binary(max_size=300),
    st.lists(PIECES, max_size=40).map(b"".join),
    st.lists(LINE, max_size=6).map(b"".join),
)
SIDE = st.text(
    st.characters(blacklist_characters="\0\ufeff", blacklist_categories=("Cs",)), max_size=12
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("tsv")


def one_line(error_or_warning, path):
    message = str(error_or_warning)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


@FAST
@given(data=TSV_BYTES)
def test_any_bytes_give_text_pairs_or_one_line_naming_the_file(folder, data):
    path = folder / "fuzz.tsv"
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pairs = tr.read_tsv(path)
        except (ValueError, OSError) as error:
            one_line(error, path)
            return
    assert 0 < len(pairs) <= data.count(b"\n") + 1
    for pair in pairs:
        assert len(pair) == 2
        for side in pair:
            assert isinstance(side, str) and side and side == side.strip()
            assert not {"\t", "\n", "\0", "\ufeff"} & set(side)
    for warning in caught:
        assert "malformed" in one_line(warning.message, path)


@FAST
@given(pairs=st.lists(st.tuples(SIDE, SIDE), min_size=1, max_size=8))
def test_written_pairs_are_read_back(folder, pairs):
    path = folder / "pairs.tsv"
    tr.write_tsv(path, pairs)
    clean = [(" ".join(s.split()), " ".join(t.split())) for s, t in pairs]
    kept = [(s, t) for s, t in clean if s and t]
    if kept:
        assert tr.read_tsv(path, warn=False) == kept
    else:
        with pytest.raises(ValueError, match="no valid source<TAB>target pair"):
            tr.read_tsv(path)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "no valid source<TAB>target pair (UTF-8, both sides non-empty); empty file"),
        (
            b"\n \n\t\n",
            "no valid source<TAB>target pair (UTF-8, both sides non-empty); blank lines only",
        ),
        (
            b"no tab\n",
            "no valid source<TAB>target pair (UTF-8, both sides non-empty); line 1: no tab",
        ),
        (
            b"\n hola\t \n",
            "no valid source<TAB>target pair (UTF-8, both sides non-empty); line 2: empty target",
        ),
        (b"\t\tcasa\n", "line 1: empty source"),
        ("caf\xe9\tcaf\xe9\n".encode("latin-1"), "line 1: not UTF-8 (byte 4)"),
        (b"a\tb\nc\x00\td\n", "line 2: NUL byte; binary data, not UTF-8 text"),
        ("a\tb\n".encode("utf-16"), "UTF-16 text (byte-order mark); save it as UTF-8"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, data, message):
    path = tmp_path / "bad.tsv"
    path.write_bytes(data)
    with pytest.raises(ValueError) as error:
        tr.read_tsv(str(path))
    assert one_line(error.value, path).endswith(message)


def test_a_few_bad_lines_are_skipped_with_one_warning(tmp_path):
    path = tmp_path / "mixed.tsv"
    path.write_bytes(b"\xef\xbb\xbfhello\thola\nno tab\ncaf\xe9\tcaf\xe9\n")  # Latin-1 line 3
    with pytest.warns(UserWarning) as caught:
        assert tr.read_tsv(path) == [("hello", "hola")]  # the UTF-8 byte-order mark is dropped
    assert one_line(caught[0].message, path).endswith(
        "skipped 2 malformed line(s) (no tab, an empty side or invalid UTF-8); the first is "
        "line 2 (no tab)"
    )


def test_paths_that_are_not_readable_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"missing.tsv: no such file$"):
        tr.read_tsv(str(tmp_path / "missing.tsv"))
    with pytest.raises(IsADirectoryError, match=r": a folder, not a TSV file$"):
        tr.read_tsv(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match=r"fifo: not a regular file"):
        tr.read_tsv(tmp_path / "fifo")

    path = tmp_path / "locked.tsv"
    path.write_bytes(b"a\tb\n")

    def denied(name, mode="r"):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)

    monkeypatch.setattr(tr, "open", denied, raising=False)
    with pytest.raises(PermissionError) as error:
        tr.read_tsv(path)
    assert one_line(error.value, path) == f"{path}: permission denied"

    class Failing(io.BytesIO):
        def __iter__(self):
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(tr, "open", lambda name, mode="r": Failing(), raising=False)
    with pytest.raises(OSError) as error:
        tr.read_tsv(path)
    assert one_line(error.value, path) == f"{path}: input/output error"


@pytest.mark.parametrize(
    "data, message",
    [
        (
            b"no tab\n",
            "no valid source<TAB>target pair (UTF-8, both sides non-empty); line 1: no tab",
        ),
        ("a\tb\n".encode("utf-16"), "UTF-16 text (byte-order mark); save it as UTF-8"),
        (
            b"a\tb\nc\td\n",
            "2 valid pair(s); a corpus needs at least 3, one each for train, validation and test",
        ),
    ],
)
def test_the_task_reports_a_bad_file_in_one_line_and_writes_nothing(
    tmp_path, monkeypatch, capsys, data, message
):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    path = tmp_path / "bad.tsv"
    path.write_bytes(data)
    code = cli.run(
        ["train", "--task=translation", f"--data={path}", f"--run_dir={tmp_path / 'run'}"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].endswith(f"{path}: {message}"), err
    run = tmp_path / "run"
    assert not run.exists() or set(os.listdir(run)) <= {".lock"}
