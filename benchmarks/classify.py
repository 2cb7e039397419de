"""Sequence classification: the zoo's LSTM-FCN against aeon's peers on the archive's splits,
and its exported files on the device runtimes, in one run.

    python -m benchmarks.classify                       # the three packaged sets (~1 h here)
    python -m benchmarks.classify --quick               # a smoke run with tiny settings
    python -m benchmarks.classify --datasets basic_motions --peers minirocket,dtw

For each packaged set (`pipelines.datasets.sensors`, the archive's own train/test split):
  - the zoo classifier (`lstm-zoo train --task=classify`, settings in ZOO_SETTINGS) trained on
    the training file less its validation sequences, which pick the best epoch;
  - aeon's MiniRocket, ROCKET, 1-NN DTW (full window) and InceptionTime, each fitted on the
    whole training file (they need no validation split) with one thread; MiniRocket, ROCKET
    and InceptionTime read unequal-length sets padded with each series' mean (aeon's Padder,
    as the archive's _eq versions); 1-NN DTW reads them as they are;
  - accuracy and macro-F1 on the test file, training time (wall and process CPU) and
    inference time per sequence (the whole test file predicted at once, divided by its size);
  - the device figures of the trained zoo model (`benchmarks.classify_device`): its float32,
    float16 and int8 `classify` files and streaming file in LiteRT and the same weights in
    ONNX Runtime, one thread each.
Writes classify.json,
classify.csv and classify.md to `--out` (benchmarks/results/classify).
"""

from __future__ import annotations

import csv
import json
import os
import platform
import tempfile
import time

import numpy as np

from benchmarks.classify_device import table
from pipelines import script_flags as flags

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "classify")
DATASETS = ("basic_motions", "pickup_gesture_wiimote_z", "japanese_vowels")
PEERS = ("minirocket", "rocket", "dtw", "inception_time")
# The zoo's settings (ClassifyConfig fields) for the benchmark, and the tiny ones of --quick.
ZOO_SETTINGS = {
    "fcn": True,
    "pooling": "attention",
    "units": 64,
    "filters": 64,
    "epochs": 40,
    "steps": 10,
    "batch_size": 16,
}
# InceptionTime's epochs per network (its paper: 1500; 5 networks): what fits this CPU.
INCEPTION_EPOCHS = 200
QUICK = {"epochs": 2, "steps": 2, "units": 8, "filters": 4, "batch_size": 8}


def _aeon_input(rows, length=None):
    """aeon's collection: (n, channels, time) when equal length or padded to `length`, else a
    list of (channels, time) arrays."""
    series = [np.asarray(r["series"], np.float64).T for r in rows]
    if length is None:
        same = len({s.shape[1] for s in series}) == 1
        return np.stack(series) if same else series
    from aeon.transformations.collection.unequal_length import Padder

    return Padder(padded_length=length, fill_value="mean").fit_transform(series)


def _peer(name, inception_epochs, seed):
    if name == "minirocket":
        from aeon.classification.convolution_based import MiniRocketClassifier

        return MiniRocketClassifier(random_state=seed, n_jobs=1), True
    if name == "rocket":
        from aeon.classification.convolution_based import RocketClassifier

        return RocketClassifier(random_state=seed, n_jobs=1), True
    if name == "dtw":
        from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

        return KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1, n_jobs=1), False
    if name == "inception_time":
        from aeon.classification.deep_learning import InceptionTimeClassifier

        return InceptionTimeClassifier(
            n_epochs=inception_epochs, random_state=seed, file_path=tempfile.mkdtemp()
        ), True
    raise ValueError(f"Unknown peer {name!r}; expected some of {', '.join(PEERS)}")


def run_peer(name, train, test, inception_epochs=INCEPTION_EPOCHS, seed=0) -> dict:
    """Fit peer `name` on the `train` rows and score it on the `test` rows."""
    from pipelines.classify import scores

    estimator, needs_equal = _peer(name, inception_epochs, seed)
    length = max(len(r["series"]) for r in train + test) if needs_equal else None
    x_train, x_test = _aeon_input(train, length), _aeon_input(test, length)
    if needs_equal and isinstance(x_train, list):
        x_train, x_test = np.stack(x_train), np.stack(x_test)
    y_train = np.array([r["label"] for r in train])
    wall, cpu = time.monotonic(), time.process_time()
    estimator.fit(x_train, y_train)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    start = time.monotonic()
    predicted = estimator.predict(x_test)
    per_sequence = (time.monotonic() - start) / len(test)
    classes = sorted(set(y_train))
    index = {c: i for i, c in enumerate(classes)}
    truth = np.array([index[r["label"]] for r in test])
    return {
        "model": name,
        **scores(truth, np.array([index[p] for p in predicted]), len(classes)),
        "train_seconds": wall,
        "train_cpu_seconds": cpu,
        "inference_us_per_sequence": per_sequence * 1e6,
    }


def run_zoo(dataset, runs, settings, rounds) -> tuple[dict, list[dict]]:
    """Train the zoo classifier on `dataset` in runs/<dataset>, export it and measure it;
    (row, device rows)."""
    from benchmarks.classify_device import device_figures
    from pipelines.classify import ClassifyConfig, ClassifyTask, predict
    from pipelines.classify_data import sequences_of
    from pipelines.export import export_run
    from pipelines.rundir import load_checkpoint
    from pipelines.train import train

    run_dir = os.path.join(runs, dataset)
    config = ClassifyConfig(dataset=dataset, run_dir=run_dir, **settings)
    wall, cpu = time.monotonic(), time.process_time()
    _, metrics = train(config, verbose=0)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    model = load_checkpoint(run_dir)
    data = ClassifyTask().prepare(config, run_dir)
    start = time.monotonic()
    truth, _ = predict(model, data.test)
    per_sequence = (time.monotonic() - start) / len(truth)
    row = {
        "model": "zoo " + _describe(config),
        **{k: metrics["test"][k] for k in ("accuracy", "macro_f1", "balanced_accuracy")},
        "train_seconds": wall,
        "train_cpu_seconds": cpu,
        "inference_us_per_sequence": per_sequence * 1e6,
        "parameters": int(model.count_params()),
        "best_epoch": metrics["best"]["epoch"],
    }
    export_dir = os.path.join(run_dir, "export")
    export_run(run_dir, export_dir, quantize=["none", "float16", "int8"], allow_quality_loss=True)
    test = sequences_of(data.test)
    device = device_figures(model, export_dir, [t[:2] for t in test], [t[2] for t in test], rounds)
    return row, device


def _describe(config) -> str:
    parts = [
        f"{config.cell} {config.units}",
        "bidirectional" if config.bidirectional else "",
        f"FCN {config.filters}" if config.fcn else "",
        f"{config.pooling} pooling",
    ]
    return ", ".join(p for p in parts if p)


def markdown(report) -> str:
    """The report as Markdown tables: accuracy and time, then the device figures."""
    lines = [f"Machine: {report['machine']}; {report['date']}.", ""]
    for dataset, result in report["datasets"].items():
        lines += [
            f"### {dataset}",
            "",
            "| model | accuracy | macro-F1 | train wall s | train CPU s | inference µs/sequence |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in result["models"]:
            if "error" in row:
                lines.append(f"| {row['model']} | failed: {row['error'][:80]} | | | | |")
                continue
            lines.append(
                f"| {row['model']} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} | "
                f"{row['train_seconds']:.1f} | {row['train_cpu_seconds']:.1f} | "
                f"{row['inference_us_per_sequence']:.0f} |"
            )
        lines += ["", table(result["device"])]
        lines.append("")
    return "\n".join(lines)


def save(report, out):
    """Write classify.json, classify.csv (one row per model or file) and classify.md."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "classify.json"), "w") as f:
        json.dump(report, f, indent=2)
    rows = [
        {"dataset": d, "kind": kind, **row}
        for d, result in report["datasets"].items()
        for kind in ("models", "device")
        for row in result[kind]
    ]
    fields = sorted({key for row in rows for key in row}, key=lambda k: (k != "dataset", k))
    with open(os.path.join(out, "classify.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(out, "classify.md"), "w") as f:
        f.write(markdown(report) + "\n")


def define_flags(flags, values):
    """The flags of `python -m benchmarks.classify` (see `pipelines.script_flags.parse`)."""
    flags.DEFINE_list(
        "datasets", list(DATASETS), "Datasets (zoo_ prefix left out).", flag_values=values
    )
    flags.DEFINE_list("peers", list(PEERS), "Peer models.", flag_values=values)
    flags.DEFINE_boolean("quick", False, "Tiny settings (a smoke run).", flag_values=values)
    flags.DEFINE_integer(
        "inception_epochs",
        INCEPTION_EPOCHS,
        "InceptionTime's epochs.",
        lower_bound=1,
        flag_values=values,
    )
    flags.DEFINE_integer(
        "rounds", 5, "Interleaved latency rounds.", lower_bound=1, flag_values=values
    )
    flags.DEFINE_string("out", RESULTS, "Results folder.", flag_values=values)
    flags.DEFINE_string(
        "runs",
        os.path.join("runs", "classify-benchmark"),
        "Where the zoo's runs and their exports go.",
        flag_values=values,
    )


def main(argv=None):
    """`python -m benchmarks.classify`: see the module docstring."""
    args = flags.parse(argv, "python -m benchmarks.classify", __doc__, define_flags)
    from pipelines import datasets

    settings = {**ZOO_SETTINGS, **(QUICK if args.quick else {})}
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "settings": settings,
        "datasets": {},
    }
    for dataset in args.datasets:
        name = f"zoo_{dataset}"
        train = datasets.examples(name, "train") + datasets.examples(name, "validation")
        test = datasets.examples(name, "test")
        zoo, device = run_zoo(dataset, args.runs, settings, 1 if args.quick else args.rounds)
        models = [zoo]
        for peer in args.peers:
            try:
                models.append(
                    run_peer(peer, train, test, 2 if args.quick else args.inception_epochs)
                )
            except Exception as error:  # noqa: BLE001 - a peer that fails is reported, not fatal
                models.append({"model": peer, "error": f"{type(error).__name__}: {error}"})
            print(dataset, json.dumps(models[-1]), flush=True)
        report["datasets"][dataset] = {"models": models, "device": device}
        save(report, args.out)
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
