"""Export of every registered cell to builtin-only TFLite, parity in LiteRT, SavedModel, files."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from zoo import export
from zoo.testing import randomize_weights, rnn

VOCAB, EMBED, UNITS, TIME = 12, 6, 8, 5
FUSED = export.fusion.FUSED_OP
# Registered cells (default arguments) that the TFLite LSTM op computes exactly.
FUSED_CELLS = {"lstm", "np_lstm", "vanilla_lstm", "cifg_lstm", "projection_lstm"}


def tiny_model(cell_name, units=UNITS, layers=1, randomize=True, **cell_kwargs):
    """Embedding -> RNN(cell) x layers -> Dense, or for cells over feature maps
    Input(maps) -> RNN(cell) -> Dense; weights randomised so every term matters."""
    keras.utils.set_random_seed(0)
    cells = [zoo.cells.create(cell_name, units, **cell_kwargs) for _ in range(layers)]
    step_shape = getattr(cells[0], "example_input_shape", None)
    if step_shape is None:
        head = [keras.Input((None,), dtype="int32"), keras.layers.Embedding(VOCAB, EMBED)]
        x = np.random.default_rng(1).integers(0, VOCAB, (1, TIME)).astype(np.int32)
    else:
        head = [keras.Input((None, *step_shape))]
        x = np.random.default_rng(1).normal(size=(1, TIME, *step_shape)).astype(np.float32)
    recurrent = [rnn(cell, return_sequences=True) for cell in cells]
    model = keras.Sequential(
        [*head, *recurrent, keras.layers.Dropout(0.5), keras.layers.Dense(VOCAB)]
    )
    if randomize:
        randomize_weights(model)
    return model, x


@pytest.mark.parametrize("name", zoo.cells.names())
def test_every_cell_converts_to_builtin_ops_with_float32_parity(name):
    model, x = tiny_model(name)
    module = export.InferenceModule(model, seq_len=TIME)
    flatbuffer = export.convert(module)
    ops = export.ops_used(flatbuffer)
    assert not any(op.startswith("Flex") for op in ops), ops
    assert not set(ops) & export.conversion.FORBIDDEN_OPS, ops
    assert (FUSED in ops) == (name in FUSED_CELLS), ops
    report = export.parity(model, flatbuffer, [x])
    assert max(report["max_abs_diff"].values()) <= 1e-4, report


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("lstm", {}),
        ("projection_lstm", {"use_peepholes": True, "projection_units": 3}),
        ("layer_norm_lstm", {"cell_norm": False}),
    ],
)
def test_stacked_lstm_variants_fuse_with_float32_parity(name, kwargs):
    model, x = tiny_model(name, layers=2, **kwargs)
    flatbuffer = export.convert(export.InferenceModule(model, seq_len=TIME))
    assert export.ops_used(flatbuffer).count(FUSED) == 1
    report = export.parity(model, flatbuffer, [x])
    assert max(report["max_abs_diff"].values()) <= 1e-4, report


def test_fused_cell_state_is_not_clipped():
    # The converter emits cell_clip=10; Keras never clips: c runs from -15 up by 1 per step.
    units, time = 2, 20
    cell = zoo.cells.create("lstm", units)
    layer = keras.layers.RNN(cell, return_sequences=True)
    model = keras.Sequential([keras.Input((None, 1)), layer])
    cell.set_weights(
        [np.zeros((1, 4 * units)), np.zeros((units, 4 * units)), np.full(4 * units, 20.0)]
    )
    stepper = export.TFLiteStepper(
        export.convert(export.InferenceModule(model, seq_len=time)), signature="predict"
    )
    c0 = np.full((1, units), -15.0, np.float32)
    stepper.states = {"state_0_0": np.zeros_like(c0), "state_0_1": c0}
    x = np.ones((1, time, 1), np.float32)
    expected = layer(x, initial_state=[np.zeros_like(c0), c0])
    np.testing.assert_allclose(stepper(x), expected, atol=1e-5)


def test_keras_lstm_layer_is_fused_too():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(VOCAB, EMBED),
            keras.layers.LSTM(UNITS, return_sequences=True),
            keras.layers.Dense(VOCAB),
        ]
    )
    randomize_weights(model)
    flatbuffer = export.convert(export.InferenceModule(model, seq_len=TIME))
    assert FUSED in export.ops_used(flatbuffer)
    x = np.arange(TIME, dtype=np.int32)[None] % VOCAB
    assert max(export.parity(model, flatbuffer, [x])["max_abs_diff"].values()) <= 1e-4


def test_unfusable_cells_use_no_fused_op():
    model, _ = tiny_model("gru")
    module = export.InferenceModule(model, seq_len=TIME)
    assert [fused for _, _, fused, _ in module.layout] == [False]
    assert FUSED not in export.ops_used(export.convert(module))


def test_states_are_compared_relative_to_their_magnitude_above_one():
    from zoo.export.parity import _scaled_diff

    # A cell state of 130 holds float32 steps of 1.5e-5: 2e-4 is a few of them, not a fault.
    assert _scaled_diff(np.float32([[130.0002]]), np.float32([[130.0]])) < 2e-6
    assert _scaled_diff(np.float32([[0.5002]]), np.float32([[0.5]])) == pytest.approx(2e-4, 1e-3)


def test_predict_uses_the_initial_states_it_is_given():
    model, x = tiny_model("lstm")
    module = export.InferenceModule(model, seq_len=TIME)
    stepper = export.TFLiteStepper(export.convert(module), signature="predict")
    states = {n: np.full(s.shape, 0.3, np.float32) for n, s in stepper.states.items()}
    layer = model.layers[1]
    expected = model.layers[-1](layer(model.layers[0](x), initial_state=list(states.values())))
    stepper.states = states
    np.testing.assert_allclose(stepper(x), expected, atol=1e-5)
    stepper.states = states  # the fused op keeps no hidden state between calls
    np.testing.assert_allclose(stepper(x), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "vanilla_lstm", "gru"])
def test_prefill_reads_a_prompt_through_predict_then_steps_on(name):
    model, _ = tiny_model(name, layers=2)
    flatbuffer = export.convert(export.InferenceModule(model, seq_len=TIME))
    tokens = np.random.default_rng(2).integers(0, VOCAB, (1, 2 * TIME + 3)).astype(np.int32)
    stepper = export.TFLiteStepper(flatbuffer)
    prefilled = stepper.prefill(tokens[:, :-1])  # two `predict` windows, then two steps
    last = stepper(tokens[:, -1])
    np.testing.assert_allclose(
        np.concatenate([prefilled, last[:, None]], axis=1), model(tokens), atol=1e-4
    )


def _keras_stepper(model):
    """step(x_t) -> logits with Keras, re-running the whole prefix (the plain Keras way)."""
    prefix = []

    def step(x):
        prefix.append(int(x[0]))
        return np.asarray(model(np.array([prefix], np.int32)))[0, -1]

    return step


def test_step_signature_generation_in_litert_equals_keras_generation():
    model, _ = tiny_model("cifg_lstm", layers=2)
    flatbuffer = export.convert(export.InferenceModule(model, seq_len=TIME))
    prompt = [1, 2, 3]
    litert = export.generate(export.TFLiteStepper(flatbuffer), prompt, 12, seed=7)
    keras_tokens = export.generate(_keras_stepper(model), prompt, 12, seed=7)
    assert litert == keras_tokens
    assert len(litert) == 15


@pytest.mark.slow
def test_int8_export_of_lstm(tmp_path):
    model, _ = tiny_model("lstm", units=64, layers=2, randomize=False)
    randomize_weights(model, scale=0.15)  # logits spread over a few units, like a trained LM
    rng = np.random.default_rng(0)
    data = [rng.integers(0, VOCAB, (1, TIME)).astype(np.int32) for _ in range(8)]
    manifest = export.export_model(
        model,
        tmp_path / "out",
        format="tflite",
        quantize=["none", "int8"],
        representative_data=data,
        seq_len=TIME,
    )
    int8 = manifest["files"]["model_int8.tflite"]
    assert FUSED not in int8["ops"] and "QUANTIZE" in int8["ops"]
    assert int8["bytes"] < manifest["files"]["model.tflite"]["bytes"]
    scale = np.abs(np.asarray(model(data[0]))).max()
    # The streaming path is int8 ops of one step; the fused op is coarser (int16 cell state,
    # fixed gate scales) but costs little in bits per token.
    assert int8["parity"]["max_abs_diff"]["step"] < 0.05 * scale
    bits = int8["parity"]["bits_per_token"]
    assert abs(bits["tflite"] - bits["keras"]) < 0.05


def test_export_model_writes_files_manifest_and_saved_model(tmp_path):
    model, x = tiny_model("cifg_lstm")
    out = tmp_path / "export"
    manifest = export.export_model(
        model,
        out,
        quantize=["none", "dynamic"],
        representative_data=[x],
        seq_len=TIME,
        metadata={"task": "text", "vocabulary": list("abc")},
    )
    assert sorted(os.listdir(out)) == [
        "manifest.json",
        "model.tflite",
        "model_dynamic.tflite",
        "saved_model",
    ]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["cells"] == [
        {
            "cell": "cifg_lstm",
            "units": UNITS,
            "fused": True,
            "state_shapes": [[1, UNITS], [1, UNITS]],
        }
    ]
    # The dynamic-range quantizer knows the converter's plain LSTM only: CIFG runs unrolled.
    files = manifest["files"]
    assert FUSED in files["model.tflite"]["ops"] and files["model.tflite"]["fused_lstm_layers"]
    assert FUSED not in files["model_dynamic.tflite"]["ops"]
    step = manifest["signatures"]["step"]
    assert step["inputs"]["x"] == {"shape": [1], "dtype": "int32"}
    assert step["outputs"]["output"] == {"shape": [1, VOCAB], "dtype": "float32"}
    assert manifest["files"]["saved_model"]["reload_max_abs_diff"] == 0.0
    assert manifest["files"]["model.tflite"]["parity"]["max_abs_diff"]["step"] <= 1e-4
    assert manifest["metadata"]["task"] == "text"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".export")]

    # The SavedModel runs in a process that cannot import the zoo.
    script = (
        "import sys; sys.modules['zoo'] = None\n"
        "import numpy as np, tensorflow as tf\n"
        f"step = tf.saved_model.load({str(out / 'saved_model')!r}).signatures['step']\n"
        f"z = np.zeros((1, {UNITS}), np.float32)\n"
        "out = step(x=tf.constant([3]), state_0_0=z, state_0_1=z)\n"
        "print(sorted(out), out['output'].shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert f"['output', 'state_0_0', 'state_0_1'] (1, {VOCAB})" in result.stdout


def test_failed_export_leaves_the_previous_one(tmp_path):
    model, x = tiny_model("gru")
    out = tmp_path / "export"
    out.mkdir()
    (out / "manifest.json").write_text('{"format": "lstm-zoo-export", "kind": "model"}')
    with pytest.raises(export.ParityError, match="model.tflite: the .* signature differs"):
        export.export_model(
            model, out, format="tflite", representative_data=[x], seq_len=TIME, tolerance=0.0
        )
    assert os.listdir(out) == ["manifest.json"]
    assert os.listdir(tmp_path) == ["export"]


def test_bench_tflite_reports_latency(tmp_path):
    model, _ = tiny_model("gru")
    path = tmp_path / "m.tflite"
    path.write_bytes(export.convert(export.InferenceModule(model, seq_len=TIME)))
    result = export.bench_tflite(path, steps=5, warmup=1)
    assert result["mean_us"] > 0 and result["p90_us"] >= result["p50_us"] > 0
    assert result["bytes"] == path.stat().st_size


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"quantize": "int4"}, "Received: quantize='int4'"),
        ({"format": "onnx"}, "Received: format='onnx'"),
        ({"quantize": "int8", "format": "tflite"}, "Received: representative_data=None"),
        ({"seq_len": 0}, "Received: seq_len=0"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs, error):
    model, _ = tiny_model("lstm")
    with pytest.raises(ValueError, match=error):
        export.export_model(model, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_layers_that_cannot_stream_are_rejected():
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Conv1D(4, 3),
            keras.layers.RNN(zoo.cells.create("lstm", 4)),
        ]
    )
    with pytest.raises(ValueError, match="Cannot export layer 'conv1d'"):
        export.InferenceModule(model)
    backwards = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.RNN(zoo.cells.create("lstm", 4), go_backwards=True)]
    )
    with pytest.raises(ValueError, match="go_backwards=True"):
        export.InferenceModule(backwards)


def test_polyphonic_music_model_exports_with_parity(tmp_path):
    from zoo.models.polyphonic import PolyphonicModel

    model = PolyphonicModel(pitches=10, cell="vanilla_lstm", units=UNITS)
    rng = np.random.default_rng(0)
    frames = [(rng.random((1, TIME, 10)) < 0.3).astype(np.float32) for _ in range(2)]
    model(frames[0])
    randomize_weights(model, scale=0.3)
    manifest = export.export_model(
        model, tmp_path / "music", format="tflite", representative_data=frames, seq_len=TIME
    )
    tflite = manifest["files"]["model.tflite"]
    assert FUSED in tflite["ops"]
    assert max(tflite["parity"]["max_abs_diff"].values()) < 1e-4
    score = tflite["parity"]["score"]  # next-frame NLL of the rolls, what the gate compares
    assert score["metric"] == "nats_per_step" and score["keras"] > 0
    assert abs(tflite["quality_loss"]) < 1e-3


def test_time_aware_melody_model_exports_through_its_step(tmp_path):
    from zoo.models.melody import EventVocabulary, melody_model

    vocabulary = EventVocabulary()
    model = melody_model(vocabulary, size="tiny", cell="tlstm")
    ids = np.random.default_rng(0).integers(1, vocabulary.size, (1, TIME)).astype(np.int32)
    model(ids)
    randomize_weights(model, scale=0.3)
    module = export.InferenceModule(model, seq_len=TIME)
    assert module.state_names[-1] == "state_1_0"  # Δt of the next step, after the layer's h, c
    manifest = export.export_model(
        model, tmp_path / "melody", format="tflite", representative_data=[ids], seq_len=TIME
    )
    tflite = manifest["files"]["model.tflite"]
    assert max(tflite["parity"]["max_abs_diff"].values()) < 1e-4
    assert tflite["parity"]["bits_per_token"]["tflite"] > 0


def test_convlstm_frame_model_exports_with_parity(tmp_path):
    from pipelines.moving_shapes import build_model

    model = build_model(frames=None, size=8, filters=4)
    rng = np.random.default_rng(0)
    videos = [(rng.random((1, TIME, 8, 8, 1)) < 0.2).astype(np.float32) for _ in range(2)]
    model(videos[0])
    randomize_weights(model, scale=0.3)
    manifest = export.export_model(
        model, tmp_path / "frames", format="tflite", representative_data=videos, seq_len=TIME
    )
    tflite = manifest["files"]["model.tflite"]
    assert max(tflite["parity"]["max_abs_diff"].values()) < 1e-4
    assert not any(op.startswith("Flex") for op in tflite["ops"])


def test_bidirectional_ctc_model_exports_predict_over_a_fixed_window(tmp_path):
    from zoo.models.ctc import CTCModel

    model = CTCModel(num_labels=5, cell="lstm", units=UNITS, layers=2)
    rng = np.random.default_rng(0)
    features = [rng.normal(size=(1, TIME, 6)).astype(np.float32) for _ in range(2)]
    model(features[0])
    randomize_weights(model, scale=0.3)
    manifest = export.export_model(
        model,
        tmp_path / "ctc",
        format=["tflite", "saved_model"],
        representative_data=features,
        seq_len=TIME,
    )
    assert list(manifest["signatures"]) == ["predict"]  # no streaming: it reads both ways
    assert manifest["signatures"]["predict"]["outputs"]["output"]["shape"] == [1, TIME, 6]
    tflite = manifest["files"]["model.tflite"]
    assert list(tflite["parity"]["max_abs_diff"]) == ["predict"]
    assert tflite["parity"]["max_abs_diff"]["predict"] < 1e-4
    assert manifest["files"]["saved_model"]["reload_max_abs_diff"] < 1e-5
    stepper = export.TFLiteStepper(tmp_path / "ctc" / "model.tflite", signature="predict")
    with pytest.raises(ValueError, match="streaming model"):
        stepper.prefill(features[0][0])
