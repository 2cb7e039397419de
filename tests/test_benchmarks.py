"""The benchmark suite measures the right things and writes its three files (tiny sizes)."""

import dataclasses
import json
import os

import pytest

from benchmarks import measure, run

TINY = run.Settings(batch=2, length=3, warmup=1, steps=1, repeats=2)


def test_cases_cover_every_cell_and_the_baselines():
    cases = run.cases(["lstm", "gru", "cifg_lstm"], [8, 16], with_torch=True)
    labels = {(c.label, c.units) for c in cases}
    for units in (8, 16):
        assert {
            ("keras.lstm", units),
            ("torch.gru", units),
            ("cifg_lstm", units),
            ("lstm (fused)", units),
            ("keras.lstm bf16", units),
            ("torch.lstm (no oneDNN)", units),
        } <= labels
    without = run.cases(["lstm"], [8], with_torch=False)
    assert not any(c.model.startswith("torch") for c in without)


def test_training_row():
    case = run.Case("zoo", "gru", 4)
    row = run.train_keras(case, TINY)
    assert row["label"] == case.label
    times = row["tokens_per_s"]
    assert 0 < times["min"] <= times["median"] <= times["max"]
    # 6 flops per matmul weight per token: kernel, recurrent kernel and the Dense layer.
    weights = 3 * (measure.EMBED * 4 + 4 * 4) + 4 * measure.VOCAB
    assert row["gflops"] == pytest.approx(6 * weights * times["median"] / 1e9)
    assert row["loss"] > 0 and row["peak_rss_mib"] > 0


def test_report_files(tmp_path):
    row = {**measure._result(run.Case("keras", "lstm", 8), [1.0, 3.0, 2.0], 1.5, 4.0, 10, 0.0)}
    torch_row = {**row, "model": "torch", "label": "torch.lstm"}
    report = {
        "machine": {
            "cpu": "cpu",
            "cores": 2,
            "versions": "v",
            "date": "d",
            "load_average_at_start": 0.5,
        },
        "settings": dataclasses.asdict(TINY),
        "training": [row, torch_row],
        "matmul": {"tf float32 2048x2048x2048": 100.0},
        "peak_gflops": 100.0,
        "latency": {"zoo lstm (tf.function)": 300.0},
        "pipelines": {
            "text": {
                "unit": "characters",
                "pipeline_per_s": 2e6,
                "model_per_s": 1e4,
                "ratio": 200.0,
            }
        },
    }
    table = run.save(report, str(tmp_path))
    assert "keras.lstm | 2 (1-3) | 1.00x | 1.00x" in table
    assert "Machine: cpu, 2 cores" in table and "zoo lstm (tf.function) | 300.0" in table
    assert "| text | characters | 2,000,000 | 10,000 | 200.0x |" in table
    assert json.loads((tmp_path / "results.json").read_text())["training"][0]["loss"] == 4.0
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(os.listdir(tmp_path)) == ["results.json", "results.md", "results.png"]


def test_unknown_cells_are_refused():
    with pytest.raises(SystemExit, match="matches no cell"):
        run.main(["--cells=no_such_cell"])


def test_rounds_merge_every_repetition():
    case = run.Case("zoo", "lstm", 8)
    first = measure._result(case, [1.0, 2.0, 9.0], 5.0, 4.0, 10, 0.0)
    second = measure._result(case, [3.0, 4.0, 5.0], 7.0, 4.5, 10, 0.0)
    merged = run.merge([first, second])
    assert merged["tokens_per_s"] == {"median": 3.5, "min": 1.0, "max": 9.0}
    assert merged["tokens_per_cpu_s"] == 6.0 and merged["loss"] == 4.0
    assert merged["gflops"] == pytest.approx(6 * 10 * 3.5 / 1e9)


def test_tensorflow_thread_pools_are_sized_in_each_case_process():
    case = run.Case("zoo", "lstm", 4)
    row = run._in_child(run.train_keras, case, dataclasses.replace(TINY, tf_threads=(1, 2)))
    assert row["label"] == "lstm" and row["tokens_per_s"]["median"] > 0
    with pytest.raises(SystemExit, match="^--tf_threads=1: expected INTRA,INTER"):
        run.main(["--tf_threads=1"])


def test_layer_timing_prints_forward_and_backward_per_size(capsys):
    from benchmarks import layer

    layer.main(
        ["--cell=gru", "--units=4,6", "--batch=2", "--length=3", "--features=2", "--calls=1"]
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" float32")[0] for line in lines] == [
        "Recurrent(gru) H=4",
        "Recurrent(gru) H=6",
    ]
    for line in lines:
        forward, both = (float(part.split()[-2]) for part in line.split(": ")[1].split(", "))
        assert 0 < forward and 0 < both
