"""Classifier export: the fused whole-window file and the streaming file agree with Keras on
sequences of any length, carry nothing from one call to the next, and are gated in accuracy."""

import json

import keras
import numpy as np
import pytest

from zoo import cells
from zoo.export import classify_file, export, export_classifier
from zoo.export.parity import QualityError
from zoo.layers import sequence_layer
from zoo.models.classifier import SequenceClassifier
from zoo.models.protocol import Classifier

RNG = np.random.default_rng(1)
SEQUENCES = [(RNG.normal(size=(n, 3)).astype("float32"), n) for n in (12, 5, 9, 12, 3, 7)]


def classifier(**overrides):
    model = SequenceClassifier(
        3,
        channels=3,
        units=8,
        conv_filters=(4,),
        conv_kernels=(3,),
        pooling="attention",
        **overrides,
    )
    model({"features": SEQUENCES[0][0][None], "lengths": np.array([12])})
    return model


def keras_labels(model):
    return [
        int(np.argmax(model({"features": x[None], "lengths": np.array([n])})[0]))
        for x, n in SEQUENCES
    ]


@pytest.mark.parametrize("cell, bidirectional", [("lstm", False), ("vanilla_lstm", True)])
def test_files_match_keras_and_fuse_the_lstm(cell, bidirectional, tmp_path):
    model = classifier(cell=cell, bidirectional=bidirectional)
    labels = keras_labels(model)  # Keras's own answers: 100% accuracy to keep
    # `zoo.export.export` asks the model what it is: a Classifier
    manifest = export(
        model, tmp_path / "export", sequences=SEQUENCES, labels=labels, seq_len=12, format="tflite"
    )
    files = manifest["files"]
    assert set(files) == (
        {"model.tflite"} if bidirectional else {"model.tflite", "streaming.tflite"}
    )
    ops = files["model.tflite"]["ops"]
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1 and "WHILE" not in ops
    assert files["model.tflite"]["fused_lstm_layers"] == (2 if bidirectional else 1)
    for entry in files.values():
        assert entry["accuracy"] == 1.0 and entry["parity"]["max_abs_diff"]
    on_disk = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert on_disk["quality_gate"]["unit"] == "accuracy points"
    assert on_disk["kind"] == "classifier"


def test_a_file_carries_no_state_from_one_call_to_the_next(tmp_path):
    model = classifier()
    export_classifier(
        model, tmp_path / "export", SEQUENCES, keras_labels(model), seq_len=12, streaming=False
    )
    path = tmp_path / "export" / "model.tflite"
    together = classify_file(path, SEQUENCES)
    alone = np.concatenate([classify_file(path, [s]) for s in SEQUENCES])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_the_quality_gate_is_in_accuracy_points(tmp_path):
    model = classifier()
    wrong = [(label + 1) % 3 for label in keras_labels(model)]  # scored against other labels
    with pytest.raises(QualityError, match="misclassified"):
        export_classifier(
            model,
            tmp_path / "export",
            SEQUENCES,
            wrong,
            seq_len=12,
            quantize=["none", "float16"],
            streaming=False,
            max_quality_loss=-1.0,
        )
    assert not (tmp_path / "export" / "model_float16.tflite").exists()
    assert (tmp_path / "export" / "model.tflite").exists()


class MeanLSTM(keras.Model, Classifier):
    """A classifier written in the test against the protocol alone: an LSTM, then the mean of
    its valid outputs, then logits; whole sequences only (`streams` False)."""

    streams, num_classes = False, 3

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lstm = sequence_layer(cells.create("lstm", 6))
        self.head = keras.layers.Dense(self.num_classes)

    @property
    def step_input(self):
        return "float32", (3,)

    def call(self, x):
        return self.classify(x, keras.ops.full((x.shape[0],), x.shape[1], "int32"))

    def classify(self, x, lengths):
        valid = keras.ops.cast(keras.ops.arange(x.shape[1])[None] < lengths[:, None], "float32")
        h = self.lstm(x * valid[..., None])
        return self.head(keras.ops.sum(h * valid[..., None], 1) / keras.ops.sum(valid, 1)[:, None])


def test_a_model_implementing_only_the_protocol_exports_fused(tmp_path):
    model = MeanLSTM()
    model(SEQUENCES[0][0][None])
    labels = keras_labels_of(model)
    manifest = export(
        model,
        tmp_path / "export",
        sequences=SEQUENCES,
        labels=labels,
        seq_len=12,
        quantize=["none", "float16"],
    )
    assert set(manifest["files"]) == {"saved_model", "model.tflite", "model_float16.tflite"}
    assert manifest["files"]["model.tflite"]["fused_lstm_layers"] == 1
    assert manifest["files"]["saved_model"]["reload_max_abs_diff"] < 1e-5
    assert all(
        manifest["files"][name]["accuracy"] == 1.0
        for name in ("model.tflite", "model_float16.tflite")
    )


def keras_labels_of(model):
    return [
        int(np.argmax(model.classify(x[None], np.array([n], np.int32))[0])) for x, n in SEQUENCES
    ]
