"""Quantised files that lose quality against the trained Keras model are not written."""

import json

import keras
import numpy as np
import pytest

from zoo import export
from zoo.export import conversion
from zoo.export import exporters as export_module
from zoo.export.signatures import InferenceModule
from zoo.models.language_model import LanguageModel

VOCAB, TIME = 12, 16


def language_model(seed):
    keras.utils.set_random_seed(seed)
    model = LanguageModel(vocab_size=VOCAB, cell="lstm", units=16, layers=1, embedding_dim=8)
    model(np.zeros((1, TIME), np.int32))
    return model


@pytest.fixture(scope="module")
def trained():
    """A model that has learned a periodic sequence (near 0 bits/token), and windows of it."""
    tokens = np.tile(np.arange(1, VOCAB), 40).astype(np.int32)
    windows = np.stack([tokens[i : i + TIME + 1] for i in range(0, 300, 3)])
    model = language_model(0)
    model.compile(
        keras.optimizers.Adam(2e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(windows[:, :-1], windows[:, 1:], epochs=30, batch_size=20, verbose=0)
    return model, [w[None, :TIME] for w in windows[:6]]


def test_a_damaged_quantised_file_is_not_written(trained, tmp_path, monkeypatch):
    model, windows = trained
    untrained = InferenceModule(language_model(1), 1, TIME)
    convert = conversion.convert

    def damaged(module, quantize, calibration=None):  # "dynamic" gets another model's weights
        return (
            convert(untrained, "none")
            if quantize == "dynamic"
            else convert(module, quantize, calibration)
        )

    monkeypatch.setattr(conversion, "convert", damaged)
    out = tmp_path / "export"
    with pytest.raises(
        export.QualityError, match=r"model_dynamic.tflite .* bits/token .*--allow_quality_loss"
    ):
        export.export_model(
            model,
            out,
            format="tflite",
            quantize=["none", "dynamic", "float16"],
            representative_data=windows,
            seq_len=TIME,
        )
    written = sorted(p.name for p in out.iterdir())
    assert written == ["manifest.json", "model.tflite", "model_float16.tflite"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]["model_float16.tflite"]["quality_loss"] < 0.05
    assert manifest["quality_gate"]["metric"] == "bits_per_token"  # the model's declaration
    assert manifest["quality_gate"]["unit"] == "bits/token"
    rejected = manifest["rejected"]["model_dynamic.tflite"]
    assert rejected["quality_loss"] > 1.0

    manifest = export.export_model(
        model,
        out,
        format="tflite",
        quantize=["none", "dynamic"],
        representative_data=windows,
        seq_len=TIME,
        allow_quality_loss=True,
    )
    assert (out / "model_dynamic.tflite").is_file() and not manifest["rejected"]
    assert manifest["files"]["model_dynamic.tflite"]["quality_loss"] > 1.0


def test_real_quantisations_of_a_trained_model_pass_the_gate(trained, tmp_path):
    model, windows = trained
    manifest = export_module.export_model(
        model,
        tmp_path / "ok",
        format="tflite",
        quantize=["none", "dynamic", "float16"],
        representative_data=windows,
        seq_len=TIME,
    )
    assert manifest["files"]["model.tflite"]["parity"]["bits_per_token"]["keras"] < 0.5
    for name in ("model_dynamic.tflite", "model_float16.tflite"):
        assert manifest["files"][name]["quality_loss"] <= 0.05


def test_the_refusal_names_a_metric_the_model_declares_itself():
    from zoo.export.parity import quality_error

    error = quality_error(
        {"model_int8.tflite": {"metric": "my_loss", "keras": 0.1, "tflite": 0.3}}, 0.05, "out"
    )
    assert str(error).startswith("model_int8.tflite 0.300 my_loss against 0.100 in Keras (+0.200)")
