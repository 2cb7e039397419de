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
from zoo.export import TFLiteTranslator, export_seq2seq, read_metadata, tflite
from zoo.export.seq2seq import Seq2SeqModule, decode, parity
from zoo.models.seq2seq import Seq2Seq


@pytest.fixture(scope="module")
def translation_run(tmp_path_factory):
    """A tiny translation run, trained for a few steps."""
    root = tmp_path_factory.mktemp("translation")
    data = root / "pairs.tsv"
    tr.write_tsv(data, PAIRS)
    run_dir = str(root / "run")
    train.train(tr.TranslationConfig(
        data=str(data), run_dir=run_dir, size="tiny", cell="lstm", vocab_size=60, max_len=32,
        batch_size=8, epochs=1, steps=2, validation_steps=1, learning_rate=0.02, dropout=0.0,
        bleu_sentences=0), verbose=0)
    return run_dir


def test_signatures_match_seq2seq_and_hold_no_loop():
    keras.utils.set_random_seed(1)
    model = Seq2Seq(30, 30, cell="gru", units=8, embedding_dim=4, encoder_layers=2,
                    decoder_layers=2, attention="bahdanau")
    model.build()
    module = Seq2SeqModule(model, max_source_len=6)
    source = [5, 9, 3]
    encoded = module.encode(module.pad(source))
    assert encoded["source_mask"].numpy().tolist() == [[1, 1, 1, 0, 0, 0]]
    reference = model.encode(np.array([source]))
    np.testing.assert_allclose(encoded["memory"][:, :3], reference["memory"], atol=1e-6)
    # `decode` is Seq2Seq.decode_step with the attention weights: rows sum to 1 on the source.
    ids = np.array([2], np.int32)
    logits, states, weights = decode(model, ids, reference)
    np.testing.assert_allclose(logits, model.decode_step(ids, reference)[0], atol=1e-6)
    np.testing.assert_allclose(np.sum(weights, -1), 1.0, atol=1e-6)
    step = module.run("decode_step", {"ids": ids, **encoded})
    np.testing.assert_allclose(step["logits"], logits, atol=1e-5)
    np.testing.assert_allclose(step["attention"][:, 3:], 0.0, atol=1e-7)
    assert set(step) == {"logits", "attention", "state_0_0", "state_1_0"}
    # Dynamic-range quantisation keeps builtin ops and the greedy translation.
    flatbuffer = tflite.convert(module, "dynamic")
    assert not set(tflite.ops_used(flatbuffer)) & tflite.FORBIDDEN_OPS
    report = parity(model, flatbuffer, [source, [7, 8, 9, 10, 3]], 2, 3, max_length=5)
    assert report["greedy_equal"] == 1.0 and max(report["max_abs_diff"].values()) < 1e-2
    with pytest.raises(ValueError, match="holds 7 tokens, more than the exported max_source_len=6"):
        module.pad(range(1, 8))
    with pytest.raises(ValueError, match="Unknown quantize.*int8"):
        export_seq2seq(model, "unused", [source], 2, 3, quantize="int8")


@pytest.mark.slow
def test_export_run_of_a_translation_run(translation_run):
    manifest = export_run(translation_run, seq_len=20, calibration_windows=2)

    export_dir = os.path.join(translation_run, EXPORT_DIR)
    assert sorted(os.listdir(export_dir)) == ["manifest.json", "model.tflite", "saved_model",
                                              "subwords.model"]
    with open(os.path.join(export_dir, "manifest.json")) as f:
        assert json.load(f) == manifest
    assert (manifest["start_id"], manifest["end_id"], manifest["max_source_len"]) == (
        tr.BOS, tr.EOS, 20)
    assert manifest["metadata"]["tokenizer"] == "subwords.model"
    assert manifest["signatures"]["encode"]["inputs"]["source"]["shape"] == [1, 20]
    assert manifest["files"]["saved_model"] == {"reload_max_abs_diff": 0.0,
                                                "translate_equal": True}
    info = manifest["files"]["model.tflite"]
    assert not set(info["ops"]) & tflite.FORBIDDEN_OPS
    assert info["parity"]["sentences"] == 2 and info["parity"]["greedy_equal"] == 1.0
    assert max(info["parity"]["max_abs_diff"].values()) <= 1e-4

    # On-device translation needs the .tflite file, the SentencePiece model and the manifest;
    # the file carries the other two as metadata.
    subwords = tr.Subwords.load(os.path.join(export_dir, "subwords.model"))
    embedded = read_metadata(os.path.join(export_dir, "model.tflite"))
    assert embedded["subwords.model"] == subwords.proto
    assert json.loads(embedded["lstm_zoo.json"])["end_id"] == tr.EOS
    text = tr.read_tsv(os.path.join(translation_run, "test.tsv"))[0][0]
    source = subwords.encode([text])[0] + manifest["metadata"]["source_suffix"]
    translator = TFLiteTranslator(os.path.join(export_dir, "model.tflite"))
    ids = translator.greedy(source, tr.BOS, tr.EOS, manifest["max_length"])
    model = train.load_checkpoint(translation_run)
    expected = tr.translate(model, subwords, [text], max_length=manifest["max_length"])[0]
    assert subwords.decode(np.array([ids])) == [expected]
