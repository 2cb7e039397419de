"""`lstm-zoo export` and `lstm-zoo bench-tflite` on a trained text run."""

import dataclasses
import json

import pytest

from pipelines import cli, train


def test_export_and_bench_tflite(tiny, tmp_path, capsys):
    train.train(dataclasses.replace(tiny, cell="lstm", epochs=1, steps=3), verbose=0)
    out_dir = tmp_path / "export"
    assert cli.run(["export", f"--run_dir={tiny.run_dir}", "--format=tflite",
                    "--quantize=none", f"--out_dir={out_dir}"]) == 0
    files = json.loads(capsys.readouterr().out)
    assert files["model.tflite"]["fused_lstm_layers"] == 1
    assert files["model.tflite"]["parity"]["max_abs_diff"]["step"] < 1e-4
    assert json.loads((out_dir / "manifest.json").read_text())["metadata"]["task"] == "text"

    assert cli.run(["bench-tflite", f"--model={out_dir / 'model.tflite'}",
                    "--num_threads=1"]) == 0
    latency = json.loads(capsys.readouterr().out)
    assert latency["signature"] == "step" and latency["p50_us"] > 0
    assert cli.run(["bench-tflite"]) == 2
    assert "needs --model" in capsys.readouterr().err


def test_bench_hands_its_flags_to_the_benchmark_suite(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["bench", "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: lstm-zoo bench [-h] [--cells CELLS]")
