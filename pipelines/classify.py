"""Sequence classification of sensor (and other multivariate) sequences: the `classify` task.

The packaged sets are the archive's BasicMotions, PickupGestureWiimoteZ and JapaneseVowels
(`pipelines.datasets.sensors`, shipped in the aeon wheel); any `.ts` or long-format CSV file
(or a folder of an archive *_TRAIN / *_TEST pair) works with --data. Sequences keep their own
lengths: a batch is padded to its longest sequence and the model masks the rest
(`zoo.models.classifier.SequenceClassifier`). Classes are weighted against imbalance
(n / (K n_c), scikit-learn's "balanced"); the test split is scored by accuracy, macro-F1 and a
confusion-matrix PNG in the run directory.

    lstm-zoo train --task=classify --dataset=basic_motions --cell=lstm --fcn
    lstm-zoo sample --run_dir=DIR --data=new_gestures.csv        # classifies a file
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from pipelines import datasets
from pipelines.classify_data import (
    BUCKET,
    class_weights,
    eval_dataset,
    padded,
    sequences_of,
    train_stream,
)
from pipelines.configs import TrainConfig, option
from pipelines.datasets.sensor_files import check_known_labels
from pipelines.figures import new_figure, save_png
from pipelines.tasks import Task, TaskData, register_task
from zoo.files import atomic_write, read_json
from zoo.models.classifier import FCN_KERNELS, SequenceClassifier

CLASSES = "classes.json"
CONFUSION = "confusion.png"
SPLITS = ("train", "validation", "test")
# --dataset -> the packaged dataset (pipelines.datasets.sensors).
DATASETS = {
    "basic_motions": "zoo_basic_motions",
    "pickup_gesture_wiimote_z": "zoo_pickup_gesture_wiimote_z",
    "japanese_vowels": "zoo_japanese_vowels",
}


@dataclass
class ClassifyConfig(TrainConfig):
    """A classifier of multivariate, variable-length sequences (sensor windows)."""

    task: str = option("classify", "Task to train (see `lstm-zoo list`).")
    dataset: str = option(
        "basic_motions",
        "Packaged set: basic_motions, pickup_gesture_wiimote_z or japanese_vowels.",
        tuple(DATASETS),
    )
    data: str | None = option(
        None,
        "A .ts or long-format CSV file (sequence_id, t, "
        "channels..., label), or a folder of one *_TRAIN and one *_TEST "
        "such file; default the packaged --dataset.",
    )
    epochs: int = option(40, "Number of epochs (an epoch is `steps` batches).")
    steps: int | None = option(10, "Batches per epoch; 0 = one pass over the training data.")
    validation_steps: int | None = option(0, "Validation batches per epoch; 0 = all.")
    batch_size: int = option(16, "Global batch size (split over replicas).")
    learning_rate: float = option(3e-3, "Learning rate (the peak, with a schedule).")
    cell: str = option("lstm", "Registered cell name.")
    units: int = option(
        64, "Hidden units per recurrent layer (per direction).", between=(1, 65_536)
    )
    layers: int = option(1, "Stacked recurrent layers.", between=(1, 64))
    bidirectional: bool = option(False, "Read sequences both ways (no streaming export then).")
    pooling: str = option(
        "last",
        "last (the state at the last step) or attention (weighted over every step).",
        ("last", "attention"),
    )
    fcn: bool = option(
        False,
        "LSTM-FCN: add a convolutional branch of three causal blocks "
        "(filters f, 2f, f; kernels 8, 5, 3) beside the recurrent one.",
    )
    filters: int = option(64, "With --fcn: f, the first block's filters.", between=(1, 16_384))
    dropout: float = option(
        0.2, "Dropout after the recurrent layers and before the output.", between=(0.0, 0.95)
    )
    class_weights: str = option(
        "balanced",
        "balanced (n / (K n_c): rare classes count as much as common ones) or none.",
        ("balanced", "none"),
    )


# int8 calibration reads at least this many training sequences (all of a small training set).
CALIBRATION_SEQUENCES = 64


def _natural(label):
    return (0, float(label), label) if _number(label) else (1, 0.0, label)


def _number(text) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def predict(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """(true labels, probabilities (N, K)) of `model` over a dataset of (inputs, labels)."""
    truth, probabilities = [], []
    for inputs, labels in dataset:
        probabilities.append(tf.nn.softmax(model(inputs, training=False)).numpy())
        truth.append(np.asarray(labels))
    return np.concatenate(truth), np.concatenate(probabilities)


def scores(truth, predicted, classes: int) -> dict:
    """Accuracy, macro-F1 and balanced accuracy of predicted labels."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    return {
        "accuracy": float(np.mean(truth == predicted)),
        "macro_f1": float(
            f1_score(truth, predicted, labels=range(classes), average="macro", zero_division=0)
        ),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
    }


def save_confusion(truth, predicted, names, path, title=None):
    """The confusion matrix (rows: true class, columns: predicted) as a PNG, atomically."""
    from sklearn.metrics import ConfusionMatrixDisplay

    size = 2.5 + 0.45 * len(names)
    figure, axes = new_figure(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        truth,
        predicted,
        labels=range(len(names)),
        display_labels=names,
        ax=axes,
        colorbar=False,
        cmap="Blues",
        xticks_rotation="vertical",
    )
    if title:
        axes.set_title(title, fontsize=9)
    return save_png(figure, path, dpi=90)


@register_task
class ClassifyTask(Task):
    """Classification of multivariate sequences; see `ClassifyConfig` for the settings."""

    name, config_class = "classify", ClassifyConfig
    export_kind = "classifier"
    max_quality_loss = 1.0  # accuracy points (`zoo.models.protocol.Classifier.quality`)

    def dataset(self, config) -> str:
        """The dataset the task reads: the packaged --dataset, or a local --data."""
        return "zoo_sensor_files" if config.data else DATASETS[config.dataset]

    def inputs(self, config, split=True):
        return (CLASSES,)

    def source(self, config) -> str:
        """What the user named: the --data path, or the packaged dataset."""
        return config.data or self.dataset(config)

    def read(self, config, split=True) -> dict[str, list[dict]]:
        """The examples of each split, or of the whole --data as "test" without `split`."""
        name = self.dataset(config)
        present = datasets.prepare(name, config.data).info.splits  # empty ones are left out
        if split:
            for part in SPLITS:
                if part not in present:
                    raise ValueError(
                        f"{self.source(config)}: no sequence for a {part} split; "
                        "each class needs at least 3 sequences (or pass a folder "
                        "of *_TRAIN and *_TEST files)"
                    )
            return {part: datasets.examples(name, part, config.data) for part in SPLITS}
        rows = [
            row
            for part in SPLITS
            if part in present
            for row in datasets.examples(name, part, config.data)
        ]
        return {"test": sorted(rows, key=lambda row: row["row"])}

    def classes(self, config, run_dir, rows) -> list[str]:
        """The class names of the run (classes.json), derived from the training split once."""
        path = os.path.join(run_dir, CLASSES)
        if os.path.isfile(path):
            return read_json(path, expect=list)
        names = sorted({row["label"] for row in rows}, key=_natural)
        atomic_write(path, json.dumps(names) + "\n")
        return names

    def prepare(self, config, run_dir, split=True):
        splits = self.read(config, split)
        names = self.classes(config, run_dir, splits.get("train", []))
        index = {name: i for i, name in enumerate(names)}
        arrays = {}
        for part, rows in splits.items():
            check_known_labels(self.source(config), rows, index)
            channels = {row["series"].shape[1] for row in rows}
            if len(channels) > 1:
                raise ValueError(
                    f"{self.source(config)}: sequences of {sorted(channels)} "
                    "channels in one dataset (ragged channels)"
                )
            arrays[part] = (
                *padded([row["series"] for row in rows], BUCKET),
                np.array([index[row["label"]] for row in rows], np.int32),
            )
        batch = config.batch_size
        data = TaskData(
            train=None,
            validation=None,
            test=eval_dataset(*arrays["test"], batch),
            info={
                "classes": names,
                "split": split,
                "channels": arrays["test"][0].shape[2],
                "ids": [r["id"] for r in splits["test"]],
            },
        )
        if split:
            features, lengths, labels = arrays["train"]
            valid = np.arange(features.shape[1])[None, :] < lengths[:, None]
            readings = features[valid]
            weights = (
                class_weights(labels, len(names))
                if config.class_weights == "balanced"
                else np.ones(len(names))
            )[labels].astype(np.float32)
            data.train = lambda step: train_stream(
                features, lengths, labels, weights, batch, config.seed, step
            )
            data.validation = eval_dataset(*arrays["validation"], batch)
            data.examples = len(labels)
            data.steps_per_pass = max(1, len(labels) // batch)
            data.info.update(
                mean=readings.mean(0).tolist(),
                std=np.maximum(readings.std(0), 1e-6).tolist(),
                max_length=int(max(lengths.max(), arrays["validation"][1].max())),
            )
        return data

    def build_model(self, config, data):
        filters = (config.filters, 2 * config.filters, config.filters) if config.fcn else ()
        model = SequenceClassifier(
            len(data.info["classes"]),
            data.info["channels"],
            cell=config.cell,
            units=config.units,
            layers=config.layers,
            bidirectional=config.bidirectional,
            pooling=config.pooling,
            conv_filters=filters,
            conv_kernels=FCN_KERNELS if config.fcn else (),
            dropout=config.dropout,
            mean=data.info.get("mean"),
            std=data.info.get("std"),
        )
        model(
            {
                "features": np.zeros((1, 4, data.info["channels"]), "float32"),
                "lengths": np.array([4], "int32"),
            }
        )
        return model

    def metrics(self, config):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def headline(self, config):
        return "accuracy", False

    def score(self, config, model, data):
        """Accuracy, macro-F1 and balanced accuracy on the test split; after training, its
        confusion matrix goes to run_dir/confusion.png."""
        names = data.info["classes"]
        truth, probabilities = predict(model, data.test)
        predicted = probabilities.argmax(-1)
        if data.info["split"] and config.run_dir and os.path.isdir(config.run_dir):
            save_confusion(
                truth,
                predicted,
                names,
                os.path.join(config.run_dir, CONFUSION),
                f"{self.source(config)}: test split",
            )
        return scores(truth, predicted, len(names))

    def sequence_length(self, config):
        return None

    def sample(self, config, run_dir, model, data=None, count=10, output=None):
        """Classifies the run's test split, or every sequence of the file `data`: the first
        `count` predictions with their probability and the truth, then the scores; with
        `output` (a path stem) also the confusion matrix as <output>.png."""
        if data is not None:
            config = dataclasses.replace(config, data=data)
        prepared = self.prepare(config, run_dir, split=data is None)
        self._check_channels(config, model, prepared)
        names = prepared.info["classes"]
        truth, probabilities = predict(model, prepared.test)
        predicted = probabilities.argmax(-1)
        lines = [
            f"{sequence_id}: {names[p]} (p={probabilities[i, p]:.2f}), true {names[t]}"
            f"{'' if p == t else '  <- wrong'}"
            for i, (sequence_id, p, t) in enumerate(zip(prepared.info["ids"], predicted, truth))
            if i < (count or 0)
        ]
        result = scores(truth, predicted, len(names))
        lines.append(
            f"{len(truth)} sequences: accuracy {result['accuracy']:.4f}, macro-F1 "
            f"{result['macro_f1']:.4f}"
        )
        if output:
            lines.append(
                save_confusion(truth, predicted, names, f"{output}.png", self.source(config))
            )
        return "\n".join(lines)

    def export_options(self, config, data, count, seq_len=None):
        """What `zoo.export.export_classifier` needs: the test split's labelled sequences
        (parity and the accuracy gate), `count` training sequences for int8 calibration (at
        least `CALIBRATION_SEQUENCES`), the window of `classify` (default the longest
        sequence of the training file, train and validation splits) and the metadata."""
        test = sequences_of(data.test)
        count = max(count, CALIBRATION_SEQUENCES)
        calibration = sequences_of(
            data.train(0).take(max(1, count // config.batch_size)), limit=count
        )
        return {
            "sequences": [s[:2] for s in test],
            "labels": [s[2] for s in test],
            "seq_len": seq_len or data.info["max_length"],
            "calibration": [s[:2] for s in calibration],
            "metadata": {
                "task": self.name,
                "classes": data.info["classes"],
                "config": dataclasses.asdict(config),
            },
        }

    def _check_channels(self, config, model, data):
        if data.info["channels"] != model.channels:
            raise ValueError(
                f"{self.source(config)}: sequences of {data.info['channels']} "
                f"channels; the model reads {model.channels}"
            )


def train_demo(run_dir=None, verbose="auto", **overrides):
    """Train the classify task (`overrides`: config fields); returns (metrics, model)."""
    from pipelines.train import train

    config = dataclasses.replace(ClassifyConfig(run_dir=run_dir), **overrides)
    model, metrics = train(config, verbose=verbose)
    return metrics, model
