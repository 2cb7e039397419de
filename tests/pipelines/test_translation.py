"""Translation pipeline: the pairs datasets and their split, subwords, bucketed batches, the
task end to end, translating files of sentences, BLEU with its signature."""

import io
import json
import logging
import os
import sys

import numpy as np
import pytest

from pipelines import cli, datasets, train
from pipelines import translation as tr
from pipelines.datasets import translation as pairs_data
from pipelines.text import TextConfig
from pipelines.translate import translate_lines

NUMBERS = {"one": "uno", "two": "dos", "three": "tres", "four": "cuatro", "five": "cinco"}
THINGS = {"house": "casa", "dog": "perro", "book": "libro", "tree": "árbol"}
COLOURS = {"red": "rojo", "green": "verde", "black": "negro"}
PAIRS = [
    (f"I see {n} {c} {t}s .", f"veo {ns} {ts}s {cs}s .")
    for n, ns in NUMBERS.items()
    for t, ts in THINGS.items()
    for c, cs in COLOURS.items()
]


BLEU_SIGNATURE = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:"
CHRF_SIGNATURE = "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A translation run trained from the command line in seconds (tiny GRU, 20 steps)."""
    folder = tmp_path_factory.mktemp("translation")
    tr.write_tsv(folder / "pairs.tsv", PAIRS)
    assert (
        cli.run(
            [
                "train",
                "--task=translation",
                f"--data={folder / 'pairs.tsv'}",
                f"--run_dir={folder / 'run'}",
                "--size=tiny",
                "--vocab_size=60",
                "--batch_size=8",
                "--epochs=2",
                "--steps=10",
                "--learning_rate=0.02",
                "--dropout=0",
                "--cell=gru",
                "--attention=bahdanau",
                "--beam_size=2",
                "--validation_steps=0",
                "--bleu_sentences=4",
                "--max_len=40",
            ]
        )
        == 0
    )
    return folder / "run"


def test_tsv_reader_skips_malformed_lines_with_one_warning(tmp_path):
    path = tmp_path / "mixed.tsv"
    path.write_bytes(
        b"hello\thola\n\nno tab here\n\tsolo\nbad \xff byte\tmalo\n"
        b"thanks\tgracias\tCC-BY attribution\r\n"
    )
    with pytest.warns(UserWarning, match=r"skipped 3 malformed line\(s\).*first is line 3"):
        pairs = tr.read_tsv(path)
    assert pairs == [("hello", "hola"), ("thanks", "gracias")]
    (tmp_path / "bad.tsv").write_bytes(b"no tab\n\xff\xfe\t\n")
    with pytest.raises(ValueError, match=r"bad.tsv: no valid source<TAB>target pair"):
        tr.read_tsv(tmp_path / "bad.tsv")
    with pytest.raises(FileNotFoundError, match="missing.tsv: no such file"):
        tr.read_tsv(tmp_path / "missing.tsv")


def test_split_is_fixed_by_the_dataset_and_disjoint(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    tr.write_tsv(tmp_path / "pairs.tsv", PAIRS)
    splits = tr.pair_splits("zoo_sentence_pairs", tmp_path / "pairs.tsv")
    assert {k: len(v) for k, v in splits.items()} == {"train": 48, "validation": 6, "test": 6}
    assert sorted(sum(splits.values(), [])) == sorted(PAIRS)
    index = pairs_data.split_indices(len(PAIRS))  # seed 0, a tenth each: 6 < HOLDOUT
    assert splits == {k: [PAIRS[i] for i in v] for k, v in index.items()}
    whole = tr.pair_splits("zoo_sentence_pairs", tmp_path / "pairs.tsv", split=False)
    assert whole == {"test": PAIRS}  # the whole file, in line order
    rows = datasets.examples("zoo_sentence_pairs", "test", tmp_path / "pairs.tsv")
    assert [PAIRS[row["line"] - 1] for row in rows] == splits["test"]


def test_a_small_file_holds_out_one_pair_each_and_two_pairs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    tr.write_tsv(tmp_path / "five.tsv", PAIRS[:5])
    splits = tr.pair_splits("zoo_sentence_pairs", tmp_path / "five.tsv")
    assert {k: len(v) for k, v in splits.items()} == {"train": 3, "validation": 1, "test": 1}
    tr.write_tsv(tmp_path / "two.tsv", PAIRS[:2])
    with pytest.raises(ValueError, match=r"two.tsv: 2 valid pair\(s\); a corpus needs at least 3"):
        tr.pair_splits("zoo_sentence_pairs", tmp_path / "two.tsv")


def test_a_run_of_an_earlier_split_is_refused_unless_it_is_the_datasets(tmp_path):
    """Earlier runs held their own split (test.tsv), drawn with the run's --seed and --holdout:
    scoring them on the dataset's test split could score pairs they trained on."""
    test = [("In  the beginning.", "En el principio.")]
    tr.check_earlier_split(tmp_path, test)  # a run of today: no split files
    tr.write_tsv(tmp_path / "test.tsv", test)
    tr.check_earlier_split(tmp_path, test)  # the same pairs (written with spaces squeezed)
    tr.write_tsv(tmp_path / "test.tsv", PAIRS[:3])
    with pytest.raises(
        ValueError,
        match=r"test.tsv: the run was split by an earlier lstm-zoo.*"
        r"lstm-zoo evaluate --run_dir=.* --data=.*test.tsv",
    ):
        tr.check_earlier_split(tmp_path, test)


def test_a_saved_config_with_holdout_loads_without_it(tmp_path):
    """`holdout` is the dataset's now: configs saved with it still load."""
    saved = json.loads(tr.TranslationConfig(run_dir=str(tmp_path)).to_json())
    saved["holdout"] = 1000
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert train.load_config(tmp_path) == tr.TranslationConfig(run_dir=str(tmp_path))


def test_subwords_round_trip(tmp_path):
    subwords = tr.Subwords.train([s for s, _ in PAIRS] + [t for _, t in PAIRS], vocab_size=60)
    assert len(subwords) <= 60
    texts = ["I see five green trees .", "veo dos árboles negros ."]
    ids = subwords.encode(texts)
    assert min(min(row) for row in ids) > tr.EOS  # 0-3 are pad, unk, bos, eos
    padded = np.zeros((2, 20), int)
    for row, seq in zip(padded, ids):
        row[: len(seq)] = seq
        row[len(seq)] = tr.EOS
        row[len(seq) + 1] = 7  # ignored after the end
    assert subwords.decode(padded) == texts
    subwords.save(tmp_path / "sp.model")
    assert tr.Subwords.load(tmp_path / "sp.model").encode(texts) == ids


def test_bucketed_batches_and_exact_resume():
    subwords = tr.Subwords.train([s for s, _ in PAIRS] + [t for _, t in PAIRS], vocab_size=60)
    sources, targets = tr.encode_pairs(subwords, PAIRS, max_len=40)
    assert len(sources) == len(PAIRS) and all(s[-1] == tr.EOS for s in sources)
    stream = list(tr.train_stream(sources, targets, 8, 40, seed=1).take(9))
    resumed = list(tr.train_stream(sources, targets, 8, 40, seed=1, start_step=5).take(4))
    for (a_in, a_out), (b_in, b_out) in zip(stream[5:], resumed):
        np.testing.assert_array_equal(a_out, b_out)
        np.testing.assert_array_equal(a_in[0], b_in[0])
    (source, target_in), target_out = stream[0]
    assert source.shape[0] == 8 and target_in.shape == target_out.shape
    target_in, target_out = np.asarray(target_in), np.asarray(target_out)
    assert np.all(target_in[:, 0] == tr.BOS)
    words = target_out[:, :-1] > tr.EOS  # target_in is target_out shifted right by one
    np.testing.assert_array_equal(target_in[:, 1:][words], target_out[:, :-1][words])
    assert np.all((target_out == tr.EOS).sum(1) == 1)
    seen = sum(b[1].shape[0] for b in tr.eval_dataset(sources, targets, 8, 40))
    assert seen == len(PAIRS)


def test_bleu_and_chrf_with_their_signatures():
    references = ["veo dos casas rojas .", "veo un perro ."]
    scores = tr.score(references, references)
    assert {k: scores[k] for k in ("bleu", "chrf")} == pytest.approx({"bleu": 100.0, "chrf": 100.0})
    assert scores["bleu_signature"].startswith(BLEU_SIGNATURE)
    assert scores["chrf_signature"].startswith(CHRF_SIGNATURE)
    assert tr.score(["nada", "nada"], references)["bleu"] < 10
    with pytest.raises(ValueError, match="1 hypotheses for 2 references"):
        tr.score(["nada"], references)


def reversed_words(model, subwords, texts, **options):
    """A stand-in for `tr.translate`: each text's words in reverse order."""
    return [" ".join(t.split()[::-1]) for t in texts]


@pytest.mark.slow
def test_translate_lines_keeps_order_and_blank_lines_and_streams(run, monkeypatch):
    monkeypatch.setattr(tr, "translate", reversed_words)
    lines = ["a b\n", "\n", "c d e\r\n", "  \t ", "f", "g h", "i"]
    expected = ["b a", "", "e d c", "", "f", "h g", "i"]
    for batch_size in (1, 2, 3, 64):
        assert list(translate_lines(run, lines, batch_size=batch_size)) == expected
    assert list(translate_lines(run, [])) == []
    read = []
    stream = translate_lines(run, (read.append(line) or line for line in lines), batch_size=2)
    assert read == []  # the run is loaded first; nothing is read yet
    assert next(stream) == "b a" and len(read) == 2
    assert list(stream) == expected[1:] and len(read) == len(lines)


@pytest.mark.slow
def test_translate_lines_equals_translate_in_any_batch_size(run, caplog):
    config = train.load_config(run)
    model, subwords = train.load_checkpoint(run), tr.Subwords.load(run / tr.TOKENIZER)
    sources = [s for s, _ in PAIRS[::9]]
    expected = tr.translate(
        model, subwords, sources, beam_size=1, max_length=2 * config.max_len + 10
    )
    lines = [sources[0], "", *sources[1:]]
    out = list(translate_lines(run, lines, batch_size=3, beam_size=1))
    assert out == [expected[0], "", *expected[1:]]
    assert list(translate_lines(run, lines, batch_size=1, beam_size=1)) == out
    assert len(list(translate_lines(run, sources[:2], beam_size=2))) == 2

    long = " ".join([sources[0]] * 8)
    assert len(subwords.encode([long])[0]) >= config.max_len
    with caplog.at_level(logging.WARNING, logger="pipelines.translate"):
        out = list(translate_lines(run, [sources[1], long], beam_size=1))
    assert len(out) == 2 and out[0] == expected[1]
    assert "input: line 2: longer than the 40 subword tokens" in caplog.text


@pytest.mark.slow
def test_translate_lines_refuses_bad_runs_and_input_in_one_line(run, tmp_path):
    TextConfig(run_dir=str(tmp_path)).save(tmp_path / "config.json")
    with pytest.raises(ValueError, match=r"a text run, not a translation run"):
        translate_lines(tmp_path, ["hello"])
    with pytest.raises(FileNotFoundError, match="is --run_dir=.* a run directory"):
        translate_lines(tmp_path / "missing", ["hello"])
    with pytest.raises(ValueError, match="--batch_size=0: must be between"):
        translate_lines(run, ["hello"], batch_size=0)
    with pytest.raises(TypeError, match="one string"):
        translate_lines(run, "hello")
    with pytest.raises(ValueError, match=r"^input: line 2: not UTF-8"):
        list(translate_lines(run, [b"I see one red dog .\n", b"\xff\n"]))
    stream = io.TextIOWrapper(io.BytesIO(b"I see one red dog .\n\xff\n"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"^input: not UTF-8 text after line"):
        list(translate_lines(run, stream))


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.slow
def test_bleu_report_shows_progress_on_a_terminal_and_records_signatures(run, monkeypatch):
    model, subwords = train.load_checkpoint(run), tr.Subwords.load(run / tr.TOKENIZER)
    report = tr.bleu_report(model, subwords, PAIRS[:5], beam_size=2)
    assert set(report) == {
        "bleu_sentences",
        "bleu_signature",
        "chrf_signature",
        "bleu_greedy",
        "chrf_greedy",
        "bleu_beam2",
        "chrf_beam2",
    }
    assert report["bleu_signature"].startswith(BLEU_SIGNATURE)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    tr.bleu_report(model, subwords, PAIRS[:5], beam_size=2)
    assert "BLEU, greedy" in terminal.getvalue() and "BLEU, beam2" in terminal.getvalue()


@pytest.mark.slow
def test_train_sample_evaluate_from_the_command_line(run, tmp_path, capsys):
    metrics = json.loads((run / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["history"]]
    assert losses[-1] < 0.8 * losses[0]
    assert {"bleu_greedy", "chrf_greedy", "bleu_beam2", "perplexity"} <= metrics["test"].keys()
    assert metrics["test"]["bleu_signature"].startswith(BLEU_SIGNATURE)
    assert metrics["test"]["chrf_signature"].startswith(CHRF_SIGNATURE)
    assert set(os.listdir(run)) >= {"best.keras", "config.json", "subwords.model"}
    assert not [name for name in os.listdir(run) if name.endswith(".tsv")]  # the dataset's
    capsys.readouterr()
    assert cli.run(["sample", f"--run_dir={run}", "--text=I see two red dogs ."]) == 0
    assert capsys.readouterr().out.strip()
    tr.write_tsv(tmp_path / "more.tsv", PAIRS[::7])
    assert cli.run(["evaluate", f"--run_dir={run}", f"--data={tmp_path / 'more.tsv'}"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["bleu_sentences"] == 4
    assert evaluated["chrf_signature"].startswith(CHRF_SIGNATURE)
    assert cli.run(["sample", f"--run_dir={run}"]) == 1
    assert "needs --text" in capsys.readouterr().err


def test_translate_command_reads_a_file_or_stdin(run, tmp_path, capsys, monkeypatch):
    source = tmp_path / "in.txt"
    source.write_text("I see two red dogs .\n\nthe cat sleeps .\n")
    target = tmp_path / "out.txt"
    assert (
        cli.run(
            [
                "translate",
                f"--run_dir={run}",
                f"--input={source}",
                f"--output={target}",
                "--beam_size=1",
                "--batch_size=2",
            ]
        )
        == 0
    )
    lines = target.read_text().split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == "" and lines[0]
    monkeypatch.setattr("sys.stdin", io.StringIO(source.read_text()))
    assert cli.run(["translate", f"--run_dir={run}", "--beam_size=1"]) == 0
    assert capsys.readouterr().out == target.read_text()
    assert cli.run(["translate", f"--run_dir={run}", "--input=/no/such.txt"]) == 1
    assert "/no/such.txt" in capsys.readouterr().err
