"""Export of the translator: `encode` / `decode_step` TFLite signatures, parity, greedy decoding."""

import json
import os

import keras
import numpy as np
import pytest

from pipelines import train
from pipelines import translation as tr
from pipelines.export import EXPORT_DIR, export_run
from tests.pipelines.test_translation import PAIRS
from zoo.export import (
    QualityError,
    TFLiteTranslator,
    bench_tflite,
    conversion,
    export_seq2seq,
    read_metadata,
)
from zoo.export.encoder_decoder import Seq2SeqModule
from zoo.export.flatbuffer import _constant_key, unpack
from zoo.export.parity import translator_parity as parity
from zoo.models.seq2seq import Seq2Seq


@pytest.fixture(scope="module")
def translation_run(tmp_path_factory):
    """A tiny translation run, trained for a few steps."""
    root = tmp_path_factory.mktemp("translation")
    data = root / "pairs.tsv"
    tr.write_tsv(data, PAIRS)
    run_dir = str(root / "run")
    train.train(
        tr.TranslationConfig(
            data=str(data),
            run_dir=run_dir,
            size="tiny",
            cell="lstm",
            vocab_size=60,
            max_len=32,
            batch_size=8,
            epochs=1,
            steps=2,
            validation_steps=1,
            learning_rate=0.02,
            dropout=0.0,
            bleu_sentences=0,
        ),
        verbose=0,
    )
    return run_dir


def test_signatures_match_seq2seq_and_hold_no_loop():
    keras.utils.set_random_seed(1)
    model = Seq2Seq(
        30,
        30,
        cell="gru",
        units=8,
        embedding_dim=4,
        encoder_layers=2,
        decoder_layers=2,
        attention="bahdanau",
    )
    model.build()
    module = Seq2SeqModule(model, max_source_len=6)
    source = [5, 9, 3]
    encoded = module.encode(module.pad(source))
    assert encoded["source_mask"].numpy().tolist() == [[1, 1, 1, 0, 0, 0]]
    reference = model.encode(np.array([source]))
    np.testing.assert_allclose(encoded["memory"][:, :3], reference["memory"], atol=1e-6)
    # decode_step with the attention weights: rows sum to 1 on the source.
    ids = np.array([2], np.int32)
    logits, _, weights = model.decode_step(ids, reference, attention=True)
    np.testing.assert_allclose(logits, model.decode_step(ids, reference)[0], atol=1e-6)
    np.testing.assert_allclose(np.sum(weights, -1), 1.0, atol=1e-6)
    step = module.run("decode_step", {"ids": ids, **encoded})
    np.testing.assert_allclose(step["logits"], logits, atol=1e-5)
    np.testing.assert_allclose(step["attention"][:, 3:], 0.0, atol=1e-7)
    assert set(step) == {"logits", "attention", "state_0_0", "state_1_0"}
    # Dynamic-range quantisation keeps builtin ops and the greedy translation.
    flatbuffer = conversion.convert(module, "dynamic")
    assert not set(conversion.ops_used(flatbuffer)) & conversion.FORBIDDEN_OPS
    report = parity(model, flatbuffer, [source, [7, 8, 9, 10, 3]], 2, 3, max_length=5)
    assert report["greedy_equal"] == 1.0 and max(report["max_abs_diff"].values()) < 1e-2
    with pytest.raises(ValueError, match="holds 7 tokens, more than the exported max_source_len=6"):
        module.pad(range(1, 8))
    with pytest.raises(ValueError, match="int8' calibrates on real inputs"):
        export_seq2seq(model, "unused", [source], 2, 3, quantize="int8")


def test_int8_calibrates_both_signatures_and_holds_each_weight_once():
    keras.utils.set_random_seed(2)
    model = Seq2Seq(
        30,
        30,
        cell="lstm",
        units=8,
        embedding_dim=4,
        encoder_layers=1,
        decoder_layers=1,
        bidirectional=True,
    )
    model.build()
    module = Seq2SeqModule(model, max_source_len=6)
    pairs = [([5, 9, 3], [7, 3]), ([7, 8, 9, 10, 3], [11, 12, 13, 3])]
    samples = list(module.calibration_samples(pairs)())
    # encode once per pair, then decode_step along the reference from the start token; then
    # the sources run together over all six positions of the encoder.
    assert [name for name, _ in samples] == ["encode"] + ["decode_step"] * 2 + ["encode"] + [
        "decode_step"
    ] * 4 + ["encode"]
    assert samples[-1][1]["source"].tolist() == [[5, 9, 3, 7, 8, 9]]
    assert [samples[i][1]["ids"].tolist() for i in (1, 2)] == [[module.start_id], [7]]
    assert np.abs(samples[2][1]["state_0_0"]).max() > 0  # the states the model reaches
    flatbuffer = conversion.convert(module, "int8", pairs)
    assert "FULLY_CONNECTED" in conversion.ops_used(flatbuffer)
    tree = unpack(flatbuffer)
    for subgraph in tree.subgraphs:  # the unrolled encoder's steps share their weights
        keys = [_constant_key(tree, t) for t in subgraph.tensors]
        constants = [k for k in keys if k is not None]
        assert len(constants) == len(set(constants))
    report = parity(
        model, flatbuffer, [p[0] for p in pairs], 2, 3, max_length=5, targets=[p[1] for p in pairs]
    )
    assert report["score"]["metric"] == "bits_per_token"
    assert abs(report["score"]["tflite"] - report["score"]["keras"]) < 0.05


@pytest.mark.slow
def test_export_run_of_a_translation_run(translation_run):
    manifest = export_run(translation_run, seq_len=20, calibration_windows=2)

    export_dir = os.path.join(translation_run, EXPORT_DIR)
    assert sorted(os.listdir(export_dir)) == [
        "manifest.json",
        "model.tflite",
        "saved_model",
        "subwords.model",
    ]
    with open(os.path.join(export_dir, "manifest.json")) as f:
        assert json.load(f) == manifest
    assert (manifest["start_id"], manifest["end_id"], manifest["max_source_len"]) == (
        tr.BOS,
        tr.EOS,
        20,
    )
    assert manifest["metadata"]["tokenizer"] == "subwords.model"
    assert manifest["signatures"]["encode"]["inputs"]["source"]["shape"] == [1, 20]
    assert manifest["files"]["saved_model"] == {"reload_max_abs_diff": 0.0, "translate_equal": True}
    info = manifest["files"]["model.tflite"]
    assert not set(info["ops"]) & conversion.FORBIDDEN_OPS
    assert info["parity"]["sentences"] == 2 and info["parity"]["greedy_equal"] == 1.0
    assert max(info["parity"]["max_abs_diff"].values()) <= 1e-4

    # On-device translation needs the .tflite file, the SentencePiece model and the manifest;
    # the file carries the other two as metadata.
    subwords = tr.Subwords.load(os.path.join(export_dir, "subwords.model"))
    embedded = read_metadata(os.path.join(export_dir, "model.tflite"))
    assert embedded["subwords.model"] == subwords.proto
    assert json.loads(embedded["lstm_zoo.json"])["end_id"] == tr.EOS
    data = train.load_config(translation_run).data
    text = tr.pair_splits("zoo_sentence_pairs", data)["test"][0][0]
    source = subwords.encode([text])[0] + manifest["metadata"]["source_suffix"]
    translator = TFLiteTranslator(os.path.join(export_dir, "model.tflite"))
    ids = translator.greedy(source, tr.BOS, tr.EOS, manifest["max_length"])
    model = train.load_checkpoint(translation_run)
    expected = tr.translate(model, subwords, [text], max_length=manifest["max_length"])[0]
    assert subwords.decode(np.array([ids])) == [expected]
    # Every file is scored on the test pairs: teacher-forced bits per token and greedy BLEU.
    assert info["parity"]["bits_per_token"]["tflite"] == pytest.approx(
        info["parity"]["bits_per_token"]["keras"], abs=1e-3
    )
    assert info["parity"]["bleu_greedy"]["tflite"] == info["parity"]["bleu_greedy"]["keras"]
    # bench-tflite times a translator's two signatures.
    timed = bench_tflite(os.path.join(export_dir, "model.tflite"), steps=4, warmup=1)
    assert timed["decode_step"]["steps"] == 4 and timed["encode"]["p50_us"] > 0


@pytest.mark.slow
def test_a_translator_file_over_the_quality_gate_is_not_written(translation_run, tmp_path):
    out_dir = tmp_path / "export"
    with pytest.raises(
        QualityError,
        match=r"model_dynamic.tflite .* bits/token against .* in "
        r"Keras .*allowed loss of -1",
    ):
        export_run(
            translation_run,
            out_dir=str(out_dir),
            format=["tflite"],
            quantize=["none", "dynamic"],
            seq_len=20,
            calibration_windows=2,
            max_quality_loss=-1.0,
        )
    assert sorted(os.listdir(out_dir)) == ["manifest.json", "model.tflite", "subwords.model"]
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert list(manifest["rejected"]) == ["model_dynamic.tflite"]
    assert manifest["quality_gate"]["max_loss"] == -1.0
