"""Translation pipeline: TSV reading, split, subwords, bucketed batches, the task end to end."""

import json
import os

import numpy as np
import pytest

from pipelines import cli
from pipelines import translation as tr
from pipelines.datasets import bible_pairs
from tests.pipelines.test_sword import write_ztext
from tests.pipelines.test_train import cli_main

NUMBERS = {"one": "uno", "two": "dos", "three": "tres", "four": "cuatro", "five": "cinco"}
THINGS = {"house": "casa", "dog": "perro", "book": "libro", "tree": "árbol"}
COLOURS = {"red": "rojo", "green": "verde", "black": "negro"}
PAIRS = [(f"I see {n} {c} {t}s .", f"veo {ns} {ts}s {cs}s .")
         for n, ns in NUMBERS.items() for t, ts in THINGS.items() for c, cs in COLOURS.items()]


@pytest.fixture
def pairs_tsv(tmp_path):
    path = tmp_path / "pairs.tsv"
    tr.write_tsv(path, PAIRS)
    return str(path)


def test_tsv_reader_skips_malformed_lines_with_one_warning(tmp_path):
    path = tmp_path / "mixed.tsv"
    path.write_bytes(b"hello\thola\n\nno tab here\n\tsolo\nbad \xff byte\tmalo\n"
                     b"thanks\tgracias\tCC-BY attribution\r\n")
    with pytest.warns(UserWarning, match=r"skipped 3 malformed line\(s\).*first is line 3"):
        pairs = tr.read_tsv(path)
    assert pairs == [("hello", "hola"), ("thanks", "gracias")]
    (tmp_path / "bad.tsv").write_bytes(b"no tab\n\xff\xfe\t\n")
    with pytest.raises(ValueError, match=r"bad.tsv: no valid source<TAB>target pair"):
        tr.read_tsv(tmp_path / "bad.tsv")
    with pytest.raises(FileNotFoundError, match="missing.tsv: no such file"):
        tr.read_tsv(tmp_path / "missing.tsv")


def test_split_is_fixed_and_disjoint():
    splits = tr.split_pairs(PAIRS, holdout=1000)
    assert {k: len(v) for k, v in splits.items()} == {"validation": 6, "test": 6, "train": 48}
    assert sorted(sum(splits.values(), [])) == sorted(PAIRS)
    assert tr.split_pairs(PAIRS, holdout=1000) == splits
    with pytest.raises(ValueError, match="too few"):
        tr.split_pairs(PAIRS[:5], holdout=2)


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


def test_bleu_and_chrf():
    references = ["veo dos casas rojas .", "veo un perro ."]
    assert tr.score(references, references) == pytest.approx({"bleu": 100.0, "chrf": 100.0})
    assert tr.score(["nada", "nada"], references)["bleu"] < 10


@pytest.mark.slow
def test_train_sample_evaluate_from_the_command_line(pairs_tsv, tmp_path, capsys):
    run = tmp_path / "run"
    cli_main("train", "--task=translation", f"--data={pairs_tsv}", f"--run_dir={run}",
             "--preset=tiny", "--vocab_size=60", "--batch_size=8", "--epochs=2", "--steps=10",
             "--learning_rate=0.02", "--dropout=0", "--cell=gru", "--attention=bahdanau",
             "--beam_size=1", "--bleu_sentences=4")
    metrics = json.loads((run / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["history"]]
    assert losses[-1] < 0.8 * losses[0]
    assert {"bleu_greedy", "chrf_greedy", "perplexity"} <= metrics["test"].keys()
    assert set(os.listdir(run)) >= {"best.keras", "config.json", "subwords.model", "test.tsv",
                                    "train.tsv", "validation.tsv"}
    capsys.readouterr()
    cli_main("sample", "--task=translation", f"--run_dir={run}", "--text=I see two red dogs .")
    assert capsys.readouterr().out.strip()
    cli_main("evaluate", f"--run_dir={run}", f"--data={pairs_tsv}")
    assert json.loads(capsys.readouterr().out)["bleu_sentences"] == 4
    with pytest.raises(ValueError, match="needs --text"):
        cli_main("sample", f"--run_dir={run}")
    with pytest.raises(cli.app.UsageError, match="holds a translation run"):
        cli_main("sample", "--task=text", f"--run_dir={run}", "--text=hello")


def test_tfds_builder_works_offline(tmp_path):
    root = tmp_path / "sword"
    for module, side in (("engKJV2006eb", 0), ("spaRV1909eb", 1)):
        write_ztext(root / "modules" / module, "ot", [""] + [p[side] for p in PAIRS[:12]])
        os.makedirs(root / "mods.d", exist_ok=True)
        (root / "mods.d" / f"{module.lower()}.conf").write_text(
            f"[{module}]\nDataPath=./modules/{module}/\nModDrv=zText\n")
    splits = bible_pairs.load(data_dir=str(tmp_path / "tfds"), manual_dir=str(root))
    assert {k: len(list(v)) for k, v in splits.items()} == {"train": 10, "validation": 1,
                                                            "test": 1}
    example = next(iter(splits["test"]))
    assert (example["en"].numpy().decode(), example["es"].numpy().decode()) in PAIRS[:12]
