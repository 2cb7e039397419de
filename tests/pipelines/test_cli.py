"""`lstm-zoo export` and `lstm-zoo bench-tflite` on a trained text run."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from absl import logging as absl_logging

from pipelines import cli, train


def test_export_and_bench_tflite(tiny, tmp_path, capsys):
    train.train(dataclasses.replace(tiny, cell="lstm", epochs=1, steps=3), verbose=0)
    out_dir = tmp_path / "export"
    assert (
        cli.run(
            [
                "export",
                f"--run_dir={tiny.run_dir}",
                "--format=tflite",
                "--quantize=none",
                f"--out_dir={out_dir}",
            ]
        )
        == 0
    )
    files = json.loads(capsys.readouterr().out)
    assert files["model.tflite"]["fused_lstm_layers"] == 1
    assert files["model.tflite"]["parity"]["max_abs_diff"]["step"] < 1e-4
    assert json.loads((out_dir / "manifest.json").read_text())["metadata"]["task"] == "text"

    assert cli.run(["bench-tflite", f"--model={out_dir / 'model.tflite'}", "--num_threads=1"]) == 0
    latency = json.loads(capsys.readouterr().out)
    assert latency["signature"] == "step" and latency["p50_us"] > 0
    assert cli.run(["bench-tflite"]) == 2
    assert "needs --model" in capsys.readouterr().err


def test_bench_hands_its_flags_to_the_benchmark_suite(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["bench", "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("Usage: lstm-zoo bench [--flags]") and "--tf_threads" in shown
    with pytest.raises(SystemExit, match="^lstm-zoo bench: error: .*'tf-threads'"):
        cli.run(["bench", "--tf-threads=1,2"])


@pytest.mark.parametrize("command", [c for c in cli.COMMANDS if c != "bench"])
def test_every_command_reports_a_wrong_flag_in_one_line(command, capsys):
    assert cli.run([command, "--no_such_flag=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [
        f"lstm-zoo {command}: error: Unknown command line flag "
        f"'no_such_flag' (see lstm-zoo {command} --help)"
    ]


def test_help_lists_commands_and_each_tasks_own_flags(capsys):
    assert cli.run(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {command} " in out for command in cli.COMMANDS)
    assert cli.run(["train", "--task=chorales", "--help"]) == 0
    music = capsys.readouterr().out
    assert "Flags of the chorales task" in music and "Folder of MIDI files" in music
    assert "Shakespeare" not in music and "ConvLSTM" not in music
    assert cli.run(["train", "--task=translation", "--help"]) == 0
    translation = capsys.readouterr().out
    assert "--dropout" in translation and "(default: 0.2)" in translation.split("--dropout")[1]
    assert cli.run(["train", "--task=moving_shapes", "--help"]) == 0
    assert "Stacked ConvLSTM layers" in capsys.readouterr().out
    assert cli.run(["export", "--help"]) == 0
    assert "--quantize" in capsys.readouterr().out


def test_tensorflow_start_up_lines_stay_off_the_terminal():
    script = "import sys; from pipelines import cli; sys.exit(cli.run(['list']))"
    quiet = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LSTM_ZOO_VERBOSE": ""},
    )
    assert quiet.returncode == 0 and "cifg_lstm" in quiet.stdout
    assert quiet.stderr.strip() == "", quiet.stderr
    loud = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LSTM_ZOO_VERBOSE": "1"},
    )
    assert "oneDNN" in loud.stderr or "cuda" in loud.stderr


def test_native_log_lines_are_dropped_and_the_rest_is_kept():
    script = "\n".join(
        [
            "import os, sys",
            "from pipelines import terminal",
            "with terminal.quiet_native_logs():",
            "    os.write(2, b'I0000 00:00:1795.5  4242 flatbuffer_export.cc:4302] Estimated\\n')",
            "    os.write(2, b'W0000 00:00:1795.6  4242 helpers.cc:364] "
            "Ignored output_format.\\n')",
            "    os.write(2, b'a real problem\\n')",
            "    print('python stderr', file=sys.stderr)",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stderr.splitlines()) == ["a real problem", "python stderr"]


def test_train_sizes_tensorflows_thread_pools_before_it_starts(corpus, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    flags = [
        "train",
        f"--data={corpus}",
        "--size=tiny",
        "--seq_len=16",
        "--batch_size=8",
        "--epochs=1",
        "--steps=2",
        "--validation_steps=1",
        "--intra_op_threads=1",
        "--inter_op_threads=3",
        f"--run_dir={run_dir}",
    ]
    script = "\n".join(
        [
            "import sys, tensorflow as tf",
            "from pipelines import cli",
            f"code = cli.run({flags!r})",
            "threading = tf.config.threading",
            "print(threading.get_intra_op_parallelism_threads(),",
            "      threading.get_inter_op_parallelism_threads())",
            "sys.exit(code)",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "1 3" and "not applied" not in result.stderr
    saved = json.loads((run_dir / "config.json").read_text())
    assert (saved["intra_op_threads"], saved["inter_op_threads"]) == (1, 3)
    # In a process whose TensorFlow has started, another size is logged, not an error.
    train.tf.constant(0) + 0
    warnings = []
    monkeypatch.setattr(absl_logging, "warning", lambda *args: warnings.append(args[0] % args[1:]))
    current = train.tf.config.threading.get_intra_op_parallelism_threads()
    train.set_threads(current + 5, 0)
    assert train.tf.config.threading.get_intra_op_parallelism_threads() == current
    assert len(warnings) == 1 and "not applied" in warnings[0]
