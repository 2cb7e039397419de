"""Training speed, memory and generation latency of every zoo cell, side by side with
keras.layers.LSTM/GRU and PyTorch nn.LSTM/GRU, in one run.

    lstm-zoo bench                                    # the full suite (about half an hour)
    lstm-zoo bench --cells=lstm,gru --sizes=256 --repeats=3
    lstm-zoo bench --cells=lstm,gru --rounds=3        # 3 interleaved passes, merged
    lstm-zoo bench --quick                            # a smoke run with tiny sizes

(`python -m benchmarks.run` takes the same flags.)

Task: a character LM (Embedding 96 -> 64, recurrent layer, Dense 96) learning to repeat the
previous token, batch 64, length 100, forward + backward + Adam; tokens/s over `--steps` steps,
`--repeats` times after `--warmup` steps, reported as median, min and max. Each case runs in a
fresh process, so its peak memory is its own. GFLOP/s counts the matmuls (6 flops per weight
per token) and is given as a fraction of the machine's measured float32 matmul peak. The loss
after the same number of steps shows that no speed was bought with accuracy (bfloat16).

Writes results.json, results.md and results.png to `--out` (benchmarks/results).
PyTorch is optional (`pip install -e .[bench]`); without it those rows are left out.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import fnmatch
import importlib.util
import multiprocessing
import os
import platform
import statistics
import sys

from benchmarks import pipelines
from benchmarks.measure import (
    matmul_peak,
    quiet,
    step_latency,
    tflite_latency,
    train_keras,
    train_torch,
)
from benchmarks.report import save
from pipelines import script_flags as flags

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
MODELS = {
    "zoo": "zoo.layers.Recurrent",
    "rnn": "keras.layers.RNN (same zoo cell)",
    "fused": "zoo.layers.Recurrent(fused=True): TF's BlockLSTM",
    "keras": "keras.layers.LSTM / GRU",
    "torch": "torch nn.LSTM / GRU",
    "torch-loop": "torch nn.LSTM with oneDNN off: its per-step loop instead of the fused kernel",
}


@dataclasses.dataclass(frozen=True)
class Settings:
    batch: int = 64
    length: int = 100
    warmup: int = 2
    steps: int = 3
    repeats: int = 5
    rounds: int = 1  # passes over all cases, each case in a fresh process per pass
    tf_threads: tuple = (0, 0)  # TensorFlow's (intra-op, inter-op) pools; 0 = its default


@dataclasses.dataclass(frozen=True)
class Case:
    model: str  # a key of MODELS
    cell: str  # a zoo cell name; "lstm" or "gru" for keras and torch
    units: int
    precision: str = "float32"  # or "mixed_bfloat16" (Keras policy; torch bf16 autocast)

    @property
    def label(self):
        name = {
            "keras": f"keras.{self.cell}",
            "torch": f"torch.{self.cell}",
            "torch-loop": f"torch.{self.cell} (no oneDNN)",
        }.get(self.model, self.cell if self.model == "zoo" else f"{self.cell} ({self.model})")
        return name + (" bf16" if self.precision != "float32" else "")


def _in_child(fn, *args):
    """`fn(*args)` in a fresh process (its own peak memory, no shared TF state)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(fn, *args).result()


# -- the suite ---------------------------------------------------------------------------------
def cases(cell_names, sizes, with_torch):
    """The training cases: baselines, every cell through Recurrent, and the evidence rows."""
    out = []
    for units in sizes:
        out += [Case("keras", "lstm", units), Case("keras", "gru", units)]
        if with_torch:
            out += [
                Case("torch", "lstm", units),
                Case("torch", "gru", units),
                Case("torch-loop", "lstm", units),
            ]
        out += [Case("zoo", name, units) for name in cell_names]
        if "lstm" in cell_names:  # the alternatives to Recurrent's loop, same cell
            out += [Case("fused", "lstm", units)]
        # keras.layers.RNN (TF's loop gradient) against Recurrent's own backward pass.
        out += [
            Case("rnn", n, units)
            for n in ("lstm", "gru", "peephole_lstm", "slstm")
            if n in cell_names
        ]
        out += [Case("keras", "lstm", units, "mixed_bfloat16")]
        out += [Case("zoo", n, units, "mixed_bfloat16") for n in ("lstm", "gru") if n in cell_names]
        if with_torch:
            out += [Case("torch", n, units, "mixed_bfloat16") for n in ("lstm", "gru")]
    return out


def machine():
    import keras
    import tensorflow as tf

    cpu = platform.processor()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = f"TF {tf.__version__}, Keras {keras.__version__}"
    if importlib.util.find_spec("torch"):
        import torch

        versions += f", PyTorch {torch.__version__}"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "versions": versions,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_start": os.getloadavg()[0],
    }


def define_flags(flags, values):
    """The suite's flags (see `pipelines.script_flags.parse`)."""
    flags.DEFINE_list("cells", ["*"], "Cell names or patterns (default: all).", flag_values=values)
    flags.DEFINE_list("sizes", ["256", "512"], "Hidden sizes H.", flag_values=values)
    flags.DEFINE_integer(
        "steps", Settings.steps, "Training steps per repetition.", lower_bound=1, flag_values=values
    )
    flags.DEFINE_integer(
        "repeats", Settings.repeats, "Timed repetitions.", lower_bound=1, flag_values=values
    )
    flags.DEFINE_integer(
        "rounds",
        Settings.rounds,
        "Passes over all cases (fresh processes, interleaved).",
        lower_bound=1,
        flag_values=values,
    )
    flags.DEFINE_string("out", RESULTS, "Results folder.", flag_values=values)
    flags.DEFINE_string(
        "tf_threads",
        "0,0",
        "TensorFlow's intra- and inter-op threads "
        "(INTRA,INTER) for the Keras and zoo cases; 0,0: TensorFlow's own "
        "choice.",
        flag_values=values,
    )
    flags.DEFINE_boolean(
        "torch", True, "Include PyTorch's rows (--notorch leaves them out).", flag_values=values
    )
    flags.DEFINE_boolean(
        "quick",
        False,
        "Smoke run: H=32, batch 8, length 10, 1 step x 2, no bfloat16 rows.",
        flag_values=values,
    )


def main(argv=None, prog="python -m benchmarks.run"):
    args = flags.parse(argv, prog, __doc__, define_flags)
    quiet()
    import zoo

    patterns = args.cells
    cell_names = [
        n
        for n in zoo.cells.names()
        if any(fnmatch.fnmatch(n, p) for p in patterns) and zoo.cells.get(n).input_rank == 1
    ]  # vectors only
    if not cell_names:
        raise SystemExit(
            f"--cells={','.join(args.cells)} matches no cell; known: {', '.join(zoo.cells.names())}"
        )
    try:
        sizes = [int(s) for s in args.sizes]
    except ValueError:
        raise SystemExit(f"--sizes={','.join(args.sizes)}: expected whole numbers") from None
    with_torch = args.torch and importlib.util.find_spec("torch") is not None
    tf_threads = flags.threads(args.tf_threads)
    settings = Settings(
        steps=args.steps, repeats=args.repeats, rounds=args.rounds, tf_threads=tf_threads
    )
    todo = cases(cell_names, sizes, with_torch)
    if args.quick:
        settings = Settings(batch=8, length=10, warmup=1, steps=1, repeats=2, tf_threads=tf_threads)
        sizes = [32]
        todo = [c for c in cases(cell_names, sizes, with_torch) if c.precision == "float32"]
    os.makedirs(args.out, exist_ok=True)
    report = {"machine": machine(), "settings": dataclasses.asdict(settings), "training": []}
    report["matmul"] = _in_child(matmul_peak, max(sizes))
    report["peak_gflops"] = max(v for k, v in report["matmul"].items() if "float32" in k)
    report["latency"] = _in_child(step_latency, max(sizes), with_torch)
    try:
        report["latency"].update(_in_child(tflite_latency, max(sizes)))
    except Exception as error:  # noqa: BLE001 - the export is optional here
        print(f"TFLite latency skipped: {error}", file=sys.stderr)
    report["pipelines"] = _in_child(pipelines.measure, args.quick)
    rounds = [[] for _ in todo]
    for r in range(settings.rounds):  # round-robin: a slow spell of the machine hits all cases
        for i, case in enumerate(todo):
            train = train_torch if case.model.startswith("torch") else train_keras
            rounds[i].append(_in_child(train, case, settings))
            report["training"] = [merge(rows) for rows in rounds if rows]
            save(report, args.out)  # partial results survive an interrupted run
            print(
                f"[round {r + 1}/{settings.rounds}, {i + 1}/{len(todo)}] {case.label} "
                f"H={case.units}: {rounds[i][-1]['tokens_per_s']['median']:,.0f} tokens/s",
                flush=True,
            )
    print(save(report, args.out))
    return report


def merge(rows):
    """One case's rows from several rounds as one: medians over every repetition of every
    round, CPU rate and memory as their medians, the loss of the first round."""
    rates = [rate for row in rows for rate in row["rates"]]
    median = statistics.median(rates)
    middle = lambda key: statistics.median(row[key] for row in rows)
    return {
        **rows[0],
        "tokens_per_s": {"median": median, "min": min(rates), "max": max(rates)},
        "rates": rates,
        "tokens_per_cpu_s": middle("tokens_per_cpu_s"),
        "gflops": rows[0]["gflops"] * median / rows[0]["tokens_per_s"]["median"],
        "peak_rss_mib": round(middle("peak_rss_mib")),
        "train_mib": round(middle("train_mib")),
    }


if __name__ == "__main__":
    main()
