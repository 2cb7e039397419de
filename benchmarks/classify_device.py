"""Device figures of an exported classifier: LiteRT and ONNX Runtime, one thread each.

    figures = device_figures(model, export_dir, sequences, labels, rounds=5)

Per file: accuracy on the labelled sequences, size, the peak memory a fresh process adds to
load the file and classify one sequence (the peak resident set, reset once the runtime is
imported, minus the resident set then; in a child process that imports only the runtime), and
the per-sequence latency at one thread: the median over
`rounds` interleaved rounds (LiteRT file, ONNX Runtime, the next file...) of each round's
median over the sequences. The ONNX model is the same weights through tf2onnx
(`onnx_model`), from the classifier's plain (unfused) TensorFlow graph.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from zoo.export.classification import ClassifierModule
from zoo.export.runtime import classify_file, window

# What the child process runs: load the runtime, reset the peak resident set (Linux:
# /proc/self/clear_refs), load the model and classify one window, print the peak's growth.
_PEAK = """
import json, sys
import numpy as np
kind, path, x, length = sys.argv[1], sys.argv[2], np.load(sys.argv[3]), int(sys.argv[4])
if kind == "tflite":
    from ai_edge_litert.interpreter import Interpreter
else:
    import onnxruntime as ort

def kib(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith(field))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = kib("VmRSS:")
if kind == "tflite":
    runner = Interpreter(model_path=path, num_threads=1).get_signature_runner("classify")
    runner(x=x, length=np.array([length], np.int32))
else:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    session.run(None, {"x": x, "length": np.array([length], np.int32)})
print(json.dumps((kib("VmHWM:") - before) * 1024))
"""


def onnx_model(model, seq_len, path) -> str:
    """Write the classifier's `classify` graph (unfused) as ONNX with tf2onnx; the path."""
    import tf2onnx

    module = ClassifierModule(model, seq_len, "classify", fuse="none")
    proto, _ = tf2onnx.convert.from_function(
        module.classify, input_signature=module.classify.input_signature, opset=17, output_path=path
    )
    return path


def peak_memory(kind, path, x, length) -> int:
    """Bytes of peak resident memory a fresh process adds loading `path` and classifying one
    window."""
    with tempfile.TemporaryDirectory() as tmp:
        array = os.path.join(tmp, "x.npy")
        np.save(array, x)
        done = subprocess.run(
            [sys.executable, "-c", _PEAK, kind, path, array, str(length)],
            capture_output=True,
            text=True,
            check=True,
        )
    return int(json.loads(done.stdout.strip().splitlines()[-1]))


class _OnnxClassifier:
    def __init__(self, path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def __call__(self, x, length):
        return self.session.run(None, {"x": x, "length": np.array([length], np.int32)})[0][0]


class _LiteRTClassifier:
    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter

        self.runner = Interpreter(model_path=path, num_threads=1).get_signature_runner("classify")

    def __call__(self, x, length):
        return self.runner(x=x, length=np.array([length], np.int32))["probabilities"][0]


def _round(classifier, windows) -> float:
    times = []
    for x, length in windows:
        start = time.perf_counter()
        classifier(x, length)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def _streaming_step_us(path, channels, steps=300) -> float:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path, num_threads=1).get_signature_runner("step")
    details = runner.get_input_details()
    states = {n: np.zeros(d["shape"], d["dtype"]) for n, d in details.items() if n != "x"}
    x, times = np.zeros((1, channels), np.float32), []
    for _ in range(steps):
        start = time.perf_counter()
        outputs = runner(x=x, **states)
        times.append(time.perf_counter() - start)
        states = {n: outputs[n] for n in states}
    return statistics.median(times[20:]) * 1e6


def device_figures(model, export_dir, sequences, labels, rounds=5) -> list[dict]:
    """Rows of figures for every classify and streaming file of `export_dir` and for the
    model in ONNX Runtime (see the module docstring)."""
    manifest = json.load(open(os.path.join(export_dir, "manifest.json")))
    seq_len = manifest["seq_len"]
    windows = [(window(x, seq_len)[None], min(n, seq_len)) for x, n in sequences]
    # beside the export folder: anything else in there would stop the next export
    onnx_path = onnx_model(
        model, seq_len, os.path.join(os.path.dirname(os.path.abspath(export_dir)), "model.onnx")
    )
    runners = {"onnxruntime": _OnnxClassifier(onnx_path)}
    runners.update(
        {
            name: _LiteRTClassifier(os.path.join(export_dir, name))
            for name, entry in manifest["files"].items()
            if entry["signature"] == "classify"
        }
    )
    latencies = {name: [] for name in runners}
    for _ in range(rounds):  # interleaved: every runtime sees the same machine load
        for name, classifier in runners.items():
            latencies[name].append(_round(classifier, windows))
    rows = []
    for name, classifier in runners.items():
        probabilities = np.array([classifier(x, n) for x, n in windows])
        path = onnx_path if name == "onnxruntime" else os.path.join(export_dir, name)
        rows.append(
            {
                "file": os.path.basename(path),
                "runtime": "ONNX Runtime" if name == "onnxruntime" else "LiteRT",
                "quantize": "none"
                if name == "onnxruntime"
                else manifest["files"][name]["quantize"],
                "accuracy": float(np.mean(probabilities.argmax(-1) == np.asarray(labels))),
                "bytes": os.path.getsize(path),
                "peak_memory_bytes": peak_memory(
                    "onnx" if name == "onnxruntime" else "tflite", path, *windows[0]
                ),
                "latency_us": statistics.median(latencies[name]),
                "fused_lstm_layers": manifest["files"].get(name, {}).get("fused_lstm_layers"),
            }
        )
    for name, entry in manifest["files"].items():
        if entry["signature"] != "step":
            continue
        path = os.path.join(export_dir, name)
        probabilities = classify_file(path, sequences, num_threads=1, signature="step")
        rows.append(
            {
                "file": name,
                "runtime": "LiteRT (streaming)",
                "quantize": entry["quantize"],
                "accuracy": float(np.mean(probabilities.argmax(-1) == np.asarray(labels))),
                "bytes": os.path.getsize(path),
                "peak_memory_bytes": None,
                "latency_us": _streaming_step_us(path, sequences[0][0].shape[1]),
                "fused_lstm_layers": 0,
                "per": "sample",
            }
        )
    return rows


def table(rows) -> str:
    """Device rows as a Markdown table."""
    lines = [
        "| file | runtime | accuracy | size KiB | peak memory KiB | latency µs (1 thread) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        memory = (
            "" if row["peak_memory_bytes"] is None else f"{row['peak_memory_bytes'] / 1024:.0f}"
        )
        per = " per sample" if row.get("per") == "sample" else " per sequence"
        lines.append(
            f"| {row['file']} | {row['runtime']} | {row['accuracy']:.4f} | "
            f"{row['bytes'] / 1024:.0f} | {memory} | {row['latency_us']:.0f}{per} |"
        )
    return "\n".join(lines)


def main(argv=None):
    """`python -m benchmarks.classify_device RUN_DIR [--rounds=N]`: export a classify run
    (float32, float16, dynamic, int8, each scored on the test split) and print its device
    figures as a Markdown table."""
    from pipelines import script_flags as flags
    from pipelines.classify import ClassifyTask
    from pipelines.classify_data import sequences_of
    from pipelines.export import export_run
    from pipelines.rundir import load_checkpoint
    from pipelines.train import load_config

    def define_flags(flags, values):
        flags.DEFINE_integer(
            "rounds", 5, "Interleaved latency rounds.", lower_bound=1, flag_values=values
        )

    args = flags.parse(
        argv,
        "python -m benchmarks.classify_device",
        main.__doc__,
        define_flags,
        positional=("run_dir",),
    )
    export_dir = os.path.join(args.run_dir, "export")
    export_run(
        args.run_dir,
        export_dir,
        format="tflite",
        quantize=["none", "float16", "dynamic", "int8"],
        allow_quality_loss=True,
    )
    config = load_config(args.run_dir)
    test = sequences_of(ClassifyTask().prepare(config, args.run_dir).test)
    rows = device_figures(
        load_checkpoint(args.run_dir),
        export_dir,
        [t[:2] for t in test],
        [t[2] for t in test],
        args.rounds,
    )
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
